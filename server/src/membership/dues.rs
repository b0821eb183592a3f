//! HTTP resource `/api/membership/dues`: each member's dues profile and
//! payments, arrears per member and per organization, and the reminder
//! sent before a member reaches six months unpaid.
//!
//! A month is owed from the profile's first month up to the month before
//! the current one; the current month may still be paid on time. Arrears
//! are priced at the current profile's monthly amount.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dues_rules::{self, DuesKind, Month, UNPAID_LIMIT_MONTHS};
use super::reminders::{organizers_of, send_notice};
use super::{check_date, officer_org};
use crate::audit::{self, Actor};
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(member_dues, put_profile))
        .routes(routes!(record_payment))
        .routes(routes!(org_dues))
}

/// Largest accepted monthly income or payment: 10 million yuan, in fen.
const MAX_AMOUNT_FEN: i64 = 1_000_000_000;

/// How a member's dues are set.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DuesProfile {
    pub kind: DuesKind,
    /// Monthly after-tax income or pension, in fen; 0 for `fixed`.
    #[serde(default)]
    pub income_fen: i64,
    /// The fixed monthly amount, in fen, for `fixed`.
    #[serde(default)]
    pub fixed_fen: i64,
    /// First month owed, `YYYY-MM`.
    pub since_month: String,
}

/// One recorded payment.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// `YYYY-MM`
    pub month: String,
    pub amount_fen: i64,
    /// `YYYY-MM-DD`
    pub paid_on: String,
}

/// A member's dues: profile, amount, payments and arrears.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberDues {
    pub member_id: i64,
    pub name: String,
    pub profile: Option<DuesProfile>,
    pub monthly_fen: i64,
    pub payments: Vec<Payment>,
    pub unpaid_months: Vec<String>,
    pub arrears_fen: i64,
    /// Unpaid months in a row up to last month.
    pub unpaid_run: i64,
}

/// Arrears of an organization and its subtree.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrgDues {
    pub org_id: i64,
    pub org_name: String,
    pub members: Vec<MemberDues>,
    pub arrears_fen: i64,
    pub members_in_arrears: i64,
}

fn this_month() -> Month {
    Month::of(super::today())
}

fn check_month(field: &str, text: &str) -> AppResult<Month> {
    Month::parse(text.trim()).ok_or_else(|| {
        AppError::invalid(
            field,
            format!("月份格式应为 YYYY-MM：{text}"),
            format!("month must be YYYY-MM: {text}"),
        )
    })
}

fn check_amount(field: &str, fen: i64) -> AppResult<()> {
    if !(0..=MAX_AMOUNT_FEN).contains(&fen) {
        return Err(AppError::invalid(
            field,
            format!("金额须在 0 到 {MAX_AMOUNT_FEN} 分之间"),
            format!("{field} must be 0 to {MAX_AMOUNT_FEN} fen"),
        ));
    }
    Ok(())
}

/// Loads the member's organization path and checks the caller's access.
async fn authorize(
    state: &AppState,
    caller: &Caller,
    conn: &mut AnyConnection,
    member_id: i64,
    access: Access,
) -> AppResult<()> {
    let found: Option<(String, String)> = sqlx::query_as(
        "SELECT o.path, m.status FROM members m JOIN orgs o ON o.id = m.org_id WHERE m.id = $1",
    )
    .bind(member_id)
    .fetch_optional(&mut *conn)
    .await?;
    let (path, status) = found.ok_or_else(|| AppError::not_found(("党员", "member"), member_id))?;
    let allowed = caller.principal.can_member(member_id, &path, access);
    let checked = caller
        .principal
        .check(&state.db, allowed, ("member", member_id), access)
        .await;
    // The 负责人 of the member's temporary branch reads the record but may
    // not collect dues: name that rule instead of a bare 403.
    if checked.is_err()
        && access == Access::Write
        && let Some(officer) = caller.principal.member_id
        && super::temporary::leads_members_branch(conn, officer, member_id).await?
    {
        return Err(super::temporary_branch_error(
            super::TemporaryBranchLimit::Dues,
        ));
    }
    checked?;
    if access == Access::Write {
        super::reject_moved_out(&status)?;
    }
    Ok(())
}

/// A member's dues, payments and arrears. Members read their own.
#[utoipa::path(get, path = "/api/membership/dues/members/{id}", tag = "membership",
    params(("id" = i64, Path, description = "Member id")),
    responses((status = 200, body = MemberDues), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn member_dues(
    State(state): State<AppState>,
    caller: Caller,
    Path(member_id): Path<i64>,
) -> AppResult<ApiJson<MemberDues>> {
    let mut conn = state.db.pool.acquire().await?;
    authorize(&state, &caller, &mut conn, member_id, Access::Read).await?;
    Ok(ApiJson(
        load_dues(&mut conn, member_id, this_month()).await?,
    ))
}

/// Sets how a member's dues are computed.
#[utoipa::path(put, path = "/api/membership/dues/members/{id}", tag = "membership", request_body = DuesProfile,
    params(("id" = i64, Path, description = "Member id")),
    responses((status = 200, body = MemberDues), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_profile(
    State(state): State<AppState>,
    caller: Caller,
    Path(member_id): Path<i64>,
    ApiJson(input): ApiJson<DuesProfile>,
) -> AppResult<ApiJson<MemberDues>> {
    check_amount("income_fen", input.income_fen)?;
    check_amount("fixed_fen", input.fixed_fen)?;
    let since = check_month("since_month", &input.since_month)?;
    let fixed_fen = match input.kind {
        DuesKind::Fixed if input.fixed_fen == 0 => dues_rules::DEFAULT_FIXED_FEN,
        DuesKind::Fixed => input.fixed_fen,
        _ => 0,
    };
    let mut tx = state.db.begin().await?;
    authorize(&state, &caller, &mut tx, member_id, Access::Write).await?;
    sqlx::query(
        "INSERT INTO dues_profiles (member_id, kind, income_fen, fixed_fen, since_month, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (member_id) DO UPDATE SET kind = $2, \
         income_fen = $3, fixed_fen = $4, since_month = $5, updated_at = $6",
    )
    .bind(member_id)
    .bind(input.kind.as_str())
    .bind(input.income_fen)
    .bind(fixed_fen)
    .bind(since.to_string())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    // The income is personal: the audit trail keeps only the kind.
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "dues.profile.set",
        ("member", member_id.to_string()),
        json!({"kind": input.kind, "since_month": since.to_string()}),
    )
    .await?;
    let dues = load_dues(&mut tx, member_id, this_month()).await?;
    tx.commit().await?;
    Ok(ApiJson(dues))
}

/// Records one month's payment.
#[utoipa::path(post, path = "/api/membership/dues/members/{id}/payments", tag = "membership", request_body = Payment,
    params(("id" = i64, Path, description = "Member id")),
    responses((status = 201, body = MemberDues), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn record_payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(member_id): Path<i64>,
    ApiJson(input): ApiJson<Payment>,
) -> AppResult<(StatusCode, ApiJson<MemberDues>)> {
    let month = check_month("month", &input.month)?;
    let paid_on = check_date("paid_on", &input.paid_on)?;
    check_amount("amount_fen", input.amount_fen)?;
    if input.amount_fen == 0 {
        return Err(AppError::invalid(
            "amount_fen",
            "缴纳金额须大于 0",
            "amount_fen must be more than 0",
        ));
    }
    let mut tx = state.db.begin().await?;
    authorize(&state, &caller, &mut tx, member_id, Access::Write).await?;
    let inserted = sqlx::query(
        "INSERT INTO dues_payments (member_id, org_id, month, amount_fen, paid_on, recorded_by, recorded_at) \
         SELECT id, org_id, $2, $3, $4, $5, $6 FROM members WHERE id = $1",
    )
    .bind(member_id)
    .bind(month.to_string())
    .bind(input.amount_fen)
    .bind(paid_on.to_string())
    .bind(caller.session.account.id)
    .bind(now_ms())
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(error) if crate::db::is_unique_violation(&error) => {
            return Err(AppError::conflict(
                "month_paid",
                format!("{month} 的党费已登记"),
                format!("dues for {month} are already recorded"),
            )
            .field("month"));
        }
        Err(error) => return Err(error.into()),
    }
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "dues.payment.record",
        ("member", member_id.to_string()),
        json!({"month": month.to_string(), "amount_fen": input.amount_fen}),
    )
    .await?;
    let dues = load_dues(&mut tx, member_id, this_month()).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, ApiJson(dues)))
}

/// Arrears of every member of an organization's subtree, leaving out those
/// whose relation moved out.
#[utoipa::path(get, path = "/api/membership/dues/orgs/{id}", tag = "membership",
    params(("id" = i64, Path, description = "Organization id")),
    responses((status = 200, body = OrgDues), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn org_dues(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<i64>,
) -> AppResult<ApiJson<OrgDues>> {
    let mut conn = state.db.pool.acquire().await?;
    let org = officer_org(&state, &caller, &mut conn, org_id, "id", Access::Read).await?;
    if org.kind == crate::org::OrgKind::TemporaryBranch {
        return Err(super::temporary_branch_error(
            super::TemporaryBranchLimit::Dues,
        ));
    }
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT m.id FROM members m JOIN orgs o ON o.id = m.org_id \
         WHERE o.path LIKE $1 AND m.status <> 'moved_out' ORDER BY m.id",
    )
    .bind(format!("{}%", org.path))
    .fetch_all(&mut *conn)
    .await?;
    let month = this_month();
    let mut members = Vec::with_capacity(ids.len());
    for id in ids {
        members.push(load_dues(&mut conn, id, month).await?);
    }
    Ok(ApiJson(OrgDues {
        org_id,
        org_name: org.name,
        arrears_fen: members.iter().map(|m| m.arrears_fen).sum(),
        members_in_arrears: members.iter().filter(|m| m.arrears_fen > 0).count() as i64,
        members,
    }))
}

/// Loads a member's dues as of `current` (the month in progress).
pub async fn load_dues(
    conn: &mut AnyConnection,
    member_id: i64,
    current: Month,
) -> AppResult<MemberDues> {
    let name: String = sqlx::query_scalar("SELECT name FROM members WHERE id = $1")
        .bind(member_id)
        .fetch_one(&mut *conn)
        .await?;
    let profile = sqlx::query(
        "SELECT kind, income_fen, fixed_fen, since_month FROM dues_profiles WHERE member_id = $1",
    )
    .bind(member_id)
    .fetch_optional(&mut *conn)
    .await?
    .map(|row| -> Result<DuesProfile, sqlx::Error> {
        let kind: String = row.try_get("kind")?;
        Ok(DuesProfile {
            kind: DuesKind::parse(&kind).unwrap_or(DuesKind::Fixed),
            income_fen: row.try_get("income_fen")?,
            fixed_fen: row.try_get("fixed_fen")?,
            since_month: row.try_get("since_month")?,
        })
    })
    .transpose()?;
    let payments: Vec<Payment> = sqlx::query(
        "SELECT month, amount_fen, paid_on FROM dues_payments WHERE member_id = $1 ORDER BY month",
    )
    .bind(member_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        Ok(Payment {
            month: row.try_get("month")?,
            amount_fen: row.try_get("amount_fen")?,
            paid_on: row.try_get("paid_on")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let paid: BTreeSet<Month> = payments
        .iter()
        .filter_map(|p| Month::parse(&p.month))
        .collect();
    let (monthly_fen, unpaid, run) = match &profile {
        Some(profile) => {
            let monthly =
                dues_rules::monthly_fen(profile.kind, profile.income_fen, profile.fixed_fen);
            let since = Month::parse(&profile.since_month).unwrap_or(current);
            let through = current.previous();
            (
                monthly,
                dues_rules::unpaid_months(since, through, &paid),
                dues_rules::unpaid_run(since, through, &paid),
            )
        }
        None => (0, Vec::new(), 0),
    };
    Ok(MemberDues {
        member_id,
        name,
        profile,
        monthly_fen,
        payments,
        arrears_fen: monthly_fen * unpaid.len() as i64,
        unpaid_months: unpaid.iter().map(Month::to_string).collect(),
        unpaid_run: run,
    })
}

/// Reminds members with five unpaid months in a row, and their
/// organization's 组织委员 or 书记, before the sixth; once per run of
/// unpaid months. Returns how many were reminded.
pub async fn sweep_dues(state: &AppState, today: NaiveDate) -> AppResult<usize> {
    let current = Month::of(today);
    let members: Vec<(i64, i64)> = sqlx::query(
        "SELECT p.member_id, m.org_id FROM dues_profiles p JOIN members m ON m.id = p.member_id \
         WHERE m.status <> 'moved_out'",
    )
    .fetch_all(&state.db.pool)
    .await?
    .iter()
    .map(|row| Ok((row.try_get("member_id")?, row.try_get("org_id")?)))
    .collect::<Result<_, sqlx::Error>>()?;
    let mut reminded = 0;
    for (member_id, org_id) in members {
        let mut tx = state.db.begin().await?;
        let dues = load_dues(&mut tx, member_id, current).await?;
        if dues.unpaid_run != UNPAID_LIMIT_MONTHS - 1 {
            continue;
        }
        let unpaid_since = dues.unpaid_months[dues.unpaid_months.len() - 5].clone();
        let claimed = sqlx::query(
            "INSERT INTO dues_reminders (member_id, unpaid_since, reminded_at) VALUES ($1, $2, $3) \
             ON CONFLICT (member_id, unpaid_since) DO NOTHING",
        )
        .bind(member_id)
        .bind(&unpaid_since)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            continue;
        }
        let mut recipients = organizers_of(&mut tx, org_id).await?;
        recipients.push(member_id);
        recipients.sort_unstable();
        recipients.dedup();
        let title = format!(
            "党费提醒：{}自 {unpaid_since} 起已连续五个月未交纳党费",
            dues.name
        );
        let body = format!(
            "<p>{title}。连续六个月不交纳党费将被认为自行脱党（党章第九条），请于本月内补交。</p>"
        );
        let data = json!({"member_id": member_id, "unpaid_since": unpaid_since});
        let outgoing = send_notice(&mut tx, &recipients, &title, &body, "todo.dues", &data).await?;
        audit::append(
            &mut tx,
            &state.audit_key,
            &Actor::system(),
            "dues.remind",
            ("member", member_id.to_string()),
            data,
        )
        .await?;
        tx.commit().await?;
        state.hub.publish(outgoing);
        reminded += 1;
    }
    Ok(reminded)
}
