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
/// as an id that is not a number, a malformed query string, a wrong method
/// or an upload over a route's size limit, into the API's error shape. The
/// framework's English text goes to `detail`.
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
    let error = rejection_error(status, &detail);
    let mut response = error.into_response();
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// Builds the API error for a framework rejection with this status and text.
fn rejection_error(status: StatusCode, detail: &str) -> AppError {
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => AppError::new(
            status,
            "method_not_allowed",
            "该接口不支持此请求方法",
            "this endpoint does not support the request method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => super::json::payload_too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::new(
            status,
            "unsupported_media_type",
            "不支持此请求体类型",
            "the request body's content type is not supported",
        ),
        _ => {
            let query = detail.strip_prefix("Failed to deserialize query string: ");
            let missing = query
                .and_then(|text| text.strip_prefix("missing field `"))
                .and_then(|rest| rest.split('`').next());
            match (query, missing) {
                (_, Some(name)) => AppError::new(
                    status,
                    "invalid_request",
                    "缺少必填的查询参数",
                    format!("missing query parameter {name}"),
                )
                .field(name),
                (Some(text), None) => {
                    let error = AppError::new(
                        status,
                        "invalid_request",
                        "查询参数无效，请检查后重试",
                        format!("invalid query parameter: {text}"),
                    );
                    // serde_path_to_error puts the parameter's name first, as in "year: invalid digit".
                    match text.split_once(": ") {
                        Some((name, _)) if is_parameter_name(name) => error.field(name),
                        _ => error,
                    }
                }
                (None, None) => AppError::new(
                    status,
                    "invalid_request",
                    "请求地址或参数无效，请检查后重试",
                    format!("invalid request path or query: {detail}"),
                ),
            }
        }
    };
    if detail.is_empty() {
        error
    } else {
        error.detail(detail)
    }
}

fn is_parameter_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn length_limit_is_payload_too_large() {
        let error = rejection_error(StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded");
        assert_eq!(error.code, "payload_too_large");
        assert_eq!(error.detail.as_deref(), Some("length limit exceeded"));
        assert!(!error.message(Lang::Zh).contains("length"));
    }

    #[test]
    fn missing_query_parameter_is_named() {
        let text = "Failed to deserialize query string: missing field `name`";
        let error = rejection_error(StatusCode::BAD_REQUEST, text);
        assert_eq!(error.field.as_deref(), Some("name"));
        assert_eq!(error.message(Lang::Zh), "缺少必填的查询参数");
        assert_eq!(error.detail.as_deref(), Some(text));
    }

    #[test]
    fn invalid_query_parameter_is_named() {
        let text = "Failed to deserialize query string: year: invalid digit found in string";
        let error = rejection_error(StatusCode::BAD_REQUEST, text);
        assert_eq!(error.field.as_deref(), Some("year"));
        assert_eq!(error.message(Lang::Zh), "查询参数无效，请检查后重试");
    }

    #[test]
    fn bad_path_keeps_detail() {
        let text = "Invalid URL: Cannot parse `abc` to a `i64`";
        let error = rejection_error(StatusCode::BAD_REQUEST, text);
        assert_eq!(error.code, "invalid_request");
        assert_eq!(error.message(Lang::Zh), "请求地址或参数无效，请检查后重试");
        assert_eq!(error.detail.as_deref(), Some(text));
    }
}
