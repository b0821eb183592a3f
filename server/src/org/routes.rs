//! HTTP resource `/api/orgs`: the tree, one organization, create, rename,
//! move, dissolve, and the organization's officers.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tree::{ORG_COLUMNS, check_name, check_nesting};
use super::{Org, OrgKind, OrgRole, load_org};
use crate::audit;
use crate::auth::SystemRole;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orgs, create_org))
        .routes(routes!(search_orgs))
        .routes(routes!(get_org, update_org, dissolve_org))
        .routes(routes!(move_org))
        .routes(routes!(list_roles))
        .routes(routes!(assign_role, remove_role))
}

/// An organization as the caller sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OrgView {
    #[serde(flatten)]
    pub org: Org,
    /// Whether the caller may change this organization.
    pub can_write: bool,
}

fn view(caller: &Caller, org: Org) -> OrgView {
    let can_write = caller.principal.can_org(&org.path, Access::Write);
    OrgView { org, can_write }
}

/// Lists every organization the caller may read, parents before children.
#[utoipa::path(get, path = "/api/orgs", tag = "orgs",
    responses((status = 200, body = Vec<OrgView>), (status = 401, body = ErrorBody)))]
async fn list_orgs(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<ApiJson<Vec<OrgView>>> {
    // NOTE: the whole tree is read and filtered here; a province has
    // thousands of organizations, which this handles in a few milliseconds.
    let rows = sqlx::query(&format!(
        "SELECT {ORG_COLUMNS} FROM orgs o ORDER BY length(o.path), o.sort_order, o.id"
    ))
    .fetch_all(&state.db.pool)
    .await?;
    let mut visible = Vec::new();
    for row in &rows {
        let org = Org::from_row(row)?;
        let readable = caller.principal.can_org(&org.path, Access::Read)
            || caller
                .principal
                .has_grant(&state.db, ("org", org.id), Access::Read)
                .await?;
        if readable {
            visible.push(view(&caller, org));
        }
    }
    Ok(ApiJson(visible))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct OrgSearchQuery {
    /// Part of an organization's name; 1 to 50 characters.
    q: String,
    /// Most results, 1 to 20. [default: 10]
    limit: Option<i64>,
}

/// One organization in the directory: its name and its parent's name.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OrgDirectoryEntry {
    pub id: i64,
    pub name: String,
    pub parent_name: Option<String>,
}

/// Searches organizations by name, for naming any organization of the
/// deployment as a recipient, for example the 抄送机关 of a document. Any
/// signed-in account may search; entries carry only names.
#[utoipa::path(get, path = "/api/orgs/search", tag = "orgs", params(OrgSearchQuery),
    responses((status = 200, body = Vec<OrgDirectoryEntry>), (status = 422, body = ErrorBody)))]
async fn search_orgs(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<OrgSearchQuery>,
) -> AppResult<ApiJson<Vec<OrgDirectoryEntry>>> {
    let q = query.q.trim();
    if q.is_empty() || q.chars().count() > 50 {
        return Err(AppError::invalid(
            "q",
            "请输入 1 到 50 个字的组织名称",
            "give 1 to 50 characters of an organization's name",
        ));
    }
    let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT o.id, o.name, p.name FROM orgs o LEFT JOIN orgs p ON p.id = o.parent_id \
         WHERE o.name LIKE $1 ESCAPE '\\' ORDER BY length(o.name), o.id LIMIT $2",
    )
    .bind(format!("%{}%", crate::db::escape_like(q)))
    .bind(query.limit.unwrap_or(10).clamp(1, 20))
    .fetch_all(&state.db.pool)
    .await?;
    Ok(ApiJson(
        rows.into_iter()
            .map(|(id, name, parent_name)| OrgDirectoryEntry {
                id,
                name,
                parent_name,
            })
            .collect(),
    ))
}

/// Reads one organization.
#[utoipa::path(get, path = "/api/orgs/{id}", tag = "orgs",
    params(("id" = i64, Path, description = "Organization id")),
    responses((status = 200, body = OrgView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<OrgView>> {
    let org = load_org(&mut *state.db.pool.acquire().await?, id).await?;
    let allowed = caller.principal.can_org(&org.path, Access::Read);
    caller
        .principal
        .check(&state.db, allowed, ("org", id), Access::Read)
        .await?;
    Ok(ApiJson(view(&caller, org)))
}

/// A new organization.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// Parent organization; omit for a new root (system administrator only).
    pub parent_id: Option<i64>,
    pub name: String,
    pub kind: OrgKind,
    #[serde(default)]
    pub sort_order: i64,
}

/// Creates an organization under a parent the caller manages.
#[utoipa::path(post, path = "/api/orgs", tag = "orgs", request_body = NewOrg,
    responses((status = 201, body = OrgView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_org(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewOrg>,
) -> AppResult<(StatusCode, ApiJson<OrgView>)> {
    let name = check_name(&input.name)?;
    let mut tx = state.db.begin().await?;
    let parent = match input.parent_id {
        Some(parent_id) => Some(
            load_org(&mut tx, parent_id)
                .await
                .map_err(|e| e.field("parent_id"))?,
        ),
        None => None,
    };
    let allowed = match &parent {
        Some(parent) => caller.principal.can_org(&parent.path, Access::Write),
        None => caller.session.has_role(SystemRole::SystemAdmin),
    };
    if !allowed {
        return Err(AppError::forbidden());
    }
    check_nesting(input.kind, parent.as_ref().map(|p| p.kind))?;
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO orgs (parent_id, name, kind, path, sort_order, created_at, updated_at) \
         VALUES ($1, $2, $3, '', $4, $5, $5) RETURNING id",
    )
    .bind(input.parent_id)
    .bind(&name)
    .bind(input.kind.as_str())
    .bind(input.sort_order)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let parent_path = parent.as_ref().map_or("/", |p| p.path.as_str());
    sqlx::query("UPDATE orgs SET path = $1 WHERE id = $2")
        .bind(format!("{parent_path}{id}/"))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "org.create",
        ("org", id.to_string()),
        serde_json::json!({"name": name, "kind": input.kind, "parent_id": input.parent_id}),
    )
    .await?;
    let org = load_org(&mut tx, id).await?;
    tx.commit().await?;
    tracing::info!(org_id = id, "organization created");
    Ok((StatusCode::CREATED, ApiJson(view(&caller, org))))
}

/// Changes to an organization; omitted fields stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgUpdate {
    pub name: Option<String>,
    pub kind: Option<OrgKind>,
    pub sort_order: Option<i64>,
}

/// Renames an organization or changes its kind or order.
#[utoipa::path(patch, path = "/api/orgs/{id}", tag = "orgs", request_body = OrgUpdate,
    params(("id" = i64, Path, description = "Organization id")),
    responses((status = 200, body = OrgView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<OrgUpdate>,
) -> AppResult<ApiJson<OrgView>> {
    let mut tx = state.db.begin().await?;
    let org = load_org(&mut tx, id).await?;
    let allowed = caller.principal.can_org(&org.path, Access::Write);
    caller
        .principal
        .check(&state.db, allowed, ("org", id), Access::Write)
        .await?;
    let name = match &input.name {
        Some(name) => check_name(name)?,
        None => org.name.clone(),
    };
    let kind = input.kind.unwrap_or(org.kind);
    if kind != org.kind {
        check_kind_change(&mut tx, &org, kind).await?;
    }
    let sort_order = input.sort_order.unwrap_or(org.sort_order);
    sqlx::query(
        "UPDATE orgs SET name = $1, kind = $2, sort_order = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(&name)
    .bind(kind.as_str())
    .bind(sort_order)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "org.update",
        ("org", id.to_string()),
        serde_json::json!({"from": {"name": org.name, "kind": org.kind}, "to": {"name": name, "kind": kind}}),
    )
    .await?;
    let org = load_org(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiJson(view(&caller, org)))
}

/// A new kind must fit under the parent and above every child.
async fn check_kind_change(
    conn: &mut sqlx::AnyConnection,
    org: &Org,
    kind: OrgKind,
) -> AppResult<()> {
    if org.kind == OrgKind::TemporaryBranch && kind != org.kind {
        return Err(AppError::invalid(
            "kind",
            "临时党支部不能改为其他类型的组织",
            "a temporary branch cannot become another kind of organization",
        ));
    }
    let parent_kind = match org.parent_id {
        Some(parent_id) => Some(load_org(conn, parent_id).await?.kind),
        None => None,
    };
    check_nesting(kind, parent_kind)?;
    let child_kinds: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT kind FROM orgs WHERE parent_id = $1")
            .bind(org.id)
            .fetch_all(&mut *conn)
            .await?;
    for child in child_kinds.iter().filter_map(|k| OrgKind::parse(k)) {
        if !child.may_sit_under(Some(kind)) {
            return Err(AppError::invalid(
                "kind",
                format!("该组织下有{}，不能改为{}", child.zh(), kind.zh()),
                format!(
                    "it has a {} below it, so it cannot become a {}",
                    child.as_str(),
                    kind.as_str()
                ),
            ));
        }
    }
    Ok(())
}

/// The new parent of a moved subtree.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveOrg {
    pub parent_id: i64,
}

/// Moves an organization and its whole subtree under another parent.
#[utoipa::path(post, path = "/api/orgs/{id}/move", tag = "orgs", request_body = MoveOrg,
    params(("id" = i64, Path, description = "Organization id")),
    responses((status = 200, body = OrgView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn move_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<MoveOrg>,
) -> AppResult<ApiJson<OrgView>> {
    let mut tx = state.db.begin().await?;
    let org = load_org(&mut tx, id).await?;
    let target = load_org(&mut tx, input.parent_id)
        .await
        .map_err(|e| e.field("parent_id"))?;
    let old_parent_path = match org.parent_id {
        Some(parent_id) => Some(load_org(&mut tx, parent_id).await?.path),
        None => None,
    };
    let may_take_out = match &old_parent_path {
        Some(path) => caller.principal.can_org(path, Access::Write),
        None => caller.session.has_role(SystemRole::SystemAdmin),
    };
    if !may_take_out || !caller.principal.can_org(&target.path, Access::Write) {
        return Err(AppError::forbidden());
    }
    if target.path.starts_with(&org.path) {
        return Err(AppError::conflict(
            "org_cycle",
            "不能把组织移到它自身或它的下级组织之下",
            "an organization cannot move under itself or one of its descendants",
        )
        .field("parent_id"));
    }
    check_nesting(org.kind, Some(target.kind))?;
    let new_path = format!("{}{}/", target.path, org.id);
    // PostgreSQL has SUBSTR(text, integer) only, and binds arrive as BIGINT.
    sqlx::query(
        "UPDATE orgs SET path = $1 || SUBSTR(path, CAST($2 AS INTEGER)) WHERE path LIKE $3",
    )
    .bind(&new_path)
    .bind(org.path.len() as i64 + 1)
    .bind(format!("{}%", org.path))
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE orgs SET parent_id = $1, updated_at = $2 WHERE id = $3")
        .bind(target.id)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "org.move",
        ("org", id.to_string()),
        serde_json::json!({"from_parent": org.parent_id, "to_parent": target.id}),
    )
    .await?;
    let org = load_org(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiJson(view(&caller, org)))
}

/// Dissolves an empty organization: no child organizations and no members.
#[utoipa::path(delete, path = "/api/orgs/{id}", tag = "orgs",
    params(("id" = i64, Path, description = "Organization id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn dissolve_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let org = load_org(&mut tx, id).await?;
    let allowed = match org.parent_id {
        Some(parent_id) => {
            let parent = load_org(&mut tx, parent_id).await?;
            caller.principal.can_org(&parent.path, Access::Write)
        }
        None => caller.session.has_role(SystemRole::SystemAdmin),
    };
    if !allowed {
        return Err(AppError::forbidden());
    }
    if org.kind == OrgKind::TemporaryBranch {
        return Err(AppError::conflict(
            "temporary_branch",
            "临时党支部请在“党员工作 → 组织关系转接”中撤销",
            "dissolve a temporary branch through the membership API",
        ));
    }
    let children: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orgs WHERE parent_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    // Records whose relation moved out are not in member_count but still
    // refer to the organization.
    let members: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE org_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    if children > 0 || members > 0 {
        return Err(AppError::conflict(
            "org_not_empty",
            format!("只能撤销空组织：该组织还有 {children} 个下级组织、{members} 名党员"),
            format!(
                "only an empty organization can be dissolved: it still has {children} child organizations and {members} members"
            ),
        ));
    }
    for statement in [
        "DELETE FROM org_roles WHERE org_id = $1",
        "DELETE FROM grants WHERE object_type = 'org' AND object_id = $1",
        "DELETE FROM orgs WHERE id = $1",
    ] {
        sqlx::query(statement).bind(id).execute(&mut *tx).await?;
    }
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "org.dissolve",
        ("org", id.to_string()),
        serde_json::json!({"name": org.name}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One officer of an organization.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RoleHolder {
    pub member_id: i64,
    pub name: String,
    pub role: OrgRole,
    /// The organization the member formally belongs to.
    pub member_org_id: i64,
}

/// Lists the officers of an organization.
#[utoipa::path(get, path = "/api/orgs/{id}/roles", tag = "orgs",
    params(("id" = i64, Path, description = "Organization id")),
    responses((status = 200, body = Vec<RoleHolder>), (status = 403, body = ErrorBody)))]
async fn list_roles(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<Vec<RoleHolder>>> {
    let org = load_org(&mut *state.db.pool.acquire().await?, id).await?;
    let allowed = caller.principal.can_org(&org.path, Access::Read);
    caller
        .principal
        .check(&state.db, allowed, ("org", id), Access::Read)
        .await?;
    let rows = sqlx::query(
        "SELECT r.member_id, m.name, r.role, m.org_id FROM org_roles r \
         JOIN members m ON m.id = r.member_id WHERE r.org_id = $1 ORDER BY r.assigned_at",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    let mut holders: Vec<RoleHolder> = rows
        .iter()
        .map(|row| {
            let role: String = row.try_get("role")?;
            Ok(RoleHolder {
                member_id: row.try_get("member_id")?,
                name: row.try_get("name")?,
                role: OrgRole::parse(&role).unwrap_or(OrgRole::CommitteeMember),
                member_org_id: row.try_get("org_id")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    holders.sort_by_key(|holder| holder.role as u8);
    Ok(ApiJson(holders))
}

/// The role to give.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleAssignment {
    pub role: OrgRole,
}

/// Gives a member an officer role in the organization, replacing any role
/// the member held there. An organization has at most one 书记.
#[utoipa::path(put, path = "/api/orgs/{id}/roles/{member_id}", tag = "orgs", request_body = RoleAssignment,
    params(("id" = i64, Path, description = "Organization id"), ("member_id" = i64, Path, description = "Member id")),
    responses((status = 200, body = Vec<RoleHolder>), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn assign_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, member_id)): Path<(i64, i64)>,
    ApiJson(input): ApiJson<RoleAssignment>,
) -> AppResult<ApiJson<Vec<RoleHolder>>> {
    let mut tx = state.db.begin().await?;
    let org = load_org(&mut tx, id).await?;
    if !caller.principal.can_assign_role(&org.path, member_id) {
        return Err(AppError::forbidden());
    }
    let member_path: Option<String> = sqlx::query_scalar(
        "SELECT o.path FROM members m JOIN orgs o ON o.id = m.org_id WHERE m.id = $1",
    )
    .bind(member_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(member_path) = member_path else {
        return Err(AppError::not_found(("党员", "member"), member_id).field("member_id"));
    };
    // An officer may appoint only people they can see: otherwise a
    // secretary could hand their subtree's personal data to an outsider.
    let readable = caller.principal.is(SystemRole::SecurityAdmin)
        || caller
            .principal
            .can_member(member_id, &member_path, Access::Read)
        || caller
            .principal
            .has_grant(&state.db, ("member", member_id), Access::Read)
            .await?;
    if !readable {
        return Err(AppError::forbidden().field("member_id"));
    }
    if input.role == OrgRole::Secretary {
        let other: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM org_roles WHERE org_id = $1 AND role = 'secretary' AND member_id <> $2",
        )
        .bind(id)
        .bind(member_id)
        .fetch_one(&mut *tx)
        .await?;
        if other > 0 {
            return Err(AppError::conflict(
                "secretary_exists",
                "该组织已有书记，请先免去现任书记",
                "the organization already has a secretary; remove the current one first",
            )
            .field("role"));
        }
    }
    sqlx::query(
        "INSERT INTO org_roles (org_id, member_id, role, assigned_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, member_id) DO UPDATE SET role = excluded.role, assigned_at = excluded.assigned_at",
    )
    .bind(id)
    .bind(member_id)
    .bind(input.role.as_str())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "org.role.assign",
        ("org", id.to_string()),
        serde_json::json!({"member_id": member_id, "role": input.role}),
    )
    .await?;
    tx.commit().await?;
    list_roles(State(state), caller, Path(id)).await
}

/// Removes a member's officer role in the organization.
#[utoipa::path(delete, path = "/api/orgs/{id}/roles/{member_id}", tag = "orgs",
    params(("id" = i64, Path, description = "Organization id"), ("member_id" = i64, Path, description = "Member id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, member_id)): Path<(i64, i64)>,
) -> AppResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let org = load_org(&mut tx, id).await?;
    if !caller.principal.can_assign_role(&org.path, member_id) {
        return Err(AppError::forbidden());
    }
    let removed = sqlx::query("DELETE FROM org_roles WHERE org_id = $1 AND member_id = $2")
        .bind(id)
        .bind(member_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if removed == 0 {
        return Err(AppError::not_found(("职务", "role"), member_id));
    }
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "org.role.remove",
        ("org", id.to_string()),
        serde_json::json!({"member_id": member_id}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
