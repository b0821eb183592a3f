//! HTTP resource `/api/membership/temporary-branches`: temporary branches
//! (临时党支部) formed by a host organization from three or more of the
//! mobile members registered with it.
//!
//! A temporary branch is a child organization of the host with kind
//! `temporary_branch`. Its mobile members keep their relation at home and
//! belong to the branch for meetings and study; its 负责人 has the
//! secretary role there. It admits no members, collects no dues and holds
//! no elections ([`TemporaryBranchLimit`]). It is dissolved by hand or by
//! the membership sweep on its end date. Hub event:
//! `membership.temporary_branch` on `org:HOST`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{officer_org, today};
use crate::audit::{self, Actor};
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::hub::protocol::Event;
use crate::hub::store as events;
use crate::org::{OrgKind, OrgRole};
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(form_branch, list_branches))
        .routes(routes!(dissolve_branch))
}

/// Minimum number of mobile members that form a temporary branch.
pub const MIN_MEMBERS: usize = 3;

/// A temporary branch to form under a host organization.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemporaryBranch {
    pub host_org_id: i64,
    pub name: String,
    /// Mobile members actively registered with the host, at least three.
    pub member_ids: Vec<i64>,
    /// The 负责人: one of `member_ids`.
    pub leader_member_id: i64,
    /// The day the branch is dissolved, `YYYY-MM-DD`, after today.
    pub ends_on: String,
}

/// One temporary branch with its members.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemporaryBranch {
    pub org_id: i64,
    pub name: String,
    pub host_org_id: i64,
    pub host_org_name: String,
    pub leader_member_id: i64,
    pub leader_name: String,
    pub ends_on: String,
    /// `active` or `dissolved`.
    pub status: String,
    pub members: Vec<TemporaryBranchMember>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemporaryBranchMember {
    pub member_id: i64,
    pub name: String,
    pub home_org_name: String,
}

/// An action that a temporary branch may not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemporaryBranchLimit {
    /// Record people or steps of the development pipeline.
    Admit,
    /// Collect dues.
    Dues,
    /// Hold an election.
    Election,
}

/// Rejects `limit` when the organization is a temporary branch.
pub async fn reject_in_temporary_branch(
    conn: &mut AnyConnection,
    org_id: i64,
    limit: TemporaryBranchLimit,
) -> AppResult<()> {
    let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM orgs WHERE id = $1")
        .bind(org_id)
        .fetch_optional(&mut *conn)
        .await?;
    if kind.as_deref() == Some(OrgKind::TemporaryBranch.as_str()) {
        return Err(temporary_branch_error(limit));
    }
    Ok(())
}

/// Builds the 409 error for an action that a temporary branch may not take.
pub fn temporary_branch_error(limit: TemporaryBranchLimit) -> AppError {
    let (zh, en) = match limit {
        TemporaryBranchLimit::Admit => (
            "临时党支部不能发展党员，请由流动党员所在的党组织办理",
            "a temporary branch does not admit members; the members' own organizations do",
        ),
        TemporaryBranchLimit::Dues => (
            "临时党支部不收缴党费，流动党员的党费由所在党组织或流入地党组织收缴",
            "a temporary branch does not collect dues; the member's own or host organization does",
        ),
        TemporaryBranchLimit::Election => (
            "临时党支部不能进行选举",
            "a temporary branch does not hold elections",
        ),
    };
    AppError::conflict("temporary_branch_limit", zh, en)
}

fn check_ends_on(value: &str) -> AppResult<NaiveDate> {
    let date = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| {
        AppError::invalid(
            "ends_on",
            format!("日期格式应为 YYYY-MM-DD：{value}"),
            format!("date must be YYYY-MM-DD: {value}"),
        )
    })?;
    if date <= today() {
        return Err(AppError::invalid(
            "ends_on",
            format!("结束日期须晚于今天：{value}"),
            format!("the end date must be after today: {value}"),
        ));
    }
    Ok(date)
}

/// Forms a temporary branch under the host (an officer of the host).
#[utoipa::path(post, path = "/api/membership/temporary-branches", tag = "membership",
    request_body = NewTemporaryBranch,
    responses((status = 201, body = TemporaryBranch), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn form_branch(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewTemporaryBranch>,
) -> AppResult<(StatusCode, ApiJson<TemporaryBranch>)> {
    let name = crate::org::check_name(&input.name)?;
    let ends_on = check_ends_on(&input.ends_on)?;
    let mut member_ids = input.member_ids.clone();
    member_ids.sort_unstable();
    member_ids.dedup();
    if member_ids.len() < MIN_MEMBERS {
        return Err(AppError::invalid(
            "member_ids",
            format!("成立临时党支部须有 {MIN_MEMBERS} 名以上流动党员"),
            format!("a temporary branch needs at least {MIN_MEMBERS} mobile members"),
        ));
    }
    if !member_ids.contains(&input.leader_member_id) {
        return Err(AppError::invalid(
            "leader_member_id",
            "负责人须为临时党支部的流动党员之一",
            "the leader must be one of the branch's mobile members",
        ));
    }

    let mut tx = state.db.begin().await?;
    let host = officer_org(
        &state,
        &caller,
        &mut tx,
        input.host_org_id,
        "host_org_id",
        Access::Write,
    )
    .await?;
    if matches!(host.kind, OrgKind::Group | OrgKind::TemporaryBranch) {
        return Err(AppError::invalid(
            "host_org_id",
            format!("{}下不能成立临时党支部", host.kind.zh()),
            format!("a {} cannot hold a temporary branch", host.kind.as_str()),
        ));
    }
    for (index, member_id) in input.member_ids.iter().enumerate() {
        check_registered(
            &mut tx,
            host.id,
            *member_id,
            &format!("member_ids[{index}]"),
        )
        .await?;
    }

    let now = now_ms();
    let org_id: i64 = sqlx::query_scalar(
        "INSERT INTO orgs (parent_id, name, kind, path, sort_order, created_at, updated_at) \
         VALUES ($1, $2, $3, '', 0, $4, $4) RETURNING id",
    )
    .bind(host.id)
    .bind(&name)
    .bind(OrgKind::TemporaryBranch.as_str())
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE orgs SET path = $1 WHERE id = $2")
        .bind(format!("{}{org_id}/", host.path))
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO membership_temporary_branches (org_id, host_org_id, leader_member_id, ends_on, \
         status, created_by, created_at) VALUES ($1, $2, $3, $4, 'active', $5, $6)",
    )
    .bind(org_id)
    .bind(host.id)
    .bind(input.leader_member_id)
    .bind(ends_on.to_string())
    .bind(caller.session.account.id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for member_id in &member_ids {
        sqlx::query(
            "UPDATE membership_mobile SET temporary_branch_id = $1 \
             WHERE member_id = $2 AND host_org_id = $3 AND status = 'active'",
        )
        .bind(org_id)
        .bind(member_id)
        .bind(host.id)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO org_roles (org_id, member_id, role, assigned_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(org_id)
    .bind(input.leader_member_id)
    .bind(OrgRole::Secretary.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "membership.temporary_branch.form",
        ("org", org_id.to_string()),
        json!({"host_org_id": host.id, "name": name, "member_ids": member_ids,
            "leader_member_id": input.leader_member_id, "ends_on": ends_on.to_string()}),
    )
    .await?;
    let event = branch_event(&mut tx, host.id, org_id, "active").await?;
    let branch = load_branch(&mut tx, org_id).await?;
    tx.commit().await?;
    state.hub.publish(vec![event]);
    tracing::info!(org_id, host_org_id = host.id, "temporary branch formed");
    Ok((StatusCode::CREATED, ApiJson(branch)))
}

/// Checks that the member is actively registered with the host and not yet
/// in another active temporary branch.
async fn check_registered(
    conn: &mut AnyConnection,
    host_org_id: i64,
    member_id: i64,
    field: &str,
) -> AppResult<()> {
    let row = sqlx::query(
        "SELECT temporary_branch_id FROM membership_mobile \
         WHERE member_id = $1 AND host_org_id = $2 AND status = 'active'",
    )
    .bind(member_id)
    .bind(host_org_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Err(AppError::invalid(
            field,
            format!("党员 {member_id} 未在本组织登记为流动党员"),
            format!("member {member_id} is not registered as a mobile member here"),
        ));
    };
    if row
        .try_get::<Option<i64>, _>("temporary_branch_id")?
        .is_some()
    {
        return Err(AppError::conflict(
            "in_temporary_branch",
            format!("党员 {member_id} 已在一个临时党支部中"),
            format!("member {member_id} already belongs to a temporary branch"),
        )
        .field(field));
    }
    Ok(())
}

/// Lists the temporary branches under the organizations the caller manages
/// and those the caller leads.
#[utoipa::path(get, path = "/api/membership/temporary-branches", tag = "membership",
    responses((status = 200, body = Vec<TemporaryBranch>)))]
async fn list_branches(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<ApiJson<Vec<TemporaryBranch>>> {
    let mut conn = state.db.pool.acquire().await?;
    let rows = sqlx::query(
        "SELECT t.org_id, o.path FROM membership_temporary_branches t JOIN orgs o ON o.id = t.org_id \
         ORDER BY t.org_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut visible = Vec::new();
    for row in rows {
        let path: String = row.try_get("path")?;
        if caller.principal.can_org(&path, Access::Write) {
            visible.push(load_branch(&mut conn, row.try_get("org_id")?).await?);
        }
    }
    Ok(ApiJson(visible))
}

/// Dissolves a temporary branch before its end date (an officer of the
/// host).
#[utoipa::path(post, path = "/api/membership/temporary-branches/{id}/dissolve", tag = "membership",
    params(("id" = i64, Path, description = "Organization id of the temporary branch")),
    responses((status = 200, body = TemporaryBranch), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn dissolve_branch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<TemporaryBranch>> {
    let mut tx = state.db.begin().await?;
    let branch = load_branch(&mut tx, id).await?;
    officer_org(
        &state,
        &caller,
        &mut tx,
        branch.host_org_id,
        "id",
        Access::Write,
    )
    .await?;

    if branch.status != "active" {
        return Err(AppError::conflict(
            "temporary_branch_dissolved",
            "该临时党支部已经撤销",
            "this temporary branch is already dissolved",
        ));
    }
    let event = dissolve(
        &mut tx,
        &state,
        &caller.session.actor(),
        &branch,
        Some(caller.session.account.id),
    )
    .await?;
    let branch = load_branch(&mut tx, id).await?;
    tx.commit().await?;
    state.hub.publish(vec![event]);
    tracing::info!(org_id = id, "temporary branch dissolved by hand");
    Ok(ApiJson(branch))
}

/// Marks the branch dissolved, releases its members and removes its roles.
async fn dissolve(
    conn: &mut AnyConnection,
    state: &AppState,
    actor: &Actor,
    branch: &TemporaryBranch,
    dissolved_by: Option<i64>,
) -> AppResult<Event> {
    sqlx::query(
        "UPDATE membership_temporary_branches SET status = 'dissolved', dissolved_by = $1, \
         dissolved_at = $2 WHERE org_id = $3",
    )
    .bind(dissolved_by)
    .bind(now_ms())
    .bind(branch.org_id)
    .execute(&mut *conn)
    .await?;

    sqlx::query(
        "UPDATE membership_mobile SET temporary_branch_id = NULL WHERE temporary_branch_id = $1",
    )
    .bind(branch.org_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM org_roles WHERE org_id = $1")
        .bind(branch.org_id)
        .execute(&mut *conn)
        .await?;

    audit::append(
        conn,
        &state.audit_key,
        actor,
        "membership.temporary_branch.dissolve",
        ("org", branch.org_id.to_string()),
        json!({"host_org_id": branch.host_org_id, "ends_on": branch.ends_on,
            "member_ids": branch.members.iter().map(|m| m.member_id).collect::<Vec<_>>()}),
    )
    .await?;
    branch_event(conn, branch.host_org_id, branch.org_id, "dissolved").await
}

/// Dissolves every active temporary branch whose end date has come and
/// returns how many.
pub async fn dissolve_ended(state: &AppState, today: NaiveDate) -> AppResult<usize> {
    let due: Vec<i64> = sqlx::query_scalar(
        "SELECT org_id FROM membership_temporary_branches \
         WHERE status = 'active' AND ends_on <= $1 ORDER BY org_id",
    )
    .bind(today.to_string())
    .fetch_all(&state.db.pool)
    .await?;
    let mut dissolved = 0;
    for org_id in due {
        let mut tx = state.db.begin().await?;
        let branch = load_branch(&mut tx, org_id).await?;
        // Another node may have dissolved it since the list was read.
        if branch.status != "active" {
            continue;
        }
        let event = dissolve(&mut tx, state, &Actor::system(), &branch, None).await?;
        tx.commit().await?;
        state.hub.publish(vec![event]);
        tracing::info!(org_id, ends_on = %branch.ends_on, "temporary branch dissolved at its end date");
        dissolved += 1;
    }
    Ok(dissolved)
}

async fn branch_event(
    conn: &mut AnyConnection,
    host_org_id: i64,
    org_id: i64,
    status: &str,
) -> AppResult<Event> {
    Ok(events::append(
        conn,
        &format!("org:{host_org_id}"),
        "membership.temporary_branch",
        json!({"org_id": org_id, "status": status}),
    )
    .await?)
}

/// Loads one temporary branch with its current members, or returns 404.
async fn load_branch(conn: &mut AnyConnection, org_id: i64) -> AppResult<TemporaryBranch> {
    let row = sqlx::query(
        "SELECT t.org_id, o.name, t.host_org_id, host.name AS host_org_name, t.leader_member_id, \
         l.name AS leader_name, t.ends_on, t.status FROM membership_temporary_branches t \
         JOIN orgs o ON o.id = t.org_id JOIN orgs host ON host.id = t.host_org_id \
         JOIN members l ON l.id = t.leader_member_id WHERE t.org_id = $1",
    )
    .bind(org_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::not_found(("临时党支部", "temporary branch"), org_id))?;

    let members = sqlx::query(
        "SELECT m.id, m.name, home.name AS home_org_name FROM membership_mobile g \
         JOIN members m ON m.id = g.member_id JOIN orgs home ON home.id = m.org_id \
         WHERE g.temporary_branch_id = $1 AND g.status = 'active' ORDER BY m.id",
    )
    .bind(org_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        Ok(TemporaryBranchMember {
            member_id: row.try_get("id")?,
            name: row.try_get("name")?,
            home_org_name: row.try_get("home_org_name")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    Ok(TemporaryBranch {
        org_id,
        name: row.try_get("name")?,
        host_org_id: row.try_get("host_org_id")?,
        host_org_name: row.try_get("host_org_name")?,
        leader_member_id: row.try_get("leader_member_id")?,
        leader_name: row.try_get("leader_name")?,
        ends_on: row.try_get("ends_on")?,
        status: row.try_get("status")?,
        members,
    })
}

/// Checks whether the officer `officer_id` reaches the mobile member `member_id`
/// through an active registration: officers of the host organization,
/// whenever they were appointed, get `write`, and officers of the member's
/// temporary branch get `read`.
pub async fn mobile_access(
    conn: &mut AnyConnection,
    officer_id: i64,
    member_id: i64,
    access: Access,
) -> AppResult<bool> {
    let roles = match access {
        Access::Write => "r.org_id = g.host_org_id",
        Access::Read => "(r.org_id = g.host_org_id OR r.org_id = g.temporary_branch_id)",
    };
    let count: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM membership_mobile g JOIN org_roles r ON r.member_id = $1 AND {roles} \
         WHERE g.member_id = $2 AND g.status = 'active'"
    ))
    .bind(officer_id)
    .bind(member_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(count > 0)
}

/// Checks whether `officer_id` leads the member's active temporary branch.
pub async fn leads_members_branch(
    conn: &mut AnyConnection,
    officer_id: i64,
    member_id: i64,
) -> AppResult<bool> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM membership_mobile g JOIN org_roles r ON r.org_id = g.temporary_branch_id \
         WHERE r.member_id = $1 AND g.member_id = $2 AND g.status = 'active'",
    )
    .bind(officer_id)
    .bind(member_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(count > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_branch_never_nests() {
        assert!(!OrgKind::TemporaryBranch.may_sit_under(Some(OrgKind::Committee)));
        assert!(!OrgKind::Group.may_sit_under(Some(OrgKind::TemporaryBranch)));
        assert_eq!(
            OrgKind::parse("temporary_branch"),
            Some(OrgKind::TemporaryBranch)
        );
    }

    #[test]
    fn limits_name_the_rule() {
        let error = temporary_branch_error(TemporaryBranchLimit::Election);
        assert_eq!(error.code, "temporary_branch_limit");
    }
}
