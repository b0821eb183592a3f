//! Live lectures (直播党课): a lesson of kind `live` backed by a meeting in lecture mode
//! (`meetings::live::lecture`). An organizer adds one with a time, a lecturer and
//! co-presenters; the meeting is scheduled with it (kind 党课) or an existing one is
//! linked. Everyone who may study the course may watch.
//!
//! A viewer's time counts as study time through the ordinary `study_*` messages
//! ([`super::study`]): while the hub connection that carries them is in the lecture's
//! media with its media connected, the page is visible and no attention check is
//! overdue. When the lecture's meeting ends, everyone who attended at least half of the
//! time it was live is credited once, with the lesson's set hours or the rule by the
//! length they attended.

mod interaction;
mod recording;

pub use interaction::send_poll_results;

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{managed_course, readable_lesson_course};
use super::courses::{course_updated, next_lesson_position};
use super::ledger::{NewCredit, Source, add_credit};
use super::{CourseRef, centi_from_hours, check_text, credit};
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::meetings::live::lecture::{LectureFacts, LectureRole, LectureStats};
use crate::meetings::{MeetingInput, MeetingStatus, store};
use crate::perm::{Caller, Principal};
use crate::state::AppState;

/// Maximum co-presenters of one lecture.
const MAX_CO_PRESENTERS: usize = 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_lecture))
        .routes(routes!(get_lecture))
        .merge(interaction::router())
        .merge(recording::router())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLecture {
    pub title: String,
    /// Start, Unix milliseconds.
    pub starts_at: i64,
    /// Planned length in seconds, 60 to 86400.
    pub duration_s: i64,
    /// The member who gives the lecture, who is the meeting's host.
    pub lecturer_member: i64,
    /// Members who present besides the lecturer.
    #[serde(default)]
    pub co_presenters: Vec<i64>,
    /// The meeting's recorder (记录人) when a meeting is scheduled; the caller, or the
    /// first co-presenter, when absent.
    pub recorder_member: Option<i64>,
    /// Credit hours; the rule by attended length applies when absent.
    pub credit_hours: Option<f64>,
    /// An online meeting of the lecturer to link instead of scheduling one.
    pub meeting_id: Option<i64>,
    /// What the lecture is about; sanitized rich text.
    #[serde(default)]
    pub body_html: String,
}

/// A live lecture as one reader sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LectureView {
    pub lesson_id: i64,
    pub course_id: i64,
    pub course_title: String,
    pub meeting_id: i64,
    pub title: String,
    pub body_html: String,
    pub starts_at: i64,
    pub duration_s: f64,
    /// Set credit hours; absent when the rule by attended length applies.
    pub credit_hours: Option<f64>,
    /// `scheduled`, `live`, `ended` or `cancelled`, from the meeting.
    pub status: String,
    pub ended_at: Option<i64>,
    pub lecturer: Presenter,
    pub co_presenters: Vec<Presenter>,
    pub role: LectureRole,
    /// Every question for presenters and organizers, the caller's own for viewers.
    pub questions: Vec<Value>,
    /// Polls, newest first, with results and the caller's choice.
    pub polls: Vec<Value>,
    /// The caller's counted study time in seconds, and whether it was credited.
    pub counted_s: f64,
    pub credited: bool,
    /// The video lesson made from the recording.
    pub recording_lesson: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Presenter {
    pub member_id: i64,
    pub name: String,
    /// Accounts of the member, to match the participants of the live room.
    pub account_ids: Vec<i64>,
}

/// One lecture row with its lesson and course.
struct LectureRow {
    course_id: i64,
    meeting_id: i64,
    lecturer_member: i64,
    ended_at: Option<i64>,
}

async fn load_row(state: &AppState, lesson_id: i64) -> AppResult<LectureRow> {
    let row = sqlx::query(
        "SELECT l.course_id, x.meeting_id, x.lecturer_member, x.ended_at \
         FROM learning_lectures x JOIN learning_lessons l ON l.id = x.lesson_id \
         WHERE x.lesson_id = $1 AND l.deleted_at IS NULL",
    )
    .bind(lesson_id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| AppError::not_found(("直播课", "live lecture"), lesson_id))?;
    Ok(LectureRow {
        course_id: row.try_get("course_id")?,
        meeting_id: row.try_get("meeting_id")?,
        lecturer_member: row.try_get("lecturer_member")?,
        ended_at: row.try_get("ended_at")?,
    })
}

/// Accounts of the lecturer and co-presenters of a lecture.
async fn presenter_accounts(state: &AppState, lesson_id: i64) -> AppResult<HashSet<i64>> {
    let accounts: Vec<i64> = sqlx::query_scalar(
        "SELECT a.id FROM accounts a WHERE a.member_id IN \
         (SELECT lecturer_member FROM learning_lectures WHERE lesson_id = $1 \
          UNION SELECT member_id FROM learning_lecture_presenters WHERE lesson_id = $1)",
    )
    .bind(lesson_id)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(accounts.into_iter().collect())
}

/// Reads the lecture facts of a meeting, or `None` for an ordinary meeting.
pub async fn facts_of_meeting(
    state: &AppState,
    meeting_id: i64,
) -> AppResult<Option<LectureFacts>> {
    let row = sqlx::query(
        "SELECT x.lesson_id, l.course_id FROM learning_lectures x \
         JOIN learning_lessons l ON l.id = x.lesson_id WHERE x.meeting_id = $1",
    )
    .bind(meeting_id)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let lesson_id: i64 = row.try_get("lesson_id")?;
    Ok(Some(LectureFacts {
        lesson_id,
        course_id: row.try_get("course_id")?,
        presenters: presenter_accounts(state, lesson_id).await?,
    }))
}

/// Works out what a person is in a lecture: a presenter, an organizer (manages the
/// course), or a viewer (may study it). Anyone else gets `not_found` for the lesson.
pub async fn role_of(
    state: &AppState,
    facts: &LectureFacts,
    principal: &Principal,
) -> AppResult<LectureRole> {
    if facts.presenters.contains(&principal.account_id) {
        return Ok(LectureRole::Presenter);
    }
    let course = readable_lesson_course(state, principal, facts.lesson_id).await?;
    if course.can_manage(principal) {
        Ok(LectureRole::Organizer)
    } else {
        Ok(LectureRole::Viewer)
    }
}

/// Loads a lecture for a caller who may watch it, with the caller's role.
async fn lecture_access(
    state: &AppState,
    caller: &Caller,
    lesson_id: i64,
) -> AppResult<(LectureRow, LectureRole)> {
    readable_lesson_course(state, &caller.principal, lesson_id).await?;
    let row = load_row(state, lesson_id).await?;
    let facts = LectureFacts {
        lesson_id,
        course_id: row.course_id,
        presenters: presenter_accounts(state, lesson_id).await?,
    };
    let role = role_of(state, &facts, &caller.principal).await?;
    Ok((row, role))
}

/// Checks the co-presenters: distinct existing members other than the lecturer.
async fn check_presenters(state: &AppState, input: &NewLecture) -> AppResult<()> {
    if input.co_presenters.len() > MAX_CO_PRESENTERS {
        return Err(AppError::invalid(
            "co_presenters",
            format!("最多 {MAX_CO_PRESENTERS} 名共同主讲人"),
            format!("at most {MAX_CO_PRESENTERS} co-presenters"),
        ));
    }
    let mut conn = state.db.pool.acquire().await?;
    super::access::member_org_path(&mut conn, input.lecturer_member, "lecturer_member").await?;
    for (index, member_id) in input.co_presenters.iter().enumerate() {
        let field = format!("co_presenters[{index}]");
        if *member_id == input.lecturer_member || input.co_presenters[..index].contains(member_id) {
            return Err(AppError::invalid(
                &field,
                "共同主讲人重复，或与主讲人相同",
                "a co-presenter appears twice or is the lecturer",
            ));
        }
        super::access::member_org_path(&mut conn, *member_id, &field).await?;
    }
    Ok(())
}

/// Schedules the lecture's meeting (kind 党课, online) or checks the one to link, and
/// returns its id.
async fn lecture_meeting(
    state: &AppState,
    caller: &Caller,
    course: &CourseRef,
    input: &NewLecture,
    title: &str,
) -> AppResult<i64> {
    if let Some(meeting_id) = input.meeting_id {
        let meeting = store::load_db(&state.db, meeting_id)
            .await
            .map_err(|e| e.field("meeting_id"))?;
        if !crate::meetings::can_manage(caller, &meeting) {
            return Err(AppError::forbidden().field("meeting_id"));
        }
        if !meeting.online || meeting.status != MeetingStatus::Scheduled {
            return Err(AppError::invalid(
                "meeting_id",
                "只能关联尚未开始的线上会议",
                "only an online meeting that has not started can be linked",
            ));
        }
        if meeting.host_member != input.lecturer_member {
            return Err(AppError::invalid(
                "meeting_id",
                "会议主持人须为主讲人",
                "the meeting's host must be the lecturer",
            ));
        }
        let linked: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM learning_lectures WHERE meeting_id = $1")
                .bind(meeting_id)
                .fetch_one(&state.db.pool)
                .await?;
        if linked > 0 {
            return Err(AppError::conflict(
                "meeting_already_linked",
                "此会议已关联其他直播课",
                "the meeting already backs another live lecture",
            ));
        }
        return Ok(meeting_id);
    }
    let recorder = input
        .recorder_member
        .or(caller
            .principal
            .member_id
            .filter(|member| *member != input.lecturer_member))
        .or(input.co_presenters.first().copied())
        .ok_or_else(|| {
            AppError::invalid(
                "recorder_member",
                "请指定会议记录人（不能是主讲人）",
                "choose a recorder for the meeting other than the lecturer",
            )
        })?;
    let meeting: MeetingInput = serde_json::from_value(json!({
        "org_id": course.org_id,
        "kind": "party_lecture",
        "title": title,
        "starts_at": input.starts_at,
        "ends_at": input.starts_at + input.duration_s * 1000,
        "online": true,
        "host_member": input.lecturer_member,
        "recorder_member": recorder,
    }))
    .map_err(AppError::internal)?;
    crate::meetings::schedule_meeting(state, caller, meeting).await
}

/// Adds a live lecture at the end of a course, with its meeting.
#[utoipa::path(post, path = "/api/learning/courses/{id}/lectures", tag = "learning", request_body = NewLecture,
    responses((status = 201, body = LectureView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_lecture(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<NewLecture>,
) -> AppResult<(StatusCode, ApiJson<LectureView>)> {
    let course = managed_course(&state, &caller.principal, id).await?;
    let title = check_text("title", &input.title, 200)?;
    if !(60..=24 * 3600).contains(&input.duration_s) {
        return Err(AppError::invalid(
            "duration_s",
            "直播时长须在 1 分钟到 24 小时之间",
            "duration_s must be between 60 seconds and 24 hours",
        ));
    }
    let credit_centi = input
        .credit_hours
        .map(|value| centi_from_hours("credit_hours", value, 10.0))
        .transpose()?;
    check_presenters(&state, &input).await?;
    let meeting_id = lecture_meeting(&state, &caller, &course, &input, &title).await?;
    let body_html = crate::notices::sanitize_html(&input.body_html);

    let mut tx = state.db.begin().await?;
    let position = next_lesson_position(&mut tx, id).await?;
    let now = now_ms();
    let lesson_id: i64 = sqlx::query_scalar(
        "INSERT INTO learning_lessons (course_id, position, title, kind, duration_ms, credit_centi, \
         max_rate_pct, body_html, created_at) VALUES ($1, $2, $3, 'live', $4, $5, 100, $6, $7) RETURNING id",
    )
    .bind(id)
    .bind(position)
    .bind(&title)
    .bind(input.duration_s * 1000)
    .bind(credit_centi)
    .bind(&body_html)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO learning_lectures (lesson_id, meeting_id, lecturer_member, starts_at, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(lesson_id)
    .bind(meeting_id)
    .bind(input.lecturer_member)
    .bind(input.starts_at)
    .bind(caller.session.account.id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for member_id in &input.co_presenters {
        sqlx::query(
            "INSERT INTO learning_lecture_presenters (lesson_id, member_id) VALUES ($1, $2)",
        )
        .bind(lesson_id)
        .bind(member_id)
        .execute(&mut *tx)
        .await?;
    }
    let event = course_updated(&mut tx, id).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "learning.lecture.add",
        ("lesson", lesson_id.to_string()),
        json!({"course_id": id, "title": title, "meeting_id": meeting_id,
            "lecturer_member": input.lecturer_member, "co_presenters": input.co_presenters}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish([event]);
    tracing::info!(lesson_id, meeting_id, course_id = id, "live lecture added");
    let view = lecture_view(&state, &caller, lesson_id).await?;
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// One live lecture with the caller's role, questions, polls and counted time.
#[utoipa::path(get, path = "/api/learning/lectures/{id}", tag = "learning",
    responses((status = 200, body = LectureView), (status = 404, body = ErrorBody)))]
async fn get_lecture(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<LectureView>> {
    Ok(ApiJson(lecture_view(&state, &caller, id).await?))
}

async fn presenter(state: &AppState, member_id: i64) -> AppResult<Presenter> {
    let name: String = sqlx::query_scalar("SELECT name FROM members WHERE id = $1")
        .bind(member_id)
        .fetch_one(&state.db.pool)
        .await?;
    let account_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE member_id = $1")
        .bind(member_id)
        .fetch_all(&state.db.pool)
        .await?;
    Ok(Presenter {
        member_id,
        name,
        account_ids,
    })
}

async fn lecture_view(state: &AppState, caller: &Caller, lesson_id: i64) -> AppResult<LectureView> {
    let (row, role) = lecture_access(state, caller, lesson_id).await?;
    let lesson = sqlx::query(
        "SELECT l.title, l.body_html, l.duration_ms, l.credit_centi, c.title AS course_title, \
         x.starts_at, x.recording_lesson, m.status \
         FROM learning_lessons l JOIN learning_courses c ON c.id = l.course_id \
         JOIN learning_lectures x ON x.lesson_id = l.id JOIN meetings m ON m.id = x.meeting_id \
         WHERE l.id = $1",
    )
    .bind(lesson_id)
    .fetch_one(&state.db.pool)
    .await?;
    let co_presenter_ids: Vec<i64> = sqlx::query_scalar(
        "SELECT member_id FROM learning_lecture_presenters WHERE lesson_id = $1 ORDER BY member_id",
    )
    .bind(lesson_id)
    .fetch_all(&state.db.pool)
    .await?;
    let mut co_presenters = Vec::with_capacity(co_presenter_ids.len());
    for member_id in co_presenter_ids {
        co_presenters.push(presenter(state, member_id).await?);
    }
    let staff = role != LectureRole::Viewer;
    let questions = interaction::questions(
        state,
        lesson_id,
        (!staff).then_some(caller.session.account.id),
    )
    .await?;
    let polls = interaction::polls(state, lesson_id, Some(caller.session.account.id)).await?;
    let progress = sqlx::query(
        "SELECT counted_ms, completed_at FROM learning_progress WHERE member_id = $1 AND lesson_id = $2",
    )
    .bind(caller.principal.member_id.unwrap_or(0))
    .bind(lesson_id)
    .fetch_optional(&state.db.pool)
    .await?;
    let (counted_ms, credited) = match progress {
        Some(progress) => (
            progress.try_get::<i64, _>("counted_ms")?,
            progress
                .try_get::<Option<i64>, _>("completed_at")?
                .is_some(),
        ),
        None => (0, false),
    };
    let duration_ms: i64 = lesson.try_get("duration_ms")?;
    let credit_centi: Option<i64> = lesson.try_get("credit_centi")?;
    Ok(LectureView {
        lesson_id,
        course_id: row.course_id,
        course_title: lesson.try_get("course_title")?,
        meeting_id: row.meeting_id,
        title: lesson.try_get("title")?,
        body_html: lesson.try_get("body_html")?,
        starts_at: lesson.try_get("starts_at")?,
        duration_s: duration_ms as f64 / 1000.0,
        credit_hours: credit_centi.map(super::hours),
        status: lesson.try_get("status")?,
        ended_at: row.ended_at,
        lecturer: presenter(state, row.lecturer_member).await?,
        co_presenters,
        role,
        questions,
        polls,
        counted_s: counted_ms as f64 / 1000.0,
        credited,
        recording_lesson: lesson.try_get("recording_lesson")?,
    })
}

/// Builds the organizer's dashboard of a live lecture: people in the media, those whose
/// time counts now, attention checks and open questions.
pub async fn dashboard(
    state: &AppState,
    lesson_id: i64,
    meeting_id: i64,
    stats: &LectureStats,
) -> AppResult<Value> {
    let (viewers, connected, presenters) =
        crate::meetings::live::lecture::audience(state, meeting_id).await;
    let checks = state.study.lecture_checks(lesson_id);
    let open_questions: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM learning_lecture_questions WHERE lesson_id = $1 AND answered_at IS NULL",
    )
    .bind(lesson_id)
    .fetch_one(&state.db.pool)
    .await?;
    let questions: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM learning_lecture_questions WHERE lesson_id = $1")
            .bind(lesson_id)
            .fetch_one(&state.db.pool)
            .await?;
    Ok(json!({
        "lesson_id": lesson_id,
        "viewers": viewers,
        "connected": connected,
        "presenters": presenters,
        "counting": checks.counting,
        "hands": stats.hands,
        "floor": stats.floor,
        "checks_sent": checks.sent,
        "checks_passed": checks.passed,
        "checks_missed": checks.missed,
        "questions": questions,
        "open_questions": open_questions,
    }))
}

/// Credits a lecture's attendance once its meeting ended; an ordinary meeting, or a
/// lecture credited already, changes nothing. Everyone whose counted time reaches half
/// of the time the meeting was live gets the lesson's set hours, or the rule by the
/// length they attended, once.
pub async fn meeting_ended(state: &AppState, meeting_id: i64) -> AppResult<()> {
    let Some(facts) = facts_of_meeting(state, meeting_id).await? else {
        return Ok(());
    };
    let lesson_id = facts.lesson_id;
    state.study.end_lesson(lesson_id);
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let claimed = sqlx::query(
        "UPDATE learning_lectures SET ended_at = $1 WHERE lesson_id = $2 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(lesson_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(());
    }
    let row = sqlx::query(
        "SELECT m.started_at, m.ended_at, x.starts_at, l.credit_centi, c.category FROM learning_lectures x \
         JOIN meetings m ON m.id = x.meeting_id JOIN learning_lessons l ON l.id = x.lesson_id \
         JOIN learning_courses c ON c.id = l.course_id WHERE x.lesson_id = $1",
    )
    .bind(lesson_id)
    .fetch_one(&mut *tx)
    .await?;
    let started_at: i64 = row
        .try_get::<Option<i64>, _>("started_at")?
        .unwrap_or(row.try_get("starts_at")?);
    let ended_at: i64 = row.try_get::<Option<i64>, _>("ended_at")?.unwrap_or(now);
    let held_ms = (ended_at - started_at).max(0);
    let set_centi: Option<i64> = row.try_get("credit_centi")?;
    let category: String = row.try_get("category")?;
    let category = super::Category::parse(&category)
        .ok_or_else(|| AppError::internal(format!("unknown course category {category}")))?;
    let attendees = sqlx::query(
        "SELECT member_id, counted_ms FROM learning_progress \
         WHERE lesson_id = $1 AND completed_at IS NULL AND counted_ms >= $2 AND counted_ms > 0",
    )
    .bind(lesson_id)
    .bind(held_ms / 2)
    .fetch_all(&mut *tx)
    .await?;
    let mut events = Vec::new();
    for attendee in &attendees {
        let member_id: i64 = attendee.try_get("member_id")?;
        let counted_ms: i64 = attendee.try_get("counted_ms")?;
        let centi = set_centi.unwrap_or_else(|| credit::default_centi(counted_ms));
        sqlx::query(
            "UPDATE learning_progress SET completed_at = $1, updated_at = $1 WHERE member_id = $2 AND lesson_id = $3",
        )
        .bind(now)
        .bind(member_id)
        .bind(lesson_id)
        .execute(&mut *tx)
        .await?;
        events.extend(
            add_credit(
                &mut tx,
                NewCredit {
                    member_id,
                    category,
                    centi,
                    source: Source::Lesson(lesson_id),
                    course_id: Some(facts.course_id),
                    note: "",
                    entered_by: None,
                },
            )
            .await?,
        );
    }
    events.push(course_updated(&mut tx, facts.course_id).await?);
    tx.commit().await?;
    state.hub.publish(events);
    tracing::info!(
        lesson_id,
        meeting_id,
        held_ms,
        credited = attendees.len(),
        "live lecture ended and attendance credited"
    );
    Ok(())
}
