//! The working-day calendar behind step deadlines: Monday to Friday, with
//! exceptions per year that the system administrator enters from the State
//! Council's holiday notice. An exception is a public holiday (a day off,
//! usually a weekday) or a make-up working day (调休, usually a weekend day).
//!
//! Days are dates in China Standard Time (UTC+8), the time zone of the
//! organizations this calendar serves.

use std::collections::HashMap;

use axum::extract::{Path, State};
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc, Weekday};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit;
use crate::auth::SystemRole;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::perm::Caller;
use crate::state::AppState;

/// Maximum length of an exception's name, in characters.
const MAX_NAME_CHARS: usize = 50;

/// Days searched for the next working day before the calendar is taken as
/// broken: ten years, far more than any run of holidays.
const MAX_SEARCH_DAYS: u32 = 3660;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_year, put_year))
}

/// China Standard Time, in which calendar days begin and end.
pub fn china_time() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// The kind of an exception to the working week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// A public holiday: no work, even on a weekday.
    Holiday,
    /// A make-up working day: work, even on a weekend.
    Workday,
}

impl DayKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Holiday => "holiday",
            Self::Workday => "workday",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "holiday" => Some(Self::Holiday),
            "workday" => Some(Self::Workday),
            _ => None,
        }
    }
}

/// The working week and its exceptions.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    exceptions: HashMap<NaiveDate, DayKind>,
}

impl Calendar {
    /// Creates a calendar with the given exceptions.
    pub fn new(exceptions: impl IntoIterator<Item = (NaiveDate, DayKind)>) -> Self {
        Self {
            exceptions: exceptions.into_iter().collect(),
        }
    }

    /// Reads every stored exception.
    pub async fn load(conn: &mut AnyConnection) -> Result<Self, sqlx::Error> {
        let rows = sqlx::query("SELECT day, kind FROM calendar_days")
            .fetch_all(&mut *conn)
            .await?;
        let mut exceptions = HashMap::new();
        for row in rows {
            let day: String = row.try_get("day")?;
            let kind: String = row.try_get("kind")?;
            // Rows are validated on the way in; skip anything else rather than
            // stopping every workflow action.
            if let (Ok(day), Some(kind)) = (day.parse::<NaiveDate>(), DayKind::parse(&kind)) {
                exceptions.insert(day, kind);
            }
        }
        Ok(Self { exceptions })
    }

    /// Returns whether `day` is a working day.
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        match self.exceptions.get(&day) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::Workday) => true,
            None => !matches!(day.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// Returns the `count`-th working day after `day`, which itself does not
    /// count; `count` 0 returns `day`.
    pub fn add_working_days(&self, day: NaiveDate, count: u32) -> NaiveDate {
        let mut current = day;
        let mut remaining = count;
        let mut searched = 0;
        while remaining > 0 && searched < MAX_SEARCH_DAYS {
            current = current.succ_opt().unwrap_or(current);
            searched += 1;
            if self.is_working_day(current) {
                remaining -= 1;
            }
        }
        current
    }

    /// Returns when a task opened at `opened` with `working_days` to finish
    /// is due: the end of the last of those working days, as Unix
    /// milliseconds. A task opened on a holiday gets the full count too.
    pub fn due_at(&self, opened: DateTime<Utc>, working_days: u32) -> i64 {
        let local = opened.with_timezone(&china_time()).date_naive();
        let last = self.add_working_days(local, working_days.max(1));
        start_of_day(last + Duration::days(1))
    }
}

/// Unix milliseconds at which `day` begins in China Standard Time.
pub fn start_of_day(day: NaiveDate) -> i64 {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    china_time()
        .from_local_datetime(&midnight)
        .single()
        .expect("a fixed offset has no gaps")
        .timestamp_millis()
}

/// One exception to the working week.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarDay {
    /// The date, `YYYY-MM-DD`.
    pub day: String,
    pub kind: DayKind,
    /// What the day is, for example 国庆节 or 国庆节调休上班.
    #[serde(default)]
    pub name: String,
}

/// A year's exceptions, in date order.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CalendarYear {
    pub year: i32,
    pub days: Vec<CalendarDay>,
}

/// The request body that replaces a year's exceptions.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarUpdate {
    pub days: Vec<CalendarDay>,
}

fn check_year(year: i32) -> AppResult<()> {
    if (2000..=2100).contains(&year) {
        Ok(())
    } else {
        Err(AppError::invalid(
            "year",
            format!("年份 {year} 超出范围（2000 至 2100）"),
            format!("year {year} is out of range (2000 to 2100)"),
        ))
    }
}

async fn read_year(conn: &mut AnyConnection, year: i32) -> AppResult<CalendarYear> {
    let rows = sqlx::query(
        "SELECT day, kind, name FROM calendar_days WHERE day >= $1 AND day < $2 ORDER BY day",
    )
    .bind(format!("{year:04}-01-01"))
    .bind(format!("{:04}-01-01", year + 1))
    .fetch_all(&mut *conn)
    .await?;
    let days = rows
        .iter()
        .map(|row| -> AppResult<CalendarDay> {
            let kind: String = row.try_get("kind")?;
            Ok(CalendarDay {
                day: row.try_get("day")?,
                kind: DayKind::parse(&kind).ok_or_else(|| {
                    AppError::internal(format!("unknown calendar day kind {kind:?}"))
                })?,
                name: row.try_get("name")?,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    Ok(CalendarYear { year, days })
}

/// Lists a year's public holidays and make-up working days.
#[utoipa::path(get, path = "/api/calendar/{year}", tag = "approvals",
    params(("year" = i32, Path, description = "Calendar year")),
    responses((status = 200, body = CalendarYear), (status = 422, body = ErrorBody)))]
async fn get_year(
    State(state): State<AppState>,
    _caller: Caller,
    Path(year): Path<i32>,
) -> AppResult<ApiJson<CalendarYear>> {
    check_year(year)?;
    let mut conn = state.db.pool.acquire().await?;
    Ok(ApiJson(read_year(&mut conn, year).await?))
}

/// Replaces a year's public holidays and make-up working days (system
/// administrator). Deadlines of tasks already open keep their dates.
#[utoipa::path(put, path = "/api/calendar/{year}", tag = "approvals",
    params(("year" = i32, Path, description = "Calendar year")),
    request_body = CalendarUpdate,
    responses((status = 200, body = CalendarYear), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_year(
    State(state): State<AppState>,
    caller: Caller,
    Path(year): Path<i32>,
    ApiJson(update): ApiJson<CalendarUpdate>,
) -> AppResult<ApiJson<CalendarYear>> {
    caller.require(SystemRole::SystemAdmin)?;
    check_year(year)?;
    let mut seen = HashMap::new();
    for (index, entry) in update.days.iter().enumerate() {
        let field = format!("days[{index}]");
        let day = NaiveDate::parse_from_str(&entry.day, "%Y-%m-%d").map_err(|_| {
            AppError::invalid(
                &format!("{field}.day"),
                format!("日期 {:?} 无效，应为 YYYY-MM-DD", entry.day),
                format!("invalid date {:?}: expected YYYY-MM-DD", entry.day),
            )
        })?;
        if day.year() != year {
            return Err(AppError::invalid(
                &format!("{field}.day"),
                format!("{day} 不属于 {year} 年"),
                format!("{day} is not in {year}"),
            ));
        }
        if seen.insert(day, index).is_some() {
            return Err(AppError::invalid(
                &format!("{field}.day"),
                format!("{day} 重复出现"),
                format!("{day} appears twice"),
            ));
        }
        if entry.name.trim().chars().count() > MAX_NAME_CHARS {
            return Err(AppError::invalid(
                &format!("{field}.name"),
                format!("名称最多 {MAX_NAME_CHARS} 个字符"),
                format!("the name has more than {MAX_NAME_CHARS} characters"),
            ));
        }
    }

    let mut tx = state.db.begin().await?;
    sqlx::query("DELETE FROM calendar_days WHERE day >= $1 AND day < $2")
        .bind(format!("{year:04}-01-01"))
        .bind(format!("{:04}-01-01", year + 1))
        .execute(&mut *tx)
        .await?;
    for entry in &update.days {
        let day = NaiveDate::parse_from_str(&entry.day, "%Y-%m-%d").map_err(AppError::internal)?;
        sqlx::query("INSERT INTO calendar_days (day, kind, name) VALUES ($1, $2, $3)")
            .bind(day.format("%Y-%m-%d").to_string())
            .bind(entry.kind.as_str())
            .bind(entry.name.trim())
            .execute(&mut *tx)
            .await?;
    }
    let holidays = update
        .days
        .iter()
        .filter(|d| d.kind == DayKind::Holiday)
        .count();
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "calendar.update",
        ("calendar", year.to_string()),
        serde_json::json!({"holidays": holidays, "workdays": update.days.len() - holidays}),
    )
    .await?;
    let saved = read_year(&mut tx, year).await?;
    tx.commit().await?;
    tracing::info!(year, days = saved.days.len(), "calendar updated");
    Ok(ApiJson(saved))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    /// A week with a Wednesday holiday and a make-up Saturday.
    fn calendar() -> Calendar {
        Calendar::new([
            (date("2026-12-09"), DayKind::Holiday),
            (date("2026-12-12"), DayKind::Workday),
        ])
    }

    #[test]
    fn weekends_and_exceptions() {
        let calendar = calendar();
        assert!(calendar.is_working_day(date("2026-12-07")), "Monday");
        assert!(
            !calendar.is_working_day(date("2026-12-09")),
            "holiday Wednesday"
        );
        assert!(
            calendar.is_working_day(date("2026-12-12")),
            "make-up Saturday"
        );
        assert!(!calendar.is_working_day(date("2026-12-13")), "Sunday");
    }

    #[test]
    fn working_days_skip_holidays() {
        let calendar = calendar();
        // From Monday: Tuesday, Thursday, Friday, then the make-up Saturday.
        assert_eq!(
            calendar.add_working_days(date("2026-12-07"), 1),
            date("2026-12-08")
        );
        assert_eq!(
            calendar.add_working_days(date("2026-12-07"), 2),
            date("2026-12-10")
        );
        assert_eq!(
            calendar.add_working_days(date("2026-12-07"), 4),
            date("2026-12-12")
        );
        assert_eq!(
            calendar.add_working_days(date("2026-12-07"), 5),
            date("2026-12-14")
        );
        assert_eq!(
            calendar.add_working_days(date("2026-12-07"), 0),
            date("2026-12-07")
        );
    }

    #[test]
    fn due_at_china_midnight() {
        let calendar = calendar();
        // Monday 7 December, 23:30 in Beijing is 15:30 UTC.
        let opened = Utc.with_ymd_and_hms(2026, 12, 7, 15, 30, 0).unwrap();
        let due = calendar.due_at(opened, 2);
        // Due at the end of Thursday 10 December, Beijing time.
        assert_eq!(due, start_of_day(date("2026-12-11")));
        assert_eq!(
            DateTime::from_timestamp_millis(due).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 10, 16, 0, 0).unwrap()
        );
    }

    #[test]
    fn all_holidays_do_not_loop_forever() {
        let days = (0..MAX_SEARCH_DAYS + 10).map(|offset| {
            (
                date("2026-01-01") + Duration::days(offset.into()),
                DayKind::Holiday,
            )
        });
        let calendar = Calendar::new(days);
        let last = calendar.add_working_days(date("2026-01-01"), 3);
        assert_eq!(
            last,
            date("2026-01-01") + Duration::days(MAX_SEARCH_DAYS.into())
        );
    }
}
