//! A lecture's recording as a lesson: the meeting's audio recording (Ogg Opus) is copied
//! into the stored files and becomes a `video` lesson of the course whose file is audio.
//! The player and the range requests of video lessons serve it unchanged.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::lecture_access;
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::files;
use crate::http::ApiJson;
use crate::meetings::live::lecture::LectureRole;
use crate::perm::Caller;
use crate::state::AppState;

/// MIME type of meeting recordings.
const RECORDING_MIME: &str = "audio/ogg";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(recording_lesson))
}

/// The recording to use, or the newest finished one when absent.
#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RecordingChoice {
    #[serde(default)]
    pub recording_id: Option<i64>,
}

/// Adds the lecture's recording to the course as a lesson (audio played like a video)
/// and returns it. Organizers and presenters only; once per lecture.
#[utoipa::path(post, path = "/api/learning/lectures/{id}/recording-lesson", tag = "learning", request_body = RecordingChoice,
    responses((status = 201, description = "The new lesson"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn recording_lesson(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(choice): ApiJson<RecordingChoice>,
) -> AppResult<(StatusCode, ApiJson<serde_json::Value>)> {
    let (lecture, role) = lecture_access(&state, &caller, id).await?;
    if role == LectureRole::Viewer {
        return Err(AppError::forbidden());
    }
    let recording = sqlx::query(
        "SELECT id, file_name, duration_ms FROM meeting_recordings \
         WHERE meeting_id = $1 AND ended_at IS NOT NULL AND ($2 = 0 OR id = $2) ORDER BY id DESC LIMIT 1",
    )
    .bind(lecture.meeting_id)
    .bind(choice.recording_id.unwrap_or(0))
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| {
        AppError::not_found(
            ("直播课的已完成录音", "finished recording of the lecture"),
            choice.recording_id.unwrap_or(lecture.meeting_id),
        )
    })?;
    let recording_id: i64 = recording.try_get("id")?;
    let file_name: String = recording.try_get("file_name")?;
    let duration_ms: i64 = recording.try_get::<i64, _>("duration_ms")?.max(1_000);
    let bytes =
        tokio::fs::read(crate::meetings::recording::recordings_dir(&state).join(&file_name))
            .await
            .map_err(AppError::internal)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let size = bytes.len();
    files::write_blob(
        &state.config.store.files_dir(),
        &sha256,
        &Bytes::from(bytes),
    )
    .await?;

    let mut tx = state.db.begin().await?;
    let existing: Option<Option<i64>> =
        sqlx::query_scalar("SELECT recording_lesson FROM learning_lectures WHERE lesson_id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(Some(lesson_id)) = existing {
        return Err(AppError::conflict(
            "recording_lesson_exists",
            format!("此直播课的录音已是课时 {lesson_id}"),
            format!("the lecture's recording is lesson {lesson_id} already"),
        ));
    }
    let title: String = sqlx::query_scalar("SELECT title FROM learning_lessons WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO stored_files (sha256, size, mime, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(&sha256)
    .bind(size as i64)
    .bind(RECORDING_MIME)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let position = super::super::courses::next_lesson_position(&mut tx, lecture.course_id).await?;
    let lesson_title = format!("{title}（录音）");
    let lesson_id: i64 = sqlx::query_scalar(
        "INSERT INTO learning_lessons (course_id, position, title, kind, duration_ms, credit_centi, \
         max_rate_pct, video_sha256, video_mime, body_html, created_at) \
         VALUES ($1, $2, $3, 'video', $4, NULL, $5, $6, $7, '', $8) RETURNING id",
    )
    .bind(lecture.course_id)
    .bind(position)
    .bind(&lesson_title)
    .bind(duration_ms)
    .bind(super::super::courses::DEFAULT_MAX_RATE_PCT)
    .bind(&sha256)
    .bind(RECORDING_MIME)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE learning_lectures SET recording_lesson = $1 WHERE lesson_id = $2")
        .bind(lesson_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event = super::course_updated(&mut tx, lecture.course_id).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "learning.lecture.recording_lesson",
        ("lesson", lesson_id.to_string()),
        json!({"lecture": id, "recording_id": recording_id, "sha256": sha256, "size": size}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish([event]);
    tracing::info!(
        lecture = id,
        lesson_id,
        recording_id,
        "lecture recording added as a lesson"
    );
    Ok((
        StatusCode::CREATED,
        ApiJson(
            json!({"lesson_id": lesson_id, "title": lesson_title, "duration_s": duration_ms as f64 / 1000.0,
            "mime": RECORDING_MIME}),
        ),
    ))
}
