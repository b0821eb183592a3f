//! The credit-hour ledger: entries from completed lessons, passed exams and
//! offline training, and each member's yearly totals against the target.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::member_org_path;
use super::{Category, centi_from_hours, china_year, hours};
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::hub::protocol::Event;
use crate::hub::store;
use crate::hub::topic::Topic;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(my_learning))
        .routes(routes!(enter_offline))
}

/// Where a ledger entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Lesson(i64),
    Exam(i64),
    Offline,
}

/// One entry to add to the ledger.
pub struct NewCredit<'a> {
    pub member_id: i64,
    pub category: Category,
    pub centi: i64,
    pub source: Source,
    pub course_id: Option<i64>,
    pub note: &'a str,
    pub entered_by: Option<i64>,
}

/// Adds an entry inside the caller's transaction and returns the
/// `learning.credited` events for the member's accounts, to publish after
/// commit. A lesson or exam is credited once per member; a repeat adds
/// nothing and returns no events.
pub async fn add_credit(conn: &mut AnyConnection, credit: NewCredit<'_>) -> AppResult<Vec<Event>> {
    let (source, ref_id) = match credit.source {
        Source::Lesson(id) => ("lesson", Some(id)),
        Source::Exam(id) => ("exam", Some(id)),
        Source::Offline => ("offline", None),
    };
    if let Some(ref_id) = ref_id {
        let existing: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM learning_credits WHERE member_id = $1 AND source = $2 AND ref_id = $3",
        )
        .bind(credit.member_id)
        .bind(source)
        .bind(ref_id)
        .fetch_one(&mut *conn)
        .await?;
        if existing > 0 {
            return Ok(Vec::new());
        }
    }
    let now = now_ms();
    let year = china_year(now);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO learning_credits (member_id, year, category, centi, source, ref_id, course_id, note, entered_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(credit.member_id)
    .bind(year)
    .bind(credit.category.as_str())
    .bind(credit.centi)
    .bind(source)
    .bind(ref_id)
    .bind(credit.course_id)
    .bind(credit.note)
    .bind(credit.entered_by)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let accounts: Vec<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE member_id = $1")
        .bind(credit.member_id)
        .fetch_all(&mut *conn)
        .await?;
    let data = json!({"credit_id": id, "hours": hours(credit.centi), "category": credit.category,
        "source": source, "ref_id": ref_id, "course_id": credit.course_id, "year": year});
    let mut events = Vec::with_capacity(accounts.len());
    for account_id in accounts {
        events.push(
            store::append(
                conn,
                &Topic::User(account_id).name(),
                "learning.credited",
                data.clone(),
            )
            .await?,
        );
    }
    tracing::info!(
        member_id = credit.member_id,
        source,
        centi = credit.centi,
        "credit hours added"
    );
    Ok(events)
}

/// A member's hours in one year against the target.
#[derive(Serialize, utoipa::ToSchema, Clone)]
pub struct YearTotals {
    pub member_id: i64,
    pub year: i64,
    pub required_hours: f64,
    pub elective_hours: f64,
    pub total_hours: f64,
    pub required_target: f64,
    pub elective_target: f64,
    /// Whether both parts of the target are met.
    pub met: bool,
}

/// Sums a member's ledger for a year and compares it with the target.
/// Elective hours beyond the elective target do not make up for missing
/// required hours.
pub async fn year_totals(
    conn: &mut AnyConnection,
    member_id: i64,
    year: i64,
) -> AppResult<YearTotals> {
    let rows = sqlx::query(
        "SELECT category, CAST(COALESCE(SUM(centi), 0) AS BIGINT) AS centi FROM learning_credits \
         WHERE member_id = $1 AND year = $2 GROUP BY category",
    )
    .bind(member_id)
    .bind(year)
    .fetch_all(&mut *conn)
    .await?;
    let (mut required, mut elective) = (0i64, 0i64);
    for row in &rows {
        let category: String = row.try_get("category")?;
        let centi: i64 = row.try_get("centi")?;
        match Category::parse(&category) {
            Some(Category::Required) => required += centi,
            Some(Category::Elective) => elective += centi,
            None => {}
        }
    }
    let target = super::assignments::target_of(conn, member_id, year).await?;
    Ok(YearTotals {
        member_id,
        year,
        required_hours: hours(required),
        elective_hours: hours(elective),
        total_hours: hours(required + elective),
        required_target: hours(target.required_centi),
        elective_target: hours(target.elective_centi),
        met: required >= target.required_centi && elective >= target.elective_centi,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub id: i64,
    pub category: Category,
    pub hours: f64,
    /// `lesson`, `exam` or `offline`.
    pub source: String,
    pub course_id: Option<i64>,
    pub course_title: Option<String>,
    pub note: String,
    pub created_at: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MyLearning {
    pub totals: YearTotals,
    pub entries: Vec<LedgerEntry>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct YearQuery {
    /// Calendar year in China time; the current one when absent.
    pub year: Option<i64>,
}

/// The caller's hours this year against the target, with the entries.
#[utoipa::path(get, path = "/api/learning/me", tag = "learning", params(YearQuery),
    responses((status = 200, body = MyLearning), (status = 422, body = ErrorBody)))]
async fn my_learning(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<YearQuery>,
) -> AppResult<ApiJson<MyLearning>> {
    let Some(member_id) = caller.principal.member_id else {
        return Err(AppError::invalid(
            "account",
            "此账号未关联党员，没有学习记录",
            "this account is not linked to a member and has no learning record",
        ));
    };
    let year = super::check_year(query.year.unwrap_or_else(|| china_year(now_ms())))?;
    let mut conn = state.db.pool.acquire().await?;
    let totals = year_totals(&mut conn, member_id, year).await?;
    let entries = entries_of(&mut conn, member_id, year).await?;
    Ok(ApiJson(MyLearning { totals, entries }))
}

/// A member's ledger entries of a year, newest first.
pub async fn entries_of(
    conn: &mut AnyConnection,
    member_id: i64,
    year: i64,
) -> AppResult<Vec<LedgerEntry>> {
    let rows = sqlx::query(
        "SELECT e.id, e.category, e.centi, e.source, e.course_id, c.title, e.note, e.created_at \
         FROM learning_credits e LEFT JOIN learning_courses c ON c.id = e.course_id \
         WHERE e.member_id = $1 AND e.year = $2 ORDER BY e.id DESC",
    )
    .bind(member_id)
    .bind(year)
    .fetch_all(&mut *conn)
    .await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let category: String = row.try_get("category")?;
        entries.push(LedgerEntry {
            id: row.try_get("id")?,
            category: Category::parse(&category).unwrap_or(Category::Elective),
            hours: hours(row.try_get("centi")?),
            source: row.try_get("source")?,
            course_id: row.try_get("course_id")?,
            course_title: row.try_get("title")?,
            note: row.try_get("note")?,
            created_at: row.try_get("created_at")?,
        });
    }
    Ok(entries)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflineCredit {
    pub member_ids: Vec<i64>,
    pub category: Category,
    pub hours: f64,
    /// What the training was, e.g. the class and its dates.
    pub note: String,
}

/// Most members one offline entry credits, so that one request stays one short transaction.
const MAX_CREDIT_MEMBERS: usize = 1000;

/// Enters offline training (a class, a lecture attended in person) for
/// members the caller manages; it counts in the same ledger.
#[utoipa::path(post, path = "/api/learning/credits", tag = "learning", request_body = OfflineCredit,
    responses((status = 201, description = "Entries added"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn enter_offline(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<OfflineCredit>,
) -> AppResult<(StatusCode, ApiJson<serde_json::Value>)> {
    let centi = centi_from_hours("hours", input.hours, 200.0)?;
    if centi == 0 {
        return Err(AppError::invalid(
            "hours",
            "学时须大于 0",
            "hours must be greater than 0",
        ));
    }
    let note = super::check_text("note", &input.note, 500)?;
    if input.member_ids.is_empty() {
        return Err(AppError::invalid(
            "member_ids",
            "请至少选择一名党员",
            "choose at least one member",
        ));
    }
    if input.member_ids.len() > MAX_CREDIT_MEMBERS {
        return Err(AppError::invalid(
            "member_ids",
            format!("一次最多录入 {MAX_CREDIT_MEMBERS} 名党员"),
            format!("at most {MAX_CREDIT_MEMBERS} members at once"),
        ));
    }
    for (index, member_id) in input.member_ids.iter().enumerate() {
        if input.member_ids[..index].contains(member_id) {
            return Err(AppError::invalid(
                &format!("member_ids[{index}]"),
                "同一名党员重复出现",
                "the same member appears twice",
            ));
        }
    }
    let mut tx = state.db.begin().await?;
    let mut events = Vec::new();
    for (index, member_id) in input.member_ids.iter().enumerate() {
        let field = format!("member_ids[{index}]");
        let path = member_org_path(&mut tx, *member_id, &field).await?;
        // Officers enter hours for their subtree, never for themselves.
        let allowed = caller
            .principal
            .can_member(*member_id, &path, Access::Write)
            && caller.principal.member_id != Some(*member_id);
        if !allowed {
            return Err(AppError::forbidden().field(field));
        }
        events.extend(
            add_credit(
                &mut tx,
                NewCredit {
                    member_id: *member_id,
                    category: input.category,
                    centi,
                    source: Source::Offline,
                    course_id: None,
                    note: &note,
                    entered_by: Some(caller.session.account.id),
                },
            )
            .await?,
        );
    }
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "learning.credit.offline",
        ("learning_credits", input.member_ids.len().to_string()),
        json!({"member_ids": input.member_ids, "category": input.category, "hours": input.hours, "note": note}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish(events);
    Ok((
        StatusCode::CREATED,
        ApiJson(json!({"members": input.member_ids.len(), "hours": input.hours})),
    ))
}
