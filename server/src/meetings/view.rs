//! `GET /api/meetings/{id}`: everything the meeting page shows, with names
//! and the caller's `can` flags, and the topic position it includes.

use axum::extract::{Path, State};
use serde::Serialize;
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::presence::{self, Standing};
use super::rules::PassRule;
use super::store::{self, MeetingRow, MeetingStatus, Quorum};
use super::votes::{self, VoteView};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::hub::store as events;
use crate::perm::Caller;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_meeting))
}

/// One agenda item.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgendaItem {
    pub position: i64,
    pub title: String,
    pub description: String,
    pub pass_rule: PassRule,
}

/// One person on the roll, with attendance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Participant {
    pub member_id: i64,
    /// The member's account, which the live side and chat name people by.
    pub account_id: Option<i64>,
    pub name: String,
    pub org_id: i64,
    pub org_name: String,
    /// `required` or `optional`.
    pub attendance: String,
    /// A member of the body with voting rights.
    pub voting: bool,
    /// `body`, `invited` or `walk_in`.
    pub source: String,
    /// In the room now or marked present (present at all, once ended).
    pub present: bool,
    pub marked_present: bool,
    /// Excused by a recorded decision for the meeting's date.
    pub excused: bool,
    /// `pending`, `approved` or `rejected`, when a leave request exists.
    pub leave: Option<String>,
    pub first_joined_at: Option<i64>,
    pub last_left_at: Option<i64>,
    /// `present`, `absent` or `on_leave`, once the meeting has ended.
    pub final_status: Option<String>,
}

/// A leave request (请假).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeaveRequest {
    pub member_id: i64,
    pub name: String,
    /// Shown to the host, the recorder, managers and the requester only.
    pub reason: Option<String>,
    pub filed_at: i64,
    pub status: String,
    pub decided_by_name: Option<String>,
    pub decided_at: Option<i64>,
    pub decision_note: Option<String>,
}

/// The minutes (会议纪要).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Minutes {
    pub body_html: String,
    /// Send this back as `expected_version` with the next save.
    pub version: i64,
    pub saved_by_name: String,
    pub saved_at: i64,
    pub approved_by_name: Option<String>,
    pub approved_at: Option<i64>,
}

/// The caller's own place in the meeting.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub member_id: Option<i64>,
    pub standing: Standing,
    pub voting: bool,
    pub present: bool,
}

/// The caller's allowed actions now, for showing the right buttons.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Permissions {
    /// Edit or cancel: managers of the organization, before the start.
    pub edit: bool,
    pub cancel: bool,
    /// Enter the room without waiting in the lobby.
    pub join: bool,
    /// File a leave request: someone on the roll, before the end.
    pub request_leave: bool,
    /// Decide leave requests and mark people present: host or recorder.
    pub manage_attendance: bool,
    /// Open and close votes: the host of a live meeting that decides.
    pub run_votes: bool,
    /// Save the minutes: the recorder, until they are approved.
    pub write_minutes: bool,
    /// Approve the minutes: the host, once minutes exist.
    pub approve_minutes: bool,
}

/// Everything the meeting page shows.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeetingView {
    pub meeting: MeetingRow,
    pub agenda: Vec<AgendaItem>,
    pub participants: Vec<Participant>,
    pub quorum: Quorum,
    /// Whether this kind of meeting takes decisions by vote.
    pub decides: bool,
    pub leave_requests: Vec<LeaveRequest>,
    pub votes: Vec<VoteView>,
    pub minutes: Option<Minutes>,
    pub me: Me,
    pub can: Permissions,
    /// The `meeting:ID` topic position this view includes; subscribe with
    /// `since` set to it.
    pub seq: i64,
}

/// Loads a meeting the caller may read.
pub async fn readable(state: &AppState, caller: &Caller, id: i64) -> AppResult<MeetingRow> {
    let meeting = store::load_db(&state.db, id).await?;
    if presence::can_read(state, &caller.principal, &meeting).await? {
        Ok(meeting)
    } else {
        Err(AppError::forbidden())
    }
}

/// Builds the page for a caller who may read the meeting.
pub async fn build(state: &AppState, caller: &Caller, id: i64) -> AppResult<MeetingView> {
    let seq = events::head(&state.db, &format!("meeting:{id}")).await?;
    let meeting = readable(state, caller, id).await?;
    let mut conn = state.db.pool.acquire().await?;
    let member_id = caller.session.account.member_id;
    let standing = presence::standing(&mut conn, &meeting, member_id).await?;
    let participants = participants(&mut conn, &meeting).await?;
    let mine = participants.iter().find(|p| Some(p.member_id) == member_id);
    let me = Me {
        member_id,
        standing,
        voting: mine.is_some_and(|p| p.voting),
        present: mine.is_some_and(|p| p.present),
    };
    let manages = super::schedule::can_manage(caller, &meeting);
    let runs = meeting.runs(member_id);
    let can = permissions(&meeting, &me, manages, runs, mine.is_some());
    let minutes = minutes(&mut conn, id).await?;
    let can = Permissions {
        approve_minutes: can.approve_minutes
            && minutes.as_ref().is_some_and(|m| m.approved_at.is_none()),
        write_minutes: can.write_minutes
            && minutes.as_ref().is_none_or(|m| m.approved_at.is_none()),
        ..can
    };
    let show_reasons = manages || runs;
    Ok(MeetingView {
        agenda: agenda(&mut conn, id).await?,
        quorum: store::quorum(&mut conn, &meeting).await?,
        decides: meeting.kind.decides(),
        leave_requests: leave_requests(&mut conn, id, show_reasons, member_id).await?,
        votes: votes::list(&mut conn, &meeting, member_id).await?,
        minutes,
        participants,
        me,
        can,
        seq,
        meeting,
    })
}

fn permissions(
    meeting: &MeetingRow,
    me: &Me,
    manages: bool,
    runs: bool,
    on_roll: bool,
) -> Permissions {
    let scheduled = meeting.status == MeetingStatus::Scheduled;
    let open = matches!(
        meeting.status,
        MeetingStatus::Scheduled | MeetingStatus::Live
    );
    let started = matches!(meeting.status, MeetingStatus::Live | MeetingStatus::Ended);
    let host = me.standing == Standing::Host;
    Permissions {
        edit: manages && scheduled,
        cancel: manages && scheduled,
        join: open && me.standing != Standing::Outsider,
        request_leave: open && on_roll && !runs,
        manage_attendance: runs && open,
        run_votes: host && meeting.status == MeetingStatus::Live && meeting.kind.decides(),
        write_minutes: me.standing == Standing::Recorder && started,
        approve_minutes: host && started,
    }
}

async fn agenda(conn: &mut AnyConnection, id: i64) -> AppResult<Vec<AgendaItem>> {
    let rows = sqlx::query(
        "SELECT position, title, description, pass_rule FROM meeting_agenda_items \
         WHERE meeting_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let rule: String = row.try_get("pass_rule")?;
            Ok(AgendaItem {
                position: row.try_get("position")?,
                title: row.try_get("title")?,
                description: row.try_get("description")?,
                pass_rule: PassRule::parse(&rule).unwrap_or(PassRule::Majority),
            })
        })
        .collect()
}

/// Loads the roll: voting members first, then by organization and member.
pub async fn participants(
    conn: &mut AnyConnection,
    meeting: &MeetingRow,
) -> AppResult<Vec<Participant>> {
    let rows = sqlx::query(&format!(
        "SELECT p.member_id, a.id AS account_id, m.name, p.org_id, o.name AS org_name, p.attendance, p.voting, p.source, \
         CASE WHEN {present} THEN 1 ELSE 0 END AS present, p.marked_present_at, \
         CASE WHEN {excused} THEN 1 ELSE 0 END AS excused, p.final_status, \
         (SELECT l.status FROM meeting_leave_requests l WHERE l.meeting_id = p.meeting_id AND l.member_id = p.member_id) AS leave, \
         (SELECT MIN(a.joined_at) FROM meeting_attendance a WHERE a.meeting_id = p.meeting_id AND a.member_id = p.member_id) AS first_joined, \
         (SELECT MAX(a.left_at) FROM meeting_attendance a WHERE a.meeting_id = p.meeting_id AND a.member_id = p.member_id) AS last_left \
         FROM meeting_participants p JOIN members m ON m.id = p.member_id JOIN orgs o ON o.id = p.org_id \
         LEFT JOIN accounts a ON a.member_id = p.member_id \
         WHERE p.meeting_id = $1 ORDER BY p.voting DESC, o.path, m.id",
        present = store::PRESENT,
        excused = store::EXCUSED,
    ))
    .bind(meeting.id)
    .bind(meeting.date())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Participant {
                member_id: row.try_get("member_id")?,
                account_id: row.try_get("account_id")?,
                name: row.try_get("name")?,
                org_id: row.try_get("org_id")?,
                org_name: row.try_get("org_name")?,
                attendance: row.try_get("attendance")?,
                voting: row.try_get::<i64, _>("voting")? != 0,
                source: row.try_get("source")?,
                present: row.try_get::<i64, _>("present")? != 0,
                marked_present: row
                    .try_get::<Option<i64>, _>("marked_present_at")?
                    .is_some(),
                excused: row.try_get::<i64, _>("excused")? != 0,
                leave: row.try_get("leave")?,
                first_joined_at: row.try_get("first_joined")?,
                last_left_at: row.try_get("last_left")?,
                final_status: row.try_get("final_status")?,
            })
        })
        .collect()
}

async fn leave_requests(
    conn: &mut AnyConnection,
    id: i64,
    show_reasons: bool,
    me: Option<i64>,
) -> AppResult<Vec<LeaveRequest>> {
    let rows = sqlx::query(
        "SELECT l.member_id, m.name, l.reason, l.filed_at, l.status, a.display_name AS decided_by_name, \
         l.decided_at, l.decision_note FROM meeting_leave_requests l JOIN members m ON m.id = l.member_id \
         LEFT JOIN accounts a ON a.id = l.decided_by WHERE l.meeting_id = $1 ORDER BY l.filed_at, l.member_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let member_id: i64 = row.try_get("member_id")?;
            let visible = show_reasons || me == Some(member_id);
            Ok(LeaveRequest {
                member_id,
                name: row.try_get("name")?,
                reason: if visible {
                    Some(row.try_get("reason")?)
                } else {
                    None
                },
                filed_at: row.try_get("filed_at")?,
                status: row.try_get("status")?,
                decided_by_name: row.try_get("decided_by_name")?,
                decided_at: row.try_get("decided_at")?,
                decision_note: if visible {
                    row.try_get("decision_note")?
                } else {
                    None
                },
            })
        })
        .collect()
}

pub async fn minutes(conn: &mut AnyConnection, id: i64) -> AppResult<Option<Minutes>> {
    let row = sqlx::query(
        "SELECT body_html, version, saved_by_name, saved_at, approved_by_name, approved_at \
         FROM meeting_minutes WHERE meeting_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(Minutes {
        body_html: row.try_get("body_html")?,
        version: row.try_get("version")?,
        saved_by_name: row.try_get("saved_by_name")?,
        saved_at: row.try_get("saved_at")?,
        approved_by_name: row.try_get("approved_by_name")?,
        approved_at: row.try_get("approved_at")?,
    }))
}

/// Reads one meeting: its record, roll, quorum, votes and minutes.
#[utoipa::path(get, path = "/api/meetings/{id}", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 200, body = MeetingView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_meeting(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<MeetingView>> {
    Ok(ApiJson(build(&state, &caller, id).await?))
}
