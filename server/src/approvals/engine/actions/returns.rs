//! Return: an assignee sends the document back to an earlier step or to
//! the drafter, never forward.

use super::super::action::{ActionKind, Context, ReturnTarget, Reversible};
use super::super::effects::{DrafterNotice, Effect};
use super::super::error::ActionError;
use super::super::state::{Instance, Status};
use super::flow::{current_step, route_step, start_step};

/// Returns the document. Every step from the target to the current one
/// starts over, so the target step's assignees act again from the start.
pub(super) fn return_to(
    state: &mut Instance,
    context: &Context,
    target: &ReturnTarget,
    effects: &mut Vec<Effect>,
) -> Result<Reversible, ActionError> {
    let current = current_step(state, ActionKind::Return)?;
    let step = &state.progress.steps[current];
    if step.locate_open(context.actor).is_none() {
        return Err(ActionError::NoOpenTask {
            actor: context.actor,
            step: step.id.clone(),
        });
    }

    match target_index(state, current, target)? {
        Some(index) => {
            reset_steps(state, index, current);
            start_step(state, index, effects);
        }
        None => to_drafter(state, current, effects),
    }
    Ok(Reversible::Yes)
}

/// Resolves the target to a step index, or `None` for the drafter.
fn target_index(
    state: &Instance,
    current: usize,
    target: &ReturnTarget,
) -> Result<Option<usize>, ActionError> {
    let current_id = || route_step(state, current).id;
    match target {
        ReturnTarget::Drafter => Ok(None),
        ReturnTarget::Previous if current == 0 => Err(ActionError::NoPreviousStep(current_id())),
        ReturnTarget::Previous => Ok(Some(current - 1)),
        ReturnTarget::Step { step } => {
            let route = state.progress.route.as_ref();
            let index = route.and_then(|route| route.position(step));
            match index {
                None => Err(ActionError::UnknownStep(step.clone())),
                // Steps before the current one were all approved in this
                // pass, because a route runs its steps in order.
                Some(index) if index < current => Ok(Some(index)),
                Some(_) => Err(ActionError::ReturnForward {
                    current: current_id(),
                    target: step.clone(),
                }),
            }
        }
    }
}

fn reset_steps(state: &mut Instance, from: usize, to: usize) {
    for step in &mut state.progress.steps[from..=to] {
        step.reset();
    }
}

fn to_drafter(state: &mut Instance, current: usize, effects: &mut Vec<Effect>) {
    let from = route_step(state, current).id;
    reset_steps(state, 0, current);
    state.progress.status = Status::ReturnedToDrafter { from };
    effects.push(Effect::NotifyDrafter {
        drafter: state.drafter,
        reason: DrafterNotice::Returned,
    });
}
