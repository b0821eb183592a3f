//! Demo approval template: a branch's 请示 reviewed by its 组织委员 and signed off by its
//! 书记, so that a new user can draft and route a document at once.

use sqlx::AnyConnection;

use super::engine::Template;
use crate::db::now_ms;

/// Name of the demo template; distinct from the names the tests save.
pub const TEMPLATE_NAME: &str = "支部一般请示";

/// Saves version 1 of the demo template for the organization named `branch`, created by
/// its secretary's account.
pub async fn seed(conn: &mut AnyConnection, branch: &str) -> anyhow::Result<()> {
    let org_id: i64 = sqlx::query_scalar("SELECT id FROM orgs WHERE name = $1")
        .bind(branch)
        .fetch_one(&mut *conn)
        .await?;
    let created_by: i64 = sqlx::query_scalar(
        "SELECT a.id FROM accounts a JOIN org_roles r ON r.member_id = a.member_id \
         WHERE r.org_id = $1 AND r.role = 'secretary'",
    )
    .bind(org_id)
    .fetch_one(&mut *conn)
    .await?;
    let template: Template = serde_json::from_value(serde_json::json!({
        "name": TEMPLATE_NAME,
        "steps": [
            {"id": "review", "name": "组织委员审核", "kind": {"type": "single"},
             "assignees": [{"role": {"role": "organization_member", "org": "issuing"}}],
             "deadline_working_days": 3},
            {"id": "signoff", "name": "书记签发", "kind": {"type": "single"},
             "assignees": [{"role": {"role": "secretary", "org": "issuing"}}]}
        ]
    }))?;
    template.validate()?;
    sqlx::query(
        "INSERT INTO approval_templates (org_id, name, version, definition, created_by, created_at) \
         VALUES ($1, $2, 1, $3, $4, $5)",
    )
    .bind(org_id)
    .bind(TEMPLATE_NAME)
    .bind(serde_json::to_string(&template)?)
    .bind(created_by)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
