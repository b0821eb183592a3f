//! The approval workflow as a pure, deterministic state machine.
//!
//! A [`Template`] is validated when saved. When the drafter submits, the
//! server plans a [`Route`] with [`plan_route`], which evaluates step
//! conditions on the document's fields and resolves assignees through an
//! [`AssigneeResolver`], and then calls [`submit`]. Every later action is
//! one function over the [`Instance`] (`approve`, `reject`, `return_to`,
//! `withdraw`, `delegate`, `add_signer`, `urge`, `comment`, `mark_read`,
//! or [`apply`] with an [`Action`]). Each takes the actor, the version the
//! actor saw and the time, and returns the new state plus the [`Effect`]s
//! the server carries out, or an [`ActionError`].
//!
//! Rules the state keeps (checked by the property tests):
//! - the open tasks are exactly those the step rules call for, and no
//!   member has two open tasks at one step;
//! - tasks are open only while the document is in progress or circulating;
//! - a return goes only to a step approved earlier in the same pass;
//! - [`replay`] of the history from [`Instance::initial`] rebuilds the
//!   state exactly.
//!
//! No I/O, clock or randomness: the server passes in the time and stores
//! the state, and the same inputs give the same state and effects.

mod action;
mod actions;
mod condition;
mod effects;
mod error;
mod ids;
mod query;
mod route;
mod state;
mod step;
mod template;

#[cfg(test)]
mod tests;

pub use action::{
    Action, ActionKind, Context, Decision, ReturnTarget, Transition, add_signer, apply, approve,
    comment, delegate, mark_read, reject, replay, return_to, submit, urge, withdraw,
};
pub use condition::{CONDITION_FIELDS, Condition, ConditionError, DocumentFields};
pub use effects::{CcWhen, DrafterNotice, Effect};
pub use error::{ActionError, ReplayError};
pub use ids::{MemberId, StepId, TaskId, TemplateRef};
pub use query::{OpenTask, Turn, Work, open_tasks, whose_turn};
pub use route::{AssigneeResolver, Route, RouteError, RouteProblem, RouteStep, plan_route};
pub use state::{
    HistoryEntry, Instance, Placement, Progress, Reader, Seat, SeatOrigin, SeatState, Slot, Stage,
    Status, StepPhase, StepState, Undo,
};
pub use template::{AssigneeSpec, OrgRelative, StepDef, StepKind, Template, TemplateError};
