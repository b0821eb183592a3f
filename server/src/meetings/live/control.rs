//! HTTP resource `/api/meetings/{id}/live`: the live state snapshot, and the host's
//! controls (admit, deny, mute, remove, lock, unlock, end, lower hands). Controls act on
//! the media engine before they are reported, and only the host may use them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use sfu::MediaKind;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cascade::{MediaRequest, forward_control, forward_end};
use super::decisions;
use super::protocol::{LeftReason, LiveMessage, Snapshot};
use super::room::Room;
use super::room_sync::Notice;
use super::signal::{check_open, enter};
use super::{record_joined, record_left, room_id, sfu_error};
use crate::audit;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::meetings::{self, Access, Standing};
use crate::perm::Caller;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(snapshot))
        .routes(routes!(admit))
        .routes(routes!(deny))
        .routes(routes!(mute))
        .routes(routes!(remove))
        .routes(routes!(lock))
        .routes(routes!(unlock))
        .routes(routes!(end))
        .routes(routes!(lower_hands))
}

/// The person a control acts on.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub account_id: i64,
}

/// Mute (`true`) or let speak again (`false`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mute {
    pub account_id: i64,
    pub muted: bool,
}

/// Whose hand to lower; everyone's when absent.
#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct LowerHands {
    #[serde(default)]
    pub account_id: Option<i64>,
}

/// Loads the caller's standing and rejects everyone but the host.
async fn host_access(state: &AppState, caller: &Caller, meeting_id: i64) -> AppResult<Access> {
    let access = meetings::access(state, meeting_id, caller.session.account.id).await?;
    if access.standing != Standing::Host {
        return Err(AppError::forbidden());
    }
    Ok(access)
}

fn not_present(account_id: i64) -> AppError {
    AppError::not_found(("会议中的参会者", "participant in the meeting"), account_id)
}

async fn audit_control(
    state: &AppState,
    caller: &Caller,
    action: &str,
    meeting_id: i64,
    detail: serde_json::Value,
) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        action,
        ("meeting", meeting_id.to_string()),
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Returns the meeting's live state: participants with their media state and hands,
/// and for the host the lobby. Readable by whoever may read the meeting's topic.
#[utoipa::path(get, path = "/api/meetings/{id}/live", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 200, body = Snapshot), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn snapshot(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<Snapshot>> {
    let account = caller.session.account.id;
    let access = meetings::access(&state, id, account).await?;
    // The same rule as for the meeting's topic.
    let meeting = meetings::store::load_db(&state.db, id).await?;
    let allowed = meetings::can_read(&state, &caller.principal, &meeting).await?
        || state.live.is_let_in(id, account).await;
    if !allowed {
        return Err(AppError::forbidden());
    }
    let seq = super::chat::head(&state, id).await?;
    let is_host = access.standing == Standing::Host;
    let snapshot = match state.live.room(id) {
        Some(room) => room.lock().await.snapshot(account, is_host, seq),
        None => Snapshot {
            meeting_id: id,
            locked: access.locked,
            participants: Vec::new(),
            lobby: Vec::new(),
            seq,
            lecture: None,
        },
    };
    Ok(ApiJson(snapshot))
}

/// Admits a person from the lobby, on this node or another, into the media: their
/// waiting page gets `meeting_joined` with the answer to the offer it sent.
#[utoipa::path(post, path = "/api/meetings/{id}/live/admit", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")), request_body = Target,
    responses((status = 204, description = "Admitted"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn admit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(target): ApiJson<Target>,
) -> AppResult<StatusCode> {
    let access = host_access(&state, &caller, id).await?;
    check_open(&access)?;
    let account = target.account_id;
    let request = MediaRequest::Admit {
        meeting_id: id,
        account_id: account,
    };
    let done = admit_here(&state, id, account).await?
        || forward_control(&state.live, id, account, request).await?;
    if !done {
        return Err(waiting_not_found(account));
    }
    audit_control(
        &state,
        &caller,
        "meeting.admit",
        id,
        json!({"account_id": account}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Admits a person waiting in this node's lobby; returns false when they do not wait
/// here.
pub(super) async fn admit_here(state: &AppState, id: i64, account: i64) -> AppResult<bool> {
    let Some(room) = state.live.room(id) else {
        return Ok(false);
    };
    let mut room = room.lock().await;
    if room.closed {
        return Ok(false);
    }
    let Some(waiting) = room.lobby.remove(&account) else {
        return Ok(false);
    };
    room.admitted.insert(account);
    room.removed.remove(&account);
    decisions::save(state, &room, account).await;
    room.notify_lobby();

    let link = waiting.link.clone();
    match enter(state, &mut room, &link, waiting.standing, waiting.offer).await {
        Ok(entered) => {
            let seq = super::chat::head(state, id).await.unwrap_or(0);
            let snapshot = room.snapshot(account, waiting.standing == Standing::Host, seq);
            link.send(&LiveMessage::MeetingJoined {
                id: waiting.request_id,
                meeting_id: id,
                participant: entered.participant.0,
                sdp: entered.sdp,
                snapshot,
            });
            let on_roll = room.is_staff(account);
            drop(room);
            if !entered.replaced && on_roll {
                record_joined(state, id, account).await;
            }
        }
        Err(error) => {
            // The stored offer no longer applies; the page joins again and, being
            // admitted, enters directly.
            tracing::warn!(meeting_id = id, account_id = account, %error, "admitted offer failed");
            link.send(&LiveMessage::MeetingLeft {
                id: None,
                meeting_id: id,
                reason: LeftReason::Disconnected,
            });
        }
    }
    Ok(true)
}

fn waiting_not_found(account_id: i64) -> AppError {
    AppError::not_found(
        ("大厅中等候的人", "person waiting in the lobby"),
        account_id,
    )
}

/// Turns a person in the lobby, on this node or another, away.
#[utoipa::path(post, path = "/api/meetings/{id}/live/deny", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")), request_body = Target,
    responses((status = 204, description = "Denied"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn deny(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(target): ApiJson<Target>,
) -> AppResult<StatusCode> {
    host_access(&state, &caller, id).await?;
    let account = target.account_id;
    let request = MediaRequest::Deny {
        meeting_id: id,
        account_id: account,
    };
    let done = deny_here(&state, id, account).await?
        || forward_control(&state.live, id, account, request).await?;
    if !done {
        return Err(waiting_not_found(account));
    }
    audit_control(
        &state,
        &caller,
        "meeting.deny",
        id,
        json!({"account_id": account}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns away a person waiting in this node's lobby; returns false when they do not
/// wait here.
pub(super) async fn deny_here(state: &AppState, id: i64, account: i64) -> AppResult<bool> {
    let Some(room) = state.live.room(id) else {
        return Ok(false);
    };
    let mut room = room.lock().await;
    let Some(waiting) = room.lobby.remove(&account) else {
        return Ok(false);
    };
    waiting.link.send(&LiveMessage::MeetingLeft {
        id: None,
        meeting_id: id,
        reason: LeftReason::Denied,
    });
    room.notify_lobby();
    Ok(true)
}

/// Mutes a participant: the server forwards none of their audio until the host sets
/// `muted` to false again. The participant cannot lift a host's mute.
#[utoipa::path(post, path = "/api/meetings/{id}/live/mute", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")), request_body = Mute,
    responses((status = 204, description = "Changed"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn mute(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Mute>,
) -> AppResult<StatusCode> {
    host_access(&state, &caller, id).await?;
    let account = body.account_id;
    let done = mute_here(&state, id, account, body.muted).await?
        || forward_control(
            &state.live,
            id,
            account,
            MediaRequest::Mute {
                meeting_id: id,
                account_id: account,
                muted: body.muted,
            },
        )
        .await?;
    if !done {
        return Err(not_present(account));
    }
    let action = if body.muted {
        "meeting.mute"
    } else {
        "meeting.unmute"
    };
    audit_control(&state, &caller, action, id, json!({"account_id": account})).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mutes or unmutes a participant in this node's media; returns false when the
/// participant is not in it.
pub(super) async fn mute_here(
    state: &AppState,
    id: i64,
    account: i64,
    muted: bool,
) -> AppResult<bool> {
    let Some(room) = state.live.room(id) else {
        return Ok(false);
    };
    let mut room = room.lock().await;
    let Some(participant) = room
        .members
        .get(&account)
        .map(|member| member.participant.clone())
    else {
        return Ok(false);
    };
    state
        .live
        .sfu
        .set_blocked(
            &room_id(id),
            participant,
            MediaKind::Audio,
            // Unmuting a lecture's viewer leaves them unable to speak without the floor.
            muted || room.blocks(account, MediaKind::Audio),
        )
        .await
        .map_err(sfu_error)?;
    if muted {
        room.muted.insert(account);
        if room.speaker == Some(account) {
            room.speaker = None;
        }
    } else {
        room.muted.remove(&account);
    }
    decisions::save(state, &room, account).await;
    room.broadcast_participant(account);
    Ok(true)
}

/// Removes a person from the media (or the lobby) at once. They can come back only
/// through the lobby, when the host admits them again.
#[utoipa::path(post, path = "/api/meetings/{id}/live/remove", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")), request_body = Target,
    responses((status = 204, description = "Removed"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(target): ApiJson<Target>,
) -> AppResult<StatusCode> {
    host_access(&state, &caller, id).await?;
    let account = target.account_id;
    if account == caller.session.account.id {
        return Err(AppError::conflict(
            "cannot_remove_host",
            "主持人不能移出自己",
            "the host cannot remove themselves",
        ));
    }
    let request = MediaRequest::Remove {
        meeting_id: id,
        account_id: account,
    };
    let done = remove_here(&state, id, account).await?
        || forward_control(&state.live, id, account, request).await?;
    if !done {
        return Err(not_present(account));
    }
    audit_control(
        &state,
        &caller,
        "meeting.remove",
        id,
        json!({"account_id": account}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a person from this node's media or lobby; returns false when they are in
/// neither. The stored decision reaches the other nodes, so the person waits in the
/// lobby wherever they come back.
pub(super) async fn remove_here(state: &AppState, id: i64, account: i64) -> AppResult<bool> {
    let Some(room) = state.live.room(id) else {
        return Ok(false);
    };
    let mut room = room.lock().await;
    let from = send_away(state, &mut room, account, LeftReason::Removed).await;
    if from == RemovedFrom::Nowhere {
        return Ok(false);
    }
    room.removed.insert(account);
    room.admitted.remove(&account);
    decisions::save(state, &room, account).await;
    drop(room);
    tracing::info!(meeting_id = id, account_id = account, "removed by the host");
    if from == RemovedFrom::Media {
        record_left(state, id, account).await;
    }
    Ok(true)
}

/// Takes a person out of this node's media and lobby, because they joined the meeting
/// again on another node. Returns false when they are in neither.
pub(super) async fn replace_here(state: &AppState, id: i64, account: i64) -> bool {
    let Some(room) = state.live.room(id) else {
        return false;
    };
    let mut room = room.lock().await;
    let from = send_away(state, &mut room, account, LeftReason::Replaced).await;
    drop(room);
    if from == RemovedFrom::Media {
        tracing::info!(
            meeting_id = id,
            account_id = account,
            "replaced by a connection on another node"
        );
        record_left(state, id, account).await;
    }
    from != RemovedFrom::Nowhere
}

/// The part of this node's room that a removed person was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RemovedFrom {
    Nowhere,
    Lobby,
    Media,
}

/// Takes a person out of this node's media and lobby and sends them `meeting_left`
/// with the reason. The caller records the leave from the media once the room is
/// unlocked.
pub(super) async fn send_away(
    state: &AppState,
    room: &mut Room,
    account: i64,
    reason: LeftReason,
) -> RemovedFrom {
    let id = room.meeting_id;
    let message = LiveMessage::MeetingLeft {
        id: None,
        meeting_id: id,
        reason,
    };
    let member = room.take_member(account);
    let waiting = room.lobby.remove(&account);
    if let Some(waiting) = &waiting {
        waiting.link.send(&message);
        room.notify_lobby();
    }
    let Some(member) = member else {
        return match waiting {
            Some(_) => RemovedFrom::Lobby,
            None => RemovedFrom::Nowhere,
        };
    };
    state.live.drop_participant(id, &member.participant).await;
    if room.speaker == Some(account) {
        room.speaker = None;
    }
    member.link.send(&message);
    room.broadcast_left(account, member.participant.0.clone());
    room.forget_lecture_member(account);
    RemovedFrom::Media
}

/// Locks the meeting: from now on everyone but the host and the recorder waits in the
/// lobby. People already in the media stay.
#[utoipa::path(post, path = "/api/meetings/{id}/live/lock", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 204, description = "Locked"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn lock(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<StatusCode> {
    set_locked(&state, &caller, id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unlocks the meeting.
#[utoipa::path(post, path = "/api/meetings/{id}/live/unlock", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 204, description = "Unlocked"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn unlock(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<StatusCode> {
    set_locked(&state, &caller, id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_locked(state: &AppState, caller: &Caller, id: i64, locked: bool) -> AppResult<()> {
    let access = host_access(state, caller, id).await?;
    check_open(&access)?;
    meetings::set_locked(state, id, caller.session.account.id, locked).await?;
    let room = state.live.room_or_load(state, id, locked).await?;
    let mut room = room.lock().await;
    room.locked = locked;
    room.broadcast(&LiveMessage::MeetingLocked {
        meeting_id: id,
        locked,
    });
    drop(room);
    state
        .live
        .room_sync
        .publish(id, Notice::Locked { locked })
        .await;
    Ok(())
}

/// Ends the meeting: everyone's media stops, the lobby empties, and the record's status
/// becomes ended.
#[utoipa::path(post, path = "/api/meetings/{id}/live/end", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 204, description = "Ended"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn end(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<StatusCode> {
    let access = host_access(&state, &caller, id).await?;
    check_open(&access)?;
    let accounts = state.live.close(id, LeftReason::Ended).await;
    for account in accounts {
        record_left(&state, id, account).await;
    }
    forward_end(&state.live, id).await;
    meetings::end(&state, id, caller.session.account.id).await?;
    tracing::info!(meeting_id = id, "meeting ended by the host");
    crate::learning::lectures::meeting_ended(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lowers one person's raised hand, or everyone's, on every node.
#[utoipa::path(post, path = "/api/meetings/{id}/live/hands/lower", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")), request_body = LowerHands,
    responses((status = 204, description = "Lowered"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn lower_hands(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<LowerHands>,
) -> AppResult<StatusCode> {
    host_access(&state, &caller, id).await?;
    lower_hands_here(&state, id, body.account_id).await;
    let notice = Notice::HandsLowered {
        account_id: body.account_id,
    };
    state.live.room_sync.publish(id, notice).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Lowers the raised hands stored in this node's room: one account's, or everyone's
/// when `account_id` is `None`.
pub(super) async fn lower_hands_here(state: &AppState, id: i64, account_id: Option<i64>) {
    let Some(room) = state.live.room(id) else {
        return;
    };
    let mut room = room.lock().await;
    let lowered: Vec<i64> = room
        .hands
        .keys()
        .copied()
        .filter(|account| account_id.is_none_or(|target| target == *account))
        .collect();
    for account in lowered {
        room.hands.remove(&account);
        decisions::save(state, &room, account).await;
        room.broadcast_participant(account);
    }
}
