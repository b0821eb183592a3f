//! The `meeting_*` requests of the hub WebSocket: joining (directly or through the
//! lobby), offers and answers, leaving, layer choice, media state, hands and chat. Each
//! request is answered by one message to the requesting connection.

use std::sync::Arc;

use sfu::MediaKind;

use super::decisions;
use super::lecture::{LectureRole, check_receive_only};
use super::protocol::{
    Chat, Hand, Join, Layer, Leave, LeftReason, LiveMessage, MediaState, Mix, Sdp,
};
use super::room::{Entry, Member, Room, Waiting, entry};
use super::{Link, record_joined, record_left, room_id, sfu_error};
use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::hub::registry::ConnId;
use crate::meetings::{self, Access, MeetingStatus, Standing};
use crate::state::AppState;

/// A live meeting request from the hub.
#[derive(Debug)]
pub enum Request {
    Join(Join),
    Offer(Sdp),
    Answer(Sdp),
    Leave(Leave),
    Layer(Layer),
    Media(MediaState),
    Mix(Mix),
    Hand(Hand),
    Chat(Chat),
}

impl Request {
    /// Returns the client's request id, which the reply echoes.
    pub fn id(&self) -> Option<String> {
        match self {
            Self::Join(body) => body.id.clone(),
            Self::Offer(body) | Self::Answer(body) => body.id.clone(),
            Self::Leave(body) => body.id.clone(),
            Self::Layer(body) => body.id.clone(),
            Self::Media(body) => body.id.clone(),
            Self::Mix(body) => body.id.clone(),
            Self::Hand(body) => body.id.clone(),
            Self::Chat(body) => body.id.clone(),
        }
    }

    pub fn meeting_id(&self) -> i64 {
        match self {
            Self::Join(body) => body.meeting_id,
            Self::Offer(body) | Self::Answer(body) => body.meeting_id,
            Self::Leave(body) => body.meeting_id,
            Self::Layer(body) => body.meeting_id,
            Self::Media(body) => body.meeting_id,
            Self::Mix(body) => body.meeting_id,
            Self::Hand(body) => body.meeting_id,
            Self::Chat(body) => body.meeting_id,
        }
    }
}

/// Applies one request from a connection and returns the reply for it.
pub async fn handle(state: &AppState, link: &Link, request: Request) -> AppResult<LiveMessage> {
    match request {
        Request::Join(body) => join(state, link, body).await,
        Request::Offer(body) => offer(state, link, body).await,
        Request::Answer(body) => answer(state, link, body).await,
        Request::Leave(body) => {
            leave_connection(state, body.meeting_id, link.conn_id).await;
            Ok(LiveMessage::MeetingLeft {
                id: body.id,
                meeting_id: body.meeting_id,
                reason: LeftReason::Left,
            })
        }
        Request::Layer(body) => layer(state, link, body).await,
        Request::Media(body) => media(state, link, body).await,
        Request::Mix(body) => super::mixed_audio::switch(state, link, body).await,
        Request::Hand(body) => hand(state, link, body).await,
        Request::Chat(body) => super::chat::send(state, link, body).await,
    }
}

/// Rejects meetings that are over.
pub fn check_open(access: &Access) -> AppResult<()> {
    match access.status {
        MeetingStatus::Scheduled | MeetingStatus::Live => Ok(()),
        MeetingStatus::Ended => Err(ended()),
        MeetingStatus::Cancelled => Err(AppError::conflict(
            "meeting_cancelled",
            "会议已取消",
            "the meeting was cancelled",
        )),
    }
}

fn ended() -> AppError {
    AppError::conflict("meeting_ended", "会议已结束", "the meeting has ended")
}

fn check_sdp(sdp: &str) -> AppResult<()> {
    if sdp.trim().is_empty() {
        return Err(AppError::invalid(
            "sdp",
            "缺少 SDP",
            "sdp is missing or empty",
        ));
    }
    Ok(())
}

fn not_in_meeting(meeting_id: i64) -> AppError {
    AppError::conflict(
        "not_in_meeting",
        format!("此连接未加入会议 {meeting_id} 的音视频"),
        format!("this connection has not joined the media of meeting {meeting_id}"),
    )
}

async fn join(state: &AppState, link: &Link, body: Join) -> AppResult<LiveMessage> {
    check_sdp(&body.sdp)?;
    let access = meetings::access(state, body.meeting_id, link.account_id).await?;
    check_open(&access)?;
    let seq = super::chat::head(state, access.meeting_id).await?;
    let room = state
        .live
        .room_or_load(state, access.meeting_id, access.locked)
        .await?;
    let facts = room
        .lock()
        .await
        .lecture
        .as_ref()
        .map(|lecture| lecture.facts.clone());
    let role = match &facts {
        Some(facts) => {
            Some(crate::learning::lectures::role_of(state, facts, &link.principal).await?)
        }
        None => None,
    };
    let mut room = room.lock().await;
    if room.closed {
        return Err(ended());
    }
    room.locked = access.locked;

    let account = link.account_id;
    let entry = match role {
        // A lecture has no lobby; only someone the host removed waits there.
        Some(_) if room.removed.contains(&account) => Entry::Lobby,
        Some(_) => Entry::Direct,
        None => entry(access.standing, room.locked, &room.decisions(account)),
    };
    if let Some(role) = role {
        if role != LectureRole::Presenter {
            let floor = room.lecture.as_ref().and_then(|l| l.floor) == Some(account);
            check_receive_only(&body.sdp, floor)?;
        }
        if let Some(lecture) = room.lecture.as_mut() {
            lecture.roles.insert(account, role);
        }
    }
    if entry == Entry::Lobby {
        let waiting = Waiting {
            link: link.clone(),
            standing: access.standing,
            offer: body.sdp,
            request_id: body.id.clone(),
            since: now_ms(),
        };
        if let Some(earlier) = room.lobby.insert(account, waiting)
            && earlier.link.conn_id != link.conn_id
        {
            earlier.link.send(&LiveMessage::MeetingLeft {
                id: None,
                meeting_id: access.meeting_id,
                reason: LeftReason::Replaced,
            });
        }
        room.notify_lobby();
        tracing::info!(
            meeting_id = access.meeting_id,
            account_id = account,
            "waiting in the lobby"
        );
        return Ok(LiveMessage::MeetingWaiting {
            id: body.id,
            meeting_id: access.meeting_id,
        });
    }

    let entered = enter(state, &mut room, link, access.standing, body.sdp).await?;
    let snapshot = room.snapshot(account, access.standing == Standing::Host, seq);
    // As on one node, the new connection replaces one on another node.
    if room.remote.contains_key(&account) {
        let state = state.clone();
        let meeting_id = access.meeting_id;
        tokio::spawn(async move {
            let request = super::cascade::MediaRequest::Replace {
                meeting_id,
                account_id: account,
            };
            let forwarded =
                super::cascade::forward_control(&state.live, meeting_id, account, request).await;
            if let Err(error) = forwarded {
                tracing::warn!(meeting_id, account_id = account, %error, "replacing a connection on another node failed");
            }
        });
    }
    // A lecture's viewers are counted by their study time, not on the meeting's
    // roll, so hundreds of them do not each send an attendance event to everyone.
    let on_roll = room.is_staff(account);
    drop(room);
    if !entered.replaced && on_roll {
        record_joined(state, access.meeting_id, account).await;
    }
    Ok(LiveMessage::MeetingJoined {
        id: body.id,
        meeting_id: access.meeting_id,
        participant: entered.participant.0,
        sdp: entered.sdp,
        snapshot,
    })
}

/// A person put into the media.
pub struct Entered {
    pub participant: sfu::ParticipantId,
    /// SDP answer to the person's offer.
    pub sdp: String,
    /// The person was present already, through an earlier participant that this one
    /// replaced; attendance then goes on unchanged.
    pub replaced: bool,
}

/// Puts a person into the media with their offer, replacing their earlier participant.
pub async fn enter(
    state: &AppState,
    room: &mut Room,
    link: &Link,
    standing: Standing,
    offer: String,
) -> AppResult<Entered> {
    let live = &state.live;
    let meeting_id = room.meeting_id;
    let account = link.account_id;
    live.ensure_engine_room(room).await?;

    let earlier = room.take_member(account);
    let replaced = earlier.is_some();
    if let Some(earlier) = earlier {
        live.drop_participant(meeting_id, &earlier.participant)
            .await;
        if earlier.link.conn_id != link.conn_id {
            earlier.link.send(&LiveMessage::MeetingLeft {
                id: None,
                meeting_id,
                reason: LeftReason::Replaced,
            });
        }
        room.broadcast_left(account, earlier.participant.0);
    }
    if room.lobby.remove(&account).is_some() {
        room.notify_lobby();
    }

    let participant = live.new_participant(meeting_id, account);
    let room_id = room_id(meeting_id);
    let joined = live.sfu.join(&room_id, participant.clone(), offer).await;
    let answer = match joined {
        Ok(answer) => answer,
        Err(error) => {
            if replaced {
                // The earlier participant is gone and no new one took its place.
                record_left(state, meeting_id, account).await;
            }
            return Err(sfu_error(error));
        }
    };
    // Blocked before the answer leaves, so no audio of a muted person, and no media of
    // a lecture's viewer, is ever forwarded.
    for kind in [MediaKind::Audio, MediaKind::Video] {
        let blocked = room.blocks(account, kind)
            || (kind == MediaKind::Audio && room.muted.contains(&account));
        if !blocked {
            continue;
        }
        if let Err(error) = live
            .sfu
            .set_blocked(&room_id, participant.clone(), kind, true)
            .await
        {
            live.drop_participant(meeting_id, &participant).await;
            if replaced {
                record_left(state, meeting_id, account).await;
            }
            return Err(sfu_error(error));
        }
    }
    room.members.insert(
        account,
        Member {
            participant: participant.clone(),
            link: link.clone(),
            standing,
            connected: false,
            microphone: false,
            camera: false,
            screen: false,
            tracks: Default::default(),
            sources: Default::default(),
            mixed: false,
        },
    );
    room.broadcast_participant(account);
    live.remote_changed(meeting_id);
    tracing::info!(meeting_id, account_id = account, %participant, replaced, "joined the media");
    Ok(Entered {
        participant,
        sdp: answer,
        replaced,
    })
}

/// Takes a connection out of a meeting's media or lobby, if it is there, and sends the
/// change to the others.
pub async fn leave_connection(state: &AppState, meeting_id: i64, conn_id: ConnId) {
    let Some(room) = state.live.room(meeting_id) else {
        return;
    };
    let mut room = room.lock().await;
    if let Some((&account, _)) = room.lobby.iter().find(|(_, w)| w.link.conn_id == conn_id) {
        room.lobby.remove(&account);
        room.notify_lobby();
    }
    let Some(account) = room
        .members
        .iter()
        .find(|(_, member)| member.link.conn_id == conn_id)
        .map(|(account, _)| *account)
    else {
        return;
    };
    let Some(member) = room.take_member(account) else {
        return;
    };
    if room.speaker == Some(account) {
        room.speaker = None;
    }
    state
        .live
        .drop_participant(meeting_id, &member.participant)
        .await;
    room.broadcast_left(account, member.participant.0);
    room.forget_lecture_member(account);
    state.live.close_engine_room_if_empty(&mut room).await;
    drop(room);
    tracing::info!(meeting_id, account_id = account, "left the media");
    record_left(state, meeting_id, account).await;
}

/// Runs `work` on the member entry of the requesting connection.
pub(super) async fn with_member<T>(
    state: &AppState,
    link: &Link,
    meeting_id: i64,
    work: impl FnOnce(&mut Room, i64) -> T,
) -> AppResult<T> {
    let room = member_room(state, meeting_id)?;
    let mut room = room.lock().await;
    check_member(&room, link)?;
    Ok(work(&mut room, link.account_id))
}

pub(super) fn member_room(
    state: &AppState,
    meeting_id: i64,
) -> AppResult<Arc<tokio::sync::Mutex<Room>>> {
    state
        .live
        .room(meeting_id)
        .ok_or_else(|| not_in_meeting(meeting_id))
}

/// Checks that the requesting connection is the one in the media for its account.
pub(super) fn check_member(room: &Room, link: &Link) -> AppResult<()> {
    let present = room
        .members
        .get(&link.account_id)
        .is_some_and(|member| member.link.conn_id == link.conn_id);
    if present {
        Ok(())
    } else {
        Err(not_in_meeting(room.meeting_id))
    }
}

/// Finds the requesting connection's engine participant.
async fn participant_of(
    state: &AppState,
    link: &Link,
    meeting_id: i64,
) -> AppResult<sfu::ParticipantId> {
    with_member(state, link, meeting_id, |room, account| {
        room.members[&account].participant.clone()
    })
    .await
}

async fn offer(state: &AppState, link: &Link, body: Sdp) -> AppResult<LiveMessage> {
    check_sdp(&body.sdp)?;
    let (participant, receive_only) = with_member(state, link, body.meeting_id, |room, account| {
        // In a lecture only presenters publish freely; the floor holder may send audio.
        let receive_only = room
            .blocks(account, MediaKind::Video)
            .then(|| !room.blocks(account, MediaKind::Audio));
        (room.members[&account].participant.clone(), receive_only)
    })
    .await?;
    if let Some(audio_allowed) = receive_only {
        check_receive_only(&body.sdp, audio_allowed)?;
    }
    let sdp = state
        .live
        .sfu
        .renegotiate(&room_id(body.meeting_id), participant, body.sdp)
        .await
        .map_err(sfu_error)?;
    Ok(LiveMessage::MeetingAnswer {
        id: body.id,
        meeting_id: body.meeting_id,
        sdp,
    })
}

async fn answer(state: &AppState, link: &Link, body: Sdp) -> AppResult<LiveMessage> {
    check_sdp(&body.sdp)?;
    let participant = participant_of(state, link, body.meeting_id).await?;
    state
        .live
        .sfu
        .accept_answer(&room_id(body.meeting_id), participant, body.sdp)
        .await
        .map_err(sfu_error)?;
    Ok(ok(body.id, body.meeting_id))
}

async fn layer(state: &AppState, link: &Link, body: Layer) -> AppResult<LiveMessage> {
    let subscriber = participant_of(state, link, body.meeting_id).await?;
    let publisher = sfu::ParticipantId::from(body.publisher.clone());
    if super::meeting_of_participant(&publisher) != Some(body.meeting_id) {
        return Err(AppError::invalid(
            "publisher",
            format!("会议中没有参会者 {}", body.publisher),
            format!("no participant {} in this meeting", body.publisher),
        ));
    }
    let track = sfu::TrackId {
        publisher,
        mid: body.mid.clone(),
    };
    let room = room_id(body.meeting_id);
    let sfu = &state.live.sfu;
    if let Some(max_layer) = body.max_layer {
        sfu.set_max_layer(&room, subscriber.clone(), track.clone(), max_layer)
            .await
            .map_err(sfu_error)?;
    }
    if let Some(paused) = body.paused {
        sfu.set_paused(&room, subscriber, track, paused)
            .await
            .map_err(sfu_error)?;
    }
    Ok(ok(body.id, body.meeting_id))
}

async fn media(state: &AppState, link: &Link, body: MediaState) -> AppResult<LiveMessage> {
    with_member(state, link, body.meeting_id, |room, account| {
        let member = room.members.get_mut(&account).expect("member checked");
        member.microphone = body.microphone;
        member.camera = body.camera;
        member.screen = body.screen;
        member.sources.extend(body.sources);
        room.broadcast_participant(account);
    })
    .await?;
    Ok(ok(body.id, body.meeting_id))
}

async fn hand(state: &AppState, link: &Link, body: Hand) -> AppResult<LiveMessage> {
    let room = member_room(state, body.meeting_id)?;
    let mut room = room.lock().await;
    check_member(&room, link)?;

    let account = link.account_id;
    let changed = match (body.raised, room.hands.contains_key(&account)) {
        (true, false) => room.hands.insert(account, now_ms()).is_none(),
        (false, true) => room.hands.remove(&account).is_some(),
        _ => false,
    };
    if changed {
        decisions::save(state, &room, account).await;
        room.broadcast_participant(account);
    }
    Ok(ok(body.id, body.meeting_id))
}

pub(super) fn ok(id: Option<String>, meeting_id: i64) -> LiveMessage {
    LiveMessage::MeetingOk {
        id,
        meeting_id,
        seq: None,
    }
}

/// Checks that the requesting connection is in the media, for chat.
pub async fn require_present(state: &AppState, link: &Link, meeting_id: i64) -> AppResult<()> {
    with_member(state, link, meeting_id, |_, _| ()).await
}
