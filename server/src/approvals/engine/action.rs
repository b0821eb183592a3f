//! Actions, the common checks every action passes, and replay.
//!
//! [`apply`] checks the version, runs the action's own function in
//! `actions/`, records the history entry and computes the task effects.
//! Each action also has a named entry point (`approve`, `reject`, ...)
//! that builds the [`Action`] and calls [`apply`].

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::actions;
use super::effects::{Effect, with_task_changes};
use super::error::{ActionError, ReplayError};
use super::ids::{MemberId, StepId, TaskId};
use super::query::open_tasks;
use super::route::Route;
use super::state::{HistoryEntry, Instance, Placement, Undo};

/// An action and its data, as stored in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Sends the document along `route`, planned by the server.
    Submit {
        route: Route,
    },
    Approve(Decision),
    Reject(Decision),
    Return {
        target: ReturnTarget,
        opinion: String,
    },
    /// Takes back the actor's last workflow action.
    Withdraw,
    /// Hands the actor's open task to another member (转交).
    Delegate {
        to: MemberId,
    },
    /// Adds a signer to the actor's step (加签).
    AddSigner {
        member: MemberId,
        placement: Placement,
    },
    /// Reminds members with open tasks (催办): all of them, or `member`.
    Urge {
        member: Option<MemberId>,
    },
    Comment {
        text: String,
    },
    /// Marks the circulated document read by the actor.
    MarkRead,
}

/// An approver's decision with their opinion (意见).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub opinion: String,
    /// The body version the decision applies to, when the server tracks it.
    #[serde(default)]
    pub body_version: Option<u64>,
}

/// Target of a return, which never lies ahead of the current step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "to")]
pub enum ReturnTarget {
    Previous,
    Step { step: StepId },
    Drafter,
}

/// The name of an action, for messages and the withdrawal record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Submit,
    Approve,
    Reject,
    Return,
    Withdraw,
    Delegate,
    AddSigner,
    Urge,
    Comment,
    MarkRead,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Return => "return",
            Self::Withdraw => "withdraw",
            Self::Delegate => "delegate",
            Self::AddSigner => "add signer",
            Self::Urge => "urge",
            Self::Comment => "comment",
            Self::MarkRead => "mark read",
        }
    }

    /// Returns whether the action leaves the route and its tasks as they
    /// are. Such an action makes no other action stale and is not withdrawn.
    pub fn is_annotation(self) -> bool {
        matches!(self, Self::Urge | Self::Comment | Self::MarkRead)
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Self::Submit { .. } => ActionKind::Submit,
            Self::Approve(_) => ActionKind::Approve,
            Self::Reject(_) => ActionKind::Reject,
            Self::Return { .. } => ActionKind::Return,
            Self::Withdraw => ActionKind::Withdraw,
            Self::Delegate { .. } => ActionKind::Delegate,
            Self::AddSigner { .. } => ActionKind::AddSigner,
            Self::Urge { .. } => ActionKind::Urge,
            Self::Comment { .. } => ActionKind::Comment,
            Self::MarkRead => ActionKind::MarkRead,
        }
    }
}

/// The actor, the version the actor saw, and the time of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub actor: MemberId,
    /// The version the actor's view was based on.
    pub based_on_version: u64,
    pub at: DateTime<Utc>,
}

/// The state after an action, and what the server must do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub instance: Instance,
    pub effects: Vec<Effect>,
}

/// Whether the actor may withdraw the action just applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reversible {
    Yes,
    No,
}

/// Applies `action` by `context.actor` to `state`.
pub fn apply(
    state: &Instance,
    context: Context,
    action: Action,
) -> Result<Transition, ActionError> {
    check_version(state, &context, action.kind())?;

    let kind = action.kind();
    let mut next = state.clone();
    let mut effects = Vec::new();
    let reversible = actions::run(&mut next, &context, &action, &mut effects)?;

    next.version += 1;
    if !kind.is_annotation() {
        next.undo = match reversible {
            Reversible::Yes => Some(Undo {
                actor: context.actor,
                kind,
                version: next.version,
                before: Box::new(state.progress.clone()),
            }),
            Reversible::No => None,
        };
    }
    next.history.push(HistoryEntry {
        version: next.version,
        actor: context.actor,
        at: context.at,
        action,
    });

    let effects = with_task_changes(state, &next, effects);
    Ok(Transition {
        instance: next,
        effects,
    })
}

/// Rejects an action based on a version that a later workflow action
/// changed. Annotations (comments, urges, reads) since then do not count, nor
/// do other members' approvals that left the actor's own decision as it was
/// (see [`independent_decision`]).
fn check_version(state: &Instance, context: &Context, kind: ActionKind) -> Result<(), ActionError> {
    let based_on = context.based_on_version;
    if based_on > state.version {
        return Err(ActionError::UnknownVersion {
            based_on,
            current: state.version,
        });
    }
    let changed = state
        .history
        .iter()
        .filter(|entry| entry.version > based_on)
        .find(|entry| !entry.action.kind().is_annotation());
    match changed {
        Some(entry) if !independent_decision(state, context, kind) => Err(ActionError::Stale {
            based_on,
            changed_at: entry.version,
            by: entry.actor,
            kind: entry.action.kind(),
        }),
        _ => Ok(()),
    }
}

/// Returns whether a decision applies although the actor's view is older
/// than the state. Members of a countersign step decide independently, so a
/// decision is valid when every workflow action since the actor's view was
/// another member's approval and the actor has the same open tasks as then.
fn independent_decision(state: &Instance, context: &Context, kind: ActionKind) -> bool {
    if !matches!(kind, ActionKind::Approve | ActionKind::Reject) {
        return false;
    }
    let only_others_approved = state
        .history
        .iter()
        .filter(|entry| entry.version > context.based_on_version)
        .filter(|entry| !entry.action.kind().is_annotation())
        .all(|entry| entry.actor != context.actor && entry.action.kind() == ActionKind::Approve);
    if !only_others_approved {
        return false;
    }
    let seen: Vec<HistoryEntry> = state
        .history
        .iter()
        .take_while(|entry| entry.version <= context.based_on_version)
        .cloned()
        .collect();
    let Ok(then) = replay(&Instance::new(state.drafter, state.template), &seen) else {
        return false;
    };
    let tasks_of = |instance: &Instance| -> Vec<TaskId> {
        open_tasks(instance)
            .into_iter()
            .filter(|task| task.member == context.actor)
            .map(|task| task.task)
            .collect()
    };
    let now = tasks_of(state);
    !now.is_empty() && now == tasks_of(&then)
}

/// Rebuilds a state by applying `history` to `initial` in order.
///
/// The server uses it to verify a stored state or to rebuild a lost one;
/// the result equals the state the history was recorded from.
pub fn replay(initial: &Instance, history: &[HistoryEntry]) -> Result<Instance, ReplayError> {
    let mut state = initial.clone();
    for (index, entry) in history.iter().enumerate() {
        let expected = state.version + 1;
        if entry.version != expected {
            return Err(ReplayError::VersionGap {
                index,
                expected,
                found: entry.version,
            });
        }
        let context = Context {
            actor: entry.actor,
            based_on_version: state.version,
            at: entry.at,
        };
        state = apply(&state, context, entry.action.clone())
            .map_err(|error| ReplayError::Action {
                version: entry.version,
                error,
            })?
            .instance;
    }
    Ok(state)
}

/// Submits the document along `route`.
pub fn submit(state: &Instance, context: Context, route: Route) -> Result<Transition, ActionError> {
    apply(state, context, Action::Submit { route })
}

/// Approves the actor's open task at the current step.
pub fn approve(
    state: &Instance,
    context: Context,
    decision: Decision,
) -> Result<Transition, ActionError> {
    apply(state, context, Action::Approve(decision))
}

/// Rejects through the actor's open task at the current step.
pub fn reject(
    state: &Instance,
    context: Context,
    decision: Decision,
) -> Result<Transition, ActionError> {
    apply(state, context, Action::Reject(decision))
}

/// Returns the document to an earlier step or to the drafter.
pub fn return_to(
    state: &Instance,
    context: Context,
    target: ReturnTarget,
    opinion: String,
) -> Result<Transition, ActionError> {
    apply(state, context, Action::Return { target, opinion })
}

/// Withdraws the actor's last workflow action.
pub fn withdraw(state: &Instance, context: Context) -> Result<Transition, ActionError> {
    apply(state, context, Action::Withdraw)
}

/// Hands the actor's open task to `to`.
pub fn delegate(
    state: &Instance,
    context: Context,
    to: MemberId,
) -> Result<Transition, ActionError> {
    apply(state, context, Action::Delegate { to })
}

/// Adds `member` as a signer next to the actor's open task.
pub fn add_signer(
    state: &Instance,
    context: Context,
    member: MemberId,
    placement: Placement,
) -> Result<Transition, ActionError> {
    apply(state, context, Action::AddSigner { member, placement })
}

/// Reminds members with open tasks.
pub fn urge(
    state: &Instance,
    context: Context,
    member: Option<MemberId>,
) -> Result<Transition, ActionError> {
    apply(state, context, Action::Urge { member })
}

/// Adds a comment to the history.
pub fn comment(
    state: &Instance,
    context: Context,
    text: String,
) -> Result<Transition, ActionError> {
    apply(state, context, Action::Comment { text })
}

/// Marks the circulated document read by the actor.
pub fn mark_read(state: &Instance, context: Context) -> Result<Transition, ActionError> {
    apply(state, context, Action::MarkRead)
}
