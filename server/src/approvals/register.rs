//! The document number register (发文登记) and voiding (作废).
//!
//! A signed-off document cannot be withdrawn; an officer of the issuing
//! organization may void it with a reason instead. Its number stays in the
//! register, marked void, so the register has no gaps.

use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::documents::{DocumentView, view};
use super::store;
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::hub::store as events;
use crate::org::load_org;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(void_document))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct RegisterQuery {
    org_id: i64,
    /// Calendar year of the numbers. [default: this year]
    year: Option<i64>,
}

/// One number in the register.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RegisterEntry {
    pub prefix: String,
    pub seq: i64,
    pub number: String,
    pub document_id: i64,
    /// Empty when the caller's clearance does not reach the document's level.
    pub title: String,
    /// `used` or `void`.
    pub status: String,
    pub void_reason: Option<String>,
    pub assigned_at: i64,
}

/// Lists an organization's numbers for a year, in order (its officers).
#[utoipa::path(get, path = "/api/approvals/register", tag = "approvals", params(RegisterQuery),
    responses((status = 200, body = Vec<RegisterEntry>), (status = 403, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<RegisterQuery>,
) -> AppResult<ApiJson<Vec<RegisterEntry>>> {
    let org = load_org(&mut *state.db.pool.acquire().await?, query.org_id).await?;
    if !caller.principal.can_org(&org.path, Access::Write) {
        return Err(AppError::forbidden());
    }
    let year = query
        .year
        .unwrap_or_else(|| i64::from(chrono::Datelike::year(&chrono::Local::now())));
    let rows = sqlx::query(
        "SELECT r.prefix, r.seq, r.number_text, r.document_id, d.title, d.security_level, r.status, r.void_reason, r.assigned_at \
         FROM number_register r JOIN documents d ON d.id = r.document_id WHERE r.org_id = $1 AND r.year = $2 \
         ORDER BY r.prefix, r.seq",
    )
    .bind(org.id)
    .bind(year)
    .fetch_all(&state.db.pool)
    .await?;
    let clearance = &caller.session.account.clearance;
    let entries = rows
        .iter()
        .map(|row| {
            let level: String = row.try_get("security_level")?;
            let title: String = row.try_get("title")?;
            Ok(RegisterEntry {
                prefix: row.try_get("prefix")?,
                seq: row.try_get("seq")?,
                number: row.try_get("number_text")?,
                document_id: row.try_get("document_id")?,
                title: if store::cleared(clearance, &level) {
                    title
                } else {
                    String::new()
                },
                status: row.try_get("status")?,
                void_reason: row.try_get("void_reason")?,
                assigned_at: row.try_get("assigned_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(ApiJson(entries))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    pub reason: String,
}

/// Voids a signed-off document; its number stays in the register as void.
#[utoipa::path(post, path = "/api/documents/{id}/void", tag = "approvals", request_body = VoidRequest,
    params(("id" = i64, Path, description = "Document id")),
    responses((status = 200, body = DocumentView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn void_document(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<VoidRequest>,
) -> AppResult<ApiJson<DocumentView>> {
    let reason = input.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(AppError::invalid(
            "reason",
            "请填写作废原因（最多 500 字）",
            "give a reason for voiding (at most 500 characters)",
        ));
    }
    let document = store::visible(&state, &caller, id).await?;
    let mut tx = state.db.begin().await?;
    let org = load_org(&mut tx, document.org_id).await?;
    if !caller.principal.can_org(&org.path, Access::Write) {
        return Err(AppError::forbidden());
    }
    if document.number.is_none() || document.status == "voided" {
        return Err(AppError::conflict(
            "not_voidable",
            "只有已签发且未作废的公文可以作废",
            "only a signed-off document that is not void can be voided",
        ));
    }
    sqlx::query(
        "UPDATE number_register SET status = 'void', void_reason = $1 WHERE document_id = $2",
    )
    .bind(&reason)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE documents SET status = 'voided', updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event = events::append(
        &mut tx,
        &format!("document:{id}"),
        "document.voided",
        json!({"reason": reason, "by": caller.session.account.display_name}),
    )
    .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "document.void",
        ("document", id.to_string()),
        json!({"number": document.number, "reason": reason}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish([event]);
    Ok(ApiJson(view(&state, &caller, id).await?))
}
