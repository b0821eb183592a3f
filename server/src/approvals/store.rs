//! Loading documents and deciding who may see them.
//!
//! A document is visible to an account whose clearance reaches the
//! document's security level and who is its drafter, on its route (an
//! assignee, copied, or a circulation reader), or holds an explicit grant
//! on it. Nobody else sees that it exists: the API answers 404.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::engine::{Instance, MemberId};
use crate::auth::Account;
use crate::auth::accounts::CLEARANCES;
use crate::error::{AppError, AppResult};
use crate::perm::{Access, Caller, Principal};
use crate::state::AppState;

/// Security levels a document may carry, lowest first: 公开, 内部, 秘密.
pub const SECURITY_LEVELS: [&str; 3] = ["public", "internal", "confidential"];

/// Whether an account's clearance reaches a security level.
pub fn cleared(clearance: &str, level: &str) -> bool {
    let rank = |value: &str| CLEARANCES.iter().position(|c| *c == value);
    match (rank(clearance), rank(level)) {
        (Some(clearance), Some(level)) => clearance >= level,
        _ => false,
    }
}

/// A document row with its workflow state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DocumentRow {
    pub id: i64,
    pub org_id: i64,
    pub org_name: String,
    pub drafter_member: i64,
    pub drafter_name: String,
    pub title: String,
    pub doc_type: String,
    pub security_level: String,
    pub urgency: String,
    pub template_id: i64,
    pub status: String,
    pub workflow_version: i64,
    pub body_version: i64,
    pub number_prefix: String,
    /// The document number (文号), once signed off.
    pub number: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the earliest open task with a deadline is due (Unix ms).
    pub due_at: Option<i64>,
    #[serde(skip)]
    #[schema(ignore)]
    pub workflow: String,
}

const DOCUMENT_SELECT: &str = "SELECT d.id, d.org_id, o.name AS org_name, d.drafter_member, \
     m.name AS drafter_name, d.title, d.doc_type, d.security_level, d.urgency, d.template_id, \
     d.status, d.workflow_version, d.body_version, d.number_prefix, d.number_text, d.created_at, \
     d.updated_at, d.workflow, (SELECT MIN(t.due_at) FROM document_tasks t \
     WHERE t.document_id = d.id) AS due_at FROM documents d JOIN orgs o ON o.id = d.org_id \
     JOIN members m ON m.id = d.drafter_member";

impl DocumentRow {
    pub fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            org_id: row.try_get("org_id")?,
            org_name: row.try_get("org_name")?,
            drafter_member: row.try_get("drafter_member")?,
            drafter_name: row.try_get("drafter_name")?,
            title: row.try_get("title")?,
            doc_type: row.try_get("doc_type")?,
            security_level: row.try_get("security_level")?,
            urgency: row.try_get("urgency")?,
            template_id: row.try_get("template_id")?,
            status: row.try_get("status")?,
            workflow_version: row.try_get("workflow_version")?,
            body_version: row.try_get("body_version")?,
            number_prefix: row.try_get("number_prefix")?,
            number: row.try_get("number_text")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            due_at: row.try_get("due_at")?,
            workflow: row.try_get("workflow")?,
        })
    }

    /// The stored workflow instance.
    pub fn instance(&self) -> AppResult<Instance> {
        serde_json::from_str(&self.workflow).map_err(AppError::internal)
    }
}

fn not_found(id: i64) -> AppError {
    AppError::not_found(("公文", "document"), id)
}

/// Loads a document without checking visibility.
pub async fn load(conn: &mut AnyConnection, id: i64) -> AppResult<DocumentRow> {
    let row = sqlx::query(&format!("{DOCUMENT_SELECT} WHERE d.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(DocumentRow::from_row(&row)?)
}

/// Lists documents by a condition on `d` with one bound member id.
pub async fn list_where(
    state: &AppState,
    condition: &str,
    member_id: i64,
    limit: i64,
    offset: i64,
) -> AppResult<(Vec<DocumentRow>, i64)> {
    let rows = sqlx::query(&format!(
        "{DOCUMENT_SELECT} WHERE {condition} ORDER BY d.updated_at DESC, d.id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(member_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.db.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM documents d WHERE {condition}"
    ))
    .bind(member_id)
    .fetch_one(&state.db.pool)
    .await?;
    let documents = rows
        .iter()
        .map(DocumentRow::from_row)
        .collect::<Result<_, _>>()?;
    Ok((documents, total))
}

/// The caller's member id; approval work needs a member behind the account.
pub fn member_of(caller: &Caller) -> AppResult<MemberId> {
    caller
        .session
        .account
        .member_id
        .map(MemberId)
        .ok_or_else(|| {
            AppError::new(
                axum::http::StatusCode::FORBIDDEN,
                "member_required",
                "只有关联党员的账号才能办理公文",
                "only accounts linked to a member can work on documents",
            )
        })
}

/// Loads a document the caller may see, or answers 404.
pub async fn visible(state: &AppState, caller: &Caller, id: i64) -> AppResult<DocumentRow> {
    let document = load(&mut *state.db.pool.acquire().await?, id).await?;
    if can_view(state, caller, &document).await? {
        Ok(document)
    } else {
        Err(not_found(id))
    }
}

/// The visibility rule in the module documentation.
pub async fn can_view(
    state: &AppState,
    caller: &Caller,
    document: &DocumentRow,
) -> AppResult<bool> {
    can_view_as(state, &caller.session.account, &caller.principal, document).await
}

/// [`can_view`] for an account and principal, as the hub has them.
pub async fn can_view_as(
    state: &AppState,
    account: &Account,
    principal: &Principal,
    document: &DocumentRow,
) -> AppResult<bool> {
    if !cleared(&account.clearance, &document.security_level) {
        return Ok(false);
    }
    let Some(member_id) = account.member_id else {
        return Ok(false);
    };
    if member_id == document.drafter_member {
        return Ok(true);
    }
    let participant: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM document_participants WHERE document_id = $1 AND member_id = $2",
    )
    .bind(document.id)
    .bind(member_id)
    .fetch_one(&state.db.pool)
    .await?;
    if participant > 0 {
        return Ok(true);
    }
    principal
        .has_grant(&state.db, ("document", document.id), Access::Read)
        .await
}

/// Adds members to the document's participants.
pub async fn add_participants(
    conn: &mut AnyConnection,
    document_id: i64,
    members: impl IntoIterator<Item = MemberId>,
) -> AppResult<()> {
    for member in members {
        sqlx::query(
            "INSERT INTO document_participants (document_id, member_id) VALUES ($1, $2) \
             ON CONFLICT (document_id, member_id) DO NOTHING",
        )
        .bind(document_id)
        .bind(member.0)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The account of a member, if it has one (for hub topics).
pub async fn account_of(conn: &mut AnyConnection, member: MemberId) -> AppResult<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM accounts WHERE member_id = $1")
            .bind(member.0)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// A member's name for timelines and messages.
pub async fn member_name(conn: &mut AnyConnection, member: MemberId) -> AppResult<String> {
    Ok(sqlx::query_scalar("SELECT name FROM members WHERE id = $1")
        .bind(member.0)
        .fetch_optional(&mut *conn)
        .await?
        .unwrap_or_else(|| member.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearance_ranks() {
        assert!(cleared("internal", "public"));
        assert!(cleared("internal", "internal"));
        assert!(!cleared("internal", "confidential"));
        assert!(cleared("secret", "confidential"));
        assert!(!cleared("bogus", "public"));
    }
}
