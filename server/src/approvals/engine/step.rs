//! Decision rules inside one step: which seats are open, and when a stage
//! and the step are approved or rejected.
//!
//! [`StepState::settle`] recomputes every seat's open or waiting state from
//! the decisions so far. Actions change decisions and seats, then settle the
//! step, so open tasks never drift from the rules.

use super::ids::{MemberId, StepId, TaskId};
use super::route::RouteStep;
use super::state::{Seat, SeatOrigin, SeatState, Slot, Stage, StepPhase, StepState};
use super::template::StepKind;

/// The outcome of a slot, a stage or a step so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Pending,
    Approved,
    Rejected,
}

impl StepState {
    /// Creates a step not reached yet in this submission.
    pub(super) fn not_reached(id: StepId) -> Self {
        Self {
            id,
            pass: 0,
            phase: StepPhase::NotReached,
            stages: Vec::new(),
        }
    }

    /// Starts a new pass of the step with fresh seats for its assignees.
    /// Signers added and delegations made in an earlier pass do not carry
    /// over.
    pub(super) fn start(&mut self, step: &RouteStep, mut allocate: impl FnMut() -> TaskId) {
        let mut seat = |member| Slot {
            seats: vec![Seat {
                task: allocate(),
                member,
                origin: SeatOrigin::Assigned,
                delegated_from: Vec::new(),
                state: SeatState::Waiting,
            }],
        };
        self.stages = match step.kind {
            StepKind::Sequential => step
                .assignees
                .iter()
                .map(|member| Stage {
                    slots: vec![seat(*member)],
                })
                .collect(),
            _ => vec![Stage {
                slots: step.assignees.iter().map(|member| seat(*member)).collect(),
            }],
        };
        self.pass += 1;
        self.phase = StepPhase::Active;
    }

    /// Forgets the current pass, keeping the pass count.
    pub(super) fn reset(&mut self) {
        self.phase = StepPhase::NotReached;
        self.stages.clear();
    }

    /// Opens the seats whose turn it is, closes seats no longer needed, and
    /// returns the step's verdict.
    pub(super) fn settle(&mut self, kind: StepKind) -> Verdict {
        // Stages run in order: approved ones are done, the first pending
        // one is open, later ones wait, and a rejection closes the rest.
        let mut verdict = Verdict::Approved;
        for stage in &mut self.stages {
            match verdict {
                Verdict::Approved => verdict = stage.verdict(kind),
                Verdict::Pending => continue,
                Verdict::Rejected => {
                    stage.close_undecided();
                    continue;
                }
            }
            match verdict {
                Verdict::Pending => stage.open_heads(),
                Verdict::Approved | Verdict::Rejected => stage.close_undecided(),
            }
        }
        verdict
    }

    /// Finds the seat holding `member`'s open task.
    pub(super) fn open_seat_mut(&mut self, member: MemberId) -> Option<&mut Seat> {
        self.seats_mut()
            .find(|seat| seat.member == member && seat.state == SeatState::Open)
    }

    /// Returns whether `member` has a seat that is still waiting or open.
    pub(super) fn has_undecided(&self, member: MemberId) -> bool {
        self.seats()
            .any(|seat| seat.member == member && seat.state.is_undecided())
    }

    pub fn seats(&self) -> impl Iterator<Item = &Seat> {
        self.stages
            .iter()
            .flat_map(|stage| &stage.slots)
            .flat_map(|slot| &slot.seats)
    }

    fn seats_mut(&mut self) -> impl Iterator<Item = &mut Seat> {
        self.stages
            .iter_mut()
            .flat_map(|stage| &mut stage.slots)
            .flat_map(|slot| &mut slot.seats)
    }

    /// Locates `member`'s open seat as (stage, slot, seat) indexes.
    pub(super) fn locate_open(&self, member: MemberId) -> Option<(usize, usize, usize)> {
        for (stage_index, stage) in self.stages.iter().enumerate() {
            for (slot_index, slot) in stage.slots.iter().enumerate() {
                let found = slot
                    .seats
                    .iter()
                    .position(|seat| seat.member == member && seat.state == SeatState::Open);
                if let Some(seat_index) = found {
                    return Some((stage_index, slot_index, seat_index));
                }
            }
        }
        None
    }
}

impl Stage {
    fn verdict(&self, kind: StepKind) -> Verdict {
        let total = self.slots.len();
        let approved = self.count(Verdict::Approved);
        let rejected = self.count(Verdict::Rejected);

        match kind.required_approvals(total) {
            // Ratio: decided once the threshold is met or out of reach.
            Some(required) if approved >= required => Verdict::Approved,
            Some(required) if rejected > total - required => Verdict::Rejected,
            Some(_) => Verdict::Pending,
            // Any-of: the first decision decides.
            None if kind == StepKind::AnyOf && approved > 0 => Verdict::Approved,
            None if kind == StepKind::AnyOf && rejected > 0 => Verdict::Rejected,
            // Single, sequential and all-of: every slot approves.
            None if rejected > 0 => Verdict::Rejected,
            None if approved == total => Verdict::Approved,
            None => Verdict::Pending,
        }
    }

    fn count(&self, verdict: Verdict) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.verdict() == verdict)
            .count()
    }

    /// Opens the first undecided seat of every pending slot; the rest wait.
    fn open_heads(&mut self) {
        for slot in &mut self.slots {
            if slot.verdict() != Verdict::Pending {
                slot.close_undecided();
                continue;
            }
            let mut head = true;
            for seat in slot
                .seats
                .iter_mut()
                .filter(|seat| seat.state.is_undecided())
            {
                seat.state = if head {
                    SeatState::Open
                } else {
                    SeatState::Waiting
                };
                head = false;
            }
        }
    }

    fn close_undecided(&mut self) {
        for slot in &mut self.slots {
            slot.close_undecided();
        }
    }
}

impl Slot {
    /// Returns the slot's verdict: approved when every seat approves,
    /// rejected when any seat rejects.
    fn verdict(&self) -> Verdict {
        let states = || self.seats.iter().map(|seat| seat.state);
        if states().any(|state| matches!(state, SeatState::Rejected { .. })) {
            Verdict::Rejected
        } else if states().all(|state| matches!(state, SeatState::Approved { .. })) {
            Verdict::Approved
        } else {
            Verdict::Pending
        }
    }

    fn close_undecided(&mut self) {
        for seat in &mut self.seats {
            if seat.state.is_undecided() {
                seat.state = SeatState::Closed;
            }
        }
    }
}
