//! HTTP resource `/api/membership/people`: people in the development
//! pipeline, the board of one organization and one person's timeline.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::rules::{self, Due, Facts, History, Stage, Step};
use super::{
    TemporaryBranchLimit, check_date, check_text, officer_org, refusal_error,
    temporary_branch_error,
};
use crate::audit;
use crate::db::{is_unique_violation, now_ms};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::members::{Gender, check_id_number, check_person_name, check_phone};
use crate::org::OrgKind;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_person))
        .routes(routes!(board))
        .routes(routes!(get_person))
}

/// A new applicant with the date of their written application.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    pub org_id: i64,
    pub name: String,
    pub gender: Gender,
    pub ethnicity: String,
    /// `YYYY-MM-DD`
    pub birth_date: String,
    pub education: String,
    pub phone: String,
    pub id_number: String,
    /// Date of the written application, `YYYY-MM-DD`.
    pub applied_on: String,
}

/// A person in the pipeline as the board shows them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PersonSummary {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub gender: Gender,
    pub stage: Stage,
    /// The member record, once the higher committee has approved.
    pub member_id: Option<i64>,
    /// The next steps due, earliest first.
    pub due: Vec<Due>,
}

/// One recorded step on a person's timeline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StepRecord {
    pub id: i64,
    pub step: Step,
    pub taken_on: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub vote_id: Option<i64>,
    /// The missed deadline of a step recorded late.
    pub late_since: Option<String>,
    pub exception_reason: Option<String>,
    pub recorded_by: String,
    pub recorded_at: i64,
}

/// A person with their full timeline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PersonDetail {
    #[serde(flatten)]
    pub summary: PersonSummary,
    pub org_name: String,
    pub ethnicity: String,
    pub birth_date: String,
    pub education: String,
    pub steps: Vec<StepRecord>,
}

/// The pipeline of one organization, grouped by stage.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Board {
    pub org_id: i64,
    pub org_name: String,
    pub columns: Vec<BoardColumn>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BoardColumn {
    pub stage: Stage,
    pub people: Vec<PersonSummary>,
}

/// Adds an applicant and records their application. An applicant under 18
/// on the application date is rejected with the date they turn 18.
#[utoipa::path(post, path = "/api/membership/people", tag = "membership", request_body = NewPerson,
    responses((status = 201, body = PersonDetail), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_person(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewPerson>,
) -> AppResult<(StatusCode, ApiJson<PersonDetail>)> {
    let birth = check_date("birth_date", &input.birth_date)?;
    let applied = check_date("applied_on", &input.applied_on)?;
    let facts = Facts {
        birth: Some(birth),
        ..Facts::default()
    };
    rules::check(Step::Application, applied, &History::default(), facts)
        .map_err(|refusal| refusal_error(Step::Application, refusal).field("applied_on"))?;
    let name = check_person_name(&input.name)?;
    let ethnicity = check_text("ethnicity", &input.ethnicity, 20)?;
    let education = check_text("education", &input.education, 40)?;
    let phone = check_phone(&input.phone)?;
    let id_number = check_id_number(&input.id_number)?;

    let mut tx = state.db.begin().await?;
    let org = officer_org(
        &state,
        &caller,
        &mut tx,
        input.org_id,
        "org_id",
        Access::Write,
    )
    .await?;
    if org.kind == OrgKind::TemporaryBranch {
        return Err(temporary_branch_error(TemporaryBranchLimit::Admit).field("org_id"));
    }
    let now = now_ms();
    let inserted = sqlx::query_scalar::<_, i64>(
        "INSERT INTO membership_people (org_id, name, gender, ethnicity, birth_date, education, \
         phone, id_number, stage, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'applicant', $9, $9) RETURNING id",
    )
    .bind(org.id)
    .bind(&name)
    .bind(input.gender.as_str())
    .bind(&ethnicity)
    .bind(birth.to_string())
    .bind(&education)
    .bind(&phone)
    .bind(&id_number)
    .bind(now)
    .fetch_one(&mut *tx)
    .await;
    let id = match inserted {
        Ok(id) => id,
        Err(error) if is_unique_violation(&error) => {
            return Err(AppError::conflict(
                "duplicate_id_number",
                "该身份证号码已在发展党员名单中",
                "a person with this identity card number is already in the pipeline",
            )
            .field("id_number"));
        }
        Err(error) => return Err(error.into()),
    };
    sqlx::query(
        "INSERT INTO membership_steps (person_id, step, taken_on, detail, recorded_by, recorded_at) \
         VALUES ($1, 'application', $2, '{}', $3, $4)",
    )
    .bind(id)
    .bind(applied.to_string())
    .bind(caller.session.account.id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "membership.person.create",
        ("membership_person", id.to_string()),
        json!({"org_id": org.id, "name": name, "applied_on": applied.to_string()}),
    )
    .await?;
    let detail = load_detail(&mut tx, id).await?;
    tx.commit().await?;
    tracing::info!(person_id = id, org_id = org.id, "applicant added");
    Ok((StatusCode::CREATED, ApiJson(detail)))
}

/// The pipeline board of one organization: everyone not yet a full member,
/// and those confirmed as full members, by stage.
#[utoipa::path(get, path = "/api/membership/orgs/{id}/board", tag = "membership",
    params(("id" = i64, Path, description = "Organization id")),
    responses((status = 200, body = Board), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn board(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<i64>,
) -> AppResult<ApiJson<Board>> {
    let mut conn = state.db.pool.acquire().await?;
    let org = officer_org(&state, &caller, &mut conn, org_id, "id", Access::Read).await?;
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM membership_people WHERE org_id = $1 ORDER BY id")
            .bind(org_id)
            .fetch_all(&mut *conn)
            .await?;
    let mut columns: Vec<BoardColumn> = Stage::ALL
        .into_iter()
        .map(|stage| BoardColumn {
            stage,
            people: Vec::new(),
        })
        .collect();
    for id in ids {
        let summary = load_detail(&mut conn, id).await?.summary;
        let column = Stage::ALL
            .iter()
            .position(|stage| *stage == summary.stage)
            .unwrap_or(0);
        columns[column].people.push(summary);
    }
    Ok(ApiJson(Board {
        org_id,
        org_name: org.name,
        columns,
    }))
}

/// One person with their timeline and the steps now due.
#[utoipa::path(get, path = "/api/membership/people/{id}", tag = "membership",
    params(("id" = i64, Path, description = "Person id")),
    responses((status = 200, body = PersonDetail), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_person(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<PersonDetail>> {
    let mut conn = state.db.pool.acquire().await?;
    let detail = load_detail(&mut conn, id).await?;
    let path = org_path(&mut conn, detail.summary.org_id).await?;
    let own_record = detail.summary.member_id.is_some()
        && detail.summary.member_id == caller.principal.member_id;
    let allowed = caller.principal.can_org(&path, Access::Write) || own_record;
    caller
        .principal
        .check(&state.db, allowed, ("membership_person", id), Access::Read)
        .await?;
    Ok(ApiJson(detail))
}

pub(super) async fn org_path(conn: &mut AnyConnection, org_id: i64) -> AppResult<String> {
    Ok(sqlx::query_scalar("SELECT path FROM orgs WHERE id = $1")
        .bind(org_id)
        .fetch_one(&mut *conn)
        .await?)
}

/// Loads a person's recorded step dates.
pub(super) async fn load_history(conn: &mut AnyConnection, person_id: i64) -> AppResult<History> {
    let rows = sqlx::query(
        "SELECT step, taken_on FROM membership_steps WHERE person_id = $1 ORDER BY taken_on, id",
    )
    .bind(person_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut history = History::default();
    for row in rows {
        let step: String = row.try_get("step")?;
        let taken_on: String = row.try_get("taken_on")?;
        let (Some(step), Ok(date)) = (
            Step::parse(&step),
            NaiveDate::parse_from_str(&taken_on, "%Y-%m-%d"),
        ) else {
            return Err(AppError::internal(format!(
                "stored step {step} on {taken_on} of person {person_id} is unreadable"
            )));
        };
        history.steps.push((step, date));
    }
    Ok(history)
}

/// Loads a person with their timeline, or returns 404.
pub(super) async fn load_detail(conn: &mut AnyConnection, id: i64) -> AppResult<PersonDetail> {
    let row = sqlx::query(
        "SELECT p.id, p.org_id, o.name AS org_name, p.member_id, p.name, p.gender, p.ethnicity, \
         p.birth_date, p.education, p.stage FROM membership_people p JOIN orgs o ON o.id = p.org_id \
         WHERE p.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::not_found(("发展对象记录", "pipeline person"), id))?;
    let history = load_history(conn, id).await?;
    let gender: String = row.try_get("gender")?;
    let stage: String = row.try_get("stage")?;
    let summary = PersonSummary {
        id,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        gender: if gender == "female" {
            Gender::Female
        } else {
            Gender::Male
        },
        stage: Stage::parse(&stage).unwrap_or(Stage::Applicant),
        member_id: row.try_get("member_id")?,
        due: rules::due_steps(&history),
    };
    Ok(PersonDetail {
        summary,
        org_name: row.try_get("org_name")?,
        ethnicity: row.try_get("ethnicity")?,
        birth_date: row.try_get("birth_date")?,
        education: row.try_get("education")?,
        steps: load_steps(conn, id).await?,
    })
}

async fn load_steps(conn: &mut AnyConnection, person_id: i64) -> AppResult<Vec<StepRecord>> {
    let rows = sqlx::query(
        "SELECT s.id, s.step, s.taken_on, s.detail, s.vote_id, s.late_since, s.exception_reason, \
         a.display_name, s.recorded_at FROM membership_steps s JOIN accounts a ON a.id = s.recorded_by \
         WHERE s.person_id = $1 ORDER BY s.taken_on, s.id",
    )
    .bind(person_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let step: String = row.try_get("step")?;
            let detail: String = row.try_get("detail")?;
            Ok(StepRecord {
                id: row.try_get("id")?,
                step: Step::parse(&step).unwrap_or(Step::Application),
                taken_on: row.try_get("taken_on")?,
                detail: serde_json::from_str(&detail).unwrap_or_default(),
                vote_id: row.try_get("vote_id")?,
                late_since: row.try_get("late_since")?,
                exception_reason: row.try_get("exception_reason")?,
                recorded_by: row.try_get("display_name")?,
                recorded_at: row.try_get("recorded_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
