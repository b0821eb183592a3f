//! The permission rule, written once: subtree scope plus per-object grants.
//!
//! - Officers (书记, 副书记, 组织委员, 宣传委员, 纪检委员, 委员) of an
//!   organization read and manage it and all its descendants.
//! - A member reads their own organization and their own record.
//! - Nobody reads a sibling or unrelated subtree, unless an explicit grant on
//!   that one object says so. Later features (approval routes, meeting
//!   invitations, transfers) add rows to `grants` instead of a second rule.
//! - The system administrator manages the structure (organizations, members,
//!   accounts); the security administrator reads the tree and assigns roles
//!   and clearance; the security auditor reads only the audit trail.
//!
//! Organization paths are materialized as `/1/4/9/`, so "X is in the subtree
//! of Y" is `X.path.starts_with(Y.path)`.

use serde::Serialize;
use sqlx::Row;

use axum::extract::FromRequestParts;

use crate::auth::{Session, SystemRole};
use crate::db::Db;
use crate::error::AppError;

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// What one account may see and change, loaded once per request.
#[derive(Debug, Clone, Default)]
pub struct Principal {
    pub account_id: i64,
    pub member_id: Option<i64>,
    pub system_role: Option<SystemRole>,
    /// Path of the member's own organization.
    pub own_org_path: Option<String>,
    /// Paths of the organizations where the member is an officer.
    pub officer_paths: Vec<String>,
}

impl Principal {
    /// Loads the member's organization and officer roles for a session.
    pub async fn load(db: &Db, session: &Session) -> Result<Self, AppError> {
        let mut principal = Principal {
            account_id: session.account.id,
            member_id: session.account.member_id,
            system_role: session.account.system_role,
            ..Default::default()
        };
        let Some(member_id) = principal.member_id else {
            return Ok(principal);
        };
        principal.own_org_path = sqlx::query_scalar(
            "SELECT o.path FROM members m JOIN orgs o ON o.id = m.org_id WHERE m.id = $1",
        )
        .bind(member_id)
        .fetch_optional(&db.pool)
        .await?;
        principal.officer_paths = sqlx::query(
            "SELECT o.path FROM org_roles r JOIN orgs o ON o.id = r.org_id WHERE r.member_id = $1",
        )
        .bind(member_id)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|row| row.try_get("path"))
        .collect::<Result<_, _>>()?;
        Ok(principal)
    }

    pub fn is(&self, role: SystemRole) -> bool {
        self.system_role == Some(role)
    }

    /// Whether the principal is an officer of the organization at `path` or
    /// of one of its ancestors.
    pub fn manages(&self, path: &str) -> bool {
        self.officer_paths
            .iter()
            .any(|officer| path.starts_with(officer.as_str()))
    }

    /// Subtree rule for an organization, without grants.
    pub fn can_org(&self, path: &str, access: Access) -> bool {
        if self.is(SystemRole::SystemAdmin) {
            return true;
        }
        if self.is(SystemRole::SecurityAdmin) {
            return access == Access::Read;
        }
        if self.manages(path) {
            return true;
        }
        access == Access::Read && self.own_org_path.as_deref() == Some(path)
    }

    /// Subtree rule for a member record, without grants.
    pub fn can_member(&self, member_id: i64, org_path: &str, access: Access) -> bool {
        if self.is(SystemRole::SystemAdmin) {
            return true;
        }
        if self.is(SystemRole::SecurityAdmin) {
            return access == Access::Read;
        }
        if self.manages(org_path) {
            return true;
        }
        access == Access::Read && self.member_id == Some(member_id)
    }

    /// Who may see a member's full identity number: officers of the member's
    /// own organization (not of its ancestors) and the security administrator.
    pub fn can_reveal_id(&self, org_path: &str) -> bool {
        self.is(SystemRole::SecurityAdmin) || self.officer_paths.iter().any(|path| path == org_path)
    }

    /// Who may assign or remove an organization role: the security
    /// administrator anywhere, officers inside their subtree but never on
    /// their own record, so that nobody raises their own rights.
    pub fn can_assign_role(&self, org_path: &str, member_id: i64) -> bool {
        if self.is(SystemRole::SecurityAdmin) {
            return true;
        }
        self.manages(org_path) && self.member_id != Some(member_id)
    }

    /// Whether the whole tree is visible (administrators).
    pub fn sees_whole_tree(&self) -> bool {
        self.is(SystemRole::SystemAdmin) || self.is(SystemRole::SecurityAdmin)
    }

    /// The subtree rule, then an explicit grant on the object.
    pub async fn check(
        &self,
        db: &Db,
        allowed_by_scope: bool,
        object: (&str, i64),
        access: Access,
    ) -> Result<(), AppError> {
        if allowed_by_scope || self.has_grant(db, object, access).await? {
            Ok(())
        } else {
            Err(AppError::forbidden())
        }
    }

    /// Whether a grant on this one object allows the access; a write grant
    /// implies read. Access to a mobile member through the host organization
    /// is computed from the current officers rather than stored.
    pub async fn has_grant(
        &self,
        db: &Db,
        object: (&str, i64),
        access: Access,
    ) -> Result<bool, AppError> {
        let Some(member_id) = self.member_id else {
            return Ok(false);
        };
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM grants WHERE member_id = $1 AND object_type = $2 \
             AND object_id = $3 AND (access = $4 OR access = 'write')",
        )
        .bind(member_id)
        .bind(object.0)
        .bind(object.1)
        .bind(access.as_str())
        .fetch_one(&db.pool)
        .await?;
        if count > 0 {
            return Ok(true);
        }
        if object.0 == "member" {
            let mut conn = db.pool.acquire().await?;
            return crate::membership::mobile_access(&mut conn, member_id, object.1, access).await;
        }
        Ok(false)
    }
}

/// An authenticated request together with its principal.
pub struct Caller {
    pub session: Session,
    pub principal: Principal,
}

impl FromRequestParts<crate::state::AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::state::AppState,
    ) -> Result<Self, AppError> {
        let session = Session::from_request_parts(parts, state).await?;
        let principal = Principal::load(&state.db, &session).await?;
        Ok(Self { session, principal })
    }
}

impl Caller {
    /// Rejects callers without the given system role.
    pub fn require(&self, role: SystemRole) -> Result<(), AppError> {
        if self.session.has_role(role) {
            Ok(())
        } else {
            Err(AppError::forbidden())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn officer(path: &str) -> Principal {
        Principal {
            member_id: Some(1),
            own_org_path: Some(path.to_owned()),
            officer_paths: vec![path.to_owned()],
            ..Default::default()
        }
    }

    #[test]
    fn subtree_prefix_does_not_match_sibling_with_longer_id() {
        // "/1/2/" must not manage "/1/23/".
        let principal = officer("/1/2/");
        assert!(principal.can_org("/1/2/5/", Access::Write));
        assert!(!principal.can_org("/1/23/", Access::Read));
    }

    #[test]
    fn officer_cannot_assign_own_role() {
        let principal = officer("/1/");
        assert!(principal.can_assign_role("/1/", 2));
        assert!(!principal.can_assign_role("/1/", 1));
    }

    fn system(role: SystemRole) -> Principal {
        Principal {
            system_role: Some(role),
            ..Default::default()
        }
    }

    /// The rule for organizations as a table: own "/1/2/", ancestor "/1/",
    /// descendant "/1/2/7/", sibling "/1/3/", unrelated "/9/".
    #[test]
    fn org_rule_matrix() {
        let targets = ["/1/2/", "/1/", "/1/2/7/", "/1/3/", "/9/"];
        let member = Principal {
            member_id: Some(5),
            own_org_path: Some("/1/2/".to_owned()),
            ..Default::default()
        };
        let table = [
            ("officer", officer("/1/2/"), ["rw", "", "rw", "", ""]),
            ("member", member, ["r", "", "", "", ""]),
            ("system admin", system(SystemRole::SystemAdmin), ["rw"; 5]),
            (
                "security admin",
                system(SystemRole::SecurityAdmin),
                ["r"; 5],
            ),
            ("auditor", system(SystemRole::SecurityAuditor), [""; 5]),
        ];
        for (name, principal, expected) in table {
            for (path, access) in targets.into_iter().zip(expected) {
                let read = principal.can_org(path, Access::Read);
                let write = principal.can_org(path, Access::Write);
                assert_eq!(read, access.contains('r'), "{name} reads {path}");
                assert_eq!(write, access.contains('w'), "{name} writes {path}");
            }
        }
    }

    #[test]
    fn reveal_only_own_org_officer_and_security_admin() {
        let principal = officer("/1/2/");
        assert!(principal.can_reveal_id("/1/2/"));
        assert!(!principal.can_reveal_id("/1/2/7/"));
        assert!(!principal.can_reveal_id("/1/"));
        assert!(system(SystemRole::SecurityAdmin).can_reveal_id("/9/"));
        assert!(!system(SystemRole::SystemAdmin).can_reveal_id("/1/2/"));
        assert!(!system(SystemRole::SecurityAuditor).can_reveal_id("/1/2/"));
    }
}
