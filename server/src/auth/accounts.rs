//! HTTP resource `/api/accounts`: account administration by the system
//! administrator, clearance levels by the security administrator.
//!
//! System roles are never granted through the API: the three built-in
//! accounts are created at first start, so that no administrator can make
//! themselves a second one.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{SystemRole, password};
use crate::audit::{self, Actor};
use crate::db::{is_unique_violation, now_ms};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::{ApiJson, Page, PageQuery};
use crate::perm::Caller;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_accounts, create_account_route))
        .routes(routes!(update_account))
        .routes(routes!(reset_password))
        .routes(routes!(set_clearance))
}

/// Clearance levels, lowest first: 公开, 内部, 秘密, 机密.
pub const CLEARANCES: [&str; 4] = ["public", "internal", "confidential", "secret"];

/// An account as listed to administrators.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub member_id: Option<i64>,
    /// Name of the linked member, if any.
    pub member_name: Option<String>,
    /// The linked member's organization, if any.
    pub org_name: Option<String>,
    pub system_role: Option<SystemRole>,
    pub clearance: String,
    pub disabled: bool,
    pub must_change_password: bool,
}

/// Filters for the account list.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct AccountFilter {
    /// Part of a username, display name or member name.
    pub q: Option<String>,
    /// Only disabled (`true`) or only active (`false`) accounts.
    pub disabled: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Inserts an account with an Argon2 password hash; the caller audits it.
pub async fn insert_account(
    conn: &mut AnyConnection,
    username: &str,
    display_name: &str,
    password_hash: &str,
    member_id: Option<i64>,
    system_role: Option<SystemRole>,
    must_change_password: bool,
) -> AppResult<i64> {
    let now = now_ms();
    let inserted = sqlx::query_scalar::<_, i64>(
        "INSERT INTO accounts (username, display_name, password_hash, member_id, system_role, \
         must_change_password, created_at, password_changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(username)
    .bind(display_name)
    .bind(password_hash)
    .bind(member_id)
    .bind(system_role.map(SystemRole::as_str))
    .bind(i64::from(must_change_password))
    .bind(now)
    .fetch_one(&mut *conn)
    .await;
    match inserted {
        Ok(id) => Ok(id),
        Err(error) if is_unique_violation(&error) => Err(AppError::conflict(
            "duplicate_account",
            "用户名已被使用，或该党员已有账号",
            "the username is taken, or the member already has an account",
        )
        .field("username")),
        Err(error) => Err(error.into()),
    }
}

/// Lists accounts, oldest first (system and security administrators).
#[utoipa::path(get, path = "/api/accounts", tag = "accounts", params(AccountFilter),
    responses((status = 200, body = Page<AccountRow>), (status = 403, body = ErrorBody)))]
async fn list_accounts(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<AccountFilter>,
) -> AppResult<ApiJson<Page<AccountRow>>> {
    if !(caller.session.has_role(SystemRole::SystemAdmin)
        || caller.session.has_role(SystemRole::SecurityAdmin))
    {
        return Err(AppError::forbidden());
    }
    let page = PageQuery {
        limit: filter.limit,
        offset: filter.offset,
    };
    let pattern = format!("%{}%", filter.q.as_deref().unwrap_or("").trim());
    let condition = "(a.username LIKE $1 OR a.display_name LIKE $1 OR COALESCE(m.name, '') LIKE $1) \
         AND ($2 < 0 OR a.disabled = $2)";
    // -1 means either state.
    let disabled = filter.disabled.map_or(-1, i64::from);
    let rows = sqlx::query(&format!(
        "{ACCOUNT_SELECT} WHERE {condition} ORDER BY a.id LIMIT $3 OFFSET $4"
    ))
    .bind(&pattern)
    .bind(disabled)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&state.db.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM accounts a LEFT JOIN members m ON m.id = a.member_id WHERE {condition}"
    ))
    .bind(&pattern)
    .bind(disabled)
    .fetch_one(&state.db.pool)
    .await?;
    let accounts = rows
        .iter()
        .map(account_from_row)
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(ApiJson(Page::new(accounts, total, &page)))
}

const ACCOUNT_SELECT: &str = "SELECT a.id, a.username, a.display_name, a.member_id, \
     m.name AS member_name, o.name AS org_name, a.system_role, a.clearance, a.disabled, \
     a.must_change_password FROM accounts a LEFT JOIN members m ON m.id = a.member_id \
     LEFT JOIN orgs o ON o.id = m.org_id";

fn account_from_row(row: &sqlx::any::AnyRow) -> Result<AccountRow, sqlx::Error> {
    let role: Option<String> = row.try_get("system_role")?;
    Ok(AccountRow {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        member_id: row.try_get("member_id")?,
        member_name: row.try_get("member_name")?,
        org_name: row.try_get("org_name")?,
        system_role: role.as_deref().and_then(SystemRole::parse),
        clearance: row.try_get("clearance")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
    })
}

async fn account_row(state: &AppState, id: i64) -> AppResult<AccountRow> {
    let row = sqlx::query(&format!("{ACCOUNT_SELECT} WHERE a.id = $1"))
        .bind(id)
        .fetch_one(&state.db.pool)
        .await?;
    Ok(account_from_row(&row)?)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub username: String,
    pub display_name: String,
    /// Initial password; the user must change it at first login.
    pub password: String,
    /// The member this account belongs to.
    pub member_id: Option<i64>,
}

fn check_username(username: &str) -> AppResult<String> {
    let username = username.trim();
    let valid = (3..=32).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !valid {
        return Err(AppError::invalid(
            "username",
            "用户名须为 3 到 32 个字母、数字或 . _ -",
            "username must be 3 to 32 letters, digits or . _ -",
        ));
    }
    // Usernames are case-insensitive: stored in lower case, looked up so.
    Ok(username.to_ascii_lowercase())
}

/// Creates an account (system administrator).
#[utoipa::path(post, path = "/api/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = AccountRow), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_account_route(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewAccount>,
) -> AppResult<(StatusCode, ApiJson<AccountRow>)> {
    caller.require(SystemRole::SystemAdmin)?;
    let username = check_username(&input.username)?;
    let display_name = crate::members::check_person_name(&input.display_name)
        .map_err(|e| e.field("display_name"))?;
    password::check_policy("password", &input.password)?;
    let mut tx = state.db.begin().await?;
    if let Some(member_id) = input.member_id {
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE id = $1")
            .bind(member_id)
            .fetch_one(&mut *tx)
            .await?;
        if exists == 0 {
            return Err(AppError::not_found(("党员", "member"), member_id).field("member_id"));
        }
        let accounts: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE member_id = $1")
                .bind(member_id)
                .fetch_one(&mut *tx)
                .await?;
        if accounts > 0 {
            return Err(AppError::conflict(
                "duplicate_account",
                "该党员已有账号",
                "the member already has an account",
            )
            .field("member_id"));
        }
    }
    let hash = password::hash(&input.password)?;
    let id = insert_account(
        &mut tx,
        &username,
        &display_name,
        &hash,
        input.member_id,
        None,
        true,
    )
    .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "account.create",
        ("account", id.to_string()),
        serde_json::json!({"username": username, "member_id": input.member_id}),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, ApiJson(account_row(&state, id).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountUpdate {
    pub display_name: Option<String>,
    pub disabled: Option<bool>,
}

async fn ensure_account(conn: &mut AnyConnection, id: i64) -> AppResult<Option<SystemRole>> {
    let role: Option<Option<String>> =
        sqlx::query_scalar("SELECT system_role FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let role = role.ok_or_else(|| AppError::not_found(("账号", "account"), id))?;
    Ok(role.as_deref().and_then(SystemRole::parse))
}

/// Renames, disables or enables an account (system administrator). A
/// disabled account's sessions end at once.
#[utoipa::path(patch, path = "/api/accounts/{id}", tag = "accounts", request_body = AccountUpdate,
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_account(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<AccountUpdate>,
) -> AppResult<StatusCode> {
    caller.require(SystemRole::SystemAdmin)?;
    let mut tx = state.db.begin().await?;
    let role = ensure_account(&mut tx, id).await?;
    if role.is_some() && input.disabled == Some(true) {
        return Err(AppError::conflict(
            "system_account",
            "不能停用系统内置管理账号",
            "built-in administrator accounts cannot be disabled",
        )
        .field("disabled"));
    }
    if let Some(name) = &input.display_name {
        let name = crate::members::check_person_name(name).map_err(|e| e.field("display_name"))?;
        sqlx::query("UPDATE accounts SET display_name = $1 WHERE id = $2")
            .bind(name)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(disabled) = input.disabled {
        sqlx::query("UPDATE accounts SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE account_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
    }
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "account.update",
        ("account", id.to_string()),
        serde_json::json!({"display_name": input.display_name, "disabled": input.disabled}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    pub new_password: String,
}

/// Sets a new password that must be changed at next login, and ends the
/// account's sessions (system administrator).
#[utoipa::path(post, path = "/api/accounts/{id}/reset-password", tag = "accounts", request_body = PasswordReset,
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<PasswordReset>,
) -> AppResult<StatusCode> {
    caller.require(SystemRole::SystemAdmin)?;
    password::check_policy("new_password", &input.new_password)?;
    let mut tx = state.db.begin().await?;
    ensure_account(&mut tx, id).await?;
    let hash = password::hash(&input.new_password)?;
    sqlx::query("UPDATE accounts SET password_hash = $1, must_change_password = 1, password_changed_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE account_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM login_failures WHERE throttle_key = (SELECT 'account:' || LOWER(username) FROM accounts WHERE id = $1)")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "account.reset_password",
        ("account", id.to_string()),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearanceChange {
    /// One of public, internal, confidential, secret.
    pub clearance: String,
}

/// Sets an account's clearance level (security administrator).
#[utoipa::path(put, path = "/api/accounts/{id}/clearance", tag = "accounts", request_body = ClearanceChange,
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_clearance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<ClearanceChange>,
) -> AppResult<StatusCode> {
    caller.require(SystemRole::SecurityAdmin)?;
    if id == caller.session.account.id {
        return Err(AppError::new(
            axum::http::StatusCode::FORBIDDEN,
            "own_clearance",
            "不能修改自己的涉密等级",
            "you cannot change your own clearance",
        ));
    }
    if !CLEARANCES.contains(&input.clearance.as_str()) {
        return Err(AppError::invalid(
            "clearance",
            format!(
                "密级无效：{}（可选 public、internal、confidential、secret）",
                input.clearance
            ),
            format!(
                "invalid clearance {:?}: use public, internal, confidential or secret",
                input.clearance
            ),
        ));
    }
    let mut tx = state.db.begin().await?;
    ensure_account(&mut tx, id).await?;
    sqlx::query("UPDATE accounts SET clearance = $1 WHERE id = $2")
        .bind(&input.clearance)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "account.clearance",
        ("account", id.to_string()),
        serde_json::json!({"clearance": input.clearance}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates the three built-in administrator accounts if no account exists,
/// returning their usernames and one-time passwords.
pub async fn bootstrap_system_accounts(
    state_db: &crate::db::Db,
    key: &ed25519_dalek::SigningKey,
    passwords: Option<&str>,
) -> anyhow::Result<Vec<(String, String)>> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
        .fetch_one(&state_db.pool)
        .await?;
    if count > 0 {
        return Ok(Vec::new());
    }
    let mut created = Vec::new();
    let mut tx = state_db.begin().await?;
    for (username, display, role) in [
        ("sysadmin", "系统管理员", SystemRole::SystemAdmin),
        ("secadmin", "安全保密管理员", SystemRole::SecurityAdmin),
        ("auditor", "安全审计员", SystemRole::SecurityAuditor),
    ] {
        let plain = passwords.map(str::to_owned).unwrap_or_else(random_password);
        let hash = password::hash(&plain)
            .map_err(|error| anyhow::anyhow!("failed to hash password: {}", error.code))?;
        let id = insert_account(
            &mut tx,
            username,
            display,
            &hash,
            None,
            Some(role),
            passwords.is_none(),
        )
        .await
        .map_err(|error| anyhow::anyhow!("failed to create {username}: {}", error.code))?;
        audit::append(
            &mut tx,
            key,
            &Actor::system(),
            "account.create",
            ("account", id.to_string()),
            serde_json::json!({"username": username, "system_role": role}),
        )
        .await?;
        created.push((username.to_owned(), plain));
    }
    tx.commit().await?;
    Ok(created)
}

fn random_password() -> String {
    let token = super::new_token();
    format!("Dw-{}", &token[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bootstrap_stores_argon2_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::config::StoreConfig {
            data_dir: dir.path().to_owned(),
            database_url: format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
            files_dir: None,
            audit_key_file: None,
        };
        let db = crate::db::Db::open(&store).await.unwrap();
        let key = crate::audit::load_or_create_key(dir.path()).unwrap();
        bootstrap_system_accounts(&db, &key, Some("Bootstrap-2026"))
            .await
            .unwrap();
        let stored: String =
            sqlx::query_scalar("SELECT password_hash FROM accounts WHERE username = 'sysadmin'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert!(stored.starts_with("$argon2id$"), "stored: {stored}");
        assert!(password::verify("Bootstrap-2026", &stored));
    }
}
