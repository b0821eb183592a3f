//! Lecture mode of a live room: the meeting behind a live lecture (a lesson of kind
//! `live`). Only presenters (the lecturer and co-presenters) publish. Everyone else joins
//! receive-only, without a lobby wait, and the server enforces it twice: an offer that
//! sends media is rejected, and the engine blocks the audio and video of every
//! non-presenter, so nothing they might send is forwarded. The lecturer can give one
//! viewer the floor, which lets that viewer publish audio until it is taken back.
//!
//! To stay light with hundreds of viewers, viewers receive only the presenters' (and the
//! floor holder's) participant entries and a `lecture_stats` message with counts, sent by
//! a ticker at most every [`TICK`] when something changed. The full roster, the hands and
//! the dashboard go to the staff: presenters and the course's organizers.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;
use sfu::MediaKind;

use super::protocol::LiveMessage;
use super::room::Room;
use super::{message_text, room_id, sfu_error};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Interval of the counts and dashboard messages.
pub const TICK: Duration = Duration::from_secs(2);

/// A person's role in a lecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LectureRole {
    /// The lecturer or a co-presenter: publishes and runs the lecture.
    Presenter,
    /// An officer who manages the course: watches receive-only and gets the dashboard.
    Organizer,
    /// Anyone else who may study the course: watches receive-only.
    Viewer,
}

/// The facts of a lecture that its live room needs, read when the room is created.
#[derive(Debug, Clone)]
pub struct LectureFacts {
    pub lesson_id: i64,
    pub course_id: i64,
    /// Accounts of the lecturer and the co-presenters.
    pub presenters: HashSet<i64>,
}

/// The lecture state of a live room.
#[derive(Debug)]
pub struct LectureMode {
    pub facts: LectureFacts,
    /// Role of each account that entered the media.
    pub roles: HashMap<i64, LectureRole>,
    /// The viewer who may speak now.
    pub floor: Option<i64>,
    /// The counts last sent to viewers, so an unchanged state is not sent again.
    last_stats: Option<String>,
    /// Polls answered since the last tick, whose results viewers have not seen.
    changed_polls: BTreeSet<i64>,
}

impl LectureMode {
    pub fn new(facts: LectureFacts) -> Self {
        Self {
            facts,
            roles: HashMap::new(),
            floor: None,
            last_stats: None,
            changed_polls: BTreeSet::new(),
        }
    }
}

/// Counts and presenters of a lecture, as every viewer sees them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LectureStats {
    pub lesson_id: i64,
    /// People in the media who are not presenters.
    pub viewers: usize,
    /// Accounts of the presenters in the media.
    pub presenters: Vec<i64>,
    /// Raised hands.
    pub hands: usize,
    /// Account of the viewer who has the floor.
    pub floor: Option<i64>,
    /// The lecture page's role of the person the stats are sent to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<LectureRole>,
}

impl Room {
    /// Checks whether everyone in the room gets this account's entry: always outside lecture
    /// mode, and for presenters and the floor holder in it.
    pub fn is_stage(&self, account_id: i64) -> bool {
        match &self.lecture {
            None => true,
            Some(lecture) => {
                lecture.facts.presenters.contains(&account_id) || lecture.floor == Some(account_id)
            }
        }
    }

    /// Checks whether this account gets the whole roster and the dashboard: everyone
    /// outside lecture mode, presenters and organizers in it.
    pub fn is_staff(&self, account_id: i64) -> bool {
        match &self.lecture {
            None => true,
            Some(lecture) => matches!(
                lecture.roles.get(&account_id),
                Some(LectureRole::Presenter | LectureRole::Organizer)
            ),
        }
    }

    /// Checks whether the engine must block this account's media of `kind`: every
    /// non-presenter's video, and their audio unless they have the floor.
    pub fn blocks(&self, account_id: i64, kind: MediaKind) -> bool {
        let Some(lecture) = &self.lecture else {
            return false;
        };
        if lecture.facts.presenters.contains(&account_id) {
            return false;
        }
        kind == MediaKind::Video || lecture.floor != Some(account_id)
    }

    /// Drops a person who left the media from the lecture's roles and the floor.
    /// A floor lost this way goes back to no one, and everyone gets `lecture_floor`.
    pub fn forget_lecture_member(&mut self, account_id: i64) {
        let Some(lecture) = self.lecture.as_mut() else {
            return;
        };
        lecture.roles.remove(&account_id);
        if lecture.floor == Some(account_id) {
            lecture.floor = None;
            self.broadcast(&LiveMessage::LectureFloor {
                meeting_id: self.meeting_id,
                account_id: None,
            });
        }
    }

    /// Sends a message about `account_id` to everyone who sees that account.
    pub fn broadcast_about(&self, account_id: i64, message: &LiveMessage) {
        if self.is_stage(account_id) {
            self.broadcast(message);
        } else {
            self.send_to_staff(message);
        }
    }

    /// Sends a message to the presenters and organizers in the media.
    pub fn send_to_staff(&self, message: &LiveMessage) {
        let text = message_text(message);
        for (account, member) in &self.members {
            if self.is_staff(*account) {
                member.link.send_text(text.clone());
            }
        }
    }

    /// Returns the counts that viewers see.
    pub fn lecture_stats(&self) -> Option<LectureStats> {
        let lecture = self.lecture.as_ref()?;
        let presenters: Vec<i64> = self
            .members
            .keys()
            .copied()
            .filter(|account| lecture.facts.presenters.contains(account))
            .collect();
        Some(LectureStats {
            lesson_id: lecture.facts.lesson_id,
            viewers: self.members.len() - presenters.len(),
            presenters,
            hands: self.hands.len(),
            floor: lecture.floor,
            role: None,
        })
    }
}

/// Checks an offer of someone who may not publish: `audio_allowed` is set while they
/// have the floor. A rejected offer changes nothing in the engine.
pub fn check_receive_only(sdp: &str, audio_allowed: bool) -> AppResult<()> {
    let sections = sfu::sdp::summarize(sdp).map_err(sfu_error)?;
    let sending = sections.iter().find(|section| {
        section.direction.sends() && !(audio_allowed && section.kind == MediaKind::Audio)
    });
    match sending {
        None => Ok(()),
        Some(section) => Err(AppError::new(
            axum::http::StatusCode::FORBIDDEN,
            "lecture_receive_only",
            "党课直播中只有主讲人可以发送音视频，听众只能观看；获准发言时只能发送声音",
            format!(
                "in a live lecture only presenters publish; media section {} ({:?}) sends",
                section.mid, section.kind
            ),
        )),
    }
}

/// Sets the engine's blocks of one participant from the room's lecture rules and mutes.
pub async fn apply_blocks(state: &AppState, room: &Room, account_id: i64) -> AppResult<()> {
    let Some(member) = room.members.get(&account_id) else {
        return Ok(());
    };
    for kind in [MediaKind::Audio, MediaKind::Video] {
        let blocked = room.blocks(account_id, kind)
            || (kind == MediaKind::Audio && room.muted.contains(&account_id));
        state
            .live
            .sfu
            .set_blocked(
                &room_id(room.meeting_id),
                member.participant.clone(),
                kind,
                blocked,
            )
            .await
            .map_err(sfu_error)?;
    }
    Ok(())
}

/// Gives the floor to a viewer in the media (`Some`) or takes it back (`None`). The
/// previous holder's audio is blocked before anyone else's is let through, and the
/// holder's hand is lowered.
pub async fn set_floor(
    state: &AppState,
    meeting_id: i64,
    account_id: Option<i64>,
) -> AppResult<()> {
    let room = state.live.room(meeting_id).ok_or_else(not_live)?;
    let mut room = room.lock().await;
    let Some(lecture) = room.lecture.as_ref() else {
        return Err(not_live());
    };
    if let Some(account) = account_id {
        if !room.members.contains_key(&account) {
            return Err(AppError::not_found(
                ("直播中的听众", "viewer in the lecture"),
                account,
            ));
        }
        if lecture.facts.presenters.contains(&account) {
            return Err(AppError::invalid(
                "account_id",
                "主讲人本来就可以发言",
                "presenters may always speak",
            ));
        }
    }
    let previous = lecture.floor;
    if previous == account_id {
        return Ok(());
    }
    if let Some(lecture) = room.lecture.as_mut() {
        lecture.floor = None;
    }
    if let Some(previous) = previous {
        apply_blocks(state, &room, previous).await?;
        room.broadcast_participant(previous);
    }
    if let Some(account) = account_id {
        if let Some(lecture) = room.lecture.as_mut() {
            lecture.floor = Some(account);
        }
        room.hands.remove(&account);
        super::decisions::save(state, &room, account).await;
        apply_blocks(state, &room, account).await?;
        room.broadcast_participant(account);
    }
    room.broadcast(&LiveMessage::LectureFloor {
        meeting_id,
        account_id,
    });
    tracing::info!(meeting_id, ?previous, floor = ?account_id, "lecture floor changed");
    Ok(())
}

/// Sends a message to everyone in a lecture's media, or only to its staff.
pub async fn send(state: &AppState, meeting_id: i64, message: &LiveMessage, staff_only: bool) {
    let Some(room) = state.live.room(meeting_id) else {
        return;
    };
    let room = room.lock().await;
    if staff_only {
        room.send_to_staff(message);
    } else {
        room.broadcast(message);
    }
}

/// Sends a message to one account's connection in the media, if it is there.
pub async fn send_to(state: &AppState, meeting_id: i64, account_id: i64, message: &LiveMessage) {
    let Some(room) = state.live.room(meeting_id) else {
        return;
    };
    let room = room.lock().await;
    if let Some(member) = room.members.get(&account_id) {
        member.link.send(message);
    }
}

/// People in a lecture's media now: (viewers, of them connected, presenters).
pub async fn audience(state: &AppState, meeting_id: i64) -> (usize, usize, usize) {
    let Some(room) = state.live.room(meeting_id) else {
        return (0, 0, 0);
    };
    let room = room.lock().await;
    let presenters = room.members.keys().filter(|a| room.is_stage(**a)).count();
    let connected = room
        .members
        .iter()
        .filter(|(account, member)| member.connected && !room.is_stage(**account))
        .count();
    (room.members.len() - presenters, connected, presenters)
}

/// Checks whether a connection is in the media of a lecture with its media connected
/// while a presenter is there too. A viewer's study time counts only then, so waiting
/// for the lecture to begin earns nothing.
pub async fn media_connected(
    state: &AppState,
    meeting_id: i64,
    conn_id: crate::hub::registry::ConnId,
) -> bool {
    let Some(room) = state.live.room(meeting_id) else {
        return false;
    };
    let room = room.lock().await;
    let presenting = room.lecture.as_ref().is_some_and(|lecture| {
        room.members
            .keys()
            .any(|account| lecture.facts.presenters.contains(account))
    });
    presenting
        && room
            .members
            .values()
            .any(|member| member.link.conn_id == conn_id && member.connected)
}

/// Notes that a poll's results changed; viewers get them with the next tick.
pub async fn poll_changed(state: &AppState, meeting_id: i64, poll_id: i64) {
    let Some(room) = state.live.room(meeting_id) else {
        return;
    };
    if let Some(lecture) = room.lock().await.lecture.as_mut() {
        lecture.changed_polls.insert(poll_id);
    }
}

fn not_live() -> AppError {
    AppError::conflict(
        "lecture_not_live",
        "直播尚未开始或已结束",
        "the lecture is not live",
    )
}

/// Sends the viewers' counts when they changed, and the dashboard to the staff, every
/// [`TICK`] until the room is closed.
pub fn spawn_ticker(state: AppState, room: Weak<tokio::sync::Mutex<Room>>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(room) = room.upgrade() else {
                return;
            };
            if !tick(&state, &room).await {
                return;
            }
        }
    });
}

/// Sends one round of counts and dashboard; returns false once the room is closed.
async fn tick(state: &AppState, room: &Arc<tokio::sync::Mutex<Room>>) -> bool {
    let (meeting_id, lesson_id, stats, polls) = {
        let mut room = room.lock().await;
        if room.closed {
            return false;
        }
        let Some(stats) = room.lecture_stats() else {
            return false;
        };
        let text = serde_json::to_string(&stats).unwrap_or_default();
        let lesson_id = stats.lesson_id;
        let changed = room
            .lecture
            .as_ref()
            .is_some_and(|lecture| lecture.last_stats.as_deref() != Some(text.as_str()));
        if changed {
            if let Some(lecture) = room.lecture.as_mut() {
                lecture.last_stats = Some(text);
            }
            room.broadcast(&LiveMessage::LectureStats {
                meeting_id: room.meeting_id,
                stats: stats.clone(),
            });
        }
        let polls: Vec<i64> = room
            .lecture
            .as_mut()
            .map(|lecture| {
                std::mem::take(&mut lecture.changed_polls)
                    .into_iter()
                    .collect()
            })
            .unwrap_or_default();
        (room.meeting_id, lesson_id, stats, polls)
    };
    if let Err(error) =
        crate::learning::lectures::send_poll_results(state, meeting_id, &polls).await
    {
        tracing::warn!(meeting_id, lesson_id, %error, "sending lecture poll results failed");
    }
    match crate::learning::lectures::dashboard(state, lesson_id, meeting_id, &stats).await {
        Ok(dashboard) => {
            send(
                state,
                meeting_id,
                &LiveMessage::LectureDashboard {
                    meeting_id,
                    dashboard,
                },
                true,
            )
            .await;
        }
        Err(error) => tracing::warn!(meeting_id, lesson_id, %error, "lecture dashboard failed"),
    }
    true
}
