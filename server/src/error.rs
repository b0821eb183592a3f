//! The one error type of the HTTP API.
//!
//! Every failure leaves as `{"error": {"code", "message", "field", "detail"}}`
//! with a stable `code`, a message in the request's language and, where one
//! input was at fault, the name of that field. `detail` carries the parser's
//! or framework's own English text, when there is one, so that the message
//! stays in one language and nothing is lost. Internal errors are logged
//! with their cause and answered with a generic message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::i18n::{Lang, current_lang};

/// An API error with its HTTP status and both message translations.
#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    // Boxed strings keep the error small, because it travels in `Result`s.
    zh: Box<str>,
    en: Box<str>,
    pub field: Option<String>,
    pub detail: Option<Box<str>>,
}

/// The JSON body of an error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The error object: a stable code, a translated message, the offending
/// field and the untranslated technical detail.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The English text of the JSON parser or the HTTP framework.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        zh: impl Into<String>,
        en: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            zh: zh.into().into_boxed_str(),
            en: en.into().into_boxed_str(),
            field: None,
            detail: None,
        }
    }

    /// Names the input field at fault.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Keeps the parser's or framework's own text beside the message.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into().into_boxed_str());
        self
    }

    /// A field value that fails validation (422).
    pub fn invalid(field: &str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", zh, en).field(field)
    }

    /// A missing object; `what` is a `(zh, en)` pair such as `("组织", "organization")`.
    pub fn not_found(what: (&str, &str), id: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("未找到{} {id}", what.0),
            format!("{} {id} not found", what.1),
        )
    }

    pub fn conflict(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, zh, en)
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "没有执行此操作的权限",
            "you do not have permission for this action",
        )
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "请先登录",
            "log in first",
        )
    }

    pub fn bad_request(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, zh, en)
    }

    /// An unexpected failure: logged in full here, answered without detail.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "服务器内部错误，请稍后重试",
            "internal server error, try again later",
        )
    }

    /// The message in the given language.
    pub fn message(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        Self::internal(error)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message(current_lang()).to_owned(),
                field: self.field,
                detail: self.detail.map(String::from),
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.en)
    }
}

impl std::error::Error for AppError {}
