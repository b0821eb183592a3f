//! Exams: question banks per course, a paper drawn at random for each
//! attempt, a time limit enforced by the server, automatic grading, a pass
//! mark, limited attempts and the certificate of a passed attempt.
//!
//! Each question scores all or nothing. A submission that arrives after the
//! deadline plus [`GRACE_MS`] scores zero and still uses the attempt.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{managed_course, readable_course};
use super::ledger::{NewCredit, Source, add_credit};
use super::{centi_from_hours, check_text, credit, hours};
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::perm::Caller;
use crate::state::AppState;

/// Time allowed after the deadline for the submission to arrive, covering
/// network delay, in milliseconds.
pub const GRACE_MS: i64 = 5_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_questions, add_question))
        .routes(routes!(create_exam))
        .routes(routes!(get_exam))
        .routes(routes!(start_attempt))
        .routes(routes!(get_attempt))
        .routes(routes!(submit_attempt))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    Single,
    Multiple,
    TrueFalse,
    Fill,
}

impl QuestionKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Multiple => "multiple",
            Self::TrueFalse => "true_false",
            Self::Fill => "fill",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        [Self::Single, Self::Multiple, Self::TrueFalse, Self::Fill]
            .into_iter()
            .find(|kind| kind.as_str() == value)
    }
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuestion {
    pub kind: QuestionKind,
    pub stem: String,
    /// Option texts of a choice question; empty otherwise.
    #[serde(default)]
    pub options: Vec<String>,
    /// The correct answer: an option index (single), a list of indexes
    /// (multiple), a boolean (true/false) or a list of accepted texts (fill).
    #[schema(value_type = Object)]
    pub answer: Value,
    #[serde(default = "one")]
    pub points: i64,
}

fn one() -> i64 {
    1
}

/// A question as its managers see it, with the answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Question {
    pub id: i64,
    #[serde(flatten)]
    pub question: NewQuestion,
}

/// A question on a paper, without the answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PaperQuestion {
    pub id: i64,
    pub kind: QuestionKind,
    pub stem: String,
    pub options: Vec<String>,
    pub points: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewExam {
    pub title: String,
    /// Questions drawn from the course's bank for each attempt.
    pub question_count: i64,
    /// Time limit of an attempt, in seconds.
    pub duration_s: i64,
    /// Pass mark in percent of the paper's points.
    pub pass_pct: i64,
    pub max_attempts: i64,
    /// Credit hours for passing; 0.5 when absent.
    pub credit_hours: Option<f64>,
}

/// An exam with the caller's attempts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExamView {
    pub id: i64,
    pub course_id: i64,
    pub title: String,
    pub question_count: i64,
    pub duration_s: i64,
    pub pass_pct: i64,
    pub max_attempts: i64,
    pub credit_hours: f64,
}

/// One attempt: the paper while it runs, the result once submitted.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub id: i64,
    pub exam_id: i64,
    pub course_id: i64,
    pub course_title: String,
    pub exam_title: String,
    pub member_id: i64,
    pub member_name: String,
    pub number: i64,
    pub max_attempts: i64,
    pub started_at: i64,
    pub deadline_at: i64,
    pub submitted_at: Option<i64>,
    pub score: Option<i64>,
    pub total: i64,
    pub pass_pct: i64,
    pub passed: Option<bool>,
    pub credit_hours: f64,
    /// The questions while the attempt runs; empty once it is submitted.
    pub questions: Vec<PaperQuestion>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    pub answers: Vec<GivenAnswer>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GivenAnswer {
    pub question_id: i64,
    #[schema(value_type = Object)]
    pub answer: Value,
}

/// Lists a course's question bank, with answers, for its managers.
#[utoipa::path(get, path = "/api/learning/courses/{id}/questions", tag = "learning",
    responses((status = 200, body = Vec<Question>), (status = 403, body = ErrorBody)))]
async fn list_questions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<Vec<Question>>> {
    managed_course(&state, &caller.principal, id).await?;
    let rows = sqlx::query(
        "SELECT id, kind, stem, options, answer, points FROM learning_questions WHERE course_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    let mut questions = Vec::with_capacity(rows.len());
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let options: String = row.try_get("options")?;
        let answer: String = row.try_get("answer")?;
        questions.push(Question {
            id: row.try_get("id")?,
            question: NewQuestion {
                kind: QuestionKind::parse(&kind)
                    .ok_or_else(|| AppError::internal("unknown question kind"))?,
                stem: row.try_get("stem")?,
                options: serde_json::from_str(&options).map_err(AppError::internal)?,
                answer: serde_json::from_str(&answer).map_err(AppError::internal)?,
                points: row.try_get("points")?,
            },
        });
    }
    Ok(ApiJson(questions))
}

/// Adds a question to a course's bank.
#[utoipa::path(post, path = "/api/learning/courses/{id}/questions", tag = "learning", request_body = NewQuestion,
    responses((status = 201, body = Question), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_question(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<NewQuestion>,
) -> AppResult<(StatusCode, ApiJson<Question>)> {
    managed_course(&state, &caller.principal, id).await?;
    let stem = check_text("stem", &input.stem, 1000)?;
    check_question(&input)?;
    if !(1..=100).contains(&input.points) {
        return Err(AppError::invalid(
            "points",
            "分值须在 1 到 100 之间",
            "points must be between 1 and 100",
        ));
    }
    let mut tx = state.db.begin().await?;
    let question_id: i64 = sqlx::query_scalar(
        "INSERT INTO learning_questions (course_id, kind, stem, options, answer, points) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(id)
    .bind(input.kind.as_str())
    .bind(&stem)
    .bind(serde_json::to_string(&input.options).map_err(AppError::internal)?)
    .bind(input.answer.to_string())
    .bind(input.points)
    .fetch_one(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "learning.question.add",
        ("course", id.to_string()),
        json!({"question_id": question_id, "kind": input.kind}),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(Question {
            id: question_id,
            question: NewQuestion { stem, ..input },
        }),
    ))
}

/// Checks options and answer against the question kind.
fn check_question(question: &NewQuestion) -> AppResult<()> {
    let invalid =
        |zh: &str, en: &str| Err(AppError::invalid("answer", zh.to_owned(), en.to_owned()));
    let option_count = question.options.len();
    let choices = matches!(question.kind, QuestionKind::Single | QuestionKind::Multiple);
    if choices && !(2..=8).contains(&option_count) {
        return Err(AppError::invalid(
            "options",
            "选择题须有 2 到 8 个选项",
            "choice questions need 2 to 8 options",
        ));
    }
    if !choices && option_count > 0 {
        return Err(AppError::invalid(
            "options",
            "判断题和填空题没有选项",
            "true/false and fill-in questions take no options",
        ));
    }
    if question
        .options
        .iter()
        .any(|option| option.trim().is_empty())
    {
        return Err(AppError::invalid(
            "options",
            "选项不能为空",
            "options must not be empty",
        ));
    }
    let index_ok = |value: &Value| value.as_u64().is_some_and(|i| (i as usize) < option_count);
    match question.kind {
        QuestionKind::Single if !index_ok(&question.answer) => invalid(
            "单选题答案须为一个选项序号",
            "a single-choice answer is one option index",
        ),
        QuestionKind::Multiple => {
            let Some(list) = question.answer.as_array() else {
                return invalid(
                    "多选题答案须为选项序号列表",
                    "a multiple-choice answer is a list of option indexes",
                );
            };
            let mut seen: Vec<u64> = list.iter().filter_map(Value::as_u64).collect();
            seen.sort_unstable();
            seen.dedup();
            if list.is_empty() || seen.len() != list.len() || !list.iter().all(index_ok) {
                return invalid(
                    "多选题答案须为不重复的选项序号",
                    "a multiple-choice answer lists distinct option indexes",
                );
            }
            Ok(())
        }
        QuestionKind::TrueFalse if !question.answer.is_boolean() => invalid(
            "判断题答案须为 true 或 false",
            "a true/false answer is true or false",
        ),
        QuestionKind::Fill => {
            let texts = question.answer.as_array().map(|list| {
                list.iter()
                    .all(|v| v.as_str().is_some_and(|s| !s.trim().is_empty()))
                    && (1..=10).contains(&list.len())
            });
            if texts != Some(true) {
                return invalid(
                    "填空题答案须为 1 到 10 个可接受的文字",
                    "a fill-in answer lists 1 to 10 accepted texts",
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Checks whether a submitted answer earns the question's points.
pub fn is_correct(kind: QuestionKind, expected: &Value, given: &Value) -> bool {
    match kind {
        QuestionKind::Single | QuestionKind::TrueFalse => expected == given,
        QuestionKind::Multiple => {
            let sorted = |value: &Value| {
                let mut list: Vec<u64> = value
                    .as_array()
                    .map(|l| l.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default();
                list.sort_unstable();
                list.dedup();
                list
            };
            given.as_array().is_some() && sorted(expected) == sorted(given)
        }
        QuestionKind::Fill => {
            let normalize = |text: &str| text.split_whitespace().collect::<String>().to_lowercase();
            let Some(given) = given.as_str() else {
                return false;
            };
            expected.as_array().is_some_and(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .any(|t| normalize(t) == normalize(given))
            })
        }
    }
}

/// Creates an exam over a course's question bank.
#[utoipa::path(post, path = "/api/learning/courses/{id}/exams", tag = "learning", request_body = NewExam,
    responses((status = 201, body = ExamView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_exam(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<NewExam>,
) -> AppResult<(StatusCode, ApiJson<ExamView>)> {
    managed_course(&state, &caller.principal, id).await?;
    let title = check_text("title", &input.title, 200)?;
    let bank: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM learning_questions WHERE course_id = $1")
            .bind(id)
            .fetch_one(&state.db.pool)
            .await?;
    if input.question_count < 1 || input.question_count > bank {
        return Err(AppError::invalid(
            "question_count",
            format!("抽题数须在 1 到题库题数 {bank} 之间"),
            format!("question_count must be between 1 and the bank's {bank} questions"),
        ));
    }
    if !(10..=6 * 3600).contains(&input.duration_s) {
        return Err(AppError::invalid(
            "duration_s",
            "考试时长须在 10 秒到 6 小时之间",
            "duration_s must be between 10 seconds and 6 hours",
        ));
    }
    if !(1..=100).contains(&input.pass_pct) {
        return Err(AppError::invalid(
            "pass_pct",
            "及格线须在 1% 到 100% 之间",
            "pass_pct must be between 1 and 100",
        ));
    }
    if !(1..=10).contains(&input.max_attempts) {
        return Err(AppError::invalid(
            "max_attempts",
            "考试次数须在 1 到 10 之间",
            "max_attempts must be between 1 and 10",
        ));
    }
    let credit_centi = match input.credit_hours {
        Some(value) => centi_from_hours("credit_hours", value, 10.0)?,
        None => credit::EXAM_CENTI,
    };
    let mut tx = state.db.begin().await?;
    let exam_id: i64 = sqlx::query_scalar(
        "INSERT INTO learning_exams (course_id, title, question_count, duration_ms, pass_pct, max_attempts, \
         credit_centi, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(id)
    .bind(&title)
    .bind(input.question_count)
    .bind(input.duration_s * 1000)
    .bind(input.pass_pct)
    .bind(input.max_attempts)
    .bind(credit_centi)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    let event = super::courses::course_updated(&mut tx, id).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "learning.exam.create",
        ("exam", exam_id.to_string()),
        json!({"course_id": id, "title": title}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish([event]);
    let mut conn = state.db.pool.acquire().await?;
    let exam = exams_of(&mut conn, id)
        .await?
        .into_iter()
        .find(|exam| exam.id == exam_id)
        .ok_or_else(|| AppError::internal("created exam is missing"))?;
    Ok((StatusCode::CREATED, ApiJson(exam)))
}

/// Lists the exams of a course.
pub async fn exams_of(conn: &mut AnyConnection, course_id: i64) -> AppResult<Vec<ExamView>> {
    let rows = sqlx::query(
        "SELECT id, course_id, title, question_count, duration_ms, pass_pct, max_attempts, credit_centi \
         FROM learning_exams WHERE course_id = $1 ORDER BY id",
    )
    .bind(course_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ExamView {
                id: row.try_get("id")?,
                course_id: row.try_get("course_id")?,
                title: row.try_get("title")?,
                question_count: row.try_get("question_count")?,
                duration_s: row.try_get::<i64, _>("duration_ms")? / 1000,
                pass_pct: row.try_get("pass_pct")?,
                max_attempts: row.try_get("max_attempts")?,
                credit_hours: hours(row.try_get("credit_centi")?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AppError::from)
}

/// An exam with the caller's own attempts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExamDetail {
    #[serde(flatten)]
    pub exam: ExamView,
    pub course_title: String,
    pub attempts: Vec<AttemptSummary>,
}

/// One of the caller's attempts, without the paper.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptSummary {
    pub id: i64,
    pub number: i64,
    pub started_at: i64,
    pub deadline_at: i64,
    pub submitted_at: Option<i64>,
    pub score: Option<i64>,
    pub total: i64,
    pub passed: Option<bool>,
}

/// One exam with the caller's attempts.
#[utoipa::path(get, path = "/api/learning/exams/{id}", tag = "learning",
    responses((status = 200, body = ExamDetail), (status = 404, body = ErrorBody)))]
async fn get_exam(
    State(state): State<AppState>,
    caller: Caller,
    Path(exam_id): Path<i64>,
) -> AppResult<ApiJson<ExamDetail>> {
    let course_id: i64 = sqlx::query_scalar("SELECT course_id FROM learning_exams WHERE id = $1")
        .bind(exam_id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| AppError::not_found(("考试", "exam"), exam_id))?;
    let course = readable_course(&state, &caller.principal, course_id)
        .await
        .map_err(|_| AppError::not_found(("考试", "exam"), exam_id))?;
    let mut conn = state.db.pool.acquire().await?;
    let exam = exams_of(&mut conn, course_id)
        .await?
        .into_iter()
        .find(|exam| exam.id == exam_id)
        .ok_or_else(|| AppError::not_found(("考试", "exam"), exam_id))?;
    let rows = sqlx::query(
        "SELECT id, number, started_at, deadline_at, submitted_at, score, total, passed          FROM learning_attempts WHERE exam_id = $1 AND member_id = $2 ORDER BY number",
    )
    .bind(exam_id)
    .bind(caller.principal.member_id.unwrap_or(0))
    .fetch_all(&mut *conn)
    .await?;
    let mut attempts = Vec::with_capacity(rows.len());
    for row in rows {
        let passed: Option<i64> = row.try_get("passed")?;
        attempts.push(AttemptSummary {
            id: row.try_get("id")?,
            number: row.try_get("number")?,
            started_at: row.try_get("started_at")?,
            deadline_at: row.try_get("deadline_at")?,
            submitted_at: row.try_get("submitted_at")?,
            score: row.try_get("score")?,
            total: row.try_get("total")?,
            passed: passed.map(|p| p == 1),
        });
    }
    Ok(ApiJson(ExamDetail {
        exam,
        course_title: course.title,
        attempts,
    }))
}

/// Starts an attempt with a paper drawn at random, or returns the caller's
/// attempt that is still running.
#[utoipa::path(post, path = "/api/learning/exams/{id}/attempts", tag = "learning",
    responses((status = 201, body = AttemptView, description = "A new attempt"),
        (status = 200, body = AttemptView, description = "The caller's attempt that is still running"),
        (status = 409, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn start_attempt(
    State(state): State<AppState>,
    caller: Caller,
    Path(exam_id): Path<i64>,
) -> AppResult<(StatusCode, ApiJson<AttemptView>)> {
    let Some(member_id) = caller.principal.member_id else {
        return Err(AppError::invalid(
            "account",
            "此账号未关联党员，不能参加考试",
            "this account is not linked to a member and cannot take exams",
        ));
    };
    let exam = sqlx::query("SELECT course_id, question_count, duration_ms, max_attempts FROM learning_exams WHERE id = $1")
        .bind(exam_id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| AppError::not_found(("考试", "exam"), exam_id))?;
    let course_id: i64 = exam.try_get("course_id")?;
    readable_course(&state, &caller.principal, course_id)
        .await
        .map_err(|_| AppError::not_found(("考试", "exam"), exam_id))?;
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let previous = sqlx::query(
        "SELECT id, number, deadline_at, submitted_at, passed FROM learning_attempts \
         WHERE exam_id = $1 AND member_id = $2 ORDER BY number",
    )
    .bind(exam_id)
    .bind(member_id)
    .fetch_all(&mut *tx)
    .await?;
    for row in &previous {
        let submitted: Option<i64> = row.try_get("submitted_at")?;
        let deadline: i64 = row.try_get("deadline_at")?;
        if submitted.is_none() && now <= deadline + GRACE_MS {
            let id: i64 = row.try_get("id")?;
            tx.commit().await?;
            return Ok((StatusCode::OK, ApiJson(attempt_view(&state, id).await?)));
        }
        if row.try_get::<Option<i64>, _>("passed")? == Some(1) {
            return Err(AppError::conflict(
                "exam_passed",
                "已通过此考试",
                "you have already passed this exam",
            ));
        }
    }
    let max_attempts: i64 = exam.try_get("max_attempts")?;
    let number = previous.len() as i64 + 1;
    if number > max_attempts {
        return Err(AppError::conflict(
            "attempts_exhausted",
            format!("考试次数已用完（共 {max_attempts} 次）"),
            format!("all {max_attempts} attempts are used"),
        ));
    }
    let bank = sqlx::query("SELECT id, points FROM learning_questions WHERE course_id = $1")
        .bind(course_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<i64, _>("id")?,
                row.try_get::<i64, _>("points")?,
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let count: i64 = exam.try_get("question_count")?;
    let paper: Vec<(i64, i64)> = bank
        .choose_multiple(&mut rand::thread_rng(), count as usize)
        .copied()
        .collect();
    let ids: Vec<i64> = paper.iter().map(|(id, _)| *id).collect();
    let total: i64 = paper.iter().map(|(_, points)| points).sum();
    let duration_ms: i64 = exam.try_get("duration_ms")?;
    let attempt_id: i64 = sqlx::query_scalar(
        "INSERT INTO learning_attempts (exam_id, member_id, number, paper, started_at, deadline_at, total) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(exam_id)
    .bind(member_id)
    .bind(number)
    .bind(serde_json::to_string(&ids).map_err(AppError::internal)?)
    .bind(now)
    .bind(now + duration_ms)
    .bind(total)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(
        exam_id,
        member_id,
        attempt_id,
        number,
        "exam attempt started"
    );
    Ok((
        StatusCode::CREATED,
        ApiJson(attempt_view(&state, attempt_id).await?),
    ))
}

/// One attempt, for the member who took it and the course's managers.
#[utoipa::path(get, path = "/api/learning/attempts/{id}", tag = "learning",
    responses((status = 200, body = AttemptView), (status = 404, body = ErrorBody)))]
async fn get_attempt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<AttemptView>> {
    let view = attempt_view(&state, id).await?;
    let own = caller.principal.member_id == Some(view.member_id);
    if !own {
        let course = readable_course(&state, &caller.principal, view.course_id)
            .await
            .map_err(|_| AppError::not_found(("答卷", "attempt"), id))?;
        if !course.can_manage(&caller.principal) {
            return Err(AppError::not_found(("答卷", "attempt"), id));
        }
    }
    Ok(ApiJson(view))
}

/// Submits the answers of the caller's running attempt and grades it.
#[utoipa::path(post, path = "/api/learning/attempts/{id}/submit", tag = "learning", request_body = Submission,
    responses((status = 200, body = AttemptView), (status = 409, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn submit_attempt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<Submission>,
) -> AppResult<ApiJson<AttemptView>> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let attempt = sqlx::query(
        "SELECT a.member_id, a.exam_id, a.paper, a.deadline_at, a.submitted_at, a.total, e.pass_pct, \
         e.credit_centi, e.course_id FROM learning_attempts a JOIN learning_exams e ON e.id = a.exam_id WHERE a.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .filter(|row| row.try_get::<i64, _>("member_id").ok() == caller.principal.member_id)
    .ok_or_else(|| AppError::not_found(("答卷", "attempt"), id))?;
    if attempt.try_get::<Option<i64>, _>("submitted_at")?.is_some() {
        return Err(AppError::conflict(
            "attempt_submitted",
            "此答卷已交卷",
            "this attempt is already submitted",
        ));
    }
    let member_id: i64 = attempt.try_get("member_id")?;
    let exam_id: i64 = attempt.try_get("exam_id")?;
    let late = now > attempt.try_get::<i64, _>("deadline_at")? + GRACE_MS;
    let paper: Vec<i64> = serde_json::from_str(&attempt.try_get::<String, _>("paper")?)
        .map_err(AppError::internal)?;
    let score = if late {
        0
    } else {
        grade(&mut tx, &paper, &input.answers).await?
    };
    let total: i64 = attempt.try_get("total")?;
    let pass_pct: i64 = attempt.try_get("pass_pct")?;
    let passed = !late && score * 100 >= total * pass_pct;
    let answers: Value = input
        .answers
        .iter()
        .map(|a| json!({"question_id": a.question_id, "answer": a.answer}))
        .collect();
    sqlx::query(
        "UPDATE learning_attempts SET submitted_at = $1, answers = $2, score = $3, passed = $4 WHERE id = $5",
    )
    .bind(now)
    .bind(answers.to_string())
    .bind(score)
    .bind(i64::from(passed))
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let mut events = Vec::new();
    if passed {
        let course = super::load_course(&mut tx, attempt.try_get("course_id")?).await?;
        events = add_credit(
            &mut tx,
            NewCredit {
                member_id,
                category: course.category,
                centi: attempt.try_get("credit_centi")?,
                source: Source::Exam(exam_id),
                course_id: Some(course.id),
                note: "",
                entered_by: None,
            },
        )
        .await?;
    }
    tx.commit().await?;
    state.hub.publish(events);
    tracing::info!(
        attempt_id = id,
        exam_id,
        member_id,
        score,
        total,
        passed,
        late,
        "exam attempt graded"
    );
    if late {
        return Err(AppError::conflict(
            "attempt_expired",
            "考试时间已到，答卷按零分计",
            "the time limit has passed; the attempt scores zero",
        ));
    }
    Ok(ApiJson(attempt_view(&state, id).await?))
}

/// Scores answers against the paper; answers to questions not on the paper
/// are ignored, and only the first answer per question counts.
async fn grade(conn: &mut AnyConnection, paper: &[i64], answers: &[GivenAnswer]) -> AppResult<i64> {
    let mut score = 0;
    for question_id in paper {
        let Some(given) = answers.iter().find(|a| a.question_id == *question_id) else {
            continue;
        };
        let row = sqlx::query("SELECT kind, answer, points FROM learning_questions WHERE id = $1")
            .bind(question_id)
            .fetch_one(&mut *conn)
            .await?;
        let kind: String = row.try_get("kind")?;
        let expected: Value = serde_json::from_str(&row.try_get::<String, _>("answer")?)
            .map_err(AppError::internal)?;
        let kind = QuestionKind::parse(&kind)
            .ok_or_else(|| AppError::internal("unknown question kind"))?;
        if is_correct(kind, &expected, &given.answer) {
            score += row.try_get::<i64, _>("points")?;
        }
    }
    Ok(score)
}

async fn attempt_view(state: &AppState, id: i64) -> AppResult<AttemptView> {
    let row = sqlx::query(
        "SELECT a.id, a.exam_id, a.member_id, m.name AS member_name, a.number, a.paper, a.started_at, \
         a.deadline_at, a.submitted_at, a.score, a.total, a.passed, e.title AS exam_title, e.pass_pct, \
         e.max_attempts, e.credit_centi, e.course_id, c.title AS course_title \
         FROM learning_attempts a JOIN learning_exams e ON e.id = a.exam_id \
         JOIN learning_courses c ON c.id = e.course_id JOIN members m ON m.id = a.member_id WHERE a.id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| AppError::not_found(("答卷", "attempt"), id))?;
    let submitted_at: Option<i64> = row.try_get("submitted_at")?;
    let mut questions = Vec::new();
    if submitted_at.is_none() {
        let paper: Vec<i64> = serde_json::from_str(&row.try_get::<String, _>("paper")?)
            .map_err(AppError::internal)?;
        for question_id in paper {
            let q = sqlx::query(
                "SELECT kind, stem, options, points FROM learning_questions WHERE id = $1",
            )
            .bind(question_id)
            .fetch_one(&state.db.pool)
            .await?;
            let kind: String = q.try_get("kind")?;
            questions.push(PaperQuestion {
                id: question_id,
                kind: QuestionKind::parse(&kind)
                    .ok_or_else(|| AppError::internal("unknown question kind"))?,
                stem: q.try_get("stem")?,
                options: serde_json::from_str(&q.try_get::<String, _>("options")?)
                    .map_err(AppError::internal)?,
                points: q.try_get("points")?,
            });
        }
    }
    let passed: Option<i64> = row.try_get("passed")?;
    Ok(AttemptView {
        id,
        exam_id: row.try_get("exam_id")?,
        course_id: row.try_get("course_id")?,
        course_title: row.try_get("course_title")?,
        exam_title: row.try_get("exam_title")?,
        member_id: row.try_get("member_id")?,
        member_name: row.try_get("member_name")?,
        number: row.try_get("number")?,
        max_attempts: row.try_get("max_attempts")?,
        started_at: row.try_get("started_at")?,
        deadline_at: row.try_get("deadline_at")?,
        submitted_at,
        score: row.try_get("score")?,
        total: row.try_get("total")?,
        pass_pct: row.try_get("pass_pct")?,
        passed: passed.map(|p| p == 1),
        credit_hours: hours(row.try_get("credit_centi")?),
        questions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grading_by_kind() {
        assert!(is_correct(QuestionKind::Single, &json!(2), &json!(2)));
        assert!(!is_correct(QuestionKind::Single, &json!(2), &json!(1)));
        assert!(is_correct(
            QuestionKind::Multiple,
            &json!([0, 2]),
            &json!([2, 0])
        ));
        assert!(!is_correct(
            QuestionKind::Multiple,
            &json!([0, 2]),
            &json!([0])
        ));
        assert!(!is_correct(
            QuestionKind::Multiple,
            &json!([0, 2]),
            &json!(0)
        ));
        assert!(is_correct(
            QuestionKind::TrueFalse,
            &json!(true),
            &json!(true)
        ));
        assert!(!is_correct(
            QuestionKind::TrueFalse,
            &json!(true),
            &json!("true")
        ));
        assert!(is_correct(
            QuestionKind::Fill,
            &json!(["实事求是"]),
            &json!(" 实事 求是 ")
        ));
        assert!(is_correct(
            QuestionKind::Fill,
            &json!(["CPC", "中国共产党"]),
            &json!("cpc")
        ));
        assert!(!is_correct(
            QuestionKind::Fill,
            &json!(["实事求是"]),
            &json!(1)
        ));
    }
}
