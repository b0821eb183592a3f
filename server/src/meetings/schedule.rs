//! Scheduling: `POST /api/meetings`, `PUT /api/meetings/{id}` and
//! `POST /api/meetings/{id}/cancel`. Each sends the participants a notice
//! with the calendar entry attached, in the same transaction as the change.
//!
//! Who may schedule, edit and cancel: whoever may manage the organization
//! (its officers and those of its ancestors, as for notices). Edits and
//! cancellation are possible until the meeting starts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ics::{self, AgendaLine};
use super::input::MeetingInput;
use super::roster;
use super::store::{self, MeetingRow, MeetingStatus};
use super::view::{self, MeetingView};
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::files;
use crate::http::ApiJson;
use crate::hub::protocol::Event;
use crate::notices::{AttachmentRef, NewNotice, Priority, Targets, insert_notice};
use crate::org::load_org;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(schedule))
        .routes(routes!(update))
        .routes(routes!(cancel))
}

/// Returns whether the caller may schedule, edit and cancel the
/// organization's meetings.
pub fn can_manage(caller: &Caller, meeting: &MeetingRow) -> bool {
    caller.principal.can_org(&meeting.org_path, Access::Write)
}

/// Checks the organization and the kind against it; returns its path.
async fn check_org(
    conn: &mut AnyConnection,
    caller: &Caller,
    input: &MeetingInput,
) -> AppResult<String> {
    let org = load_org(conn, input.org_id)
        .await
        .map_err(|e| e.field("org_id"))?;
    if !caller.principal.can_org(&org.path, Access::Write) {
        return Err(AppError::forbidden().field("org_id"));
    }
    if !input.kind.held_by(org.kind) {
        return Err(AppError::invalid(
            "kind",
            format!("{}不召开{}", org.kind.zh(), input.kind.zh()),
            format!(
                "a {} does not hold a {} meeting",
                org.kind.as_str(),
                input.kind.as_str()
            ),
        ));
    }
    Ok(org.path)
}

/// Schedules a meeting and sends the invitation.
#[utoipa::path(post, path = "/api/meetings", tag = "meetings", request_body = MeetingInput,
    responses((status = 201, body = MeetingView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn schedule(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<MeetingInput>,
) -> AppResult<(StatusCode, ApiJson<MeetingView>)> {
    let id = schedule_meeting(&state, &caller, input).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(view::build(&state, &caller, id).await?),
    ))
}

/// Checks and stores a new meeting, sends the invitation and returns its id.
pub async fn schedule_meeting(
    state: &AppState,
    caller: &Caller,
    input: MeetingInput,
) -> AppResult<i64> {
    let now = now_ms();
    let input = input.checked(now, true)?;

    let mut tx = state.db.begin().await?;
    let org_path = check_org(&mut tx, caller, &input).await?;
    let seats = roster::resolve(state, caller, &mut tx, &input, &org_path).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO meetings (org_id, kind, title, starts_at, ends_at, place, online, host_member, \
         recorder_member, status, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'scheduled', $10, $11, $11) RETURNING id",
    )
    .bind(input.org_id)
    .bind(input.kind.as_str())
    .bind(&input.title)
    .bind(input.starts_at)
    .bind(input.ends_at)
    .bind(&input.place)
    .bind(i64::from(input.online))
    .bind(input.host_member)
    .bind(input.recorder_member)
    .bind(caller.session.account.id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    store_agenda(&mut tx, id, &input).await?;
    roster::store(&mut tx, id, &seats).await?;
    let meeting = store::load(&mut tx, id).await?;

    let events = invite(state, caller, &mut tx, &meeting, Invitation::New).await?;

    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "meeting.schedule",
        ("meeting", id.to_string()),
        json!({"org_id": input.org_id, "kind": input.kind, "title": input.title,
            "starts_at": input.starts_at, "participants": seats.len()}),
    )
    .await?;

    tx.commit().await?;
    state.hub.publish(events);
    tracing::info!(meeting_id = id, org_id = input.org_id, "meeting scheduled");
    Ok(id)
}

async fn store_agenda(conn: &mut AnyConnection, id: i64, input: &MeetingInput) -> AppResult<()> {
    sqlx::query("DELETE FROM meeting_agenda_items WHERE meeting_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for (position, item) in input.agenda.iter().enumerate() {
        sqlx::query(
            "INSERT INTO meeting_agenda_items (meeting_id, position, title, description, pass_rule) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(position as i64)
        .bind(&item.title)
        .bind(&item.description)
        .bind(item.pass_rule.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Loads a meeting for a change before its start, by someone who may
/// manage it.
async fn lock_for_change(
    conn: &mut AnyConnection,
    caller: &Caller,
    id: i64,
) -> AppResult<MeetingRow> {
    let meeting = store::lock(conn, id).await?;
    if !can_manage(caller, &meeting) {
        return Err(AppError::forbidden());
    }
    if meeting.status != MeetingStatus::Scheduled {
        return Err(AppError::conflict(
            "meeting_not_scheduled",
            "会议已开始、已结束或已取消，不能再修改",
            "the meeting has started, ended or been cancelled and can no longer change",
        ));
    }
    Ok(meeting)
}

/// Replaces a scheduled meeting's details and sends the change to every
/// participant, old and new.
#[utoipa::path(put, path = "/api/meetings/{id}", tag = "meetings", request_body = MeetingInput,
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 200, body = MeetingView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<MeetingInput>,
) -> AppResult<ApiJson<MeetingView>> {
    let now = now_ms();

    let mut tx = state.db.begin().await?;
    let before = lock_for_change(&mut tx, &caller, id).await?;
    if input.org_id != before.org_id {
        return Err(AppError::invalid(
            "org_id",
            "不能把会议移到其他组织",
            "a meeting cannot move to another organization",
        ));
    }
    let start_changed = input.starts_at != before.starts_at;
    let input = input.checked(now, start_changed)?;
    let org_path = check_org(&mut tx, &caller, &input).await?;
    let seats = roster::resolve(&state, &caller, &mut tx, &input, &org_path).await?;
    let previous = participant_ids(&mut tx, id).await?;
    store_details(&mut tx, id, &input, now).await?;
    store_agenda(&mut tx, id, &input).await?;
    roster::store(&mut tx, id, &seats).await?;
    let meeting = store::load(&mut tx, id).await?;

    let removed: Vec<i64> = previous
        .into_iter()
        .filter(|member| !seats.iter().any(|s| s.member_id == *member))
        .collect();

    let mut events = invite(
        &state,
        &caller,
        &mut tx,
        &meeting,
        Invitation::Changed(removed),
    )
    .await?;

    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "meeting.update",
        ("meeting", id.to_string()),
        json!({"title": input.title, "starts_at": input.starts_at, "revision": meeting.revision,
            "participants": seats.len()}),
    )
    .await?;
    events.push(
        store::event(
            &mut tx,
            id,
            "meeting.updated",
            json!({"id": id, "revision": meeting.revision}),
        )
        .await?,
    );

    tx.commit().await?;
    state.hub.publish(events);
    tracing::info!(
        meeting_id = id,
        revision = meeting.revision,
        "meeting updated"
    );
    Ok(ApiJson(view::build(&state, &caller, id).await?))
}

/// Stores an edit's new details and raises the revision.
async fn store_details(
    conn: &mut AnyConnection,
    id: i64,
    input: &MeetingInput,
    now: i64,
) -> AppResult<()> {
    sqlx::query(
        "UPDATE meetings SET kind = $1, title = $2, starts_at = $3, ends_at = $4, place = $5, online = $6, \
         host_member = $7, recorder_member = $8, revision = revision + 1, updated_at = $9 WHERE id = $10",
    )
    .bind(input.kind.as_str())
    .bind(&input.title)
    .bind(input.starts_at)
    .bind(input.ends_at)
    .bind(&input.place)
    .bind(i64::from(input.online))
    .bind(input.host_member)
    .bind(input.recorder_member)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// The reason for the cancellation, sent to the participants.
    pub reason: String,
}

/// Cancels a scheduled meeting and sends the participants a notice.
#[utoipa::path(post, path = "/api/meetings/{id}/cancel", tag = "meetings", request_body = CancelRequest,
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 200, body = MeetingView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<CancelRequest>,
) -> AppResult<ApiJson<MeetingView>> {
    let reason = input.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(AppError::invalid(
            "reason",
            "请填写取消原因（不超过 500 字）",
            "give a reason of at most 500 characters",
        ));
    }
    let now = now_ms();

    let mut tx = state.db.begin().await?;
    lock_for_change(&mut tx, &caller, id).await?;
    sqlx::query(
        "UPDATE meetings SET status = 'cancelled', cancelled_at = $1, cancel_reason = $2, \
         revision = revision + 1, updated_at = $1 WHERE id = $3",
    )
    .bind(now)
    .bind(&reason)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let meeting = store::load(&mut tx, id).await?;

    let mut events = invite(&state, &caller, &mut tx, &meeting, Invitation::Cancelled).await?;
    events.extend(store::drop_pending_leave(&mut tx, &meeting).await?);

    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "meeting.cancel",
        ("meeting", id.to_string()),
        json!({"reason": reason}),
    )
    .await?;
    events.push(
        store::event(
            &mut tx,
            id,
            "meeting.cancelled",
            json!({"id": id, "reason": reason}),
        )
        .await?,
    );

    tx.commit().await?;
    state.hub.publish(events);
    tracing::info!(meeting_id = id, "meeting cancelled");
    Ok(ApiJson(view::build(&state, &caller, id).await?))
}

async fn participant_ids(conn: &mut AnyConnection, id: i64) -> AppResult<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT member_id FROM meeting_participants WHERE meeting_id = $1 ORDER BY member_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?)
}

/// The kind of invitation notice.
enum Invitation {
    New,
    /// Details changed; the members no longer on the roster hear it too.
    Changed(Vec<i64>),
    Cancelled,
}

/// Sends the notice with the calendar entry attached and records it on the
/// meeting.
async fn invite(
    state: &AppState,
    caller: &Caller,
    conn: &mut AnyConnection,
    meeting: &MeetingRow,
    invitation: Invitation,
) -> AppResult<Vec<Event>> {
    let agenda = agenda_titles(conn, meeting.id).await?;
    let lines: Vec<AgendaLine<'_>> = agenda
        .iter()
        .enumerate()
        .map(|(position, title)| AgendaLine {
            position: position as i64,
            title,
        })
        .collect();
    let public_url = &state.config.public_url;
    let calendar = ics::calendar(meeting, &lines, &meeting.host_name, public_url, now_ms());
    let file_name = format!("meeting-{}.ics", meeting.id);
    let file = files::store_generated(
        conn,
        &state.config.store.files_dir(),
        &file_name,
        calendar.into_bytes(),
    )
    .await?;
    let mut member_ids = participant_ids(conn, meeting.id).await?;
    let (prefix, note) = match &invitation {
        Invitation::New => ("会议通知", String::new()),
        Invitation::Changed(removed) => {
            member_ids.extend(removed);
            (
                "会议变更",
                "<p>会议安排已变更，以本通知为准。</p>".to_owned(),
            )
        }
        Invitation::Cancelled => (
            "会议取消",
            format!(
                "<p>会议已取消。原因：{}</p>",
                escape_html(meeting.cancel_reason.as_deref().unwrap_or(""))
            ),
        ),
    };
    let notice = NewNotice {
        title: format!("{prefix}：{}", meeting.title),
        body_html: format!("{note}{}", notice_body(meeting, &agenda)),
        priority: Priority::Normal,
        require_confirm: false,
        targets: Targets {
            org_ids: Vec::new(),
            member_ids,
        },
        attachments: vec![AttachmentRef {
            sha256: file.sha256,
            name: file.name,
        }],
    };
    // The notice checks that the caller may address every participant;
    // its field names point into the notice, so they are renamed here.
    let (notice_id, events) =
        insert_notice(state, caller, conn, notice)
            .await
            .map_err(|error| match error.field.as_deref() {
                Some(field) if field.starts_with("targets.member_ids") => {
                    error.field("participants")
                }
                _ => error,
            })?;
    sqlx::query("UPDATE meetings SET notice_id = $1 WHERE id = $2")
        .bind(notice_id)
        .bind(meeting.id)
        .execute(&mut *conn)
        .await?;
    Ok(events)
}

pub async fn agenda_titles(conn: &mut AnyConnection, id: i64) -> AppResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT title FROM meeting_agenda_items WHERE meeting_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("title"))
        .collect::<Result<_, _>>()?)
}

pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Formats the invitation text: kind, organization, time, place, host,
/// recorder and agenda, with dates as 2026年12月8日 09:30.
fn notice_body(meeting: &MeetingRow, agenda: &[String]) -> String {
    let start = store::china_time(meeting.starts_at);
    let end = store::china_time(meeting.ends_at);
    let end_format = if start.date_naive() == end.date_naive() {
        "%H:%M"
    } else {
        "%Y年%-m月%-d日 %H:%M"
    };
    let mut place = escape_html(&meeting.place);
    if meeting.online {
        if !place.is_empty() {
            place.push('；');
        }
        place.push_str("线上会议（在党务系统中进入）");
    }
    let mut body = format!(
        "<p>{}：{}</p><p>时间：{}至{}</p><p>地点：{}</p><p>主持人：{}　记录人：{}</p>",
        meeting.kind.zh(),
        escape_html(&meeting.org_name),
        start.format("%Y年%-m月%-d日 %H:%M"),
        end.format(end_format),
        place,
        escape_html(&meeting.host_name),
        escape_html(&meeting.recorder_name),
    );
    if !agenda.is_empty() {
        body.push_str("<p>议程：</p><ol>");
        for title in agenda {
            body.push_str(&format!("<li>{}</li>", escape_html(title)));
        }
        body.push_str("</ol>");
    }
    body.push_str("<p>日历文件见附件。</p>");
    body
}
