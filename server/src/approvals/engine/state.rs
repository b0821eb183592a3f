//! The persisted state of one document's workflow instance.
//!
//! Everything here is plain data with serde derives, so the server stores
//! an [`Instance`] as JSON and rebuilds it with [`replay`](super::replay).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::action::{Action, ActionKind};
use super::ids::{MemberId, StepId, TaskId, TemplateRef};
use super::route::Route;

/// One document's workflow: its current progress and full history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub drafter: MemberId,
    /// The template version this document keeps while in flight.
    pub template: TemplateRef,
    /// Number of actions applied; every action names the version it saw.
    pub version: u64,
    pub progress: Progress,
    /// The last workflow action, while its actor may still withdraw it.
    pub undo: Option<Undo>,
    /// Next task id to hand out.
    pub next_task: u64,
    pub history: Vec<HistoryEntry>,
}

/// The part of the state that a withdrawal restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub status: Status,
    /// The route of the current submission; `None` before the first one.
    pub route: Option<Route>,
    /// One entry per route step, in route order.
    pub steps: Vec<StepState>,
    /// Circulation readers, filled at sign-off.
    pub readers: Vec<Reader>,
}

/// Workflow status of the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    /// Not submitted yet.
    Draft,
    /// Waiting for the assignees of `step`.
    InProgress { step: StepId },
    /// Returned to the drafter from `from`, to edit and submit again.
    ReturnedToDrafter { from: StepId },
    /// The drafter withdrew the submission before anyone acted on it.
    Withdrawn,
    /// Signed off; readers are reading it (传阅).
    Circulating,
    /// Signed off, and every reader has read it.
    Approved,
    /// Rejected at `step`; final.
    Rejected { step: StepId },
}

impl Status {
    /// Returns whether no further workflow action can change the document.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Approved | Self::Rejected { .. })
    }

    /// Returns whether the document is with the drafter, who may submit it.
    pub fn waits_for_drafter(&self) -> bool {
        matches!(
            self,
            Self::Draft | Self::ReturnedToDrafter { .. } | Self::Withdrawn
        )
    }

    /// Returns whether the document was signed off and has a document number.
    pub fn is_signed_off(&self) -> bool {
        matches!(self, Self::Circulating | Self::Approved)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Draft => f.write_str("a draft"),
            Self::InProgress { step } => write!(f, "in progress at step {step}"),
            Self::ReturnedToDrafter { .. } => f.write_str("returned to the drafter"),
            Self::Withdrawn => f.write_str("withdrawn"),
            Self::Circulating => f.write_str("circulating"),
            Self::Approved => f.write_str("approved"),
            Self::Rejected { .. } => f.write_str("rejected"),
        }
    }
}

/// One step of the route in its current pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepState {
    pub id: StepId,
    /// How many times the step was started; a return starts it again.
    pub pass: u32,
    pub phase: StepPhase,
    /// Empty until the step starts. A sequential step has one stage per
    /// assignee; other kinds have one stage holding every assignee.
    pub stages: Vec<Stage>,
}

/// Lifecycle of a step within one submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepPhase {
    NotReached,
    Active,
    Approved,
    Rejected,
}

/// Assignees who decide together; the step's kind sets the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub slots: Vec<Slot>,
}

/// One vote in a stage: an assignee or a signer added in parallel, plus
/// the signers added before or after them, who act in chain order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub seats: Vec<Seat>,
}

/// One member's place in a slot, and so at most one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    pub task: TaskId,
    pub member: MemberId,
    pub origin: SeatOrigin,
    /// Members who held the seat before and delegated it, oldest first.
    #[serde(default)]
    pub delegated_from: Vec<MemberId>,
    pub state: SeatState,
}

/// Origin of a member's seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum SeatOrigin {
    /// Resolved from the route.
    Assigned,
    /// Added as a signer (加签) by `by`.
    Added { by: MemberId, placement: Placement },
}

/// Position of an added signer relative to the member who adds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Acts first; the adder's task waits until they approve.
    Before,
    /// Acts after the adder approves.
    After,
    /// Acts at the same time, as one more vote in the stage.
    Parallel,
}

/// A seat's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum SeatState {
    /// Not this member's turn yet.
    Waiting,
    /// The member's task is open.
    Open,
    Approved {
        at: DateTime<Utc>,
    },
    Rejected {
        at: DateTime<Utc>,
    },
    /// No longer needed: the stage was decided without this member.
    Closed,
}

impl SeatState {
    /// Returns whether the seat still needs its member's decision.
    pub fn is_undecided(self) -> bool {
        matches!(self, Self::Waiting | Self::Open)
    }
}

/// A circulation reader and when they marked the document read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reader {
    pub task: TaskId,
    pub member: MemberId,
    pub read_at: Option<DateTime<Utc>>,
}

/// Snapshot that a withdrawal of the last workflow action restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undo {
    pub actor: MemberId,
    pub kind: ActionKind,
    /// The version the action produced.
    pub version: u64,
    pub before: Box<Progress>,
}

/// One applied action, as stored and replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The version this action produced.
    pub version: u64,
    pub actor: MemberId,
    pub at: DateTime<Utc>,
    pub action: Action,
}

impl Instance {
    /// Creates a draft for `drafter`, to be submitted on `template`.
    pub fn new(drafter: MemberId, template: TemplateRef) -> Self {
        Self {
            drafter,
            template,
            version: 0,
            progress: Progress {
                status: Status::Draft,
                route: None,
                steps: Vec::new(),
                readers: Vec::new(),
            },
            undo: None,
            next_task: 1,
            history: Vec::new(),
        }
    }

    pub fn status(&self) -> &Status {
        &self.progress.status
    }

    /// Returns the state as it was before any action, for replaying the
    /// history.
    pub fn initial(&self) -> Self {
        Self::new(self.drafter, self.template)
    }

    pub(super) fn allocate_task(&mut self) -> TaskId {
        let task = TaskId(self.next_task);
        self.next_task += 1;
        task
    }
}
