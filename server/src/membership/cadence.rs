//! 三会一课 cadence: how often each kind of organization must meet, and the
//! periods of a year in which it did not.
//!
//! A branch or general branch holds a 党员大会 at least each quarter, a
//! 支委会 at least each month and a 党课 at least each quarter; a party
//! group holds a 党小组会 at least each month. Only meetings that ended
//! count, and only periods that are over by `today` can be missed.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::meetings::MeetingKind;
use crate::org::OrgKind;

/// How often a meeting kind must be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Month,
    Quarter,
}

impl Period {
    /// The number of this kind of period in a year.
    fn per_year(self) -> u32 {
        match self {
            Self::Month => 12,
            Self::Quarter => 4,
        }
    }

    /// The period, counted from 1, that contains `day`.
    fn index_of(self, day: NaiveDate) -> u32 {
        match self {
            Self::Month => day.month(),
            Self::Quarter => day.month0() / 3 + 1,
        }
    }

    /// The last day of period `index` of `year`.
    fn last_day(self, year: i32, index: u32) -> NaiveDate {
        let last_month = match self {
            Self::Month => index,
            Self::Quarter => index * 3,
        };
        let first_of_next = if last_month == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(year, last_month + 1, 1)
        };
        first_of_next
            .and_then(|day| day.pred_opt())
            .unwrap_or(NaiveDate::MAX)
    }

    /// A label such as `2026-03` or `2026-Q1`.
    fn label(self, year: i32, index: u32) -> String {
        match self {
            Self::Month => format!("{year}-{index:02}"),
            Self::Quarter => format!("{year}-Q{index}"),
        }
    }
}

/// One meeting an organization must hold regularly.
#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    pub kind: MeetingKind,
    pub period: Period,
}

const BRANCH: [Requirement; 3] = [
    Requirement {
        kind: MeetingKind::GeneralMeeting,
        period: Period::Quarter,
    },
    Requirement {
        kind: MeetingKind::BranchCommittee,
        period: Period::Month,
    },
    Requirement {
        kind: MeetingKind::PartyLecture,
        period: Period::Quarter,
    },
];

const GROUP: [Requirement; 1] = [Requirement {
    kind: MeetingKind::GroupMeeting,
    period: Period::Month,
}];

/// The meetings an organization of `kind` must hold; none for committees
/// and temporary branches.
pub fn requirements(kind: OrgKind) -> &'static [Requirement] {
    match kind {
        OrgKind::Branch | OrgKind::GeneralBranch => &BRANCH,
        OrgKind::Group => &GROUP,
        OrgKind::Committee | OrgKind::LeadingGroup | OrgKind::TemporaryBranch => &[],
    }
}

/// Lists the periods of `year` that ended by `today` without a meeting on
/// any of `held` (the days of the ended meetings of the required kind).
pub fn missed_periods(
    period: Period,
    year: i32,
    today: NaiveDate,
    held: &[NaiveDate],
) -> Vec<String> {
    (1..=period.per_year())
        .filter(|index| period.last_day(year, *index) < today)
        .filter(|index| {
            !held
                .iter()
                .any(|day| day.year() == year && period.index_of(*day) == *index)
        })
        .map(|index| period.label(year, index))
        .collect()
}

/// Counts the periods of `year` that ended by `today`.
pub fn elapsed_periods(period: Period, year: i32, today: NaiveDate) -> u32 {
    (1..=period.per_year())
        .filter(|index| period.last_day(year, *index) < today)
        .count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn month_counts_once_it_is_over() {
        let held: [NaiveDate; 0] = [];
        assert!(missed_periods(Period::Month, 2026, day("2026-01-31"), &held).is_empty());
        assert_eq!(
            missed_periods(Period::Month, 2026, day("2026-02-01"), &held),
            ["2026-01"]
        );
    }

    #[test]
    fn quarter_with_a_meeting_is_kept() {
        let held = [day("2026-03-31")];
        assert!(missed_periods(Period::Quarter, 2026, day("2026-04-01"), &held).is_empty());
        assert_eq!(
            missed_periods(Period::Quarter, 2026, day("2026-07-01"), &held),
            ["2026-Q2"]
        );
    }

    #[test]
    fn meetings_of_other_years_do_not_count() {
        let held = [day("2025-01-15")];
        assert_eq!(
            missed_periods(Period::Month, 2026, day("2026-02-01"), &held),
            ["2026-01"]
        );
    }

    #[test]
    fn elapsed_periods_at_year_end() {
        assert_eq!(elapsed_periods(Period::Month, 2025, day("2026-01-01")), 12);
        assert_eq!(elapsed_periods(Period::Quarter, 2026, day("2026-12-31")), 3);
    }

    #[test]
    fn committees_have_no_cadence() {
        assert!(requirements(OrgKind::Committee).is_empty());
        assert_eq!(requirements(OrgKind::Branch).len(), 3);
    }
}
