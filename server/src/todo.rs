//! `GET /api/todo`: the counts behind the to-do badge in the header.
//!
//! Each feature with work waiting for the user adds its count here; the
//! badge shows `total`. Changes arrive live as events on `user:ID`
//! (`notice.*`, `todo.*` and `meeting.leave_*`).

use axum::extract::State;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::perm::Caller;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(todo_counts))
}

/// Work waiting for the signed-in user.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TodoCounts {
    /// Active notices not read yet.
    pub notices_unread: i64,
    /// Open approval tasks: documents to decide on or to read.
    pub approvals_pending: i64,
    /// Leave requests waiting for the user's decision as host or recorder
    /// of a meeting that has not ended.
    pub meeting_leave_pending: i64,
    /// Development steps reminded or escalated to the user and not yet
    /// recorded.
    pub membership_due: i64,
    pub total: i64,
    /// The `user:ID` topic's sequence number these counts include.
    pub seq: i64,
}

/// Returns the signed-in user's to-do counts.
#[utoipa::path(get, path = "/api/todo", tag = "todo",
    responses((status = 200, body = TodoCounts), (status = 401, body = ErrorBody)))]
async fn todo_counts(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<ApiJson<TodoCounts>> {
    let seq =
        crate::hub::store::head(&state.db, &format!("user:{}", caller.session.account.id)).await?;
    let membership_due = match caller.session.account.member_id {
        Some(member_id) => crate::membership::reminders::open_count(&state.db, member_id).await?,
        None => 0,
    };
    let (notices_unread, approvals_pending, meeting_leave_pending) = match caller
        .session
        .account
        .member_id
    {
        Some(member_id) => {
            let notices: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM notice_recipients r JOIN notices n ON n.id = r.notice_id \
                 WHERE r.member_id = $1 AND r.read_at IS NULL AND n.status = 'active'",
            )
            .bind(member_id)
            .fetch_one(&state.db.pool)
            .await?;
            let approvals: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM document_tasks WHERE member_id = $1")
                    .bind(member_id)
                    .fetch_one(&state.db.pool)
                    .await?;
            let leave: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM meeting_leave_requests l JOIN meetings mt ON mt.id = l.meeting_id \
                 WHERE l.status = 'pending' AND mt.status IN ('scheduled', 'live') \
                 AND (mt.host_member = $1 OR mt.recorder_member = $1)",
            )
            .bind(member_id)
            .fetch_one(&state.db.pool)
            .await?;
            (notices, approvals, leave)
        }
        None => (0, 0, 0),
    };
    Ok(ApiJson(TodoCounts {
        notices_unread,
        approvals_pending,
        meeting_leave_pending,
        membership_due,
        total: notices_unread + approvals_pending + meeting_leave_pending + membership_due,
        seq,
    }))
}
