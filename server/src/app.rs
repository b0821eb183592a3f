//! Router assembly: API resources, health and metrics endpoints, the OpenAPI
//! document and the embedded web client, under one middleware stack.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::AppError;
use crate::state::AppState;
use crate::{
    approvals, audit, auth, calendar, files, http, hub, i18n, import, learning, meetings, members,
    membership, notices, org, todo, web,
};

/// Largest accepted request body, in bytes (1 MiB). Uploads get their own
/// limits on their own routes.
pub const BODY_LIMIT: usize = 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "Dangwu API", description = "党务: organization tree, members, meetings, approvals, notices and learning."),
    tags(
        (name = "auth", description = "Login, sessions and tokens"),
        (name = "accounts", description = "Account administration"),
        (name = "orgs", description = "Organization tree and officers"),
        (name = "members", description = "Party members"),
        (name = "audit", description = "Audit trail"),
        (name = "hub", description = "Real-time WebSocket hub"),
        (name = "files", description = "Stored files"),
        (name = "notices", description = "Notices and receipts"),
        (name = "approvals", description = "Document approval: templates, documents, workflow actions"),
        (name = "todo", description = "The signed-in user's to-do counts"),
        (name = "membership", description = "Membership work: development pipeline, dues, transfers, statistics"),
        (name = "meetings", description = "Meetings: scheduling, attendance, votes, minutes, the archive, live media and host controls"),
        (name = "learning", description = "Online learning: courses, lessons, credit hours, exams and reports"),
    )
)]
struct ApiDoc;

/// The API routes with their OpenAPI description.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(auth::accounts::router())
        .merge(org::router())
        .merge(members::router())
        .merge(audit::router())
        .merge(hub::router())
        .merge(files::router())
        .merge(notices::router())
        .merge(todo::router())
        .merge(import::router())
        .merge(approvals::router())
        .merge(calendar::router())
        .merge(meetings::router())
        .merge(meetings::live::router())
        .merge(learning::router())
        .merge(membership::router())
        .split_for_parts()
}

/// Builds the complete application.
pub fn build(state: AppState) -> Router {
    let (api, openapi) = api();
    let openapi_json = serde_json::to_string(&openapi).expect("OpenAPI document serializes");
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(api)
        .route(
            "/api/openapi.json",
            get(
                move || async move { ([(header::CONTENT_TYPE, "application/json")], openapi_json) },
            ),
        )
        .route("/api/{*rest}", axum::routing::any(api_not_found))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(web::serve)
        .layer(axum::middleware::from_fn(http::api_rejections))
        .layer(axum::middleware::from_fn(http::track_metrics))
        .layer(axum::middleware::from_fn(i18n::scope_lang))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(http::request_span))
                .layer(PropagateRequestIdLayer::new(request_id)),
        )
        .with_state(state)
}

async fn api_not_found() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "no_such_endpoint",
        "没有这个接口",
        "no such API endpoint",
    )
}

async fn readyz(State(state): State<AppState>) -> Response {
    if !state.hub.broker_connected() {
        tracing::warn!("readiness check failed: not connected to NATS");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "message broker unreachable",
        )
            .into_response();
    }
    match state.db.ping().await {
        Ok(()) => "ready".into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.live.record_metrics().await;
    let body = state
        .metrics
        .as_ref()
        .map(|handle| handle.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
