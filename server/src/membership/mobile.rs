//! HTTP resource `/api/membership/mobile`: mobile members (流动党员) who
//! work away for a period and are registered with a host organization while
//! their relation stays with their own organization.
//!
//! While a registration is active, the host organization's officers have
//! write access to the member's record, so the host records the dues the
//! member pays there. That access is computed from the host's current
//! officers ([`super::mobile_access`]), so an officer appointed after the
//! registration has it too and one who leaves office loses it. The member
//! stays outside the host's subtree, and the meeting rules take a voting
//! body from the organization's subtree, so at the host's meetings the
//! member attends as an invitee without a vote. Three or more of them may
//! form a temporary branch ([`super::temporary`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check_date, check_text, officer_org};
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::org::load_org;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register, list_mobile))
        .routes(routes!(end_registration))
}

/// A member to register with a host organization.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMobile {
    pub member_id: i64,
    pub host_org_id: i64,
    /// `YYYY-MM-DD`
    pub starts_on: String,
    pub reason: String,
}

/// One registration.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Mobile {
    pub id: i64,
    pub member_id: i64,
    pub member_name: String,
    pub home_org_name: String,
    pub host_org_id: i64,
    pub host_org_name: String,
    pub starts_on: String,
    pub reason: String,
    /// `active` or `ended`.
    pub status: String,
    /// The temporary branch the member belongs to, while it is active.
    pub temporary_branch_id: Option<i64>,
}

/// Registers a member of an organization the caller manages with a host
/// organization.
#[utoipa::path(post, path = "/api/membership/mobile", tag = "membership", request_body = NewMobile,
    responses((status = 201, body = Mobile), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewMobile>,
) -> AppResult<(StatusCode, ApiJson<Mobile>)> {
    let starts_on = check_date("starts_on", &input.starts_on)?;
    let reason = check_text("reason", &input.reason, 200)?;
    let mut tx = state.db.begin().await?;
    let (home_org, status): (i64, String) =
        sqlx::query_as("SELECT org_id, status FROM members WHERE id = $1")
            .bind(input.member_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| {
                AppError::not_found(("党员", "member"), input.member_id).field("member_id")
            })?;
    super::reject_moved_out(&status)?;
    officer_org(
        &state,
        &caller,
        &mut tx,
        home_org,
        "member_id",
        Access::Write,
    )
    .await?;
    let host = load_org(&mut tx, input.host_org_id)
        .await
        .map_err(|e| e.field("host_org_id"))?;
    let home_path = super::pipeline::org_path(&mut tx, home_org).await?;
    if host.path.starts_with(&home_path) || home_path.starts_with(&host.path) {
        return Err(AppError::invalid(
            "host_org_id",
            "流入组织不能是党员所在组织或其上下级",
            "the host must not be the member's organization, its ancestor or its descendant",
        ));
    }
    let active: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM membership_mobile WHERE member_id = $1 AND status = 'active'",
    )
    .bind(input.member_id)
    .fetch_one(&mut *tx)
    .await?;
    if active > 0 {
        return Err(AppError::conflict(
            "mobile_registered",
            "该党员已登记为流动党员",
            "this member is already registered with a host organization",
        )
        .field("member_id"));
    }

    let id: i64 = sqlx::query_scalar(
        "INSERT INTO membership_mobile (member_id, host_org_id, starts_on, reason, status, grantees, \
         created_by, created_at) VALUES ($1, $2, $3, $4, 'active', '[]', $5, $6) RETURNING id",
    )
    .bind(input.member_id)
    .bind(host.id)
    .bind(starts_on.to_string())
    .bind(&reason)
    .bind(caller.session.account.id)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "mobile.register",
        ("member", input.member_id.to_string()),
        json!({"registration": id, "host_org_id": host.id}),
    )
    .await?;
    let mobile = load_mobile(&mut tx, id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, ApiJson(mobile)))
}

/// Lists the active registrations from or to the organizations the caller
/// manages.
#[utoipa::path(get, path = "/api/membership/mobile", tag = "membership",
    responses((status = 200, body = Vec<Mobile>)))]
async fn list_mobile(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<ApiJson<Vec<Mobile>>> {
    let mut conn = state.db.pool.acquire().await?;
    let rows = sqlx::query(
        "SELECT g.id, home.path AS home_path, host.path AS host_path FROM membership_mobile g \
         JOIN members m ON m.id = g.member_id JOIN orgs home ON home.id = m.org_id \
         JOIN orgs host ON host.id = g.host_org_id WHERE g.status = 'active' ORDER BY g.id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut visible = Vec::new();
    for row in rows {
        let home: String = row.try_get("home_path")?;
        let host: String = row.try_get("host_path")?;
        let principal = &caller.principal;
        if principal.can_org(&home, Access::Write) || principal.can_org(&host, Access::Write) {
            visible.push(load_mobile(&mut conn, row.try_get("id")?).await?);
        }
    }
    Ok(ApiJson(visible))
}

/// Ends a registration when the member comes home, which also takes them
/// out of a temporary branch. Registrations stored before host access was
/// computed list the grants they gave in `grantees`; those are removed.
#[utoipa::path(post, path = "/api/membership/mobile/{id}/end", tag = "membership",
    params(("id" = i64, Path, description = "Registration id")),
    responses((status = 200, body = Mobile), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn end_registration(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<Mobile>> {
    let mut tx = state.db.begin().await?;
    let row = sqlx::query(
        "SELECT g.member_id, g.status, g.grantees, m.org_id FROM membership_mobile g \
         JOIN members m ON m.id = g.member_id WHERE g.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| AppError::not_found(("流动党员登记", "registration"), id))?;
    let member_id: i64 = row.try_get("member_id")?;
    officer_org(
        &state,
        &caller,
        &mut tx,
        row.try_get("org_id")?,
        "id",
        Access::Write,
    )
    .await?;
    if row.try_get::<String, _>("status")? != "active" {
        return Err(AppError::conflict(
            "mobile_ended",
            "该登记已经结束",
            "this registration has already ended",
        ));
    }
    let grantees: Vec<i64> =
        serde_json::from_str(&row.try_get::<String, _>("grantees")?).unwrap_or_default();
    for officer in &grantees {
        sqlx::query(
            "DELETE FROM grants WHERE member_id = $1 AND object_type = 'member' AND object_id = $2 \
             AND access = 'write'",
        )
        .bind(officer)
        .bind(member_id)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE membership_mobile SET status = 'ended', ended_at = $1, temporary_branch_id = NULL \
         WHERE id = $2",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "mobile.end",
        ("member", member_id.to_string()),
        json!({"registration": id, "revoked": grantees}),
    )
    .await?;
    let mobile = load_mobile(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiJson(mobile))
}

async fn load_mobile(conn: &mut AnyConnection, id: i64) -> AppResult<Mobile> {
    let row = sqlx::query(
        "SELECT g.id, g.member_id, m.name AS member_name, home.name AS home_org_name, g.host_org_id, \
         host.name AS host_org_name, g.starts_on, g.reason, g.status, g.temporary_branch_id \
         FROM membership_mobile g \
         JOIN members m ON m.id = g.member_id JOIN orgs home ON home.id = m.org_id \
         JOIN orgs host ON host.id = g.host_org_id WHERE g.id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Mobile {
        id,
        member_id: row.try_get("member_id")?,
        member_name: row.try_get("member_name")?,
        home_org_name: row.try_get("home_org_name")?,
        host_org_id: row.try_get("host_org_id")?,
        host_org_name: row.try_get("host_org_name")?,
        starts_on: row.try_get("starts_on")?,
        reason: row.try_get("reason")?,
        status: row.try_get("status")?,
        temporary_branch_id: row.try_get("temporary_branch_id")?,
    })
}
