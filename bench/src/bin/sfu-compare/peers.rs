//! The load: a `webrtc` 0.21 publisher sending three rid-based simulcast layers of
//! synthetic VP8, and light receive-only subscribers that keep only the packet index and
//! arrival time of what they receive.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, register_default_interceptors,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionState,
};

use crate::common::{Simulcast, VP8_PT, extension_id, simulcast_track};

/// Simulcast layers, lowest first.
pub const RIDS: [&str; 3] = ["q", "h", "f"];
pub const FRAMES_PER_SECOND: u64 = 30;
/// Packets per frame and payload bytes per packet of each layer: about 150 kbit/s,
/// 500 kbit/s and 1.5 Mbit/s at 30 frames per second.
pub const LAYER_PACKETS: [usize; 3] = [1, 2, 6];
pub const LAYER_PAYLOAD_BYTES: [usize; 3] = [625, 1042, 1042];
/// Frame size each layer's keyframes announce.
const LAYER_SIZES: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];
/// Offset of the packet's layer byte and of its 8-byte packet index in every payload.
const LAYER_OFFSET: usize = 11;
const INDEX_OFFSET: usize = 12;

const SDES_MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
const SDES_RTP_STREAM_ID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// Send time and layer of every packet the publisher sent, by packet index.
#[derive(Default)]
pub struct SendLog {
    pub times: Vec<Instant>,
    pub layers: Vec<u8>,
}

/// Arrival of one packet at a subscriber.
#[derive(Clone, Copy)]
pub struct Arrival {
    pub index: u64,
    pub layer: u8,
    pub at: Instant,
}

#[derive(Default)]
struct SubscriberHandler {
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    connected: Arc<Mutex<bool>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for SubscriberHandler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            *self.connected.lock().unwrap() = true;
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if track.kind().await != RtpCodecKind::Video {
            return;
        }
        let arrivals = Arc::clone(&self.arrivals);
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                    let at = Instant::now();
                    if let Some((layer, index)) = read_marks(&packet.payload) {
                        arrivals.lock().unwrap().push(Arrival { index, layer, at });
                    }
                }
            }
        });
    }
}

/// Builds a peer connection whose ICE agent gathers one UDP host candidate on `ip`. The
/// candidate is a plain address, so multicast DNS is off: its socket would need a
/// multicast route, which the benchmark's network namespace does not have.
async fn build_peer(
    mut media_engine: MediaEngine,
    ip: &str,
    handler: Arc<dyn PeerConnectionEventHandler>,
) -> anyhow::Result<Box<dyn PeerConnection>> {
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
    let setting_engine = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(setting_engine)
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec![format!("{ip}:0")])
        .build()
        .await?;
    Ok(Box::new(pc))
}

/// A receive-only subscriber.
pub struct Subscriber {
    pub pc: Box<dyn PeerConnection>,
    pub arrivals: Arc<Mutex<Vec<Arrival>>>,
    connected: Arc<Mutex<bool>>,
}

impl Subscriber {
    pub async fn new(ip: &str) -> anyhow::Result<Subscriber> {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs()?;
        let handler = Arc::new(SubscriberHandler::default());
        let arrivals = Arc::clone(&handler.arrivals);
        let connected = Arc::clone(&handler.connected);
        let pc = build_peer(media_engine, ip, handler).await?;
        Ok(Subscriber {
            pc,
            arrivals,
            connected,
        })
    }

    /// Creates an offer to receive audio, for an engine that sends its tracks in offers
    /// of its own after the join.
    pub async fn receive_only_offer(&self) -> anyhow::Result<String> {
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            ..Default::default()
        };
        self.pc
            .add_transceiver_from_kind(RtpCodecKind::Audio, Some(init))
            .await?;
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        local_sdp(&*self.pc).await
    }

    pub async fn apply_answer(&self, sdp: String) -> anyhow::Result<()> {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        Ok(())
    }

    pub async fn answer(&self, offer: String) -> anyhow::Result<String> {
        self.pc
            .set_remote_description(RTCSessionDescription::offer(offer)?)
            .await?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        local_sdp(&*self.pc).await
    }

    pub fn is_connected(&self) -> bool {
        *self.connected.lock().unwrap()
    }
}

/// The simulcast publisher.
pub struct Publisher {
    pub pc: Box<dyn PeerConnection>,
    simulcast: Simulcast,
    connected: Arc<Mutex<bool>>,
}

#[derive(Default)]
struct PublisherHandler {
    connected: Arc<Mutex<bool>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PublisherHandler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            *self.connected.lock().unwrap() = true;
        }
    }
}

impl Publisher {
    pub async fn new(ip: &str) -> anyhow::Result<Publisher> {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs()?;
        configure_simulcast_extension_headers(&mut media_engine)?;
        let handler = Arc::new(PublisherHandler::default());
        let connected = Arc::clone(&handler.connected);
        let pc = build_peer(media_engine, ip, handler).await?;
        let simulcast = simulcast_track(&*pc, &RIDS).await;
        Ok(Publisher {
            pc,
            simulcast,
            connected,
        })
    }

    pub async fn offer(&self) -> anyhow::Result<String> {
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        local_sdp(&*self.pc).await
    }

    pub async fn apply_answer(&self, sdp: String) -> anyhow::Result<()> {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        Ok(())
    }

    pub fn is_connected(&self) -> bool {
        *self.connected.lock().unwrap()
    }

    /// Sends one frame on every layer every 1/30 s until the task is aborted, a keyframe
    /// on every layer once a second. Every packet carries the mid and rid header
    /// extensions, so either server learns the layer of each SSRC, and its payload
    /// carries its layer and packet index.
    pub async fn send(self: Arc<Self>, log: Arc<Mutex<SendLog>>) {
        let offer = self
            .pc
            .local_description()
            .await
            .map(|description| description.sdp)
            .unwrap_or_default();
        let mid_id = extension_id(&offer, SDES_MID_URI).expect("mid extension offered");
        let rid_id = extension_id(&offer, SDES_RTP_STREAM_ID_URI).expect("rid extension offered");
        let mut seqs = [1000u16, 20_000, 40_000];
        let mut interval =
            tokio::time::interval(Duration::from_micros(1_000_000 / FRAMES_PER_SECOND));
        for frame in 0u64.. {
            interval.tick().await;
            let keyframe = frame % FRAMES_PER_SECOND == 0;
            for (layer, (rid, ssrc)) in self.simulcast.layers.iter().enumerate() {
                for part in 0..LAYER_PACKETS[layer] {
                    let index = {
                        let mut log = log.lock().unwrap();
                        log.times.push(Instant::now());
                        log.layers.push(layer as u8);
                        log.times.len() as u64 - 1
                    };
                    let mut header = rtp::Header {
                        version: 2,
                        marker: part + 1 == LAYER_PACKETS[layer],
                        payload_type: VP8_PT,
                        sequence_number: seqs[layer],
                        timestamp: (frame * 3000) as u32,
                        ssrc: *ssrc,
                        ..Default::default()
                    };
                    header
                        .set_extension(mid_id, Bytes::from_static(b"0"))
                        .expect("mid extension");
                    header
                        .set_extension(rid_id, Bytes::from(rid.clone()))
                        .expect("rid extension");
                    let payload = vp8_payload(layer, part, keyframe, index);
                    let packet = rtp::Packet {
                        header,
                        payload: payload.into(),
                    };
                    let _ = self.simulcast.track.write_rtp(packet).await;
                    seqs[layer] = seqs[layer].wrapping_add(1);
                }
            }
        }
    }
}

/// Builds one VP8 packet of a frame. The first packet of a frame starts partition 0 with
/// a frame header. A keyframe's header has the start code and the layer's size, which
/// Janus 1.1 needs to see a keyframe. Bytes `LAYER_OFFSET` and `INDEX_OFFSET..+8` mark
/// the packet, the rest is filler.
fn vp8_payload(layer: usize, part: usize, keyframe: bool, index: u64) -> Vec<u8> {
    let mut payload = Vec::with_capacity(LAYER_PAYLOAD_BYTES[layer]);
    if part == 0 {
        // Payload descriptor: S set, partition 0. Frame tag: P (inverse keyframe flag)
        // in the lowest bit, show_frame set.
        payload.push(0x10);
        payload.extend_from_slice(&[0x10 | u8::from(!keyframe), 0x00, 0x00]);
        if keyframe {
            let (width, height) = LAYER_SIZES[layer];
            payload.extend_from_slice(&[0x9d, 0x01, 0x2a]);
            payload.extend_from_slice(&width.to_le_bytes());
            payload.extend_from_slice(&height.to_le_bytes());
        }
    } else {
        payload.push(0x00);
    }
    payload.resize(LAYER_OFFSET, 0xab);
    payload.push(layer as u8);
    payload.extend_from_slice(&index.to_be_bytes());
    payload.resize(LAYER_PAYLOAD_BYTES[layer], 0xab);
    payload
}

/// Reads the layer and packet index that [`vp8_payload`] wrote.
fn read_marks(payload: &[u8]) -> Option<(u8, u64)> {
    let layer = *payload.get(LAYER_OFFSET)?;
    let index = payload
        .get(INDEX_OFFSET..INDEX_OFFSET + 8)?
        .try_into()
        .ok()?;
    Some((layer, u64::from_be_bytes(index)))
}

/// Returns the local description once ICE gathering has added the host candidate, or
/// as it is after 1 s without one.
async fn local_sdp(pc: &dyn PeerConnection) -> anyhow::Result<String> {
    for _ in 0..50 {
        if let Some(description) = pc.local_description().await
            && description.sdp.contains("a=candidate:")
        {
            return Ok(description.sdp);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pc.local_description()
        .await
        .map(|description| description.sdp)
        .ok_or_else(|| anyhow::anyhow!("no local description after set_local_description"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_survive_every_layer_and_part() {
        for layer in 0..3 {
            for part in 0..LAYER_PACKETS[layer] {
                let payload = vp8_payload(layer, part, part == 0, 123_456);
                assert_eq!(payload.len(), LAYER_PAYLOAD_BYTES[layer]);
                assert_eq!(read_marks(&payload), Some((layer as u8, 123_456)));
            }
        }
    }
}
