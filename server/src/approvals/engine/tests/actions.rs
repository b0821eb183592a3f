//! Submit, versions, returns, withdrawals, delegation and annotations.

use super::*;

fn three_steps() -> Route {
    route(vec![
        step("office", StepKind::Single, &[2]),
        step("countersign", StepKind::AllOf, &[3, 4, 5]),
        step("sign", StepKind::Single, &[6]),
    ])
}

fn submit_action(route: Route) -> Action {
    Action::Submit { route }
}

fn return_action(target: ReturnTarget) -> Action {
    Action::Return {
        target,
        opinion: "请修改".to_owned(),
    }
}

fn to_step(id: &str) -> ReturnTarget {
    ReturnTarget::Step {
        step: StepId::new(id),
    }
}

#[test]
fn submit_only_by_drafter() {
    let mut flow = Flow::new();
    let error = flow.err(2, submit_action(three_steps()));
    assert!(matches!(error, ActionError::NotDrafter { .. }), "{error}");
    assert_eq!(flow.status(), &Status::Draft);
}

#[test]
fn submit_rejects_invalid_route() {
    let mut flow = Flow::new();
    let error = flow.err(
        1,
        submit_action(route(vec![step("empty", StepKind::AllOf, &[])])),
    );
    assert!(error.to_string().contains("`empty`"), "{error}");
}

#[test]
fn submit_twice_is_rejected() {
    let mut flow = Flow::submitted(three_steps());
    let error = flow.err(1, submit_action(three_steps()));
    assert!(matches!(error, ActionError::NotAllowed { .. }), "{error}");
}

#[test]
fn submit_opens_first_step_with_effects() {
    let mut first = step("office", StepKind::Single, &[2]);
    first.deadline_working_days = Some(3);
    first.cc_on_start = vec![member(9)];
    let flow = Flow::submitted(route(vec![first]));

    assert_eq!(flow.status(), &in_progress("office"));
    assert!(flow.has_effect(&Effect::CarbonCopy {
        step: StepId::new("office"),
        when: CcWhen::Start,
        members: vec![member(9)],
    }));
    let opened = flow.effects.iter().find_map(|effect| match effect {
        Effect::TaskOpened {
            member,
            deadline_working_days,
            ..
        } => Some((*member, *deadline_working_days)),
        _ => None,
    });
    assert_eq!(opened, Some((member(2), Some(3))));
}

#[test]
fn finish_carbon_copy_on_step_approval() {
    let mut first = step("office", StepKind::Single, &[2]);
    first.cc_on_finish = vec![member(8)];
    let mut flow = Flow::submitted(route(vec![first]));
    flow.approve(2);
    assert!(flow.has_effect(&Effect::CarbonCopy {
        step: StepId::new("office"),
        when: CcWhen::Finish,
        members: vec![member(8)],
    }));
}

#[test]
fn same_task_cannot_act_twice() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    flow.approve(3);
    let error = flow.err(3, approve_action());
    assert_eq!(
        error,
        ActionError::NoOpenTask {
            actor: member(3),
            step: StepId::new("countersign")
        }
    );
}

#[test]
fn stale_version_names_the_change() {
    let mut flow = Flow::submitted(three_steps());
    let seen = flow.state.version;
    flow.approve(2);

    let context = Context {
        actor: member(3),
        based_on_version: seen,
        at: at(99),
    };
    let error = apply(&flow.state, context, approve_action()).unwrap_err();
    assert_eq!(
        error,
        ActionError::Stale {
            based_on: seen,
            changed_at: seen + 1,
            by: member(2),
            kind: ActionKind::Approve,
        }
    );
    assert!(
        error.to_string().contains("member 2 applied `approve`"),
        "{error}"
    );
}

fn decide_based_on(
    flow: &Flow,
    actor: i64,
    seen: u64,
    action: Action,
) -> Result<Transition, ActionError> {
    let context = Context {
        actor: member(actor),
        based_on_version: seen,
        at: at(99),
    };
    apply(&flow.state, context, action)
}

#[test]
fn countersigners_decide_on_the_same_version() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    let seen = flow.state.version;
    flow.approve(3);
    flow.approve(4);

    // Member 5 opened the document before 3 and 4 approved; the decision stands.
    let transition = decide_based_on(&flow, 5, seen, approve_action()).expect("approve");
    invariants::check(&transition.instance);
    assert_eq!(transition.instance.status(), &in_progress("sign"));

    let rejected = decide_based_on(&flow, 5, seen, reject_action()).expect("reject");
    invariants::check(&rejected.instance);
    assert!(matches!(
        rejected.instance.status(),
        Status::Rejected { .. }
    ));
}

#[test]
fn decision_after_a_return_in_between_is_stale() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    let seen = flow.state.version;
    flow.ok(3, return_action(ReturnTarget::Previous));
    flow.approve(2);

    // Member 4 holds a new task of the same step now, not the one it saw.
    let error = decide_based_on(&flow, 4, seen, approve_action()).unwrap_err();
    assert!(
        matches!(
            error,
            ActionError::Stale {
                kind: ActionKind::Return,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn other_actions_on_an_old_version_stay_stale() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    let seen = flow.state.version;
    flow.approve(3);

    let error = decide_based_on(&flow, 4, seen, return_action(ReturnTarget::Previous)).unwrap_err();
    assert!(matches!(error, ActionError::Stale { .. }), "{error}");
    let error = decide_based_on(&flow, 4, seen, Action::Delegate { to: member(8) }).unwrap_err();
    assert!(matches!(error, ActionError::Stale { .. }), "{error}");
}

#[test]
fn comment_does_not_make_view_stale() {
    let mut flow = Flow::submitted(three_steps());
    let seen = flow.state.version;
    flow.ok(
        5,
        Action::Comment {
            text: "请尽快".into(),
        },
    );

    let context = Context {
        actor: member(2),
        based_on_version: seen,
        at: at(99),
    };
    let transition = apply(&flow.state, context, approve_action()).expect("approve");
    assert_eq!(transition.instance.version, seen + 2);
}

#[test]
fn future_version_is_rejected() {
    let flow = Flow::submitted(three_steps());
    let context = Context {
        actor: member(2),
        based_on_version: 40,
        at: at(99),
    };
    let error = apply(&flow.state, context, approve_action()).unwrap_err();
    assert_eq!(
        error,
        ActionError::UnknownVersion {
            based_on: 40,
            current: 1
        }
    );
}

#[test]
fn empty_comment_is_rejected() {
    let mut flow = Flow::submitted(three_steps());
    let error = flow.err(2, Action::Comment { text: "  ".into() });
    assert_eq!(error, ActionError::EmptyText("comment"));
}

#[test]
fn return_to_previous_restarts_that_step() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    flow.approve(3);
    flow.ok(4, return_action(ReturnTarget::Previous));

    assert_eq!(flow.status(), &in_progress("office"));
    assert_eq!(flow.open(), tasks(&[(2, "office")]));
    assert_eq!(flow.state.progress.steps[0].pass, 2);

    // The countersign starts over: member 3's earlier approval is gone.
    flow.approve(2);
    assert_eq!(
        flow.open(),
        tasks(&[(3, "countersign"), (4, "countersign"), (5, "countersign")])
    );
}

#[test]
fn return_to_any_passed_step() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    for approver in [3, 4, 5] {
        flow.approve(approver);
    }
    flow.ok(6, return_action(to_step("office")));

    assert_eq!(flow.status(), &in_progress("office"));
    assert_eq!(flow.open(), tasks(&[(2, "office")]));
    assert_eq!(flow.state.progress.steps[1].phase, StepPhase::NotReached);
}

#[test]
fn return_forward_is_rejected() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);

    let current = flow.err(3, return_action(to_step("countersign")));
    assert!(
        matches!(current, ActionError::ReturnForward { .. }),
        "{current}"
    );
    let forward = flow.err(3, return_action(to_step("sign")));
    assert!(
        matches!(forward, ActionError::ReturnForward { .. }),
        "{forward}"
    );
    let unknown = flow.err(3, return_action(to_step("nowhere")));
    assert_eq!(unknown, ActionError::UnknownStep(StepId::new("nowhere")));
}

#[test]
fn return_previous_from_first_step_is_rejected() {
    let mut flow = Flow::submitted(three_steps());
    let error = flow.err(2, return_action(ReturnTarget::Previous));
    assert_eq!(error, ActionError::NoPreviousStep(StepId::new("office")));
}

#[test]
fn return_needs_open_task() {
    let mut flow = Flow::submitted(three_steps());
    let error = flow.err(6, return_action(ReturnTarget::Drafter));
    assert!(matches!(error, ActionError::NoOpenTask { .. }), "{error}");
}

#[test]
fn return_to_drafter_then_resubmit() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    flow.ok(3, return_action(ReturnTarget::Drafter));

    assert_eq!(
        flow.status(),
        &Status::ReturnedToDrafter {
            from: StepId::new("countersign")
        }
    );
    assert!(flow.open().is_empty());
    assert!(flow.has_effect(&Effect::NotifyDrafter {
        drafter: DRAFTER,
        reason: DrafterNotice::Returned
    }));

    let shorter = route(vec![step("sign", StepKind::Single, &[6])]);
    flow.ok(1, submit_action(shorter));
    assert_eq!(flow.open(), tasks(&[(6, "sign")]));
}

#[test]
fn return_inside_countersign_closes_every_task() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    flow.approve(3);
    flow.ok(5, return_action(ReturnTarget::Previous));

    let closed: Vec<_> = flow
        .effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::TaskClosed { member, .. } => Some(member.0),
            _ => None,
        })
        .collect();
    assert_eq!(closed, vec![4, 5]);
    assert_eq!(flow.open(), tasks(&[(2, "office")]));
}

#[test]
fn withdraw_submission_before_first_step_acts() {
    let mut flow = Flow::submitted(three_steps());
    flow.ok(1, Action::Withdraw);

    assert_eq!(flow.status(), &Status::Withdrawn);
    assert!(flow.open().is_empty());

    flow.ok(1, submit_action(three_steps()));
    assert_eq!(flow.open(), tasks(&[(2, "office")]));
}

#[test]
fn withdraw_approval_reopens_task() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    flow.ok(
        3,
        Action::Comment {
            text: "稍后处理".into(),
        },
    );
    flow.ok(2, Action::Withdraw);

    assert_eq!(flow.status(), &in_progress("office"));
    assert_eq!(flow.open(), tasks(&[(2, "office")]));
    let closed = flow
        .effects
        .iter()
        .filter(|effect| matches!(effect, Effect::TaskClosed { .. }))
        .count();
    assert_eq!(closed, 3, "the countersign tasks close: {:?}", flow.effects);
}

#[test]
fn withdraw_blocked_once_next_step_acts() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    flow.approve(3);

    let error = flow.err(2, Action::Withdraw);
    assert_eq!(
        error,
        ActionError::NotLastActor {
            last_actor: member(3),
            kind: ActionKind::Approve
        }
    );
}

#[test]
fn withdraw_inside_countersign_keeps_others() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    flow.approve(4);
    flow.ok(4, Action::Withdraw);

    assert_eq!(
        flow.open(),
        tasks(&[(3, "countersign"), (4, "countersign"), (5, "countersign")])
    );
    let twice = flow.err(4, Action::Withdraw);
    assert_eq!(twice, ActionError::NothingToWithdraw);
}

#[test]
fn withdraw_after_sign_off_is_rejected() {
    let mut flow = Flow::submitted(route(vec![step("sign", StepKind::Single, &[2])]));
    flow.approve(2);
    let error = flow.err(2, Action::Withdraw);
    assert_eq!(error, ActionError::NothingToWithdraw);
}

#[test]
fn withdraw_return_restores_step() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    flow.approve(3);
    flow.ok(4, return_action(ReturnTarget::Drafter));
    flow.ok(4, Action::Withdraw);

    assert_eq!(flow.status(), &in_progress("countersign"));
    assert_eq!(
        flow.open(),
        tasks(&[(4, "countersign"), (5, "countersign")])
    );
}

#[test]
fn delegate_moves_task() {
    let mut flow = Flow::submitted(three_steps());
    flow.ok(2, Action::Delegate { to: member(7) });

    assert_eq!(flow.open(), tasks(&[(7, "office")]));
    assert!(flow.has_effect(&Effect::Delegated {
        step: StepId::new("office"),
        from: member(2),
        to: member(7)
    }));
    let seat = flow.state.progress.steps[0].seats().next().unwrap();
    assert_eq!(seat.delegated_from, vec![member(2)]);

    flow.approve(7);
    assert_eq!(flow.status(), &in_progress("countersign"));
}

#[test]
fn delegate_to_member_on_step_is_rejected() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);

    let busy = flow.err(3, Action::Delegate { to: member(4) });
    assert_eq!(
        busy,
        ActionError::AlreadyOnStep {
            member: member(4),
            step: StepId::new("countersign")
        }
    );
    let itself = flow.err(3, Action::Delegate { to: member(3) });
    assert_eq!(itself, ActionError::SelfAssignment(member(3)));
}

#[test]
fn urge_lists_open_members() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    flow.approve(4);
    flow.ok(1, Action::Urge { member: None });
    assert!(flow.has_effect(&Effect::Urged {
        by: DRAFTER,
        members: vec![member(3), member(5)]
    }));

    let idle = flow.err(
        1,
        Action::Urge {
            member: Some(member(4)),
        },
    );
    assert_eq!(idle, ActionError::NothingToUrge(member(4)));
}

#[test]
fn urge_on_draft_is_rejected() {
    let mut flow = Flow::new();
    let error = flow.err(1, Action::Urge { member: None });
    assert!(matches!(error, ActionError::NotAllowed { .. }), "{error}");
}

#[test]
fn whose_turn_follows_status() {
    let mut flow = Flow::new();
    assert_eq!(whose_turn(&flow.state), Turn::Drafter { drafter: DRAFTER });

    flow.ok(1, submit_action(three_steps()));
    flow.approve(2);
    flow.approve(3);
    assert_eq!(
        whose_turn(&flow.state),
        Turn::Approvers {
            step: StepId::new("countersign"),
            members: vec![member(4), member(5)]
        }
    );

    flow.ok(4, reject_action());
    assert_eq!(whose_turn(&flow.state), Turn::Nobody);
}

#[test]
fn history_records_every_action() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    flow.ok(
        3,
        Action::Comment {
            text: "同意".into(),
        },
    );

    let kinds: Vec<_> = flow.state.history.iter().map(|e| e.action.kind()).collect();
    assert_eq!(
        kinds,
        [ActionKind::Submit, ActionKind::Approve, ActionKind::Comment]
    );
    assert_eq!(flow.state.history[1].actor, member(2));
}

#[test]
fn replay_detects_version_gap() {
    let mut flow = Flow::submitted(three_steps());
    flow.approve(2);
    let mut history = flow.state.history.clone();
    history.remove(0);

    let error = replay(&flow.state.initial(), &history).unwrap_err();
    assert_eq!(
        error,
        ReplayError::VersionGap {
            index: 0,
            expected: 1,
            found: 2
        }
    );
}
