//! Organization records and the structural rules of the tree.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::error::AppError;

/// The type of a party organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// 党委: a party committee.
    Committee,
    /// 党总支: a general branch.
    GeneralBranch,
    /// 党支部: a branch.
    Branch,
    /// 党小组: a party group inside a branch.
    Group,
    /// 党组: the leading party group of a state body.
    LeadingGroup,
    /// 临时党支部: mobile members gathered under a host organization. It is
    /// formed only through the membership API and has no children.
    TemporaryBranch,
}

impl OrgKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Committee => "committee",
            Self::GeneralBranch => "general_branch",
            Self::Branch => "branch",
            Self::Group => "group",
            Self::LeadingGroup => "leading_group",
            Self::TemporaryBranch => "temporary_branch",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "committee" => Some(Self::Committee),
            "general_branch" => Some(Self::GeneralBranch),
            "branch" => Some(Self::Branch),
            "group" => Some(Self::Group),
            "leading_group" => Some(Self::LeadingGroup),
            "temporary_branch" => Some(Self::TemporaryBranch),
            _ => None,
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            Self::Committee => "党委",
            Self::GeneralBranch => "党总支",
            Self::Branch => "党支部",
            Self::Group => "党小组",
            Self::LeadingGroup => "党组",
            Self::TemporaryBranch => "临时党支部",
        }
    }

    /// Whether an organization of this kind may sit directly under `parent`
    /// (or at the root, for `None`). A temporary branch never passes this
    /// check, so organization edits cannot create one.
    pub fn may_sit_under(self, parent: Option<OrgKind>) -> bool {
        use OrgKind::*;
        if self == TemporaryBranch {
            return false;
        }
        match parent {
            None => self == Committee,
            Some(Committee) => matches!(self, Committee | GeneralBranch | Branch | LeadingGroup),
            Some(GeneralBranch) => self == Branch,
            Some(Branch) => self == Group,
            Some(Group) | Some(LeadingGroup) | Some(TemporaryBranch) => false,
        }
    }
}

/// One organization.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Org {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
    pub kind: OrgKind,
    /// Ids from the root down to this organization, as `/1/4/9/`.
    pub path: String,
    pub sort_order: i64,
    pub member_count: i64,
}

pub(crate) const ORG_COLUMNS: &str = "o.id, o.parent_id, o.name, o.kind, o.path, o.sort_order, \
     (SELECT COUNT(*) FROM members m WHERE m.org_id = o.id AND m.status <> 'moved_out') AS member_count";

impl Org {
    pub(crate) fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        let kind: String = row.try_get("kind")?;
        Ok(Self {
            id: row.try_get("id")?,
            parent_id: row.try_get("parent_id")?,
            name: row.try_get("name")?,
            kind: OrgKind::parse(&kind).unwrap_or(OrgKind::Branch),
            path: row.try_get("path")?,
            sort_order: row.try_get("sort_order")?,
            member_count: row.try_get("member_count")?,
        })
    }

    pub fn depth(&self) -> usize {
        self.path.matches('/').count().saturating_sub(1)
    }
}

/// Loads one organization or answers 404.
pub async fn load_org(conn: &mut AnyConnection, id: i64) -> Result<Org, AppError> {
    let row = sqlx::query(&format!("SELECT {ORG_COLUMNS} FROM orgs o WHERE o.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| AppError::not_found(("组织", "organization"), id))?;
    Ok(Org::from_row(&row)?)
}

/// Checks an organization name: 1 to 100 characters after trimming.
pub fn check_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    let length = name.chars().count();
    if length == 0 || length > 100 {
        return Err(AppError::invalid(
            "name",
            "组织名称须为 1 到 100 个字符",
            "organization name must be 1 to 100 characters",
        ));
    }
    Ok(name.to_owned())
}

/// Rejects a child kind that may not sit under the parent kind.
pub fn check_nesting(kind: OrgKind, parent: Option<OrgKind>) -> Result<(), AppError> {
    if kind.may_sit_under(parent) {
        return Ok(());
    }
    let (zh, en) = match parent {
        Some(parent) => (
            format!("{}不能设在{}之下", kind.zh(), parent.zh()),
            format!("a {} cannot sit under a {}", kind.as_str(), parent.as_str()),
        ),
        None => (
            format!("{}不能作为顶级组织，顶级组织须为党委", kind.zh()),
            format!("a {} cannot be a root; roots are committees", kind.as_str()),
        ),
    };
    Err(AppError::invalid("kind", zh, en))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_rules() {
        assert!(OrgKind::Committee.may_sit_under(None));
        assert!(!OrgKind::Branch.may_sit_under(None));
        assert!(OrgKind::Branch.may_sit_under(Some(OrgKind::GeneralBranch)));
        assert!(OrgKind::Group.may_sit_under(Some(OrgKind::Branch)));
        assert!(!OrgKind::Committee.may_sit_under(Some(OrgKind::Branch)));
        assert!(!OrgKind::Branch.may_sit_under(Some(OrgKind::Group)));
    }
}
