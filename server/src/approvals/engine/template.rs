//! Workflow templates: the ordered steps a document passes through, as the
//! template editor saves them.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::condition::Condition;
use super::ids::{MemberId, StepId};
use crate::org::OrgRole;

/// One version of an organization's workflow template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub name: String,
    /// Steps in route order; a step whose condition is false is left out.
    pub steps: Vec<StepDef>,
    /// Readers who receive the document for reading (传阅) after sign-off.
    #[serde(default)]
    pub circulation: Vec<AssigneeSpec>,
}

/// One step of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    pub id: StepId,
    pub name: String,
    pub kind: StepKind,
    pub assignees: Vec<AssigneeSpec>,
    /// The step is on the route only when this holds for the document.
    #[serde(default)]
    pub condition: Option<Condition>,
    /// Working days each task of the step has before it is overdue.
    #[serde(default)]
    pub deadline_working_days: Option<u32>,
    /// Members copied (抄送) when the step starts.
    #[serde(default)]
    pub cc_on_start: Vec<AssigneeSpec>,
    /// Members copied when the step is approved.
    #[serde(default)]
    pub cc_on_finish: Vec<AssigneeSpec>,
}

/// Decision rule of a step's assignees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum StepKind {
    /// Exactly one approver.
    Single,
    /// Assignees one after another, in order (依次).
    Sequential,
    /// Every assignee approves, in any order (会签).
    AllOf,
    /// The first assignee to decide decides for the step (或签).
    AnyOf,
    /// At least `at_least / of` of the assignees approve, rounded up.
    Ratio { at_least: u32, of: u32 },
}

/// A step's assignees, before resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AssigneeSpec {
    /// These members, in this order.
    Members(Vec<MemberId>),
    /// The members with officer role `role` in the organization `org`,
    /// relative to the document's issuing organization.
    Role { role: OrgRole, org: OrgRelative },
}

/// An organization relative to the document's issuing organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgRelative {
    Issuing,
    Parent,
    /// `levels` steps up the tree; `1` is the parent.
    Ancestor {
        levels: u8,
    },
}

/// A template that cannot be saved, naming the step and field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template name is empty")]
    EmptyName,
    #[error("template has no steps")]
    NoSteps,
    #[error("step {index} has an empty id")]
    EmptyStepId { index: usize },
    #[error("step id {0} appears more than once")]
    DuplicateStepId(StepId),
    #[error("step {step}: `{field}` is invalid: {reason}")]
    InvalidStep {
        step: StepId,
        field: &'static str,
        reason: String,
    },
    #[error("`circulation` is invalid: {0}")]
    InvalidCirculation(String),
}

impl Template {
    /// Checks the template before it is saved.
    pub fn validate(&self) -> Result<(), TemplateError> {
        if self.name.trim().is_empty() {
            return Err(TemplateError::EmptyName);
        }
        if self.steps.is_empty() {
            return Err(TemplateError::NoSteps);
        }

        let mut seen = HashSet::new();
        for (index, step) in self.steps.iter().enumerate() {
            if step.id.0.trim().is_empty() {
                return Err(TemplateError::EmptyStepId { index });
            }
            if !seen.insert(&step.id) {
                return Err(TemplateError::DuplicateStepId(step.id.clone()));
            }
            step.validate()?;
        }

        for spec in &self.circulation {
            check_spec(spec).map_err(TemplateError::InvalidCirculation)?;
        }
        Ok(())
    }
}

impl StepDef {
    fn validate(&self) -> Result<(), TemplateError> {
        let invalid = |field, reason: String| TemplateError::InvalidStep {
            step: self.id.clone(),
            field,
            reason,
        };

        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty".into()));
        }
        self.kind
            .validate()
            .map_err(|reason| invalid("kind", reason))?;
        if self.assignees.is_empty() {
            return Err(invalid(
                "assignees",
                "must name at least one assignee".into(),
            ));
        }
        if self.kind == StepKind::Single && !is_single_member(&self.assignees) {
            let reason = "a single-approver step takes one member or one role".into();
            return Err(invalid("assignees", reason));
        }
        for spec in &self.assignees {
            check_spec(spec).map_err(|reason| invalid("assignees", reason))?;
        }
        for spec in self.cc_on_start.iter().chain(&self.cc_on_finish) {
            check_spec(spec).map_err(|reason| invalid("cc", reason))?;
        }

        if let Some(condition) = &self.condition {
            condition
                .validate()
                .map_err(|error| invalid("condition", error.to_string()))?;
        }
        if self.deadline_working_days == Some(0) {
            return Err(invalid(
                "deadline_working_days",
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

impl StepKind {
    fn validate(self) -> Result<(), String> {
        match self {
            Self::Ratio { of: 0, .. } => Err("ratio denominator `of` must be at least 1".into()),
            Self::Ratio { at_least, of } if at_least == 0 || at_least > of => Err(format!(
                "ratio {at_least}/{of} must be greater than 0 and at most 1"
            )),
            _ => Ok(()),
        }
    }

    /// Number of approvals out of `assignees` that approve a ratio step,
    /// rounded up; `None` for other kinds.
    pub fn required_approvals(self, assignees: usize) -> Option<usize> {
        match self {
            Self::Ratio { at_least, of } => {
                let (at_least, of) = (at_least as usize, of as usize);
                Some((assignees * at_least).div_ceil(of).max(1))
            }
            _ => None,
        }
    }
}

fn is_single_member(specs: &[AssigneeSpec]) -> bool {
    match specs {
        [AssigneeSpec::Members(ids)] => ids.len() == 1,
        [AssigneeSpec::Role { .. }] => true,
        _ => false,
    }
}

fn check_spec(spec: &AssigneeSpec) -> Result<(), String> {
    match spec {
        AssigneeSpec::Members(ids) if ids.is_empty() => Err("member list is empty".into()),
        AssigneeSpec::Role {
            org: OrgRelative::Ancestor { levels: 0 },
            ..
        } => Err("ancestor `levels` must be at least 1".into()),
        _ => Ok(()),
    }
}
