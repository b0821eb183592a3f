//! Routes: a template applied to one document, with conditions evaluated
//! and every assignee resolved to members.
//!
//! The server plans the route with [`plan_route`] when the drafter submits
//! and passes it to [`submit`](super::submit). The route is stored in the
//! submit action, so replaying the history never needs the organization
//! tree again.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::condition::DocumentFields;
use super::ids::{MemberId, StepId};
use super::template::{AssigneeSpec, OrgRelative, StepDef, StepKind, Template};
use crate::org::OrgRole;

/// Resolves officer roles relative to the document's issuing organization.
pub trait AssigneeResolver {
    /// Returns the members holding `role` in the organization `org`, or an
    /// empty list when the organization or the role holder does not exist.
    fn resolve_role(&self, role: OrgRole, org: OrgRelative) -> Vec<MemberId>;
}

impl<F: Fn(OrgRole, OrgRelative) -> Vec<MemberId>> AssigneeResolver for F {
    fn resolve_role(&self, role: OrgRole, org: OrgRelative) -> Vec<MemberId> {
        self(role, org)
    }
}

/// The steps one submission of a document goes through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub steps: Vec<RouteStep>,
    /// Readers after sign-off; empty means no circulation.
    #[serde(default)]
    pub circulation: Vec<MemberId>,
}

/// A template step with its assignees resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStep {
    pub id: StepId,
    pub name: String,
    pub kind: StepKind,
    /// Distinct members in order; the order matters for sequential steps.
    pub assignees: Vec<MemberId>,
    pub deadline_working_days: Option<u32>,
    #[serde(default)]
    pub cc_on_start: Vec<MemberId>,
    #[serde(default)]
    pub cc_on_finish: Vec<MemberId>,
}

/// A problem that prevents a route from being planned or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteProblem {
    #[error("step {step} ({name}) has no assignee: nobody holds the assigned role")]
    NoAssignee { step: StepId, name: String },
    #[error("step {step} ({name}) takes one approver but {count} members were resolved")]
    NotSingle {
        step: StepId,
        name: String,
        count: usize,
    },
    #[error("step {step}: condition cannot be evaluated: {reason}")]
    Condition { step: StepId, reason: String },
    #[error("step id {0} appears more than once")]
    DuplicateStep(StepId),
    #[error("step {step} lists {member} more than once")]
    DuplicateAssignee { step: StepId, member: MemberId },
    #[error("no step of the template applies to this document")]
    Empty,
    #[error("circulation has no readers: nobody holds the assigned role")]
    NoReaders,
}

/// Every problem found while planning a route, so that the drafter gets
/// them all at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the route cannot be planned: {}", list(.0))]
pub struct RouteError(pub Vec<RouteProblem>);

fn list(problems: &[RouteProblem]) -> String {
    let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

/// Plans the route of `template` for a document with `fields`.
///
/// Steps whose condition is false are left out. A step that resolves to
/// no member is an error naming the step and is never skipped.
pub fn plan_route(
    template: &Template,
    fields: &DocumentFields,
    resolver: &dyn AssigneeResolver,
) -> Result<Route, RouteError> {
    let mut problems = Vec::new();
    let mut steps = Vec::new();

    for def in &template.steps {
        match plan_step(def, fields, resolver) {
            Ok(Some(step)) => steps.push(step),
            Ok(None) => {}
            Err(problem) => problems.push(problem),
        }
    }

    let circulation = resolve_all(&template.circulation, resolver);
    if !template.circulation.is_empty() && circulation.is_empty() {
        problems.push(RouteProblem::NoReaders);
    }
    if problems.is_empty() && steps.is_empty() {
        problems.push(RouteProblem::Empty);
    }

    if problems.is_empty() {
        Ok(Route { steps, circulation })
    } else {
        Err(RouteError(problems))
    }
}

fn plan_step(
    def: &StepDef,
    fields: &DocumentFields,
    resolver: &dyn AssigneeResolver,
) -> Result<Option<RouteStep>, RouteProblem> {
    if let Some(condition) = &def.condition {
        let applies = condition
            .evaluate(fields)
            .map_err(|error| RouteProblem::Condition {
                step: def.id.clone(),
                reason: error.to_string(),
            })?;
        if !applies {
            return Ok(None);
        }
    }

    let step = RouteStep {
        id: def.id.clone(),
        name: def.name.clone(),
        kind: def.kind,
        assignees: resolve_all(&def.assignees, resolver),
        deadline_working_days: def.deadline_working_days,
        cc_on_start: resolve_all(&def.cc_on_start, resolver),
        cc_on_finish: resolve_all(&def.cc_on_finish, resolver),
    };
    step.check()?;
    Ok(Some(step))
}

/// Resolves specs in order, keeping the first occurrence of each member.
fn resolve_all(specs: &[AssigneeSpec], resolver: &dyn AssigneeResolver) -> Vec<MemberId> {
    let mut seen = HashSet::new();
    let mut members = Vec::new();
    for spec in specs {
        let resolved = match spec {
            AssigneeSpec::Members(ids) => ids.clone(),
            AssigneeSpec::Role { role, org } => resolver.resolve_role(*role, *org),
        };
        members.extend(resolved.into_iter().filter(|member| seen.insert(*member)));
    }
    members
}

impl RouteStep {
    fn check(&self) -> Result<(), RouteProblem> {
        if self.assignees.is_empty() {
            return Err(RouteProblem::NoAssignee {
                step: self.id.clone(),
                name: self.name.clone(),
            });
        }
        if self.kind == StepKind::Single && self.assignees.len() != 1 {
            return Err(RouteProblem::NotSingle {
                step: self.id.clone(),
                name: self.name.clone(),
                count: self.assignees.len(),
            });
        }
        // A member listed twice would hold two tasks on one step.
        let mut seen = HashSet::new();
        if let Some(member) = self.assignees.iter().find(|member| !seen.insert(**member)) {
            return Err(RouteProblem::DuplicateAssignee {
                step: self.id.clone(),
                member: *member,
            });
        }
        Ok(())
    }
}

impl Route {
    /// Checks a route received from outside the planner, for example from a
    /// stored submit action.
    pub fn validate(&self) -> Result<(), RouteError> {
        let mut problems = Vec::new();
        let mut ids = HashSet::new();
        for step in &self.steps {
            if !ids.insert(&step.id) {
                problems.push(RouteProblem::DuplicateStep(step.id.clone()));
            }
            if let Err(problem) = step.check() {
                problems.push(problem);
            }
        }
        if self.steps.is_empty() {
            problems.push(RouteProblem::Empty);
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(RouteError(problems))
        }
    }

    /// Returns the position of step `id` on the route.
    pub fn position(&self, id: &StepId) -> Option<usize> {
        self.steps.iter().position(|step| &step.id == id)
    }
}
