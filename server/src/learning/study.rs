//! Study time counted by the server, over the hub WebSocket.
//!
//! The page reports its playback position; the server decides how much of
//! it counts. A study session is bound to one hub connection and a random
//! nonce issued by `study_start`, and every progress message carries a
//! sequence number that must grow. Per person only one session is active:
//! starting a second one (another tab or device) pauses the first.
//!
//! Several nodes may serve one database, so each member's active session is
//! also claimed in a row of `learning_study_claims`. `study_start` writes its
//! nonce there. A node stores a progress message only in a transaction that
//! still finds its own nonce in the row. A session taken over on the same
//! node is paused at once, and one taken over on another node is paused at
//! its next progress message.
//!
//! A progress message counts only when all of these hold. The page is
//! visible and the media is playing. No attention check is overdue. The
//! segment starts within [`StudyRules::slack_ms`] of the range watched from
//! the beginning. The position advanced no faster than the lesson's maximum
//! playback rate allows. The rate limit is
//! a token bucket: it refills at the allowed rate in real time and holds at
//! most [`StudyRules::slack_ms`], so over any interval `T` at most
//! `T × rate + slack` of media time is counted, however the messages are
//! spaced. A lesson is complete when the watched range reaches its end;
//! completion adds its credit hours to the ledger once.
//!
//! Forged (wrong nonce or connection), replayed and out-of-order messages,
//! and advances faster than allowed, are rejected and stored in
//! `learning_rejections` with a warning in the log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::ws::Utf8Bytes;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use tokio::sync::mpsc;

use super::Category;
use super::ledger::{NewCredit, Source, add_credit};
use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::hub::registry::{ConnId, Kick, Outbound, offer};
use crate::perm::Principal;
use crate::state::AppState;

/// Timing rules of counting, shared by all sessions.
#[derive(Debug, Clone, Copy)]
pub struct StudyRules {
    /// Capacity of the rate bucket, in media milliseconds: how far a report
    /// may run ahead of real time because of network and timer jitter, and
    /// how far past the watched range a segment may start.
    pub slack_ms: i64,
    /// Counted study time between two attention checks, in milliseconds,
    /// drawn at random from this inclusive range.
    pub check_after_ms: (i64, i64),
    /// Time to answer an attention check, in milliseconds.
    pub check_window_ms: i64,
}

impl Default for StudyRules {
    fn default() -> Self {
        Self {
            slack_ms: 2_000,
            check_after_ms: (5 * 60_000, 10 * 60_000),
            check_window_ms: 60_000,
        }
    }
}

/// The facts of a lesson that counting needs.
#[derive(Debug, Clone)]
struct LessonFacts {
    id: i64,
    course_id: i64,
    category: Category,
    duration_ms: i64,
    max_rate_pct: i64,
    credit_centi: i64,
    /// The meeting of a live lecture; its time counts while the media is connected.
    live_meeting: Option<i64>,
}

/// An attention check waiting for its answer.
#[derive(Debug, Clone)]
struct Check {
    id: String,
    code: String,
    expires_at: i64,
    /// A report found it overdue, so it counts once as missed on the dashboard.
    missed: bool,
}

/// Attention checks of one live lecture, for the organizer's dashboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LectureChecks {
    pub sent: u64,
    pub passed: u64,
    pub missed: u64,
    /// Sessions of the lecture whose last report counted within the last
    /// [`StudyRules::slack_ms`] plus one second.
    pub counting: usize,
}

/// One person's active study session.
struct Active {
    conn: ConnId,
    queue: mpsc::Sender<Outbound>,
    kick: Arc<Kick>,
    member_id: i64,
    lesson: LessonFacts,
    nonce: String,
    last_seq: u64,
    last_at: i64,
    last_position_ms: i64,
    allowance_ms: i64,
    watched_until_ms: i64,
    counted_ms: i64,
    completed: bool,
    next_check_ms: i64,
    check: Option<Check>,
    /// When a report last counted, for the lecture dashboard.
    last_counted_at: i64,
}

/// The outcome of one progress message: counted, or the first rule it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Counted,
    NotPlaying,
    Hidden,
    CheckMissed,
    Rewound,
    Skipped,
    TooFast,
    /// A live lecture's media is not connected on the reporting connection.
    NoMedia,
}

/// Progress of one session as the page reports it.
#[derive(Debug, Clone, Copy)]
struct Report {
    position_ms: i64,
    playing: bool,
    visible: bool,
}

impl Active {
    /// Applies a report at `now` and returns how it counted; always moves
    /// the baseline to the reported position.
    fn assess(&mut self, rules: &StudyRules, now: i64, report: Report) -> Status {
        let elapsed = (now - self.last_at).max(0);
        let refill = elapsed * self.lesson.max_rate_pct / 100;
        self.allowance_ms = (self.allowance_ms + refill).min(rules.slack_ms);
        let position = report.position_ms.clamp(0, self.lesson.duration_ms);
        let start = self.last_position_ms;
        self.last_at = now;
        self.last_position_ms = position;
        let overdue = self.check.as_ref().is_some_and(|c| now > c.expires_at);
        if !report.visible {
            return Status::Hidden;
        }
        if !report.playing {
            return Status::NotPlaying;
        }
        if overdue {
            return Status::CheckMissed;
        }
        if position < start {
            return Status::Rewound;
        }
        if start > self.watched_until_ms + rules.slack_ms {
            return Status::Skipped;
        }
        let advance = position - start;
        let extension = (position - self.watched_until_ms).max(0);
        let needed = advance.max(extension);
        if needed > self.allowance_ms {
            return Status::TooFast;
        }
        self.allowance_ms -= needed;
        self.counted_ms += advance;
        self.watched_until_ms = self.watched_until_ms.max(position);
        Status::Counted
    }

    /// Applies a report of a live lecture at `now`: the real time since the previous
    /// report counts, at most [`StudyRules::slack_ms`], while the page is visible, the
    /// media connected and no attention check overdue. The page's position is ignored.
    fn assess_live(&mut self, rules: &StudyRules, now: i64, report: Report, media: bool) -> Status {
        let elapsed = (now - self.last_at).clamp(0, rules.slack_ms);
        self.last_at = now;
        self.last_position_ms = report.position_ms.clamp(0, self.lesson.duration_ms);
        let overdue = self.check.as_ref().is_some_and(|c| now > c.expires_at);
        if !report.visible {
            return Status::Hidden;
        }
        if !media {
            return Status::NoMedia;
        }
        if overdue {
            return Status::CheckMissed;
        }
        self.counted_ms += elapsed;
        self.watched_until_ms = self.counted_ms;
        self.last_counted_at = now;
        Status::Counted
    }

    /// Checks whether the watched range reaches the end of the lesson, within
    /// a tenth of its length and at most one second. A live lecture is never
    /// complete this way; it is credited when it ends.
    fn reached_end(&self) -> bool {
        if self.lesson.live_meeting.is_some() {
            return false;
        }
        let tolerance = (self.lesson.duration_ms / 10).min(1_000);
        self.watched_until_ms + tolerance >= self.lesson.duration_ms
    }

    /// Issues an attention check once enough time has counted since the last.
    fn due_check(&mut self, rules: &StudyRules, now: i64) -> Option<Check> {
        if self.check.is_some() || self.completed || self.counted_ms < self.next_check_ms {
            return None;
        }
        let mut rng = rand::thread_rng();
        let check = Check {
            id: hex::encode(rng.r#gen::<[u8; 8]>()),
            code: format!("{:04}", rng.gen_range(0..10_000)),
            expires_at: now + rules.check_window_ms,
            missed: false,
        };
        self.check = Some(check.clone());
        Some(check)
    }
}

fn next_check_gap(rules: &StudyRules) -> i64 {
    let (low, high) = rules.check_after_ms;
    rand::thread_rng().gen_range(low..=high.max(low))
}

/// Active study sessions on this node, one per member. Which session of a
/// member counts across nodes is decided by its claim row.
#[derive(Default)]
pub struct Tracker {
    rules: RwLock<StudyRules>,
    active: Mutex<HashMap<i64, Active>>,
    /// Attention checks of live lectures by lesson, since the server started.
    lecture_checks: Mutex<HashMap<i64, LectureChecks>>,
}

impl Tracker {
    /// Replaces the timing rules; sessions started later use them.
    pub fn set_rules(&self, rules: StudyRules) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = rules;
    }

    fn rules(&self) -> StudyRules {
        *self.rules.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns the attention checks of a live lecture and how many sessions count now.
    pub fn lecture_checks(&self, lesson_id: i64) -> LectureChecks {
        let mut checks = self
            .lecture_checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&lesson_id)
            .copied()
            .unwrap_or_default();
        let recent = now_ms() - self.rules().slack_ms - 1_000;
        let active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        checks.counting = active
            .values()
            .filter(|s| s.lesson.id == lesson_id && s.last_counted_at >= recent)
            .count();
        checks
    }

    /// Changes a lecture's check counts; callers may hold `active`, never the reverse.
    fn count_check(&self, lesson_id: i64, change: impl FnOnce(&mut LectureChecks)) {
        let mut checks = self
            .lecture_checks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        change(checks.entry(lesson_id).or_default());
    }

    /// Ends every session of a lesson, telling each page with `study_stopped`; a live
    /// lecture does this when it ends.
    pub fn end_lesson(&self, lesson_id: i64) {
        let ended: Vec<Active> = {
            let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
            let members: Vec<i64> = active
                .iter()
                .filter(|(_, s)| s.lesson.id == lesson_id)
                .map(|(member, _)| *member)
                .collect();
            members
                .into_iter()
                .filter_map(|member| active.remove(&member))
                .collect()
        };
        for session in ended {
            let stopped = Reply::StudyStopped {
                id: None,
                lesson_id,
            };
            offer(
                &session.queue,
                &session.kick,
                Outbound::Text(stopped.text()),
            );
        }
    }

    /// Returns the meeting of the live lecture a member's active session studies.
    fn live_meeting_of(&self, member_id: i64, lesson_id: i64) -> Option<i64> {
        let active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        active
            .get(&member_id)
            .filter(|s| s.lesson.id == lesson_id)
            .and_then(|s| s.lesson.live_meeting)
    }

    /// Ends the sessions of a closed connection.
    pub fn connection_closed(&self, conn: ConnId) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        active.retain(|_, session| session.conn != conn);
    }
}

// Wire messages; docs/protocol.md describes them.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    #[serde(default)]
    pub id: Option<String>,
    pub lesson_id: i64,
    /// The player's position in seconds when the session starts.
    #[serde(default)]
    pub position: f64,
    pub visible: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    #[serde(default)]
    pub id: Option<String>,
    pub lesson_id: i64,
    pub nonce: String,
    pub seq: u64,
    /// Playback position in seconds.
    pub position: f64,
    pub playing: bool,
    pub visible: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    #[serde(default)]
    pub id: Option<String>,
    pub lesson_id: i64,
    pub nonce: String,
    pub check_id: String,
    pub code: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    #[serde(default)]
    pub id: Option<String>,
    pub lesson_id: i64,
    pub nonce: String,
}

/// A `study_*` request from the page.
#[derive(Debug)]
pub enum Request {
    Start(Start),
    Progress(Progress),
    Answer(Answer),
    Stop(Stop),
}

impl Request {
    pub fn id(&self) -> Option<String> {
        match self {
            Self::Start(m) => m.id.clone(),
            Self::Progress(m) => m.id.clone(),
            Self::Answer(m) => m.id.clone(),
            Self::Stop(m) => m.id.clone(),
        }
    }
}

/// A `study_*` message from the server.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    StudyStarted {
        id: Option<String>,
        lesson_id: i64,
        nonce: String,
        /// Where to resume, in seconds.
        position: f64,
        watched_until: f64,
        counted: f64,
        duration: f64,
        max_rate: f64,
        completed: bool,
    },
    StudyAck {
        id: Option<String>,
        lesson_id: i64,
        seq: u64,
        status: Status,
        counted: f64,
        watched_until: f64,
        completed: bool,
        /// Credit hours added by this message (the lesson completed).
        credited_hours: Option<f64>,
    },
    StudyCheck {
        lesson_id: i64,
        check_id: String,
        code: String,
        expires_in_ms: i64,
    },
    StudyCheckPassed {
        id: Option<String>,
        lesson_id: i64,
        check_id: String,
    },
    StudyStopped {
        id: Option<String>,
        lesson_id: i64,
    },
    StudyPaused {
        lesson_id: i64,
        reason: &'static str,
    },
}

impl Reply {
    pub fn text(&self) -> Utf8Bytes {
        Utf8Bytes::from(serde_json::to_string(self).expect("study replies serialize"))
    }
}

/// The hub connection a request arrived on.
pub struct Link {
    pub conn: ConnId,
    pub queue: mpsc::Sender<Outbound>,
    pub kick: Arc<Kick>,
}

/// Applies a study request and returns the messages to send back, in order.
pub async fn handle(
    state: &AppState,
    link: &Link,
    principal: &Principal,
    request: Request,
) -> AppResult<Vec<Reply>> {
    let Some(member_id) = principal.member_id else {
        return Err(AppError::invalid(
            "account",
            "此账号未关联党员，不能计学时",
            "this account is not linked to a member and cannot earn credit hours",
        ));
    };
    match request {
        Request::Start(start) => begin(state, link, principal, member_id, start).await,
        Request::Progress(progress) => advance(state, link, member_id, progress).await,
        Request::Answer(answer) => answer_check(state, link, member_id, answer),
        Request::Stop(stop) => {
            {
                let mut active = state.study.active.lock().unwrap_or_else(|e| e.into_inner());
                if active
                    .get(&member_id)
                    .is_some_and(|s| s.conn == link.conn && s.nonce == stop.nonce)
                {
                    active.remove(&member_id);
                }
            }
            sqlx::query("DELETE FROM learning_study_claims WHERE member_id = $1 AND nonce = $2")
                .bind(member_id)
                .bind(&stop.nonce)
                .execute(&state.db.pool)
                .await?;
            Ok(vec![Reply::StudyStopped {
                id: stop.id,
                lesson_id: stop.lesson_id,
            }])
        }
    }
}

async fn begin(
    state: &AppState,
    link: &Link,
    principal: &Principal,
    member_id: i64,
    start: Start,
) -> AppResult<Vec<Reply>> {
    let lesson = load_lesson(state, principal, start.lesson_id).await?;
    let now = now_ms();
    // Two tabs may start at once; the row is created once either way.
    sqlx::query(
        "INSERT INTO learning_progress (member_id, lesson_id, position_ms, watched_until_ms, \
         counted_ms, updated_at) VALUES ($1, $2, 0, 0, 0, $3) \
         ON CONFLICT (member_id, lesson_id) DO NOTHING",
    )
    .bind(member_id)
    .bind(lesson.id)
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    let nonce = hex::encode(rand::thread_rng().r#gen::<[u8; 16]>());
    claim(state, member_id, lesson.id, &nonce, now).await?;
    // Read after the claim: a node that lost it stores nothing more, so
    // this session resumes from everything counted before.
    let stored = sqlx::query(
        "SELECT watched_until_ms, counted_ms, completed_at FROM learning_progress \
         WHERE member_id = $1 AND lesson_id = $2",
    )
    .bind(member_id)
    .bind(lesson.id)
    .fetch_one(&state.db.pool)
    .await?;
    let watched_until_ms: i64 = stored.try_get("watched_until_ms")?;
    let counted_ms: i64 = stored.try_get("counted_ms")?;
    let completed = stored.try_get::<Option<i64>, _>("completed_at")?.is_some();
    let rules = state.study.rules();
    let position_ms = seconds_to_ms("position", start.position)?.clamp(0, lesson.duration_ms);
    let session = Active {
        conn: link.conn,
        queue: link.queue.clone(),
        kick: link.kick.clone(),
        member_id,
        lesson: lesson.clone(),
        nonce: nonce.clone(),
        last_seq: 0,
        last_at: now,
        last_position_ms: position_ms,
        allowance_ms: rules.slack_ms,
        watched_until_ms,
        counted_ms,
        completed,
        next_check_ms: counted_ms + next_check_gap(&rules),
        check: None,
        last_counted_at: 0,
    };
    let replaced = {
        let mut active = state.study.active.lock().unwrap_or_else(|e| e.into_inner());
        active.insert(member_id, session)
    };
    if let Some(old) = replaced.filter(|old| old.conn != link.conn) {
        let paused = Reply::StudyPaused {
            lesson_id: old.lesson.id,
            reason: "other_session",
        };
        offer(&old.queue, &old.kick, Outbound::Text(paused.text()));
        tracing::info!(
            member_id,
            lesson_id = old.lesson.id,
            conn_id = old.conn,
            "study session paused by another session"
        );
    }
    tracing::debug!(
        member_id,
        lesson_id = lesson.id,
        conn_id = link.conn,
        "study session started"
    );
    Ok(vec![Reply::StudyStarted {
        id: start.id,
        lesson_id: lesson.id,
        nonce,
        position: position_ms as f64 / 1000.0,
        watched_until: watched_until_ms as f64 / 1000.0,
        counted: counted_ms as f64 / 1000.0,
        duration: lesson.duration_ms as f64 / 1000.0,
        max_rate: lesson.max_rate_pct as f64 / 100.0,
        completed,
    }])
}

/// Makes this session the member's one active session on every node.
async fn claim(
    state: &AppState,
    member_id: i64,
    lesson_id: i64,
    nonce: &str,
    now: i64,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO learning_study_claims (member_id, lesson_id, nonce, node_id, claimed_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (member_id) DO UPDATE SET \
         lesson_id = excluded.lesson_id, nonce = excluded.nonce, node_id = excluded.node_id, \
         claimed_at = excluded.claimed_at",
    )
    .bind(member_id)
    .bind(lesson_id)
    .bind(nonce)
    .bind(&state.config.node_id)
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

async fn load_lesson(
    state: &AppState,
    principal: &Principal,
    lesson_id: i64,
) -> AppResult<LessonFacts> {
    let course = super::access::readable_lesson_course(state, principal, lesson_id).await?;
    let course_id = course.id;
    let row = sqlx::query(
        "SELECT l.duration_ms, l.max_rate_pct, l.credit_centi, x.meeting_id, x.ended_at          FROM learning_lessons l LEFT JOIN learning_lectures x ON x.lesson_id = l.id WHERE l.id = $1",
    )
    .bind(lesson_id)
    .fetch_one(&state.db.pool)
    .await?;
    let duration_ms: i64 = row.try_get("duration_ms")?;
    let credit_centi: Option<i64> = row.try_get("credit_centi")?;
    let live_meeting: Option<i64> = row.try_get("meeting_id")?;
    if row.try_get::<Option<i64>, _>("ended_at")?.is_some() {
        return Err(AppError::conflict(
            "lecture_ended",
            "直播课已结束，不再计学时",
            "the live lecture has ended and no longer counts study time",
        ));
    }
    Ok(LessonFacts {
        id: lesson_id,
        course_id,
        category: course.category,
        duration_ms,
        max_rate_pct: row.try_get("max_rate_pct")?,
        credit_centi: credit_centi.unwrap_or_else(|| super::credit::default_centi(duration_ms)),
        live_meeting,
    })
}

fn seconds_to_ms(field: &str, seconds: f64) -> AppResult<i64> {
    if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
        return Err(AppError::invalid(
            field,
            "播放位置须在 0 到 86400 秒之间",
            format!("{field} must be between 0 and 86400 seconds"),
        ));
    }
    Ok((seconds * 1000.0).round() as i64)
}

/// Why a progress message was refused before it was assessed.
enum Refusal {
    NotActive,
    Paused,
    Forged(&'static str),
    Replayed,
}

/// The outcome of a progress message once the tracker lock is released.
struct Outcome {
    status: Status,
    nonce: String,
    lesson: LessonFacts,
    position_ms: i64,
    watched_until_ms: i64,
    counted_ms: i64,
    newly_completed: bool,
    completed: bool,
    check: Option<Check>,
}

async fn advance(
    state: &AppState,
    link: &Link,
    member_id: i64,
    progress: Progress,
) -> AppResult<Vec<Reply>> {
    let position_ms = seconds_to_ms("position", progress.position)?;
    let media = match state.study.live_meeting_of(member_id, progress.lesson_id) {
        Some(meeting_id) => {
            crate::meetings::live::lecture::media_connected(state, meeting_id, link.conn).await
        }
        None => false,
    };
    let outcome = assess_progress(state, link, member_id, &progress, position_ms, media);
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(refusal) => return Err(refuse(state, member_id, &progress, refusal).await),
    };
    if outcome.status == Status::TooFast {
        log_rejection(state, member_id, progress.lesson_id, "too_fast").await;
    }
    let credited = match store_progress(state, member_id, &outcome).await? {
        Stored::Saved { credited } => credited,
        Stored::ClaimLost => {
            end_local_session(state, member_id, &outcome.nonce);
            let paused = Reply::StudyPaused {
                lesson_id: progress.lesson_id,
                reason: "other_session",
            };
            offer(&link.queue, &link.kick, Outbound::Text(paused.text()));
            tracing::info!(
                member_id,
                lesson_id = progress.lesson_id,
                conn_id = link.conn,
                "study session paused by a session on another node"
            );
            return Err(refuse(state, member_id, &progress, Refusal::Paused).await);
        }
        Stored::LessonGone => {
            end_local_session(state, member_id, &outcome.nonce);
            return Err(refuse(state, member_id, &progress, Refusal::NotActive).await);
        }
    };
    let mut replies = vec![Reply::StudyAck {
        id: progress.id,
        lesson_id: progress.lesson_id,
        seq: progress.seq,
        status: outcome.status,
        counted: outcome.counted_ms as f64 / 1000.0,
        watched_until: outcome.watched_until_ms as f64 / 1000.0,
        completed: outcome.completed,
        credited_hours: credited.map(super::hours),
    }];
    if let Some(check) = outcome.check {
        replies.push(Reply::StudyCheck {
            lesson_id: progress.lesson_id,
            check_id: check.id,
            code: check.code,
            expires_in_ms: state.study.rules().check_window_ms,
        });
    }
    Ok(replies)
}

fn assess_progress(
    state: &AppState,
    link: &Link,
    member_id: i64,
    progress: &Progress,
    position_ms: i64,
    media: bool,
) -> Result<Outcome, Refusal> {
    let rules = state.study.rules();
    let now = now_ms();
    let mut active = state.study.active.lock().unwrap_or_else(|e| e.into_inner());
    let Some(session) = active.get_mut(&member_id) else {
        return Err(Refusal::NotActive);
    };
    if session.lesson.id != progress.lesson_id {
        return Err(Refusal::NotActive);
    }
    if session.conn != link.conn {
        return Err(if session.nonce == progress.nonce {
            Refusal::Forged("nonce_of_other_connection")
        } else {
            Refusal::Paused
        });
    }
    if session.nonce != progress.nonce {
        return Err(Refusal::Forged("wrong_nonce"));
    }
    if progress.seq <= session.last_seq {
        return Err(Refusal::Replayed);
    }
    session.last_seq = progress.seq;
    let report = Report {
        position_ms,
        playing: progress.playing,
        visible: progress.visible,
    };
    let live = session.lesson.live_meeting.is_some();
    let status = if live {
        session.assess_live(&rules, now, report, media)
    } else {
        session.assess(&rules, now, report)
    };
    let newly_completed = !session.completed && session.reached_end();
    if newly_completed {
        session.completed = true;
    }
    let newly_missed = status == Status::CheckMissed
        && session
            .check
            .as_mut()
            .is_some_and(|check| !std::mem::replace(&mut check.missed, true));
    let check = session.due_check(&rules, now);
    if live && (newly_missed || check.is_some()) {
        // Lock order: `active`, then `lecture_checks`.
        state.study.count_check(session.lesson.id, |checks| {
            checks.missed += u64::from(newly_missed);
            checks.sent += u64::from(check.is_some());
        });
    }
    Ok(Outcome {
        status,
        nonce: session.nonce.clone(),
        lesson: session.lesson.clone(),
        position_ms: session.last_position_ms,
        watched_until_ms: session.watched_until_ms,
        counted_ms: session.counted_ms,
        newly_completed,
        completed: session.completed,
        check,
    })
}

async fn refuse(
    state: &AppState,
    member_id: i64,
    progress: &Progress,
    refusal: Refusal,
) -> AppError {
    match refusal {
        Refusal::NotActive => AppError::conflict(
            "study_not_active",
            "此课时没有进行中的学习，请重新开始",
            "no study session is active for this lesson; start one first",
        ),
        Refusal::Paused => AppError::conflict(
            "study_paused",
            "已在其他页面或设备继续学习，此处已暂停",
            "study continues in another tab or device; this one is paused",
        ),
        Refusal::Forged(reason) => {
            log_rejection(state, member_id, progress.lesson_id, reason).await;
            AppError::bad_request(
                "study_forged",
                "学习进度无效，未计入学时",
                "the progress message is not valid for this session and was not counted",
            )
        }
        Refusal::Replayed => {
            log_rejection(
                state,
                member_id,
                progress.lesson_id,
                "replayed_or_out_of_order",
            )
            .await;
            AppError::bad_request(
                "study_replayed",
                format!("学习进度序号 {} 重复或乱序，未计入学时", progress.seq),
                format!(
                    "progress seq {} is repeated or out of order and was not counted",
                    progress.seq
                ),
            )
        }
    }
}

/// Stores a rejected message; a failure to store is logged, not returned,
/// because the rejection itself already happened.
async fn log_rejection(state: &AppState, member_id: i64, lesson_id: i64, reason: &str) {
    tracing::warn!(member_id, lesson_id, reason, "study progress rejected");
    metrics::counter!("dangwu_learning_progress_rejected_total").increment(1);
    let stored = sqlx::query(
        "INSERT INTO learning_rejections (member_id, lesson_id, reason, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(member_id)
    .bind(lesson_id)
    .bind(reason)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await;
    if let Err(error) = stored {
        tracing::error!(%error, member_id, lesson_id, "storing a study rejection failed");
    }
}

/// Removes this node's session of a member if it is still the one with
/// `nonce`.
fn end_local_session(state: &AppState, member_id: i64, nonce: &str) {
    let mut active = state.study.active.lock().unwrap_or_else(|e| e.into_inner());
    if active.get(&member_id).is_some_and(|s| s.nonce == nonce) {
        active.remove(&member_id);
    }
}

/// The result of storing a progress message.
enum Stored {
    /// Written, with the credit hours it added in hundredths.
    Saved { credited: Option<i64> },
    /// Another session, possibly on another node, has the member's claim.
    ClaimLost,
    /// The lesson was deleted while the session ran.
    LessonGone,
}

/// Writes the session's progress and, on completion, the ledger entry, but
/// only while the session still has the member's claim and the lesson is
/// not deleted.
async fn store_progress(state: &AppState, member_id: i64, outcome: &Outcome) -> AppResult<Stored> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    // The watched range and the counted time never shrink: a session that
    // took over on another node may have read them just before the old
    // session's last write.
    let updated = sqlx::query(
        "UPDATE learning_progress SET position_ms = $1, \
         watched_until_ms = CASE WHEN watched_until_ms > $2 THEN watched_until_ms ELSE $2 END, \
         counted_ms = CASE WHEN counted_ms > $3 THEN counted_ms ELSE $3 END, \
         updated_at = $4, completed_at = CASE WHEN $5 = 1 AND completed_at IS NULL THEN $4 ELSE completed_at END \
         WHERE member_id = $6 AND lesson_id = $7 \
         AND EXISTS (SELECT 1 FROM learning_study_claims c WHERE c.member_id = $6 AND c.nonce = $8) \
         AND EXISTS (SELECT 1 FROM learning_lessons l WHERE l.id = $7 AND l.deleted_at IS NULL)",
    )
    .bind(outcome.position_ms)
    .bind(outcome.watched_until_ms)
    .bind(outcome.counted_ms)
    .bind(now)
    .bind(i64::from(outcome.newly_completed))
    .bind(member_id)
    .bind(outcome.lesson.id)
    .bind(&outcome.nonce)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        drop(tx);
        let claimed: Option<String> =
            sqlx::query_scalar("SELECT nonce FROM learning_study_claims WHERE member_id = $1")
                .bind(member_id)
                .fetch_optional(&state.db.pool)
                .await?;
        return Ok(if claimed.as_deref() == Some(outcome.nonce.as_str()) {
            Stored::LessonGone
        } else {
            Stored::ClaimLost
        });
    }
    let mut events = Vec::new();
    if outcome.newly_completed {
        events = add_credit(
            &mut tx,
            NewCredit {
                member_id,
                category: outcome.lesson.category,
                centi: outcome.lesson.credit_centi,
                source: Source::Lesson(outcome.lesson.id),
                course_id: Some(outcome.lesson.course_id),
                note: "",
                entered_by: None,
            },
        )
        .await?;
    }
    tx.commit().await?;
    let credited = !events.is_empty();
    state.hub.publish(events);
    Ok(Stored::Saved {
        credited: credited.then_some(outcome.lesson.credit_centi),
    })
}

fn answer_check(
    state: &AppState,
    link: &Link,
    member_id: i64,
    answer: Answer,
) -> AppResult<Vec<Reply>> {
    let rules = state.study.rules();
    let mut active = state.study.active.lock().unwrap_or_else(|e| e.into_inner());
    let session = active
        .get_mut(&member_id)
        .filter(|s| {
            s.conn == link.conn && s.nonce == answer.nonce && s.lesson.id == answer.lesson_id
        })
        .ok_or_else(|| {
            AppError::conflict(
                "study_not_active",
                "此课时没有进行中的学习，请重新开始",
                "no study session is active for this lesson; start one first",
            )
        })?;
    let matches = session
        .check
        .as_ref()
        .is_some_and(|check| check.id == answer.check_id && check.code == answer.code.trim());
    if !matches {
        return Err(AppError::invalid(
            "code",
            "验证码不正确",
            "the attention check code is wrong",
        ));
    }
    session.check = None;
    session.next_check_ms = session.counted_ms + next_check_gap(&rules);
    if session.lesson.live_meeting.is_some() {
        state
            .study
            .count_check(session.lesson.id, |checks| checks.passed += 1);
    }
    tracing::debug!(
        member_id = session.member_id,
        lesson_id = answer.lesson_id,
        "attention check passed"
    );
    Ok(vec![Reply::StudyCheckPassed {
        id: answer.id,
        lesson_id: answer.lesson_id,
        check_id: answer.check_id,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(duration_ms: i64, rate_pct: i64, rules: &StudyRules) -> Active {
        let (queue, _) = mpsc::channel(1);
        Active {
            conn: 1,
            queue,
            kick: Arc::new(Kick::default()),
            member_id: 1,
            lesson: LessonFacts {
                id: 1,
                course_id: 1,
                category: Category::Required,
                duration_ms,
                max_rate_pct: rate_pct,
                credit_centi: 25,
                live_meeting: None,
            },
            nonce: "n".into(),
            last_seq: 0,
            last_at: 0,
            last_position_ms: 0,
            allowance_ms: rules.slack_ms,
            watched_until_ms: 0,
            counted_ms: 0,
            completed: false,
            next_check_ms: i64::MAX,
            check: None,
            last_counted_at: 0,
        }
    }

    fn play(position_ms: i64) -> Report {
        Report {
            position_ms,
            playing: true,
            visible: true,
        }
    }

    #[test]
    fn real_time_playback_counts() {
        let rules = StudyRules::default();
        let mut s = session(60_000, 100, &rules);
        for second in 1..=60 {
            assert_eq!(
                s.assess(&rules, second * 1000, play(second * 1000)),
                Status::Counted
            );
        }
        assert_eq!(s.counted_ms, 60_000);
        assert!(s.reached_end());
    }

    #[test]
    fn frequent_messages_cannot_exceed_rate() {
        let rules = StudyRules::default();
        let mut s = session(600_000, 150, &rules);
        // Every 100 ms the forger claims 1 s of progress.
        let mut position = 0;
        for step in 1..=100 {
            position += 1000;
            s.assess(&rules, step * 100, play(position));
        }
        // 10 s of real time at 1.5x plus the bucket.
        assert!(
            s.watched_until_ms <= 15_000 + rules.slack_ms,
            "{}",
            s.watched_until_ms
        );
    }

    #[test]
    fn hidden_jump_does_not_extend_range() {
        let rules = StudyRules::default();
        let mut s = session(600_000, 100, &rules);
        let hidden = Report {
            position_ms: 1_900,
            playing: true,
            visible: false,
        };
        assert_eq!(s.assess(&rules, 100, hidden), Status::Hidden);
        assert_eq!(s.assess(&rules, 200, play(2_000)), Status::Counted);
        assert_eq!(s.assess(&rules, 300, play(3_900)), Status::TooFast);
        assert!(s.watched_until_ms <= 2_000 + 100);
    }

    #[test]
    fn skip_ahead_is_not_counted() {
        let rules = StudyRules::default();
        let mut s = session(600_000, 100, &rules);
        s.assess(&rules, 1000, play(1000));
        // Seeking far ahead: the jump itself is too fast, later segments are skipped.
        assert_eq!(s.assess(&rules, 2000, play(300_000)), Status::TooFast);
        assert_eq!(s.assess(&rules, 3000, play(301_000)), Status::Skipped);
        assert_eq!(s.watched_until_ms, 1000);
    }
}
