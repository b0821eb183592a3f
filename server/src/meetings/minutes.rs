//! Minutes (会议纪要): saved by the recorder with a version check while the
//! meeting runs and after it, approved by the host. Approved minutes are
//! frozen.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store::{self, MeetingStatus};
use super::view::{self, Minutes};
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::notices::sanitize_html;
use crate::perm::Caller;
use crate::state::AppState;

/// Longest minutes text, in characters.
pub const MAX_MINUTES_CHARS: usize = 200_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(save_minutes))
        .routes(routes!(approve_minutes))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveMinutes {
    /// Rich text; sanitized on the server.
    pub body_html: String,
    /// The version this text was based on: 0 for the first save.
    pub expected_version: i64,
}

fn frozen() -> AppError {
    AppError::conflict(
        "minutes_approved",
        "会议纪要已审定，不能再修改",
        "the minutes are approved and can no longer change",
    )
}

/// Locks the meeting and checks a save: the recorder, a started meeting,
/// minutes not approved and based on the current version, which it returns.
async fn check_save(
    conn: &mut AnyConnection,
    caller: &Caller,
    id: i64,
    expected_version: i64,
) -> AppResult<i64> {
    let meeting = store::lock(conn, id).await?;
    if caller.session.account.member_id != Some(meeting.recorder_member) {
        return Err(AppError::forbidden());
    }
    if !matches!(meeting.status, MeetingStatus::Live | MeetingStatus::Ended) {
        return Err(AppError::conflict(
            "meeting_not_started",
            "会议开始后才能记录纪要",
            "minutes can be written once the meeting has started",
        ));
    }

    let current =
        sqlx::query("SELECT version, approved_at FROM meeting_minutes WHERE meeting_id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let (version, approved) = match &current {
        Some(row) => (
            row.try_get::<i64, _>("version")?,
            row.try_get::<Option<i64>, _>("approved_at")?.is_some(),
        ),
        None => (0, false),
    };
    if approved {
        return Err(frozen());
    }
    if expected_version != version {
        return Err(AppError::conflict(
            "minutes_conflict",
            format!("会议纪要已被更新到第 {version} 版，请刷新后合并您的修改再保存"),
            format!("the minutes are at version {version} now; reload, merge your changes and save again"),
        )
        .field("expected_version"));
    }
    Ok(version)
}

/// Saves the minutes (recorder only). A save based on an older version
/// fails with 409 and changes nothing, so the writer can merge and retry.
#[utoipa::path(put, path = "/api/meetings/{id}/minutes", tag = "meetings", request_body = SaveMinutes,
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 200, body = Minutes), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn save_minutes(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<SaveMinutes>,
) -> AppResult<ApiJson<Minutes>> {
    if input.body_html.chars().count() > MAX_MINUTES_CHARS {
        return Err(AppError::invalid(
            "body_html",
            format!("会议纪要不能超过 {MAX_MINUTES_CHARS} 个字符"),
            format!("minutes must be at most {MAX_MINUTES_CHARS} characters"),
        ));
    }
    let body_html = sanitize_html(&input.body_html);

    let mut tx = state.db.begin().await?;
    let version = check_save(&mut tx, &caller, id, input.expected_version).await?;

    let now = now_ms();
    let name = caller.session.account.display_name.clone();
    sqlx::query(
        "INSERT INTO meeting_minutes (meeting_id, body_html, version, saved_by, saved_by_name, saved_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (meeting_id) DO UPDATE SET body_html = excluded.body_html, \
         version = excluded.version, saved_by = excluded.saved_by, saved_by_name = excluded.saved_by_name, \
         saved_at = excluded.saved_at",
    )
    .bind(id)
    .bind(&body_html)
    .bind(version + 1)
    .bind(caller.session.account.id)
    .bind(&name)
    .bind(now)
    .execute(&mut *tx)
    .await?;

    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "meeting.minutes_save",
        ("meeting", id.to_string()),
        json!({"version": version + 1, "chars": body_html.chars().count()}),
    )
    .await?;

    let event = store::event(
        &mut tx,
        id,
        "minutes.saved",
        json!({"version": version + 1, "body_html": body_html, "saved_by_name": name, "saved_at": now}),
    )
    .await?;
    let minutes = view::minutes(&mut tx, id)
        .await?
        .ok_or_else(|| AppError::internal("minutes missing after save"))?;

    tx.commit().await?;
    state.hub.publish([event]);
    Ok(ApiJson(minutes))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveMinutes {
    /// The version the host read and approves.
    pub version: i64,
}

/// Approves the minutes (host only); they are frozen from then on.
#[utoipa::path(post, path = "/api/meetings/{id}/minutes/approve", tag = "meetings", request_body = ApproveMinutes,
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 200, body = Minutes), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn approve_minutes(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<ApproveMinutes>,
) -> AppResult<ApiJson<Minutes>> {
    let mut tx = state.db.begin().await?;
    let meeting = store::lock(&mut tx, id).await?;
    if caller.session.account.member_id != Some(meeting.host_member) {
        return Err(AppError::forbidden());
    }
    let minutes = view::minutes(&mut tx, id).await?.ok_or_else(|| {
        AppError::conflict("no_minutes", "还没有会议纪要", "there are no minutes yet")
    })?;
    if minutes.approved_at.is_some() {
        return Err(frozen());
    }
    if minutes.version != input.version {
        return Err(AppError::conflict(
            "minutes_conflict",
            format!("会议纪要已更新到第 {} 版，请阅读后再审定", minutes.version),
            format!(
                "the minutes are at version {} now; read them before approving",
                minutes.version
            ),
        )
        .field("version"));
    }
    let now = now_ms();
    let name = caller.session.account.display_name.clone();
    sqlx::query("UPDATE meeting_minutes SET approved_by = $1, approved_by_name = $2, approved_at = $3 WHERE meeting_id = $4")
        .bind(caller.session.account.id)
        .bind(&name)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;

    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "meeting.minutes_approve",
        ("meeting", id.to_string()),
        json!({"version": minutes.version}),
    )
    .await?;

    let event = store::event(
        &mut tx,
        id,
        "minutes.approved",
        json!({"version": minutes.version, "approved_by_name": name, "approved_at": now}),
    )
    .await?;
    let minutes = view::minutes(&mut tx, id)
        .await?
        .ok_or_else(|| AppError::internal("minutes missing after approval"))?;

    tx.commit().await?;
    state.hub.publish([event]);
    Ok(ApiJson(minutes))
}
