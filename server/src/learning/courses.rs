//! HTTP resource `/api/learning/courses` and lessons: the catalogue, one
//! course with its lessons, and the organizer's edits.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{assigned_course_ids, managed_course, readable_course, readable_lesson_course};
use super::{Category, CourseRef, centi_from_hours, check_text, credit, hours};
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::hub::store;
use crate::hub::topic::Topic;
use crate::org::load_org;
use crate::perm::{Access, Caller};
use crate::state::AppState;

/// Fastest playback counted unless the organizer sets another, in percent.
pub const DEFAULT_MAX_RATE_PCT: i64 = 150;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(catalogue, create_course))
        .routes(routes!(get_course, update_course))
        .routes(routes!(add_lesson))
        .routes(routes!(get_lesson))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCourse {
    /// The organization whose officers manage the course.
    pub org_id: i64,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    pub category: Category,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CourseUpdate {
    pub title: Option<String>,
    pub summary: Option<String>,
    pub category: Option<Category>,
}

/// A course in the catalogue, with the caller's own state.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CourseSummary {
    pub id: i64,
    pub org_id: i64,
    pub org_name: String,
    pub title: String,
    pub summary: String,
    pub category: Category,
    pub lesson_count: i64,
    /// Sum of the lessons' credit hours.
    pub credit_hours: f64,
    /// Whether the course is assigned to the caller, and by when.
    pub assigned: bool,
    pub deadline_at: Option<i64>,
    pub completed_lessons: i64,
    pub can_manage: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CourseDetail {
    #[serde(flatten)]
    pub course: CourseSummary,
    pub lessons: Vec<LessonView>,
    pub exams: Vec<super::exams::ExamView>,
    /// The hub topic's sequence number when the detail was read.
    pub seq: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLesson {
    pub title: String,
    pub kind: LessonKind,
    /// Video length or expected reading time, in seconds.
    pub duration_s: i64,
    /// Credit hours; the rule by length applies when absent.
    pub credit_hours: Option<f64>,
    /// Fastest playback counted, as a factor of real time (1 to 2).
    pub max_rate: Option<f64>,
    /// Rich text of a reading lesson, or notes under a video; sanitized.
    #[serde(default)]
    pub body_html: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LessonKind {
    Video,
    Reading,
}

/// A lesson with the caller's progress on it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LessonView {
    pub id: i64,
    pub course_id: i64,
    pub position: i64,
    pub title: String,
    pub kind: String,
    pub duration_s: f64,
    pub credit_hours: f64,
    pub max_rate: f64,
    pub has_video: bool,
    /// Whether a reading lesson is a PDF file, served from
    /// `/api/learning/lessons/{id}/pdf`, instead of rich text.
    pub has_pdf: bool,
    pub body_html: String,
    /// Where the caller stopped, in seconds, to resume playback.
    pub position_s: f64,
    pub watched_until_s: f64,
    pub completed: bool,
}

/// Lists the courses the caller may see: managed ones, those of the
/// caller's organization and its ancestors, and assigned ones.
#[utoipa::path(get, path = "/api/learning/courses", tag = "learning",
    responses((status = 200, body = Vec<CourseSummary>)))]
async fn catalogue(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<ApiJson<Vec<CourseSummary>>> {
    let mut conn = state.db.pool.acquire().await?;
    let assigned = assigned_course_ids(&mut conn, &caller.principal).await?;
    let rows = sqlx::query("SELECT c.id, o.path FROM learning_courses c JOIN orgs o ON o.id = c.org_id ORDER BY c.id DESC")
        .fetch_all(&mut *conn)
        .await?;
    let own_path = caller.principal.own_org_path.clone().unwrap_or_default();
    // NOTE: every course is checked in turn, with a few queries per visible
    // course; fine for hundreds of courses, not for tens of thousands.
    let mut courses = Vec::new();
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let path: String = row.try_get("path")?;
        let visible = caller.principal.can_org(&path, Access::Read)
            || (!own_path.is_empty() && own_path.starts_with(path.as_str()))
            || assigned.iter().any(|(course_id, _)| *course_id == id);
        if visible {
            let course = super::load_course(&mut conn, id).await?;
            courses.push(summarize(&mut conn, &caller, &course, &assigned).await?);
        }
    }
    Ok(ApiJson(courses))
}

async fn summarize(
    conn: &mut AnyConnection,
    caller: &Caller,
    course: &CourseRef,
    assigned: &[(i64, Option<i64>)],
) -> AppResult<CourseSummary> {
    let row = sqlx::query(
        "SELECT c.summary, o.name AS org_name, \
         (SELECT COUNT(*) FROM learning_lessons l WHERE l.course_id = c.id AND l.deleted_at IS NULL) \
         AS lesson_count \
         FROM learning_courses c JOIN orgs o ON o.id = c.org_id WHERE c.id = $1",
    )
    .bind(course.id)
    .fetch_one(&mut *conn)
    .await?;
    let credits: Vec<(Option<i64>, i64)> = sqlx::query(
        "SELECT credit_centi, duration_ms FROM learning_lessons \
             WHERE course_id = $1 AND deleted_at IS NULL",
    )
    .bind(course.id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| Ok((row.try_get("credit_centi")?, row.try_get("duration_ms")?)))
    .collect::<Result<_, sqlx::Error>>()?;
    let credit_centi: i64 = credits
        .iter()
        .map(|(set, duration)| set.unwrap_or_else(|| credit::default_centi(*duration)))
        .sum();
    let completed_lessons: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM learning_progress p JOIN learning_lessons l ON l.id = p.lesson_id \
         WHERE l.course_id = $1 AND p.member_id = $2 AND p.completed_at IS NOT NULL \
         AND l.deleted_at IS NULL",
    )
    .bind(course.id)
    .bind(caller.principal.member_id.unwrap_or(0))
    .fetch_one(&mut *conn)
    .await?;
    let assignment = assigned.iter().find(|(id, _)| *id == course.id);
    Ok(CourseSummary {
        id: course.id,
        org_id: course.org_id,
        org_name: row.try_get("org_name")?,
        title: course.title.clone(),
        summary: row.try_get("summary")?,
        category: course.category,
        lesson_count: row.try_get("lesson_count")?,
        credit_hours: hours(credit_centi),
        assigned: assignment.is_some(),
        deadline_at: assignment.and_then(|(_, deadline)| *deadline),
        completed_lessons,
        can_manage: course.can_manage(&caller.principal),
    })
}

/// Creates a course owned by an organization the caller manages.
#[utoipa::path(post, path = "/api/learning/courses", tag = "learning", request_body = NewCourse,
    responses((status = 201, body = CourseDetail), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_course(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewCourse>,
) -> AppResult<(StatusCode, ApiJson<CourseDetail>)> {
    let title = check_text("title", &input.title, 200)?;
    let summary = input.summary.trim().to_owned();
    if summary.chars().count() > 2000 {
        return Err(AppError::invalid(
            "summary",
            "简介最多 2000 个字符",
            "summary must be at most 2000 characters",
        ));
    }
    let mut tx = state.db.begin().await?;
    let org = load_org(&mut tx, input.org_id)
        .await
        .map_err(|e| e.field("org_id"))?;
    if !caller.principal.can_org(&org.path, Access::Write) {
        return Err(AppError::forbidden().field("org_id"));
    }
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO learning_courses (org_id, title, summary, category, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(org.id)
    .bind(&title)
    .bind(&summary)
    .bind(input.category.as_str())
    .bind(caller.session.account.id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "learning.course.create",
        ("course", id.to_string()),
        json!({"title": title, "org_id": org.id, "category": input.category}),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(course_id = id, org_id = org.id, "course created");
    let detail = load_detail(&state, &caller, id).await?;
    Ok((StatusCode::CREATED, ApiJson(detail)))
}

/// Returns the position after the last lesson still in the course, for a new lesson.
pub(crate) async fn next_lesson_position(
    conn: &mut AnyConnection,
    course_id: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(MAX(position), 0) + 1 FROM learning_lessons \
         WHERE course_id = $1 AND deleted_at IS NULL",
    )
    .bind(course_id)
    .fetch_one(conn)
    .await
}

/// One course with its lessons, the caller's progress and its exams.
#[utoipa::path(get, path = "/api/learning/courses/{id}", tag = "learning",
    responses((status = 200, body = CourseDetail), (status = 404, body = ErrorBody)))]
async fn get_course(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<CourseDetail>> {
    readable_course(&state, &caller.principal, id).await?;
    Ok(ApiJson(load_detail(&state, &caller, id).await?))
}

async fn load_detail(state: &AppState, caller: &Caller, id: i64) -> AppResult<CourseDetail> {
    let seq = store::head(&state.db, &Topic::Course(id).name()).await?;
    let mut conn = state.db.pool.acquire().await?;
    let course = super::load_course(&mut conn, id).await?;
    let assigned = assigned_course_ids(&mut conn, &caller.principal).await?;
    let summary = summarize(&mut conn, caller, &course, &assigned).await?;
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM learning_lessons WHERE course_id = $1 AND deleted_at IS NULL ORDER BY position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let mut lessons = Vec::with_capacity(ids.len());
    for lesson_id in ids {
        lessons.push(lesson_view(&mut conn, lesson_id, caller.principal.member_id).await?);
    }
    let exams = super::exams::exams_of(&mut conn, id).await?;
    Ok(CourseDetail {
        course: summary,
        lessons,
        exams,
        seq,
    })
}

/// Changes a course's title, summary or category.
#[utoipa::path(patch, path = "/api/learning/courses/{id}", tag = "learning", request_body = CourseUpdate,
    responses((status = 200, body = CourseDetail), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_course(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<CourseUpdate>,
) -> AppResult<ApiJson<CourseDetail>> {
    managed_course(&state, &caller.principal, id).await?;
    let mut tx = state.db.begin().await?;
    if let Some(title) = &input.title {
        let title = check_text("title", title, 200)?;
        sqlx::query("UPDATE learning_courses SET title = $1 WHERE id = $2")
            .bind(title)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(summary) = &input.summary {
        sqlx::query("UPDATE learning_courses SET summary = $1 WHERE id = $2")
            .bind(summary.trim())
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(category) = input.category {
        sqlx::query("UPDATE learning_courses SET category = $1 WHERE id = $2")
            .bind(category.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE learning_courses SET updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event = course_updated(&mut tx, id).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "learning.course.update",
        ("course", id.to_string()),
        json!({"title": input.title, "category": input.category}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish([event]);
    Ok(ApiJson(load_detail(&state, &caller, id).await?))
}

/// Appends `course.updated` to the course's topic inside a transaction.
pub(super) async fn course_updated(
    conn: &mut AnyConnection,
    course_id: i64,
) -> AppResult<crate::hub::protocol::Event> {
    Ok(store::append(
        conn,
        &Topic::Course(course_id).name(),
        "course.updated",
        json!({"course_id": course_id}),
    )
    .await?)
}

/// Adds a lesson at the end of a course. A video lesson gets its file
/// through `POST /api/learning/lessons/{id}/video`.
#[utoipa::path(post, path = "/api/learning/courses/{id}/lessons", tag = "learning", request_body = NewLesson,
    responses((status = 201, body = LessonView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_lesson(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<NewLesson>,
) -> AppResult<(StatusCode, ApiJson<LessonView>)> {
    managed_course(&state, &caller.principal, id).await?;
    let title = check_text("title", &input.title, 200)?;
    let duration_ms = check_duration(input.duration_s)?;
    let credit_centi = input
        .credit_hours
        .map(|value| centi_from_hours("credit_hours", value, 10.0))
        .transpose()?;
    let max_rate_pct = match input.max_rate {
        None => DEFAULT_MAX_RATE_PCT,
        Some(rate) => check_max_rate(rate)?,
    };
    let body_html = crate::notices::sanitize_html(&input.body_html);
    let mut tx = state.db.begin().await?;
    let position = next_lesson_position(&mut tx, id).await?;
    let kind = match input.kind {
        LessonKind::Video => "video",
        LessonKind::Reading => "reading",
    };
    let lesson_id: i64 = sqlx::query_scalar(
        "INSERT INTO learning_lessons (course_id, position, title, kind, duration_ms, credit_centi, \
         max_rate_pct, body_html, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(id)
    .bind(position)
    .bind(&title)
    .bind(kind)
    .bind(duration_ms)
    .bind(credit_centi)
    .bind(max_rate_pct)
    .bind(&body_html)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    let event = course_updated(&mut tx, id).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "learning.lesson.add",
        ("lesson", lesson_id.to_string()),
        json!({"course_id": id, "title": title, "kind": kind}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish([event]);
    let mut conn = state.db.pool.acquire().await?;
    let view = lesson_view(&mut conn, lesson_id, caller.principal.member_id).await?;
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// Checks a lesson length in whole seconds (1 s to 24 h) and returns it in milliseconds.
pub(super) fn check_duration(seconds: i64) -> AppResult<i64> {
    if !(1..=24 * 3600).contains(&seconds) {
        return Err(AppError::invalid(
            "duration_s",
            "时长须在 1 秒到 24 小时之间",
            "duration_s must be between 1 second and 24 hours",
        ));
    }
    Ok(seconds * 1000)
}

/// Checks the fastest counted playback rate (1 to 2) and returns it in percent.
pub(super) fn check_max_rate(rate: f64) -> AppResult<i64> {
    if !(1.0..=2.0).contains(&rate) {
        return Err(AppError::invalid(
            "max_rate",
            "最高倍速须在 1 到 2 之间",
            "max_rate must be between 1 and 2",
        ));
    }
    Ok((rate * 100.0).round() as i64)
}

/// One lesson with its text and the caller's progress.
#[utoipa::path(get, path = "/api/learning/lessons/{id}", tag = "learning",
    responses((status = 200, body = LessonView), (status = 404, body = ErrorBody)))]
async fn get_lesson(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<LessonView>> {
    readable_lesson_course(&state, &caller.principal, id).await?;
    let mut conn = state.db.pool.acquire().await?;
    Ok(ApiJson(
        lesson_view(&mut conn, id, caller.principal.member_id).await?,
    ))
}

pub(super) async fn lesson_view(
    conn: &mut AnyConnection,
    id: i64,
    member_id: Option<i64>,
) -> AppResult<LessonView> {
    let row = sqlx::query(
        "SELECT l.id, l.course_id, l.position, l.title, l.kind, l.duration_ms, l.credit_centi, \
         l.max_rate_pct, l.video_sha256, l.pdf_sha256, l.body_html, p.position_ms, p.watched_until_ms, \
         p.completed_at \
         FROM learning_lessons l LEFT JOIN learning_progress p ON p.lesson_id = l.id AND p.member_id = $2 \
         WHERE l.id = $1",
    )
    .bind(id)
    .bind(member_id.unwrap_or(0))
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::not_found(("课时", "lesson"), id))?;
    let duration_ms: i64 = row.try_get("duration_ms")?;
    let credit_centi: Option<i64> = row.try_get("credit_centi")?;
    let max_rate_pct: i64 = row.try_get("max_rate_pct")?;
    let position_ms: Option<i64> = row.try_get("position_ms")?;
    let watched_ms: Option<i64> = row.try_get("watched_until_ms")?;
    let completed_at: Option<i64> = row.try_get("completed_at")?;
    let video: Option<String> = row.try_get("video_sha256")?;
    let pdf: Option<String> = row.try_get("pdf_sha256")?;
    Ok(LessonView {
        id: row.try_get("id")?,
        course_id: row.try_get("course_id")?,
        position: row.try_get("position")?,
        title: row.try_get("title")?,
        kind: row.try_get("kind")?,
        duration_s: duration_ms as f64 / 1000.0,
        credit_hours: hours(credit_centi.unwrap_or_else(|| credit::default_centi(duration_ms))),
        max_rate: max_rate_pct as f64 / 100.0,
        has_video: video.is_some(),
        has_pdf: pdf.is_some(),
        body_html: row.try_get("body_html")?,
        position_s: position_ms.unwrap_or(0) as f64 / 1000.0,
        watched_until_s: watched_ms.unwrap_or(0) as f64 / 1000.0,
        completed: completed_at.is_some(),
    })
}
