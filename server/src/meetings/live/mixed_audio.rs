//! Mixed audio for listeners on weak links (弱网模式): instead of one Opus stream per
//! speaker, such a listener receives one stream with everyone but themself.
//!
//! One task per meeting taps the room's audio, decodes each speaker with the recording's
//! [`Mixer`] and every 20 ms builds one full mix. Each listener's frame is that mix minus
//! the listener's own part, so the work per listener is one subtraction and one Opus
//! encode. The frames go out on a local track of the engine that only that listener
//! subscribes to; the server pauses the listener's per-speaker audio meanwhile.

use std::collections::HashMap;
use std::time::Duration;

use opus::{Application, Bitrate, Channels, Encoder};
use sfu::{AudioPacket, LocalCodec, LocalPacket, LocalTrack, LocalTrackOptions, MediaKind};
use sfu::{ParticipantId, TrackId};
use tokio::sync::mpsc;

use super::protocol::{LiveMessage, Mix};
use super::room::Room;
use super::signal::{check_member, member_room, ok};
use super::{Link, room_id, sfu_error};
use crate::error::AppResult;
use crate::meetings::recording::mixer::{FRAME_SAMPLES, Mixer};
use crate::state::AppState;

/// Bit rate of each listener's mix: mono speech for a weak link.
const BITRATE: i32 = 24_000;

/// Largest Opus packet the encoder may produce.
const MAX_PACKET_BYTES: usize = 1500;

/// `mid` of every listener's mixed audio track.
const MIX_MID: &str = "mix";

/// Returns the id and options of a listener's mixed audio track.
pub fn track_of(listener: &ParticipantId) -> (TrackId, LocalTrackOptions) {
    let id = TrackId {
        publisher: ParticipantId::from(format!("{listener}-mix")),
        mid: MIX_MID.to_owned(),
    };
    let options = LocalTrackOptions {
        kind: MediaKind::Audio,
        codec: LocalCodec::opus(),
        rids: Vec::new(),
        auto_subscribe: false,
        tap_audio: false,
    };
    (id, options)
}

/// Returns whether a track is a listener's mixed audio rather than someone's speech.
pub fn is_mix_track(track: &TrackId) -> bool {
    track.mid == MIX_MID && track.publisher.0.ends_with("-mix")
}

enum Command {
    Add {
        listener: ParticipantId,
        track: LocalTrack,
    },
    Remove {
        listener: ParticipantId,
    },
}

/// Handle of a meeting's mixing task; dropping it stops the task and unpublishes every
/// listener's track.
pub struct MixedAudio {
    commands: mpsc::UnboundedSender<Command>,
}

impl MixedAudio {
    /// Starts mixing the audio of `tap` for no listener yet.
    pub fn start(meeting_id: i64, tap: mpsc::Receiver<AudioPacket>) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(meeting_id, tap, receiver));
        Self { commands }
    }

    /// Sends the mix without `listener`'s own voice on `track`.
    pub fn add(&self, listener: ParticipantId, track: LocalTrack) {
        // The task ends only when this handle is dropped or the room's tap closed, and
        // then the track is unpublished with the dropped command.
        let _ = self.commands.send(Command::Add { listener, track });
    }

    /// Stops the listener's mix and unpublishes its track.
    pub fn remove(&self, listener: &ParticipantId) {
        let _ = self.commands.send(Command::Remove {
            listener: listener.clone(),
        });
    }
}

struct Listener {
    track: LocalTrack,
    encoder: Encoder,
    timestamp: u32,
}

async fn run(
    meeting_id: i64,
    mut tap: mpsc::Receiver<AudioPacket>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut mixer = Mixer::default();
    let mut publisher_of: HashMap<u32, ParticipantId> = HashMap::new();
    let mut listeners: HashMap<ParticipantId, Listener> = HashMap::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut decode_errors = 0u64;
    tracing::info!(meeting_id, "mixed audio started");
    loop {
        tokio::select! {
            packet = tap.recv() => {
                let Some(packet) = packet else { break };
                publisher_of.insert(packet.ssrc, packet.publisher);
                if let Err(error) = mixer.push(packet.ssrc, packet.sequence_number, &packet.payload) {
                    decode_errors += 1;
                    if decode_errors.is_power_of_two() {
                        tracing::warn!(meeting_id, ssrc = packet.ssrc, %error, decode_errors, "decoding audio for the mix failed");
                    }
                }
            }
            command = commands.recv() => match command {
                Some(Command::Add { listener, track }) => match new_encoder() {
                    Ok(encoder) => {
                        tracing::info!(meeting_id, %listener, "mixed audio for listener");
                        listeners.insert(listener, Listener { track, encoder, timestamp: 0 });
                    }
                    Err(error) => tracing::error!(meeting_id, %listener, %error, "creating the Opus encoder failed"),
                },
                Some(Command::Remove { listener }) => {
                    if listeners.remove(&listener).is_some() {
                        tracing::info!(meeting_id, %listener, "mixed audio for listener ended");
                    }
                }
                None => break,
            },
            _ = ticks.tick() => {
                if listeners.is_empty() {
                    continue;
                }
                let frame = mixer.mix_frame();
                for (id, listener) in listeners.iter_mut() {
                    let own: Vec<u32> = publisher_of
                        .iter()
                        .filter(|(_, publisher)| *publisher == id)
                        .map(|(ssrc, _)| *ssrc)
                        .collect();
                    let pcm = frame.without(&own);
                    send_frame(meeting_id, id, listener, &pcm);
                }
            }
        }
    }
    tracing::info!(meeting_id, "mixed audio stopped");
}

fn new_encoder() -> Result<Encoder, opus::Error> {
    let mut encoder = Encoder::new(48_000, Channels::Mono, Application::Voip)?;
    encoder.set_bitrate(Bitrate::Bits(BITRATE))?;
    Ok(encoder)
}

fn send_frame(
    meeting_id: i64,
    id: &ParticipantId,
    listener: &mut Listener,
    pcm: &[i16; FRAME_SAMPLES],
) {
    let mut encoded = [0u8; MAX_PACKET_BYTES];
    let len = match listener.encoder.encode(pcm, &mut encoded) {
        Ok(len) => len,
        Err(error) => {
            tracing::warn!(meeting_id, listener = %id, %error, "encoding the mix failed");
            return;
        }
    };
    let packet = LocalPacket {
        layer: 0,
        sequence_number: None,
        timestamp: listener.timestamp,
        marker: false,
        payload: bytes::Bytes::copy_from_slice(&encoded[..len]),
        // A mix is nobody's speech, so it must not take part in speaker detection.
        audio_level: None,
    };
    listener.timestamp = listener.timestamp.wrapping_add(FRAME_SAMPLES as u32);
    if let Err(error) = listener.track.write(packet) {
        tracing::debug!(meeting_id, listener = %id, %error, "writing the mix failed");
    }
}

/// Handles `meeting_mix`: switches the requesting member to mixed audio or back.
pub async fn switch(state: &AppState, link: &Link, body: Mix) -> AppResult<LiveMessage> {
    let room = member_room(state, body.meeting_id)?;
    let mut room = room.lock().await;
    check_member(&room, link)?;
    let account = link.account_id;
    let member = &room.members[&account];
    if member.mixed == body.mixed {
        return Ok(ok(body.id, body.meeting_id));
    }
    let listener = member.participant.clone();
    let engine_room = room_id(body.meeting_id);
    let sfu = &state.live.sfu;
    let speakers = audio_tracks_of_others(&room, account);

    if body.mixed {
        if room.mixed_audio.is_none() {
            let tap = sfu.tap_audio(&engine_room).await.map_err(sfu_error)?;
            room.mixed_audio = Some(MixedAudio::start(body.meeting_id, tap));
        }
        let (track_id, options) = track_of(&listener);
        let started = async {
            let track = sfu
                .publish_local(&engine_room, track_id.clone(), options)
                .await?;
            sfu.subscribe(&engine_room, listener.clone(), track_id)
                .await?;
            Ok::<_, sfu::SfuError>(track)
        }
        .await;
        let track = match started {
            Ok(track) => track,
            Err(error) => {
                room.end_mixed_audio(&listener);
                return Err(sfu_error(error));
            }
        };
        if let Some(mixed_audio) = &room.mixed_audio {
            mixed_audio.add(listener.clone(), track);
        }
        set_paused(state, body.meeting_id, &listener, &speakers, true).await;
    } else {
        set_paused(state, body.meeting_id, &listener, &speakers, false).await;
        room.end_mixed_audio(&listener);
    }
    if let Some(member) = room.members.get_mut(&account) {
        member.mixed = body.mixed;
    }
    tracing::info!(
        meeting_id = body.meeting_id,
        account_id = account,
        mixed = body.mixed,
        "audio mode changed"
    );
    Ok(ok(body.id, body.meeting_id))
}

/// Audio tracks of everyone but `account`: the other members' and those relayed from
/// people on other nodes.
fn audio_tracks_of_others(room: &Room, account: i64) -> Vec<TrackId> {
    let members = room
        .members
        .iter()
        .filter(|(other, _)| **other != account)
        .flat_map(|(_, member)| {
            member
                .tracks
                .iter()
                .filter(|(_, kind)| **kind == MediaKind::Audio)
                .map(|(mid, _)| TrackId {
                    publisher: member.participant.clone(),
                    mid: mid.clone(),
                })
        });
    let remote = room
        .remote
        .iter()
        .filter(|(other, _)| **other != account && !room.members.contains_key(other))
        .flat_map(|(_, (_, entry))| {
            let publisher = ParticipantId::from(entry.participant.as_str());
            entry
                .tracks
                .iter()
                .filter(|track| track.kind == "audio")
                .map(move |track| TrackId {
                    publisher: publisher.clone(),
                    mid: track.mid.clone(),
                })
        });
    members.chain(remote).collect()
}

/// Pauses or resumes a listener's per-speaker audio subscriptions. A subscription that
/// is gone (its publisher left meanwhile) needs nothing; other failures are logged.
pub async fn set_paused(
    state: &AppState,
    meeting_id: i64,
    listener: &ParticipantId,
    tracks: &[TrackId],
    paused: bool,
) {
    for track in tracks {
        match state
            .live
            .sfu
            .set_paused(
                &room_id(meeting_id),
                listener.clone(),
                track.clone(),
                paused,
            )
            .await
        {
            Ok(()) | Err(sfu::SfuError::TrackNotFound(_)) => {}
            Err(error) => {
                tracing::warn!(meeting_id, %listener, %track, %error, "pausing audio for mixed mode failed")
            }
        }
    }
}
