//! The receiving end of a relay between two engines.
//!
//! A relay carries tracks published on an origin engine to this engine, once per
//! track however many participants here subscribe. On the origin the relay is a
//! participant added with [`crate::Sfu::join_relay`], which subscribes only to the
//! tracks asked for with [`crate::Sfu::subscribe`]. Here it is a [`RelayReceiver`]: a
//! WebRTC peer connection with a full ICE agent, because the origin engine is
//! ICE-lite and two ICE-lite ends never start connectivity checks. Media is
//! DTLS-SRTP like a browser's.
//!
//! Every track that arrives is published in this engine's room with
//! [`crate::Sfu::publish_local`] under its id on the origin (publisher and `mid`),
//! and its packets are written whole. The origin sends each simulcast layer on a
//! sender of its own, and the layers become one local track with as many layers, so
//! this engine still chooses a layer per subscriber. Keyframe requests from the local
//! track go back to the origin as PLI on the layer's stream, and the origin engine
//! requests a keyframe from the publisher.
//!
//! Signaling is the caller's: [`RelayReceiver::start`] returns the first offer for
//! the origin's `join_relay`, [`RelayReceiver::accept_answer`] applies its answer, and
//! [`RelayReceiver::answer`] answers the offers the origin engine sends when the
//! relay's subscriptions change.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpHeaderExtensionCapability, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionState,
};

use crate::api::Sfu;
use crate::error::SfuError;
use crate::ids::{MediaKind, ParticipantId, Rid, RoomId, TrackId};
use crate::local::{LocalCodec, LocalPacket, LocalTrack, LocalTrackOptions, LocalTrackWriter};
use crate::sdp::AUDIO_LEVEL_URI;

/// Counts of what one relay received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Tracks published here from the relay now.
    pub tracks: usize,
    /// RTP packets received over the relay since it started.
    pub packets: u64,
}

/// State shared between the handle and the peer connection's callbacks.
struct Shared {
    sfu: Sfu,
    room: RoomId,
    packets: AtomicU64,
    failed: AtomicBool,
    connected: AtomicBool,
    /// Each relayed track by its id on the origin.
    tracks: Mutex<HashMap<TrackId, Arc<Relayed>>>,
    /// Id of the audio level header extension in this end's latest description.
    audio_level_id: Mutex<Option<u8>>,
}

impl Shared {
    /// Reads the audio level extension's id from this end's description. One id serves
    /// every audio section, since all sections share one bundled transport.
    fn learn_audio_level_id(&self, sdp: &str) {
        let id = crate::sdp::summarize(sdp).ok().and_then(|sections| {
            sections
                .iter()
                .filter(|section| section.kind == MediaKind::Audio)
                .find_map(|section| section.extension_id(AUDIO_LEVEL_URI))
        });
        *self
            .audio_level_id
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = id;
    }

    fn audio_level_id(&self) -> Option<u8> {
        *self
            .audio_level_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn tracks(&self) -> std::sync::MutexGuard<'_, HashMap<TrackId, Arc<Relayed>>> {
        // Every critical section is one lookup, insert, removal or count.
        self.tracks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The remote track of one layer and its SSRC.
type LayerSource = (Arc<dyn TrackRemote>, u32);

/// One relayed track: its layers arrive as separate remote tracks, each read by a task
/// of its own, and are published here as one local track with that many layers.
struct Relayed {
    layer_count: usize,
    /// Remote track and SSRC of each layer that sent a packet, for keyframe requests.
    layers: Mutex<HashMap<usize, LayerSource>>,
    /// Writer of the local track once it is published; the lock also keeps two layers
    /// from publishing it twice.
    writer: tokio::sync::Mutex<Option<LocalTrackWriter>>,
    /// Layer readers still running.
    live_layers: AtomicUsize,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Relayed {
    fn layers(&self) -> std::sync::MutexGuard<'_, HashMap<usize, LayerSource>> {
        self.layers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops every task, which unpublishes the local track.
    fn abort(&self) {
        for task in self.tasks().drain(..) {
            task.abort();
        }
    }
}

/// The receiving end of a relay from an origin engine into one room of this engine.
/// Closing it, or dropping it, unpublishes every track it brought.
pub struct RelayReceiver {
    pc: Box<dyn PeerConnection>,
    shared: Arc<Shared>,
}

impl RelayReceiver {
    /// Creates the peer connection, bound to `bind_ip` on a free UDP port, and returns
    /// it with the offer for the origin's [`Sfu::join_relay`]. The offer receives audio
    /// in one section and sends nothing. The origin adds a section per relayed track.
    pub async fn start(
        sfu: Sfu,
        room: RoomId,
        bind_ip: IpAddr,
    ) -> Result<(RelayReceiver, String), SfuError> {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs()?;
        // The origin passes each packet's audio level on, so that this engine detects
        // the active speaker among the relayed speakers too.
        media_engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: AUDIO_LEVEL_URI.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )?;
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
        let shared = Arc::new(Shared {
            sfu,
            room,
            packets: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            tracks: Mutex::new(HashMap::new()),
            audio_level_id: Mutex::new(None),
        });
        let handler = Handler {
            shared: Arc::clone(&shared),
        };
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(handler) as Arc<dyn PeerConnectionEventHandler>)
            .with_udp_addrs(vec![SocketAddr::new(bind_ip, 0).to_string()])
            .build()
            .await
            .map_err(webrtc_error)?;
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            ..Default::default()
        };
        pc.add_transceiver_from_kind(RtpCodecKind::Audio, Some(init))
            .await
            .map_err(webrtc_error)?;
        let offer = pc.create_offer(None).await.map_err(webrtc_error)?;
        pc.set_local_description(offer.clone())
            .await
            .map_err(webrtc_error)?;
        shared.learn_audio_level_id(&offer.sdp);
        let relay = RelayReceiver {
            pc: Box::new(pc),
            shared,
        };
        Ok((relay, offer.sdp))
    }

    /// Applies the origin's answer to the first offer.
    pub async fn accept_answer(&self, sdp: String) -> Result<(), SfuError> {
        let answer = RTCSessionDescription::answer(sdp)?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(webrtc_error)
    }

    /// Answers an offer from the origin engine, sent when the relay's subscriptions
    /// changed.
    pub async fn answer(&self, sdp: String) -> Result<String, SfuError> {
        let offer = RTCSessionDescription::offer(sdp)?;
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(webrtc_error)?;
        let answer = self.pc.create_answer(None).await.map_err(webrtc_error)?;
        self.pc
            .set_local_description(answer.clone())
            .await
            .map_err(webrtc_error)?;
        self.shared.learn_audio_level_id(&answer.sdp);
        Ok(answer.sdp)
    }

    /// Unpublishes one relayed track here, for example after the origin was asked to
    /// stop sending it. A track that arrives again is published again.
    ///
    /// NOTE: a section that the origin removes in a renegotiation does not end the
    /// remote track in the `webrtc` 0.21 client, so the caller must drop the track.
    pub fn drop_track(&self, track: &TrackId) {
        if let Some(relayed) = self.shared.tracks().remove(track) {
            relayed.abort();
        }
    }

    /// Returns whether ICE and DTLS completed.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// Returns whether the connection failed or closed. A failed relay must be started
    /// again.
    pub fn is_failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// Returns the counts of tracks and packets.
    pub fn stats(&self) -> RelayStats {
        RelayStats {
            tracks: self.shared.tracks().len(),
            packets: self.shared.packets.load(Ordering::Relaxed),
        }
    }

    /// Closes the connection and unpublishes every relayed track.
    pub async fn close(&self) {
        self.abort_tracks();
        if let Err(error) = self.pc.close().await {
            tracing::debug!(room = %self.shared.room, %error, "closing relay connection failed");
        }
    }

    fn abort_tracks(&self) {
        for (_, relayed) in self.shared.tracks().drain() {
            relayed.abort();
        }
    }
}

impl Drop for RelayReceiver {
    fn drop(&mut self) {
        self.abort_tracks();
    }
}

struct Handler {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(room = %self.shared.room, ?state, "relay connection state");
        match state {
            RTCPeerConnectionState::Connected => {
                self.shared.connected.store(true, Ordering::Release);
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                self.shared.failed.store(true, Ordering::Release);
            }
            _ => {}
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let publisher = track.stream_id().await.to_string();
        let sender_track = track.track_id().await.to_string();
        let Some((mid, layer, layer_count)) = parse_sender_track(&publisher, &sender_track) else {
            tracing::warn!(room = %self.shared.room, %publisher, %sender_track, "relayed track without a track id of the origin");
            return;
        };
        let id = TrackId {
            publisher: ParticipantId::from(publisher.as_str()),
            mid: mid.to_owned(),
        };
        let kind = match track.kind().await {
            RtpCodecKind::Video => MediaKind::Video,
            _ => MediaKind::Audio,
        };
        let relayed = {
            let mut tracks = self.shared.tracks();
            let relayed = tracks.entry(id.clone()).or_insert_with(|| {
                Arc::new(Relayed {
                    layer_count,
                    layers: Mutex::new(HashMap::new()),
                    writer: tokio::sync::Mutex::new(None),
                    live_layers: AtomicUsize::new(0),
                    tasks: Mutex::new(Vec::new()),
                })
            });
            Arc::clone(relayed)
        };
        relayed.live_layers.fetch_add(1, Ordering::AcqRel);
        let shared = Arc::clone(&self.shared);
        let task_relayed = Arc::clone(&relayed);
        let task = tokio::spawn(async move {
            relay_layer(&shared, &task_relayed, track, &id, kind, layer).await;
            if task_relayed.live_layers.fetch_sub(1, Ordering::AcqRel) == 1 {
                tracing::info!(room = %shared.room, track = %id, "relayed track ended");
                let mut tracks = shared.tracks();
                if tracks
                    .get(&id)
                    .is_some_and(|r| Arc::ptr_eq(r, &task_relayed))
                {
                    tracks.remove(&id);
                }
                drop(tracks);
                task_relayed.abort();
            }
        });
        relayed.tasks().push(task);
    }
}

/// Parses a sender's track id from the origin engine: `{publisher}-{mid}` for a track
/// without simulcast, `{publisher}-{mid}@{layer}/{layers}` for one layer of a simulcast
/// track. Returns the `mid`, the layer and the number of layers.
fn parse_sender_track<'a>(
    publisher: &str,
    sender_track: &'a str,
) -> Option<(&'a str, usize, usize)> {
    let rest = sender_track.strip_prefix(publisher)?.strip_prefix('-')?;
    let Some((mid, layers)) = rest.rsplit_once('@') else {
        return Some((rest, 0, 1));
    };
    let (layer, count) = layers.split_once('/')?;
    let (layer, count): (usize, usize) = (layer.parse().ok()?, count.parse().ok()?);
    (layer < count && count <= MAX_LAYERS).then_some((mid, layer, count))
}

/// Most simulcast layers a relayed track may have.
const MAX_LAYERS: usize = 8;

/// Writes the packets of one layer of a relayed track until the remote track ends. The
/// first packet of any layer publishes the local track, with the codec it shows.
async fn relay_layer(
    shared: &Shared,
    relayed: &Arc<Relayed>,
    track: Arc<dyn TrackRemote>,
    id: &TrackId,
    kind: MediaKind,
    layer: usize,
) {
    let mut writer: Option<LocalTrackWriter> = None;
    while let Some(event) = track.poll().await {
        let packet = match event {
            TrackRemoteEvent::OnRtpPacket(packet) => packet,
            TrackRemoteEvent::OnEnded => break,
            _ => continue,
        };
        shared.packets.fetch_add(1, Ordering::Relaxed);
        if writer.is_none() {
            relayed
                .layers()
                .insert(layer, (Arc::clone(&track), packet.header.ssrc));
            writer = publish(shared, relayed, &track, id, kind, packet.header.ssrc).await;
            if writer.is_none() {
                return;
            }
        }
        let Some(writer) = writer.as_ref() else {
            continue;
        };
        let audio_level = match kind {
            MediaKind::Audio => shared
                .audio_level_id()
                .and_then(|id| packet.header.get_extension(id))
                .and_then(|value| value.first().copied()),
            MediaKind::Video => None,
        };
        let written = writer.write(LocalPacket {
            layer,
            sequence_number: Some(packet.header.sequence_number),
            timestamp: packet.header.timestamp,
            marker: packet.header.marker,
            payload: packet.payload,
            audio_level,
        });
        if written.is_err() {
            return;
        }
    }
}

/// Returns the writer of the relayed track, publishing it first if no layer did yet.
async fn publish(
    shared: &Shared,
    relayed: &Arc<Relayed>,
    track: &Arc<dyn TrackRemote>,
    id: &TrackId,
    kind: MediaKind,
    ssrc: u32,
) -> Option<LocalTrackWriter> {
    let mut writer = relayed.writer.lock().await;
    if let Some(writer) = writer.as_ref() {
        return Some(writer.clone());
    }
    let codec = track.codec(ssrc).await?;
    let options = LocalTrackOptions {
        kind,
        codec: LocalCodec {
            mime_type: codec.mime_type,
            clock_rate: codec.clock_rate,
            channels: codec.channels,
            fmtp: codec.sdp_fmtp_line,
        },
        rids: if relayed.layer_count > 1 {
            (0..relayed.layer_count)
                .map(|layer| Rid(layer.to_string()))
                .collect()
        } else {
            Vec::new()
        },
        auto_subscribe: true,
        // Relayed speech counts in this engine's recordings and mixes.
        tap_audio: kind == MediaKind::Audio,
    };
    let local = match shared
        .sfu
        .publish_local(&shared.room, id.clone(), options)
        .await
    {
        Ok(local) => local,
        Err(error) => {
            tracing::warn!(room = %shared.room, track = %id, %error, "publishing a relayed track failed");
            return None;
        }
    };
    tracing::info!(room = %shared.room, track = %id, layers = relayed.layer_count, "relayed track published");
    *writer = Some(local.writer());
    let owner = tokio::spawn(forward_keyframe_requests(
        local,
        Arc::clone(relayed),
        shared.room.clone(),
    ));
    relayed.tasks().push(owner);
    writer.clone()
}

/// Owns the local track of a relayed track and sends its keyframe requests to the
/// origin as PLI on the layer's remote track. Aborting it unpublishes the track.
async fn forward_keyframe_requests(mut local: LocalTrack, relayed: Arc<Relayed>, room: RoomId) {
    while let Some(request) = local.keyframe_requests().recv().await {
        let target = relayed.layers().get(&request.layer).cloned();
        let Some((track, media_ssrc)) = target else {
            continue;
        };
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        if let Err(error) = track.write_rtcp(vec![Box::new(pli)]).await {
            tracing::debug!(%room, track = %local.id(), %error, "keyframe request over the relay failed");
        }
    }
}

fn webrtc_error(error: webrtc::error::Error) -> SfuError {
    SfuError::WebRtc(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_track_names() {
        assert_eq!(
            parse_sender_track("m1-a2-3", "m1-a2-3-0"),
            Some(("0", 0, 1))
        );
        assert_eq!(
            parse_sender_track("m1-a2-3", "m1-a2-3-video@2/3"),
            Some(("video", 2, 3))
        );
        assert_eq!(parse_sender_track("m1-a2-3", "m1-a2-3-0@3/3"), None);
        assert_eq!(parse_sender_track("m1-a2-3", "other-0"), None);
        assert_eq!(parse_sender_track("m1-a2-3", "m1-a2-3-0@x/3"), None);
    }
}
