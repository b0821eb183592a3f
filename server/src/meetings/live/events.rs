//! Engine events turned into messages to the pages. Offers go to the one connection that
//! owns the participant. Connections, tracks and the active speaker update the
//! participant list, and a participant that the engine dropped leaves the meeting.

use sfu::forward::codec::VideoCodec;
use sfu::{MediaKind, ParticipantId, SfuEvent};
use tokio::sync::mpsc;

use super::mixed_audio::{is_mix_track, set_paused};
use super::protocol::{LeftReason, LiveMessage};
use super::{meeting_of_participant, meeting_of_room, record_left};
use crate::state::AppState;

/// Handles engine events in order until the engine stops.
pub async fn run(state: AppState, mut events: mpsc::UnboundedReceiver<SfuEvent>) {
    while let Some(event) = events.recv().await {
        handle(&state, event).await;
    }
    tracing::debug!("media event loop ended");
}

async fn handle(state: &AppState, event: SfuEvent) {
    match event {
        SfuEvent::Offer { participant, sdp }
            if super::cascade::parse_relay_participant(&participant).is_some() =>
        {
            tokio::spawn(super::cascade::send_relay_offer(
                state.clone(),
                participant,
                sdp,
            ));
        }
        SfuEvent::Offer { participant, sdp } => {
            with_participant(state, &participant, |room, account| {
                room.members[&account]
                    .link
                    .send(&LiveMessage::MeetingOffer {
                        meeting_id: room.meeting_id,
                        sdp,
                    });
            })
            .await;
        }
        SfuEvent::ParticipantConnected { participant, .. } => {
            with_participant(state, &participant, |room, account| {
                if let Some(member) = room.members.get_mut(&account) {
                    member.connected = true;
                }
                room.broadcast_participant(account);
            })
            .await;
        }
        SfuEvent::ParticipantDisconnected { participant, .. } => {
            state.live.cascade.relay_peer_gone(&participant);
            disconnected(state, &participant).await;
        }
        SfuEvent::TrackPublished { track, .. } => {
            let publisher = track.id.publisher.clone();
            let Some(meeting_id) = meeting_of_participant(&publisher) else {
                return;
            };
            let Some(room) = state.live.room(meeting_id) else {
                return;
            };
            let mut mixed_listeners = Vec::new();
            {
                let mut room = room.lock().await;
                if let Some(account) = room.account_of(&publisher) {
                    if let Some(member) = room.members.get_mut(&account) {
                        member.tracks.insert(track.id.mid.clone(), track.kind);
                    }
                    room.broadcast_participant(account);
                }
                // A member's speech and speech relayed from another node both reach
                // the mix; the mixes themselves are the only audio left out.
                if track.kind == MediaKind::Audio && !is_mix_track(&track.id) {
                    mixed_listeners = room
                        .members
                        .values()
                        .filter(|member| member.mixed && member.participant != publisher)
                        .map(|member| member.participant.clone())
                        .collect();
                }
            }
            // Listeners in mixed mode hear this speaker in their mix only.
            for listener in mixed_listeners {
                set_paused(
                    state,
                    meeting_id,
                    &listener,
                    std::slice::from_ref(&track.id),
                    true,
                )
                .await;
            }
        }
        SfuEvent::TrackUnpublished { track, .. } => {
            with_participant(state, &track.publisher, |room, account| {
                if let Some(member) = room.members.get_mut(&account) {
                    member.tracks.remove(&track.mid);
                    member.sources.remove(&track.mid);
                }
                room.broadcast_participant(account);
            })
            .await;
        }
        SfuEvent::TrackUndecodable {
            subscriber,
            track,
            codec,
            ..
        } => {
            with_participant(state, &subscriber, |room, account| {
                tracing::info!(meeting_id = room.meeting_id, %subscriber, %track, ?codec, "video track undecodable for a participant");
                room.members[&account]
                    .link
                    .send(&LiveMessage::MeetingUndecodable {
                        meeting_id: room.meeting_id,
                        publisher: track.publisher.0.clone(),
                        mid: track.mid.clone(),
                        codec: codec_name(codec),
                    });
            })
            .await;
        }
        SfuEvent::ActiveSpeakerChanged { room, participant } => {
            let Some(meeting_id) = meeting_of_room(&room) else {
                return;
            };
            let Some(room) = state.live.room(meeting_id) else {
                return;
            };
            let mut room = room.lock().await;
            // Speech relayed from another node carries its audio level too, so the
            // speaker may be someone on another node.
            let Some(account) = room
                .account_of(&participant)
                .or_else(|| room.remote_account_of(&participant))
            else {
                return;
            };
            room.speaker = Some(account);
            room.entries_changed();
            room.broadcast(&LiveMessage::MeetingSpeaker {
                meeting_id,
                account_id: account,
            });
        }
        _ => {}
    }
}

/// Returns the usual name of a video codec, as in its MIME type.
fn codec_name(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::Vp8 => "VP8",
        VideoCodec::Vp9 => "VP9",
        VideoCodec::H264 => "H264",
        VideoCodec::Av1 => "AV1",
    }
}

/// Runs `work` on the room and account of a current participant; events about a
/// participant that was replaced or removed meanwhile are dropped.
async fn with_participant(
    state: &AppState,
    participant: &ParticipantId,
    work: impl FnOnce(&mut super::room::Room, i64),
) {
    let Some(meeting_id) = meeting_of_participant(participant) else {
        return;
    };
    let Some(room) = state.live.room(meeting_id) else {
        return;
    };
    let mut room = room.lock().await;
    if let Some(account) = room.account_of(participant) {
        work(&mut room, account);
    }
}

/// Removes a participant that the engine dropped (failed, timed out or never connected).
async fn disconnected(state: &AppState, participant: &ParticipantId) {
    let Some(meeting_id) = meeting_of_participant(participant) else {
        return;
    };
    let Some(room) = state.live.room(meeting_id) else {
        return;
    };
    let mut room = room.lock().await;
    let Some(account) = room.account_of(participant) else {
        return;
    };
    let Some(member) = room.take_member(account) else {
        return;
    };
    if room.speaker == Some(account) {
        room.speaker = None;
    }
    member.link.send(&LiveMessage::MeetingLeft {
        id: None,
        meeting_id,
        reason: LeftReason::Disconnected,
    });
    room.broadcast_left(account, participant.0.clone());
    room.forget_lecture_member(account);
    state.live.close_engine_room_if_empty(&mut room).await;
    drop(room);
    tracing::info!(meeting_id, account_id = account, %participant, "media connection lost");
    // Attendance is written off the event loop, so a slow database never delays offers.
    let state = state.clone();
    tokio::spawn(async move { record_left(&state, meeting_id, account).await });
}
