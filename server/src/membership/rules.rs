//! The time rules of member development (发展党员), kept as data with small
//! functions over a person's recorded steps. `docs/rules.md` names the
//! source of each rule.
//!
//! Dates are calendar days. A period of months ends on the same day of the
//! month, or on the month's last day when it is shorter (one year after
//! 2024-02-29 is 2025-02-28).

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

/// The stages of a person's development, in order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// 入党申请人
    Applicant,
    /// 入党积极分子
    Activist,
    /// 发展对象
    Candidate,
    /// 预备党员
    Probationary,
    /// 正式党员
    Full,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Applicant,
        Stage::Activist,
        Stage::Candidate,
        Stage::Probationary,
        Stage::Full,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applicant => "applicant",
            Self::Activist => "activist",
            Self::Candidate => "candidate",
            Self::Probationary => "probationary",
            Self::Full => "full",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|stage| stage.as_str() == value)
    }
}

/// One recorded step of the development procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// 递交入党申请书
    Application,
    /// 党组织派人谈话
    Talk,
    /// 确定为入党积极分子 (after 党员推荐 or 群团组织推优)
    Activist,
    /// 指定培养联系人
    Contacts,
    /// 半年一次的考察
    Assessment,
    /// 思想汇报
    ThoughtReport,
    /// 确定为发展对象
    Candidate,
    /// 政治审查
    PoliticalReview,
    /// 集中培训
    Training,
    /// 支部大会讨论接收为预备党员
    BranchMeeting,
    /// 报上级党委审批
    Reported,
    /// 上级党委审批
    Approval,
    /// 入党宣誓
    Oath,
    /// 预备期满转为正式党员
    Confirmation,
}

/// Every step in procedure order.
pub const STEPS: [Step; 14] = [
    Step::Application,
    Step::Talk,
    Step::Activist,
    Step::Contacts,
    Step::Assessment,
    Step::ThoughtReport,
    Step::Candidate,
    Step::PoliticalReview,
    Step::Training,
    Step::BranchMeeting,
    Step::Reported,
    Step::Approval,
    Step::Oath,
    Step::Confirmation,
];

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::Talk => "talk",
            Self::Activist => "activist",
            Self::Contacts => "contacts",
            Self::Assessment => "assessment",
            Self::ThoughtReport => "thought_report",
            Self::Candidate => "candidate",
            Self::PoliticalReview => "political_review",
            Self::Training => "training",
            Self::BranchMeeting => "branch_meeting",
            Self::Reported => "reported",
            Self::Approval => "approval",
            Self::Oath => "oath",
            Self::Confirmation => "confirmation",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        STEPS.into_iter().find(|step| step.as_str() == value)
    }

    pub fn zh(self) -> &'static str {
        match self {
            Self::Application => "递交入党申请书",
            Self::Talk => "谈话",
            Self::Activist => "确定为入党积极分子",
            Self::Contacts => "指定培养联系人",
            Self::Assessment => "考察",
            Self::ThoughtReport => "思想汇报",
            Self::Candidate => "确定为发展对象",
            Self::PoliticalReview => "政治审查",
            Self::Training => "集中培训",
            Self::BranchMeeting => "支部大会讨论接收",
            Self::Reported => "报上级党委审批",
            Self::Approval => "上级党委审批",
            Self::Oath => "入党宣誓",
            Self::Confirmation => "转为正式党员",
        }
    }

    /// Whether the step may be recorded more than once: periodic records,
    /// and a political review taken again after it lapsed.
    pub fn repeats(self) -> bool {
        matches!(
            self,
            Self::Assessment | Self::ThoughtReport | Self::PoliticalReview
        )
    }

    /// The stages in which the step may be recorded.
    pub fn allowed_in(self) -> &'static [Stage] {
        use Stage::*;
        match self {
            Self::Application => &[],
            Self::Talk | Self::Activist => &[Applicant],
            Self::Contacts | Self::Candidate => &[Activist],
            Self::Assessment => &[Activist, Candidate],
            Self::ThoughtReport => &[Activist, Candidate, Probationary],
            Self::PoliticalReview | Self::Training | Self::BranchMeeting | Self::Reported => {
                &[Candidate]
            }
            Self::Approval => &[Candidate],
            Self::Oath | Self::Confirmation => &[Probationary],
        }
    }

    /// The steps that must be recorded before this one.
    pub fn requires(self) -> &'static [Step] {
        match self {
            Self::Application => &[],
            Self::Talk => &[Self::Application],
            Self::Activist => &[Self::Talk],
            Self::Contacts | Self::Assessment | Self::ThoughtReport => &[Self::Application],
            Self::Candidate => &[Self::Activist, Self::Contacts],
            Self::PoliticalReview | Self::Training => &[Self::Candidate],
            Self::BranchMeeting => &[Self::PoliticalReview, Self::Training],
            Self::Reported => &[Self::BranchMeeting],
            Self::Approval => &[Self::Reported],
            Self::Oath => &[Self::Approval],
            Self::Confirmation => &[Self::Oath],
        }
    }

    /// The stage the person reaches with this step, if it moves them on.
    pub fn reaches(self) -> Option<Stage> {
        match self {
            Self::Application => Some(Stage::Applicant),
            Self::Activist => Some(Stage::Activist),
            Self::Candidate => Some(Stage::Candidate),
            Self::Approval => Some(Stage::Probationary),
            Self::Confirmation => Some(Stage::Full),
            _ => None,
        }
    }
}

/// A minimum wait: `step` may not be taken before `after` plus `months`.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub step: Step,
    pub after: Step,
    pub months: u32,
    pub source: &'static str,
}

/// A deadline: `step` is due within `months` of `after`. A later record
/// needs a reason; past `extended_months` (where the rule allows an
/// extension in special cases) it is rejected.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub step: Step,
    pub after: Step,
    pub months: u32,
    pub extended_months: Option<u32>,
    pub source: &'static str,
}

/// A record that stays valid for `months`: `until` must be taken before it
/// lapses.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub step: Step,
    pub until: Step,
    pub months: u32,
    pub source: &'static str,
}

/// A record repeated every `months` while the person is in `stages`,
/// counted from `from` or from the previous record.
#[derive(Debug, Clone, Copy)]
pub struct Periodic {
    pub step: Step,
    pub from: Step,
    pub months: u32,
    pub stages: &'static [Stage],
    pub source: &'static str,
}

/// Minimum age on the application date, in years.
pub const MIN_AGE_YEARS: u32 = 18;

/// Candidate training: at least three days or at least 24 hours.
pub const MIN_TRAINING_DAYS: u32 = 3;
pub const MIN_TRAINING_HOURS: u32 = 24;

/// Days before a deadline when the organization is reminded.
pub const REMIND_DAYS_BEFORE: u64 = 7;

pub const WAITS: [Wait; 2] = [
    Wait {
        step: Step::Candidate,
        after: Step::Activist,
        months: 12,
        source: "发展党员工作细则：一年以上培养教育和考察",
    },
    Wait {
        step: Step::Confirmation,
        after: Step::BranchMeeting,
        months: 12,
        source: "党章第七条：预备期一年",
    },
];

pub const DEADLINES: [Deadline; 3] = [
    Deadline {
        step: Step::Talk,
        after: Step::Application,
        months: 1,
        extended_months: None,
        source: "发展党员工作细则第七条",
    },
    Deadline {
        step: Step::Reported,
        after: Step::BranchMeeting,
        months: 3,
        extended_months: None,
        source: "支部大会决议三个月内报上级党委",
    },
    Deadline {
        step: Step::Approval,
        after: Step::Reported,
        months: 3,
        extended_months: Some(6),
        source: "发展党员工作细则：上级党委三个月内审批，特殊情况不超过六个月",
    },
];

pub const VALIDITIES: [Validity; 1] = [Validity {
    step: Step::PoliticalReview,
    until: Step::BranchMeeting,
    months: 12,
    source: "政治审查结论一年内有效",
}];

pub const PERIODIC: [Periodic; 2] = [
    Periodic {
        step: Step::Assessment,
        from: Step::Activist,
        months: 6,
        stages: &[Stage::Activist, Stage::Candidate],
        source: "发展党员工作细则：每半年考察一次",
    },
    Periodic {
        step: Step::ThoughtReport,
        from: Step::Application,
        months: 3,
        stages: &[Stage::Activist, Stage::Candidate, Stage::Probationary],
        source: "每季度一次思想汇报",
    },
];

/// Adds calendar months, clamping to the month's last day.
pub fn add_months(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_add_months(Months::new(months))
        .unwrap_or(NaiveDate::MAX)
}

/// Returns the first day on which a person born on `birth` is `MIN_AGE_YEARS` old.
pub fn adult_on(birth: NaiveDate) -> NaiveDate {
    add_months(birth, 12 * MIN_AGE_YEARS)
}

/// Checks whether a training of `days` days or `hours` hours is long enough.
pub fn training_is_enough(days: u32, hours: u32) -> bool {
    days >= MIN_TRAINING_DAYS || hours >= MIN_TRAINING_HOURS
}

/// The dates of one person's recorded steps, latest last for repeated ones.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub steps: Vec<(Step, NaiveDate)>,
}

impl History {
    /// Returns the date of the latest record of `step`.
    pub fn last(&self, step: Step) -> Option<NaiveDate> {
        self.steps
            .iter()
            .filter(|(kind, _)| *kind == step)
            .map(|(_, date)| *date)
            .max()
    }

    pub fn has(&self, step: Step) -> bool {
        self.last(step).is_some()
    }

    /// Returns the stage reached by the latest stage-moving step.
    pub fn stage(&self) -> Option<Stage> {
        self.steps
            .iter()
            .filter_map(|(step, _)| step.reaches())
            .max()
    }
}

/// The reason a step is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The person is in a stage where the step does not belong.
    WrongStage { stage: Option<Stage> },
    /// A step that must come first is missing.
    Missing { step: Step },
    /// A step that happens once is already recorded.
    AlreadyRecorded,
    /// The step is dated before a step it follows.
    BeforePrerequisite { step: Step, date: NaiveDate },
    /// The step opens on `opens_on`.
    TooEarly {
        opens_on: NaiveDate,
        source: &'static str,
    },
    /// The applicant is not yet 18; they may apply from `opens_on`.
    TooYoung { opens_on: NaiveDate },
    /// The deadline was `due_on`; a late record needs a reason.
    LateWithoutReason {
        due_on: NaiveDate,
        source: &'static str,
    },
    /// Past even the extended deadline `latest_on`.
    PastExtension {
        latest_on: NaiveDate,
        source: &'static str,
    },
    /// `step` lapsed on `lapsed_on`, before this step.
    Lapsed {
        step: Step,
        lapsed_on: NaiveDate,
        source: &'static str,
    },
    /// The training is shorter than three days and 24 hours.
    TrainingTooShort,
}

/// The facts of a step that the rules check.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    pub birth: Option<NaiveDate>,
    pub training_days: u32,
    pub training_hours: u32,
    /// Whether the record states a reason for an exception.
    pub has_reason: bool,
}

/// The outcome of an accepted check: whether the record is late and needs
/// its reason kept as an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub late_since: Option<NaiveDate>,
}

/// Checks a step dated `date` against the person's history and every rule.
pub fn check(
    step: Step,
    date: NaiveDate,
    history: &History,
    facts: Facts,
) -> Result<Accepted, Refusal> {
    check_order(step, date, history)?;
    check_specific(step, date, facts)?;
    check_waits(step, date, history)?;
    check_validity(step, date, history)?;
    check_deadline(step, date, history, facts.has_reason)
}

fn check_order(step: Step, date: NaiveDate, history: &History) -> Result<(), Refusal> {
    let stage = history.stage();
    if step == Step::Application {
        return match stage {
            None => Ok(()),
            Some(_) => Err(Refusal::AlreadyRecorded),
        };
    }
    if !stage.is_some_and(|stage| step.allowed_in().contains(&stage)) {
        return Err(Refusal::WrongStage { stage });
    }
    if !step.repeats() && history.has(step) {
        return Err(Refusal::AlreadyRecorded);
    }
    for required in step.requires() {
        let Some(before) = history.last(*required) else {
            return Err(Refusal::Missing { step: *required });
        };
        if date < before {
            return Err(Refusal::BeforePrerequisite {
                step: *required,
                date: before,
            });
        }
    }
    Ok(())
}

fn check_specific(step: Step, date: NaiveDate, facts: Facts) -> Result<(), Refusal> {
    match step {
        Step::Application => {
            if let Some(birth) = facts.birth
                && date < adult_on(birth)
            {
                return Err(Refusal::TooYoung {
                    opens_on: adult_on(birth),
                });
            }
            Ok(())
        }
        Step::Training if !training_is_enough(facts.training_days, facts.training_hours) => {
            Err(Refusal::TrainingTooShort)
        }
        _ => Ok(()),
    }
}

fn check_waits(step: Step, date: NaiveDate, history: &History) -> Result<(), Refusal> {
    for wait in WAITS.iter().filter(|wait| wait.step == step) {
        if let Some(after) = history.last(wait.after) {
            let opens_on = add_months(after, wait.months);
            if date < opens_on {
                return Err(Refusal::TooEarly {
                    opens_on,
                    source: wait.source,
                });
            }
        }
    }
    Ok(())
}

fn check_validity(step: Step, date: NaiveDate, history: &History) -> Result<(), Refusal> {
    for validity in VALIDITIES.iter().filter(|validity| validity.until == step) {
        if let Some(taken) = history.last(validity.step) {
            let lapsed_on = add_months(taken, validity.months);
            if date >= lapsed_on {
                return Err(Refusal::Lapsed {
                    step: validity.step,
                    lapsed_on,
                    source: validity.source,
                });
            }
        }
    }
    Ok(())
}

fn check_deadline(
    step: Step,
    date: NaiveDate,
    history: &History,
    has_reason: bool,
) -> Result<Accepted, Refusal> {
    for deadline in DEADLINES.iter().filter(|deadline| deadline.step == step) {
        let Some(after) = history.last(deadline.after) else {
            continue;
        };
        let due_on = add_months(after, deadline.months);
        if date <= due_on {
            continue;
        }
        if let Some(extended) = deadline.extended_months {
            let latest_on = add_months(after, extended);
            if date > latest_on {
                return Err(Refusal::PastExtension {
                    latest_on,
                    source: deadline.source,
                });
            }
        }
        if !has_reason {
            return Err(Refusal::LateWithoutReason {
                due_on,
                source: deadline.source,
            });
        }
        return Ok(Accepted {
            late_since: Some(due_on),
        });
    }
    Ok(Accepted { late_since: None })
}

/// A step the organization must take by `due_on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Due {
    pub step: Step,
    pub due_on: NaiveDate,
    #[serde(skip)]
    pub source: &'static str,
}

/// Lists the steps now due for a person: open deadlines and periodic
/// records.
pub fn due_steps(history: &History) -> Vec<Due> {
    let Some(stage) = history.stage() else {
        return Vec::new();
    };
    let mut due = Vec::new();
    for deadline in &DEADLINES {
        if history.has(deadline.step) || !deadline.step.allowed_in().contains(&stage) {
            continue;
        }
        if let Some(after) = history.last(deadline.after) {
            due.push(Due {
                step: deadline.step,
                due_on: add_months(after, deadline.months),
                source: deadline.source,
            });
        }
    }
    for periodic in PERIODIC.iter().filter(|p| p.stages.contains(&stage)) {
        let since = history.last(periodic.step).or(history.last(periodic.from));
        if let Some(since) = since {
            due.push(Due {
                step: periodic.step,
                due_on: add_months(since, periodic.months),
                source: periodic.source,
            });
        }
    }
    due.sort_by_key(|item| item.due_on);
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn history(steps: &[(Step, &str)]) -> History {
        History {
            steps: steps
                .iter()
                .map(|(step, date)| (*step, day(date)))
                .collect(),
        }
    }

    fn activist_history() -> History {
        history(&[
            (Step::Application, "2023-03-01"),
            (Step::Talk, "2023-03-15"),
            (Step::Activist, "2023-05-10"),
            (Step::Contacts, "2023-05-12"),
        ])
    }

    fn candidate_history() -> History {
        let mut history = activist_history();
        history.steps.push((Step::Candidate, day("2024-05-10")));
        history
    }

    fn reported_history() -> History {
        let mut history = candidate_history();
        history.steps.extend([
            (Step::PoliticalReview, day("2024-06-01")),
            (Step::Training, day("2024-06-10")),
            (Step::BranchMeeting, day("2024-07-01")),
            (Step::Reported, day("2024-07-20")),
        ]);
        history
    }

    #[test]
    fn application_age_boundary() {
        let facts = Facts {
            birth: Some(day("2006-07-01")),
            ..Facts::default()
        };
        let empty = History::default();
        assert_eq!(
            check(Step::Application, day("2024-06-30"), &empty, facts),
            Err(Refusal::TooYoung {
                opens_on: day("2024-07-01")
            })
        );
        assert!(check(Step::Application, day("2024-07-01"), &empty, facts).is_ok());
    }

    #[test]
    fn application_age_of_leap_day_birth() {
        assert_eq!(adult_on(day("2008-02-29")), day("2026-02-28"));
    }

    #[test]
    fn talk_deadline_boundary() {
        let history = history(&[(Step::Application, "2024-01-31")]);
        let on_time = check(Step::Talk, day("2024-02-29"), &history, Facts::default());
        assert_eq!(on_time, Ok(Accepted { late_since: None }));
        let late = check(Step::Talk, day("2024-03-01"), &history, Facts::default());
        assert!(matches!(
            late,
            Err(Refusal::LateWithoutReason { due_on, .. }) if due_on == day("2024-02-29")
        ));
    }

    #[test]
    fn late_talk_with_reason_is_an_exception() {
        let history = history(&[(Step::Application, "2024-01-31")]);
        let facts = Facts {
            has_reason: true,
            ..Facts::default()
        };
        let late = check(Step::Talk, day("2024-03-01"), &history, facts);
        assert_eq!(
            late,
            Ok(Accepted {
                late_since: Some(day("2024-02-29"))
            })
        );
    }

    #[test]
    fn candidate_one_year_after_activist() {
        let history = activist_history();
        let early = check(
            Step::Candidate,
            day("2024-05-09"),
            &history,
            Facts::default(),
        );
        assert!(matches!(
            early,
            Err(Refusal::TooEarly { opens_on, .. }) if opens_on == day("2024-05-10")
        ));
        assert!(
            check(
                Step::Candidate,
                day("2024-05-10"),
                &history,
                Facts::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn candidate_needs_contacts() {
        let mut history = activist_history();
        history.steps.retain(|(step, _)| *step != Step::Contacts);
        assert_eq!(
            check(
                Step::Candidate,
                day("2024-06-01"),
                &history,
                Facts::default()
            ),
            Err(Refusal::Missing {
                step: Step::Contacts
            })
        );
    }

    #[test]
    fn training_length_boundary() {
        let history = candidate_history();
        let short = Facts {
            training_days: 2,
            training_hours: 23,
            ..Facts::default()
        };
        let by_hours = Facts {
            training_hours: 24,
            ..Facts::default()
        };
        let by_days = Facts {
            training_days: 3,
            ..Facts::default()
        };
        let date = day("2024-06-10");
        assert_eq!(
            check(Step::Training, date, &history, short),
            Err(Refusal::TrainingTooShort)
        );
        assert!(check(Step::Training, date, &history, by_hours).is_ok());
        assert!(check(Step::Training, date, &history, by_days).is_ok());
    }

    #[test]
    fn political_review_valid_one_year() {
        let mut history = candidate_history();
        history.steps.extend([
            (Step::PoliticalReview, day("2024-06-01")),
            (Step::Training, day("2024-06-10")),
        ]);
        let facts = Facts::default();
        assert!(check(Step::BranchMeeting, day("2025-05-31"), &history, facts).is_ok());
        assert!(matches!(
            check(Step::BranchMeeting, day("2025-06-01"), &history, facts),
            Err(Refusal::Lapsed { lapsed_on, .. }) if lapsed_on == day("2025-06-01")
        ));
    }

    #[test]
    fn report_deadline_boundary() {
        let mut history = reported_history();
        history.steps.retain(|(step, _)| *step != Step::Reported);
        let facts = Facts::default();
        assert!(check(Step::Reported, day("2024-10-01"), &history, facts).is_ok());
        assert!(matches!(
            check(Step::Reported, day("2024-10-02"), &history, facts),
            Err(Refusal::LateWithoutReason { due_on, .. }) if due_on == day("2024-10-01")
        ));
    }

    #[test]
    fn approval_three_months_then_six_with_reason() {
        let history = reported_history();
        let plain = Facts::default();
        let reason = Facts {
            has_reason: true,
            ..Facts::default()
        };
        assert!(check(Step::Approval, day("2024-10-20"), &history, plain).is_ok());
        assert!(matches!(
            check(Step::Approval, day("2024-10-21"), &history, plain),
            Err(Refusal::LateWithoutReason { .. })
        ));
        assert_eq!(
            check(Step::Approval, day("2025-01-20"), &history, reason),
            Ok(Accepted {
                late_since: Some(day("2024-10-20"))
            })
        );
        assert!(matches!(
            check(Step::Approval, day("2025-01-21"), &history, reason),
            Err(Refusal::PastExtension { latest_on, .. }) if latest_on == day("2025-01-20")
        ));
    }

    #[test]
    fn confirmation_one_year_after_branch_meeting() {
        let mut history = reported_history();
        history.steps.extend([
            (Step::Approval, day("2024-08-15")),
            (Step::Oath, day("2024-09-01")),
        ]);
        let facts = Facts::default();
        assert!(matches!(
            check(Step::Confirmation, day("2025-06-30"), &history, facts),
            Err(Refusal::TooEarly { opens_on, .. }) if opens_on == day("2025-07-01")
        ));
        assert!(check(Step::Confirmation, day("2025-07-01"), &history, facts).is_ok());
        history.steps.push((Step::Confirmation, day("2025-07-01")));
        assert_eq!(history.stage(), Some(Stage::Full));
    }

    #[test]
    fn step_before_its_prerequisite_is_rejected() {
        let history = history(&[(Step::Application, "2024-03-10")]);
        assert_eq!(
            check(Step::Talk, day("2024-03-09"), &history, Facts::default()),
            Err(Refusal::BeforePrerequisite {
                step: Step::Application,
                date: day("2024-03-10")
            })
        );
    }

    #[test]
    fn once_only_step_cannot_repeat() {
        let history = history(&[
            (Step::Application, "2024-03-10"),
            (Step::Talk, "2024-03-11"),
        ]);
        assert_eq!(
            check(Step::Talk, day("2024-03-12"), &history, Facts::default()),
            Err(Refusal::AlreadyRecorded)
        );
    }

    #[test]
    fn due_steps_of_activist() {
        let due = due_steps(&activist_history());
        let steps: Vec<_> = due.iter().map(|item| (item.step, item.due_on)).collect();
        assert_eq!(
            steps,
            vec![
                (Step::ThoughtReport, day("2023-06-01")),
                (Step::Assessment, day("2023-11-10")),
            ]
        );
    }

    #[test]
    fn due_steps_of_new_applicant() {
        let due = due_steps(&history(&[(Step::Application, "2024-01-31")]));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].step, Step::Talk);
        assert_eq!(due[0].due_on, day("2024-02-29"));
    }
}
