//! Attendance decided by people: leave requests (请假) decided by the host
//! or recorder, marking people present in the room in person, and
//! excusals recorded for a period (long illness, abroad).
//!
//! A granted leave request does not lower the number of those required to
//! attend, which counts everyone in the body; only an excusal does.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::presence::{self, Change};
use super::store::{self, MeetingRow, MeetingStatus};
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_leave))
        .routes(routes!(decide_leave))
        .routes(routes!(mark_present))
        .routes(routes!(list_excusals, record_excusal))
        .routes(routes!(revoke_excusal))
}

fn reason(field: &str, value: &str, required: bool) -> AppResult<String> {
    let value = value.trim();
    let length = value.chars().count();
    if (required && length == 0) || length > 500 {
        let min = u8::from(required);
        return Err(AppError::invalid(
            field,
            format!("须为 {min} 到 500 个字符"),
            format!("must be {min} to 500 characters"),
        ));
    }
    Ok(value.to_owned())
}

fn not_open(meeting: &MeetingRow) -> AppResult<()> {
    if matches!(
        meeting.status,
        MeetingStatus::Scheduled | MeetingStatus::Live
    ) {
        Ok(())
    } else {
        Err(AppError::conflict(
            "meeting_closed",
            "会议已结束或已取消",
            "the meeting has ended or been cancelled",
        ))
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaveInput {
    pub reason: String,
}

/// Files or updates the caller's leave request; a decided request cannot
/// be filed again.
#[utoipa::path(post, path = "/api/meetings/{id}/leave", tag = "meetings", request_body = LeaveInput,
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn request_leave(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<LeaveInput>,
) -> AppResult<StatusCode> {
    let reason = reason("reason", &input.reason, true)?;
    let member_id = caller
        .session
        .account
        .member_id
        .ok_or_else(AppError::forbidden)?;

    let mut tx = state.db.begin().await?;
    let meeting = store::lock(&mut tx, id).await?;
    not_open(&meeting)?;
    let on_roll: Option<String> = sqlx::query_scalar(
        "SELECT source FROM meeting_participants WHERE meeting_id = $1 AND member_id = $2",
    )
    .bind(id)
    .bind(member_id)
    .fetch_optional(&mut *tx)
    .await?;
    if !matches!(on_roll.as_deref(), Some("body" | "invited")) {
        return Err(AppError::forbidden());
    }
    let now = now_ms();
    let stored = sqlx::query(
        "INSERT INTO meeting_leave_requests (meeting_id, member_id, reason, filed_at, status) \
         VALUES ($1, $2, $3, $4, 'pending') ON CONFLICT (meeting_id, member_id) DO UPDATE \
         SET reason = excluded.reason, filed_at = excluded.filed_at \
         WHERE meeting_leave_requests.status = 'pending'",
    )
    .bind(id)
    .bind(member_id)
    .bind(&reason)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if stored == 0 {
        return Err(AppError::conflict(
            "leave_decided",
            "请假申请已处理，不能再修改",
            "the leave request has been decided and can no longer change",
        ));
    }

    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "meeting.leave_request",
        ("meeting", id.to_string()),
        json!({"member_id": member_id, "reason": reason}),
    )
    .await?;
    let name = store::member_name(&mut tx, member_id).await?;

    let mut events = vec![
        store::event(
            &mut tx,
            id,
            "leave.filed",
            json!({"member_id": member_id, "name": name, "filed_at": now}),
        )
        .await?,
    ];
    let todo =
        json!({"meeting_id": id, "title": meeting.title, "member_id": member_id, "name": name});
    events.extend(store::deciders_event(&mut tx, &meeting, "meeting.leave_pending", todo).await?);

    tx.commit().await?;
    state.hub.publish(events);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaveDecision {
    pub approve: bool,
    #[serde(default)]
    pub note: String,
}

/// Grants or refuses a pending leave request (host or recorder).
#[utoipa::path(post, path = "/api/meetings/{id}/leave/{member_id}/decision", tag = "meetings", request_body = LeaveDecision,
    params(("id" = i64, Path, description = "Meeting id"), ("member_id" = i64, Path, description = "Requesting member")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn decide_leave(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, member_id)): Path<(i64, i64)>,
    ApiJson(input): ApiJson<LeaveDecision>,
) -> AppResult<StatusCode> {
    let note = reason("note", &input.note, false)?;

    let mut tx = state.db.begin().await?;
    let meeting = store::lock(&mut tx, id).await?;
    if !meeting.runs(caller.session.account.member_id) {
        return Err(AppError::forbidden());
    }
    not_open(&meeting)?;
    let status = if input.approve {
        "approved"
    } else {
        "rejected"
    };
    let now = now_ms();
    let decided = sqlx::query(
        "UPDATE meeting_leave_requests SET status = $1, decided_by = $2, decided_at = $3, decision_note = $4 \
         WHERE meeting_id = $5 AND member_id = $6 AND status = 'pending'",
    )
    .bind(status)
    .bind(caller.session.account.id)
    .bind(now)
    .bind(&note)
    .bind(id)
    .bind(member_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if decided == 0 {
        return Err(AppError::not_found(
            ("待处理的请假申请", "pending leave request"),
            member_id,
        ));
    }

    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "meeting.leave_decide",
        ("meeting", id.to_string()),
        json!({"member_id": member_id, "status": status, "note": note}),
    )
    .await?;
    let name = store::member_name(&mut tx, member_id).await?;

    let todo =
        json!({"meeting_id": id, "title": meeting.title, "member_id": member_id, "name": name});
    let mut events =
        store::deciders_event(&mut tx, &meeting, "meeting.leave_settled", todo).await?;
    let event = store::event(
        &mut tx,
        id,
        "leave.decided",
        json!({"member_id": member_id, "name": name, "status": status,
            "decided_by_name": caller.session.account.display_name, "decided_at": now}),
    )
    .await?;

    tx.commit().await?;
    events.push(event);
    state.hub.publish(events);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkInput {
    /// Present in the room in person; false takes the mark back.
    pub present: bool,
}

/// Marks a member present in person, or takes the mark back (host or
/// recorder, while the meeting is live). A member not on the roll joins it
/// without a vote.
#[utoipa::path(put, path = "/api/meetings/{id}/attendance/{member_id}", tag = "meetings", request_body = MarkInput,
    params(("id" = i64, Path, description = "Meeting id"), ("member_id" = i64, Path, description = "Member")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn mark_present(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, member_id)): Path<(i64, i64)>,
    ApiJson(input): ApiJson<MarkInput>,
) -> AppResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let meeting = store::lock(&mut tx, id).await?;
    if !meeting.runs(caller.session.account.member_id) {
        return Err(AppError::forbidden());
    }
    if meeting.status != MeetingStatus::Live {
        return Err(AppError::conflict(
            "meeting_not_live",
            "会议进行中才能登记到会",
            "attendance can be marked while the meeting is live",
        ));
    }
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM members WHERE id = $1")
        .bind(member_id)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(AppError::not_found(("党员", "member"), member_id));
    }
    presence::ensure_participant(&mut tx, id, member_id).await?;
    let now = now_ms();
    let (marked_at, marked_by) = if input.present {
        (Some(now), Some(caller.session.account.id))
    } else {
        (None, None)
    };
    sqlx::query(
        "UPDATE meeting_participants SET marked_present_at = $1, marked_by = $2 WHERE meeting_id = $3 AND member_id = $4",
    )
    .bind(marked_at)
    .bind(marked_by)
    .bind(id)
    .bind(member_id)
    .execute(&mut *tx)
    .await?;
    let change = Change::Marked {
        member_id,
        present: input.present,
        at: now,
    };
    let actor = caller.session.actor();

    let event = presence::attendance_changed(&mut tx, &state, &meeting, &actor, change).await?;

    tx.commit().await?;
    state.hub.publish([event]);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExcusalInput {
    pub member_id: i64,
    /// The recorded decision's reason, such as long illness or work abroad.
    pub reason: String,
    /// First day, `YYYY-MM-DD`.
    pub starts_on: String,
    /// Last day, `YYYY-MM-DD`.
    pub ends_on: String,
}

/// A recorded excusal.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Excusal {
    pub id: i64,
    pub member_id: i64,
    pub name: String,
    pub reason: String,
    pub starts_on: String,
    pub ends_on: String,
    pub created_by_name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Loads the member's organization path, for the officer rule.
async fn member_path(state: &AppState, member_id: i64, field: &str) -> AppResult<String> {
    sqlx::query_scalar(
        "SELECT o.path FROM members m JOIN orgs o ON o.id = m.org_id WHERE m.id = $1",
    )
    .bind(member_id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| AppError::not_found(("党员", "member"), member_id).field(field))
}

fn date(field: &str, value: &str) -> AppResult<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        AppError::invalid(
            field,
            format!("日期格式应为 YYYY-MM-DD：{value}"),
            format!("invalid date {value:?}: use YYYY-MM-DD"),
        )
    })
}

/// Records that a member is excused from meetings for a period (officers
/// over the member's organization).
#[utoipa::path(post, path = "/api/meeting-excusals", tag = "meetings", request_body = ExcusalInput,
    responses((status = 201, body = Excusal), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn record_excusal(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<ExcusalInput>,
) -> AppResult<(StatusCode, ApiJson<Excusal>)> {
    let path = member_path(&state, input.member_id, "member_id").await?;
    if !caller.principal.manages(&path) {
        return Err(AppError::forbidden().field("member_id"));
    }
    let reason = reason("reason", &input.reason, true)?;
    let starts = date("starts_on", &input.starts_on)?;
    let ends = date("ends_on", &input.ends_on)?;
    if ends < starts {
        return Err(AppError::invalid(
            "ends_on",
            "结束日期不能早于开始日期",
            "the last day must not precede the first",
        ));
    }

    let mut tx = state.db.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO meeting_excusals (member_id, reason, starts_on, ends_on, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(input.member_id)
    .bind(&reason)
    .bind(starts.to_string())
    .bind(ends.to_string())
    .bind(caller.session.account.id)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;

    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "meeting.excusal_record",
        ("member", input.member_id.to_string()),
        json!({"excusal_id": id, "reason": reason, "starts_on": starts.to_string(), "ends_on": ends.to_string()}),
    )
    .await?;

    tx.commit().await?;
    let excusal = excusals(&state, Some(id), None)
        .await?
        .pop()
        .ok_or_else(|| AppError::internal("excusal missing"))?;
    Ok((StatusCode::CREATED, ApiJson(excusal)))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ExcusalQuery {
    pub member_id: i64,
}

/// Lists a member's excusals, newest first (officers over the member's
/// organization).
#[utoipa::path(get, path = "/api/meeting-excusals", tag = "meetings", params(ExcusalQuery),
    responses((status = 200, body = Vec<Excusal>), (status = 403, body = ErrorBody)))]
async fn list_excusals(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ExcusalQuery>,
) -> AppResult<ApiJson<Vec<Excusal>>> {
    let path = member_path(&state, query.member_id, "member_id").await?;
    if !caller
        .principal
        .can_member(query.member_id, &path, Access::Read)
    {
        return Err(AppError::forbidden());
    }
    Ok(ApiJson(
        excusals(&state, None, Some(query.member_id)).await?,
    ))
}

async fn excusals(
    state: &AppState,
    id: Option<i64>,
    member_id: Option<i64>,
) -> AppResult<Vec<Excusal>> {
    let rows = sqlx::query(
        "SELECT e.id, e.member_id, m.name, e.reason, e.starts_on, e.ends_on, a.display_name, e.created_at, e.revoked_at \
         FROM meeting_excusals e JOIN members m ON m.id = e.member_id JOIN accounts a ON a.id = e.created_by \
         WHERE ($1 = 0 OR e.id = $1) AND ($2 = 0 OR e.member_id = $2) ORDER BY e.id DESC",
    )
    .bind(id.unwrap_or(0))
    .bind(member_id.unwrap_or(0))
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Excusal {
                id: row.try_get("id")?,
                member_id: row.try_get("member_id")?,
                name: row.try_get("name")?,
                reason: row.try_get("reason")?,
                starts_on: row.try_get("starts_on")?,
                ends_on: row.try_get("ends_on")?,
                created_by_name: row.try_get("display_name")?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// Revokes an excusal (officers over the member's organization).
#[utoipa::path(post, path = "/api/meeting-excusals/{id}/revoke", tag = "meetings",
    params(("id" = i64, Path, description = "Excusal id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_excusal(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<StatusCode> {
    let member_id: i64 = sqlx::query_scalar(
        "SELECT member_id FROM meeting_excusals WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| AppError::not_found(("有效的免除记录", "active excusal"), id))?;
    let path = member_path(&state, member_id, "id").await?;
    if !caller.principal.manages(&path) {
        return Err(AppError::forbidden());
    }

    let mut tx = state.db.begin().await?;
    sqlx::query("UPDATE meeting_excusals SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(caller.session.account.id)
        .bind(id)
        .execute(&mut *tx)
        .await?;

    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "meeting.excusal_revoke",
        ("member", member_id.to_string()),
        json!({"excusal_id": id}),
    )
    .await?;

    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
