//! Template validation, conditions and route planning.

use crate::org::OrgRole;

use super::*;

const TEMPLATE_JSON: &str = r#"{
  "name": "请示",
  "steps": [
    {"id": "office", "name": "办公室核稿", "kind": {"type": "single"},
     "assignees": [{"members": [2]}], "deadline_working_days": 2},
    {"id": "secrecy", "name": "保密审查", "kind": {"type": "any_of"},
     "assignees": [{"members": [3, 4]}],
     "condition": {"in": {"field": "security_level", "values": ["secret", "confidential"]}}},
    {"id": "sign", "name": "签发", "kind": {"type": "single"},
     "assignees": [{"role": {"role": "secretary", "org": "parent"}}],
     "cc_on_finish": [{"members": [9]}]}
  ],
  "circulation": [{"role": {"role": "committee_member", "org": "issuing"}}]
}"#;

fn template() -> Template {
    serde_json::from_str(TEMPLATE_JSON).expect("template JSON parses")
}

fn fields(pairs: &[(&str, &str)]) -> DocumentFields {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn resolver(role: OrgRole, org: OrgRelative) -> Vec<MemberId> {
    match (role, org) {
        (OrgRole::Secretary, OrgRelative::Parent) => vec![member(6)],
        (OrgRole::CommitteeMember, OrgRelative::Issuing) => vec![member(8), member(9)],
        _ => Vec::new(),
    }
}

fn invalid_field(error: TemplateError) -> (String, &'static str) {
    match error {
        TemplateError::InvalidStep { step, field, .. } => (step.0, field),
        other => panic!("expected an invalid step, got {other}"),
    }
}

#[test]
fn template_json_validates() {
    assert_eq!(template().validate(), Ok(()));
}

#[test]
fn duplicate_step_id_is_named() {
    let mut template = template();
    template.steps[1].id = StepId::new("office");
    assert_eq!(
        template.validate(),
        Err(TemplateError::DuplicateStepId(StepId::new("office")))
    );
}

type StepChange = fn(&mut StepDef);

#[test]
fn invalid_step_fields_are_named() {
    let cases: Vec<(StepChange, &str)> = vec![
        (|s| s.kind = StepKind::Ratio { at_least: 3, of: 2 }, "kind"),
        (|s| s.kind = StepKind::Ratio { at_least: 1, of: 0 }, "kind"),
        (|s| s.assignees.clear(), "assignees"),
        (
            |s| s.assignees = vec![AssigneeSpec::Members(vec![])],
            "assignees",
        ),
        (
            |s| s.assignees = vec![AssigneeSpec::Members(vec![member(2), member(3)])],
            "assignees",
        ),
        (
            |s| s.deadline_working_days = Some(0),
            "deadline_working_days",
        ),
        (|s| s.name = " ".into(), "name"),
        (
            |s| {
                s.condition = Some(Condition::Eq {
                    field: "colour".into(),
                    value: "red".into(),
                })
            },
            "condition",
        ),
    ];
    for (change, field) in cases {
        let mut template = template();
        change(&mut template.steps[0]);
        let error = template.validate().expect_err(field);
        assert_eq!(invalid_field(error), ("office".to_owned(), field));
    }
}

#[test]
fn unknown_json_field_is_rejected() {
    let json = TEMPLATE_JSON.replace("\"deadline_working_days\"", "\"deadline_days\"");
    let error = serde_json::from_str::<Template>(&json).unwrap_err();
    assert!(error.to_string().contains("deadline_days"), "{error}");
}

#[test]
fn condition_language_evaluates() {
    let doc = fields(&[("security_level", "secret"), ("urgency", "urgent")]);
    let eq = |field: &str, value: &str| Condition::Eq {
        field: field.into(),
        value: value.into(),
    };

    assert_eq!(eq("security_level", "secret").evaluate(&doc), Ok(true));
    let ne = Condition::Ne {
        field: "urgency".into(),
        value: "urgent".into(),
    };
    assert_eq!(ne.evaluate(&doc), Ok(false));
    let both = Condition::All(vec![
        eq("security_level", "secret"),
        eq("urgency", "normal"),
    ]);
    assert_eq!(both.evaluate(&doc), Ok(false));
    let either = Condition::Any(vec![
        eq("security_level", "public"),
        eq("urgency", "urgent"),
    ]);
    assert_eq!(either.evaluate(&doc), Ok(true));
    assert_eq!(Condition::Not(Box::new(either)).evaluate(&doc), Ok(false));
    assert_eq!(
        eq("doc_type", "请示").evaluate(&doc),
        Err(ConditionError::MissingField("doc_type".into()))
    );
}

#[test]
fn plan_skips_step_whose_condition_fails() {
    let doc = fields(&[("security_level", "public")]);
    let route = plan_route(&template(), &doc, &resolver).expect("route");

    let ids: Vec<_> = route.steps.iter().map(|s| s.id.0.as_str()).collect();
    assert_eq!(ids, ["office", "sign"]);
    assert_eq!(route.steps[1].assignees, vec![member(6)]);
    assert_eq!(route.steps[1].cc_on_finish, vec![member(9)]);
    assert_eq!(route.circulation, vec![member(8), member(9)]);
}

#[test]
fn plan_keeps_step_whose_condition_holds() {
    let doc = fields(&[("security_level", "secret")]);
    let route = plan_route(&template(), &doc, &resolver).expect("route");
    assert_eq!(route.steps[1].id, StepId::new("secrecy"));
    assert_eq!(route.steps[0].deadline_working_days, Some(2));
}

#[test]
fn plan_reports_every_unresolved_step() {
    let nobody = |_: OrgRole, _: OrgRelative| Vec::new();
    let error = plan_route(&template(), &fields(&[]), &nobody).unwrap_err();

    assert_eq!(error.0.len(), 3, "{error}");
    assert!(matches!(&error.0[0], RouteProblem::Condition { step, .. } if step.0 == "secrecy"));
    assert!(matches!(&error.0[1], RouteProblem::NoAssignee { step, .. } if step.0 == "sign"));
    assert_eq!(error.0[2], RouteProblem::NoReaders);
    assert!(
        error
            .to_string()
            .contains("step `sign` (签发) has no assignee"),
        "{error}"
    );
}

#[test]
fn plan_rejects_ambiguous_single_role() {
    let two = |_: OrgRole, _: OrgRelative| vec![member(6), member(7)];
    let doc = fields(&[("security_level", "public")]);
    let error = plan_route(&template(), &doc, &two).unwrap_err();
    assert!(
        matches!(&error.0[0], RouteProblem::NotSingle { count: 2, .. }),
        "{error}"
    );
}

#[test]
fn plan_removes_duplicate_members() {
    let mut template = template();
    template.steps[1].assignees = vec![
        AssigneeSpec::Members(vec![member(3), member(4)]),
        AssigneeSpec::Members(vec![member(4), member(5)]),
    ];
    let doc = fields(&[("security_level", "secret")]);
    let route = plan_route(&template, &doc, &resolver).expect("route");
    assert_eq!(
        route.steps[1].assignees,
        vec![member(3), member(4), member(5)]
    );
}

#[test]
fn route_with_repeated_member_is_invalid() {
    let route = route(vec![step("countersign", StepKind::AllOf, &[2, 2])]);
    let error = route.validate().unwrap_err();
    assert_eq!(
        error.0,
        vec![RouteProblem::DuplicateAssignee {
            step: StepId::new("countersign"),
            member: member(2)
        }]
    );
}
