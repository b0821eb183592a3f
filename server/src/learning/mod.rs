//! Online cadre learning (干部网络学习): courses of video and reading
//! lessons, assignments with deadlines, the credit-hour (学时) ledger with
//! yearly targets per role, study time counted by the server, exams and
//! reports.
//!
//! Rules:
//! - A course belongs to one organization. Officers of that organization and
//!   of its ancestors manage it (lessons, assignments, exams, offline credit
//!   hours), as in every other module.
//! - Members of the owning organization's subtree, members it is assigned
//!   to, and the security administrator (read only) see it.
//! - Credit hours are stored in hundredths (`centi`) and enter the ledger
//!   only when the server decides a lesson is complete ([`study`]), an exam
//!   is passed ([`exams`]) or an organizer enters offline training.
//!
//! Hub: `course:ID` carries `course.updated` for the course's readers, and
//! each member's `user:ID` carries `learning.credited` when hours are added.

mod access;
mod assignments;
mod courses;
pub mod credit;
pub mod demo;
mod exams;
pub mod lectures;
mod ledger;
mod lessons;
mod pdf;
mod reports;
pub mod study;
mod video;

pub use access::{CourseRef, can_read_course, load_course};
pub use study::{StudyRules, Tracker};

use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(courses::router())
        .merge(video::router())
        .merge(lessons::router())
        .merge(pdf::router())
        .merge(assignments::router())
        .merge(ledger::router())
        .merge(exams::router())
        .merge(reports::router())
        .merge(lectures::router())
}

/// Required (必修) or elective (选修); each has its own yearly target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Required,
    Elective,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Elective => "elective",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "required" => Some(Self::Required),
            "elective" => Some(Self::Elective),
            _ => None,
        }
    }
}

/// Credit hours from hundredths, for JSON output.
pub fn hours(centi: i64) -> f64 {
    centi as f64 / 100.0
}

/// Hundredths of a credit hour from a JSON number, rejected unless it is
/// between 0 and `max` hours in steps of 0.01.
pub fn centi_from_hours(field: &str, value: f64, max: f64) -> crate::error::AppResult<i64> {
    let centi = (value * 100.0).round();
    if !value.is_finite() || value < 0.0 || value > max || (value * 100.0 - centi).abs() > 1e-6 {
        return Err(crate::error::AppError::invalid(
            field,
            format!("学时须在 0 到 {max} 之间，最多两位小数"),
            format!("credit hours must be between 0 and {max}, with at most two decimals"),
        ));
    }
    Ok(centi as i64)
}

/// Checks a requested report or target year: 2000 to 2100.
pub(crate) fn check_year(year: i64) -> crate::error::AppResult<i64> {
    if (2000..=2100).contains(&year) {
        Ok(year)
    } else {
        Err(crate::error::AppError::invalid(
            "year",
            "年份须在 2000 到 2100 之间",
            "year must be between 2000 and 2100",
        ))
    }
}

/// The calendar year in China time (UTC+8) of a Unix millisecond instant;
/// the ledger and the targets are kept per such year.
pub fn china_year(ms: i64) -> i64 {
    use chrono::Datelike;
    i64::from(crate::meetings::store::china_time(ms).year())
}

/// Checks a short required text (a title) of 1 to `max` characters.
pub fn check_text(field: &str, value: &str, max: usize) -> crate::error::AppResult<String> {
    let value = value.trim();
    let length = value.chars().count();
    if length == 0 || length > max {
        return Err(crate::error::AppError::invalid(
            field,
            format!("{field} 须为 1 到 {max} 个字符"),
            format!("{field} must be 1 to {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centi_from_hours_cases() {
        assert_eq!(centi_from_hours("h", 0.25, 10.0).unwrap(), 25);
        assert_eq!(centi_from_hours("h", 2.0, 10.0).unwrap(), 200);
        assert!(centi_from_hours("h", -1.0, 10.0).is_err());
        assert!(centi_from_hours("h", 0.125, 10.0).is_err());
        assert!(centi_from_hours("h", 11.0, 10.0).is_err());
        assert!(centi_from_hours("h", f64::NAN, 10.0).is_err());
    }

    #[test]
    fn china_year_turns_at_beijing_midnight() {
        // 2025-12-31T16:00:00Z is 2026-01-01 00:00 in Beijing.
        assert_eq!(china_year(1_767_196_800_000), 2026);
        assert_eq!(china_year(1_767_196_800_000 - 1), 2025);
    }
}
