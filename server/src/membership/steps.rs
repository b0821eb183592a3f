//! `POST /api/membership/people/{id}/steps`: records one step of a person's
//! development after checking every time rule.
//!
//! The higher committee's approval creates the probationary member record,
//! with the branch meeting's date as the date of joining, and the
//! confirmation makes it a full member. A branch meeting may link the closed
//! motion of a 党员大会 of the person's own organization that decided it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pipeline::{PersonDetail, load_detail, load_history, org_path};
use super::rules::{self, Facts, History, Step};
use super::{check_date, refusal_error};
use crate::audit;
use crate::calendar::china_time;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::hub::store as events;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(record_step))
}

/// Maximum length of a note or exception reason, in characters.
const MAX_TEXT_CHARS: usize = 500;

/// One step to record.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStep {
    pub step: Step,
    /// `YYYY-MM-DD`, not in the future.
    pub taken_on: String,
    #[serde(default)]
    pub note: String,
    /// Contacts (培养联系人): one or two full members, for `contacts`.
    #[serde(default)]
    pub contact_ids: Vec<i64>,
    /// Length of the training, for `training`: days or hours.
    #[serde(default)]
    pub training_days: u32,
    #[serde(default)]
    pub training_hours: u32,
    /// The closed motion of the branch meeting, for `branch_meeting` and
    /// `confirmation`.
    pub vote_id: Option<i64>,
    /// The reason for a late or extended step, required once a deadline
    /// has passed.
    pub reason: Option<String>,
}

/// Records a step. A step dated too early is rejected with the date it
/// becomes possible; a late one needs a reason, kept as an exception.
#[utoipa::path(post, path = "/api/membership/people/{id}/steps", tag = "membership", request_body = NewStep,
    params(("id" = i64, Path, description = "Person id")),
    responses((status = 201, body = PersonDetail), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn record_step(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<NewStep>,
) -> AppResult<(StatusCode, ApiJson<PersonDetail>)> {
    let taken_on = check_date("taken_on", &input.taken_on)?;
    let note = check_optional_text("note", &input.note)?;
    let reason = check_optional_text("reason", input.reason.as_deref().unwrap_or(""))?;
    if input.step == Step::Application {
        return Err(AppError::invalid(
            "step",
            "入党申请随人员一起登记",
            "the application is recorded when the person is added",
        ));
    }

    let mut tx = state.db.begin().await?;
    let person = load_detail(&mut tx, id).await?;
    let org_id = person.summary.org_id;
    let path = org_path(&mut tx, org_id).await?;
    let allowed = caller.principal.can_org(&path, Access::Write);
    caller
        .principal
        .check(&state.db, allowed, ("org", org_id), Access::Write)
        .await?;
    super::reject_in_temporary_branch(&mut tx, org_id, super::TemporaryBranchLimit::Admit).await?;

    let history = load_history(&mut tx, id).await?;
    let facts = Facts {
        birth: None,
        training_days: input.training_days,
        training_hours: input.training_hours,
        has_reason: !reason.is_empty(),
    };
    let accepted = rules::check(input.step, taken_on, &history, facts)
        .map_err(|refusal| refusal_error(input.step, refusal))?;
    check_contacts(&mut tx, input.step, &input.contact_ids, &path).await?;
    if let Some(vote_id) = input.vote_id {
        check_vote(&mut tx, input.step, vote_id, org_id, taken_on).await?;
    }

    let detail = json!({
        "note": note,
        "contact_ids": input.contact_ids,
        "training_days": input.training_days,
        "training_hours": input.training_hours,
    });
    let now = now_ms();
    let late_since = accepted.late_since.map(|date| date.to_string());
    sqlx::query(
        "INSERT INTO membership_steps (person_id, step, taken_on, detail, vote_id, late_since, \
         exception_reason, recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(input.step.as_str())
    .bind(taken_on.to_string())
    .bind(detail.to_string())
    .bind(input.vote_id)
    .bind(&late_since)
    .bind(late_since.as_ref().map(|_| reason.clone()))
    .bind(caller.session.account.id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE membership_reminders SET done_at = $1 \
         WHERE person_id = $2 AND step = $3 AND done_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(input.step.as_str())
    .execute(&mut *tx)
    .await?;
    apply_stage(&mut tx, id, input.step, &history).await?;

    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "membership.step.record",
        ("membership_person", id.to_string()),
        json!({"step": input.step, "taken_on": taken_on.to_string(), "late_since": late_since,
            "reason": late_since.as_ref().map(|_| &reason), "vote_id": input.vote_id}),
    )
    .await?;
    let event = events::append(
        &mut tx,
        &format!("org:{org_id}"),
        "membership.step",
        json!({"person_id": id, "step": input.step, "taken_on": taken_on.to_string()}),
    )
    .await?;
    let detail = load_detail(&mut tx, id).await?;
    tx.commit().await?;
    state.hub.publish(vec![event]);
    tracing::info!(
        person_id = id,
        step = input.step.as_str(),
        "membership step recorded"
    );
    Ok((StatusCode::CREATED, ApiJson(detail)))
}

fn check_optional_text(field: &str, value: &str) -> AppResult<String> {
    let value = value.trim();
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(AppError::invalid(
            field,
            format!("{field} 最多 {MAX_TEXT_CHARS} 个字符"),
            format!("{field} must be at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// Contacts are one or two full members of the person's organization or
/// its subtree.
async fn check_contacts(
    conn: &mut AnyConnection,
    step: Step,
    contact_ids: &[i64],
    org_path: &str,
) -> AppResult<()> {
    if step != Step::Contacts {
        if !contact_ids.is_empty() {
            return Err(AppError::invalid(
                "contact_ids",
                "只有指定培养联系人时才填写联系人",
                "contact_ids belong only to the contacts step",
            ));
        }
        return Ok(());
    }
    if contact_ids.is_empty() || contact_ids.len() > 2 {
        return Err(AppError::invalid(
            "contact_ids",
            "须指定一至两名培养联系人",
            "name one or two contacts",
        ));
    }
    for (index, member_id) in contact_ids.iter().enumerate() {
        let row = sqlx::query(
            "SELECT m.status, o.path FROM members m JOIN orgs o ON o.id = m.org_id WHERE m.id = $1",
        )
        .bind(member_id)
        .fetch_optional(&mut *conn)
        .await?;
        let field = format!("contact_ids[{index}]");
        let Some(row) = row else {
            return Err(AppError::not_found(("党员", "member"), member_id).field(field));
        };
        let status: String = row.try_get("status")?;
        let path: String = row.try_get("path")?;
        if status != "full" || !path.starts_with(org_path) {
            return Err(AppError::invalid(
                &field,
                "培养联系人须为本组织的正式党员",
                "a contact must be a full member of this organization",
            ));
        }
    }
    Ok(())
}

/// Checks that a linked vote is the passed, closed motion of a 党员大会 of the person's
/// organization, held on the step's date (China Standard Time).
async fn check_vote(
    conn: &mut AnyConnection,
    step: Step,
    vote_id: i64,
    org_id: i64,
    taken_on: NaiveDate,
) -> AppResult<()> {
    if !matches!(step, Step::BranchMeeting | Step::Confirmation) {
        return Err(AppError::invalid(
            "vote_id",
            "只有支部大会讨论接收和转正可以关联表决",
            "only the branch meeting and the confirmation link a vote",
        ));
    }
    let row = sqlx::query(
        "SELECT v.kind, v.status, v.result, m.org_id, m.kind AS meeting_kind, m.starts_at \
         FROM meeting_votes v JOIN meetings m ON m.id = v.meeting_id WHERE v.id = $1",
    )
    .bind(vote_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::not_found(("表决", "vote"), vote_id).field("vote_id"))?;
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let meeting_kind: String = row.try_get("meeting_kind")?;
    let meeting_org: i64 = row.try_get("org_id")?;
    let starts_at: i64 = row.try_get("starts_at")?;
    let result: Option<String> = row.try_get("result")?;
    let passed = result
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|result| result["outcome"] == "passed");
    let wrong = |zh: &str, en: &str| Err(AppError::invalid("vote_id", zh, en));
    if meeting_org != org_id || meeting_kind != "general_meeting" || kind != "motion" {
        return wrong(
            "须关联本组织党员大会的议案表决",
            "link a motion of this organization's general meeting",
        );
    }
    if status != "closed" || !passed {
        return wrong(
            "该表决未通过或尚未结束",
            "the vote has not passed or is still open",
        );
    }
    let held_on = chrono::DateTime::from_timestamp_millis(starts_at)
        .map(|at| at.with_timezone(&china_time()).date_naive());
    if held_on != Some(taken_on) {
        return Err(AppError::invalid(
            "taken_on",
            "日期须与表决所在会议的日期一致",
            "taken_on must be the date of the vote's meeting",
        ));
    }
    Ok(())
}

/// Moves the person to the stage the step reaches, creating or updating
/// the member record at approval and confirmation.
async fn apply_stage(
    conn: &mut AnyConnection,
    person_id: i64,
    step: Step,
    history: &History,
) -> AppResult<()> {
    let Some(stage) = step.reaches() else {
        return Ok(());
    };
    let now = now_ms();
    sqlx::query("UPDATE membership_people SET stage = $1, updated_at = $2 WHERE id = $3")
        .bind(stage.as_str())
        .bind(now)
        .bind(person_id)
        .execute(&mut *conn)
        .await?;
    match step {
        Step::Approval => {
            let joined_on = history.last(Step::BranchMeeting).map(|d| d.to_string());
            let member_id: i64 = sqlx::query_scalar(
                "INSERT INTO members (org_id, name, gender, ethnicity, birth_date, education, \
                 joined_on, status, phone, id_number, created_at, updated_at) \
                 SELECT org_id, name, gender, ethnicity, birth_date, education, $1, 'probationary', \
                 phone, id_number, $2, $2 FROM membership_people WHERE id = $3 RETURNING id",
            )
            .bind(joined_on)
            .bind(now)
            .bind(person_id)
            .fetch_one(&mut *conn)
            .await
            .map_err(super::member_insert_error)?;
            sqlx::query("UPDATE membership_people SET member_id = $1 WHERE id = $2")
                .bind(member_id)
                .bind(person_id)
                .execute(&mut *conn)
                .await?;
        }
        Step::Confirmation => {
            sqlx::query(
                "UPDATE members SET status = 'full', updated_at = $1 \
                 WHERE id = (SELECT member_id FROM membership_people WHERE id = $2)",
            )
            .bind(now)
            .bind(person_id)
            .execute(&mut *conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}
