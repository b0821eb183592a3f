//! One function per workflow action, each over a mutable copy of the state.
//!
//! [`apply`](super::apply) checks the version first and records the
//! history entry afterwards. The functions here check the action's own
//! rules, change the state and push the action's effects.

mod annotate;
mod decide;
mod flow;
mod returns;
mod signers;
mod submit;
mod withdraw;

use super::action::{Action, Context, Reversible};
use super::effects::Effect;
use super::error::ActionError;
use super::state::Instance;

pub(super) fn run(
    state: &mut Instance,
    context: &Context,
    action: &Action,
    effects: &mut Vec<Effect>,
) -> Result<Reversible, ActionError> {
    match action {
        Action::Submit { route } => submit::submit(state, context, route, effects),
        Action::Approve(_) => decide::approve(state, context, effects),
        Action::Reject(_) => decide::reject(state, context, effects),
        Action::Return { target, .. } => returns::return_to(state, context, target, effects),
        Action::Withdraw => withdraw::withdraw(state, context, effects),
        Action::Delegate { to } => signers::delegate(state, context, *to, effects),
        Action::AddSigner { member, placement } => {
            signers::add_signer(state, context, *member, *placement, effects)
        }
        Action::Urge { member } => annotate::urge(state, context, *member, effects),
        Action::Comment { text } => annotate::comment(state, context, text, effects),
        Action::MarkRead => annotate::mark_read(state, context, effects),
    }
}
