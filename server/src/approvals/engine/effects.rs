//! Effects: what the server must do after an action is stored.
//!
//! The engine never performs I/O. Each action returns its effects in order,
//! and the server carries them out in the transaction that stores the new
//! state.

use serde::{Deserialize, Serialize};

use super::ids::{MemberId, StepId, TaskId};
use super::query::{OpenTask, Work, open_tasks};
use super::state::{Instance, Placement};

/// One thing the server does after an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    /// Add the task to `member`'s to-do list.
    TaskOpened {
        task: TaskId,
        member: MemberId,
        work: Work,
        /// Working days until the task is overdue, from the step.
        deadline_working_days: Option<u32>,
    },
    /// Remove the task from `member`'s to-do list.
    TaskClosed {
        task: TaskId,
        member: MemberId,
        work: Work,
    },
    StepStarted {
        step: StepId,
    },
    StepApproved {
        step: StepId,
    },
    /// Send a copy (抄送) of the document to `members`.
    CarbonCopy {
        step: StepId,
        when: CcWhen,
        members: Vec<MemberId>,
    },
    NotifyDrafter {
        drafter: MemberId,
        reason: DrafterNotice,
    },
    /// The final step approved the document: assign its document number.
    SignedOff,
    CirculationStarted {
        readers: Vec<MemberId>,
    },
    CirculationFinished,
    /// Remind `members` of their open tasks (催办).
    Urged {
        by: MemberId,
        members: Vec<MemberId>,
    },
    Commented {
        by: MemberId,
    },
    SignerAdded {
        step: StepId,
        by: MemberId,
        member: MemberId,
        placement: Placement,
    },
    Delegated {
        step: StepId,
        from: MemberId,
        to: MemberId,
    },
}

/// When a step's copy goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CcWhen {
    Start,
    Finish,
}

/// Reason for notifying the drafter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrafterNotice {
    Returned,
    Rejected,
    SignedOff,
    Withdrawn,
}

/// Wraps `effects` in the task changes between `before` and `after`:
/// closed tasks first, then the action's own effects, then opened tasks.
pub(super) fn with_task_changes(
    before: &Instance,
    after: &Instance,
    effects: Vec<Effect>,
) -> Vec<Effect> {
    let old = open_tasks(before);
    let new = open_tasks(after);

    let closed = old
        .iter()
        .filter(|task| !new.contains(task))
        .map(|task| Effect::TaskClosed {
            task: task.task,
            member: task.member,
            work: task.work.clone(),
        });
    let opened = new
        .iter()
        .filter(|task| !old.contains(task))
        .map(|task| opened(after, task));

    closed.chain(effects).chain(opened).collect()
}

fn opened(state: &Instance, task: &OpenTask) -> Effect {
    let deadline = match &task.work {
        Work::Step { step } => state
            .progress
            .route
            .as_ref()
            .and_then(|route| route.steps.iter().find(|s| &s.id == step))
            .and_then(|step| step.deadline_working_days),
        Work::Reading => None,
    };
    Effect::TaskOpened {
        task: task.task,
        member: task.member,
        work: task.work.clone(),
        deadline_working_days: deadline,
    }
}
