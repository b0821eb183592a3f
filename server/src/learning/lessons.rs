//! HTTP resource `/api/learning/lessons/{id}` for organizers: edit a
//! lesson (title, place in the course, length, credit hours, playback
//! rate, text) and delete it.
//!
//! Deleting is a soft delete: the row stays with `deleted_at` set, so the
//! progress rows and the ledger entries of members who studied the lesson
//! keep their lesson and course, and no credit hour is taken back. The
//! lesson leaves the course page, its credit hours leave the course total,
//! and new study sessions on it are rejected.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use sqlx::AnyConnection;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::readable_lesson_course;
use super::centi_from_hours;
use super::check_text;
use super::courses::{LessonView, check_duration, check_max_rate, course_updated, lesson_view};
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::perm::Caller;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(update_lesson, delete_lesson))
}

/// Changes to a lesson. Absent fields keep their value.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LessonUpdate {
    pub title: Option<String>,
    /// New place in the course, counted from 1. The lessons in between move by one.
    pub position: Option<i64>,
    /// Video length or expected reading time, in seconds.
    pub duration_s: Option<i64>,
    /// Credit hours set by the organizer.
    pub credit_hours: Option<f64>,
    /// With `true`, the credit hours follow the rule by length again.
    #[serde(default)]
    pub credit_by_length: bool,
    /// Fastest playback counted, as a factor of real time (1 to 2).
    pub max_rate: Option<f64>,
    /// Rich text of a reading lesson, or notes under a video, sanitized before storing.
    pub body_html: Option<String>,
}

/// Loads the course id of a lesson the caller manages: `not_found` for a
/// lesson the caller cannot read, `forbidden` for one the caller only reads.
async fn managed_lesson(state: &AppState, caller: &Caller, id: i64) -> AppResult<i64> {
    let course = readable_lesson_course(state, &caller.principal, id).await?;
    if !course.can_manage(&caller.principal) {
        return Err(AppError::forbidden());
    }
    Ok(course.id)
}

/// Edits a lesson. Members' progress and ledger entries stay as they are,
/// also when the length or the credit hours change.
#[utoipa::path(patch, path = "/api/learning/lessons/{id}", tag = "learning", request_body = LessonUpdate,
    responses((status = 200, body = LessonView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_lesson(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<LessonUpdate>,
) -> AppResult<ApiJson<LessonView>> {
    let course_id = managed_lesson(&state, &caller, id).await?;
    let title = input
        .title
        .as_deref()
        .map(|title| check_text("title", title, 200))
        .transpose()?;
    let duration_ms = input.duration_s.map(check_duration).transpose()?;
    let max_rate_pct = input.max_rate.map(check_max_rate).transpose()?;
    if input.credit_by_length && input.credit_hours.is_some() {
        return Err(AppError::invalid(
            "credit_hours",
            "不能同时设定学时并按时长计算学时",
            "credit_hours cannot be set together with credit_by_length",
        ));
    }
    let credit_centi = input
        .credit_hours
        .map(|value| centi_from_hours("credit_hours", value, 10.0))
        .transpose()?;
    let body_html = input
        .body_html
        .as_deref()
        .map(crate::notices::sanitize_html);

    let mut tx = state.db.begin().await?;
    if let Some(title) = &title {
        set_column(&mut tx, id, "title", title.clone()).await?;
    }
    if let Some(duration_ms) = duration_ms {
        set_column(&mut tx, id, "duration_ms", duration_ms).await?;
    }
    if let Some(max_rate_pct) = max_rate_pct {
        set_column(&mut tx, id, "max_rate_pct", max_rate_pct).await?;
    }
    if credit_centi.is_some() || input.credit_by_length {
        set_column(&mut tx, id, "credit_centi", credit_centi).await?;
    }
    if let Some(body_html) = &body_html {
        set_column(&mut tx, id, "body_html", body_html.clone()).await?;
    }
    if let Some(position) = input.position {
        move_lesson(&mut tx, course_id, id, position).await?;
    }
    let event = course_updated(&mut tx, course_id).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "learning.lesson.update",
        ("lesson", id.to_string()),
        json!({
            "course_id": course_id,
            "title": title,
            "position": input.position,
            "duration_s": input.duration_s,
            "credit_hours": input.credit_hours,
            "credit_by_length": input.credit_by_length,
            "max_rate": input.max_rate,
            "body_changed": body_html.is_some(),
        }),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish([event]);
    tracing::info!(lesson_id = id, course_id, "lesson updated");
    let mut conn = state.db.pool.acquire().await?;
    Ok(ApiJson(
        lesson_view(&mut conn, id, caller.principal.member_id).await?,
    ))
}

/// Sets one column of a lesson; `column` is always one of this module's
/// literals, never input.
async fn set_column<T>(conn: &mut AnyConnection, id: i64, column: &str, value: T) -> AppResult<()>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
{
    sqlx::query(&format!(
        "UPDATE learning_lessons SET {column} = $1 WHERE id = $2"
    ))
    .bind(value)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves a lesson to `position` (from 1) among the course's lessons that
/// are not deleted, and numbers them 1, 2, 3 … again.
async fn move_lesson(
    conn: &mut AnyConnection,
    course_id: i64,
    lesson_id: i64,
    position: i64,
) -> AppResult<()> {
    let mut ids = live_lesson_ids(conn, course_id).await?;
    let count = ids.len() as i64;
    if !(1..=count).contains(&position) {
        return Err(AppError::invalid(
            "position",
            format!("位置须在 1 到 {count} 之间"),
            format!("position must be between 1 and {count}"),
        ));
    }
    ids.retain(|id| *id != lesson_id);
    ids.insert((position - 1) as usize, lesson_id);
    renumber(conn, &ids).await
}

/// Lists the ids of a course's lessons that are not deleted, in course order.
async fn live_lesson_ids(conn: &mut AnyConnection, course_id: i64) -> AppResult<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM learning_lessons WHERE course_id = $1 AND deleted_at IS NULL \
         ORDER BY position, id",
    )
    .bind(course_id)
    .fetch_all(&mut *conn)
    .await?)
}

async fn renumber(conn: &mut AnyConnection, ids: &[i64]) -> AppResult<()> {
    for (index, id) in ids.iter().enumerate() {
        sqlx::query("UPDATE learning_lessons SET position = $1 WHERE id = $2")
            .bind(index as i64 + 1)
            .bind(*id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Deletes a lesson from its course. Progress rows and ledger entries stay,
/// so members keep the credit hours they earned on it.
#[utoipa::path(delete, path = "/api/learning/lessons/{id}", tag = "learning",
    responses((status = 204, description = "The lesson left its course"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_lesson(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<StatusCode> {
    let course_id = managed_lesson(&state, &caller, id).await?;
    let mut tx = state.db.begin().await?;
    let deleted = sqlx::query(
        "UPDATE learning_lessons SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(AppError::not_found(("课时", "lesson"), id));
    }
    let ids = live_lesson_ids(&mut tx, course_id).await?;
    renumber(&mut tx, &ids).await?;

    let studied: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM learning_progress WHERE lesson_id = $1 AND counted_ms > 0",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let credited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM learning_credits WHERE source = 'lesson' AND ref_id = $1",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;

    let event = course_updated(&mut tx, course_id).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "learning.lesson.delete",
        ("lesson", id.to_string()),
        json!({"course_id": course_id, "members_studied": studied, "ledger_entries_kept": credited}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish([event]);
    tracing::info!(
        lesson_id = id,
        course_id,
        members_studied = studied,
        "lesson deleted"
    );
    Ok(StatusCode::NO_CONTENT)
}
