//! HTTP resources `/api/members` and `/api/orgs/{id}/members`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    Gender, MEMBER_COLUMNS, Member, MemberRole, MemberStatus, check_date, check_id_number,
    check_person_name, check_phone,
};
use crate::audit;
use crate::db::{is_unique_violation, now_ms};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::{ApiJson, Page, PageQuery};
use crate::org::{OrgRole, load_org};
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_org_members))
        .routes(routes!(create_member))
        .routes(routes!(get_member, update_member))
        .routes(routes!(reveal_id_number))
        .routes(routes!(search_directory))
}

/// Filters for a member list.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct MemberFilter {
    /// Include members of every descendant organization.
    #[serde(default)]
    pub subtree: bool,
    /// Part of a name.
    pub q: Option<String>,
    /// Only members who have no login account yet.
    #[serde(default)]
    pub without_account: bool,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Lists the members of an organization, optionally of its whole subtree.
#[utoipa::path(get, path = "/api/orgs/{id}/members", tag = "members",
    params(("id" = i64, Path, description = "Organization id"), MemberFilter),
    responses((status = 200, body = Page<Member>), (status = 403, body = ErrorBody)))]
async fn list_org_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(filter): Query<MemberFilter>,
) -> AppResult<ApiJson<Page<Member>>> {
    let org = load_org(&mut *state.db.pool.acquire().await?, id).await?;
    let allowed = caller.principal.can_org(&org.path, Access::Read);
    caller
        .principal
        .check(&state.db, allowed, ("org", id), Access::Read)
        .await?;
    let page = PageQuery {
        limit: filter.limit,
        offset: filter.offset,
    };
    let scope = if filter.subtree {
        format!("{}%", org.path)
    } else {
        org.path.clone()
    };
    let name = format!("%{}%", filter.q.as_deref().unwrap_or("").trim());
    let condition = "o.path LIKE $1 AND m.name LIKE $2 \
         AND ($3 = 0 OR NOT EXISTS (SELECT 1 FROM accounts a WHERE a.member_id = m.id))";
    let without_account = i64::from(filter.without_account);
    let rows = sqlx::query(&format!(
        "SELECT {MEMBER_COLUMNS} FROM members m JOIN orgs o ON o.id = m.org_id \
         WHERE {condition} ORDER BY o.path, m.id LIMIT $4 OFFSET $5"
    ))
    .bind(&scope)
    .bind(&name)
    .bind(without_account)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&state.db.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM members m JOIN orgs o ON o.id = m.org_id WHERE {condition}"
    ))
    .bind(&scope)
    .bind(&name)
    .bind(without_account)
    .fetch_one(&state.db.pool)
    .await?;
    let mut members = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut member = Member::from_row(row)?;
        // Reading the organization shows who belongs to it; personal
        // details stay with those who may read the member's own record.
        let path: String = row.try_get("org_path")?;
        if !caller.principal.can_member(member.id, &path, Access::Read) {
            member.hide_personal_details();
        }
        members.push(member);
    }
    Ok(ApiJson(Page::new(members, total, &page)))
}

/// Loads a member with its organization path, or 404.
async fn load_member(conn: &mut AnyConnection, id: i64) -> AppResult<(Member, String)> {
    let row = sqlx::query(&format!(
        "SELECT {MEMBER_COLUMNS} FROM members m JOIN orgs o ON o.id = m.org_id WHERE m.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::not_found(("党员", "member"), id))?;
    let mut member = Member::from_row(&row)?;
    let path: String = row.try_get("org_path")?;
    member.roles = sqlx::query(
        "SELECT r.org_id, o.name, r.role FROM org_roles r JOIN orgs o ON o.id = r.org_id \
         WHERE r.member_id = $1 ORDER BY o.path",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        let role: String = row.try_get("role")?;
        Ok(MemberRole {
            org_id: row.try_get("org_id")?,
            org_name: row.try_get("name")?,
            role: OrgRole::parse(&role).unwrap_or(OrgRole::CommitteeMember),
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    Ok((member, path))
}

/// Reads one member.
#[utoipa::path(get, path = "/api/members/{id}", tag = "members",
    params(("id" = i64, Path, description = "Member id")),
    responses((status = 200, body = Member), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<Member>> {
    let (member, path) = load_member(&mut *state.db.pool.acquire().await?, id).await?;
    let allowed = caller.principal.can_member(id, &path, Access::Read);
    caller
        .principal
        .check(&state.db, allowed, ("member", id), Access::Read)
        .await?;
    Ok(ApiJson(member))
}

/// A new member record.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub org_id: i64,
    pub name: String,
    pub gender: Gender,
    pub ethnicity: String,
    /// `YYYY-MM-DD`
    pub birth_date: String,
    pub education: String,
    /// Date of joining the party, `YYYY-MM-DD`.
    pub joined_on: Option<String>,
    pub status: MemberStatus,
    pub phone: String,
    /// 18-character resident identity card number.
    pub id_number: String,
}

/// Validated member fields ready to store.
struct MemberFields {
    name: String,
    gender: Gender,
    ethnicity: String,
    birth_date: String,
    education: String,
    joined_on: Option<String>,
    status: MemberStatus,
    phone: String,
    id_number: String,
}

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

fn validate(input: &NewMember) -> AppResult<MemberFields> {
    let birth = check_date("birth_date", &input.birth_date)?;
    let joined_on = match input.joined_on.as_deref().filter(|v| !v.trim().is_empty()) {
        Some(value) => {
            let joined = check_date("joined_on", value)?;
            if joined < birth {
                return Err(AppError::invalid(
                    "joined_on",
                    "入党日期早于出生日期",
                    "joined_on is before birth_date",
                ));
            }
            Some(joined.to_string())
        }
        None => None,
    };
    Ok(MemberFields {
        name: check_person_name(&input.name)?,
        gender: input.gender,
        ethnicity: check_text("ethnicity", &input.ethnicity, 20)?,
        birth_date: birth.to_string(),
        education: check_text("education", &input.education, 40)?,
        joined_on,
        status: input.status,
        phone: check_phone(&input.phone)?,
        id_number: check_id_number(&input.id_number)?,
    })
}

fn duplicate_id_number() -> AppError {
    AppError::conflict(
        "duplicate_id_number",
        "已有党员使用该身份证号码",
        "a member with this identity card number already exists",
    )
    .field("id_number")
}

/// Adds a member to an organization the caller manages.
#[utoipa::path(post, path = "/api/members", tag = "members", request_body = NewMember,
    responses((status = 201, body = Member), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_member(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewMember>,
) -> AppResult<(StatusCode, ApiJson<Member>)> {
    input.status.check_input()?;
    let fields = validate(&input)?;
    let mut tx = state.db.begin().await?;
    let org = load_org(&mut tx, input.org_id)
        .await
        .map_err(|e| e.field("org_id"))?;
    let allowed = caller.principal.can_org(&org.path, Access::Write);
    caller
        .principal
        .check(&state.db, allowed, ("org", org.id), Access::Write)
        .await?;
    let now = now_ms();
    let inserted = sqlx::query_scalar::<_, i64>(
        "INSERT INTO members (org_id, name, gender, ethnicity, birth_date, education, joined_on, \
         status, phone, id_number, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
    )
    .bind(org.id)
    .bind(&fields.name)
    .bind(fields.gender.as_str())
    .bind(&fields.ethnicity)
    .bind(&fields.birth_date)
    .bind(&fields.education)
    .bind(&fields.joined_on)
    .bind(fields.status.as_str())
    .bind(&fields.phone)
    .bind(&fields.id_number)
    .bind(now)
    .fetch_one(&mut *tx)
    .await;
    let id = match inserted {
        Ok(id) => id,
        Err(error) if is_unique_violation(&error) => return Err(duplicate_id_number()),
        Err(error) => return Err(error.into()),
    };
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "member.create",
        ("member", id.to_string()),
        serde_json::json!({"org_id": org.id, "name": fields.name}),
    )
    .await?;
    let (member, _) = load_member(&mut tx, id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, ApiJson(member)))
}

/// Changes to a member record; omitted fields stay. Changing `org_id` moves
/// the member's formal organization relation and needs write access to both.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberUpdate {
    pub org_id: Option<i64>,
    pub name: Option<String>,
    pub gender: Option<Gender>,
    pub ethnicity: Option<String>,
    pub birth_date: Option<String>,
    pub education: Option<String>,
    pub joined_on: Option<String>,
    pub status: Option<MemberStatus>,
    pub phone: Option<String>,
    pub id_number: Option<String>,
}

/// Updates a member record.
#[utoipa::path(patch, path = "/api/members/{id}", tag = "members", request_body = MemberUpdate,
    params(("id" = i64, Path, description = "Member id")),
    responses((status = 200, body = Member), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<MemberUpdate>,
) -> AppResult<ApiJson<Member>> {
    let mut tx = state.db.begin().await?;
    let (current, path) = load_member(&mut tx, id).await?;
    let allowed = caller.principal.can_member(id, &path, Access::Write);
    caller
        .principal
        .check(&state.db, allowed, ("member", id), Access::Write)
        .await?;
    let target_org = match input.org_id {
        Some(org_id) if org_id != current.org_id => {
            let org = load_org(&mut tx, org_id)
                .await
                .map_err(|e| e.field("org_id"))?;
            if !caller.principal.can_org(&org.path, Access::Write) {
                return Err(AppError::forbidden());
            }
            org.id
        }
        _ => current.org_id,
    };
    let id_number: String = sqlx::query_scalar("SELECT id_number FROM members WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let merged = NewMember {
        org_id: target_org,
        name: input.name.unwrap_or(current.name),
        gender: input.gender.unwrap_or(current.gender),
        ethnicity: input.ethnicity.unwrap_or(current.ethnicity),
        birth_date: input.birth_date.unwrap_or(current.birth_date),
        education: input.education.unwrap_or(current.education),
        joined_on: input.joined_on.or(current.joined_on),
        status: match input.status {
            Some(status) => status.check_input()?,
            None => current.status,
        },
        phone: input.phone.unwrap_or(current.phone),
        id_number: input.id_number.clone().unwrap_or(id_number),
    };
    let fields = validate(&merged)?;
    let updated = sqlx::query(
        "UPDATE members SET org_id = $1, name = $2, gender = $3, ethnicity = $4, birth_date = $5, \
         education = $6, joined_on = $7, status = $8, phone = $9, id_number = $10, updated_at = $11 \
         WHERE id = $12",
    )
    .bind(target_org)
    .bind(&fields.name)
    .bind(fields.gender.as_str())
    .bind(&fields.ethnicity)
    .bind(&fields.birth_date)
    .bind(&fields.education)
    .bind(&fields.joined_on)
    .bind(fields.status.as_str())
    .bind(&fields.phone)
    .bind(&fields.id_number)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await;
    match updated {
        Ok(_) => {}
        Err(error) if is_unique_violation(&error) => return Err(duplicate_id_number()),
        Err(error) => return Err(error.into()),
    }
    // The audit detail names changed fields, never the identity number itself.
    let mut changed: Vec<&str> = Vec::new();
    if target_org != current.org_id {
        changed.push("org_id");
    }
    if input.id_number.is_some() {
        changed.push("id_number");
    }
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "member.update",
        ("member", id.to_string()),
        serde_json::json!({"org_id": target_org, "name": fields.name, "changed": changed}),
    )
    .await?;
    let (member, _) = load_member(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiJson(member))
}

/// The full identity number, returned only by a reveal.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RevealedIdNumber {
    pub id_number: String,
}

/// Reveals a member's full identity number; audited.
#[utoipa::path(post, path = "/api/members/{id}/reveal-id", tag = "members",
    params(("id" = i64, Path, description = "Member id")),
    responses((status = 200, body = RevealedIdNumber), (status = 403, body = ErrorBody)))]
async fn reveal_id_number(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<RevealedIdNumber>> {
    let mut tx = state.db.begin().await?;
    let (_, path) = load_member(&mut tx, id).await?;
    if !caller.principal.can_reveal_id(&path) {
        return Err(AppError::forbidden());
    }
    let id_number: String = sqlx::query_scalar("SELECT id_number FROM members WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "member.reveal_id_number",
        ("member", id.to_string()),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(ApiJson(RevealedIdNumber { id_number }))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct DirectoryQuery {
    /// Part of a name; at least one character.
    q: String,
    /// Most results, 1 to 20. [default: 10]
    limit: Option<i64>,
}

/// One directory entry: a name and an organization, nothing personal.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DirectoryEntry {
    pub id: i64,
    pub name: String,
    pub org_id: i64,
    pub org_name: String,
}

/// Searches the member directory (通讯录) by name, for picking people to
/// delegate to, add as signers or name as recipients. Any signed-in account
/// may search; entries carry only name and organization.
#[utoipa::path(get, path = "/api/members/search", tag = "members", params(DirectoryQuery),
    responses((status = 200, body = Vec<DirectoryEntry>), (status = 422, body = ErrorBody)))]
async fn search_directory(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<DirectoryQuery>,
) -> AppResult<ApiJson<Vec<DirectoryEntry>>> {
    let q = query.q.trim();
    if q.is_empty() || q.chars().count() > 50 {
        return Err(AppError::invalid(
            "q",
            "请输入 1 到 50 个字的姓名",
            "give 1 to 50 characters of a name",
        ));
    }
    let rows: Vec<(i64, String, i64, String)> = sqlx::query_as(
        "SELECT m.id, m.name, m.org_id, o.name FROM members m JOIN orgs o ON o.id = m.org_id \
         WHERE m.name LIKE $1 ESCAPE '\\' ORDER BY length(m.name), m.id LIMIT $2",
    )
    .bind(format!("%{}%", crate::db::escape_like(q)))
    .bind(query.limit.unwrap_or(10).clamp(1, 20))
    .fetch_all(&state.db.pool)
    .await?;
    Ok(ApiJson(
        rows.into_iter()
            .map(|(id, name, org_id, org_name)| DirectoryEntry {
                id,
                name,
                org_id,
                org_name,
            })
            .collect(),
    ))
}
