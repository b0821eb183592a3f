//! Withdraw: the actor of the last workflow action takes it back.

use super::super::action::{ActionKind, Context, Reversible};
use super::super::effects::Effect;
use super::super::error::ActionError;
use super::super::state::{Instance, Status};

/// Restores the state from before the last workflow action.
///
/// Only its actor may withdraw it, and only while no workflow action
/// followed it, which also means the next assignee has not acted.
/// Comments, urges and reads in between do not count. A withdrawn
/// submission leaves the document [`Status::Withdrawn`] with the drafter.
pub(super) fn withdraw(
    state: &mut Instance,
    context: &Context,
    _effects: &mut [Effect],
) -> Result<Reversible, ActionError> {
    let Some(undo) = state.undo.take() else {
        return Err(ActionError::NothingToWithdraw);
    };
    if undo.actor != context.actor {
        return Err(ActionError::NotLastActor {
            last_actor: undo.actor,
            kind: undo.kind,
        });
    }

    state.progress = *undo.before;
    if undo.kind == ActionKind::Submit {
        state.progress.status = Status::Withdrawn;
    }
    // The task changes this causes come from comparing open tasks before
    // and after, like for every action.
    Ok(Reversible::No)
}
