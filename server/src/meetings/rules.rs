//! The counting rules of a meeting, as pure functions: quorum, motions and
//! elections. No SQL and no clock, so every boundary is a unit test.
//!
//! - `required` is the number of those required to attend: the voting
//!   members of the meeting's body, less those excused by a recorded
//!   decision (an excused member who attends counts again).
//! - A meeting is quorate when more than half of `required` are present;
//!   an election needs more than four fifths present.
//! - A motion passes with more than half of `required` voting for it, or
//!   at least two thirds under the `two_thirds` rule.
//! - In an election a candidate is elected with more than half of the
//!   votes of those present with voting rights. Seats go to the elected in
//!   order of votes, and a tie for the last seat leaves it unfilled.

use serde::{Deserialize, Serialize};

/// Whether more than half of those required to attend are present. A
/// meeting nobody is required to attend is never quorate.
pub fn quorate(required: i64, present: i64) -> bool {
    required > 0 && 2 * present > required
}

/// Whether more than four fifths of those required to attend are present,
/// the quorum of an election.
pub fn election_quorate(required: i64, present: i64) -> bool {
    required > 0 && 5 * present > 4 * required
}

/// The rule by which a motion passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PassRule {
    /// More than half of those required to attend vote for (超过半数).
    Majority,
    /// At least two thirds of those required to attend vote for
    /// (三分之二以上; Chinese rule texts count 以上 inclusively).
    TwoThirds,
}

impl PassRule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Majority => "majority",
            Self::TwoThirds => "two_thirds",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "majority" => Some(Self::Majority),
            "two_thirds" => Some(Self::TwoThirds),
            _ => None,
        }
    }

    /// Whether `votes_for` out of `required` meets the rule.
    pub fn passes(self, required: i64, votes_for: i64) -> bool {
        if required <= 0 {
            return false;
        }
        match self {
            Self::Majority => 2 * votes_for > required,
            Self::TwoThirds => 3 * votes_for >= 2 * required,
        }
    }
}

/// A choice on a motion's ballot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    For,
    Against,
    Abstain,
}

impl Choice {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::For => "for",
            Self::Against => "against",
            Self::Abstain => "abstain",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "for" => Some(Self::For),
            "against" => Some(Self::Against),
            "abstain" => Some(Self::Abstain),
            _ => None,
        }
    }
}

/// The outcome of a closed ballot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    /// The meeting was not quorate when the ballot closed: no decision.
    NoQuorum,
    /// An election that filled at least one seat.
    Elected,
    /// An election that filled no seat.
    NoneElected,
}

/// The counted result of a motion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MotionTally {
    pub votes_for: i64,
    pub against: i64,
    pub abstain: i64,
    /// Those required to attend when the ballot closed: the base of the rule.
    pub required: i64,
    pub present: i64,
    pub outcome: Outcome,
}

/// Counts a motion's ballots against `required` under `rule`.
pub fn tally_motion(
    rule: PassRule,
    required: i64,
    present: i64,
    choices: &[Choice],
) -> MotionTally {
    let count = |choice: Choice| choices.iter().filter(|c| **c == choice).count() as i64;
    let votes_for = count(Choice::For);
    let outcome = if !quorate(required, present) {
        Outcome::NoQuorum
    } else if rule.passes(required, votes_for) {
        Outcome::Passed
    } else {
        Outcome::Failed
    };
    MotionTally {
        votes_for,
        against: count(Choice::Against),
        abstain: count(Choice::Abstain),
        required,
        present,
        outcome,
    }
}

/// One candidate's count in an election.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CandidateTally {
    pub position: i64,
    pub votes: i64,
    pub elected: bool,
    /// Tied with another candidate for the last seat; neither is elected.
    pub tied: bool,
}

/// The counted result of an election.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ElectionTally {
    pub seats: i64,
    pub ballots: i64,
    /// Those present with voting rights: the base of "more than half".
    pub electors: i64,
    pub required: i64,
    pub candidates: Vec<CandidateTally>,
    pub unfilled_seats: i64,
    pub outcome: Outcome,
}

/// Counts an election. Each ballot lists the candidate positions it marks;
/// `electors` is the number present with voting rights.
pub fn tally_election(
    seats: i64,
    candidates: &[i64],
    required: i64,
    electors: i64,
    ballots: &[Vec<i64>],
) -> ElectionTally {
    let mut counts: Vec<CandidateTally> = candidates
        .iter()
        .map(|position| CandidateTally {
            position: *position,
            votes: ballots.iter().filter(|b| b.contains(position)).count() as i64,
            elected: false,
            tied: false,
        })
        .collect();
    counts.sort_by(|a, b| b.votes.cmp(&a.votes).then(a.position.cmp(&b.position)));

    let quorate = election_quorate(required, electors);
    let qualified = |votes: i64| quorate && 2 * votes > electors;
    let mut filled = 0;
    let mut index = 0;
    while index < counts.len() && filled < seats && qualified(counts[index].votes) {
        let votes = counts[index].votes;
        let group_end = counts[index..]
            .iter()
            .position(|c| c.votes != votes)
            .map_or(counts.len(), |offset| index + offset);
        let group = group_end - index;
        if filled + group as i64 <= seats {
            counts[index..group_end]
                .iter_mut()
                .for_each(|c| c.elected = true);
            filled += group as i64;
        } else {
            counts[index..group_end]
                .iter_mut()
                .for_each(|c| c.tied = true);
            break;
        }
        index = group_end;
    }
    counts.sort_by_key(|c| c.position);

    let outcome = if !quorate {
        Outcome::NoQuorum
    } else if filled > 0 {
        Outcome::Elected
    } else {
        Outcome::NoneElected
    };
    ElectionTally {
        seats,
        ballots: ballots.len() as i64,
        electors,
        required,
        candidates: counts,
        unfilled_seats: seats - filled,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quorum_boundaries() {
        assert!(!quorate(10, 5), "exactly half");
        assert!(quorate(10, 6), "one more than half");
        assert!(!quorate(9, 4));
        assert!(quorate(9, 5), "more than half of an odd count");
        assert!(!quorate(0, 0), "nobody required");
    }

    #[test]
    fn election_quorum_boundaries() {
        assert!(!election_quorate(10, 8), "exactly four fifths");
        assert!(election_quorate(10, 9), "one more than four fifths");
        assert!(!election_quorate(5, 4), "exactly four fifths of five");
        assert!(election_quorate(5, 5));
        assert!(!election_quorate(0, 0));
    }

    #[test]
    fn majority_boundaries() {
        assert!(!PassRule::Majority.passes(10, 5), "exactly half");
        assert!(PassRule::Majority.passes(10, 6), "one more than half");
        assert!(!PassRule::Majority.passes(0, 0));
    }

    #[test]
    fn two_thirds_boundaries() {
        assert!(PassRule::TwoThirds.passes(9, 6), "exactly two thirds");
        assert!(
            !PassRule::TwoThirds.passes(9, 5),
            "one less than two thirds"
        );
        assert!(!PassRule::TwoThirds.passes(10, 6));
        assert!(PassRule::TwoThirds.passes(10, 7));
    }

    #[test]
    fn motion_without_quorum_decides_nothing() {
        let choices = [Choice::For; 5];
        let tally = tally_motion(PassRule::Majority, 10, 5, &choices);
        assert_eq!(tally.outcome, Outcome::NoQuorum);
        assert_eq!(tally.votes_for, 5);
    }

    #[test]
    fn motion_counts_against_required_not_votes_cast() {
        // 7 present of 12 required, 6 for: a majority of those voting but
        // not of those required to attend.
        let choices = [vec![Choice::For; 6], vec![Choice::Against]].concat();
        let tally = tally_motion(PassRule::Majority, 12, 7, &choices);
        assert_eq!(tally.outcome, Outcome::Failed);
        let choices = [vec![Choice::For; 7]].concat();
        let tally = tally_motion(PassRule::Majority, 12, 7, &choices);
        assert_eq!(tally.outcome, Outcome::Passed);
    }

    fn ballots(marks: &[(&[i64], usize)]) -> Vec<Vec<i64>> {
        marks
            .iter()
            .flat_map(|(marked, n)| std::iter::repeat_n(marked.to_vec(), *n))
            .collect()
    }

    #[test]
    fn election_fills_seats_in_order_of_votes() {
        // 10 electors, 2 seats, 4 candidates.
        let ballots = ballots(&[(&[0, 1], 6), (&[1, 2], 3), (&[3], 1)]);
        let tally = tally_election(2, &[0, 1, 2, 3], 10, 10, &ballots);
        let elected: Vec<i64> = tally
            .candidates
            .iter()
            .filter(|c| c.elected)
            .map(|c| c.position)
            .collect();
        assert_eq!(elected, [0, 1]);
        assert_eq!(tally.unfilled_seats, 0);
        assert_eq!(tally.outcome, Outcome::Elected);
    }

    #[test]
    fn election_needs_more_than_half_of_electors() {
        // Exactly half (5 of 10) is not enough; 6 is.
        let ballots = ballots(&[(&[0, 1], 5), (&[1], 1), (&[2], 4)]);
        let tally = tally_election(2, &[0, 1, 2], 10, 10, &ballots);
        let by_position = |p: i64| tally.candidates.iter().find(|c| c.position == p).unwrap();
        assert!(!by_position(0).elected, "exactly half");
        assert!(by_position(1).elected, "one more than half");
        assert_eq!(tally.unfilled_seats, 1);
    }

    #[test]
    fn election_tie_for_last_seat_leaves_it_unfilled() {
        // 10 electors, 2 seats: candidate 0 has 9, candidates 1 and 2 have 7.
        let ballots = ballots(&[(&[0, 1], 4), (&[0, 2], 4), (&[0], 1), (&[1, 2], 3)]);
        let tally = tally_election(2, &[0, 1, 2], 10, 10, &ballots);
        let by_position = |p: i64| tally.candidates.iter().find(|c| c.position == p).unwrap();
        assert!(by_position(0).elected);
        assert!(by_position(1).tied);
        assert!(!by_position(1).elected);
        assert!(by_position(2).tied);
        assert!(!by_position(2).elected);
        assert_eq!(tally.unfilled_seats, 1);
    }

    #[test]
    fn election_without_four_fifths_elects_nobody() {
        let ballots = ballots(&[(&[0], 8)]);
        let tally = tally_election(1, &[0, 1], 10, 8, &ballots);
        assert_eq!(tally.outcome, Outcome::NoQuorum);
        assert!(tally.candidates.iter().all(|c| !c.elected));
        assert_eq!(tally.unfilled_seats, 1);
    }

    proptest! {
        #[test]
        fn quorum_matches_rational_rule(required in 1i64..500, present in 0i64..500) {
            let present = present.min(required);
            prop_assert_eq!(quorate(required, present), present as f64 > required as f64 / 2.0);
            prop_assert_eq!(
                election_quorate(required, present),
                present as f64 > required as f64 * 0.8
            );
        }

        #[test]
        fn election_never_elects_more_than_seats(
            seats in 1i64..5,
            marks in proptest::collection::vec(proptest::collection::btree_set(0i64..6, 0..5), 0..40),
        ) {
            let ballots: Vec<Vec<i64>> = marks
                .into_iter()
                .map(|set| set.into_iter().take(seats as usize).collect())
                .collect();
            let electors = ballots.len() as i64;
            let tally = tally_election(seats, &[0, 1, 2, 3, 4, 5], electors, electors, &ballots);
            let elected = tally.candidates.iter().filter(|c| c.elected).count() as i64;
            prop_assert!(elected <= seats);
            prop_assert_eq!(tally.unfilled_seats, seats - elected);
            for candidate in tally.candidates.iter().filter(|c| c.elected) {
                prop_assert!(2 * candidate.votes > electors);
            }
        }
    }
}
