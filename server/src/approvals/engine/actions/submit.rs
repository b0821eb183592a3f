//! Submit: the drafter sends the document along a planned route.

use super::super::action::{ActionKind, Context, Reversible};
use super::super::effects::Effect;
use super::super::error::ActionError;
use super::super::route::Route;
use super::super::state::{Instance, StepState};
use super::flow::start_step;

/// Submits from a draft, or again after a return or a withdrawal. The new
/// route replaces any earlier one, so conditions see the edited fields.
pub(super) fn submit(
    state: &mut Instance,
    context: &Context,
    route: &Route,
    effects: &mut Vec<Effect>,
) -> Result<Reversible, ActionError> {
    if !state.status().waits_for_drafter() {
        return Err(ActionError::NotAllowed {
            action: ActionKind::Submit,
            status: state.status().clone(),
        });
    }
    if context.actor != state.drafter {
        return Err(ActionError::NotDrafter {
            action: ActionKind::Submit,
            drafter: state.drafter,
        });
    }
    route.validate()?;

    let progress = &mut state.progress;
    progress.steps = route
        .steps
        .iter()
        .map(|step| StepState::not_reached(step.id.clone()))
        .collect();
    progress.readers.clear();
    progress.route = Some(route.clone());

    start_step(state, 0, effects);
    Ok(Reversible::Yes)
}
