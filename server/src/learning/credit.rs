//! The default credit-hour rule by lesson length, and yearly targets.

/// Credit hours, in hundredths, that a lesson of `duration_ms` earns when
/// the organizer sets none: at least 30 minutes earn 1 hour, 15 to 30
/// minutes 0.5, anything shorter 0.25.
pub fn default_centi(duration_ms: i64) -> i64 {
    const MINUTE: i64 = 60_000;
    if duration_ms >= 30 * MINUTE {
        100
    } else if duration_ms >= 15 * MINUTE {
        50
    } else {
        25
    }
}

/// Credit hours a passed exam adds when the organizer sets none (0.5).
pub const EXAM_CENTI: i64 = 50;

/// Target when no row for the year and role exists: 50 hours a year in
/// total, the minimum of online study in the national cadre education and
/// training plan for 2023-2027, all counted as required.
pub const DEFAULT_TARGET: Target = Target {
    required_centi: 5000,
    elective_centi: 0,
};

/// A yearly target, in hundredths of a credit hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub required_centi: i64,
    pub elective_centi: i64,
}

/// Roles a target can be set for: every member, then the officer roles.
pub const TARGET_ROLES: &[&str] = &[
    "member",
    "secretary",
    "deputy_secretary",
    "organization_member",
    "propaganda_member",
    "discipline_member",
    "committee_member",
];

/// A person's target from the targets of their roles: the largest of each
/// part, or [`DEFAULT_TARGET`] when none of the roles has one.
pub fn combine(targets: &[Target]) -> Target {
    if targets.is_empty() {
        return DEFAULT_TARGET;
    }
    Target {
        required_centi: targets.iter().map(|t| t.required_centi).max().unwrap_or(0),
        elective_centi: targets.iter().map(|t| t.elective_centi).max().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rule_by_length() {
        let minute = 60_000;
        assert_eq!(default_centi(45 * minute), 100);
        assert_eq!(default_centi(30 * minute), 100);
        assert_eq!(default_centi(30 * minute - 1), 50);
        assert_eq!(default_centi(15 * minute), 50);
        assert_eq!(default_centi(15 * minute - 1), 25);
        assert_eq!(default_centi(3_000), 25);
    }

    #[test]
    fn combine_takes_largest_part() {
        let member = Target {
            required_centi: 3000,
            elective_centi: 2000,
        };
        let secretary = Target {
            required_centi: 4000,
            elective_centi: 1000,
        };
        let both = combine(&[member, secretary]);
        assert_eq!(both.required_centi, 4000);
        assert_eq!(both.elective_centi, 2000);
        assert_eq!(combine(&[]), DEFAULT_TARGET);
    }
}
