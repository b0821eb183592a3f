//! Chinese wording of rejected actions and unplannable routes. The engine's
//! own messages are English and name members by id; these name members and
//! steps as the people involved know them.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::engine::{
    ActionError, ActionKind, Instance, MemberId, RouteError, RouteProblem, Status, StepId,
};
use super::store;
use crate::error::AppResult;

/// Names of the members and steps an error message may mention.
#[derive(Default)]
pub(super) struct Names {
    members: HashMap<MemberId, String>,
    steps: HashMap<StepId, String>,
}

impl Names {
    /// Loads the names that `error` mentions: members from the database,
    /// step names from the route of `instance`'s current submission.
    pub(super) async fn of_action_error(
        conn: &mut AnyConnection,
        instance: &Instance,
        error: &ActionError,
    ) -> AppResult<Self> {
        let mut names = Self::default();
        if let Some(route) = &instance.progress.route {
            for step in &route.steps {
                names.steps.insert(step.id.clone(), step.name.clone());
            }
        }
        for member in mentioned_members(error) {
            let name = store::member_name(conn, member).await?;
            names.members.insert(member, name);
        }
        Ok(names)
    }

    /// Loads the member names that a route error mentions.
    pub(super) async fn of_route_error(
        conn: &mut AnyConnection,
        error: &RouteError,
    ) -> AppResult<Self> {
        let mut names = Self::default();
        for problem in &error.0 {
            if let RouteProblem::DuplicateAssignee { member, .. } = problem {
                let name = store::member_name(conn, *member).await?;
                names.members.insert(*member, name);
            }
        }
        Ok(names)
    }

    fn member(&self, id: MemberId) -> String {
        self.members
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("党员（编号 {}）", id.0))
    }

    fn step(&self, id: &StepId) -> String {
        match self.steps.get(id) {
            Some(name) => format!("“{name}”"),
            None => format!("“{}”", id.0),
        }
    }
}

fn mentioned_members(error: &ActionError) -> Vec<MemberId> {
    match error {
        ActionError::Stale { by, .. } => vec![*by],
        ActionError::NotDrafter { drafter, .. } => vec![*drafter],
        ActionError::NoOpenTask { actor, .. } => vec![*actor],
        ActionError::NotLastActor { last_actor, .. } => vec![*last_actor],
        ActionError::AlreadyOnStep { member, .. } => vec![*member],
        ActionError::SelfAssignment(member)
        | ActionError::NotReader(member)
        | ActionError::AlreadyRead(member)
        | ActionError::NothingToUrge(member) => vec![*member],
        _ => Vec::new(),
    }
}

/// The action's name as the document page labels its buttons.
fn action_name(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Submit => "提交",
        ActionKind::Approve => "同意",
        ActionKind::Reject => "驳回",
        ActionKind::Return => "退回",
        ActionKind::Withdraw => "撤回",
        ActionKind::Delegate => "转交",
        ActionKind::AddSigner => "加签",
        ActionKind::Urge => "催办",
        ActionKind::Comment => "评论",
        ActionKind::MarkRead => "标记已阅",
    }
}

fn status_text(status: &Status, names: &Names) -> String {
    match status {
        Status::Draft => "尚未提交".to_owned(),
        Status::InProgress { step } => format!("正在{}步骤审批", names.step(step)),
        Status::ReturnedToDrafter { .. } => "已退回起草人".to_owned(),
        Status::Withdrawn => "已撤回".to_owned(),
        Status::Circulating => "已签发，正在传阅".to_owned(),
        Status::Approved => "已签发".to_owned(),
        Status::Rejected { .. } => "已驳回".to_owned(),
    }
}

/// Words a rejected action in Chinese.
pub(super) fn action_error(error: &ActionError, names: &Names) -> String {
    match error {
        ActionError::Stale {
            based_on,
            changed_at,
            by,
            kind,
        } => format!(
            "您看到的是第 {based_on} 版，之后{}已{}（第 {changed_at} 版）。请刷新公文后再办理",
            names.member(*by),
            action_name(*kind)
        ),
        ActionError::UnknownVersion { based_on, current } => {
            format!("没有第 {based_on} 版，当前是第 {current} 版。请刷新公文后再办理")
        }
        ActionError::NotAllowed { action, status } => format!(
            "公文{}，不能{}",
            status_text(status, names),
            action_name(*action)
        ),
        ActionError::NotDrafter { action, drafter } => format!(
            "只有起草人{}可以{}",
            names.member(*drafter),
            action_name(*action)
        ),
        ActionError::NoOpenTask { actor, step } => format!(
            "{}在{}步骤没有待办任务",
            names.member(*actor),
            names.step(step)
        ),
        ActionError::UnknownStep(step) => format!("{}不是本公文审批路径上的步骤", names.step(step)),
        ActionError::ReturnForward { current, target } => format!(
            "不能从{}退回到{}：只能退回到已经办理过的步骤",
            names.step(current),
            names.step(target)
        ),
        ActionError::NoPreviousStep(step) => {
            format!("{}是第一个步骤，请退回起草人", names.step(step))
        }
        ActionError::NothingToWithdraw => "最近的办理无法撤回".to_owned(),
        ActionError::NotLastActor { last_actor, kind } => format!(
            "只有最近{}的{}可以撤回",
            action_name(*kind),
            names.member(*last_actor)
        ),
        ActionError::AlreadyOnStep { member, step } => format!(
            "{}在{}步骤已有待办或排队中的任务",
            names.member(*member),
            names.step(step)
        ),
        ActionError::SelfAssignment(member) => {
            format!("{}不能把任务转交或加签给自己", names.member(*member))
        }
        ActionError::NotReader(member) => {
            format!("{}不在本公文的传阅名单中", names.member(*member))
        }
        ActionError::AlreadyRead(member) => format!("{}已阅过本公文", names.member(*member)),
        ActionError::NothingToUrge(member) => {
            format!("{}没有可催办的待办任务", names.member(*member))
        }
        ActionError::EmptyText(_) => "内容不能为空".to_owned(),
        ActionError::Route(route) => route_error(route, names),
    }
}

/// Words every problem of an unplannable route in Chinese, in one message.
pub(super) fn route_error(error: &RouteError, names: &Names) -> String {
    let problems: Vec<String> = error
        .0
        .iter()
        .map(|problem| route_problem(problem, names))
        .collect();
    format!("无法确定审批路径：{}", problems.join("；"))
}

fn route_problem(problem: &RouteProblem, names: &Names) -> String {
    match problem {
        RouteProblem::NoAssignee { name, .. } => {
            format!("步骤“{name}”没有办理人，相应职务目前无人担任")
        }
        RouteProblem::NotSingle { name, count, .. } => {
            format!("步骤“{name}”只能由一人办理，却找到 {count} 人")
        }
        RouteProblem::Condition { step, reason } => {
            format!("步骤“{}”的条件无法判断（{reason}）", step.0)
        }
        RouteProblem::DuplicateStep(step) => format!("步骤标识“{}”重复", step.0),
        RouteProblem::DuplicateAssignee { step, member } => {
            format!("步骤“{}”重复列出了{}", step.0, names.member(*member))
        }
        RouteProblem::Empty => "模板中没有适用于本公文的步骤".to_owned(),
        RouteProblem::NoReaders => "传阅没有读者，相应职务目前无人担任".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        let mut names = Names::default();
        names.members.insert(MemberId(7), "王芳".to_owned());
        names
            .steps
            .insert(StepId::new("review"), "部门审核".to_owned());
        names
    }

    #[test]
    fn stale_names_person_and_versions() {
        let error = ActionError::Stale {
            based_on: 3,
            changed_at: 4,
            by: MemberId(7),
            kind: ActionKind::Approve,
        };
        assert_eq!(
            action_error(&error, &names()),
            "您看到的是第 3 版，之后王芳已同意（第 4 版）。请刷新公文后再办理"
        );
    }

    #[test]
    fn not_allowed_names_step() {
        let error = ActionError::NotAllowed {
            action: ActionKind::Submit,
            status: Status::InProgress {
                step: StepId::new("review"),
            },
        };
        assert_eq!(
            action_error(&error, &names()),
            "公文正在“部门审核”步骤审批，不能提交"
        );
    }

    #[test]
    fn unknown_member_falls_back_to_id() {
        let error = ActionError::NothingToUrge(MemberId(9));
        assert_eq!(
            action_error(&error, &names()),
            "党员（编号 9）没有可催办的待办任务"
        );
    }

    #[test]
    fn route_problems_join() {
        let error = RouteError(vec![
            RouteProblem::NoAssignee {
                step: StepId::new("sign"),
                name: "书记签发".to_owned(),
            },
            RouteProblem::NoReaders,
        ]);
        assert_eq!(
            route_error(&error, &names()),
            "无法确定审批路径：步骤“书记签发”没有办理人，相应职务目前无人担任；传阅没有读者，相应职务目前无人担任"
        );
    }
}
