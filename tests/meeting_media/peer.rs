//! WebRTC test peers on the async `webrtc` crate: each publishes synthetic VP8 and Opus
//! packets (or, receive-only, nothing until it adds audio) and counts what it receives
//! per publishing account, read from the stream id
//! (the publisher's participant id, `m{meeting}-a{account}-{n}`).

// Shared by several test binaries, each of which uses a part.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::{RTCConfiguration, RTCConfigurationBuilder};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionState,
};
use webrtc::rtp_transceiver::RtpSender;

const VP8_PT: u8 = 96;
const OPUS_PT: u8 = 111;
/// RFC 6464 audio level header extension, which the engine reads for the active speaker.
const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Packets received from one publishing account.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub video: usize,
    pub audio: usize,
}

#[derive(Default)]
struct Handler {
    received: Arc<Mutex<HashMap<i64, Counts>>>,
    mixed: Arc<Mutex<Vec<bytes::Bytes>>>,
    connected: Arc<Mutex<bool>>,
}

/// Parses the account out of a participant id of the form `m{meeting}-a{account}-{n}`.
fn account_of(id: &str) -> Option<i64> {
    id.split('-').nth(1)?.strip_prefix('a')?.parse().ok()
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            *self.connected.lock().unwrap() = true;
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let received = Arc::clone(&self.received);
        let video = track.kind().await == RtpCodecKind::Video;
        let stream = track.stream_id().await.to_string();
        let track_id = track.track_id().await.to_string();
        // The server's mixed audio for this peer, named after its own participant id.
        if stream.ends_with("-mix") {
            let mixed = Arc::clone(&self.mixed);
            tokio::spawn(async move {
                while let Some(event) = track.poll().await {
                    if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                        mixed.lock().unwrap().push(packet.payload);
                    }
                }
            });
            return;
        }
        let Some(account) = account_of(&stream).or_else(|| account_of(&track_id)) else {
            panic!("remote track without a participant id: stream {stream:?}, track {track_id:?}");
        };
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(_) = event {
                    let mut received = received.lock().unwrap();
                    let counts = received.entry(account).or_default();
                    if video {
                        counts.video += 1;
                    } else {
                        counts.audio += 1;
                    }
                }
            }
        });
    }
}

/// A local track of a peer and its SSRC.
struct Local {
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
}

/// One WebRTC peer that publishes a video and an Opus track, or only receives.
pub struct Peer {
    pc: Box<dyn PeerConnection>,
    received: Arc<Mutex<HashMap<i64, Counts>>>,
    /// Opus payloads of the server's mixed audio track, in arrival order.
    pub mixed: Arc<Mutex<Vec<bytes::Bytes>>>,
    connected: Arc<Mutex<bool>>,
    video: Option<Local>,
    /// Set from the start for a publishing peer, or by [`Peer::add_audio`].
    audio: Mutex<Option<Arc<Local>>>,
    /// Negotiated id of the audio level header extension, read from the offer.
    level_extension: Mutex<Option<u8>>,
    /// Audio level sent with each audio packet, in -dBov (0 is the loudest); none when
    /// unset.
    audio_level: Mutex<Option<u8>>,
}

impl Peer {
    pub async fn new() -> Arc<Peer> {
        Peer::with_configuration(RTCConfigurationBuilder::new().build()).await
    }

    /// Creates a peer with the given ICE servers and transport policy.
    pub async fn with_configuration(configuration: RTCConfiguration) -> Arc<Peer> {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs().unwrap();
        Peer::build(media_engine, MIME_TYPE_VP8, configuration, true).await
    }

    /// Creates a peer that publishes nothing and offers to receive audio and video.
    pub async fn receive_only() -> Arc<Peer> {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs().unwrap();
        let configuration = RTCConfigurationBuilder::new().build();
        Peer::build(media_engine, MIME_TYPE_VP8, configuration, false).await
    }

    /// Creates a peer whose only video codec is H.264, like a browser without VP8, and
    /// which sends its video as H.264.
    pub async fn h264_only() -> Arc<Peer> {
        let mut media_engine = MediaEngine::default();
        let codec =
            |mime: &str, clock_rate, channels, fmtp: &str, payload_type| RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: mime.to_owned(),
                    clock_rate,
                    channels,
                    sdp_fmtp_line: fmtp.to_owned(),
                    rtcp_feedback: Vec::new(),
                },
                payload_type,
            };
        media_engine
            .register_codec(
                codec(
                    MIME_TYPE_OPUS,
                    48_000,
                    2,
                    "minptime=10;useinbandfec=1",
                    OPUS_PT,
                ),
                RtpCodecKind::Audio,
            )
            .unwrap();
        let h264_fmtp = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f";
        media_engine
            .register_codec(
                codec(MIME_TYPE_H264, 90_000, 0, h264_fmtp, 102),
                RtpCodecKind::Video,
            )
            .unwrap();
        Peer::build(
            media_engine,
            MIME_TYPE_H264,
            RTCConfigurationBuilder::new().build(),
            true,
        )
        .await
    }

    async fn build(
        mut media_engine: MediaEngine,
        video_mime: &str,
        configuration: RTCConfiguration,
        publish: bool,
    ) -> Arc<Peer> {
        media_engine
            .register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: AUDIO_LEVEL_URI.to_owned(),
                },
                RtpCodecKind::Audio,
                None,
            )
            .unwrap();
        let registry = register_default_interceptors(Registry::new(), &mut media_engine).unwrap();
        let handler = Arc::new(Handler::default());
        let received = Arc::clone(&handler.received);
        let mixed = Arc::clone(&handler.mixed);
        let connected = Arc::clone(&handler.connected);
        let pc = PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .with_handler(handler as Arc<dyn PeerConnectionEventHandler>)
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .unwrap();
        let (video, audio) = if publish {
            let (video, video_ssrc, _) =
                local_track(&pc, RtpCodecKind::Video, video_mime, 90_000, 0).await;
            let (audio, audio_ssrc, _) =
                local_track(&pc, RtpCodecKind::Audio, MIME_TYPE_OPUS, 48_000, 2).await;
            (
                Some(Local {
                    track: video,
                    ssrc: video_ssrc,
                }),
                Some(Arc::new(Local {
                    track: audio,
                    ssrc: audio_ssrc,
                })),
            )
        } else {
            for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
                let init = RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                };
                pc.add_transceiver_from_kind(kind, Some(init))
                    .await
                    .unwrap();
            }
            (None, None)
        };
        Arc::new(Peer {
            pc: Box::new(pc),
            received,
            mixed,
            connected,
            video,
            audio: Mutex::new(audio),
            level_extension: Mutex::new(None),
            audio_level: Mutex::new(None),
        })
    }

    /// Adds an Opus track in a new send-only transceiver, as a page that gets the floor
    /// does, which [`spawn_media`] then sends; renegotiate afterwards.
    pub async fn add_audio(&self) {
        let (track, ssrc) = new_track(RtpCodecKind::Audio, MIME_TYPE_OPUS, 48_000, 2);
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            ..Default::default()
        };
        self.pc
            .add_transceiver_from_track(Arc::clone(&track) as Arc<dyn TrackLocal>, Some(init))
            .await
            .unwrap();
        *self.audio.lock().unwrap() = Some(Arc::new(Local { track, ssrc }));
    }

    /// Adds a second video track, as a screen share does; renegotiate afterwards.
    pub async fn add_screen(&self) -> Arc<dyn RtpSender> {
        let (_, _, sender) =
            local_track(&*self.pc, RtpCodecKind::Video, MIME_TYPE_VP8, 90_000, 0).await;
        sender
    }

    /// Stops sending a track; renegotiate afterwards.
    pub async fn remove(&self, sender: &Arc<dyn RtpSender>) {
        self.pc.remove_track(sender).await.unwrap();
    }

    /// Closes the peer connection, as a browser tab that crashed its media would.
    pub async fn close(&self) {
        self.pc.close().await.unwrap();
    }

    /// Sends this audio level with every later audio packet.
    pub fn set_audio_level(&self, level: u8) {
        *self.audio_level.lock().unwrap() = Some(level);
    }

    /// Creates an offer and sets it as the local description.
    pub async fn offer(&self) -> String {
        let offer = self.pc.create_offer(None).await.unwrap();
        self.pc.set_local_description(offer.clone()).await.unwrap();
        let extension = offer.sdp.lines().find_map(|line| {
            let rest = line.strip_prefix("a=extmap:")?;
            let (id, uri) = rest.split_once(' ')?;
            (uri.trim() == AUDIO_LEVEL_URI).then(|| id.split('/').next()?.parse().ok())?
        });
        *self.level_extension.lock().unwrap() = extension;
        offer.sdp
    }

    pub async fn apply_answer(&self, sdp: &str) {
        let answer = RTCSessionDescription::answer(sdp.to_owned()).unwrap();
        self.pc.set_remote_description(answer).await.unwrap();
    }

    /// Answers an offer from the server.
    pub async fn answer(&self, sdp: &str) -> String {
        let offer = RTCSessionDescription::offer(sdp.to_owned()).unwrap();
        self.pc.set_remote_description(offer).await.unwrap();
        let answer = self.pc.create_answer(None).await.unwrap();
        self.pc.set_local_description(answer.clone()).await.unwrap();
        answer.sdp
    }

    pub fn is_connected(&self) -> bool {
        *self.connected.lock().unwrap()
    }

    /// Packets received so far from one account.
    pub fn from(&self, account_id: i64) -> Counts {
        self.received
            .lock()
            .unwrap()
            .get(&account_id)
            .copied()
            .unwrap_or_default()
    }

    /// Packets received so far from anyone.
    pub fn total(&self) -> Counts {
        let received = self.received.lock().unwrap();
        received
            .values()
            .fold(Counts::default(), |sum, counts| Counts {
                video: sum.video + counts.video,
                audio: sum.audio + counts.audio,
            })
    }
}

/// Adds a local track with a random SSRC to the connection.
async fn local_track(
    pc: &dyn PeerConnection,
    kind: RtpCodecKind,
    mime: &str,
    clock_rate: u32,
    channels: u16,
) -> (Arc<TrackLocalStaticRTP>, u32, Arc<dyn RtpSender>) {
    let (track, ssrc) = new_track(kind, mime, clock_rate, channels);
    let sender = pc
        .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
        .await
        .unwrap();
    (track, ssrc, sender)
}

/// Creates a local track with a random SSRC and keeps its feedback queue drained, since
/// the connection blocks once that queue is full.
fn new_track(
    kind: RtpCodecKind,
    mime: &str,
    clock_rate: u32,
    channels: u16,
) -> (Arc<TrackLocalStaticRTP>, u32) {
    let ssrc = rand::random::<u32>();
    let name = format!("{kind}");
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "publisher".to_owned(),
        name.clone(),
        name,
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: mime.to_owned(),
                clock_rate,
                channels,
                ..Default::default()
            },
            ..Default::default()
        }],
    )));
    let feedback = Arc::clone(&track);
    tokio::spawn(async move { while feedback.poll().await.is_some() {} });
    (track, ssrc)
}

/// VP8 payload of one whole frame; the lowest bit of the second byte is the inverse
/// keyframe flag.
fn vp8_frame(number: u32, keyframe: bool) -> Vec<u8> {
    let mut payload = vec![0x10, if keyframe { 0x00 } else { 0x01 }];
    payload.extend_from_slice(&number.to_be_bytes());
    payload.extend_from_slice(&[0xab; 40]);
    payload
}

/// Frequency of the tone every peer sends as its audio.
pub const TONE_HZ: f32 = 440.0;

/// Encodes one second of a 440 Hz tone as 50 Opus packets of 20 ms.
fn tone_packets() -> Vec<bytes::Bytes> {
    tone_packets_at(TONE_HZ)
}

/// Encodes one second of a tone at `hz` as 50 Opus packets of 20 ms.
fn tone_packets_at(hz: f32) -> Vec<bytes::Bytes> {
    let mut encoder =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    (0..50)
        .map(|frame| {
            let pcm: Vec<i16> = (0..960)
                .map(|i| {
                    let t = (frame * 960 + i) as f32 / 48_000.0;
                    (8000.0 * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16
                })
                .collect();
            let mut out = [0u8; 1500];
            let len = encoder.encode(&pcm, &mut out).unwrap();
            bytes::Bytes::copy_from_slice(&out[..len])
        })
        .collect()
}

/// Sends one video frame (a keyframe every tenth) and one Opus packet of a tone every
/// 33 ms until the task is aborted.
pub fn spawn_media(peer: Arc<Peer>) -> tokio::task::JoinHandle<()> {
    let tone = tone_packets();
    tokio::spawn(async move {
        let mut seq: u16 = 1000;
        for number in 0u32.. {
            if let Some(video) = &peer.video {
                let packet = rtp::Packet {
                    header: rtp::Header {
                        version: 2,
                        marker: true,
                        payload_type: VP8_PT,
                        sequence_number: seq,
                        timestamp: number.wrapping_mul(3000),
                        ssrc: video.ssrc,
                        ..Default::default()
                    },
                    payload: vp8_frame(number, number % 10 == 0).into(),
                };
                let _ = video.track.write_rtp(packet).await;
            }
            let local_audio = peer.audio.lock().unwrap().clone();
            if let Some(local_audio) = local_audio {
                let mut audio = rtp::Packet {
                    header: rtp::Header {
                        version: 2,
                        payload_type: OPUS_PT,
                        sequence_number: seq,
                        timestamp: number.wrapping_mul(960),
                        ssrc: local_audio.ssrc,
                        ..Default::default()
                    },
                    payload: tone[number as usize % tone.len()].clone(),
                };
                let level = *peer.audio_level.lock().unwrap();
                let extension = *peer.level_extension.lock().unwrap();
                if let (Some(level), Some(id)) = (level, extension) {
                    // RFC 6464: the voice activity flag and the level in -dBov.
                    let value = vec![0x80 | (level & 0x7f)];
                    audio.header.set_extension(id, value.into()).unwrap();
                }
                let _ = local_audio.track.write_rtp(audio).await;
            }
            seq = seq.wrapping_add(1);
            tokio::time::sleep(Duration::from_millis(33)).await;
        }
    })
}

/// Sends only audio, one Opus packet of a tone at `hz` every 20 ms (real time), until the
/// task is aborted.
pub fn spawn_tone(peer: Arc<Peer>, hz: f32) -> tokio::task::JoinHandle<()> {
    let tone = tone_packets_at(hz);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        for number in 0u32.. {
            ticks.tick().await;
            let Some(local_audio) = peer.audio.lock().unwrap().clone() else {
                continue;
            };
            let audio = rtp::Packet {
                header: rtp::Header {
                    version: 2,
                    payload_type: OPUS_PT,
                    sequence_number: number as u16,
                    timestamp: number.wrapping_mul(960),
                    ssrc: local_audio.ssrc,
                    ..Default::default()
                },
                payload: tone[number as usize % tone.len()].clone(),
            };
            let _ = local_audio.track.write_rtp(audio).await;
        }
    })
}
