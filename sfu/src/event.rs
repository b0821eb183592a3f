//! Events the engine reports to its caller.

use crate::forward::codec::VideoCodec;
use crate::forward::keyframe::KeyframeStats;
use crate::ids::{MediaKind, ParticipantId, Rid, RoomId, TrackId};

/// A published track as announced to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// Track id, used to subscribe.
    pub id: TrackId,
    /// Audio or video.
    pub kind: MediaKind,
    /// Simulcast layers from lowest to highest, empty without simulcast.
    ///
    /// NOTE: the order is the publisher's `a=simulcast` order; browsers list layers from
    /// lowest to highest when the page lists its encodings that way.
    pub rids: Vec<Rid>,
}

/// Something that happened in a room.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SfuEvent {
    /// The participant's ICE and DTLS handshakes completed.
    ParticipantConnected {
        /// Room of the participant.
        room: RoomId,
        /// Participant that connected.
        participant: ParticipantId,
    },
    /// The participant left, failed or never connected; its tracks are unpublished.
    ParticipantDisconnected {
        /// Room of the participant.
        room: RoomId,
        /// Participant that disconnected.
        participant: ParticipantId,
    },
    /// A participant's offer added a track.
    TrackPublished {
        /// Room of the track.
        room: RoomId,
        /// The track.
        track: TrackInfo,
    },
    /// A track was removed by renegotiation or because its publisher left.
    TrackUnpublished {
        /// Room of the track.
        room: RoomId,
        /// The track.
        track: TrackId,
    },
    /// The engine changed a participant's senders and needs the participant to answer this
    /// offer; pass the answer to `Sfu::accept_answer`.
    Offer {
        /// Participant that must answer.
        participant: ParticipantId,
        /// SDP offer.
        sdp: String,
    },
    /// A subscriber cannot decode the video codec of a track, so it is not subscribed to
    /// it, or its subscription was removed when its answer rejected the codec. The engine does not transcode, so the track becomes available to the subscriber
    /// only if its publisher publishes it again with another codec.
    TrackUndecodable {
        /// Room of the track.
        room: RoomId,
        /// Participant that cannot decode the track.
        subscriber: ParticipantId,
        /// The track.
        track: TrackId,
        /// Codec the publisher sends.
        codec: VideoCodec,
    },
    /// The loudest participant changed, after smoothing.
    ActiveSpeakerChanged {
        /// Room where the speaker changed.
        room: RoomId,
        /// New active speaker.
        participant: ParticipantId,
    },
    /// Keyframe request counters of one video layer, sent when a requested keyframe arrives.
    KeyframeStats {
        /// The track.
        track: TrackId,
        /// Layer index, 0 for the lowest.
        layer: usize,
        /// Counters since the track was published.
        stats: KeyframeStats,
    },
}
