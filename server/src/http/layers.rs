//! Request tracing spans, Prometheus request metrics, and the API error
//! shape for requests that the framework itself rejects.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Span;

use crate::error::AppError;

/// Builds the span for one request, with its request id; the `user_id`
/// field is filled in once the session is known.
pub fn request_span(request: &Request) -> Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or_else(|| request.uri().path());
    tracing::info_span!(
        "request",
        method = %request.method(),
        path,
        request_id,
        user_id = tracing::field::Empty,
    )
}

/// Counts requests and records their latency by method, route and status.
pub async fn track_metrics(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("dangwu_http_requests_total", &labels).increment(1);
    metrics::histogram!("dangwu_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}

/// Rewrites the framework's own plain-text rejections of API requests, such
/// as an id that is not a number, a malformed query string or a wrong
/// method, into the API's error shape.
pub async fn api_rejections(request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !is_api || !response.status().is_client_error() || is_json {
        return response;
    }

    let status = response.status();
    let allow = response.headers().get(header::ALLOW).cloned();
    // Rejection texts are one short line; anything longer is cut.
    let detail = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let error = if status == StatusCode::METHOD_NOT_ALLOWED {
        AppError::new(
            status,
            "method_not_allowed",
            "该接口不支持此请求方法",
            "this endpoint does not support the request method",
        )
    } else {
        AppError::new(
            status,
            "invalid_request",
            format!("请求地址或参数无效：{detail}"),
            format!("invalid request path or query: {detail}"),
        )
    };
    let mut response = error.into_response();
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}
