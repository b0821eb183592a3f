//! Approve and reject: an assignee decides through their open task.

use super::super::action::{ActionKind, Context, Reversible};
use super::super::effects::Effect;
use super::super::error::ActionError;
use super::super::state::{Instance, SeatState};
use super::flow::{current_step, settle_step};

/// Approves the actor's open task, which may complete the stage, the step
/// and the route. Completing the route signs the document off. That
/// approval cannot be withdrawn, because the document number is assigned.
pub(super) fn approve(
    state: &mut Instance,
    context: &Context,
    effects: &mut Vec<Effect>,
) -> Result<Reversible, ActionError> {
    let decided = SeatState::Approved { at: context.at };
    decide(state, context, ActionKind::Approve, decided, effects)?;

    if state.status().is_signed_off() {
        Ok(Reversible::No)
    } else {
        Ok(Reversible::Yes)
    }
}

/// Rejects through the actor's open task. Whether the document is rejected
/// depends on the step kind: at once for single, sequential, all-of and
/// any-of steps, and for a ratio step once its threshold is out of reach.
/// A rejection is final and cannot be withdrawn.
pub(super) fn reject(
    state: &mut Instance,
    context: &Context,
    effects: &mut Vec<Effect>,
) -> Result<Reversible, ActionError> {
    let decided = SeatState::Rejected { at: context.at };
    decide(state, context, ActionKind::Reject, decided, effects)?;
    Ok(Reversible::No)
}

fn decide(
    state: &mut Instance,
    context: &Context,
    action: ActionKind,
    decided: SeatState,
    effects: &mut Vec<Effect>,
) -> Result<(), ActionError> {
    let index = current_step(state, action)?;
    let step = &mut state.progress.steps[index];
    let Some(seat) = step.open_seat_mut(context.actor) else {
        return Err(ActionError::NoOpenTask {
            actor: context.actor,
            step: step.id.clone(),
        });
    };
    seat.state = decided;

    settle_step(state, index, effects);
    Ok(())
}
