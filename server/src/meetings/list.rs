//! Lists and exports. The caller's meetings and an organization's are
//! listed by date range for a calendar. The archive lists an organization's
//! year with counts per kind (the 三会一课 cadence). One meeting exports as
//! a calendar file or as its whole record in JSON.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ics::{self, AgendaLine};
use super::kind::{self, MeetingKind};
use super::store::{self, MeetingRow, MeetingStatus, Quorum};
use super::view::{self, AgendaItem, LeaveRequest, MeetingView, Minutes, Participant};
use super::votes::{self, VoteView};
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::{ApiJson, Page, PageQuery};
use crate::org::load_org;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_meetings))
        .routes(routes!(calendar_file))
        .routes(routes!(archive))
        .routes(routes!(record))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// An organization whose meetings to list (with its subtree when
    /// `subtree` is true); without it, the caller's own meetings: those
    /// they are on the roll of, and those of their own organization.
    pub org_id: Option<i64>,
    #[serde(default)]
    pub subtree: bool,
    /// Meetings starting at or after this time, Unix milliseconds.
    pub from: Option<i64>,
    /// Meetings starting before this time, Unix milliseconds.
    pub to: Option<i64>,
    /// Only meetings in this state: `scheduled`, `live`, `ended` or
    /// `cancelled`.
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Lists meetings by start time, for a list or a calendar.
#[utoipa::path(get, path = "/api/meetings", tag = "meetings", params(ListQuery),
    responses((status = 200, body = Page<MeetingRow>), (status = 403, body = ErrorBody)))]
async fn list_meetings(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> AppResult<ApiJson<Page<MeetingRow>>> {
    let page = PageQuery {
        limit: query.limit,
        offset: query.offset,
    };
    let mut conn = state.db.pool.acquire().await?;
    let (condition, pattern) = match query.org_id {
        Some(org_id) => {
            let org = load_org(&mut conn, org_id)
                .await
                .map_err(|e| e.field("org_id"))?;
            let allowed = caller.principal.can_org(&org.path, Access::Read);
            caller
                .principal
                .check(&state.db, allowed, ("org", org_id), Access::Read)
                .await?;
            let pattern = if query.subtree {
                format!("{}%", org.path)
            } else {
                org.path
            };
            // `$4` is bound in both branches; this one does not need it.
            ("o.path LIKE $1 AND $4 >= 0", pattern)
        }
        None => (
            "(EXISTS (SELECT 1 FROM meeting_participants p WHERE p.meeting_id = mt.id AND p.member_id = $4) \
             OR o.path = $1)",
            caller.principal.own_org_path.clone().unwrap_or_default(),
        ),
    };
    let mut condition = format!("{condition} AND mt.starts_at >= $2 AND mt.starts_at < $3");
    if let Some(status) = &query.status {
        let status = MeetingStatus::parse(status).ok_or_else(|| {
            AppError::invalid(
                "status",
                format!("会议状态无效：{status}"),
                format!("invalid status {status:?}: use scheduled, live, ended or cancelled"),
            )
        })?;
        // A fixed word from the enum, not the request's text.
        condition.push_str(&format!(" AND mt.status = '{}'", status.as_str()));
    }
    let member_id = caller.session.account.member_id.unwrap_or(0);
    let rows = sqlx::query(&format!(
        "{} ORDER BY mt.starts_at, mt.id LIMIT $5 OFFSET $6",
        store::select_where(&condition)
    ))
    .bind(&pattern)
    .bind(query.from.unwrap_or(i64::MIN))
    .bind(query.to.unwrap_or(i64::MAX))
    .bind(member_id)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&mut *conn)
    .await?;
    let items = rows
        .iter()
        .map(MeetingRow::from_row)
        .collect::<AppResult<Vec<_>>>()?;
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM meetings mt JOIN orgs o ON o.id = mt.org_id WHERE {condition}"
    ))
    .bind(&pattern)
    .bind(query.from.unwrap_or(i64::MIN))
    .bind(query.to.unwrap_or(i64::MAX))
    .bind(member_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(ApiJson(Page::new(items, total, &page)))
}

/// Downloads the meeting's calendar entry (iCalendar).
#[utoipa::path(get, path = "/api/meetings/{id}/ics", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 200, content_type = "text/calendar"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn calendar_file(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let meeting = view::readable(&state, &caller, id).await?;
    let mut conn = state.db.pool.acquire().await?;
    let titles = super::schedule::agenda_titles(&mut conn, id).await?;
    let lines: Vec<AgendaLine<'_>> = titles
        .iter()
        .enumerate()
        .map(|(position, title)| AgendaLine {
            position: position as i64,
            title,
        })
        .collect();
    let body = ics::calendar(
        &meeting,
        &lines,
        &meeting.host_name,
        &state.config.public_url,
        now_ms(),
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"meeting-{id}.ics\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ArchiveQuery {
    /// Calendar year in China Standard Time, e.g. 2026.
    pub year: i32,
}

/// How many meetings of one kind an organization held in the year.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KindCount {
    pub kind: MeetingKind,
    pub kind_name: String,
    pub held: i64,
}

/// An organization's meeting records for one year.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Archive {
    pub org_id: i64,
    pub org_name: String,
    pub year: i32,
    /// Meetings held (ended) per kind, every kind listed.
    pub counts: Vec<KindCount>,
    /// The held meetings, oldest first.
    pub meetings: Vec<MeetingRow>,
}

/// Lists an organization's held meetings of one year with counts per kind
/// (whoever may read the organization).
#[utoipa::path(get, path = "/api/orgs/{id}/meeting-archive", tag = "meetings", params(("id" = i64, Path, description = "Organization id"), ArchiveQuery),
    responses((status = 200, body = Archive), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<ArchiveQuery>,
) -> AppResult<ApiJson<Archive>> {
    let mut conn = state.db.pool.acquire().await?;
    let org = load_org(&mut conn, id).await?;
    let allowed = caller.principal.can_org(&org.path, Access::Read);
    caller
        .principal
        .check(&state.db, allowed, ("org", id), Access::Read)
        .await?;
    let (from, to) = year_bounds(query.year)?;
    let rows = sqlx::query(&format!(
        "{} ORDER BY mt.starts_at, mt.id",
        store::select_where(
            "mt.org_id = $1 AND mt.status = 'ended' AND mt.starts_at >= $2 AND mt.starts_at < $3"
        )
    ))
    .bind(id)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let meetings = rows
        .iter()
        .map(MeetingRow::from_row)
        .collect::<AppResult<Vec<_>>>()?;
    let counts = kind::ALL
        .into_iter()
        .map(|kind| KindCount {
            kind,
            kind_name: kind.zh().to_owned(),
            held: meetings.iter().filter(|m| m.kind == kind).count() as i64,
        })
        .collect();
    Ok(ApiJson(Archive {
        org_id: id,
        org_name: org.name,
        year: query.year,
        counts,
        meetings,
    }))
}

/// Returns the first and past-the-last millisecond of a year in UTC+8.
pub(crate) fn year_bounds(year: i32) -> AppResult<(i64, i64)> {
    let start = |year: i32| {
        chrono::NaiveDate::from_ymd_opt(year, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_millis() - 8 * 3600 * 1000)
    };
    match (start(year), start(year + 1)) {
        (Some(from), Some(to)) if (1921..=9999).contains(&year) => Ok((from, to)),
        _ => Err(AppError::invalid(
            "year",
            format!("年份无效：{year}"),
            format!("invalid year {year}"),
        )),
    }
}

/// One attendance interval.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Interval {
    pub member_id: i64,
    pub name: String,
    pub joined_at: i64,
    pub left_at: Option<i64>,
}

/// The whole record of a meeting, for archiving outside Dangwu.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Record {
    pub meeting: MeetingRow,
    pub agenda: Vec<AgendaItem>,
    pub participants: Vec<Participant>,
    pub intervals: Vec<Interval>,
    pub quorum: Quorum,
    pub leave_requests: Vec<LeaveRequest>,
    pub votes: Vec<VoteView>,
    pub minutes: Option<Minutes>,
    pub exported_at: i64,
}

/// Exports the whole record of a meeting as JSON (whoever may read it).
#[utoipa::path(get, path = "/api/meetings/{id}/record", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 200, body = Record), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn record(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let MeetingView {
        meeting,
        agenda,
        participants,
        quorum,
        leave_requests,
        minutes,
        ..
    } = view::build(&state, &caller, id).await?;
    let mut conn = state.db.pool.acquire().await?;
    let record = Record {
        intervals: intervals(&mut conn, id).await?,
        votes: votes::list(&mut conn, &meeting, None).await?,
        meeting,
        agenda,
        participants,
        quorum,
        leave_requests,
        minutes,
        exported_at: now_ms(),
    };
    let disposition = format!("attachment; filename=\"meeting-record-{id}.json\"");
    Ok((
        [(header::CONTENT_DISPOSITION, disposition)],
        ApiJson(record),
    )
        .into_response())
}

async fn intervals(conn: &mut AnyConnection, id: i64) -> AppResult<Vec<Interval>> {
    let rows = sqlx::query(
        "SELECT a.member_id, m.name, a.joined_at, a.left_at FROM meeting_attendance a \
         JOIN members m ON m.id = a.member_id WHERE a.meeting_id = $1 ORDER BY a.joined_at, a.id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Interval {
                member_id: row.try_get("member_id")?,
                name: row.try_get("name")?,
                joined_at: row.try_get("joined_at")?,
                left_at: row.try_get("left_at")?,
            })
        })
        .collect()
}
