//! Monthly party dues (党费): the rate bands and the arrears arithmetic.
//!
//! One rate applies to the whole monthly after-tax income, chosen by the
//! band the income falls in; the result is rounded half up to the fen.
//! Amounts are integer fen throughout, rates integer basis points
//! (1/10000), so no float ever touches money.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// How a member's monthly dues are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DuesKind {
    /// A rate of the monthly after-tax salary.
    Salaried,
    /// A rate of the monthly pension.
    Retired,
    /// A fixed small amount: students, members without income.
    Fixed,
}

impl DuesKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Salaried => "salaried",
            Self::Retired => "retired",
            Self::Fixed => "fixed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Salaried, Self::Retired, Self::Fixed]
            .into_iter()
            .find(|kind| kind.as_str() == value)
    }
}

/// A band: incomes up to `up_to_fen` inclusive (no limit for `None`) pay
/// `basis_points` of the whole income.
#[derive(Debug, Clone, Copy)]
pub struct Band {
    pub up_to_fen: Option<i64>,
    pub basis_points: i64,
}

/// Salaried members: 0.5 % up to 3000 yuan, 1 % up to 5000, 1.5 % up to
/// 10000, 2 % above.
pub const SALARIED_BANDS: [Band; 4] = [
    Band {
        up_to_fen: Some(300_000),
        basis_points: 50,
    },
    Band {
        up_to_fen: Some(500_000),
        basis_points: 100,
    },
    Band {
        up_to_fen: Some(1_000_000),
        basis_points: 150,
    },
    Band {
        up_to_fen: None,
        basis_points: 200,
    },
];

/// Retired members: 0.5 % up to 5000 yuan, 1 % above.
pub const RETIRED_BANDS: [Band; 2] = [
    Band {
        up_to_fen: Some(500_000),
        basis_points: 50,
    },
    Band {
        up_to_fen: None,
        basis_points: 100,
    },
];

/// Default fixed monthly amount for members without income, in fen.
pub const DEFAULT_FIXED_FEN: i64 = 20;

/// Consecutive unpaid months that count as leaving the party (党章第九条).
pub const UNPAID_LIMIT_MONTHS: i64 = 6;

/// The rate for an income, in basis points.
pub fn rate(bands: &[Band], income_fen: i64) -> i64 {
    bands
        .iter()
        .find(|band| band.up_to_fen.is_none_or(|limit| income_fen <= limit))
        .map(|band| band.basis_points)
        .unwrap_or(0)
}

/// `income_fen * basis_points / 10000`, rounded half up. Incomes are not
/// negative, so half up and half away from zero agree.
pub fn apply_rate(income_fen: i64, basis_points: i64) -> i64 {
    (income_fen * basis_points + 5_000) / 10_000
}

/// The monthly dues in fen.
pub fn monthly_fen(kind: DuesKind, income_fen: i64, fixed_fen: i64) -> i64 {
    match kind {
        DuesKind::Salaried => apply_rate(income_fen, rate(&SALARIED_BANDS, income_fen)),
        DuesKind::Retired => apply_rate(income_fen, rate(&RETIRED_BANDS, income_fen)),
        DuesKind::Fixed => fixed_fen,
    }
}

/// A calendar month, ordered, written `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(i32);

impl Month {
    pub fn new(year: i32, month: u32) -> Option<Self> {
        (1..=12)
            .contains(&month)
            .then(|| Self(year * 12 + month as i32 - 1))
    }

    /// Parses `YYYY-MM` with a year from 1949 to 2100; anything else, signs
    /// included, is rejected.
    pub fn parse(text: &str) -> Option<Self> {
        let (year, month) = text.split_once('-')?;
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if year.len() != 4 || month.len() != 2 || !digits(year) || !digits(month) {
            return None;
        }
        let year: i32 = year.parse().ok()?;
        if !(1949..=2100).contains(&year) {
            return None;
        }
        Self::new(year, month.parse().ok()?)
    }

    pub fn of(date: chrono::NaiveDate) -> Self {
        use chrono::Datelike;
        Self(date.year() * 12 + date.month0() as i32)
    }

    pub fn previous(self) -> Self {
        Self(self.0 - 1)
    }

    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}",
            self.0.div_euclid(12),
            self.0.rem_euclid(12) + 1
        )
    }
}

/// The months from `since` through `through` inclusive without a payment.
pub fn unpaid_months(since: Month, through: Month, paid: &BTreeSet<Month>) -> Vec<Month> {
    let mut unpaid = Vec::new();
    let mut month = since;
    while month <= through {
        if !paid.contains(&month) {
            unpaid.push(month);
        }
        month = month.next();
    }
    unpaid
}

/// How many months in a row, ending with `through`, have no payment.
pub fn unpaid_run(since: Month, through: Month, paid: &BTreeSet<Month>) -> i64 {
    let mut run = 0;
    let mut month = through;
    while month >= since && !paid.contains(&month) {
        run += 1;
        month = month.previous();
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    fn salaried(yuan_fen: i64) -> i64 {
        monthly_fen(DuesKind::Salaried, yuan_fen, 0)
    }

    #[test]
    fn salaried_band_edges() {
        assert_eq!(salaried(300_000), 1_500);
        assert_eq!(salaried(300_001), 3_000);
        assert_eq!(salaried(500_000), 5_000);
        assert_eq!(salaried(500_001), 7_500);
        assert_eq!(salaried(1_000_000), 15_000);
        assert_eq!(salaried(1_000_001), 20_000);
    }

    #[test]
    fn retired_band_edges() {
        assert_eq!(monthly_fen(DuesKind::Retired, 500_000, 0), 2_500);
        assert_eq!(monthly_fen(DuesKind::Retired, 500_001, 0), 5_000);
    }

    #[test]
    fn rounding_is_half_up_to_the_fen() {
        // 0.5 % of 1.00 yuan is 0.5 fen: rounds up to 1.
        assert_eq!(salaried(100), 1);
        // 0.5 % of 0.99 yuan is 0.495 fen: rounds down to 0.
        assert_eq!(salaried(99), 0);
        // 1.5 % of 5123.45 yuan is 76.85175 yuan.
        assert_eq!(salaried(512_345), 7_685);
        // 1 % of 3000.50 yuan is 30.005 yuan: the half fen rounds up.
        assert_eq!(salaried(300_050), 3_001);
    }

    #[test]
    fn fixed_amount_ignores_income() {
        assert_eq!(monthly_fen(DuesKind::Fixed, 900_000, 20), 20);
    }

    #[test]
    fn month_parse_and_display() {
        let month = Month::parse("2026-01").unwrap();
        assert_eq!(month.to_string(), "2026-01");
        assert_eq!(month.previous().to_string(), "2025-12");
        assert_eq!(Month::parse("2026-13"), None);
        assert_eq!(Month::parse("2026-1"), None);
        assert_eq!(Month::parse("+202-01"), None, "sign");
        assert_eq!(Month::parse("2026-+1"), None, "sign in the month");
        assert_eq!(Month::parse("0001-01"), None, "before 1949");
        assert_eq!(Month::parse("9999-12"), None, "after 2100");
        assert!(Month::parse("1949-10").is_some());
        assert!(Month::parse("2100-12").is_some());
    }

    #[test]
    fn unpaid_months_and_run() {
        let since = Month::parse("2026-01").unwrap();
        let through = Month::parse("2026-06").unwrap();
        let paid: BTreeSet<Month> = ["2026-02", "2026-03"]
            .iter()
            .map(|text| Month::parse(text).unwrap())
            .collect();
        let unpaid: Vec<String> = unpaid_months(since, through, &paid)
            .iter()
            .map(Month::to_string)
            .collect();
        assert_eq!(unpaid, ["2026-01", "2026-04", "2026-05", "2026-06"]);
        assert_eq!(unpaid_run(since, through, &paid), 3);
        assert_eq!(
            unpaid_run(since, Month::parse("2026-03").unwrap(), &paid),
            0
        );
    }
}
