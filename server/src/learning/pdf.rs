//! PDF reading lessons: an organizer uploads a PDF file in place of the
//! rich text, and readers get it with HTTP range requests, as videos are
//! served, for the browser's own PDF viewer in a same-origin frame. Study
//! time counts as for rich-text reading lessons: the time the page is
//! visible.

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::readable_lesson_course;
use super::video::{LessonFile, check_lesson_kind, commit_file, serve_blob, store_blob};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::files;
use crate::http::ApiJson;
use crate::perm::Caller;
use crate::state::AppState;

/// Largest accepted lesson PDF, in bytes (50 MiB).
pub const MAX_PDF_SIZE: usize = 50 * 1024 * 1024;

const PDF_MIME: &str = "application/pdf";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_pdf, read_pdf))
        .layer(DefaultBodyLimit::max(MAX_PDF_SIZE))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct PdfQuery {
    /// File name with extension `.pdf`.
    name: String,
}

/// Stores a PDF file for a reading lesson from the raw request body. The
/// lesson page then shows the file instead of the lesson's rich text.
#[utoipa::path(post, path = "/api/learning/lessons/{id}/pdf", tag = "learning", params(PdfQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "The stored PDF file"), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn upload_pdf(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<PdfQuery>,
    body: Bytes,
) -> AppResult<ApiJson<serde_json::Value>> {
    let course = readable_lesson_course(&state, &caller.principal, id).await?;
    if !course.can_manage(&caller.principal) {
        return Err(AppError::forbidden());
    }
    check_lesson_kind(&state, id, "reading").await?;
    let name = files::check_name(&query.name)?;
    check_pdf(&name, &body)?;

    let mut tx = state.db.begin().await?;
    let sha256 = store_blob(&state, &mut tx, &body, PDF_MIME).await?;
    sqlx::query("UPDATE learning_lessons SET pdf_sha256 = $1 WHERE id = $2")
        .bind(&sha256)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let file = LessonFile {
        lesson_id: id,
        course_id: course.id,
        action: "learning.lesson.pdf",
        name: &name,
        mime: PDF_MIME,
        sha256,
        size: body.len(),
    };
    commit_file(&state, &caller, tx, file).await
}

/// Checks that the name ends in `.pdf` and the bytes start as a PDF file.
fn check_pdf(name: &str, bytes: &[u8]) -> AppResult<()> {
    let ext = std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "pdf" {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_file_type",
            format!("不支持的文件类型 .{ext}，阅读课时只能上传 PDF 文件"),
            format!("file type .{ext} is not accepted; reading lessons take PDF files"),
        )
        .field("name"));
    }
    if infer::get(bytes).map(|kind| kind.mime_type()) != Some(PDF_MIME) {
        return Err(files::type_mismatch(&ext));
    }
    Ok(())
}

/// Serves a reading lesson's PDF file to a reader of its course, with the
/// same range handling as lesson videos. Only this server's pages may
/// frame it.
#[utoipa::path(get, path = "/api/learning/lessons/{id}/pdf", tag = "learning",
    responses((status = 200, description = "The whole PDF file"), (status = 206, description = "The requested range"),
        (status = 404, body = ErrorBody), (status = 416, body = ErrorBody)))]
async fn read_pdf(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> AppResult<Response> {
    readable_lesson_course(&state, &caller.principal, id).await?;
    let sha256: Option<Option<String>> =
        sqlx::query_scalar("SELECT pdf_sha256 FROM learning_lessons WHERE id = $1")
            .bind(id)
            .fetch_optional(&state.db.pool)
            .await?;
    let Some(Some(sha256)) = sha256 else {
        return Err(AppError::not_found(
            ("课时 PDF 文件", "lesson PDF file"),
            id,
        ));
    };
    let mut response = serve_blob(&state, &sha256, PDF_MIME, &headers).await?;
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    response_headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'self'"),
    );
    response_headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_type_checked_by_content() {
        assert!(check_pdf("a.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n").is_ok());
        assert!(check_pdf("A.PDF", b"%PDF-1.7\n").is_ok());
        let renamed = check_pdf("a.pdf", b"<html><body>not a pdf</body></html>");
        assert_eq!(renamed.unwrap_err().code, "file_type_mismatch");
        let wrong_name = check_pdf("a.docx", b"%PDF-1.7\n");
        assert_eq!(wrong_name.unwrap_err().code, "unsupported_file_type");
    }
}
