//! Test clients: `webrtc` peers that publish synthetic VP8 and Opus packets and record what
//! they receive, plus an event pump that answers the engine's offers.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, register_default_interceptors,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MIME_TYPE_VP9, MediaEngine,
};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use sfu::{ParticipantId, RoomId, Sfu, SfuEvent};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceConnectionState,
    RTCPeerConnectionState,
};

pub const VP8_PT: u8 = 96;
pub const OPUS_PT: u8 = 111;

/// Generous limit for things that must happen; not a speed check.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Packets one client received, by kind.
#[derive(Default)]
pub struct Received {
    pub video: Vec<Vec<u8>>,
    /// Arrival time of each entry of `video`.
    pub video_arrivals: Vec<Instant>,
    pub audio: Vec<Vec<u8>>,
    /// The remote video track, for sending RTCP about it.
    pub video_track: Option<Arc<dyn TrackRemote>>,
    /// SSRC of the received video.
    pub video_ssrc: Option<u32>,
}

#[derive(Default)]
struct Handler {
    received: Arc<Mutex<Received>>,
    connected: Arc<Mutex<bool>>,
    ice_states: Arc<Mutex<Vec<RTCIceConnectionState>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        self.ice_states.lock().unwrap().push(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            *self.connected.lock().unwrap() = true;
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let received = Arc::clone(&self.received);
        let video = track.kind().await == RtpCodecKind::Video;
        if video {
            self.received.lock().unwrap().video_track = Some(Arc::clone(&track));
        }
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                    let mut received = received.lock().unwrap();
                    if video {
                        received.video_ssrc = Some(packet.header.ssrc);
                        received.video.push(packet.payload.to_vec());
                        received.video_arrivals.push(Instant::now());
                    } else {
                        received.audio.push(packet.payload.to_vec());
                    }
                }
            }
        });
    }
}

/// Local tracks of a publishing client.
pub struct Publishing {
    pub video: Arc<TrackLocalStaticRTP>,
    pub video_ssrc: u32,
    /// Payload type the client's media engine gives the video codec.
    pub video_pt: u8,
    /// MIME type of the video codec.
    pub video_mime: String,
    pub audio: Arc<TrackLocalStaticRTP>,
    pub audio_ssrc: u32,
}

/// One test peer.
pub struct Client {
    pub pc: Box<dyn PeerConnection>,
    pub received: Arc<Mutex<Received>>,
    connected: Arc<Mutex<bool>>,
    /// ICE connection states in the order they were reached.
    pub ice_states: Arc<Mutex<Vec<RTCIceConnectionState>>>,
    pub publishing: Option<Publishing>,
}

impl Client {
    /// Creates a client that publishes one VP8 and one Opus track, or, when `publish` is
    /// false, only offers to receive audio.
    pub async fn new(publish: bool) -> Client {
        let mut client = Client::empty().await;
        client.add_default_media(publish).await;
        client
    }

    /// Adds a VP8 and an Opus track, or, when `publish` is false, a receive-only audio
    /// transceiver.
    async fn add_default_media(&mut self, publish: bool) {
        let client = self;
        if publish {
            let (video, video_ssrc) =
                local_track(&*client.pc, RtpCodecKind::Video, MIME_TYPE_VP8, 90_000, 0).await;
            let (audio, audio_ssrc) =
                local_track(&*client.pc, RtpCodecKind::Audio, MIME_TYPE_OPUS, 48_000, 2).await;
            client.publishing = Some(Publishing {
                video,
                video_ssrc,
                video_pt: VP8_PT,
                video_mime: MIME_TYPE_VP8.to_owned(),
                audio,
                audio_ssrc,
            });
        } else {
            client.receive(RtpCodecKind::Audio).await;
        }
    }

    /// Adds a receive-only transceiver of `kind`.
    pub async fn receive(&self, kind: RtpCodecKind) {
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            ..Default::default()
        };
        self.pc
            .add_transceiver_from_kind(kind, Some(init))
            .await
            .unwrap();
    }

    /// Creates a client whose only video codecs are `video_codecs` (MIME types such as
    /// [`MIME_TYPE_VP8`], in preference order). With `publish` set it publishes Opus and a
    /// video track sent as that codec; otherwise it offers to receive audio and video.
    pub async fn with_video_codecs(video_codecs: &[&str], publish: Option<&str>) -> Client {
        let mut client = Client::empty_with_video_codecs(video_codecs).await;
        match publish {
            Some(mime) => {
                let video_pt = video_codec(mime).payload_type;
                let (video, video_ssrc) =
                    local_track(&*client.pc, RtpCodecKind::Video, mime, 90_000, 0).await;
                // Offer every registered video codec, not only the one the track is sent
                // as, the way a browser offers all it can encode.
                let preferences = video_codecs.iter().map(|mime| video_codec(mime)).collect();
                let transceivers = client.pc.get_transceivers().await;
                transceivers[0]
                    .set_codec_preferences(preferences)
                    .await
                    .unwrap();
                let (audio, audio_ssrc) =
                    local_track(&*client.pc, RtpCodecKind::Audio, MIME_TYPE_OPUS, 48_000, 2).await;
                client.publishing = Some(Publishing {
                    video,
                    video_ssrc,
                    video_pt,
                    video_mime: mime.to_owned(),
                    audio,
                    audio_ssrc,
                });
            }
            None => {
                client.receive(RtpCodecKind::Audio).await;
                client.receive(RtpCodecKind::Video).await;
            }
        }
        client
    }

    /// Creates a client that publishes one VP8 track in the simulcast layers `rids`
    /// (lowest first) and nothing else.
    pub async fn simulcast_publisher(rids: &[&str]) -> (Client, Simulcast) {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs().unwrap();
        configure_simulcast_extension_headers(&mut media_engine).unwrap();
        let client = Client::build(media_engine).await;
        let simulcast = simulcast_track(&*client.pc, rids).await;
        (client, simulcast)
    }

    /// Creates a client with no transceivers whose only video codecs are `video_codecs`.
    pub async fn empty_with_video_codecs(video_codecs: &[&str]) -> Client {
        let mut media_engine = MediaEngine::default();
        for codec in audio_codecs() {
            media_engine
                .register_codec(codec, RtpCodecKind::Audio)
                .unwrap();
        }
        for mime in video_codecs {
            media_engine
                .register_codec(video_codec(mime), RtpCodecKind::Video)
                .unwrap();
        }
        Client::build(media_engine).await
    }

    /// Creates a client with no transceivers.
    pub async fn empty() -> Client {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs().unwrap();
        Client::build(media_engine).await
    }

    async fn build(media_engine: MediaEngine) -> Client {
        Client::build_on(media_engine, &["127.0.0.1:0"], &[]).await
    }

    /// Creates a client like [`Client::new`] whose only ICE candidates are TCP: active
    /// ones, which connect to the engine's passive candidate.
    pub async fn tcp_only(publish: bool) -> Client {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs().unwrap();
        let mut client = Client::build_on(media_engine, &[], &["127.0.0.1:0"]).await;
        client.add_default_media(publish).await;
        client
    }

    /// Builds a client whose ICE agent gathers host candidates on these UDP and TCP
    /// addresses.
    async fn build_on(mut media_engine: MediaEngine, udp: &[&str], tcp: &[&str]) -> Client {
        media_engine
            .register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: sfu::sdp::AUDIO_LEVEL_URI.to_owned(),
                },
                RtpCodecKind::Audio,
                None,
            )
            .unwrap();
        let registry = register_default_interceptors(Registry::new(), &mut media_engine).unwrap();
        let handler = Arc::new(Handler::default());
        let received = Arc::clone(&handler.received);
        let connected = Arc::clone(&handler.connected);
        let ice_states = Arc::clone(&handler.ice_states);
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .with_handler(handler as Arc<dyn PeerConnectionEventHandler>)
            .with_udp_addrs(udp.iter().map(|addr| (*addr).to_owned()).collect())
            .with_tcp_addrs(tcp.iter().map(|addr| (*addr).to_owned()).collect())
            .build()
            .await
            .unwrap();
        Client {
            pc: Box::new(pc),
            received,
            connected,
            ice_states,
            publishing: None,
        }
    }

    /// Creates the first offer.
    pub async fn offer(&self) -> String {
        let offer = self.pc.create_offer(None).await.unwrap();
        self.pc.set_local_description(offer.clone()).await.unwrap();
        offer.sdp
    }

    pub async fn apply_answer(&self, sdp: String) {
        let answer = RTCSessionDescription::answer(sdp).unwrap();
        self.pc.set_remote_description(answer).await.unwrap();
    }

    /// Answers an offer from the engine.
    pub async fn answer(&self, sdp: String) -> String {
        let offer = RTCSessionDescription::offer(sdp).unwrap();
        self.pc.set_remote_description(offer).await.unwrap();
        let answer = self.pc.create_answer(None).await.unwrap();
        self.pc.set_local_description(answer.clone()).await.unwrap();
        answer.sdp
    }

    pub fn is_connected(&self) -> bool {
        *self.connected.lock().unwrap()
    }

    pub fn counts(&self) -> (usize, usize) {
        let received = self.received.lock().unwrap();
        (received.video.len(), received.audio.len())
    }
}

/// A simulcast video track: one SSRC per layer, lowest layer first.
pub struct Simulcast {
    pub track: Arc<TrackLocalStaticRTP>,
    /// Rid and SSRC of each layer.
    pub layers: Vec<(String, u32)>,
}

/// Adds a VP8 track sent in the simulcast layers `rids` (lowest first).
pub async fn simulcast_track(pc: &dyn PeerConnection, rids: &[&str]) -> Simulcast {
    let layers: Vec<(String, u32)> = rids
        .iter()
        .map(|rid| ((*rid).to_owned(), rand::random::<u32>()))
        .collect();
    let encodings = layers
        .iter()
        .map(|(rid, ssrc)| RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                rid: rid.clone(),
                ssrc: Some(*ssrc),
                ..Default::default()
            },
            codec: video_codec(MIME_TYPE_VP8).rtp_codec,
            ..Default::default()
        })
        .collect();
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "publisher".to_owned(),
        "simulcast".to_owned(),
        "simulcast".to_owned(),
        RtpCodecKind::Video,
        encodings,
    )));
    pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
        .await
        .unwrap();
    let feedback = Arc::clone(&track);
    tokio::spawn(async move { while feedback.poll().await.is_some() {} });
    Simulcast { track, layers }
}

/// Id that an SDP's `a=extmap` lines give the header extension `uri`.
pub fn extension_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.strip_prefix("a=extmap:")?;
        let (id, value) = rest.split_once(' ')?;
        (value.split_whitespace().next() == Some(uri))
            .then(|| id.split('/').next()?.parse().ok())
            .flatten()
    })
}

/// Opus as `rtc` registers it by default.
fn audio_codecs() -> Vec<RTCRtpCodecParameters> {
    vec![RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: Vec::new(),
        },
        payload_type: OPUS_PT,
    }]
}

/// Builds a video codec with the payload type and format parameters `rtc` registers by default.
pub fn video_codec(mime: &str) -> RTCRtpCodecParameters {
    let (payload_type, fmtp) = match mime {
        MIME_TYPE_VP8 => (VP8_PT, ""),
        MIME_TYPE_VP9 => (98, "profile-id=0"),
        MIME_TYPE_H264 => (
            102,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
        ),
        other => panic!("no test parameters for {other}"),
    };
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: fmtp.to_owned(),
            rtcp_feedback: vec![feedback("nack", ""), feedback("nack", "pli")],
        },
        payload_type,
    }
}

/// Adds a local track with a random SSRC and keeps its feedback queue drained.
pub async fn local_track(
    pc: &dyn PeerConnection,
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
    pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
        .await
        .unwrap();

    // The connection blocks once the track's feedback queue is full, so keep it drained.
    let feedback = Arc::clone(&track);
    tokio::spawn(async move { while feedback.poll().await.is_some() {} });
    (track, ssrc)
}

/// VP8 payload of one whole frame: a payload descriptor with S set and partition 0, a
/// frame header byte whose lowest bit is the inverse keyframe flag, and a frame number.
pub fn vp8_frame(number: u32, keyframe: bool) -> Vec<u8> {
    let mut payload = vec![0x10, if keyframe { 0x00 } else { 0x01 }];
    payload.extend_from_slice(&number.to_be_bytes());
    payload.extend_from_slice(&[0xab; 40]);
    payload
}

/// H.264 payload of one whole frame: a single NAL unit, IDR (type 5) for a keyframe and a
/// non-IDR slice (type 1) otherwise, with a frame number.
pub fn h264_frame(number: u32, keyframe: bool) -> Vec<u8> {
    let mut payload = vec![if keyframe { 0x65 } else { 0x41 }];
    payload.extend_from_slice(&number.to_be_bytes());
    payload.extend_from_slice(&[0xab; 40]);
    payload
}

pub fn is_vp8_keyframe(payload: &[u8]) -> bool {
    payload.len() > 1 && payload[1] & 0x01 == 0
}

/// Every video payload a publisher sent, in order.
pub type SentPayloads = Arc<Mutex<Vec<Vec<u8>>>>;

/// Sends one video frame and one audio packet every 33 ms until stopped, a keyframe every
/// `keyframe_every` frames. Returns every payload sent.
pub fn spawn_media(
    client: Arc<Client>,
    keyframe_every: u32,
) -> (tokio::task::JoinHandle<()>, SentPayloads) {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let sent_by_task = Arc::clone(&sent);
    let task = tokio::spawn(async move {
        let publishing = client.publishing.as_ref().expect("publishing client");
        let mut seq: u16 = 65_000;
        let mut audio_seq: u16 = 100;
        for number in 0u32.. {
            let keyframe = number % keyframe_every == 0;
            let payload = if publishing.video_mime == MIME_TYPE_H264 {
                h264_frame(number, keyframe)
            } else {
                vp8_frame(number, keyframe)
            };
            sent_by_task.lock().unwrap().push(payload.clone());
            let packet = rtp::Packet {
                header: rtp::Header {
                    version: 2,
                    marker: true,
                    payload_type: publishing.video_pt,
                    sequence_number: seq,
                    timestamp: number.wrapping_mul(3000),
                    ssrc: publishing.video_ssrc,
                    ..Default::default()
                },
                payload: payload.into(),
            };
            let _ = publishing.video.write_rtp(packet).await;
            seq = seq.wrapping_add(1);

            let audio = rtp::Packet {
                header: rtp::Header {
                    version: 2,
                    payload_type: OPUS_PT,
                    sequence_number: audio_seq,
                    timestamp: number.wrapping_mul(960),
                    ssrc: publishing.audio_ssrc,
                    ..Default::default()
                },
                payload: vec![0xf8, 0xff, 0xfe, number as u8].into(),
            };
            let _ = publishing.audio.write_rtp(audio).await;
            audio_seq = audio_seq.wrapping_add(1);
            tokio::time::sleep(Duration::from_millis(33)).await;
        }
    });
    (task, sent)
}

/// Clients by participant, shared with the event pump.
pub type Clients = Arc<Mutex<HashMap<ParticipantId, Arc<Client>>>>;

/// Answers the engine's offers with the right client and records every other event.
pub fn spawn_event_pump(
    sfu: Sfu,
    room: RoomId,
    clients: Clients,
    mut events: mpsc::UnboundedReceiver<SfuEvent>,
) -> Arc<Mutex<Vec<SfuEvent>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_by_task = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let SfuEvent::Offer { participant, sdp } = &event {
                let client = clients.lock().unwrap().get(participant).cloned();
                if let Some(client) = client {
                    let answer = client.answer(sdp.clone()).await;
                    if let Err(err) = sfu.accept_answer(&room, participant.clone(), answer).await {
                        panic!("answer of {participant} rejected: {err}");
                    }
                }
                continue;
            }
            seen_by_task.lock().unwrap().push(event);
        }
    });
    seen
}

/// Starts a one-shard engine with an automatically subscribing room and an event pump.
pub async fn start_room() -> (Sfu, RoomId, Clients, Arc<Mutex<Vec<SfuEvent>>>) {
    init_tracing();
    let config = sfu::SfuConfig {
        shards: 1,
        ..sfu::SfuConfig::default()
    };
    let (sfu, events) = Sfu::start(config).await.unwrap();
    let room = RoomId::from("room");
    let options = sfu::RoomOptions {
        auto_subscribe: true,
    };
    sfu.create_room(room.clone(), options).await.unwrap();
    let clients = Clients::default();
    let seen = spawn_event_pump(sfu.clone(), room.clone(), Arc::clone(&clients), events);
    (sfu, room, clients, seen)
}

/// Polls `condition` every 50 ms until it holds, failing the test after [`PATIENCE`].
pub async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Joins a new client to the room and waits until it is connected.
pub async fn join(
    sfu: &Sfu,
    room: &RoomId,
    clients: &Clients,
    name: &str,
    publish: bool,
) -> Arc<Client> {
    let client = Client::new(publish).await;
    join_client(sfu, room, clients, name, client).await.0
}

/// Joins `client` to the room, waits until it is connected and returns it with the
/// engine's answer to its offer.
pub async fn join_client(
    sfu: &Sfu,
    room: &RoomId,
    clients: &Clients,
    name: &str,
    client: Client,
) -> (Arc<Client>, String) {
    let client = Arc::new(client);
    let participant = ParticipantId::from(name);
    clients
        .lock()
        .unwrap()
        .insert(participant.clone(), Arc::clone(&client));
    let offer = client.offer().await;
    let answer = sfu
        .join(room, participant, offer)
        .await
        .expect("join accepted");
    client.apply_answer(answer.clone()).await;
    let waiting = Arc::clone(&client);
    wait_for(&format!("{name} to connect"), move || {
        waiting.is_connected()
    })
    .await;
    (client, answer)
}

/// Number of open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// Sends `RUST_LOG`-filtered logs to the test output.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
