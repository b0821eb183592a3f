//! HTTP resource `/api/auth`: login, logout, the current account, password
//! change and bearer tokens.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::throttle::{self, ACCOUNT_LIMIT, ADDRESS_LIMIT};
use super::{
    Account, ClientAddr, SESSION_COOKIE, Session, SessionKind, SystemRole, create_session, password,
};
use crate::audit::{self, Actor};
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(create_token))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// The signed-in account and the CSRF token to echo in `X-CSRF-Token`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub account: Account,
    pub csrf_token: String,
}

fn invalid_credentials() -> AppError {
    AppError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "用户名或密码错误",
        "wrong username or password",
    )
}

fn locked(until: i64) -> AppError {
    let minutes = ((until - now_ms()) / 60_000).max(1);
    AppError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "login_throttled",
        format!("登录失败次数过多，请 {minutes} 分钟后再试"),
        format!("too many failed logins; try again in {minutes} minutes"),
    )
}

async fn load_account(
    state: &AppState,
    username: &str,
) -> AppResult<Option<(Account, String, bool)>> {
    let row = sqlx::query(
        "SELECT id, username, display_name, member_id, system_role, clearance, \
         must_change_password, password_hash, disabled FROM accounts WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let role: Option<String> = row.try_get("system_role")?;
    let account = Account {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        member_id: row.try_get("member_id")?,
        system_role: role.as_deref().and_then(SystemRole::parse),
        clearance: row.try_get("clearance")?,
        must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
    };
    let disabled = row.try_get::<i64, _>("disabled")? != 0;
    Ok(Some((account, row.try_get("password_hash")?, disabled)))
}

fn session_cookies(
    state: &AppState,
    token: &str,
    csrf: &str,
) -> [(header::HeaderName, HeaderValue); 2] {
    let secure = if state.config.tls.is_some() || state.config.public_url.starts_with("https:") {
        "; Secure"
    } else {
        ""
    };
    let session = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}");
    let csrf = format!("dangwu_csrf={csrf}; Path=/; SameSite=Strict{secure}");
    [
        (
            header::SET_COOKIE,
            HeaderValue::from_str(&session).expect("token is ASCII"),
        ),
        (
            header::SET_COOKIE,
            HeaderValue::from_str(&csrf).expect("token is ASCII"),
        ),
    ]
}

/// Logs in with username and password and starts a browser session.
///
/// Failures are counted per account name and per client address; the
/// answer is the same whether or not the account exists.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(input): ApiJson<LoginRequest>,
) -> AppResult<Response> {
    let username = input.username.trim().to_ascii_lowercase();
    let account_key = throttle::account_key(&username);
    let address_key = throttle::address_key(&addr);
    for key in [&account_key, &address_key] {
        if let Some(until) = throttle::locked_until(&state.db, key).await? {
            return Err(locked(until));
        }
    }
    let found = load_account(&state, &username).await?;
    let stored_hash = found
        .as_ref()
        .map_or(password::dummy_hash(), |(_, hash, _)| hash.as_str());
    let password_ok = password::verify(&input.password, stored_hash);
    let account = match found {
        Some((account, _, false)) if password_ok => account,
        _ => {
            throttle::record_failure(&state.db, &account_key, ACCOUNT_LIMIT).await?;
            throttle::record_failure(&state.db, &address_key, ADDRESS_LIMIT).await?;
            tracing::warn!(client_addr = %addr, "failed login");
            return Err(invalid_credentials());
        }
    };
    throttle::clear(&state.db, &account_key).await?;
    let (token, csrf) = create_session(&state, account.id, SessionKind::Cookie, "browser").await?;
    let actor = Actor {
        account_id: Some(account.id),
        name: account.username.clone(),
        client_addr: addr,
    };
    let mut tx = state.db.begin().await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &actor,
        "auth.login",
        ("account", account.id.to_string()),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = account.id, "login");
    let cookies = session_cookies(&state, &token, &csrf);
    Ok((
        AppendHeaders(cookies),
        ApiJson(SessionInfo {
            account,
            csrf_token: csrf,
        }),
    )
        .into_response())
}

/// Ends the current session.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    session: Session,
) -> AppResult<(HeaderMap, StatusCode)> {
    let mut tx = state.db.begin().await?;
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(&session.token_hash)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &session.actor(),
        "auth.logout",
        ("account", session.account.id.to_string()),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_static("dangwu_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_static("dangwu_csrf=; Path=/; SameSite=Strict; Max-Age=0"),
    );
    Ok((headers, StatusCode::NO_CONTENT))
}

/// Returns the signed-in account.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth",
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)))]
async fn me(session: Session) -> ApiJson<SessionInfo> {
    ApiJson(SessionInfo {
        account: session.account,
        csrf_token: session.csrf_token,
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub old_password: String,
    pub new_password: String,
}

/// Changes the caller's own password and ends the account's other sessions.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn change_password(
    State(state): State<AppState>,
    session: Session,
    ApiJson(input): ApiJson<PasswordChange>,
) -> AppResult<StatusCode> {
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM accounts WHERE id = $1")
        .bind(session.account.id)
        .fetch_one(&state.db.pool)
        .await?;
    if !password::verify(&input.old_password, &stored) {
        return Err(AppError::invalid(
            "old_password",
            "原密码不正确",
            "the current password is wrong",
        ));
    }
    password::check_policy("new_password", &input.new_password)?;
    if input.new_password == input.old_password {
        return Err(AppError::invalid(
            "new_password",
            "新密码不能与原密码相同",
            "the new password must differ from the current one",
        ));
    }
    let hash = password::hash(&input.new_password)?;
    let mut tx = state.db.begin().await?;
    sqlx::query("UPDATE accounts SET password_hash = $1, must_change_password = 0, password_changed_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now_ms())
        .bind(session.account.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND token_hash <> $2")
        .bind(session.account.id)
        .bind(&session.token_hash)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &session.actor(),
        "auth.password_change",
        ("account", session.account.id.to_string()),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// What the token is for, shown in listings.
    pub label: String,
}

/// A new bearer token; the plain value is shown only once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenCreated {
    pub token: String,
    pub expires_in_days: i64,
}

/// Creates a bearer token for API clients, valid 90 days.
#[utoipa::path(post, path = "/api/auth/tokens", tag = "auth", request_body = TokenRequest,
    responses((status = 201, body = TokenCreated), (status = 401, body = ErrorBody)))]
async fn create_token(
    State(state): State<AppState>,
    session: Session,
    ApiJson(input): ApiJson<TokenRequest>,
) -> AppResult<(StatusCode, ApiJson<TokenCreated>)> {
    let label = input.label.trim();
    if label.is_empty() || label.chars().count() > 100 {
        return Err(AppError::invalid(
            "label",
            "标签须为 1 到 100 个字符",
            "label must be 1 to 100 characters",
        ));
    }
    let (token, _) = create_session(&state, session.account.id, SessionKind::Bearer, label).await?;
    let mut tx = state.db.begin().await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &session.actor(),
        "auth.token_create",
        ("account", session.account.id.to_string()),
        serde_json::json!({"label": label}),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(TokenCreated {
            token,
            expires_in_days: 90,
        }),
    ))
}
