//! Moving between steps: starting a step, settling it after a decision,
//! and signing the document off after the final step.

use super::super::action::ActionKind;
use super::super::effects::{CcWhen, DrafterNotice, Effect};
use super::super::error::ActionError;
use super::super::ids::{MemberId, TaskId};
use super::super::route::RouteStep;
use super::super::state::{Instance, Reader, Status, StepPhase};
use super::super::step::Verdict;

/// Returns the index of the current step, or an error naming `action` when
/// the document is not waiting for approvers.
pub(super) fn current_step(state: &Instance, action: ActionKind) -> Result<usize, ActionError> {
    let not_allowed = || ActionError::NotAllowed {
        action,
        status: state.status().clone(),
    };
    let Status::InProgress { step } = state.status() else {
        return Err(not_allowed());
    };
    let route = state.progress.route.as_ref().ok_or_else(not_allowed)?;
    route.position(step).ok_or_else(not_allowed)
}

/// Returns the route step at `index` of the current submission.
pub(super) fn route_step(state: &Instance, index: usize) -> RouteStep {
    let route = state.progress.route.as_ref();
    route.expect("a submitted document has a route").steps[index].clone()
}

/// Starts a new pass of the step at `index` and makes it current.
pub(super) fn start_step(state: &mut Instance, index: usize, effects: &mut Vec<Effect>) {
    let step = route_step(state, index);
    let next_task = &mut state.next_task;
    let allocate = || {
        let task = TaskId(*next_task);
        *next_task += 1;
        task
    };
    let current = &mut state.progress.steps[index];
    current.start(&step, allocate);
    current.settle(step.kind);

    state.progress.status = Status::InProgress {
        step: step.id.clone(),
    };
    effects.push(Effect::StepStarted {
        step: step.id.clone(),
    });
    if !step.cc_on_start.is_empty() {
        effects.push(Effect::CarbonCopy {
            step: step.id,
            when: CcWhen::Start,
            members: step.cc_on_start,
        });
    }
}

/// Settles the step at `index` after a change to its seats: moves on when
/// it is approved and ends the workflow when it is rejected.
pub(super) fn settle_step(state: &mut Instance, index: usize, effects: &mut Vec<Effect>) {
    let step = route_step(state, index);
    let verdict = state.progress.steps[index].settle(step.kind);
    match verdict {
        Verdict::Pending => {}
        Verdict::Approved => finish_step(state, index, step, effects),
        Verdict::Rejected => {
            state.progress.steps[index].phase = StepPhase::Rejected;
            state.progress.status = Status::Rejected { step: step.id };
            effects.push(Effect::NotifyDrafter {
                drafter: state.drafter,
                reason: DrafterNotice::Rejected,
            });
        }
    }
}

fn finish_step(state: &mut Instance, index: usize, step: RouteStep, effects: &mut Vec<Effect>) {
    state.progress.steps[index].phase = StepPhase::Approved;
    effects.push(Effect::StepApproved {
        step: step.id.clone(),
    });
    if !step.cc_on_finish.is_empty() {
        effects.push(Effect::CarbonCopy {
            step: step.id,
            when: CcWhen::Finish,
            members: step.cc_on_finish,
        });
    }

    if index + 1 < state.progress.steps.len() {
        start_step(state, index + 1, effects);
    } else {
        sign_off(state, effects);
    }
}

/// Signs the document off and starts circulation when the route has
/// readers.
fn sign_off(state: &mut Instance, effects: &mut Vec<Effect>) {
    effects.push(Effect::SignedOff);
    effects.push(Effect::NotifyDrafter {
        drafter: state.drafter,
        reason: DrafterNotice::SignedOff,
    });

    let members = route_readers(state);
    let readers = members
        .iter()
        .map(|member| Reader {
            task: state.allocate_task(),
            member: *member,
            read_at: None,
        })
        .collect();
    state.progress.readers = readers;

    if members.is_empty() {
        state.progress.status = Status::Approved;
    } else {
        state.progress.status = Status::Circulating;
        effects.push(Effect::CirculationStarted { readers: members });
    }
}

fn route_readers(state: &Instance) -> Vec<MemberId> {
    let route = state.progress.route.as_ref();
    route
        .map(|route| route.circulation.clone())
        .unwrap_or_default()
}
