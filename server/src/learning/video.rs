//! Lesson videos: upload by an organizer, and playback with HTTP range
//! requests (RFC 9110, section 14) so that players can seek and resume.
//! The storing, auditing and range-serving steps are shared with the PDF
//! files of reading lessons.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::readable_lesson_course;
use super::courses::course_updated;
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::files;
use crate::http::ApiJson;
use crate::perm::Caller;
use crate::state::AppState;

/// Largest accepted lesson video, in bytes (512 MiB).
// NOTE: the upload is buffered in memory before it is hashed and written,
// so each upload in flight costs up to this much memory.
pub const MAX_VIDEO_SIZE: usize = 512 * 1024 * 1024;

/// Bytes read from disk per body chunk while streaming a video.
const CHUNK: usize = 64 * 1024;

/// Accepted video extensions and the MIME type served for each.
const VIDEO_TYPES: &[(&str, &str)] = &[("webm", "video/webm"), ("mp4", "video/mp4")];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_video, play_video))
        .layer(DefaultBodyLimit::max(MAX_VIDEO_SIZE))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct VideoQuery {
    /// File name with extension `.webm` or `.mp4`.
    name: String,
    /// Length of the video in seconds, as the organizer's player measured
    /// it; replaces the lesson's duration when given.
    duration_s: Option<f64>,
}

/// Stores a video for a video lesson (raw bytes as the body).
#[utoipa::path(post, path = "/api/learning/lessons/{id}/video", tag = "learning", params(VideoQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "The stored video"), (status = 403, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn upload_video(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<VideoQuery>,
    body: Bytes,
) -> AppResult<ApiJson<serde_json::Value>> {
    let course = readable_lesson_course(&state, &caller.principal, id).await?;
    if !course.can_manage(&caller.principal) {
        return Err(AppError::forbidden());
    }
    let course_id = course.id;
    check_lesson_kind(&state, id, "video").await?;
    let name = files::check_name(&query.name)?;
    let mime = check_video(&name, &body)?;
    let duration_ms = match query.duration_s {
        None => None,
        Some(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0 => {
            Some((seconds * 1000.0).round() as i64)
        }
        Some(_) => {
            return Err(AppError::invalid(
                "duration_s",
                "视频时长须在 0 到 24 小时之间",
                "duration_s must be between 0 and 24 hours",
            ));
        }
    };
    let mut tx = state.db.begin().await?;
    let sha256 = store_blob(&state, &mut tx, &body, mime).await?;
    sqlx::query(
        "UPDATE learning_lessons SET video_sha256 = $1, video_mime = $2, \
         duration_ms = COALESCE($3, duration_ms) WHERE id = $4",
    )
    .bind(&sha256)
    .bind(mime)
    .bind(duration_ms)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let file = LessonFile {
        lesson_id: id,
        course_id,
        action: "learning.lesson.video",
        name: &name,
        mime,
        sha256,
        size: body.len(),
    };
    commit_file(&state, &caller, tx, file).await
}

/// A file just stored for a lesson, for the audit entry and the response.
pub(super) struct LessonFile<'a> {
    pub lesson_id: i64,
    pub course_id: i64,
    /// The audit action, such as `learning.lesson.video`.
    pub action: &'static str,
    pub name: &'a str,
    pub mime: &'a str,
    pub sha256: String,
    pub size: usize,
}

/// Announces a lesson's new file on the course topic, audits it, commits
/// the upload's transaction and returns the response body.
pub(super) async fn commit_file(
    state: &AppState,
    caller: &Caller,
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    file: LessonFile<'_>,
) -> AppResult<ApiJson<serde_json::Value>> {
    let event = course_updated(&mut tx, file.course_id).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        file.action,
        ("lesson", file.lesson_id.to_string()),
        json!({"sha256": file.sha256, "size": file.size, "name": file.name}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish([event]);
    tracing::info!(
        lesson_id = file.lesson_id,
        size = file.size,
        action = file.action,
        "lesson file stored"
    );
    Ok(ApiJson(json!({
        "lesson_id": file.lesson_id,
        "sha256": file.sha256,
        "size": file.size,
        "mime": file.mime,
    })))
}

/// Rejects a file for a lesson of another kind: videos belong to video
/// lessons, PDF files to reading lessons.
pub(super) async fn check_lesson_kind(state: &AppState, id: i64, expected: &str) -> AppResult<()> {
    let kind: String = sqlx::query_scalar("SELECT kind FROM learning_lessons WHERE id = $1")
        .bind(id)
        .fetch_one(&state.db.pool)
        .await?;
    if kind == expected {
        return Ok(());
    }
    let (zh, en) = match expected {
        "video" => (
            "只有视频课时可以上传视频",
            "only video lessons take a video",
        ),
        _ => (
            "只有阅读课时可以上传 PDF 文件",
            "only reading lessons take a PDF file",
        ),
    };
    Err(AppError::conflict("wrong_lesson_kind", zh, en))
}

/// Writes an uploaded file to the files directory, records it in
/// `stored_files` inside the caller's transaction and returns its SHA-256.
pub(super) async fn store_blob(
    state: &AppState,
    conn: &mut sqlx::AnyConnection,
    body: &Bytes,
    mime: &str,
) -> AppResult<String> {
    let sha256 = hex::encode(Sha256::digest(body));
    files::write_blob(&state.config.store.files_dir(), &sha256, body).await?;
    sqlx::query(
        "INSERT INTO stored_files (sha256, size, mime, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(&sha256)
    .bind(body.len() as i64)
    .bind(mime)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(sha256)
}

/// Checks that the bytes are a WebM or MP4 video matching the extension.
fn check_video(name: &str, bytes: &[u8]) -> AppResult<&'static str> {
    let ext = std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let Some((_, mime)) = VIDEO_TYPES.iter().find(|(e, _)| *e == ext) else {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_file_type",
            format!("不支持的视频类型 .{ext}，可上传：webm、mp4"),
            format!("video type .{ext} is not accepted; accepted: webm, mp4"),
        )
        .field("name"));
    };
    let sniffed = infer::get(bytes).map(|kind| kind.extension());
    let consistent = match ext.as_str() {
        "webm" => matches!(sniffed, Some("webm" | "mkv")),
        _ => matches!(sniffed, Some("mp4" | "m4v" | "mov")),
    };
    if !consistent {
        return Err(files::type_mismatch(&ext));
    }
    Ok(mime)
}

/// Streams a lesson's video to a reader of its course. A `Range: bytes=`
/// header with one range gets 206 and that range; several ranges get the
/// whole file.
#[utoipa::path(get, path = "/api/learning/lessons/{id}/video", tag = "learning",
    responses((status = 200, description = "The whole video"), (status = 206, description = "The requested range"),
        (status = 404, body = ErrorBody), (status = 416, body = ErrorBody)))]
async fn play_video(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> AppResult<Response> {
    readable_lesson_course(&state, &caller.principal, id).await?;
    let video: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT video_sha256, video_mime FROM learning_lessons WHERE id = $1")
            .bind(id)
            .fetch_optional(&state.db.pool)
            .await?;
    let Some((Some(sha256), Some(mime))) = video else {
        return Err(AppError::not_found(("课时视频", "lesson video"), id));
    };
    serve_blob(&state, &sha256, &mime, &headers).await
}

/// Streams a stored file with one optional byte range: 206 with that range,
/// or 200 with the whole file for no range or several ranges.
pub(super) async fn serve_blob(
    state: &AppState,
    sha256: &str,
    mime: &str,
    headers: &HeaderMap,
) -> AppResult<Response> {
    let path = files::blob_path(&state.config.store.files_dir(), sha256);
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(AppError::internal)?;
    let size = file.metadata().await.map_err(AppError::internal)?.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
        .map(|value| parse_range(value, size))
        .transpose()?
        .flatten();
    let (status, start, end) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end),
        None => (StatusCode::OK, 0, size.saturating_sub(1)),
    };
    let length = if size == 0 { 0 } else { end - start + 1 };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(AppError::internal)?;
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, mime)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, length)
        .header(header::CACHE_CONTROL, "private, max-age=3600")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if status == StatusCode::PARTIAL_CONTENT {
        let value = format!("bytes {start}-{end}/{size}");
        response = response.header(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&value).map_err(AppError::internal)?,
        );
    }
    response
        .body(Body::from_stream(read_chunks(file, length)))
        .map_err(AppError::internal)
}

/// Reads `length` bytes from the file's current position in chunks.
fn read_chunks(
    file: tokio::fs::File,
    length: u64,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::unfold((file, length), |(mut file, remaining)| async move {
        if remaining == 0 {
            return None;
        }
        let mut buffer = vec![0; CHUNK.min(remaining as usize)];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok(Bytes::from(buffer)), (file, remaining - read as u64)))
            }
            Err(error) => Some((Err(error), (file, 0))),
        }
    })
}

/// Parses a `Range` header against a file of `size` bytes into an
/// inclusive byte range. Returns `None` for a header that gets the whole
/// file (another unit, several ranges), and 416 for a range
/// that starts past the end.
pub fn parse_range(value: &str, size: u64) -> AppResult<Option<(u64, u64)>> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = || {
        AppError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!("请求的范围 {value} 超出文件大小 {size} 字节"),
            format!("range {value:?} is outside the file of {size} bytes"),
        )
    };
    let (start, end) = match (first.trim(), last.trim()) {
        ("", "") => return Ok(None),
        ("", suffix) => {
            let suffix: u64 = suffix.parse().map_err(|_| unsatisfiable())?;
            if suffix == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            (size.saturating_sub(suffix), size - 1)
        }
        (first, last) => {
            let start: u64 = first.parse().map_err(|_| unsatisfiable())?;
            let end = if last.is_empty() {
                size.saturating_sub(1)
            } else {
                last.parse::<u64>()
                    .map_err(|_| unsatisfiable())?
                    .min(size.saturating_sub(1))
            };
            if start >= size || end < start {
                return Err(unsatisfiable());
            }
            (start, end)
        }
    };
    Ok(Some((start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_forms() {
        assert_eq!(parse_range("bytes=0-99", 1000).unwrap(), Some((0, 99)));
        assert_eq!(parse_range("bytes=900-", 1000).unwrap(), Some((900, 999)));
        assert_eq!(parse_range("bytes=-100", 1000).unwrap(), Some((900, 999)));
        assert_eq!(parse_range("bytes=0-5000", 1000).unwrap(), Some((0, 999)));
        assert_eq!(parse_range("bytes=0-1,5-6", 1000).unwrap(), None);
        assert_eq!(parse_range("items=0-1", 1000).unwrap(), None);
    }

    #[test]
    fn range_past_end_is_416() {
        let error = parse_range("bytes=1000-", 1000).unwrap_err();
        assert_eq!(error.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert!(parse_range("bytes=5-2", 1000).is_err());
        assert!(parse_range("bytes=x-2", 1000).is_err());
    }

    #[test]
    fn video_type_must_match() {
        let webm = [
            0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0x42, 0x82, 0x84, b'w', b'e',
            b'b', b'm',
        ];
        assert_eq!(check_video("a.webm", &webm).unwrap(), "video/webm");
        assert_eq!(
            check_video("a.mp4", &webm).unwrap_err().code,
            "file_type_mismatch"
        );
        assert_eq!(
            check_video("a.avi", &webm).unwrap_err().code,
            "unsupported_file_type"
        );
        assert_eq!(
            check_video("a.webm", b"%PDF-1.7").unwrap_err().code,
            "file_type_mismatch"
        );
    }
}
