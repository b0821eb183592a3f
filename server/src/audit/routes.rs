//! HTTP resource `/api/audit`: the trail and its verification, for the
//! security auditor only.

use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AuditEntry;
use crate::auth::SystemRole;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::{ApiJson, Page, PageQuery};
use crate::perm::Caller;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_entries))
        .routes(routes!(verify_chain))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct AuditFilter {
    /// Only entries about this kind of target, e.g. `org` or `account`.
    pub target_type: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Lists audit entries, newest first.
#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditFilter),
    responses((status = 200, body = Page<AuditEntry>), (status = 403, body = ErrorBody)))]
async fn list_entries(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<AuditFilter>,
) -> AppResult<ApiJson<Page<AuditEntry>>> {
    caller.require(SystemRole::SecurityAuditor)?;
    let page = PageQuery {
        limit: filter.limit,
        offset: filter.offset,
    };
    let (entries, total) = super::list(
        &state.db,
        filter.target_type.as_deref(),
        page.limit(),
        page.offset(),
    )
    .await?;
    Ok(ApiJson(Page::new(entries, total, &page)))
}

/// The result of checking the whole chain.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifyResult {
    pub intact: bool,
    pub entries: Option<i64>,
    pub fault: Option<String>,
}

/// Checks every hash link and the signed head.
#[utoipa::path(get, path = "/api/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyResult), (status = 403, body = ErrorBody)))]
async fn verify_chain(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<ApiJson<VerifyResult>> {
    caller.require(SystemRole::SecurityAuditor)?;
    let outcome = super::verify(&state.db, &state.audit_key.verifying_key())
        .await
        .map_err(AppError::from)?;
    Ok(ApiJson(match outcome {
        Ok(entries) => VerifyResult {
            intact: true,
            entries: Some(entries),
            fault: None,
        },
        Err(fault) => VerifyResult {
            intact: false,
            entries: None,
            fault: Some(fault.to_string()),
        },
    }))
}
