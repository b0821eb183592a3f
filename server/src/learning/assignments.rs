//! Assigning courses to organization subtrees and members with a deadline,
//! and the yearly targets per role.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{managed_course, member_org_path};
use super::credit::{self, TARGET_ROLES};
use super::{centi_from_hours, hours};
use crate::audit;
use crate::auth::SystemRole;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::org::load_org;
use crate::perm::{Access, Caller};
use crate::state::AppState;

/// 2100-01-01 00:00 UTC in Unix milliseconds: deadlines lie before it.
const LATEST_DEADLINE_MS: i64 = 4_102_444_800_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_assignments, assign))
        .routes(routes!(get_targets, set_targets))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAssignment {
    #[serde(default)]
    pub org_ids: Vec<i64>,
    #[serde(default)]
    pub member_ids: Vec<i64>,
    /// Unix milliseconds by which the course must be completed.
    pub deadline_at: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Assignment {
    pub id: i64,
    pub org_id: Option<i64>,
    pub member_id: Option<i64>,
    /// The organization's or the member's name.
    pub name: String,
    pub deadline_at: Option<i64>,
    pub created_at: i64,
}

/// Lists a course's assignments, for its managers.
#[utoipa::path(get, path = "/api/learning/courses/{id}/assignments", tag = "learning",
    responses((status = 200, body = Vec<Assignment>), (status = 403, body = ErrorBody)))]
async fn list_assignments(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<Vec<Assignment>>> {
    managed_course(&state, &caller.principal, id).await?;
    let rows = sqlx::query(
        "SELECT a.id, a.org_id, a.member_id, COALESCE(o.name, m.name) AS name, a.deadline_at, a.created_at \
         FROM learning_assignments a LEFT JOIN orgs o ON o.id = a.org_id \
         LEFT JOIN members m ON m.id = a.member_id WHERE a.course_id = $1 ORDER BY a.id",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    let assignments = rows
        .iter()
        .map(|row| {
            Ok(Assignment {
                id: row.try_get("id")?,
                org_id: row.try_get("org_id")?,
                member_id: row.try_get("member_id")?,
                name: row.try_get("name")?,
                deadline_at: row.try_get("deadline_at")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(ApiJson(assignments))
}

/// Assigns a course to organization subtrees and members. The caller must
/// manage the course and every targeted organization and member.
#[utoipa::path(post, path = "/api/learning/courses/{id}/assignments", tag = "learning", request_body = NewAssignment,
    responses((status = 201, body = Vec<Assignment>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<NewAssignment>,
) -> AppResult<(StatusCode, ApiJson<Vec<Assignment>>)> {
    managed_course(&state, &caller.principal, id).await?;
    if input.org_ids.is_empty() && input.member_ids.is_empty() {
        return Err(AppError::invalid(
            "org_ids",
            "请至少选择一个组织或党员",
            "choose at least one organization or member",
        ));
    }
    let now = now_ms();
    if input.deadline_at.is_some_and(|deadline| deadline <= now) {
        return Err(AppError::invalid(
            "deadline_at",
            "截止时间须晚于现在",
            "deadline_at must be in the future",
        ));
    }
    if input
        .deadline_at
        .is_some_and(|deadline| deadline >= LATEST_DEADLINE_MS)
    {
        return Err(AppError::invalid(
            "deadline_at",
            "截止时间须早于 2100 年",
            "deadline_at must be before the year 2100",
        ));
    }
    let mut tx = state.db.begin().await?;
    for (index, org_id) in input.org_ids.iter().enumerate() {
        let field = format!("org_ids[{index}]");
        let org = load_org(&mut tx, *org_id)
            .await
            .map_err(|e| e.field(field.clone()))?;
        if !caller.principal.can_org(&org.path, Access::Write) {
            return Err(AppError::forbidden().field(field));
        }
        insert_assignment(&mut tx, id, Some(org.id), None, input.deadline_at, &caller).await?;
    }
    for (index, member_id) in input.member_ids.iter().enumerate() {
        let field = format!("member_ids[{index}]");
        let path = member_org_path(&mut tx, *member_id, &field).await?;
        if !caller
            .principal
            .can_member(*member_id, &path, Access::Write)
        {
            return Err(AppError::forbidden().field(field));
        }
        insert_assignment(
            &mut tx,
            id,
            None,
            Some(*member_id),
            input.deadline_at,
            &caller,
        )
        .await?;
    }
    let event = super::courses::course_updated(&mut tx, id).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "learning.course.assign",
        ("course", id.to_string()),
        json!({"org_ids": input.org_ids, "member_ids": input.member_ids, "deadline_at": input.deadline_at}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish([event]);
    tracing::info!(course_id = id, "course assigned");
    let ApiJson(list) = list_assignments(State(state), caller, Path(id)).await?;
    Ok((StatusCode::CREATED, ApiJson(list)))
}

async fn insert_assignment(
    conn: &mut sqlx::AnyConnection,
    course_id: i64,
    org_id: Option<i64>,
    member_id: Option<i64>,
    deadline_at: Option<i64>,
    caller: &Caller,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO learning_assignments (course_id, org_id, member_id, deadline_at, assigned_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(course_id)
    .bind(org_id)
    .bind(member_id)
    .bind(deadline_at)
    .bind(caller.session.account.id)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The target of one role for a year, in credit hours.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleTarget {
    /// `member`, or an officer role such as `secretary`.
    pub role: String,
    pub required_hours: f64,
    pub elective_hours: f64,
}

/// The targets set for a year, one entry per role that has one. Roles
/// without an entry fall back to 50 required hours.
#[utoipa::path(get, path = "/api/learning/targets/{year}", tag = "learning",
    responses((status = 200, body = Vec<RoleTarget>)))]
async fn get_targets(
    State(state): State<AppState>,
    _caller: Caller,
    Path(year): Path<i64>,
) -> AppResult<ApiJson<Vec<RoleTarget>>> {
    let rows = sqlx::query(
        "SELECT role, required_centi, elective_centi FROM learning_targets WHERE year = $1 ORDER BY role",
    )
    .bind(year)
    .fetch_all(&state.db.pool)
    .await?;
    let targets = rows
        .iter()
        .map(|row| {
            Ok(RoleTarget {
                role: row.try_get("role")?,
                required_hours: hours(row.try_get("required_centi")?),
                elective_hours: hours(row.try_get("elective_centi")?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(ApiJson(targets))
}

/// Replaces the targets of a year. Only the system administrator and
/// officers of a top-level organization set them, because they apply to
/// the whole tree.
#[utoipa::path(put, path = "/api/learning/targets/{year}", tag = "learning", request_body = Vec<RoleTarget>,
    responses((status = 200, body = Vec<RoleTarget>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_targets(
    State(state): State<AppState>,
    caller: Caller,
    Path(year): Path<i64>,
    ApiJson(input): ApiJson<Vec<RoleTarget>>,
) -> AppResult<ApiJson<Vec<RoleTarget>>> {
    let top_officer = caller
        .principal
        .officer_paths
        .iter()
        .any(|path| path.matches('/').count() == 2);
    if !caller.principal.is(SystemRole::SystemAdmin) && !top_officer {
        return Err(AppError::forbidden());
    }
    super::check_year(year)?;
    let mut rows = Vec::with_capacity(input.len());
    for (index, target) in input.iter().enumerate() {
        if !TARGET_ROLES.contains(&target.role.as_str()) {
            return Err(AppError::invalid(
                &format!("[{index}].role"),
                format!("未知角色：{}", target.role),
                format!(
                    "unknown role {:?}; use one of {}",
                    target.role,
                    TARGET_ROLES.join(", ")
                ),
            ));
        }
        let required = centi_from_hours(
            &format!("[{index}].required_hours"),
            target.required_hours,
            1000.0,
        )?;
        let elective = centi_from_hours(
            &format!("[{index}].elective_hours"),
            target.elective_hours,
            1000.0,
        )?;
        rows.push((target.role.clone(), required, elective));
    }
    let mut tx = state.db.begin().await?;
    sqlx::query("DELETE FROM learning_targets WHERE year = $1")
        .bind(year)
        .execute(&mut *tx)
        .await?;
    for (role, required, elective) in &rows {
        sqlx::query(
            "INSERT INTO learning_targets (year, role, required_centi, elective_centi) VALUES ($1, $2, $3, $4)",
        )
        .bind(year)
        .bind(role)
        .bind(required)
        .bind(elective)
        .execute(&mut *tx)
        .await?;
    }
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "learning.targets.set",
        ("learning_targets", year.to_string()),
        json!({"targets": input}),
    )
    .await?;
    tx.commit().await?;
    get_targets(State(state), caller, Path(year)).await
}

/// A member's target for a year: the largest target among their roles.
pub async fn target_of(
    conn: &mut sqlx::AnyConnection,
    member_id: i64,
    year: i64,
) -> AppResult<credit::Target> {
    let rows = sqlx::query(
        "SELECT required_centi, elective_centi FROM learning_targets WHERE year = $1 \
         AND (role = 'member' OR role IN (SELECT role FROM org_roles WHERE member_id = $2))",
    )
    .bind(year)
    .bind(member_id)
    .fetch_all(&mut *conn)
    .await?;
    let targets: Vec<credit::Target> = rows
        .iter()
        .map(|row| {
            Ok(credit::Target {
                required_centi: row.try_get("required_centi")?,
                elective_centi: row.try_get("elective_centi")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(credit::combine(&targets))
}
