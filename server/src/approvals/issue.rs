//! `POST /api/documents/{id}/issue`: a signed-off document is issued (分发)
//! to organization subtrees as a notice, whose receipts its sender follows
//! like any other notice.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store;
use crate::audit;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::hub::store as events;
use crate::notices::{NewNotice, Notice, Priority, Targets, create_notice};
use crate::perm::Caller;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(issue_document))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// Organizations whose whole subtrees receive the document.
    pub org_ids: Vec<i64>,
    /// Whether recipients must confirm receipt (回执).
    #[serde(default)]
    pub require_confirm: bool,
}

/// Issues a signed-off document as a notice to organization subtrees the
/// caller manages.
#[utoipa::path(post, path = "/api/documents/{id}/issue", tag = "approvals", request_body = IssueRequest,
    params(("id" = i64, Path, description = "Document id")),
    responses((status = 201, body = Notice), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn issue_document(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<IssueRequest>,
) -> AppResult<(StatusCode, ApiJson<Notice>)> {
    let document = store::visible(&state, &caller, id).await?;
    let Some(number) = document
        .number
        .clone()
        .filter(|_| document.status != "voided")
    else {
        return Err(AppError::conflict(
            "not_signed_off",
            "只有已签发且未作废的公文可以分发",
            "only a signed-off document that is not void can be issued",
        ));
    };
    if input.org_ids.is_empty() {
        return Err(AppError::invalid(
            "org_ids",
            "请至少选择一个组织",
            "choose at least one organization",
        ));
    }
    let body_html: String = sqlx::query_scalar(
        "SELECT body_html FROM document_versions WHERE document_id = $1 AND version = $2",
    )
    .bind(id)
    .bind(document.body_version)
    .fetch_one(&state.db.pool)
    .await?;
    let notice = NewNotice {
        title: format!("{number} {}", document.title),
        body_html,
        priority: if document.urgency == "normal" {
            Priority::Normal
        } else {
            Priority::Urgent
        },
        require_confirm: input.require_confirm,
        targets: Targets {
            org_ids: input.org_ids.clone(),
            member_ids: Vec::new(),
        },
        attachments: Vec::new(),
    };
    let notice = create_notice(&state, &caller, notice)
        .await
        .map_err(|error| match error.field.as_deref() {
            Some(field) if field.starts_with("targets.org_ids") => {
                let renamed = field.replacen("targets.org_ids", "org_ids", 1);
                error.field(renamed)
            }
            _ => error,
        })?;
    let mut tx = state.db.begin().await?;
    let event = events::append(&mut tx, &format!("document:{id}"), "document.issued",
        json!({"notice_id": notice.id, "org_ids": input.org_ids, "by": caller.session.account.display_name})).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "document.issue",
        ("document", id.to_string()),
        json!({"notice_id": notice.id, "org_ids": input.org_ids}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish([event]);
    Ok((StatusCode::CREATED, ApiJson(notice)))
}
