//! Tests of the workflow engine: unit tests per step kind and per action,
//! template and route planning, and property tests over random actions.

mod actions;
mod invariants;
mod kinds;
mod properties;
mod signers;
mod templates;

use chrono::{DateTime, TimeZone, Utc};

use super::*;

pub(super) const DRAFTER: MemberId = MemberId(1);

pub(super) fn member(id: i64) -> MemberId {
    MemberId(id)
}

/// Minute `minute` of a fixed day.
pub(super) fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + chrono::Duration::minutes(minute)
}

pub(super) fn step(id: &str, kind: StepKind, assignees: &[i64]) -> RouteStep {
    RouteStep {
        id: StepId::new(id),
        name: format!("{id} review"),
        kind,
        assignees: assignees.iter().copied().map(MemberId).collect(),
        deadline_working_days: None,
        cc_on_start: Vec::new(),
        cc_on_finish: Vec::new(),
    }
}

pub(super) fn route(steps: Vec<RouteStep>) -> Route {
    Route {
        steps,
        circulation: Vec::new(),
    }
}

pub(super) fn decision(opinion: &str) -> Decision {
    Decision {
        opinion: opinion.to_owned(),
        body_version: None,
    }
}

pub(super) fn approve_action() -> Action {
    Action::Approve(decision("同意"))
}

pub(super) fn reject_action() -> Action {
    Action::Reject(decision("不同意"))
}

/// A document driven through the engine, checking the invariants after
/// every accepted action.
pub(super) struct Flow {
    pub state: Instance,
    pub effects: Vec<Effect>,
    clock: i64,
}

impl Flow {
    pub fn new() -> Self {
        Self {
            state: Instance::new(DRAFTER, TemplateRef { id: 7, version: 3 }),
            effects: Vec::new(),
            clock: 0,
        }
    }

    /// Creates a document and submits it along `route`.
    pub fn submitted(route: Route) -> Self {
        let mut flow = Self::new();
        flow.ok(DRAFTER.0, Action::Submit { route });
        flow
    }

    /// Applies `action` by `actor` on the current version.
    pub fn act(&mut self, actor: i64, action: Action) -> Result<(), ActionError> {
        self.clock += 1;
        let context = Context {
            actor: MemberId(actor),
            based_on_version: self.state.version,
            at: at(self.clock),
        };
        let transition = apply(&self.state, context, action)?;
        invariants::check(&transition.instance);
        self.state = transition.instance;
        self.effects = transition.effects;
        Ok(())
    }

    pub fn ok(&mut self, actor: i64, action: Action) {
        let description = format!("{action:?} by member {actor}");
        if let Err(error) = self.act(actor, action) {
            panic!("{description} failed: {error}");
        }
    }

    pub fn err(&mut self, actor: i64, action: Action) -> ActionError {
        let description = format!("{action:?} by member {actor}");
        match self.act(actor, action) {
            Ok(()) => panic!("{description} succeeded, expected an error"),
            Err(error) => error,
        }
    }

    pub fn approve(&mut self, actor: i64) {
        self.ok(actor, approve_action());
    }

    /// Open tasks as (member, step id or `reading`), sorted.
    pub fn open(&self) -> Vec<(i64, String)> {
        let mut open: Vec<_> = open_tasks(&self.state)
            .into_iter()
            .map(|task| {
                let work = match task.work {
                    Work::Step { step } => step.0,
                    Work::Reading => "reading".to_owned(),
                };
                (task.member.0, work)
            })
            .collect();
        open.sort();
        open
    }

    pub fn status(&self) -> &Status {
        self.state.status()
    }

    pub fn has_effect(&self, wanted: &Effect) -> bool {
        self.effects.contains(wanted)
    }
}

/// Builds the expected `open()` list.
pub(super) fn tasks(pairs: &[(i64, &str)]) -> Vec<(i64, String)> {
    let mut pairs: Vec<_> = pairs.iter().map(|(m, s)| (*m, (*s).to_owned())).collect();
    pairs.sort();
    pairs
}

pub(super) fn in_progress(step: &str) -> Status {
    Status::InProgress {
        step: StepId::new(step),
    }
}
