//! Read-only views of a state: open tasks for to-do lists and whose turn
//! it is for the document page.

use serde::{Deserialize, Serialize};

use super::ids::{MemberId, StepId, TaskId};
use super::state::{Instance, SeatState, Status};

/// A task waiting for its member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTask {
    pub task: TaskId,
    pub member: MemberId,
    pub work: Work,
}

/// The kind of work a task requests from its member.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Work {
    /// Decide on the document at `step`.
    Step { step: StepId },
    /// Read the circulated document.
    Reading,
}

/// The members the document is waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "turn")]
pub enum Turn {
    /// The drafter, to submit (again).
    Drafter { drafter: MemberId },
    /// The members with open tasks at `step`, in route order.
    Approvers {
        step: StepId,
        members: Vec<MemberId>,
    },
    /// Readers who have not read the document yet.
    Readers { members: Vec<MemberId> },
    /// No member, because the document is approved or rejected.
    Nobody,
}

/// Lists every open task, in route order and then reader order.
pub fn open_tasks(state: &Instance) -> Vec<OpenTask> {
    let progress = &state.progress;
    let steps = progress.steps.iter().flat_map(|step| {
        step.seats()
            .filter(|seat| seat.state == SeatState::Open)
            .map(|seat| OpenTask {
                task: seat.task,
                member: seat.member,
                work: Work::Step {
                    step: step.id.clone(),
                },
            })
    });
    let readers = progress
        .readers
        .iter()
        .filter(|reader| reader.read_at.is_none())
        .map(|reader| OpenTask {
            task: reader.task,
            member: reader.member,
            work: Work::Reading,
        });
    steps.chain(readers).collect()
}

/// Describes whose turn it is.
pub fn whose_turn(state: &Instance) -> Turn {
    let members = |tasks: Vec<OpenTask>| tasks.into_iter().map(|task| task.member).collect();
    match state.status() {
        status if status.waits_for_drafter() => Turn::Drafter {
            drafter: state.drafter,
        },
        Status::InProgress { step } => Turn::Approvers {
            step: step.clone(),
            members: members(open_tasks(state)),
        },
        Status::Circulating => Turn::Readers {
            members: members(open_tasks(state)),
        },
        _ => Turn::Nobody,
    }
}
