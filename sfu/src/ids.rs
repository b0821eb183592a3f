//! Identifiers used across the engine.
//!
//! Rooms and participants are named by the caller (the server), so their ids are opaque
//! strings. Tracks are named by the engine from the publisher and the SDP `mid` of the
//! media section that carries them, which stays stable across renegotiation.

use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub String);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }
    };
}

string_id!(
    /// A room: the set of participants whose tracks can be forwarded to each other.
    RoomId
);
string_id!(
    /// A participant, unique across the whole engine.
    ParticipantId
);
string_id!(
    /// An RTP stream id (`a=rid`), naming one simulcast layer of a video track.
    Rid
);

/// A published track: the publisher and the `mid` of the media section it arrives on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId {
    /// Participant that publishes the track.
    pub publisher: ParticipantId,
    /// SDP media id of the publisher's media section.
    pub mid: String,
}

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.publisher, self.mid)
    }
}

/// An RTP synchronization source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssrc(pub u32);

/// Kind of media a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Audio, forwarded as is.
    Audio,
    /// Video, possibly simulcast.
    Video,
}
