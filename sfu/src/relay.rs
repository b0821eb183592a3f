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
//! and its packets are written whole. Keyframe requests from the local track go back
//! to the origin as PLI, where the engine asks the publisher.
//!
//! Signaling is the caller's: [`RelayReceiver::start`] returns the first offer for
//! the origin's `join_relay`, [`RelayReceiver::accept_answer`] applies its answer, and
//! [`RelayReceiver::answer`] answers the offers the origin engine sends when the
//! relay's subscriptions change.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionState,
};

use crate::api::Sfu;
use crate::error::SfuError;
use crate::ids::{MediaKind, ParticipantId, RoomId, TrackId};
use crate::local::{LocalCodec, LocalPacket, LocalTrackOptions};

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
    /// Task relaying each track, by its id on the origin.
    tracks: Mutex<HashMap<TrackId, JoinHandle<()>>>,
}

impl Shared {
    fn tracks(&self) -> std::sync::MutexGuard<'_, HashMap<TrackId, JoinHandle<()>>> {
        // Every critical section is one insert, removal or count.
        self.tracks.lock().unwrap_or_else(|e| e.into_inner())
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
    /// in one section and sends nothing; the origin adds a section per relayed track.
    pub async fn start(
        sfu: Sfu,
        room: RoomId,
        bind_ip: IpAddr,
    ) -> Result<(RelayReceiver, String), SfuError> {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs()?;
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
        let shared = Arc::new(Shared {
            sfu,
            room,
            packets: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            tracks: Mutex::new(HashMap::new()),
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
        Ok(answer.sdp)
    }

    /// Unpublishes one relayed track here, for example after the origin was asked to
    /// stop sending it. A track that arrives again is published again.
    pub fn drop_track(&self, track: &TrackId) {
        if let Some(task) = self.shared.tracks().remove(track) {
            task.abort();
        }
    }

    /// Whether ICE and DTLS completed.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// Whether the connection failed or closed; a failed relay must be started again.
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
        for (_, task) in self.shared.tracks().drain() {
            task.abort();
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
        // The origin engine names each sender `{publisher}-{mid}`.
        let Some(mid) = sender_track
            .strip_prefix(publisher.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
        else {
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
        let shared = Arc::clone(&self.shared);
        let task_id = id.clone();
        let task = tokio::spawn(async move {
            relay_track(&shared, track, task_id.clone(), kind).await;
            shared.tracks().remove(&task_id);
        });
        if let Some(earlier) = self.shared.tracks().insert(id, task) {
            earlier.abort();
        }
    }
}

/// Publishes one relayed track here once its first packet shows the codec, and writes
/// its packets until it ends. Keyframe requests go back to the origin as PLI.
async fn relay_track(shared: &Shared, track: Arc<dyn TrackRemote>, id: TrackId, kind: MediaKind) {
    let mut local = None;
    let mut media_ssrc = 0;
    loop {
        let requests = async {
            match local.as_mut() {
                Some(local) => crate::LocalTrack::keyframe_requests(local).recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = track.poll() => match event {
                None | Some(TrackRemoteEvent::OnEnded) => break,
                Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                    shared.packets.fetch_add(1, Ordering::Relaxed);
                    if local.is_none() {
                        media_ssrc = packet.header.ssrc;
                        let Some(codec) = track.codec(media_ssrc).await else {
                            continue;
                        };
                        let options = LocalTrackOptions {
                            kind,
                            codec: LocalCodec {
                                mime_type: codec.mime_type,
                                clock_rate: codec.clock_rate,
                                channels: codec.channels,
                                fmtp: codec.sdp_fmtp_line,
                            },
                            // TODO: the origin forwards one simulcast layer per
                            // subscription, so a relayed track has one layer here.
                            rids: Vec::new(),
                            auto_subscribe: true,
                        };
                        match shared.sfu.publish_local(&shared.room, id.clone(), options).await {
                            Ok(published) => {
                                tracing::info!(room = %shared.room, track = %id, "relayed track published");
                                local = Some(published);
                            }
                            Err(error) => {
                                tracing::warn!(room = %shared.room, track = %id, %error, "publishing a relayed track failed");
                                return;
                            }
                        }
                    }
                    let Some(local) = local.as_ref() else { continue };
                    let written = local.write(LocalPacket {
                        layer: 0,
                        sequence_number: Some(packet.header.sequence_number),
                        timestamp: packet.header.timestamp,
                        marker: packet.header.marker,
                        payload: packet.payload,
                    });
                    if written.is_err() {
                        return;
                    }
                }
                Some(_) => {}
            },
            Some(_) = requests => {
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc,
                };
                if let Err(error) = track.write_rtcp(vec![Box::new(pli)]).await {
                    tracing::debug!(room = %shared.room, track = %id, %error, "keyframe request over the relay failed");
                }
            }
        }
    }
    tracing::info!(room = %shared.room, track = %id, "relayed track ended");
}

fn webrtc_error(error: webrtc::error::Error) -> SfuError {
    SfuError::WebRtc(error.to_string())
}
