//! Interaction during a live lecture: the question queue, quick polls and the floor.
//! Changes reach the pages in the lecture's media as `lecture_*` messages
//! (`docs/protocol.md`): questions go to presenters and organizers and to their asker,
//! polls to everyone, and poll results to presenters and organizers at once and to
//! viewers with the next counts tick.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{LectureRow, lecture_access};
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::meetings::live::lecture::{self, LectureRole};
use crate::meetings::live::protocol::LiveMessage;
use crate::perm::Caller;
use crate::state::AppState;

/// Maximum questions one person may ask in one lecture.
const MAX_QUESTIONS_PER_PERSON: i64 = 20;
/// Maximum options of a poll.
const MAX_POLL_OPTIONS: usize = 10;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ask))
        .routes(routes!(mark_answered))
        .routes(routes!(open_poll))
        .routes(routes!(answer_poll))
        .routes(routes!(close_poll))
        .routes(routes!(set_floor))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuestion {
    pub text: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPoll {
    pub question: String,
    /// 2 to 10 choices.
    pub options: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PollAnswer {
    /// Index of the chosen option, from 0.
    pub choice: i64,
}

/// The floor holder: a viewer's account, or none to take the floor back.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Floor {
    pub account_id: Option<i64>,
}

fn lecture_ended() -> AppError {
    AppError::conflict(
        "lecture_ended",
        "直播课已结束",
        "the live lecture has ended",
    )
}

fn presenters_only(role: LectureRole) -> AppResult<()> {
    if role == LectureRole::Presenter {
        Ok(())
    } else {
        Err(AppError::forbidden())
    }
}

/// Loads a lecture that has not ended, for a caller who may watch it.
async fn open_lecture(
    state: &AppState,
    caller: &Caller,
    lesson_id: i64,
) -> AppResult<(LectureRow, LectureRole)> {
    let (row, role) = lecture_access(state, caller, lesson_id).await?;
    if row.ended_at.is_some() {
        return Err(lecture_ended());
    }
    Ok((row, role))
}

fn question_json(row: &sqlx::any::AnyRow) -> AppResult<Value> {
    Ok(json!({
        "id": row.try_get::<i64, _>("id")?,
        "account_id": row.try_get::<i64, _>("account_id")?,
        "author_name": row.try_get::<String, _>("author_name")?,
        "text": row.try_get::<String, _>("text")?,
        "created_at": row.try_get::<i64, _>("created_at")?,
        "answered_at": row.try_get::<Option<i64>, _>("answered_at")?,
    }))
}

const QUESTION_COLUMNS: &str = "id, account_id, author_name, text, created_at, answered_at";

/// Questions of a lecture in the order asked; only `asker`'s when given.
pub async fn questions(
    state: &AppState,
    lesson_id: i64,
    asker: Option<i64>,
) -> AppResult<Vec<Value>> {
    let rows = sqlx::query(&format!(
        "SELECT {QUESTION_COLUMNS} FROM learning_lecture_questions \
         WHERE lesson_id = $1 AND ($2 = 0 OR account_id = $2) ORDER BY id"
    ))
    .bind(lesson_id)
    .bind(asker.unwrap_or(0))
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter().map(question_json).collect()
}

async fn question(state: &AppState, question_id: i64) -> AppResult<Value> {
    let row = sqlx::query(&format!(
        "SELECT {QUESTION_COLUMNS} FROM learning_lecture_questions WHERE id = $1"
    ))
    .bind(question_id)
    .fetch_one(&state.db.pool)
    .await?;
    question_json(&row)
}

/// Sends a question to the staff in the media and to its asker.
async fn publish_question(state: &AppState, meeting_id: i64, asker: i64, question: &Value) {
    let message = LiveMessage::LectureQuestion {
        meeting_id,
        question: question.clone(),
    };
    lecture::send(state, meeting_id, &message, true).await;
    lecture::send_to(state, meeting_id, asker, &message).await;
}

/// Puts a question into the lecture's queue.
#[utoipa::path(post, path = "/api/learning/lectures/{id}/questions", tag = "learning", request_body = NewQuestion,
    responses((status = 201, description = "The question"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn ask(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<NewQuestion>,
) -> AppResult<(StatusCode, ApiJson<Value>)> {
    let (row, _) = open_lecture(&state, &caller, id).await?;
    let text = super::check_text("text", &input.text, 500)?;
    let account = caller.session.account.id;
    let asked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM learning_lecture_questions WHERE lesson_id = $1 AND account_id = $2",
    )
    .bind(id)
    .bind(account)
    .fetch_one(&state.db.pool)
    .await?;
    if asked >= MAX_QUESTIONS_PER_PERSON {
        return Err(AppError::conflict(
            "too_many_questions",
            format!("每人每次直播最多提 {MAX_QUESTIONS_PER_PERSON} 个问题"),
            format!("at most {MAX_QUESTIONS_PER_PERSON} questions per person and lecture"),
        ));
    }
    let question_id: i64 = sqlx::query_scalar(
        "INSERT INTO learning_lecture_questions (lesson_id, account_id, author_name, text, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(id)
    .bind(account)
    .bind(&caller.session.account.display_name)
    .bind(&text)
    .bind(now_ms())
    .fetch_one(&state.db.pool)
    .await?;
    let question = question(&state, question_id).await?;
    publish_question(&state, row.meeting_id, account, &question).await;
    tracing::info!(
        lesson_id = id,
        question_id,
        account_id = account,
        "lecture question asked"
    );
    Ok((StatusCode::CREATED, ApiJson(question)))
}

/// Marks a question answered; presenters and organizers only.
#[utoipa::path(post, path = "/api/learning/lectures/{id}/questions/{question}/answered", tag = "learning",
    responses((status = 200, description = "The question"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn mark_answered(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, question_id)): Path<(i64, i64)>,
) -> AppResult<ApiJson<Value>> {
    let (row, role) = lecture_access(&state, &caller, id).await?;
    if role == LectureRole::Viewer {
        return Err(AppError::forbidden());
    }
    let asker: Option<i64> = sqlx::query_scalar(
        "SELECT account_id FROM learning_lecture_questions WHERE id = $1 AND lesson_id = $2",
    )
    .bind(question_id)
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?;
    let asker = asker.ok_or_else(|| AppError::not_found(("问题", "question"), question_id))?;
    sqlx::query(
        "UPDATE learning_lecture_questions SET answered_at = $1, answered_by = $2 \
         WHERE id = $3 AND answered_at IS NULL",
    )
    .bind(now_ms())
    .bind(caller.session.account.id)
    .bind(question_id)
    .execute(&state.db.pool)
    .await?;
    let question = question(&state, question_id).await?;
    publish_question(&state, row.meeting_id, asker, &question).await;
    Ok(ApiJson(question))
}

/// Polls of a lecture, newest first, with their counts and `account`'s choice.
pub async fn polls(
    state: &AppState,
    lesson_id: i64,
    account: Option<i64>,
) -> AppResult<Vec<Value>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM learning_lecture_polls WHERE lesson_id = $1 ORDER BY id DESC",
    )
    .bind(lesson_id)
    .fetch_all(&state.db.pool)
    .await?;
    let mut polls = Vec::with_capacity(ids.len());
    for id in ids {
        polls.push(poll(state, id, account).await?);
    }
    Ok(polls)
}

/// Loads one poll with the count of each option, and `account`'s choice when given.
pub async fn poll(state: &AppState, poll_id: i64, account: Option<i64>) -> AppResult<Value> {
    let row = sqlx::query(
        "SELECT id, lesson_id, question, options, created_at, closed_at FROM learning_lecture_polls WHERE id = $1",
    )
    .bind(poll_id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| AppError::not_found(("投票", "poll"), poll_id))?;
    let options: Vec<String> =
        serde_json::from_str(&row.try_get::<String, _>("options")?).map_err(AppError::internal)?;
    let mut counts = vec![0i64; options.len()];
    let tallies = sqlx::query(
        "SELECT choice, COUNT(*) AS n FROM learning_lecture_poll_answers WHERE poll_id = $1 GROUP BY choice",
    )
    .bind(poll_id)
    .fetch_all(&state.db.pool)
    .await?;
    for tally in tallies {
        let choice: i64 = tally.try_get("choice")?;
        if let Some(count) = usize::try_from(choice).ok().and_then(|c| counts.get_mut(c)) {
            *count = tally.try_get("n")?;
        }
    }
    let mine: Option<i64> = match account {
        Some(account) => sqlx::query_scalar(
            "SELECT choice FROM learning_lecture_poll_answers WHERE poll_id = $1 AND account_id = $2",
        )
        .bind(poll_id)
        .bind(account)
        .fetch_optional(&state.db.pool)
        .await?,
        None => None,
    };
    Ok(json!({
        "id": poll_id,
        "lesson_id": row.try_get::<i64, _>("lesson_id")?,
        "question": row.try_get::<String, _>("question")?,
        "options": options,
        "counts": counts,
        "total": counts.iter().sum::<i64>(),
        "created_at": row.try_get::<i64, _>("created_at")?,
        "closed": row.try_get::<Option<i64>, _>("closed_at")?.is_some(),
        "my_choice": mine,
    }))
}

/// Sends a poll without anyone's own choice to everyone in the lecture's media.
async fn broadcast_poll(
    state: &AppState,
    meeting_id: i64,
    poll_id: i64,
    staff_only: bool,
) -> AppResult<()> {
    let poll = poll(state, poll_id, None).await?;
    lecture::send(
        state,
        meeting_id,
        &LiveMessage::LecturePoll { meeting_id, poll },
        staff_only,
    )
    .await;
    Ok(())
}

/// Opens a quick poll; the lecturer and co-presenters only.
#[utoipa::path(post, path = "/api/learning/lectures/{id}/polls", tag = "learning", request_body = NewPoll,
    responses((status = 201, description = "The poll"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn open_poll(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<NewPoll>,
) -> AppResult<(StatusCode, ApiJson<Value>)> {
    let (row, role) = open_lecture(&state, &caller, id).await?;
    presenters_only(role)?;
    let question = super::check_text("question", &input.question, 200)?;
    if !(2..=MAX_POLL_OPTIONS).contains(&input.options.len()) {
        return Err(AppError::invalid(
            "options",
            format!("投票须有 2 到 {MAX_POLL_OPTIONS} 个选项"),
            format!("a poll needs 2 to {MAX_POLL_OPTIONS} options"),
        ));
    }
    let options = input
        .options
        .iter()
        .enumerate()
        .map(|(index, option)| super::check_text(&format!("options[{index}]"), option, 100))
        .collect::<AppResult<Vec<_>>>()?;
    let poll_id: i64 = sqlx::query_scalar(
        "INSERT INTO learning_lecture_polls (lesson_id, question, options, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(id)
    .bind(&question)
    .bind(serde_json::to_string(&options).map_err(AppError::internal)?)
    .bind(caller.session.account.id)
    .bind(now_ms())
    .fetch_one(&state.db.pool)
    .await?;
    broadcast_poll(&state, row.meeting_id, poll_id, false).await?;
    tracing::info!(lesson_id = id, poll_id, "lecture poll opened");
    Ok((
        StatusCode::CREATED,
        ApiJson(poll(&state, poll_id, None).await?),
    ))
}

async fn lecture_poll(state: &AppState, lesson_id: i64, poll_id: i64) -> AppResult<Option<i64>> {
    let closed: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT closed_at FROM learning_lecture_polls WHERE id = $1 AND lesson_id = $2",
    )
    .bind(poll_id)
    .bind(lesson_id)
    .fetch_optional(&state.db.pool)
    .await?;
    closed.ok_or_else(|| AppError::not_found(("投票", "poll"), poll_id))
}

/// Answers an open poll, once per person.
#[utoipa::path(post, path = "/api/learning/lectures/{id}/polls/{poll}/answer", tag = "learning", request_body = PollAnswer,
    responses((status = 200, description = "The poll with the caller's choice"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn answer_poll(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, poll_id)): Path<(i64, i64)>,
    ApiJson(input): ApiJson<PollAnswer>,
) -> AppResult<ApiJson<Value>> {
    let (row, _) = open_lecture(&state, &caller, id).await?;
    if lecture_poll(&state, id, poll_id).await?.is_some() {
        return Err(AppError::conflict(
            "poll_closed",
            "投票已结束",
            "the poll is closed",
        ));
    }
    let current = poll(&state, poll_id, None).await?;
    let options = current["options"].as_array().map_or(0, Vec::len) as i64;
    if !(0..options).contains(&input.choice) {
        return Err(AppError::invalid(
            "choice",
            format!("选项须在 0 到 {} 之间", options - 1),
            format!("choice must be between 0 and {}", options - 1),
        ));
    }
    let account = caller.session.account.id;
    let inserted = sqlx::query(
        "INSERT INTO learning_lecture_poll_answers (poll_id, account_id, choice, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (poll_id, account_id) DO NOTHING",
    )
    .bind(poll_id)
    .bind(account)
    .bind(input.choice)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(AppError::conflict(
            "poll_already_answered",
            "您已投过票，每人只能投一次",
            "you have already answered this poll; each person answers once",
        ));
    }
    broadcast_poll(&state, row.meeting_id, poll_id, true).await?;
    lecture::poll_changed(&state, row.meeting_id, poll_id).await;
    Ok(ApiJson(poll(&state, poll_id, Some(account)).await?))
}

/// Closes a poll and sends its final results to everyone.
#[utoipa::path(post, path = "/api/learning/lectures/{id}/polls/{poll}/close", tag = "learning",
    responses((status = 200, description = "The closed poll"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn close_poll(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, poll_id)): Path<(i64, i64)>,
) -> AppResult<ApiJson<Value>> {
    let (row, role) = lecture_access(&state, &caller, id).await?;
    presenters_only(role)?;
    lecture_poll(&state, id, poll_id).await?;
    sqlx::query(
        "UPDATE learning_lecture_polls SET closed_at = $1 WHERE id = $2 AND closed_at IS NULL",
    )
    .bind(now_ms())
    .bind(poll_id)
    .execute(&state.db.pool)
    .await?;
    broadcast_poll(&state, row.meeting_id, poll_id, false).await?;
    Ok(ApiJson(poll(&state, poll_id, None).await?))
}

/// Gives a viewer in the media the floor (they may publish audio) or takes it back;
/// the lecturer and co-presenters only.
#[utoipa::path(post, path = "/api/learning/lectures/{id}/floor", tag = "learning", request_body = Floor,
    responses((status = 204, description = "Changed"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn set_floor(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<Floor>,
) -> AppResult<StatusCode> {
    let (row, role) = open_lecture(&state, &caller, id).await?;
    presenters_only(role)?;
    lecture::set_floor(&state, row.meeting_id, input.account_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends the current results of changed polls to everyone in the media. The counts
/// ticker calls it, so viewers get results at most once per tick.
pub async fn send_poll_results(
    state: &AppState,
    meeting_id: i64,
    poll_ids: &[i64],
) -> AppResult<()> {
    for poll_id in poll_ids {
        broadcast_poll(state, meeting_id, *poll_id, false).await?;
    }
    Ok(())
}
