//! Meeting rows, the per-meeting write lock, standing, quorum numbers and
//! the `meeting:ID` event helper.

use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::kind::MeetingKind;
use super::rules;
use crate::audit::Actor;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::hub::protocol::Event;

/// The stage of a meeting's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MeetingStatus {
    Scheduled,
    Live,
    Ended,
    Cancelled,
}

impl MeetingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Live => "live",
            Self::Ended => "ended",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "scheduled" => Some(Self::Scheduled),
            "live" => Some(Self::Live),
            "ended" => Some(Self::Ended),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// One meeting as stored, with the names a page shows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MeetingRow {
    pub id: i64,
    pub org_id: i64,
    pub org_name: String,
    #[serde(skip)]
    pub org_path: String,
    pub kind: MeetingKind,
    /// The kind's Chinese name, e.g. 支委会.
    pub kind_name: String,
    pub title: String,
    /// Unix milliseconds.
    pub starts_at: i64,
    pub ends_at: i64,
    /// Empty when the meeting has no physical place.
    pub place: String,
    pub online: bool,
    pub host_member: i64,
    pub host_name: String,
    pub recorder_member: i64,
    pub recorder_name: String,
    pub status: MeetingStatus,
    pub locked: bool,
    /// Raised by every edit; the calendar entry's SEQUENCE.
    pub revision: i64,
    pub notice_id: Option<i64>,
    pub created_by: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub cancelled_at: Option<i64>,
    pub cancel_reason: Option<String>,
}

const SELECT: &str = "SELECT mt.id, mt.org_id, o.name AS org_name, o.path AS org_path, mt.kind, \
     mt.title, mt.starts_at, mt.ends_at, mt.place, mt.online, mt.host_member, h.name AS host_name, \
     mt.recorder_member, r.name AS recorder_name, mt.status, mt.locked, mt.revision, mt.notice_id, \
     mt.created_by, mt.created_at, mt.updated_at, mt.started_at, mt.ended_at, mt.cancelled_at, \
     mt.cancel_reason FROM meetings mt JOIN orgs o ON o.id = mt.org_id \
     JOIN members h ON h.id = mt.host_member JOIN members r ON r.id = mt.recorder_member";

impl MeetingRow {
    pub fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, AppError> {
        let kind: String = row.try_get("kind")?;
        let kind = MeetingKind::parse(&kind)
            .ok_or_else(|| AppError::internal(format!("unknown meeting kind {kind:?}")))?;
        let status: String = row.try_get("status")?;
        let status = MeetingStatus::parse(&status)
            .ok_or_else(|| AppError::internal(format!("unknown meeting status {status:?}")))?;
        Ok(Self {
            id: row.try_get("id")?,
            org_id: row.try_get("org_id")?,
            org_name: row.try_get("org_name")?,
            org_path: row.try_get("org_path")?,
            kind,
            kind_name: kind.zh().to_owned(),
            title: row.try_get("title")?,
            starts_at: row.try_get("starts_at")?,
            ends_at: row.try_get("ends_at")?,
            place: row.try_get("place")?,
            online: row.try_get::<i64, _>("online")? != 0,
            host_member: row.try_get("host_member")?,
            host_name: row.try_get("host_name")?,
            recorder_member: row.try_get("recorder_member")?,
            recorder_name: row.try_get("recorder_name")?,
            status,
            locked: row.try_get::<i64, _>("locked")? != 0,
            revision: row.try_get("revision")?,
            notice_id: row.try_get("notice_id")?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            started_at: row.try_get("started_at")?,
            ended_at: row.try_get("ended_at")?,
            cancelled_at: row.try_get("cancelled_at")?,
            cancel_reason: row.try_get("cancel_reason")?,
        })
    }

    /// Returns the meeting's date in China Standard Time, `YYYY-MM-DD`,
    /// the date that excusal periods are compared with.
    pub fn date(&self) -> String {
        china_time(self.starts_at).format("%Y-%m-%d").to_string()
    }

    /// Returns whether the member hosts or records the meeting.
    pub fn runs(&self, member_id: Option<i64>) -> bool {
        member_id.is_some_and(|id| id == self.host_member || id == self.recorder_member)
    }
}

/// Converts a Unix-millisecond time to China Standard Time (UTC+8, no
/// daylight saving).
pub fn china_time(ms: i64) -> chrono::DateTime<chrono::FixedOffset> {
    // NOTE: dates and times shown in notices and archives use UTC+8; there
    // is no per-deployment time zone setting.
    let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&offset)
}

pub fn not_found(id: i64) -> AppError {
    AppError::not_found(("会议", "meeting"), id)
}

/// Loads one meeting.
pub async fn load(conn: &mut AnyConnection, id: i64) -> AppResult<MeetingRow> {
    let row = sqlx::query(&format!("{SELECT} WHERE mt.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| not_found(id))?;
    MeetingRow::from_row(&row)
}

/// Loads one meeting from the pool.
pub async fn load_db(db: &Db, id: i64) -> AppResult<MeetingRow> {
    load(&mut *db.pool.acquire().await?, id).await
}

/// Takes the meeting's write lock inside a transaction, then loads it.
/// Every change to a meeting starts here, so changes to one meeting
/// (casting ballots included) run one after another on both backends, and
/// SQLite never has to upgrade a read transaction to a write.
pub async fn lock(conn: &mut AnyConnection, id: i64) -> AppResult<MeetingRow> {
    let touched = sqlx::query("UPDATE meetings SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if touched == 0 {
        return Err(not_found(id));
    }
    load(conn, id).await
}

/// Lists meetings matching an SQL condition on `mt` (with `$n` binds the
/// caller adds), ordered by start time.
pub fn select_where(condition: &str) -> String {
    format!("{SELECT} WHERE {condition}")
}

/// Live quorum numbers.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Quorum {
    /// Those required to attend: voting members of the body, less those
    /// excused who are not present.
    pub required: i64,
    /// Voting members present now (or, once the meeting ended, present at
    /// any time).
    pub present: i64,
    pub quorate: bool,
    /// More than four fifths present, as an election needs.
    pub election_quorate: bool,
}

/// SQL true when participant `p` is in the room or marked present.
pub const PRESENT: &str = "(p.live_connections > 0 OR p.marked_present_at IS NOT NULL \
     OR p.final_status = 'present')";

/// SQL true when participant `p` has an excusal covering date `$2`.
pub const EXCUSED: &str = "EXISTS (SELECT 1 FROM meeting_excusals e WHERE e.member_id = p.member_id \
     AND e.revoked_at IS NULL AND e.starts_on <= $2 AND e.ends_on >= $2)";

/// Counts those required to attend and those of them present.
pub async fn quorum(conn: &mut AnyConnection, meeting: &MeetingRow) -> AppResult<Quorum> {
    let row = sqlx::query(&format!(
        "SELECT \
         COALESCE(SUM(CASE WHEN {PRESENT} OR NOT {EXCUSED} THEN 1 ELSE 0 END), 0) AS required, \
         COALESCE(SUM(CASE WHEN {PRESENT} THEN 1 ELSE 0 END), 0) AS present \
         FROM meeting_participants p WHERE p.meeting_id = $1 AND p.voting = 1"
    ))
    .bind(meeting.id)
    .bind(meeting.date())
    .fetch_one(&mut *conn)
    .await?;
    let required: i64 = row.try_get("required")?;
    let present: i64 = row.try_get("present")?;
    Ok(Quorum {
        required,
        present,
        quorate: rules::quorate(required, present),
        election_quorate: rules::election_quorate(required, present),
    })
}

/// Appends an event to the meeting's topic inside the caller's transaction.
pub async fn event(
    conn: &mut AnyConnection,
    meeting_id: i64,
    kind: &str,
    data: Value,
) -> AppResult<Event> {
    Ok(crate::hub::store::append(conn, &format!("meeting:{meeting_id}"), kind, data).await?)
}

/// Loads the account's member id and an audit actor for it, for changes
/// that arrive over the hub rather than an HTTP request.
pub async fn account_actor(
    conn: &mut AnyConnection,
    account_id: i64,
) -> AppResult<(Option<i64>, Actor)> {
    let row = sqlx::query("SELECT username, member_id FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| AppError::not_found(("账号", "account"), account_id))?;
    let actor = Actor {
        account_id: Some(account_id),
        name: row.try_get("username")?,
        client_addr: "websocket".to_owned(),
    };
    Ok((row.try_get("member_id")?, actor))
}

/// Loads the member's name, empty when the member does not exist.
pub async fn member_name(conn: &mut AnyConnection, member_id: i64) -> AppResult<String> {
    Ok(sqlx::query_scalar("SELECT name FROM members WHERE id = $1")
        .bind(member_id)
        .fetch_optional(&mut *conn)
        .await?
        .unwrap_or_default())
}

/// Appends a to-do change to the `user:ID` topics of the host and the
/// recorder, who decide leave requests.
pub async fn deciders_event(
    conn: &mut AnyConnection,
    meeting: &MeetingRow,
    kind: &str,
    data: Value,
) -> AppResult<Vec<Event>> {
    let accounts: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM accounts WHERE member_id = $1 OR member_id = $2 ORDER BY id",
    )
    .bind(meeting.host_member)
    .bind(meeting.recorder_member)
    .fetch_all(&mut *conn)
    .await?;
    let mut events = Vec::with_capacity(accounts.len());
    for account in accounts {
        let topic = format!("user:{account}");
        events.push(crate::hub::store::append(conn, &topic, kind, data.clone()).await?);
    }
    Ok(events)
}

/// Appends `meeting.leave_settled` for the host and the recorder when a meeting that
/// ends or is cancelled leaves leave requests undecided.
pub async fn drop_pending_leave(
    conn: &mut AnyConnection,
    meeting: &MeetingRow,
) -> AppResult<Vec<Event>> {
    let pending: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM meeting_leave_requests WHERE meeting_id = $1 AND status = 'pending'",
    )
    .bind(meeting.id)
    .fetch_one(&mut *conn)
    .await?;
    if pending == 0 {
        return Ok(Vec::new());
    }
    let data = serde_json::json!({"meeting_id": meeting.id, "title": meeting.title});
    deciders_event(conn, meeting, "meeting.leave_settled", data).await
}
