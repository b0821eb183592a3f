//! HTTP resource `/api/meetings/{id}/live/ice-servers`: the ICE servers a page gives its
//! peer connection before it joins, with time-limited TURN credentials.
//!
//! The credentials follow the TURN REST API scheme that coturn checks with
//! `use-auth-secret`: the username is `EXPIRY:ACCOUNT_ID`, EXPIRY in Unix seconds, and
//! the password is the base64 of the HMAC-SHA1 of that username keyed with the secret
//! shared with coturn.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use base64::Engine as _;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::signal::check_open;
use crate::config::TurnConfig;
use crate::error::{AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::meetings;
use crate::perm::Caller;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ice_servers))
}

/// One entry of `RTCConfiguration.iceServers`, in the field names browsers read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

/// ICE servers for a meeting's peer connection; empty when no TURN server is set up.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IceServers {
    pub ice_servers: Vec<IceServer>,
    /// Unix time in seconds after which the TURN credential is rejected; absent
    /// without TURN.
    pub expires_at: Option<u64>,
}

/// Builds the TURN REST API username and password for an account, valid until
/// `expires_at` (Unix seconds).
pub fn credential(secret: &str, account_id: i64, expires_at: u64) -> (String, String) {
    let username = format!("{expires_at}:{account_id}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = ring::hmac::sign(&key, username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    (username, password)
}

/// Builds the ICE servers for an account at `now` (Unix seconds).
pub fn ice_servers_for(turn: Option<&TurnConfig>, account_id: i64, now: u64) -> IceServers {
    let Some(turn) = turn else {
        return IceServers {
            ice_servers: Vec::new(),
            expires_at: None,
        };
    };
    let expires_at = now + turn.credential_ttl.as_secs();
    let (username, credential) = credential(&turn.secret, account_id, expires_at);
    IceServers {
        ice_servers: vec![IceServer {
            urls: turn.urls.clone(),
            username,
            credential,
        }],
        expires_at: Some(expires_at),
    }
}

/// Returns the ICE servers the page gives its peer connection before joining the
/// meeting's media: the configured TURN servers with a credential of the caller's own.
/// Anyone who may send a join request gets them, while the meeting is not over.
#[utoipa::path(get, path = "/api/meetings/{id}/live/ice-servers", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 200, body = IceServers), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn ice_servers(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<IceServers>> {
    let account = caller.session.account.id;
    let access = meetings::access(&state, id, account).await?;
    check_open(&access)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    Ok(ApiJson(ice_servers_for(
        state.config.media.turn.as_ref(),
        account,
        now,
    )))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Computed independently with
    /// `printf '1700000000:42' | openssl dgst -sha1 -hmac north-wind-7 -binary | base64`.
    #[test]
    fn credential_matches_openssl_vector() {
        let (username, password) = credential("north-wind-7", 42, 1_700_000_000);
        assert_eq!(username, "1700000000:42");
        assert_eq!(password, "bY2Fg2dCB2YOmTEdSPLZ6kz/hrA=");
    }

    #[test]
    fn credential_depends_on_secret_and_account() {
        let (_, base) = credential("north-wind-7", 42, 1_700_000_000);
        let (_, other_secret) = credential("north-wind-8", 42, 1_700_000_000);
        let (other_user, other_account) = credential("north-wind-7", 43, 1_700_000_000);
        assert_ne!(base, other_secret);
        assert_ne!(base, other_account);
        assert_eq!(other_user, "1700000000:43");
    }

    #[test]
    fn ice_servers_expire_after_ttl() {
        let turn = TurnConfig {
            urls: vec!["turn:10.1.2.3:3478?transport=tcp".to_owned()],
            secret: "north-wind-7".to_owned(),
            credential_ttl: Duration::from_secs(3600),
        };
        let servers = ice_servers_for(Some(&turn), 42, 1_700_000_000);
        assert_eq!(servers.expires_at, Some(1_700_003_600));
        assert_eq!(servers.ice_servers.len(), 1);
        let server = &servers.ice_servers[0];
        assert_eq!(server.urls, turn.urls);
        assert_eq!(server.username, "1700003600:42");
        assert_eq!(
            server.credential,
            credential("north-wind-7", 42, 1_700_003_600).1
        );
    }

    #[test]
    fn no_turn_gives_no_ice_servers() {
        let servers = ice_servers_for(None, 42, 1_700_000_000);
        assert!(servers.ice_servers.is_empty());
        assert_eq!(servers.expires_at, None);
    }
}
