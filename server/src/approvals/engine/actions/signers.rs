//! Delegate (转交) and add signer (加签): an assignee changes who acts at
//! the current step.

use super::super::action::{ActionKind, Context, Reversible};
use super::super::effects::Effect;
use super::super::error::ActionError;
use super::super::ids::MemberId;
use super::super::state::{Instance, Placement, Seat, SeatOrigin, SeatState, Slot};
use super::flow::{current_step, settle_step};

/// Hands the actor's open task to `to`, who takes over the actor's seat
/// under a new task id.
pub(super) fn delegate(
    state: &mut Instance,
    context: &Context,
    to: MemberId,
    effects: &mut Vec<Effect>,
) -> Result<Reversible, ActionError> {
    let index = current_step(state, ActionKind::Delegate)?;
    check_newcomer(state, index, context.actor, to)?;

    let task = state.allocate_task();
    let step = &mut state.progress.steps[index];
    let step_id = step.id.clone();
    let Some(seat) = step.open_seat_mut(context.actor) else {
        return Err(no_open_task(context.actor, step_id));
    };
    seat.delegated_from.push(context.actor);
    seat.member = to;
    seat.task = task;

    effects.push(Effect::Delegated {
        step: step_id,
        from: context.actor,
        to,
    });
    Ok(Reversible::No)
}

/// Adds `member` as a signer at the actor's step.
///
/// `Before` puts the signer ahead of the actor in the actor's slot, so the
/// actor's task waits for their approval. `After` puts them behind the
/// actor. `Parallel` adds a new slot beside the actor's, which counts as
/// one more vote under the step's rule.
pub(super) fn add_signer(
    state: &mut Instance,
    context: &Context,
    member: MemberId,
    placement: Placement,
    effects: &mut Vec<Effect>,
) -> Result<Reversible, ActionError> {
    let index = current_step(state, ActionKind::AddSigner)?;
    check_newcomer(state, index, context.actor, member)?;

    let step = &state.progress.steps[index];
    let step_id = step.id.clone();
    let Some((stage, slot, position)) = step.locate_open(context.actor) else {
        return Err(no_open_task(context.actor, step_id));
    };

    let seat = Seat {
        task: state.allocate_task(),
        member,
        origin: SeatOrigin::Added {
            by: context.actor,
            placement,
        },
        delegated_from: Vec::new(),
        state: SeatState::Waiting,
    };
    let stage = &mut state.progress.steps[index].stages[stage];
    match placement {
        Placement::Before => stage.slots[slot].seats.insert(position, seat),
        Placement::After => stage.slots[slot].seats.insert(position + 1, seat),
        Placement::Parallel => stage.slots.push(Slot { seats: vec![seat] }),
    }
    settle_step(state, index, effects);

    effects.push(Effect::SignerAdded {
        step: step_id,
        by: context.actor,
        member,
        placement,
    });
    Ok(Reversible::No)
}

/// Checks that `member` can take a seat at the step at `index`: not the
/// actor, and holding no other undecided seat there, so that no member ever
/// has two open tasks at one step.
fn check_newcomer(
    state: &Instance,
    index: usize,
    actor: MemberId,
    member: MemberId,
) -> Result<(), ActionError> {
    if member == actor {
        return Err(ActionError::SelfAssignment(actor));
    }
    let step = &state.progress.steps[index];
    if step.has_undecided(member) {
        return Err(ActionError::AlreadyOnStep {
            member,
            step: step.id.clone(),
        });
    }
    Ok(())
}

fn no_open_task(actor: MemberId, step: super::super::ids::StepId) -> ActionError {
    ActionError::NoOpenTask { actor, step }
}
