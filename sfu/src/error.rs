//! Errors returned to the caller of the engine.

use crate::forward::codec::VideoCodec;
use crate::ids::{ParticipantId, RoomId, TrackId};

/// Failure of an engine operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SfuError {
    /// The room does not exist on this engine.
    #[error("room {0} not found")]
    RoomNotFound(RoomId),
    /// A room with this id already exists.
    #[error("room {0} already exists")]
    RoomExists(RoomId),
    /// The participant is not connected to this engine.
    #[error("participant {0} not found")]
    ParticipantNotFound(ParticipantId),
    /// A participant with this id is already in some room.
    #[error("participant {0} already exists")]
    ParticipantExists(ParticipantId),
    /// The track is not published in the subscriber's room.
    #[error("track {0} not found")]
    TrackNotFound(TrackId),
    /// A track with this id, or a participant with its publisher id, already exists.
    #[error("track {0} already exists")]
    TrackExists(TrackId),
    /// The subscriber's offers do not list the video codec the track is sent with, and the
    /// engine does not transcode.
    #[error("track {track} is sent as {codec:?}, which the subscriber cannot decode")]
    CodecNotSupported {
        /// The track.
        track: TrackId,
        /// Codec the publisher sends.
        codec: VideoCodec,
    },
    /// The SDP could not be parsed or applied.
    #[error("invalid SDP: {0}")]
    InvalidSdp(String),
    /// The operation needs a stable signaling state but an engine offer awaits its answer.
    #[error("negotiation in progress for participant {0}: apply the pending answer first")]
    NegotiationInProgress(ParticipantId),
    /// The WebRTC stack rejected an operation.
    #[error("webrtc: {0}")]
    WebRtc(String),
    /// Binding the media socket failed.
    #[error("failed to bind media socket: {0}")]
    Bind(#[from] std::io::Error),
    /// The engine task that owns the participant has stopped.
    #[error("engine stopped")]
    Stopped,
}

impl From<rtc::shared::error::Error> for SfuError {
    fn from(err: rtc::shared::error::Error) -> Self {
        SfuError::WebRtc(err.to_string())
    }
}
