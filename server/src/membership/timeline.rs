//! `GET /api/membership/members/{id}/timeline`: one member's record over
//! time, gathered from the pipeline steps, transfers and mobile
//! registrations. Members read their own; officers read those they manage.

use axum::extract::{Path, State};
use serde::Serialize;
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::rules::Step;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::members::MemberStatus;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(member_timeline))
}

/// The kind of event of a timeline entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    /// Joined the party (a member added without pipeline records).
    Joined,
    /// A step of the development pipeline.
    Step,
    /// A transfer letter was issued.
    TransferIssued,
    /// A transfer was accepted by an organization of this deployment.
    TransferAccepted,
    /// The relation moved out of the deployment (关系已转出).
    MovedOut,
    /// Registered as a mobile member with a host organization.
    Mobile,
}

/// One dated entry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// `YYYY-MM-DD`
    pub on: String,
    pub kind: TimelineKind,
    /// The pipeline step, for `step`.
    pub step: Option<Step>,
    /// The other organization: the receiving one of a transfer or the host.
    pub org_name: Option<String>,
}

/// A member's timeline, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberTimeline {
    pub member_id: i64,
    pub name: String,
    pub org_name: String,
    pub status: MemberStatus,
    pub entries: Vec<TimelineEntry>,
}

/// A member's timeline.
#[utoipa::path(get, path = "/api/membership/members/{id}/timeline", tag = "membership",
    params(("id" = i64, Path, description = "Member id")),
    responses((status = 200, body = MemberTimeline), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn member_timeline(
    State(state): State<AppState>,
    caller: Caller,
    Path(member_id): Path<i64>,
) -> AppResult<ApiJson<MemberTimeline>> {
    let mut conn = state.db.pool.acquire().await?;
    let row = sqlx::query(
        "SELECT m.name, m.status, m.joined_on, o.name AS org_name, o.path FROM members m \
         JOIN orgs o ON o.id = m.org_id WHERE m.id = $1",
    )
    .bind(member_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::not_found(("党员", "member"), member_id))?;
    let path: String = row.try_get("path")?;
    let allowed = caller.principal.can_member(member_id, &path, Access::Read);
    caller
        .principal
        .check(&state.db, allowed, ("member", member_id), Access::Read)
        .await?;

    let mut entries = pipeline_entries(&mut conn, member_id).await?;
    if entries.is_empty()
        && let Some(joined_on) = row.try_get::<Option<String>, _>("joined_on")?
    {
        entries.push(entry(joined_on, TimelineKind::Joined, None, None));
    }
    entries.extend(transfer_entries(&mut conn, member_id).await?);
    let registrations = sqlx::query(
        "SELECT g.starts_on, host.name FROM membership_mobile g \
         JOIN orgs host ON host.id = g.host_org_id WHERE g.member_id = $1",
    )
    .bind(member_id)
    .fetch_all(&mut *conn)
    .await?;
    for registration in registrations {
        entries.push(entry(
            registration.try_get("starts_on")?,
            TimelineKind::Mobile,
            None,
            Some(registration.try_get("name")?),
        ));
    }
    entries.sort_by(|a, b| a.on.cmp(&b.on));
    let status: String = row.try_get("status")?;
    Ok(ApiJson(MemberTimeline {
        member_id,
        name: row.try_get("name")?,
        org_name: row.try_get("org_name")?,
        status: MemberStatus::parse(&status),
        entries,
    }))
}

fn entry(
    on: String,
    kind: TimelineKind,
    step: Option<Step>,
    org_name: Option<String>,
) -> TimelineEntry {
    TimelineEntry {
        on,
        kind,
        step,
        org_name,
    }
}

/// Loads the recorded steps of the pipeline that created the member record.
async fn pipeline_entries(
    conn: &mut AnyConnection,
    member_id: i64,
) -> AppResult<Vec<TimelineEntry>> {
    let rows = sqlx::query(
        "SELECT s.step, s.taken_on FROM membership_steps s \
         JOIN membership_people p ON p.id = s.person_id WHERE p.member_id = $1 ORDER BY s.taken_on, s.id",
    )
    .bind(member_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut entries = Vec::new();
    for row in rows {
        let step: String = row.try_get("step")?;
        entries.push(entry(
            row.try_get("taken_on")?,
            TimelineKind::Step,
            Step::parse(&step),
            None,
        ));
    }
    Ok(entries)
}

/// Lists each transfer's letter and, once closed, its acceptance or, for a
/// transfer out of the deployment, the move out.
async fn transfer_entries(
    conn: &mut AnyConnection,
    member_id: i64,
) -> AppResult<Vec<TimelineEntry>> {
    let rows = sqlx::query(
        "SELECT issued_on, to_org_id, to_org_name, status, receipt_on FROM membership_transfers \
         WHERE member_id = $1 ORDER BY id",
    )
    .bind(member_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut entries = Vec::new();
    for row in rows {
        let to_org_name: String = row.try_get("to_org_name")?;
        entries.push(entry(
            row.try_get("issued_on")?,
            TimelineKind::TransferIssued,
            None,
            Some(to_org_name.clone()),
        ));
        let status: String = row.try_get("status")?;
        let receipt_on: Option<String> = row.try_get("receipt_on")?;
        if let (Some(receipt_on), "accepted") = (receipt_on, status.as_str()) {
            let inside = row.try_get::<Option<i64>, _>("to_org_id")?.is_some();
            let kind = if inside {
                TimelineKind::TransferAccepted
            } else {
                TimelineKind::MovedOut
            };
            entries.push(entry(receipt_on, kind, None, Some(to_org_name)));
        }
    }
    Ok(entries)
}
