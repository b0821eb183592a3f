//! State invariants, derived independently of the engine's own settling
//! code, checked after every accepted action in every test.

use std::collections::{BTreeSet, HashSet};

use super::super::*;

/// Panics with a description when `state` breaks an invariant.
pub(in super::super) fn check(state: &Instance) {
    check_open_tasks(state);
    check_one_task_per_member(state);
    check_status_matches_tasks(state);
    check_versions(state);
    check_replay(state);
    check_json_round_trip(state);
}

type Task = (TaskId, MemberId, Work);

fn check_open_tasks(state: &Instance) {
    let actual: BTreeSet<Task> = open_tasks(state)
        .into_iter()
        .map(|task| (task.task, task.member, task.work))
        .collect();
    let expected = expected_open(state);
    assert_eq!(actual, expected, "open tasks differ from the step rules");
}

/// Derives the open tasks from the decisions recorded in the state.
fn expected_open(state: &Instance) -> BTreeSet<Task> {
    let progress = &state.progress;
    match &progress.status {
        Status::InProgress { step } => {
            let route = progress
                .route
                .as_ref()
                .expect("in progress without a route");
            let index = route.position(step).expect("current step not on route");
            check_step_phases(progress, index);
            let kind = route.steps[index].kind;
            expected_step_tasks(&progress.steps[index], kind)
        }
        Status::Circulating => progress
            .readers
            .iter()
            .filter(|reader| reader.read_at.is_none())
            .map(|reader| (reader.task, reader.member, Work::Reading))
            .collect(),
        _ => BTreeSet::new(),
    }
}

fn check_step_phases(progress: &Progress, current: usize) {
    for (index, step) in progress.steps.iter().enumerate() {
        let expected = match index.cmp(&current) {
            std::cmp::Ordering::Less => StepPhase::Approved,
            std::cmp::Ordering::Equal => StepPhase::Active,
            std::cmp::Ordering::Greater => StepPhase::NotReached,
        };
        assert_eq!(step.phase, expected, "phase of step {}", step.id);
        if expected == StepPhase::NotReached {
            assert!(
                step.stages.is_empty(),
                "step {} not reached has seats",
                step.id
            );
        }
    }
}

fn is_approved(seat: &Seat) -> bool {
    matches!(seat.state, SeatState::Approved { .. })
}

fn is_rejected(seat: &Seat) -> bool {
    matches!(seat.state, SeatState::Rejected { .. })
}

/// In the first stage not yet approved, each slot without a decision has
/// its first seat that has not approved open; nothing else is open.
fn expected_step_tasks(step: &StepState, kind: StepKind) -> BTreeSet<Task> {
    let work = Work::Step {
        step: step.id.clone(),
    };
    for stage in &step.stages {
        let approved = stage
            .slots
            .iter()
            .filter(|s| s.seats.iter().all(is_approved))
            .count();
        let rejected = stage
            .slots
            .iter()
            .filter(|s| s.seats.iter().any(is_rejected))
            .count();
        let total = stage.slots.len();
        let stage_approved = match kind {
            StepKind::AnyOf => approved >= 1,
            StepKind::Ratio { at_least, of } => approved * of as usize >= total * at_least as usize,
            _ => approved == total,
        };
        if stage_approved {
            continue;
        }
        let stage_rejected = match kind {
            StepKind::Ratio { at_least, of } => {
                (total - rejected) * (of as usize) < total * (at_least as usize)
            }
            _ => rejected > 0,
        };
        assert!(
            !stage_rejected,
            "step {} in progress with a rejected stage",
            step.id
        );

        return stage
            .slots
            .iter()
            .filter(|slot| !slot.seats.iter().all(is_approved))
            .filter(|slot| !slot.seats.iter().any(is_rejected))
            .filter_map(|slot| slot.seats.iter().find(|seat| !is_approved(seat)))
            .map(|seat| (seat.task, seat.member, work.clone()))
            .collect();
    }
    panic!("step {} in progress with every stage approved", step.id);
}

fn check_one_task_per_member(state: &Instance) {
    let mut seen = HashSet::new();
    for task in open_tasks(state) {
        let key = (task.member, task.work.clone());
        assert!(
            seen.insert(key),
            "{} has two open tasks for {:?}",
            task.member,
            task.work
        );
    }
    let ids: HashSet<_> = open_tasks(state).iter().map(|task| task.task).collect();
    assert_eq!(ids.len(), open_tasks(state).len(), "open task ids repeat");
}

fn check_status_matches_tasks(state: &Instance) {
    let status = state.status();
    let idle = status.is_terminal() || status.waits_for_drafter();
    let open = open_tasks(state);
    assert_eq!(
        open.is_empty(),
        idle,
        "status {status:?} with open tasks {open:?}"
    );
}

fn check_versions(state: &Instance) {
    assert_eq!(
        state.version,
        state.history.len() as u64,
        "version counts actions"
    );
    for (index, entry) in state.history.iter().enumerate() {
        assert_eq!(
            entry.version,
            index as u64 + 1,
            "history entry {index} version"
        );
    }
}

fn check_replay(state: &Instance) {
    let replayed = replay(&state.initial(), &state.history).expect("history replays");
    assert_eq!(&replayed, state, "replayed state differs");
}

fn check_json_round_trip(state: &Instance) {
    let json = serde_json::to_string(state).expect("state serializes");
    let back: Instance = serde_json::from_str(&json).expect("state deserializes");
    assert_eq!(&back, state, "state changed through JSON");
}
