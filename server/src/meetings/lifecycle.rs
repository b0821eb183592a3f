//! Host actions decided on the live side: lock and end. Each is checked,
//! stored, audited and published in one transaction.

use serde_json::json;
use sqlx::AnyConnection;

use super::store::{self, MeetingRow, MeetingStatus};
use crate::audit::{self, Actor};
use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

fn host_only(meeting: &MeetingRow, member_id: Option<i64>) -> AppResult<()> {
    if member_id == Some(meeting.host_member) {
        Ok(())
    } else {
        Err(AppError::forbidden())
    }
}

/// Locks or unlocks the meeting (host only): a locked meeting admits
/// nobody new from the lobby.
pub async fn set_locked(state: &AppState, meeting_id: i64, by: i64, locked: bool) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    let meeting = store::lock(&mut tx, meeting_id).await?;
    let (member_id, actor) = store::account_actor(&mut tx, by).await?;
    host_only(&meeting, member_id)?;
    if !matches!(
        meeting.status,
        MeetingStatus::Scheduled | MeetingStatus::Live
    ) {
        return Err(AppError::conflict(
            "meeting_closed",
            "会议已结束或已取消",
            "the meeting has ended or been cancelled",
        ));
    }
    sqlx::query("UPDATE meetings SET locked = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(locked))
        .bind(now_ms())
        .bind(meeting_id)
        .execute(&mut *tx)
        .await?;
    let action = if locked {
        "meeting.lock"
    } else {
        "meeting.unlock"
    };

    audit::append(
        &mut tx,
        &state.audit_key,
        &actor,
        action,
        ("meeting", meeting_id.to_string()),
        json!({}),
    )
    .await?;

    let event = store::event(
        &mut tx,
        meeting_id,
        "meeting.locked",
        json!({"id": meeting_id, "locked": locked}),
    )
    .await?;

    tx.commit().await?;
    state.hub.publish([event]);
    tracing::info!(meeting_id, locked, "meeting lock changed");
    Ok(())
}

/// Ends a live meeting (host only): closes every open ballot, closes the
/// attendance intervals and fixes each participant's final status.
pub async fn end(state: &AppState, meeting_id: i64, by: i64) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    let meeting = store::lock(&mut tx, meeting_id).await?;
    let (member_id, actor) = store::account_actor(&mut tx, by).await?;
    host_only(&meeting, member_id)?;
    if meeting.status != MeetingStatus::Live {
        return Err(AppError::conflict(
            "meeting_not_live",
            "只有进行中的会议可以结束",
            "only a live meeting can be ended",
        ));
    }

    let mut events = super::votes::close_all_open(&mut tx, state, &meeting, &actor).await?;
    events.extend(store::drop_pending_leave(&mut tx, &meeting).await?);
    let now = now_ms();
    finish_attendance(&mut tx, &meeting, now).await?;
    let quorum = store::quorum(&mut tx, &meeting).await?;
    sqlx::query(
        "UPDATE meetings SET status = 'ended', ended_at = $1, updated_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(meeting_id)
    .execute(&mut *tx)
    .await?;
    audit_end(&mut tx, state, &actor, meeting_id, &quorum).await?;
    events.push(
        store::event(
            &mut tx,
            meeting_id,
            "meeting.ended",
            json!({"id": meeting_id, "ended_at": now, "quorum": quorum}),
        )
        .await?,
    );

    tx.commit().await?;
    state.hub.publish(events);
    tracing::info!(meeting_id, "meeting ended");
    Ok(())
}

/// Closes open intervals and sets every final status: present for anyone
/// who was in the room or marked present, on leave for an approved leave
/// request, absent otherwise.
async fn finish_attendance(
    conn: &mut AnyConnection,
    meeting: &MeetingRow,
    now: i64,
) -> AppResult<()> {
    sqlx::query(
        "UPDATE meeting_attendance SET left_at = $1 WHERE meeting_id = $2 AND left_at IS NULL",
    )
    .bind(now)
    .bind(meeting.id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM meeting_live_connections WHERE meeting_id = $1")
        .bind(meeting.id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE meeting_participants SET live_connections = 0, final_status = CASE \
         WHEN marked_present_at IS NOT NULL OR EXISTS (SELECT 1 FROM meeting_attendance a \
           WHERE a.meeting_id = meeting_participants.meeting_id AND a.member_id = meeting_participants.member_id) \
           THEN 'present' \
         WHEN EXISTS (SELECT 1 FROM meeting_leave_requests l WHERE l.meeting_id = meeting_participants.meeting_id \
           AND l.member_id = meeting_participants.member_id AND l.status = 'approved') THEN 'on_leave' \
         ELSE 'absent' END WHERE meeting_id = $1",
    )
    .bind(meeting.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn audit_end(
    conn: &mut AnyConnection,
    state: &AppState,
    actor: &Actor,
    meeting_id: i64,
    quorum: &store::Quorum,
) -> AppResult<()> {
    audit::append(
        conn,
        &state.audit_key,
        actor,
        "meeting.end",
        ("meeting", meeting_id.to_string()),
        json!({"required": quorum.required, "present": quorum.present}),
    )
    .await?;
    Ok(())
}
