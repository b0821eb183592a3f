//! Party membership work: the development pipeline (发展党员) with its time
//! rules, reminders of due steps, dues (党费) and transfers of the
//! organization relation (组织关系转接).
//!
//! Officers of an organization or of its ancestors record and read its
//! pipeline. The rules live in [`rules`] and [`dues_rules`] as data with
//! small pure functions; the HTTP modules load a history, ask the rules and
//! store the outcome. Hub events: `membership.step`, `membership.import`
//! and `membership.temporary_branch` on `org:ID`; reminders
//! arrive as notices and `todo.membership_due` or `todo.membership_overdue`
//! on `user:ID`.

pub mod cadence;
pub mod demo;
pub mod dues;
pub mod dues_rules;
mod import;
mod letters;
mod mobile;
mod pipeline;
pub mod reminders;
pub mod rules;
pub mod stats;
mod steps;
pub mod temporary;
mod timeline;
mod transfers;

use chrono::NaiveDate;
use sqlx::AnyConnection;
use utoipa_axum::router::OpenApiRouter;

use crate::db::is_unique_violation;
use crate::error::{AppError, AppResult};
use crate::org::{Org, load_org};
use crate::perm::{Access, Caller};
use crate::state::AppState;
use rules::{Refusal, Step};
pub use temporary::{
    TemporaryBranchLimit, mobile_access, reject_in_temporary_branch, temporary_branch_error,
};

pub fn router() -> OpenApiRouter<AppState> {
    pipeline::router()
        .merge(steps::router())
        .merge(dues::router())
        .merge(transfers::router())
        .merge(letters::router())
        .merge(stats::router())
        .merge(mobile::router())
        .merge(temporary::router())
        .merge(import::router())
        .merge(timeline::router())
}

/// Today in China Standard Time, the time zone of every date in this module.
pub fn today() -> NaiveDate {
    chrono::Utc::now()
        .with_timezone(&crate::calendar::china_time())
        .date_naive()
}

/// Checks a `YYYY-MM-DD` date that is not after today in China Standard
/// Time.
fn check_date(field: &str, value: &str) -> AppResult<NaiveDate> {
    let date = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| {
        AppError::invalid(
            field,
            format!("日期格式应为 YYYY-MM-DD：{value}"),
            format!("date must be YYYY-MM-DD: {value}"),
        )
    })?;
    if date > today() {
        return Err(AppError::invalid(
            field,
            format!("日期不能晚于今天：{value}"),
            format!("date cannot be in the future: {value}"),
        ));
    }
    Ok(date)
}

/// Loads an organization, naming `field` when it is missing, and checks
/// that the caller is an officer of it or of an ancestor, or holds a grant
/// on it for `access`.
async fn officer_org(
    state: &AppState,
    caller: &Caller,
    conn: &mut AnyConnection,
    org_id: i64,
    field: &str,
    access: Access,
) -> AppResult<Org> {
    let org = load_org(conn, org_id).await.map_err(|e| e.field(field))?;
    let allowed = caller.principal.can_org(&org.path, Access::Write);
    caller
        .principal
        .check(&state.db, allowed, ("org", org.id), access)
        .await?;
    Ok(org)
}

/// Rejects work on a member record whose relation has moved out of the
/// deployment, which stays only for history.
fn reject_moved_out(status: &str) -> AppResult<()> {
    if status == crate::members::MemberStatus::MovedOut.as_str() {
        return Err(AppError::conflict(
            "member_moved_out",
            "该党员的组织关系已转出，不能再办理",
            "this member's relation has moved out of the deployment",
        )
        .field("member_id"));
    }
    Ok(())
}

/// Maps a failed member insert to 409 when the identity number is taken.
fn member_insert_error(error: sqlx::Error) -> AppError {
    if is_unique_violation(&error) {
        AppError::conflict(
            "duplicate_id_number",
            "已有党员使用该身份证号码",
            "a member with this identity card number already exists",
        )
        .field("id_number")
    } else {
        error.into()
    }
}

/// Checks a required text field: 1 to `max` characters after trimming.
fn check_text(field: &str, value: &str, max: usize) -> AppResult<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(AppError::invalid(
            field,
            format!("{field} 须为 1 到 {max} 个字符"),
            format!("{field} must be 1 to {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// Turns a rule's refusal into the API error, naming the date that opens
/// the step or the deadline that was missed.
fn refusal_error(step: Step, refusal: Refusal) -> AppError {
    let early = |zh: String, en: String| AppError::invalid("taken_on", zh, en);
    match refusal {
        Refusal::WrongStage { .. } => AppError::conflict(
            "wrong_stage",
            format!("当前阶段不能进行“{}”", step.zh()),
            format!(
                "step {} does not belong to the current stage",
                step.as_str()
            ),
        )
        .field("step"),
        Refusal::Missing { step: missing } => AppError::conflict(
            "missing_step",
            format!("须先完成“{}”", missing.zh()),
            format!("record {} first", missing.as_str()),
        )
        .field("step"),
        Refusal::AlreadyRecorded => AppError::conflict(
            "step_recorded",
            format!("“{}”已经登记", step.zh()),
            format!("{} is already recorded", step.as_str()),
        )
        .field("step"),
        Refusal::BeforePrerequisite { step: before, date } => early(
            format!("日期不能早于“{}”的日期 {date}", before.zh()),
            format!("the date cannot be before {} on {date}", before.as_str()),
        ),
        Refusal::TooEarly { opens_on, source } => early(
            format!("“{}”最早可在 {opens_on} 进行（{source}）", step.zh()),
            format!("{} is possible from {opens_on} ({source})", step.as_str()),
        ),
        Refusal::TooYoung { opens_on } => early(
            format!("申请人未满十八周岁，最早可在 {opens_on} 申请入党"),
            format!("the applicant is under 18; they may apply from {opens_on}"),
        ),
        Refusal::LateWithoutReason { due_on, source } => AppError::invalid(
            "reason",
            format!(
                "“{}”应在 {due_on} 前完成（{source}），逾期登记须说明原因",
                step.zh()
            ),
            format!(
                "{} was due by {due_on} ({source}); give a reason to record it late",
                step.as_str()
            ),
        ),
        Refusal::PastExtension { latest_on, source } => early(
            format!("“{}”最迟应在 {latest_on} 完成（{source}）", step.zh()),
            format!(
                "{} had to be taken by {latest_on} at the latest ({source})",
                step.as_str()
            ),
        ),
        Refusal::Lapsed {
            step: lapsed,
            lapsed_on,
            source,
        } => early(
            format!(
                "“{}”已于 {lapsed_on} 失效（{source}），请重新进行",
                lapsed.zh()
            ),
            format!(
                "{} lapsed on {lapsed_on} ({source}); take it again",
                lapsed.as_str()
            ),
        ),
        Refusal::TrainingTooShort => AppError::invalid(
            "training_days",
            "集中培训不少于三天或二十四学时",
            "training must last at least three days or 24 hours",
        ),
    }
}
