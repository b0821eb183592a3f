//! Identity: accounts, browser sessions and bearer tokens, CSRF protection
//! and login throttling.
//!
//! A browser session is an HttpOnly, SameSite=Strict cookie holding a random
//! token; only its SHA-256 is stored. State-changing requests made with the
//! cookie must echo the session's CSRF token in `X-CSRF-Token`. API clients
//! send `Authorization: Bearer TOKEN` instead and need no CSRF token.

pub mod accounts;
pub mod password;
mod routes;
mod throttle;

pub use routes::router;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::audit::Actor;
use crate::db::now_ms;
use crate::error::AppError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "dangwu_session";

/// The only endpoints an account that must change its password may use.
const PASSWORD_CHANGE_PATHS: &[&str] = &["/api/auth/me", "/api/auth/password", "/api/auth/logout"];
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Lifetime of a browser session, in milliseconds (12 hours).
const COOKIE_SESSION_MS: i64 = 12 * 3600 * 1000;
/// Lifetime of a bearer token, in milliseconds (90 days).
const BEARER_TOKEN_MS: i64 = 90 * 24 * 3600 * 1000;

/// The three separated system roles; no account holds more than one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SystemRole {
    /// Accounts and configuration.
    SystemAdmin,
    /// Roles, permissions and clearance levels.
    SecurityAdmin,
    /// Reads the audit trail, nothing else.
    SecurityAuditor,
}

impl SystemRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SystemAdmin => "system_admin",
            Self::SecurityAdmin => "security_admin",
            Self::SecurityAuditor => "security_auditor",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "system_admin" => Some(Self::SystemAdmin),
            "security_admin" => Some(Self::SecurityAdmin),
            "security_auditor" => Some(Self::SecurityAuditor),
            _ => None,
        }
    }
}

/// The signed-in account behind a request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub member_id: Option<i64>,
    pub system_role: Option<SystemRole>,
    pub clearance: String,
    pub must_change_password: bool,
}

/// How a request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Cookie,
    Bearer,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cookie => "cookie",
            Self::Bearer => "bearer",
        }
    }
}

/// An authenticated request: extracting it rejects anonymous requests with
/// 401 and cookie requests that change state without the CSRF token with 403.
#[derive(Debug, Clone)]
pub struct Session {
    pub account: Account,
    pub kind: SessionKind,
    pub token_hash: String,
    pub csrf_token: String,
    pub client_addr: String,
}

impl Session {
    /// The actor to record in the audit trail.
    pub fn actor(&self) -> Actor {
        Actor {
            account_id: Some(self.account.id),
            name: self.account.username.clone(),
            client_addr: self.client_addr.clone(),
        }
    }

    pub fn has_role(&self, role: SystemRole) -> bool {
        self.account.system_role == Some(role)
    }
}

/// Generates a random token: 32 bytes, URL-safe base64.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The client's address as seen on the socket, or "unknown".
pub fn client_addr(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn token_from(parts: &Parts) -> Option<(String, SessionKind)> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let token = value.strip_prefix("Bearer ")?;
        return Some((token.trim().to_owned(), SessionKind::Bearer));
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix("dangwu_session="))
        .map(|token| (token.to_owned(), SessionKind::Cookie))
        .next()
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Session {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(session) = parts.extensions.get::<Session>() {
            return Ok(session.clone());
        }
        let (token, kind) = token_from(parts).ok_or_else(AppError::unauthenticated)?;
        let token_hash = hash_token(&token);
        let row = sqlx::query(
            "SELECT s.kind, s.csrf_token, s.expires_at, a.id, a.username, a.display_name, \
             a.member_id, a.system_role, a.clearance, a.must_change_password, a.disabled \
             FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = $1",
        )
        .bind(&token_hash)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(AppError::unauthenticated)?;
        let stored_kind: String = row.try_get("kind")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let disabled = row.try_get::<i64, _>("disabled")? != 0;
        if stored_kind != kind.as_str() || expires_at < now_ms() || disabled {
            return Err(AppError::unauthenticated());
        }
        let csrf_token: String = row.try_get("csrf_token")?;
        if kind == SessionKind::Cookie && changes_state(&parts.method) {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|value| value.to_str().ok());
            if sent != Some(csrf_token.as_str()) {
                return Err(AppError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "请求缺少有效的 CSRF 令牌，请刷新页面后重试",
                    "missing or wrong CSRF token; reload the page and try again",
                ));
            }
        }
        let must_change_password = row.try_get::<i64, _>("must_change_password")? != 0;
        if must_change_password && !PASSWORD_CHANGE_PATHS.contains(&parts.uri.path()) {
            return Err(AppError::new(
                axum::http::StatusCode::FORBIDDEN,
                "password_change_required",
                "请先修改初始密码",
                "change your initial password first",
            ));
        }
        let role: Option<String> = row.try_get("system_role")?;
        let session = Session {
            account: Account {
                id: row.try_get("id")?,
                username: row.try_get("username")?,
                display_name: row.try_get("display_name")?,
                member_id: row.try_get("member_id")?,
                system_role: role.as_deref().and_then(SystemRole::parse),
                clearance: row.try_get("clearance")?,
                must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
            },
            kind,
            token_hash,
            csrf_token,
            client_addr: client_addr(parts),
        };
        tracing::Span::current().record("user_id", session.account.id);
        parts.extensions.insert(session.clone());
        Ok(session)
    }
}

/// Creates a session row and returns the plain token (shown once).
pub async fn create_session(
    state: &AppState,
    account_id: i64,
    kind: SessionKind,
    label: &str,
) -> Result<(String, String), AppError> {
    let token = new_token();
    let csrf = new_token();
    let now = now_ms();
    let lifetime = match kind {
        SessionKind::Cookie => COOKIE_SESSION_MS,
        SessionKind::Bearer => BEARER_TOKEN_MS,
    };
    sqlx::query(
        "INSERT INTO sessions (token_hash, account_id, kind, label, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(hash_token(&token))
    .bind(account_id)
    .bind(kind.as_str())
    .bind(label)
    .bind(&csrf)
    .bind(now)
    .bind(now + lifetime)
    .execute(&state.db.pool)
    .await?;
    Ok((token, csrf))
}

/// The client's IP address as an extractor; never rejects.
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(client_addr(parts)))
    }
}
