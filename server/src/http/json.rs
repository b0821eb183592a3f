//! `ApiJson<T>`: like `axum::Json`, but every rejection uses the API's error
//! shape and names the offending field.

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// A JSON request body or response.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        if !is_json {
            return Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "请求体必须是 JSON（Content-Type: application/json）",
                "request body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "请求体过大",
                        "request body is too large",
                    )
                } else {
                    AppError::bad_request(
                        "invalid_body",
                        "无法读取请求体",
                        "failed to read request body",
                    )
                }
            })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses a body, mapping syntax errors to 400 and type errors to 422 with
/// the JSON path of the bad field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            AppError::bad_request(
                "invalid_json",
                format!("JSON 格式错误：{inner}"),
                format!("malformed JSON: {inner}"),
            )
        } else {
            let field = if path == "." { String::new() } else { path };
            let field_name = missing_field(&inner.to_string()).unwrap_or(field);
            AppError::invalid(
                &field_name,
                format!("字段取值无效：{inner}"),
                format!("invalid value: {inner}"),
            )
        }
    })?;
    // Text after the JSON value makes the whole body malformed.
    deserializer.end().map_err(|error| {
        AppError::bad_request(
            "invalid_json",
            format!("JSON 格式错误：{error}"),
            format!("malformed JSON: {error}"),
        )
    })?;
    Ok(value)
}

/// Converts an already parsed JSON value, with the same field-level errors
/// as [`parse`].
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, AppError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let field = if path == "." { String::new() } else { path };
        let field_name = missing_field(&inner.to_string()).unwrap_or(field);
        AppError::invalid(
            &field_name,
            format!("字段取值无效：{inner}"),
            format!("invalid value: {inner}"),
        )
    })
}

/// Extracts the name from serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        parent_id: i64,
    }

    #[test]
    fn syntax_error_is_400() {
        let error = parse::<Body>(b"{\"name\": ").unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.code, "invalid_json");
    }

    #[test]
    fn wrong_type_names_field() {
        let error = parse::<Body>(br#"{"name": "x", "parent_id": "seven"}"#).unwrap_err();
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.field.as_deref(), Some("parent_id"));
    }

    #[test]
    fn trailing_text_is_400() {
        let error = parse::<Body>(br#"{"name": "x", "parent_id": 1} x"#).unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.code, "invalid_json");
    }

    #[test]
    fn missing_field_is_named() {
        let error = parse::<Body>(br#"{"name": "x"}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("parent_id"));
    }
}
