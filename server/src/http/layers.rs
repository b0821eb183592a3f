//! Request tracing spans and Prometheus request metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Span;

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
