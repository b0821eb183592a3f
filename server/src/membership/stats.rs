//! HTTP resources for records and statistics: the 三会一课 cadence of an
//! organization's subtree with the organizations falling behind, and the
//! annual statistics tables of a subtree, as JSON, CSV or XLSX.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cadence::{self, Period};
use super::{officer_org, today};
use crate::calendar::china_time;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::meetings::MeetingKind;
use crate::org::load_org;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(cadence_report))
        .routes(routes!(annual_stats))
}

/// Upper bounds of the age bands, inclusive; the last band is open.
const AGE_BANDS: [(u32, &str); 7] = [
    (30, "30岁及以下"),
    (35, "31至35岁"),
    (40, "36至40岁"),
    (45, "41至45岁"),
    (50, "46至50岁"),
    (55, "51至55岁"),
    (60, "56至60岁"),
];
const OLDEST_BAND: &str = "61岁及以上";

#[derive(Deserialize, utoipa::IntoParams)]
pub struct YearQuery {
    /// The calendar year. [default: the current year]
    pub year: Option<i32>,
    /// `json`, `csv` or `xlsx`. [default: json]
    pub format: Option<String>,
}

/// One meeting requirement of one organization in a year.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CadenceLine {
    pub kind: MeetingKind,
    pub period: Period,
    /// Periods of the year that are over.
    pub elapsed: u32,
    /// Those of them without a meeting of this kind.
    pub missed: Vec<String>,
}

/// The cadence of one organization.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrgCadence {
    pub org_id: i64,
    pub org_name: String,
    pub lines: Vec<CadenceLine>,
    /// Whether any period was missed.
    pub behind: bool,
}

/// The cadence of a subtree.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CadenceReport {
    pub year: i32,
    pub orgs: Vec<OrgCadence>,
    /// The ids of the organizations falling behind.
    pub behind: Vec<i64>,
}

/// One row of the statistics tables.
#[derive(Debug, Serialize, utoipa::ToSchema, PartialEq, Eq)]
pub struct StatRow {
    pub table: String,
    pub label: String,
    pub count: i64,
}

/// The annual statistics of a subtree.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnnualStats {
    pub org_id: i64,
    pub org_name: String,
    pub year: i32,
    pub rows: Vec<StatRow>,
}

fn check_year(year: Option<i32>) -> AppResult<i32> {
    let year = year.unwrap_or_else(|| today().year());
    if !(2000..=today().year()).contains(&year) {
        return Err(AppError::invalid(
            "year",
            format!("年份须在 2000 到今年之间：{year}"),
            format!("year must be from 2000 to this year: {year}"),
        ));
    }
    Ok(year)
}

/// The 三会一课 cadence of every organization in a subtree for one year.
#[utoipa::path(get, path = "/api/membership/orgs/{id}/cadence", tag = "membership",
    params(("id" = i64, Path, description = "Organization id"), YearQuery),
    responses((status = 200, body = CadenceReport), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn cadence_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<i64>,
    Query(query): Query<YearQuery>,
) -> AppResult<ApiJson<CadenceReport>> {
    let year = check_year(query.year)?;
    let mut conn = state.db.pool.acquire().await?;
    let root = officer_org(&state, &caller, &mut conn, org_id, "id", Access::Read).await?;
    let rows = sqlx::query("SELECT id FROM orgs WHERE path LIKE $1 ORDER BY path")
        .bind(format!("{}%", root.path))
        .fetch_all(&mut *conn)
        .await?;
    let mut orgs = Vec::new();
    for row in rows {
        let org = load_org(&mut conn, row.try_get("id")?).await?;
        let mut lines = Vec::new();
        for requirement in cadence::requirements(org.kind) {
            let held = meeting_days(&mut conn, org.id, requirement.kind, year).await?;
            lines.push(CadenceLine {
                kind: requirement.kind,
                period: requirement.period,
                elapsed: cadence::elapsed_periods(requirement.period, year, today()),
                missed: cadence::missed_periods(requirement.period, year, today(), &held),
            });
        }
        if lines.is_empty() {
            continue;
        }
        orgs.push(OrgCadence {
            org_id: org.id,
            org_name: org.name,
            behind: lines.iter().any(|line| !line.missed.is_empty()),
            lines,
        });
    }
    let behind = orgs
        .iter()
        .filter(|org| org.behind)
        .map(|org| org.org_id)
        .collect();
    Ok(ApiJson(CadenceReport { year, orgs, behind }))
}

/// Loads the China Standard Time days of the organization's ended
/// meetings of one kind that started in `year`.
async fn meeting_days(
    conn: &mut AnyConnection,
    org_id: i64,
    kind: MeetingKind,
    year: i32,
) -> AppResult<Vec<NaiveDate>> {
    let starts: Vec<i64> = sqlx::query_scalar(
        "SELECT starts_at FROM meetings WHERE org_id = $1 AND kind = $2 AND status = 'ended'",
    )
    .bind(org_id)
    .bind(kind.as_str())
    .fetch_all(&mut *conn)
    .await?;
    Ok(starts
        .into_iter()
        .filter_map(chrono::DateTime::from_timestamp_millis)
        .map(|at| at.with_timezone(&china_time()).date_naive())
        .filter(|day| day.year() == year)
        .collect())
}

/// The annual statistics of a subtree: members by status, gender,
/// ethnicity, age band (at the end of the year) and education, admissions
/// and confirmations in the year, and transfers in and out.
#[utoipa::path(get, path = "/api/membership/orgs/{id}/stats", tag = "membership",
    params(("id" = i64, Path, description = "Organization id"), YearQuery),
    responses((status = 200, body = AnnualStats), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn annual_stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<i64>,
    Query(query): Query<YearQuery>,
) -> AppResult<Response> {
    let year = check_year(query.year)?;
    let mut conn = state.db.pool.acquire().await?;
    let root = officer_org(&state, &caller, &mut conn, org_id, "id", Access::Read).await?;
    let rows = compute(&mut conn, &root.path, year).await?;
    let stats = AnnualStats {
        org_id,
        org_name: root.name,
        year,
        rows,
    };
    match query.format.as_deref().unwrap_or("json") {
        "json" => Ok(ApiJson(stats).into_response()),
        "csv" => Ok(download(
            to_csv(&stats)?,
            "text/csv; charset=utf-8",
            year,
            "csv",
        )),
        "xlsx" => Ok(download(
            to_xlsx(&stats)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            year,
            "xlsx",
        )),
        other => Err(AppError::invalid(
            "format",
            format!("格式须为 json、csv 或 xlsx：{other}"),
            format!("format must be json, csv or xlsx: {other}"),
        )),
    }
}

fn download(bytes: Vec<u8>, mime: &'static str, year: i32, extension: &str) -> Response {
    let disposition = format!("attachment; filename=\"membership-stats-{year}.{extension}\"");
    (
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response()
}

/// Computes the statistics rows of the subtree at `path`. Members whose
/// relation moved out count only in the year's 转出 row.
pub async fn compute(conn: &mut AnyConnection, path: &str, year: i32) -> AppResult<Vec<StatRow>> {
    let like = format!("{path}%");
    let members = sqlx::query(
        "SELECT m.status, m.gender, m.ethnicity, m.birth_date, m.education FROM members m \
         JOIN orgs o ON o.id = m.org_id WHERE o.path LIKE $1 AND m.status <> 'moved_out'",
    )
    .bind(&like)
    .fetch_all(&mut *conn)
    .await?;
    let year_end = NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or(NaiveDate::MAX);
    let mut tables: Vec<(&str, BTreeMap<String, i64>)> =
        ["status", "gender", "ethnicity", "age", "education"]
            .into_iter()
            .map(|table| (table, BTreeMap::new()))
            .collect();
    for row in &members {
        let birth: String = row.try_get("birth_date")?;
        let values = [
            row.try_get::<String, _>("status")?,
            row.try_get::<String, _>("gender")?,
            row.try_get::<String, _>("ethnicity")?,
            age_band(&birth, year_end).to_owned(),
            row.try_get::<String, _>("education")?,
        ];
        for ((_, counts), value) in tables.iter_mut().zip(values) {
            *counts.entry(value).or_default() += 1;
        }
    }
    let mut rows: Vec<StatRow> = vec![StatRow {
        table: "total".to_owned(),
        label: "党员总数".to_owned(),
        count: members.len() as i64,
    }];
    for (table, counts) in tables {
        rows.extend(counts.into_iter().map(|(label, count)| StatRow {
            table: table.to_owned(),
            label,
            count,
        }));
    }
    rows.extend(year_events(conn, &like, year).await?);
    Ok(rows)
}

/// Returns the age band of someone born on `birth` (`YYYY-MM-DD`) on `on`.
fn age_band(birth: &str, on: NaiveDate) -> &'static str {
    let Ok(birth) = NaiveDate::parse_from_str(birth, "%Y-%m-%d") else {
        return OLDEST_BAND;
    };
    let age = on.years_since(birth).unwrap_or(0);
    AGE_BANDS
        .iter()
        .find(|(upper, _)| age <= *upper)
        .map(|(_, label)| *label)
        .unwrap_or(OLDEST_BAND)
}

async fn year_events(conn: &mut AnyConnection, like: &str, year: i32) -> AppResult<Vec<StatRow>> {
    let (first, last) = (format!("{year}-01-01"), format!("{year}-12-31"));
    let mut rows = Vec::new();
    for (step, label) in [("approval", "发展党员"), ("confirmation", "预备党员转正")] {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM membership_steps s JOIN membership_people p ON p.id = s.person_id \
             JOIN orgs o ON o.id = p.org_id WHERE s.step = $1 AND s.taken_on >= $2 AND s.taken_on <= $3 \
             AND o.path LIKE $4",
        )
        .bind(step)
        .bind(&first)
        .bind(&last)
        .bind(like)
        .fetch_one(&mut *conn)
        .await?;
        rows.push(StatRow {
            table: "year".to_owned(),
            label: label.to_owned(),
            count,
        });
    }
    // A transfer within the subtree moves no one in or out of it.
    for (inside, outside, label) in [
        ("to_org_id", "from_org_id", "转入"),
        ("from_org_id", "to_org_id", "转出"),
    ] {
        let count: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM membership_transfers t JOIN orgs i ON i.id = t.{inside} \
             LEFT JOIN orgs x ON x.id = t.{outside} WHERE t.status = 'accepted' \
             AND t.receipt_on >= $1 AND t.receipt_on <= $2 AND i.path LIKE $3 \
             AND (x.path IS NULL OR x.path NOT LIKE $3)"
        ))
        .bind(&first)
        .bind(&last)
        .bind(like)
        .fetch_one(&mut *conn)
        .await?;
        rows.push(StatRow {
            table: "year".to_owned(),
            label: label.to_owned(),
            count,
        });
    }
    Ok(rows)
}

fn to_csv(stats: &AnnualStats) -> AppResult<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(["table", "label", "count"])
        .map_err(AppError::internal)?;
    for row in &stats.rows {
        writer
            .write_record([
                row.table.as_str(),
                row.label.as_str(),
                &row.count.to_string(),
            ])
            .map_err(AppError::internal)?;
    }
    writer.into_inner().map_err(AppError::internal)
}

fn to_xlsx(stats: &AnnualStats) -> AppResult<Vec<u8>> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let title = format!("{} {}年党员统计", stats.org_name, stats.year);
    sheet
        .write_string(0, 0, &title)
        .map_err(AppError::internal)?;
    for (column, heading) in ["表", "项目", "人数"].into_iter().enumerate() {
        sheet
            .write_string(1, column as u16, heading)
            .map_err(AppError::internal)?;
    }
    for (index, row) in stats.rows.iter().enumerate() {
        let line = index as u32 + 2;
        sheet
            .write_string(line, 0, &row.table)
            .map_err(AppError::internal)?;
        sheet
            .write_string(line, 1, &row.label)
            .map_err(AppError::internal)?;
        sheet
            .write_number(line, 2, row.count as f64)
            .map_err(AppError::internal)?;
    }
    workbook.save_to_buffer().map_err(AppError::internal)
}
