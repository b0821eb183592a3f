//! The browser client, embedded in the binary from `web/` so that the server
//! needs no separate web server and no outside host.
//!
//! Paths without a file extension fall back to `index.html`, because the
//! client routes in the browser.

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

use crate::state::AppState;

#[derive(Embed)]
#[folder = "../web/"]
struct Assets;

/// Serves an embedded file, or the client shell for client-side routes.
pub async fn serve(State(state): State<AppState>, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let nodes = state.live.placement().websocket_origins();
    if let Some(response) = file(path, &nodes) {
        return response;
    }
    let looks_like_file = path
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'));
    if looks_like_file {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    file("index.html", &nodes)
        .unwrap_or_else(|| (StatusCode::NOT_FOUND, "web client missing").into_response())
}

/// Only this server's own scripts run, the page is never framed, and
/// nothing is loaded from another host, except that the hub socket may
/// connect to the other nodes (`nodes`, WebSocket origins). Inline styles
/// stay allowed because the client sets element styles from script.
fn content_security_policy(nodes: &[String]) -> String {
    let mut connect = String::from("'self'");
    for origin in nodes {
        connect.push(' ');
        connect.push_str(origin);
    }
    format!(
        "default-src 'self'; script-src 'self'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src {connect}; \
         object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
}

fn file(path: &str, nodes: &[String]) -> Option<Response> {
    let path = if path.is_empty() { "index.html" } else { path };
    let asset = Assets::get(path)?;
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let cache = if path == "index.html" {
        "no-cache"
    } else {
        "public, max-age=300"
    };
    Some(
        (
            [
                (header::CONTENT_TYPE, mime.as_ref().to_owned()),
                (header::CACHE_CONTROL, cache.to_owned()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
                (
                    header::CONTENT_SECURITY_POLICY,
                    content_security_policy(nodes),
                ),
                (header::X_FRAME_OPTIONS, "DENY".to_owned()),
                (header::REFERRER_POLICY, "same-origin".to_owned()),
            ],
            asset.data,
        )
            .into_response(),
    )
}
