//! Read and confirmation receipts. Each is committed, with its hub events,
//! before the request returns.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::routes::{Receipt, own_receipt};
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::hub::store;
use crate::perm::Caller;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mark_read))
        .routes(routes!(confirm))
}

async fn recipient(state: &AppState, caller: &Caller, id: i64) -> AppResult<(i64, Receipt)> {
    let receipt = own_receipt(state, caller, id)
        .await?
        .ok_or_else(|| AppError::not_found(("通知", "notice"), id))?;
    let member_id = caller
        .session
        .account
        .member_id
        .expect("recipients are members");
    Ok((member_id, receipt))
}

/// The reader's name and the organization they received the notice in,
/// which is where their receipt counts even after they move.
async fn reader_info(
    conn: &mut sqlx::AnyConnection,
    notice_id: i64,
    member_id: i64,
) -> AppResult<serde_json::Value> {
    let row: (String, i64, String) = sqlx::query_as(
        "SELECT m.name, r.org_id, o.name FROM notice_recipients r JOIN members m ON m.id = r.member_id \
         JOIN orgs o ON o.id = r.org_id WHERE r.notice_id = $1 AND r.member_id = $2",
    )
    .bind(notice_id)
    .bind(member_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(json!({"member_id": member_id, "name": row.0, "org_id": row.1, "org_name": row.2}))
}

/// Records that the caller has read the notice; repeating it changes nothing.
#[utoipa::path(post, path = "/api/notices/{id}/read", tag = "notices",
    params(("id" = i64, Path, description = "Notice id")),
    responses((status = 200, body = Receipt), (status = 404, body = ErrorBody)))]
async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<Receipt>> {
    let (member_id, receipt) = recipient(&state, &caller, id).await?;
    if receipt.read_at.is_some() {
        return Ok(ApiJson(receipt));
    }
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let updated = sqlx::query("UPDATE notice_recipients SET read_at = $1 WHERE notice_id = $2 AND member_id = $3 AND read_at IS NULL")
        .bind(now)
        .bind(id)
        .bind(member_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let mut events = Vec::new();
    if updated > 0 {
        let mut data = reader_info(&mut tx, id, member_id).await?;
        data["read_at"] = now.into();
        data["notice_id"] = id.into();
        events.push(store::append(&mut tx, &format!("notice:{id}"), "receipt.read", data).await?);
        events.push(
            store::append(
                &mut tx,
                &format!("user:{}", caller.session.account.id),
                "notice.read",
                json!({"id": id, "read_at": now}),
            )
            .await?,
        );
    }
    tx.commit().await?;
    state.hub.publish(events);
    Ok(ApiJson(
        own_receipt(&state, &caller, id).await?.unwrap_or(receipt),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    /// Short reply, at most 500 characters; may be empty.
    #[serde(default)]
    pub reply: String,
}

/// Confirms a notice that asks for confirmation (回执), with a short reply.
#[utoipa::path(post, path = "/api/notices/{id}/confirm", tag = "notices", request_body = Confirmation,
    params(("id" = i64, Path, description = "Notice id")),
    responses((status = 200, body = Receipt), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<Confirmation>,
) -> AppResult<ApiJson<Receipt>> {
    let reply = input.reply.trim().to_owned();
    if reply.chars().count() > 500 {
        return Err(AppError::invalid(
            "reply",
            "回执内容最多 500 个字符",
            "reply must be at most 500 characters",
        ));
    }
    let (member_id, receipt) = recipient(&state, &caller, id).await?;
    let (require_confirm, status): (i64, String) =
        sqlx::query_as("SELECT require_confirm, status FROM notices WHERE id = $1")
            .bind(id)
            .fetch_one(&state.db.pool)
            .await?;
    if require_confirm == 0 {
        return Err(AppError::conflict(
            "confirm_not_required",
            "该通知不需要回执",
            "this notice does not ask for confirmation",
        ));
    }
    if status != "active" {
        return Err(AppError::conflict(
            "notice_withdrawn",
            "通知已撤回",
            "the notice has been withdrawn",
        ));
    }
    if receipt.confirmed_at.is_some() {
        return Err(AppError::conflict(
            "already_confirmed",
            "已经回执过了",
            "already confirmed",
        ));
    }
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "UPDATE notice_recipients SET confirmed_at = $1, reply = $2, read_at = COALESCE(read_at, $1) \
         WHERE notice_id = $3 AND member_id = $4",
    )
    .bind(now)
    .bind(&reply)
    .bind(id)
    .bind(member_id)
    .execute(&mut *tx)
    .await?;
    let mut data = reader_info(&mut tx, id, member_id).await?;
    data["confirmed_at"] = now.into();
    data["reply"] = reply.into();
    data["notice_id"] = id.into();
    data["was_unread"] = receipt.read_at.is_none().into();
    let mut events =
        vec![store::append(&mut tx, &format!("notice:{id}"), "receipt.confirmed", data).await?];
    if receipt.read_at.is_none() {
        events.push(
            store::append(
                &mut tx,
                &format!("user:{}", caller.session.account.id),
                "notice.read",
                json!({"id": id, "read_at": now}),
            )
            .await?,
        );
    }
    tx.commit().await?;
    state.hub.publish(events);
    Ok(ApiJson(
        own_receipt(&state, &caller, id).await?.unwrap_or(receipt),
    ))
}
