//! Reports for organizers: each member of a subtree against the yearly
//! target, the subtree's completion rate and average hours, who is behind,
//! a ranking of the child organizations, and CSV and XLSX exports.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::member_org_path;
use super::credit::{self, Target};
use super::ledger::{MyLearning, YearQuery, entries_of, year_totals};
use super::{china_year, hours};
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::org::load_org;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(org_report))
        .routes(routes!(export_report))
        .routes(routes!(member_report))
}

/// One member's line in an organization report.
#[derive(Serialize, utoipa::ToSchema, Clone)]
pub struct MemberLine {
    pub member_id: i64,
    pub name: String,
    pub org_id: i64,
    pub org_name: String,
    pub required_hours: f64,
    pub elective_hours: f64,
    pub total_hours: f64,
    pub required_target: f64,
    pub elective_target: f64,
    pub met: bool,
    /// Study progress reports of the year that the server rejected as
    /// forged, replayed, out of order or too fast.
    pub rejected_reports: i64,
}

/// A child organization's figures, for the ranking.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OrgRank {
    pub org_id: i64,
    pub name: String,
    pub members: i64,
    pub completion_rate: f64,
    pub average_hours: f64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrgReport {
    pub org_id: i64,
    pub org_name: String,
    pub year: i64,
    pub members: i64,
    /// Members who met both parts of their target.
    pub completed: i64,
    /// `completed / members`, 0 when there are no members.
    pub completion_rate: f64,
    pub average_hours: f64,
    /// Every member of the subtree, most hours first.
    pub lines: Vec<MemberLine>,
    /// Members below their target, fewest hours first.
    pub behind: Vec<MemberLine>,
    /// Child organizations by average hours, highest first.
    pub ranking: Vec<OrgRank>,
}

/// The report of an organization's subtree for a year, for its officers
/// and the administrators.
#[utoipa::path(get, path = "/api/learning/reports/orgs/{id}", tag = "learning", params(YearQuery),
    responses((status = 200, body = OrgReport), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn org_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<YearQuery>,
) -> AppResult<ApiJson<OrgReport>> {
    let year = super::check_year(query.year.unwrap_or_else(|| china_year(now_ms())))?;
    Ok(ApiJson(build_report(&state, &caller, id, year).await?))
}

async fn build_report(
    state: &AppState,
    caller: &Caller,
    id: i64,
    year: i64,
) -> AppResult<OrgReport> {
    let mut conn = state.db.pool.acquire().await?;
    let org = load_org(&mut conn, id).await?;
    let allowed =
        caller.principal.can_org(&org.path, Access::Write) || caller.principal.sees_whole_tree();
    if !allowed {
        return Err(AppError::forbidden());
    }
    let mut lines = member_lines(&mut conn, &org.path, year).await?;
    lines.sort_by(|a, b| {
        b.total_hours
            .total_cmp(&a.total_hours)
            .then(a.member_id.cmp(&b.member_id))
    });
    let (completed, average) = figures(&lines);
    let mut behind: Vec<MemberLine> = lines.iter().filter(|line| !line.met).cloned().collect();
    behind.sort_by(|a, b| {
        a.total_hours
            .total_cmp(&b.total_hours)
            .then(a.member_id.cmp(&b.member_id))
    });
    let ranking = rank_children(&mut conn, org.id, &lines).await?;
    Ok(OrgReport {
        org_id: org.id,
        org_name: org.name.clone(),
        year,
        members: lines.len() as i64,
        completed,
        completion_rate: rate(completed, lines.len()),
        average_hours: average,
        lines,
        behind,
        ranking,
    })
}

fn rate(completed: i64, members: usize) -> f64 {
    if members == 0 {
        0.0
    } else {
        (completed as f64 / members as f64 * 10_000.0).round() / 10_000.0
    }
}

/// Members who met their target, and the average hours rounded to 0.01.
fn figures(lines: &[MemberLine]) -> (i64, f64) {
    let completed = lines.iter().filter(|line| line.met).count() as i64;
    if lines.is_empty() {
        return (completed, 0.0);
    }
    let total: f64 = lines.iter().map(|line| line.total_hours).sum();
    (
        completed,
        (total / lines.len() as f64 * 100.0).round() / 100.0,
    )
}

/// SQL condition matching a member `m` (with organization `o`) in the
/// subtree of the path pattern `$1`: members of its organizations, and the
/// mobile members of its active temporary branches, who study there while
/// their relation stays home.
const IN_SUBTREE: &str = "(o.path LIKE $1 OR m.id IN (SELECT g.member_id FROM membership_mobile g \
     JOIN orgs t ON t.id = g.temporary_branch_id WHERE g.status = 'active' AND t.path LIKE $1))";

/// Reads every member under `path` with their year's hours and target, in
/// four queries whatever the size of the subtree. Members whose relation
/// moved out have no target and are left out.
async fn member_lines(
    conn: &mut AnyConnection,
    path: &str,
    year: i64,
) -> AppResult<Vec<MemberLine>> {
    let pattern = format!("{path}%");
    let members = sqlx::query(&format!(
        "SELECT m.id, m.name, m.org_id, o.name AS org_name FROM members m JOIN orgs o ON o.id = m.org_id \
         WHERE {IN_SUBTREE} AND m.status <> 'moved_out' ORDER BY m.id"
    ))
    .bind(&pattern)
    .fetch_all(&mut *conn)
    .await?;
    let sums = sqlx::query(&format!(
        "SELECT c.member_id, c.category, CAST(SUM(c.centi) AS BIGINT) AS centi FROM learning_credits c \
         JOIN members m ON m.id = c.member_id JOIN orgs o ON o.id = m.org_id \
         WHERE {IN_SUBTREE} AND c.year = $2 GROUP BY c.member_id, c.category"
    ))
    .bind(&pattern)
    .bind(year)
    .fetch_all(&mut *conn)
    .await?;
    let mut credits: HashMap<i64, (i64, i64)> = HashMap::new();
    for row in &sums {
        let entry = credits.entry(row.try_get("member_id")?).or_default();
        let centi: i64 = row.try_get("centi")?;
        if row.try_get::<String, _>("category")? == "required" {
            entry.0 += centi;
        } else {
            entry.1 += centi;
        }
    }
    let rejected = rejection_counts(conn, &pattern, year).await?;
    let targets = role_targets(conn, year).await?;
    let roles = sqlx::query(&format!(
        "SELECT r.member_id, r.role FROM org_roles r JOIN members m ON m.id = r.member_id \
         JOIN orgs o ON o.id = m.org_id WHERE {IN_SUBTREE}"
    ))
    .bind(&pattern)
    .fetch_all(&mut *conn)
    .await?;
    let mut member_roles: HashMap<i64, Vec<String>> = HashMap::new();
    for row in &roles {
        member_roles
            .entry(row.try_get("member_id")?)
            .or_default()
            .push(row.try_get("role")?);
    }
    let mut lines = Vec::with_capacity(members.len());
    for row in &members {
        let member_id: i64 = row.try_get("id")?;
        let own: Vec<Target> = std::iter::once("member".to_owned())
            .chain(member_roles.get(&member_id).cloned().unwrap_or_default())
            .filter_map(|role| targets.get(&role).copied())
            .collect();
        let target = credit::combine(&own);
        let (required, elective) = credits.get(&member_id).copied().unwrap_or_default();
        lines.push(MemberLine {
            member_id,
            name: row.try_get("name")?,
            org_id: row.try_get("org_id")?,
            org_name: row.try_get("org_name")?,
            required_hours: hours(required),
            elective_hours: hours(elective),
            total_hours: hours(required + elective),
            required_target: hours(target.required_centi),
            elective_target: hours(target.elective_centi),
            met: required >= target.required_centi && elective >= target.elective_centi,
            rejected_reports: rejected.get(&member_id).copied().unwrap_or(0),
        });
    }
    Ok(lines)
}

/// Counts the rejected progress reports per member under a path pattern
/// in a year.
async fn rejection_counts(
    conn: &mut AnyConnection,
    pattern: &str,
    year: i64,
) -> AppResult<HashMap<i64, i64>> {
    let year = i32::try_from(year).map_err(|_| {
        AppError::invalid(
            "year",
            format!("年份无效：{year}"),
            format!("invalid year {year}"),
        )
    })?;
    let (from, to) = crate::meetings::list::year_bounds(year)?;
    let rows = sqlx::query(&format!(
        "SELECT r.member_id, COUNT(*) AS count FROM learning_rejections r \
         JOIN members m ON m.id = r.member_id JOIN orgs o ON o.id = m.org_id \
         WHERE {IN_SUBTREE} AND r.created_at >= $2 AND r.created_at < $3 GROUP BY r.member_id"
    ))
    .bind(pattern)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("member_id")?, row.try_get("count")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AppError::from)
}

async fn role_targets(conn: &mut AnyConnection, year: i64) -> AppResult<HashMap<String, Target>> {
    let rows = sqlx::query(
        "SELECT role, required_centi, elective_centi FROM learning_targets WHERE year = $1",
    )
    .bind(year)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let target = Target {
                required_centi: row.try_get("required_centi")?,
                elective_centi: row.try_get("elective_centi")?,
            };
            Ok((row.try_get("role")?, target))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AppError::from)
}

async fn rank_children(
    conn: &mut AnyConnection,
    org_id: i64,
    lines: &[MemberLine],
) -> AppResult<Vec<OrgRank>> {
    let children = sqlx::query("SELECT id, name, path FROM orgs WHERE parent_id = $1 ORDER BY id")
        .bind(org_id)
        .fetch_all(&mut *conn)
        .await?;
    let paths = sqlx::query("SELECT id, path FROM orgs")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<i64, _>("id")?,
                row.try_get::<String, _>("path")?,
            ))
        })
        .collect::<Result<HashMap<i64, String>, sqlx::Error>>()?;
    let mut ranking = Vec::with_capacity(children.len());
    for child in &children {
        let path: String = child.try_get("path")?;
        let inside: Vec<MemberLine> = lines
            .iter()
            .filter(|line| {
                paths
                    .get(&line.org_id)
                    .is_some_and(|p| p.starts_with(path.as_str()))
            })
            .cloned()
            .collect();
        let (completed, average) = figures(&inside);
        ranking.push(OrgRank {
            org_id: child.try_get("id")?,
            name: child.try_get("name")?,
            members: inside.len() as i64,
            completion_rate: rate(completed, inside.len()),
            average_hours: average,
        });
    }
    ranking.sort_by(|a, b| {
        b.average_hours
            .total_cmp(&a.average_hours)
            .then(a.org_id.cmp(&b.org_id))
    });
    Ok(ranking)
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ExportQuery {
    pub year: Option<i64>,
    /// `csv` or `xlsx`.
    pub format: String,
}

/// Downloads the member lines of an organization report as CSV (UTF-8 with
/// a byte order mark, so that spreadsheet programs read the Chinese names)
/// or XLSX.
#[utoipa::path(get, path = "/api/learning/reports/orgs/{id}/export", tag = "learning", params(ExportQuery),
    responses((status = 200, description = "The report file"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn export_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<ExportQuery>,
) -> AppResult<Response> {
    let year = super::check_year(query.year.unwrap_or_else(|| china_year(now_ms())))?;
    let report = build_report(&state, &caller, id, year).await?;
    let (bytes, extension) = match query.format.as_str() {
        "csv" => (to_csv(&report)?, "csv"),
        "xlsx" => (to_xlsx(&report)?, "xlsx"),
        other => {
            return Err(AppError::invalid(
                "format",
                format!("不支持的导出格式：{other}，可选 csv、xlsx"),
                format!("unsupported export format {other:?}; use csv or xlsx"),
            ));
        }
    };
    let name = format!("学习情况-{}-{year}.{extension}", report.org_name);
    let mime = crate::files::mime_for_name(&name).unwrap_or("application/octet-stream");
    tracing::info!(
        org_id = id,
        year,
        format = extension,
        "learning report exported"
    );
    Ok(crate::files::download(&name, mime.to_owned(), bytes).into_response())
}

const HEADERS: [&str; 8] = [
    "党员",
    "所在组织",
    "必修学时",
    "选修学时",
    "合计学时",
    "必修目标",
    "选修目标",
    "是否完成",
];

fn to_csv(report: &OrgReport) -> AppResult<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    writer.write_record(HEADERS).map_err(AppError::internal)?;
    for line in &report.lines {
        writer
            .write_record([
                line.name.clone(),
                line.org_name.clone(),
                line.required_hours.to_string(),
                line.elective_hours.to_string(),
                line.total_hours.to_string(),
                line.required_target.to_string(),
                line.elective_target.to_string(),
                if line.met { "是" } else { "否" }.to_owned(),
            ])
            .map_err(AppError::internal)?;
    }
    writer.into_inner().map_err(AppError::internal)
}

fn to_xlsx(report: &OrgReport) -> AppResult<Vec<u8>> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("学习情况").map_err(AppError::internal)?;
    for (column, header) in HEADERS.iter().enumerate() {
        sheet
            .write_string(0, column as u16, *header)
            .map_err(AppError::internal)?;
    }
    for (index, line) in report.lines.iter().enumerate() {
        let row = index as u32 + 1;
        sheet
            .write_string(row, 0, &line.name)
            .map_err(AppError::internal)?;
        sheet
            .write_string(row, 1, &line.org_name)
            .map_err(AppError::internal)?;
        let numbers = [
            line.required_hours,
            line.elective_hours,
            line.total_hours,
            line.required_target,
            line.elective_target,
        ];
        for (offset, value) in numbers.into_iter().enumerate() {
            sheet
                .write_number(row, 2 + offset as u16, value)
                .map_err(AppError::internal)?;
        }
        sheet
            .write_string(row, 7, if line.met { "是" } else { "否" })
            .map_err(AppError::internal)?;
    }
    workbook.save_to_buffer().map_err(AppError::internal)
}

/// One member's hours of a year against the target, with the entries, for
/// officers over the member and the member themselves.
#[utoipa::path(get, path = "/api/learning/reports/members/{id}", tag = "learning", params(YearQuery),
    responses((status = 200, body = MyLearning), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn member_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<YearQuery>,
) -> AppResult<ApiJson<MyLearning>> {
    let mut conn = state.db.pool.acquire().await?;
    let path = member_org_path(&mut conn, id, "id").await?;
    if !caller.principal.can_member(id, &path, Access::Read) {
        return Err(AppError::forbidden());
    }
    let year = super::check_year(query.year.unwrap_or_else(|| china_year(now_ms())))?;
    let totals = year_totals(&mut conn, id, year).await?;
    let entries = entries_of(&mut conn, id, year).await?;
    Ok(ApiJson(MyLearning { totals, entries }))
}
