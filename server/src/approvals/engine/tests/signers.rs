//! Added signers (加签) before, after and beside the actor, especially
//! inside a countersign step.

use super::*;

fn add(member_id: i64, placement: Placement) -> Action {
    Action::AddSigner {
        member: member(member_id),
        placement,
    }
}

fn countersign() -> Route {
    route(vec![
        step("countersign", StepKind::AllOf, &[2, 3]),
        step("sign", StepKind::Single, &[6]),
    ])
}

#[test]
fn before_signer_acts_first() {
    let mut flow = Flow::submitted(countersign());
    flow.ok(2, add(7, Placement::Before));

    assert_eq!(
        flow.open(),
        tasks(&[(3, "countersign"), (7, "countersign")])
    );
    let waiting = flow.err(2, approve_action());
    assert!(
        matches!(waiting, ActionError::NoOpenTask { .. }),
        "{waiting}"
    );

    flow.approve(7);
    assert_eq!(
        flow.open(),
        tasks(&[(2, "countersign"), (3, "countersign")])
    );
    flow.approve(3);
    flow.approve(2);
    assert_eq!(flow.open(), tasks(&[(6, "sign")]));
}

#[test]
fn after_signer_acts_once_adder_approves() {
    let mut flow = Flow::submitted(countersign());
    flow.ok(2, add(7, Placement::After));
    assert_eq!(
        flow.open(),
        tasks(&[(2, "countersign"), (3, "countersign")])
    );

    flow.approve(2);
    flow.approve(3);
    assert_eq!(
        flow.open(),
        tasks(&[(7, "countersign")]),
        "step waits for member 7"
    );

    flow.approve(7);
    assert_eq!(flow.open(), tasks(&[(6, "sign")]));
}

#[test]
fn parallel_signer_is_one_more_vote() {
    let mut flow = Flow::submitted(countersign());
    flow.ok(3, add(7, Placement::Parallel));
    assert_eq!(
        flow.open(),
        tasks(&[(2, "countersign"), (3, "countersign"), (7, "countersign")])
    );

    flow.approve(2);
    flow.approve(3);
    assert_eq!(flow.status(), &in_progress("countersign"));
    flow.approve(7);
    assert_eq!(flow.open(), tasks(&[(6, "sign")]));
}

#[test]
fn added_signer_rejection_rejects_countersign() {
    let mut flow = Flow::submitted(countersign());
    flow.ok(2, add(7, Placement::Before));
    flow.ok(7, reject_action());
    assert!(matches!(flow.status(), Status::Rejected { .. }));
    assert!(flow.open().is_empty());
}

#[test]
fn parallel_signer_can_complete_any_of() {
    let mut flow = Flow::submitted(route(vec![step("either", StepKind::AnyOf, &[2, 3])]));
    flow.ok(2, add(7, Placement::Parallel));
    flow.approve(7);
    assert_eq!(flow.status(), &Status::Approved);
}

#[test]
fn parallel_signer_raises_ratio_threshold() {
    let half = StepKind::Ratio { at_least: 1, of: 2 };
    let mut flow = Flow::submitted(route(vec![step("vote", half, &[2, 3])]));
    flow.ok(2, add(7, Placement::Parallel));
    flow.approve(2);
    assert_eq!(flow.status(), &in_progress("vote"), "1 of 3 is below half");
    flow.approve(3);
    assert_eq!(flow.status(), &Status::Approved);
}

#[test]
fn member_on_step_cannot_be_added() {
    let mut flow = Flow::submitted(countersign());
    let error = flow.err(2, add(3, Placement::Before));
    assert_eq!(
        error,
        ActionError::AlreadyOnStep {
            member: member(3),
            step: StepId::new("countersign")
        }
    );
    let itself = flow.err(2, add(2, Placement::After));
    assert_eq!(itself, ActionError::SelfAssignment(member(2)));
}

#[test]
fn member_who_approved_can_be_added_again() {
    let mut flow = Flow::submitted(countersign());
    flow.approve(3);
    flow.ok(2, add(3, Placement::Before));
    assert_eq!(flow.open(), tasks(&[(3, "countersign")]));
}

#[test]
fn added_signers_do_not_survive_return() {
    let mut flow = Flow::submitted(route(vec![
        step("office", StepKind::Single, &[5]),
        step("countersign", StepKind::AllOf, &[2, 3]),
    ]));
    flow.approve(5);
    flow.ok(2, add(7, Placement::Before));
    flow.ok(3, add(8, Placement::Parallel));
    flow.ok(
        8,
        Action::Return {
            target: ReturnTarget::Previous,
            opinion: "补充材料".into(),
        },
    );
    assert_eq!(flow.open(), tasks(&[(5, "office")]));

    flow.approve(5);
    assert_eq!(
        flow.open(),
        tasks(&[(2, "countersign"), (3, "countersign")])
    );
}

#[test]
fn added_signer_cannot_be_withdrawn() {
    let mut flow = Flow::submitted(countersign());
    flow.ok(2, add(7, Placement::Before));
    let error = flow.err(2, Action::Withdraw);
    assert_eq!(error, ActionError::NothingToWithdraw);
}

#[test]
fn signer_added_effect_names_placement() {
    let mut flow = Flow::submitted(countersign());
    flow.ok(2, add(7, Placement::After));
    assert!(flow.has_effect(&Effect::SignerAdded {
        step: StepId::new("countersign"),
        by: member(2),
        member: member(7),
        placement: Placement::After,
    }));
}
