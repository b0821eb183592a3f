//! Each step kind decides as documented.

use super::*;

#[test]
fn single_step_approval_signs_off() {
    let mut flow = Flow::submitted(route(vec![step("office", StepKind::Single, &[2])]));
    assert_eq!(flow.open(), tasks(&[(2, "office")]));

    flow.approve(2);

    assert_eq!(flow.status(), &Status::Approved);
    assert!(flow.open().is_empty());
    assert!(flow.has_effect(&Effect::SignedOff));
}

#[test]
fn sequential_opens_one_assignee_at_a_time() {
    let mut flow = Flow::submitted(route(vec![step(
        "leaders",
        StepKind::Sequential,
        &[2, 3, 4],
    )]));
    assert_eq!(flow.open(), tasks(&[(2, "leaders")]));

    let early = flow.err(3, approve_action());
    assert!(matches!(early, ActionError::NoOpenTask { .. }), "{early}");

    flow.approve(2);
    assert_eq!(flow.open(), tasks(&[(3, "leaders")]));
    flow.approve(3);
    assert_eq!(flow.open(), tasks(&[(4, "leaders")]));
    flow.approve(4);
    assert_eq!(flow.status(), &Status::Approved);
}

#[test]
fn all_of_members_approve_in_any_order() {
    let mut flow = Flow::submitted(route(vec![
        step("countersign", StepKind::AllOf, &[2, 3, 4]),
        step("sign", StepKind::Single, &[5]),
    ]));
    assert_eq!(
        flow.open(),
        tasks(&[(2, "countersign"), (3, "countersign"), (4, "countersign")])
    );

    flow.approve(4);
    flow.approve(2);
    assert_eq!(flow.open(), tasks(&[(3, "countersign")]));
    assert_eq!(flow.status(), &in_progress("countersign"));

    flow.approve(3);
    assert_eq!(flow.open(), tasks(&[(5, "sign")]));
}

#[test]
fn all_of_rejection_rejects_document() {
    let mut flow = Flow::submitted(route(vec![step("countersign", StepKind::AllOf, &[2, 3])]));
    flow.approve(2);
    flow.ok(3, reject_action());

    assert_eq!(
        flow.status(),
        &Status::Rejected {
            step: StepId::new("countersign")
        }
    );
    assert!(flow.open().is_empty());
    assert!(flow.has_effect(&Effect::NotifyDrafter {
        drafter: DRAFTER,
        reason: DrafterNotice::Rejected
    }));
}

#[test]
fn any_of_first_approval_closes_other_tasks() {
    let mut flow = Flow::submitted(route(vec![
        step("either", StepKind::AnyOf, &[2, 3, 4]),
        step("sign", StepKind::Single, &[5]),
    ]));
    flow.approve(3);

    assert_eq!(flow.open(), tasks(&[(5, "sign")]));
    let closed = flow
        .effects
        .iter()
        .filter(|effect| matches!(effect, Effect::TaskClosed { .. }))
        .count();
    assert_eq!(closed, 3, "every any-of task closes: {:?}", flow.effects);

    let late = flow.err(2, approve_action());
    assert!(matches!(late, ActionError::NoOpenTask { .. }), "{late}");
}

#[test]
fn any_of_first_rejection_rejects() {
    let mut flow = Flow::submitted(route(vec![step("either", StepKind::AnyOf, &[2, 3])]));
    flow.ok(2, reject_action());
    assert!(matches!(flow.status(), Status::Rejected { .. }));
}

#[test]
fn ratio_half_approves_at_threshold() {
    let half = StepKind::Ratio { at_least: 1, of: 2 };
    let mut flow = Flow::submitted(route(vec![step("vote", half, &[2, 3, 4, 5, 6])]));

    flow.approve(2);
    flow.ok(3, reject_action());
    flow.approve(4);
    assert_eq!(flow.status(), &in_progress("vote"), "2 of 5 is below half");

    flow.approve(6);
    assert_eq!(flow.status(), &Status::Approved, "3 of 5 is at least half");
    assert!(flow.open().is_empty());
}

#[test]
fn ratio_rejects_when_out_of_reach() {
    let two_thirds = StepKind::Ratio { at_least: 2, of: 3 };
    let mut flow = Flow::submitted(route(vec![step("vote", two_thirds, &[2, 3, 4])]));

    flow.ok(2, reject_action());
    assert_eq!(
        flow.status(),
        &in_progress("vote"),
        "2 of 3 still reachable"
    );

    flow.ok(3, reject_action());
    assert!(matches!(flow.status(), Status::Rejected { .. }));
    assert!(flow.open().is_empty());
}

#[test]
fn required_approvals_round_up() {
    let half = StepKind::Ratio { at_least: 1, of: 2 };
    assert_eq!(half.required_approvals(4), Some(2));
    assert_eq!(half.required_approvals(5), Some(3));
    assert_eq!(half.required_approvals(1), Some(1));
    assert_eq!(StepKind::AllOf.required_approvals(4), None);
}

#[test]
fn circulation_tracks_each_reader() {
    let mut route = route(vec![step("sign", StepKind::Single, &[2])]);
    route.circulation = vec![member(8), member(9)];
    let mut flow = Flow::submitted(route);

    flow.approve(2);
    assert_eq!(flow.status(), &Status::Circulating);
    assert!(flow.has_effect(&Effect::SignedOff));
    assert_eq!(flow.open(), tasks(&[(8, "reading"), (9, "reading")]));

    flow.ok(9, Action::MarkRead);
    assert_eq!(flow.open(), tasks(&[(8, "reading")]));
    let again = flow.err(9, Action::MarkRead);
    assert_eq!(again, ActionError::AlreadyRead(member(9)));
    let stranger = flow.err(5, Action::MarkRead);
    assert_eq!(stranger, ActionError::NotReader(member(5)));

    flow.ok(8, Action::MarkRead);
    assert_eq!(flow.status(), &Status::Approved);
    assert!(flow.has_effect(&Effect::CirculationFinished));
}

#[test]
fn steps_run_in_route_order() {
    let mut flow = Flow::submitted(route(vec![
        step("first", StepKind::Single, &[2]),
        step("second", StepKind::AllOf, &[3, 4]),
        step("third", StepKind::Sequential, &[5, 2]),
    ]));
    flow.approve(2);
    flow.approve(3);
    flow.approve(4);
    assert_eq!(flow.open(), tasks(&[(5, "third")]));
    flow.approve(5);
    assert_eq!(flow.open(), tasks(&[(2, "third")]));
    flow.approve(2);
    assert_eq!(flow.status(), &Status::Approved);
}
