//! HTTP resource `/api/membership/transfers`: moving a member's
//! organization relation (组织关系转接) between two organizations of the
//! deployment.
//!
//! The sending organization issues a letter with a validity period and the
//! month up to which dues are paid. The member stays in the sending
//! organization, which stays responsible for them, until the receiving
//! organization accepts: accepting moves the member and returns the receipt
//! (回执) to the sender. A letter not accepted by its last valid day expires
//! and the member stays where they were. Hub events `transfer.*` go to
//! `org:ID` of both organizations.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dues_rules::Month;
use super::{check_text, today};
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::hub::protocol::Event;
use crate::hub::store as events;
use crate::org::load_org;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_transfer, list_transfers))
        .routes(routes!(get_transfer))
        .routes(routes!(accept_transfer))
        .routes(routes!(reject_transfer))
        .routes(routes!(destinations))
}

/// An organization a letter may be addressed to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Destination {
    pub id: i64,
    pub name: String,
}

/// Lists every organization of the deployment by name, for officers who
/// issue letters. A sending organization names the receiving one, which
/// usually lies outside the sender's subtree, so the names (and nothing
/// else) of all organizations are visible here.
#[utoipa::path(get, path = "/api/membership/transfers/destinations", tag = "membership",
    responses((status = 200, body = Vec<Destination>), (status = 403, body = ErrorBody)))]
async fn destinations(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<ApiJson<Vec<Destination>>> {
    let issues_letters = caller.principal.is(crate::auth::SystemRole::SystemAdmin)
        || !caller.principal.officer_paths.is_empty();
    if !issues_letters {
        return Err(AppError::forbidden());
    }
    let rows = sqlx::query("SELECT id, name FROM orgs ORDER BY path")
        .fetch_all(&state.db.pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Destination {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map(ApiJson)
        .map_err(Into::into)
}

/// Maximum validity of a letter, in days.
pub const MAX_VALID_DAYS: u64 = 90;

/// A new transfer: to an organization of this deployment (`to_org_id`) or
/// to one outside it (`to_org_name`), whose letter is then exported.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    pub member_id: i64,
    pub to_org_id: Option<i64>,
    #[serde(default)]
    pub to_org_name: String,
    /// Days the letter stays valid, 1 to 90.
    pub valid_days: u64,
    /// The last month paid, `YYYY-MM`, not after the current month.
    pub dues_paid_until: String,
    pub reason: String,
}

/// A transfer as both sides see it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transfer {
    pub id: i64,
    pub member_id: i64,
    pub member_name: String,
    pub from_org_id: Option<i64>,
    pub from_org_name: String,
    pub to_org_id: Option<i64>,
    pub to_org_name: String,
    pub letter_no: String,
    pub issued_on: String,
    pub valid_until: String,
    pub dues_paid_until: String,
    pub reason: String,
    /// `pending`, `accepted`, `rejected` or `expired`.
    pub status: String,
    /// The date of the receipt (回执), once accepted.
    pub receipt_on: Option<String>,
    pub note: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct BoxQuery {
    /// `inbox` (transfers to organizations the caller manages) or `outbox`.
    pub r#box: String,
}

/// A receiving organization's reason to reject a letter.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    pub note: String,
}

/// Issues a transfer letter for a member of an organization the caller
/// manages.
#[utoipa::path(post, path = "/api/membership/transfers", tag = "membership", request_body = NewTransfer,
    responses((status = 201, body = Transfer), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_transfer(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewTransfer>,
) -> AppResult<(StatusCode, ApiJson<Transfer>)> {
    let reason = check_text("reason", &input.reason, 200)?;
    if !(1..=MAX_VALID_DAYS).contains(&input.valid_days) {
        return Err(AppError::invalid(
            "valid_days",
            format!("有效期须为 1 到 {MAX_VALID_DAYS} 天"),
            format!("valid_days must be 1 to {MAX_VALID_DAYS}"),
        ));
    }
    let paid_until = Month::parse(input.dues_paid_until.trim())
        .filter(|month| *month <= Month::of(today()))
        .ok_or_else(|| {
            AppError::invalid(
                "dues_paid_until",
                "党费交纳月份格式应为 YYYY-MM，且不晚于本月",
                "dues_paid_until must be YYYY-MM and not after this month",
            )
        })?;

    let mut tx = state.db.begin().await?;
    let (member_name, from_org) = member_org(&mut tx, input.member_id).await?;
    let allowed = caller.principal.can_org(&from_org.path, Access::Write);
    caller
        .principal
        .check(&state.db, allowed, ("org", from_org.id), Access::Write)
        .await?;
    let (to_org_id, to_org_name) = destination(&mut tx, &input, from_org.id).await?;
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM membership_transfers WHERE member_id = $1 AND status = 'pending' \
         AND valid_until >= $2",
    )
    .bind(input.member_id)
    .bind(today().to_string())
    .fetch_one(&mut *tx)
    .await?;
    if open > 0 {
        return Err(AppError::conflict(
            "transfer_open",
            "该党员已有未办结的组织关系转接",
            "this member already has an open transfer",
        )
        .field("member_id"));
    }

    let issued = today();
    let valid_until = issued + chrono::Days::new(input.valid_days - 1);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO membership_transfers (member_id, from_org_id, from_org_name, to_org_id, \
         to_org_name, letter_no, issued_on, valid_until, dues_paid_until, reason, status, \
         created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12) \
         RETURNING id",
    )
    .bind(input.member_id)
    .bind(from_org.id)
    .bind(&from_org.name)
    .bind(to_org_id)
    .bind(&to_org_name)
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(issued.to_string())
    .bind(valid_until.to_string())
    .bind(paid_until.to_string())
    .bind(&reason)
    .bind(caller.session.account.id)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    let letter_no = format!("转字〔{}〕{id:06}号", issued.format("%Y"));
    sqlx::query("UPDATE membership_transfers SET letter_no = $1 WHERE id = $2")
        .bind(&letter_no)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "transfer.create",
        ("transfer", id.to_string()),
        json!({"member_id": input.member_id, "member_name": member_name, "from_org_id": from_org.id,
            "to_org_id": to_org_id, "to_org_name": to_org_name, "valid_until": valid_until.to_string()}),
    )
    .await?;
    let transfer = load_transfer(&mut tx, id).await?;
    let outgoing = publish(&mut tx, &transfer, "transfer.issued").await?;
    tx.commit().await?;
    state.hub.publish(outgoing);
    tracing::info!(transfer_id = id, "transfer letter issued");
    Ok((StatusCode::CREATED, ApiJson(transfer)))
}

async fn member_org(
    conn: &mut AnyConnection,
    member_id: i64,
) -> AppResult<(String, crate::org::Org)> {
    let row = sqlx::query("SELECT name, org_id, status FROM members WHERE id = $1")
        .bind(member_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| AppError::not_found(("党员", "member"), member_id).field("member_id"))?;
    super::reject_moved_out(&row.try_get::<String, _>("status")?)?;
    let org = load_org(conn, row.try_get("org_id")?).await?;
    Ok((row.try_get("name")?, org))
}

/// Checks the destination: another organization here, or a named one
/// outside.
async fn destination(
    conn: &mut AnyConnection,
    input: &NewTransfer,
    from_org_id: i64,
) -> AppResult<(Option<i64>, String)> {
    match input.to_org_id {
        Some(to_org_id) => {
            let org = load_org(conn, to_org_id)
                .await
                .map_err(|e| e.field("to_org_id"))?;
            if org.id == from_org_id {
                return Err(AppError::invalid(
                    "to_org_id",
                    "转入组织不能是党员现在的组织",
                    "to_org_id is the member's current organization",
                ));
            }
            Ok((Some(org.id), org.name))
        }
        None => Ok((None, check_text("to_org_name", &input.to_org_name, 100)?)),
    }
}

/// Lists the transfers to (`inbox`) or from (`outbox`) the organizations the
/// caller manages, newest first.
#[utoipa::path(get, path = "/api/membership/transfers", tag = "membership", params(BoxQuery),
    responses((status = 200, body = Vec<Transfer>), (status = 422, body = ErrorBody)))]
async fn list_transfers(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<BoxQuery>,
) -> AppResult<ApiJson<Vec<Transfer>>> {
    let column = match query.r#box.as_str() {
        "inbox" => "to_org_id",
        "outbox" => "from_org_id",
        _ => {
            return Err(AppError::invalid(
                "box",
                "box 须为 inbox 或 outbox",
                "box must be inbox or outbox",
            ));
        }
    };
    let mut conn = state.db.pool.acquire().await?;
    expire_lapsed(&mut conn).await?;
    let rows = sqlx::query(&format!(
        "SELECT t.id, o.path FROM membership_transfers t JOIN orgs o ON o.id = t.{column} \
         ORDER BY t.id DESC"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let mut transfers = Vec::new();
    for row in rows {
        let path: String = row.try_get("path")?;
        if caller.principal.can_org(&path, Access::Write) {
            transfers.push(load_transfer(&mut conn, row.try_get("id")?).await?);
        }
    }
    Ok(ApiJson(transfers))
}

/// One transfer, for officers of either side.
#[utoipa::path(get, path = "/api/membership/transfers/{id}", tag = "membership",
    params(("id" = i64, Path, description = "Transfer id")),
    responses((status = 200, body = Transfer), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_transfer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<Transfer>> {
    let mut conn = state.db.pool.acquire().await?;
    expire_lapsed(&mut conn).await?;
    let transfer = load_transfer(&mut conn, id).await?;
    authorize_side(&state, &caller, &mut conn, &transfer, Side::Either).await?;
    Ok(ApiJson(transfer))
}

/// Accepts a letter: moves the member into the receiving organization and
/// returns the receipt to the sender.
#[utoipa::path(post, path = "/api/membership/transfers/{id}/accept", tag = "membership",
    params(("id" = i64, Path, description = "Transfer id")),
    responses((status = 200, body = Transfer), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn accept_transfer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<Transfer>> {
    let mut tx = state.db.begin().await?;
    expire_lapsed(&mut tx).await?;
    let transfer = load_transfer(&mut tx, id).await?;
    authorize_side(&state, &caller, &mut tx, &transfer, Side::Receiving).await?;
    check_pending(&transfer)?;
    let Some(to_org_id) = transfer.to_org_id else {
        return Err(AppError::conflict(
            "transfer_outside",
            "转往外部系统的介绍信由对方导入",
            "a letter to an outside organization is imported there",
        ));
    };
    let now = now_ms();
    sqlx::query("UPDATE members SET org_id = $1, updated_at = $2 WHERE id = $3")
        .bind(to_org_id)
        .bind(now)
        .bind(transfer.member_id)
        .execute(&mut *tx)
        .await?;
    // A moved member keeps no officer role in the organization they left.
    sqlx::query("DELETE FROM org_roles WHERE member_id = $1 AND org_id = $2")
        .bind(transfer.member_id)
        .bind(transfer.from_org_id)
        .execute(&mut *tx)
        .await?;
    decide(&mut tx, id, "accepted", Some(today()), "", &caller).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "transfer.accept",
        ("transfer", id.to_string()),
        json!({"member_id": transfer.member_id, "to_org_id": to_org_id}),
    )
    .await?;
    let transfer = load_transfer(&mut tx, id).await?;
    let outgoing = publish(&mut tx, &transfer, "transfer.accepted").await?;
    tx.commit().await?;
    state.hub.publish(outgoing);
    tracing::info!(transfer_id = id, "transfer accepted");
    Ok(ApiJson(transfer))
}

/// Rejects a letter with a reason; the member stays where they are.
#[utoipa::path(post, path = "/api/membership/transfers/{id}/reject", tag = "membership", request_body = Rejection,
    params(("id" = i64, Path, description = "Transfer id")),
    responses((status = 200, body = Transfer), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reject_transfer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<Rejection>,
) -> AppResult<ApiJson<Transfer>> {
    let note = check_text("note", &input.note, 200)?;
    let mut tx = state.db.begin().await?;
    expire_lapsed(&mut tx).await?;
    let transfer = load_transfer(&mut tx, id).await?;
    authorize_side(&state, &caller, &mut tx, &transfer, Side::Receiving).await?;
    check_pending(&transfer)?;
    decide(&mut tx, id, "rejected", None, &note, &caller).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "transfer.reject",
        ("transfer", id.to_string()),
        json!({"note": note}),
    )
    .await?;
    let transfer = load_transfer(&mut tx, id).await?;
    let outgoing = publish(&mut tx, &transfer, "transfer.rejected").await?;
    tx.commit().await?;
    state.hub.publish(outgoing);
    Ok(ApiJson(transfer))
}

fn check_pending(transfer: &Transfer) -> AppResult<()> {
    match transfer.status.as_str() {
        "pending" => Ok(()),
        "expired" => Err(AppError::conflict(
            "transfer_expired",
            format!(
                "介绍信已于 {} 过期，请转出组织重新开具",
                transfer.valid_until
            ),
            format!(
                "the letter expired after {}; the sending organization issues a new one",
                transfer.valid_until
            ),
        )),
        _ => Err(AppError::conflict(
            "transfer_closed",
            "该组织关系转接已办结",
            "this transfer is already closed",
        )),
    }
}

async fn decide(
    conn: &mut AnyConnection,
    id: i64,
    status: &str,
    receipt_on: Option<NaiveDate>,
    note: &str,
    caller: &Caller,
) -> AppResult<()> {
    sqlx::query(
        "UPDATE membership_transfers SET status = $1, receipt_on = $2, note = $3, decided_by = $4, \
         decided_at = $5 WHERE id = $6",
    )
    .bind(status)
    .bind(receipt_on.map(|date| date.to_string()))
    .bind(note)
    .bind(caller.session.account.id)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Receiving,
    Either,
}

async fn authorize_side(
    state: &AppState,
    caller: &Caller,
    conn: &mut AnyConnection,
    transfer: &Transfer,
    side: Side,
) -> AppResult<()> {
    let mut orgs = vec![transfer.to_org_id];
    if side == Side::Either {
        orgs.push(transfer.from_org_id);
    }
    for org_id in orgs.into_iter().flatten() {
        let org = load_org(conn, org_id).await?;
        if caller.principal.can_org(&org.path, Access::Write) {
            return Ok(());
        }
    }
    caller
        .principal
        .check(&state.db, false, ("transfer", transfer.id), Access::Write)
        .await
}

/// Marks pending letters whose last valid day has passed as expired.
pub async fn expire_lapsed(conn: &mut AnyConnection) -> AppResult<()> {
    sqlx::query(
        "UPDATE membership_transfers SET status = 'expired' \
         WHERE status = 'pending' AND valid_until < $1",
    )
    .bind(today().to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn publish(
    conn: &mut AnyConnection,
    transfer: &Transfer,
    kind: &str,
) -> AppResult<Vec<Event>> {
    let data =
        json!({"id": transfer.id, "member_id": transfer.member_id, "status": transfer.status});
    let mut outgoing = Vec::new();
    for org_id in [transfer.from_org_id, transfer.to_org_id]
        .into_iter()
        .flatten()
    {
        outgoing.push(events::append(conn, &format!("org:{org_id}"), kind, data.clone()).await?);
    }
    Ok(outgoing)
}

/// Loads one transfer, or returns 404.
pub async fn load_transfer(conn: &mut AnyConnection, id: i64) -> AppResult<Transfer> {
    let row = sqlx::query(
        "SELECT t.id, t.member_id, m.name AS member_name, t.from_org_id, t.from_org_name, \
         t.to_org_id, t.to_org_name, t.letter_no, t.issued_on, t.valid_until, t.dues_paid_until, \
         t.reason, t.status, t.receipt_on, t.note FROM membership_transfers t \
         JOIN members m ON m.id = t.member_id WHERE t.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::not_found(("组织关系转接", "transfer"), id))?;
    Ok(Transfer {
        id,
        member_id: row.try_get("member_id")?,
        member_name: row.try_get("member_name")?,
        from_org_id: row.try_get("from_org_id")?,
        from_org_name: row.try_get("from_org_name")?,
        to_org_id: row.try_get("to_org_id")?,
        to_org_name: row.try_get("to_org_name")?,
        letter_no: row.try_get("letter_no")?,
        issued_on: row.try_get("issued_on")?,
        valid_until: row.try_get("valid_until")?,
        dues_paid_until: row.try_get("dues_paid_until")?,
        reason: row.try_get("reason")?,
        status: row.try_get("status")?,
        receipt_on: row.try_get("receipt_on")?,
        note: row.try_get("note")?,
    })
}
