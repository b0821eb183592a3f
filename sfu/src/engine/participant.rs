//! A participant's published tracks and subscriptions, as the shard tracks them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};

use super::peer::Peer;
use crate::event::SfuEvent;
use crate::forward::bandwidth::{DownlinkEstimate, RetransmissionBudget};
use crate::forward::cache::{PacketCache, RtxStream};
use crate::forward::codec::VideoCodec;
use crate::forward::congestion::TwccEstimator;
use crate::forward::forwarder::Forwarder;
use crate::forward::keyframe::KeyframeRequester;
use crate::forward::layer::{LayerMonitor, UpgradeGate};
use crate::ids::{MediaKind, ParticipantId, Rid, RoomId, TrackId};

/// Connection state of a participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Offer answered, ICE and DTLS not complete yet.
    Connecting,
    /// Media can flow.
    Connected,
}

/// Offer/answer state for offers the engine sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiation {
    /// No engine offer is pending.
    Stable,
    /// Senders changed before the participant connected. The offer waits for the
    /// connection, because until then the participant may not have applied the engine's
    /// answer to its own offer yet.
    OfferWhenConnected,
    /// An engine offer awaits its answer; `again` records changes made meanwhile, which
    /// need another offer once the answer arrives.
    AwaitingAnswer {
        /// Senders changed after the pending offer was made.
        again: bool,
    },
}

/// Codec a published track is sent with.
#[derive(Debug, Clone)]
pub struct TrackCodec {
    /// Negotiated codec, reused for the subscribers' senders.
    pub rtc_codec: RTCRtpCodec,
    /// Video codec, for keyframe detection; `None` for audio.
    pub video: Option<VideoCodec>,
}

/// A track a participant publishes.
pub struct PublishedTrack {
    pub id: TrackId,
    pub kind: MediaKind,
    pub rids: Vec<Rid>,
    pub audio_level_id: Option<u8>,
    pub codec: Option<TrackCodec>,
    pub receiver: Option<RTCRtpReceiverId>,
    /// Layer of each SSRC seen so far.
    pub layers: HashMap<u32, usize>,
    /// SSRC of each layer, for keyframe requests.
    pub layer_ssrcs: HashMap<usize, u32>,
    pub monitor: LayerMonitor,
    pub requesters: Vec<KeyframeRequester>,
}

impl PublishedTrack {
    pub fn new(id: TrackId, kind: MediaKind, rids: Vec<Rid>, audio_level_id: Option<u8>) -> Self {
        let layer_count = rids.len().max(1);
        Self {
            id,
            kind,
            rids,
            audio_level_id,
            codec: None,
            receiver: None,
            layers: HashMap::new(),
            layer_ssrcs: HashMap::new(),
            monitor: LayerMonitor::default(),
            requesters: (0..layer_count)
                .map(|_| KeyframeRequester::default())
                .collect(),
        }
    }

    /// Highest layer index.
    pub fn top_layer(&self) -> usize {
        self.rids.len().saturating_sub(1)
    }

    /// Updates the layer's bit rate and keyframe request state with one received packet and
    /// returns whether it starts a video keyframe. A keyframe that answers a pending
    /// request is reported as [`SfuEvent::KeyframeStats`].
    pub fn on_media(
        &mut self,
        layer: usize,
        payload: &[u8],
        now: Instant,
        events: &mut VecDeque<SfuEvent>,
    ) -> bool {
        self.monitor.on_packet(layer, payload.len(), now);
        let keyframe = self
            .codec
            .as_ref()
            .and_then(|codec| codec.video)
            .is_some_and(|video| video.is_keyframe(payload));
        if keyframe && let Some(requester) = self.requesters.get_mut(layer) {
            let answered = requester.poll_timeout().is_some();
            requester.on_keyframe();
            if answered {
                events.push_back(SfuEvent::KeyframeStats {
                    track: self.id.clone(),
                    layer,
                    stats: requester.stats(),
                });
            }
        }
        keyframe
    }

    /// Layer index of a rid; 0 for a track without simulcast or an unknown rid.
    pub fn layer_of_rid(&self, rid: Option<&str>) -> usize {
        rid.and_then(|rid| self.rids.iter().position(|known| known.0 == rid))
            .unwrap_or(0)
    }
}

/// One subscriber's copy of a published track.
pub struct Subscription {
    pub track: TrackId,
    pub kind: MediaKind,
    /// Video codec the track is sent with; `None` for audio.
    pub video_codec: Option<VideoCodec>,
    pub sender: RTCRtpSenderId,
    /// `rtc` track id of the sender, which tags RTCP about it.
    pub sender_track: String,
    pub ssrc: u32,
    pub rtx_ssrc: Option<u32>,
    /// Resolved from the negotiated sender parameters once the answer is applied.
    pub payload_type: Option<u8>,
    /// Negotiated id of the transport-wide sequence number header extension, resolved with
    /// the payload types; `None` when the subscriber did not accept the extension.
    pub twcc_extension: Option<u8>,
    /// Negotiated id of the audio level header extension on an audio sender, resolved
    /// with the payload types.
    pub audio_level_extension: Option<u8>,
    pub rtx: Option<RtxStream>,
    pub negotiated: bool,
    pub forwarder: Forwarder,
    pub cache: PacketCache<rtp::Packet>,
    pub max_layer: usize,
    pub upgrade_gate: UpgradeGate,
    pub paused: bool,
    /// The one simulcast layer this sender carries, for a relay peer; `None` for a
    /// subscriber whose layer the engine chooses.
    pub pinned_layer: Option<usize>,
    /// A relay peer's senders of layers 1 and up; this subscription carries layer 0.
    /// Empty for everyone else.
    pub layers: Vec<Subscription>,
}

/// A participant of a room, with its connection.
pub struct Participant {
    pub id: ParticipantId,
    pub room: RoomId,
    pub peer: Peer,
    pub connection: Connection,
    pub negotiation: Negotiation,
    pub joined_at: Instant,
    pub last_datagram: Instant,
    /// Published tracks by `mid`.
    pub published: HashMap<String, PublishedTrack>,
    /// `mid` of each `rtc` receiver track id.
    pub receiver_tracks: HashMap<String, String>,
    pub subscriptions: HashMap<TrackId, Subscription>,
    /// Subscribed track of each `rtc` sender track id.
    pub sender_tracks: HashMap<String, TrackId>,
    /// Kinds of media whose packets from this participant reach nobody, for example
    /// audio while the meeting host has muted the participant.
    pub blocked: HashSet<MediaKind>,
    /// Video codecs the participant can decode, from its latest offer; `None` while no
    /// offer had a video section.
    pub video_decoders: Option<HashSet<VideoCodec>>,
    /// Bandwidth the participant can receive, from its REMB reports and TWCC feedback.
    pub downlink: DownlinkEstimate,
    /// Transport-wide sequence numbers of the packets sent to the participant, and the
    /// estimate from its TWCC feedback.
    pub twcc: TwccEstimator,
    /// Retransmissions sent to the participant in the last second.
    pub retransmissions: RetransmissionBudget,
    /// The relay peer of another engine: it subscribes track by track, never
    /// automatically, and receives every simulcast layer on a sender of its own.
    pub relay: bool,
}

impl Participant {
    pub fn new(id: ParticipantId, room: RoomId, peer: Peer, now: Instant) -> Self {
        Self {
            id,
            room,
            peer,
            connection: Connection::Connecting,
            negotiation: Negotiation::Stable,
            joined_at: now,
            last_datagram: now,
            published: HashMap::new(),
            receiver_tracks: HashMap::new(),
            subscriptions: HashMap::new(),
            sender_tracks: HashMap::new(),
            blocked: HashSet::new(),
            video_decoders: None,
            downlink: DownlinkEstimate::default(),
            twcc: TwccEstimator::default(),
            retransmissions: RetransmissionBudget::default(),
            relay: false,
        }
    }
}
