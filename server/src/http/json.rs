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
            return Err(unsupported_media_type());
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    payload_too_large().detail(rejection.body_text())
                } else {
                    AppError::bad_request(
                        "invalid_body",
                        "无法读取请求体，请重试",
                        "failed to read the request body; try again",
                    )
                    .detail(rejection.body_text())
                }
            })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses a body, mapping syntax errors to 400 and type errors to 422 with
/// the JSON path of the bad field. Messages are the API's own, and serde's
/// text goes to the error's `detail`.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            malformed(&inner)
        } else {
            invalid_value(path, &inner)
        }
    })?;
    // Text after the JSON value makes the whole body malformed.
    deserializer.end().map_err(|error| malformed(&error))?;
    Ok(value)
}

/// Converts an already parsed JSON value, with the same field-level errors
/// as [`parse`].
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, AppError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        invalid_value(path, error.inner())
    })
}

/// Builds the 400 error for a body that is not JSON, naming where parsing stopped.
fn malformed(error: &serde_json::Error) -> AppError {
    let (line, column) = (error.line(), error.column());
    AppError::bad_request(
        "invalid_json",
        format!("请求体不是有效的 JSON，请检查第 {line} 行第 {column} 列附近"),
        format!("malformed JSON near line {line}, column {column}"),
    )
    .detail(error.to_string())
}

/// Builds the 422 error for JSON that does not fit the request, naming the field.
fn invalid_value(path: String, error: &serde_json::Error) -> AppError {
    let full = error.to_string();
    // serde_json appends the position to data errors, which the message does not need.
    let text = match full.rfind(" at line ") {
        Some(index) => &full[..index],
        None => full.as_str(),
    };
    let field = quoted_name(text, "missing field `")
        .or_else(|| (path != ".").then_some(path))
        .unwrap_or_default();
    let zh = if text.starts_with("missing field") {
        "缺少必填项".to_owned()
    } else if text.starts_with("unknown field") {
        "此接口不接受这一项，请删去".to_owned()
    } else if text.starts_with("unknown variant") {
        "取值不在可选范围内".to_owned()
    } else if text.starts_with("invalid type") {
        match expected_kind(text) {
            Some(kind) => format!("取值类型不正确，应为{kind}"),
            None => "取值类型不正确".to_owned(),
        }
    } else if text.starts_with("duplicate field") {
        "同一项出现了两次".to_owned()
    } else if text.starts_with("invalid length") {
        "元素个数不正确".to_owned()
    } else {
        "取值无效".to_owned()
    };
    let en = if field.is_empty() {
        format!("invalid request body: {text}")
    } else {
        format!("invalid {field}: {text}")
    };
    AppError::invalid(&field, zh, en).detail(full)
}

/// Extracts the name inside serde's backquotes after `prefix`, as in
/// "missing field `x`".
fn quoted_name(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    Some(rest.split('`').next()?.to_owned())
}

/// Translates the expected JSON kind of an "invalid type: …, expected …"
/// message into Chinese.
fn expected_kind(message: &str) -> Option<&'static str> {
    let (_, expected) = message.rsplit_once(", expected ")?;
    let kinds: &[(&[&str], &str)] = &[
        (
            &[
                "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "integer",
            ],
            "整数",
        ),
        (&["f32", "f64", "number"], "数字"),
        (&["bool"], "true 或 false"),
        (&["string", "char"], "文本"),
        (&["sequence", "array", "tuple"], "数组"),
        (&["struct", "map"], "对象"),
    ];
    kinds
        .iter()
        .find(|(names, _)| names.iter().any(|name| expected.contains(name)))
        .map(|(_, kind)| *kind)
}

/// Builds the 413 error for a body over the route's size limit.
pub fn payload_too_large() -> AppError {
    AppError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "请求体或上传的文件超过了大小上限，请缩小后重试",
        "the request body or uploaded file is over the size limit; make it smaller and try again",
    )
}

/// Builds the 415 error for a JSON route called with another content type.
pub fn unsupported_media_type() -> AppError {
    AppError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "请求体必须是 JSON（Content-Type: application/json）",
        "request body must be JSON (Content-Type: application/json)",
    )
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

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
    fn messages_keep_serde_text_in_detail() {
        let error = parse::<Body>(br#"{"name": "x", "parent_id": "seven"}"#).unwrap_err();
        assert_eq!(error.message(Lang::Zh), "取值类型不正确，应为整数");
        let detail = error.detail.as_deref().unwrap();
        assert!(detail.starts_with("invalid type: string"), "{detail}");
        assert_eq!(
            error.message(Lang::En),
            "invalid parent_id: invalid type: string \"seven\", expected i64"
        );

        let missing = parse::<Body>(br#"{"name": "x"}"#).unwrap_err();
        assert_eq!(missing.message(Lang::Zh), "缺少必填项");

        let unknown = parse::<Body>(br#"{"name": "x", "parent_id": 1, "colour": 2}"#).unwrap_err();
        assert_eq!(unknown.message(Lang::Zh), "此接口不接受这一项，请删去");
        assert_eq!(unknown.field.as_deref(), Some("colour"));

        let syntax = parse::<Body>(b"{\n  \"name\": ").unwrap_err();
        assert_eq!(
            syntax.message(Lang::Zh),
            "请求体不是有效的 JSON，请检查第 2 行第 10 列附近"
        );
        assert!(syntax.detail.is_some());
    }

    #[test]
    fn missing_field_is_named() {
        let error = parse::<Body>(br#"{"name": "x"}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("parent_id"));
    }
}
