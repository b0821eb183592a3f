//! Wire format of the hub, protocol version 1: JSON text frames, one message
//! per frame, tagged by `type`. `docs/protocol.md` is the reference for
//! clients; keep the two in step.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::learning::study;
use crate::meetings::live::Request;
use crate::meetings::live::protocol as live;

/// The protocol version this server speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest text frame a client may send, in bytes. Larger frames close the
/// connection with [`close::TOO_BIG`].
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// WebSocket close codes used by the hub.
pub mod close {
    /// The server is shutting down or the client asked to close.
    pub const NORMAL: u16 = 1000;
    /// The session ended (logout, password change, account disabled).
    pub const POLICY: u16 = 1008;
    /// A client frame exceeded [`super::MAX_CLIENT_MESSAGE`].
    pub const TOO_BIG: u16 = 1009;
    /// The client asked for a protocol version the server does not speak.
    pub const UNSUPPORTED_VERSION: u16 = 4000;
    /// The client sent something that is not a valid message.
    pub const PROTOCOL_ERROR: u16 = 4002;
    /// The server failed; reconnect later.
    pub const INTERNAL: u16 = 1011;
    /// The client did not read fast enough and its queue filled up.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// No frame (not even a pong) arrived within the heartbeat timeout.
    pub const HEARTBEAT_TIMEOUT: u16 = 4009;
}

/// A message from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Subscribes to a topic. With `since`, first replays every stored event
    /// with a larger sequence number; without it, only new events follow.
    Subscribe {
        #[serde(default)]
        id: Option<String>,
        topic: String,
        #[serde(default)]
        since: Option<i64>,
    },
    Unsubscribe {
        #[serde(default)]
        id: Option<String>,
        topic: String,
    },
    /// Application-level ping, answered with `pong`.
    Ping {
        #[serde(default)]
        id: Option<String>,
    },
    /// Enters a meeting's media with the first SDP offer.
    MeetingJoin(live::Join),
    /// A renegotiation offer from the page (tracks added or removed).
    MeetingOffer(live::Sdp),
    /// The page's answer to a `meeting_offer` from the server.
    MeetingAnswer(live::Sdp),
    MeetingLeave(live::Leave),
    /// Simulcast layer or pause of one received track.
    MeetingLayer(live::Layer),
    /// The page's microphone, camera and screen share state.
    MeetingMedia(live::MediaState),
    /// Mixed audio for a weak link, or one stream per speaker again.
    MeetingMix(live::Mix),
    MeetingHand(live::Hand),
    MeetingChat(live::Chat),
    /// Starts counting study time on a lesson (see docs/protocol.md).
    StudyStart(study::Start),
    StudyProgress(study::Progress),
    /// The answer to an attention check.
    StudyCheckAnswer(study::Answer),
    StudyStop(study::Stop),
}

impl ClientMessage {
    /// Converts a `meeting_*` message into its live meeting request, and returns any
    /// other message unchanged as the error.
    pub fn into_meeting_request(self) -> Result<Request, Self> {
        Ok(match self {
            Self::MeetingJoin(body) => Request::Join(body),
            Self::MeetingOffer(body) => Request::Offer(body),
            Self::MeetingAnswer(body) => Request::Answer(body),
            Self::MeetingLeave(body) => Request::Leave(body),
            Self::MeetingLayer(body) => Request::Layer(body),
            Self::MeetingMedia(body) => Request::Media(body),
            Self::MeetingMix(body) => Request::Mix(body),
            Self::MeetingHand(body) => Request::Hand(body),
            Self::MeetingChat(body) => Request::Chat(body),
            other => return Err(other),
        })
    }

    /// Converts a `study_*` message into its study request, and returns any
    /// other message unchanged as the error.
    pub fn into_study_request(self) -> Result<study::Request, Self> {
        Ok(match self {
            Self::StudyStart(body) => study::Request::Start(body),
            Self::StudyProgress(body) => study::Request::Progress(body),
            Self::StudyCheckAnswer(body) => study::Request::Answer(body),
            Self::StudyStop(body) => study::Request::Stop(body),
            other => return Err(other),
        })
    }
}

/// One stored event as sent to clients.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub topic: String,
    pub seq: i64,
    pub kind: String,
    pub data: Value,
    /// Unix milliseconds when the event was stored.
    pub at: i64,
}

/// Serializes the `event` message for a live event once for all of the
/// topic's subscribers, as the same text as `ServerMessage::Event`.
pub fn event_text(event: &Event) -> String {
    #[derive(Serialize)]
    struct Frame<'a> {
        r#type: &'static str,
        #[serde(flatten)]
        event: &'a Event,
    }
    serde_json::to_string(&Frame {
        r#type: "event",
        event,
    })
    .expect("events serialize")
}

/// Serializes a server message as a text frame.
pub fn message_text(message: &ServerMessage) -> String {
    serde_json::to_string(message).expect("server messages serialize")
}

/// One person online on a topic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct PresenceEntry {
    pub account_id: i64,
    pub name: String,
}

/// A message from the server.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome {
        protocol: u32,
        account_id: i64,
        /// Interval of server pings; a client that hears nothing for three
        /// intervals should reconnect.
        heartbeat_ms: u64,
    },
    Subscribed {
        id: Option<String>,
        topic: String,
        /// The topic's newest sequence number when the subscription began.
        seq: i64,
    },
    Unsubscribed {
        id: Option<String>,
        topic: String,
    },
    Event(Event),
    /// The requested history is gone: reload the topic's state over HTTP,
    /// then subscribe again with `since` = `seq`.
    Reset {
        topic: String,
        reason: String,
        seq: i64,
    },
    Presence {
        topic: String,
        online: Vec<PresenceEntry>,
    },
    Pong {
        id: Option<String>,
    },
    Error {
        id: Option<String>,
        code: String,
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_text_matches_message() {
        let event = Event {
            topic: "notice:7".into(),
            seq: 3,
            kind: "receipt.read".into(),
            data: serde_json::json!({"account_id": 4, "name": "张 三 \"引号\""}),
            at: 1_764_806_400_000,
        };
        let shared: Value = serde_json::from_str(&event_text(&event)).unwrap();
        let single: Value =
            serde_json::from_str(&message_text(&ServerMessage::Event(event))).unwrap();
        assert_eq!(shared, single);
        assert_eq!(shared["type"], "event");
    }
}
