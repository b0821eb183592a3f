//! Errors of rejected actions. Every message names the member, step or
//! version involved, so that the client can show it as is.

use super::action::ActionKind;
use super::ids::{MemberId, StepId};
use super::route::RouteError;
use super::state::Status;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error(
        "the workflow changed after version {based_on}: {by} applied `{kind}` as version \
         {changed_at}; reload the document and try again"
    )]
    Stale {
        based_on: u64,
        changed_at: u64,
        by: MemberId,
        kind: ActionKind,
    },
    #[error("version {based_on} does not exist; the current version is {current}")]
    UnknownVersion { based_on: u64, current: u64 },
    #[error("cannot {action} while the document is {status}")]
    NotAllowed { action: ActionKind, status: Status },
    #[error("only the drafter ({drafter}) can {action}")]
    NotDrafter {
        action: ActionKind,
        drafter: MemberId,
    },
    #[error("{actor} has no open task at step {step}")]
    NoOpenTask { actor: MemberId, step: StepId },
    #[error("step {0} is not on the document's route")]
    UnknownStep(StepId),
    #[error(
        "cannot return from step {current} to step {target}: \
         a document returns only to a step it already passed"
    )]
    ReturnForward { current: StepId, target: StepId },
    #[error("step {0} is the first step; return to the drafter instead")]
    NoPreviousStep(StepId),
    #[error("nothing to withdraw: the last action cannot be withdrawn")]
    NothingToWithdraw,
    #[error("only {last_actor}, who applied `{kind}` last, can withdraw it")]
    NotLastActor {
        last_actor: MemberId,
        kind: ActionKind,
    },
    #[error("{member} already has an open or waiting task at step {step}")]
    AlreadyOnStep { member: MemberId, step: StepId },
    #[error("{0} cannot hand a task to themselves")]
    SelfAssignment(MemberId),
    #[error("{0} is not a reader of this document")]
    NotReader(MemberId),
    #[error("{0} has already read this document")]
    AlreadyRead(MemberId),
    #[error("{0} has no open task to urge")]
    NothingToUrge(MemberId),
    #[error("{0} text is empty")]
    EmptyText(&'static str),
    #[error(transparent)]
    Route(#[from] RouteError),
}

/// A stored history that does not replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("history entry {index} has version {found}, expected {expected}")]
    VersionGap {
        index: usize,
        expected: u64,
        found: u64,
    },
    #[error("history entry with version {version} fails to apply: {error}")]
    Action { version: u64, error: ActionError },
}
