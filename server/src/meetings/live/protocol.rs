//! Wire format of the live meeting messages on the hub WebSocket: the bodies of the
//! `meeting_*` client messages and the server messages that are sent to one connection
//! and never stored. `docs/protocol.md` is the reference for pages; keep the two in step.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `meeting_join`: enter a meeting's media with the page's first SDP offer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    #[serde(default)]
    pub id: Option<String>,
    pub meeting_id: i64,
    pub sdp: String,
}

/// `meeting_offer` (a renegotiation offer from the page) and `meeting_answer` (the page's
/// answer to a `meeting_offer` from the server).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sdp {
    #[serde(default)]
    pub id: Option<String>,
    pub meeting_id: i64,
    pub sdp: String,
}

/// `meeting_leave`: leave the media, or the lobby.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leave {
    #[serde(default)]
    pub id: Option<String>,
    pub meeting_id: i64,
}

/// `meeting_layer`: what this page receives of one remote track.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    #[serde(default)]
    pub id: Option<String>,
    pub meeting_id: i64,
    /// Participant id of the publisher (the remote track's stream id).
    pub publisher: String,
    /// The publisher's media id of the track.
    pub mid: String,
    /// Highest simulcast layer to receive, 0 for the lowest.
    #[serde(default)]
    pub max_layer: Option<usize>,
    /// Stop (true) or resume (false) receiving the track, for example a video tile that
    /// is scrolled out of view.
    #[serde(default)]
    pub paused: Option<bool>,
}

/// `meeting_mix`: receive one mixed audio stream of everyone else (`mixed: true`, for a
/// weak link) or one stream per speaker again.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(default)]
    pub id: Option<String>,
    pub meeting_id: i64,
    pub mixed: bool,
}

/// Source of a published track, as the page declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Microphone,
    Camera,
    Screen,
}

/// `meeting_media`: the page's own microphone, camera and screen share state.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaState {
    #[serde(default)]
    pub id: Option<String>,
    pub meeting_id: i64,
    pub microphone: bool,
    pub camera: bool,
    pub screen: bool,
    /// Source of each published track by its media id; tracks not named keep their
    /// earlier source.
    #[serde(default)]
    pub sources: BTreeMap<String, Source>,
}

/// `meeting_hand`: raise or lower one's own hand.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hand {
    #[serde(default)]
    pub id: Option<String>,
    pub meeting_id: i64,
    pub raised: bool,
}

/// `meeting_chat`: send a chat message to the meeting.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chat {
    #[serde(default)]
    pub id: Option<String>,
    pub meeting_id: i64,
    pub text: String,
}

/// One published track in the participant list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrackEntry {
    pub mid: String,
    /// `audio` or `video`.
    #[schema(value_type = String)]
    pub kind: Cow<'static, str>,
    /// `microphone`, `camera` or `screen` once the page declared it.
    #[schema(value_type = Option<String>)]
    pub source: Option<Source>,
}

/// One person in the meeting's media, as every participant sees them. Nodes also
/// share their own participants' entries through the placement bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ParticipantEntry {
    pub account_id: i64,
    pub name: String,
    /// Engine id of this person's media connection; remote tracks carry it as their
    /// stream id.
    pub participant: String,
    /// `host`, `recorder`, `invitee`, `member` or `outsider`.
    #[schema(value_type = String)]
    pub standing: Cow<'static, str>,
    /// ICE and DTLS completed, so media flows.
    pub connected: bool,
    pub microphone: bool,
    pub camera: bool,
    pub screen: bool,
    /// The host muted this person: the server forwards none of their audio.
    pub muted_by_host: bool,
    /// Unix milliseconds when the hand was raised, absent when it is down.
    pub hand_raised_at: Option<i64>,
    /// The current active speaker.
    pub speaking: bool,
    pub tracks: Vec<TrackEntry>,
}

#[cfg(test)]
impl ParticipantEntry {
    /// Returns a connected member of meeting 7 with no tracks, for tests.
    pub fn sample(account_id: i64) -> Self {
        Self {
            account_id,
            name: format!("参会人{account_id}"),
            participant: format!("m7-a{account_id}-1"),
            standing: "member".into(),
            connected: true,
            microphone: false,
            camera: false,
            screen: false,
            muted_by_host: false,
            hand_raised_at: None,
            speaking: false,
            tracks: Vec::new(),
        }
    }
}

/// Someone waiting in the lobby, as the host sees them. Nodes also share their own
/// lobby's entries through the placement bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WaitingEntry {
    pub account_id: i64,
    pub name: String,
    /// `host`, `recorder`, `invitee`, `member` or `outsider`.
    #[schema(value_type = String)]
    pub standing: Cow<'static, str>,
    /// Unix milliseconds when they arrived.
    pub since: i64,
}

/// The live state of a meeting as one person may see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Snapshot {
    pub meeting_id: i64,
    pub locked: bool,
    pub participants: Vec<ParticipantEntry>,
    /// The lobby; empty for everyone but the host.
    pub lobby: Vec<WaitingEntry>,
    /// Newest sequence number of the `meeting:ID` topic: subscribe with this `since` to
    /// get every chat message after the snapshot.
    pub seq: i64,
    /// Counts and the reader's role when the meeting is a live lecture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lecture: Option<super::lecture::LectureStats>,
}

/// Reason a connection is no longer in a meeting's media (or lobby).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    /// The page asked to leave.
    Left,
    /// The media connection failed or timed out.
    Disconnected,
    /// The host removed this person.
    Removed,
    /// The same person joined from another connection.
    Replaced,
    /// The host ended the meeting.
    Ended,
    /// The host denied entry from the lobby.
    Denied,
}

/// A server message about live meeting state, sent to one connection only.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveMessage {
    /// Reply to `meeting_join` (or sent on admission from the lobby): the SDP answer
    /// and the meeting's live state.
    MeetingJoined {
        id: Option<String>,
        meeting_id: i64,
        participant: String,
        sdp: String,
        snapshot: Snapshot,
    },
    /// Reply to `meeting_join`: the host must admit this person first.
    MeetingWaiting { id: Option<String>, meeting_id: i64 },
    /// Reply to `meeting_offer`.
    MeetingAnswer {
        id: Option<String>,
        meeting_id: i64,
        sdp: String,
    },
    /// The server changed what this page receives; answer with `meeting_answer`.
    MeetingOffer { meeting_id: i64, sdp: String },
    /// Reply to a request that returns nothing else; `seq` is the stored event's
    /// sequence number for `meeting_chat`.
    MeetingOk {
        id: Option<String>,
        meeting_id: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<i64>,
    },
    /// This connection is out of the meeting's media or lobby.
    MeetingLeft {
        id: Option<String>,
        meeting_id: i64,
        reason: LeftReason,
    },
    /// A participant arrived or changed (media state, hand, host mute, tracks).
    MeetingParticipant {
        meeting_id: i64,
        participant: ParticipantEntry,
    },
    /// A participant left the media.
    MeetingParticipantLeft {
        meeting_id: i64,
        account_id: i64,
        participant: String,
    },
    /// The active speaker changed.
    MeetingSpeaker { meeting_id: i64, account_id: i64 },
    /// This page cannot decode the video codec of a remote track (its offers list no
    /// such decoder), so the server does not send that track to it.
    MeetingUndecodable {
        meeting_id: i64,
        /// Participant id of the publisher.
        publisher: String,
        /// The publisher's media id of the track.
        mid: String,
        /// `VP8`, `VP9`, `H264` or `AV1`.
        codec: &'static str,
    },
    /// The meeting was locked or unlocked.
    MeetingLocked { meeting_id: i64, locked: bool },
    /// The whole lobby, sent to the host on every change.
    MeetingLobby {
        meeting_id: i64,
        waiting: Vec<WaitingEntry>,
    },
    /// Lecture mode: the counts every viewer sees, sent when they changed.
    LectureStats {
        meeting_id: i64,
        stats: super::lecture::LectureStats,
    },
    /// Lecture mode: the organizer's dashboard, sent to presenters and organizers.
    LectureDashboard {
        meeting_id: i64,
        dashboard: serde_json::Value,
    },
    /// Lecture mode: the viewer who may speak now changed (absent: nobody).
    LectureFloor {
        meeting_id: i64,
        account_id: Option<i64>,
    },
    /// Lecture mode: a question was asked or marked answered. Presenters and organizers
    /// get every question, the asker gets their own.
    LectureQuestion {
        meeting_id: i64,
        question: serde_json::Value,
    },
    /// Lecture mode: a poll was opened or closed, or its results changed.
    LecturePoll {
        meeting_id: i64,
        poll: serde_json::Value,
    },
}
