//! Signed transfer letter files for transfers across deployments.
//!
//! The sending deployment exports a letter as JSON: the letter's own JSON
//! text, exactly as signed, with the deployment's Ed25519 public key and
//! signature (the key that signs the audit trail). The receiving deployment
//! imports the file into one of its organizations: it checks the signature
//! and the validity, adds the member and records the transfer as accepted,
//! and returns a signed receipt (回执) for the sender.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dues_rules::Month;
use super::transfers::{Transfer, load_transfer};
use super::{member_insert_error, officer_org, today};
use crate::audit;
use crate::db::{is_unique_violation, now_ms};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::members::{check_id_number, check_person_name};
use crate::org::load_org;
use crate::perm::{Access, Caller};
use crate::state::AppState;

/// Format tag of a letter file, raised when its layout changes.
pub const LETTER_FORMAT: &str = "dangwu-transfer-letter/1";
/// Format tag of a receipt file.
pub const RECEIPT_FORMAT: &str = "dangwu-transfer-receipt/1";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_letter))
        .routes(routes!(import_letter))
        .routes(routes!(record_receipt))
}

/// A signed file: `content` is the JSON text that `signature` signs.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedFile {
    pub format: String,
    pub content: String,
    /// Ed25519 public key of the signing deployment, hex.
    pub public_key: String,
    /// Ed25519 signature of `content`, hex.
    pub signature: String,
}

/// The letter itself: the member's record and the transfer's terms.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Letter {
    pub letter_no: String,
    pub from_org_name: String,
    pub to_org_name: String,
    pub issued_on: String,
    pub valid_until: String,
    pub dues_paid_until: String,
    pub reason: String,
    pub name: String,
    pub gender: String,
    pub ethnicity: String,
    pub birth_date: String,
    pub education: String,
    pub joined_on: Option<String>,
    /// `probationary` or `full`.
    pub status: String,
    pub phone: String,
    pub id_number: String,
}

/// A letter to import into an organization of this deployment.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LetterImport {
    pub org_id: i64,
    pub file: SignedFile,
}

/// The imported transfer with the receipt to send back.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Imported {
    pub transfer: Transfer,
    pub receipt: SignedFile,
}

fn sign(state: &AppState, format: &str, content: String) -> SignedFile {
    let signature = state.audit_key.sign(content.as_bytes());
    SignedFile {
        format: format.to_owned(),
        content,
        public_key: hex::encode(state.audit_key.verifying_key().to_bytes()),
        signature: hex::encode(signature.to_bytes()),
    }
}

/// Checks a signed file's format and signature against its own key.
pub fn verify(file: &SignedFile, format: &str) -> Result<(), String> {
    if file.format != format {
        return Err(format!("format is {:?}, expected {format:?}", file.format));
    }
    let key: [u8; 32] = hex::decode(&file.public_key)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("public_key is not 32 bytes of hex")?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| "public_key is not an Ed25519 key")?;
    let signature: [u8; 64] = hex::decode(&file.signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("signature is not 64 bytes of hex")?;
    key.verify(file.content.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| "signature does not match the content".to_owned())
}

/// Exports the signed letter of a transfer to an outside organization.
#[utoipa::path(get, path = "/api/membership/transfers/{id}/letter", tag = "membership",
    params(("id" = i64, Path, description = "Transfer id")),
    responses((status = 200, body = SignedFile), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn export_letter(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<SignedFile>> {
    let mut conn = state.db.pool.acquire().await?;
    super::transfers::expire_lapsed(&mut conn).await?;
    let transfer = load_transfer(&mut conn, id).await?;
    let from_org = transfer
        .from_org_id
        .ok_or_else(|| AppError::not_found(("转出介绍信", "outgoing letter"), id))?;
    let org = load_org(&mut conn, from_org).await?;
    let allowed = caller.principal.can_org(&org.path, Access::Write);
    caller
        .principal
        .check(&state.db, allowed, ("transfer", id), Access::Write)
        .await?;
    if transfer.to_org_id.is_some() || transfer.status != "pending" {
        return Err(AppError::conflict(
            "letter_unavailable",
            "只有转往外部系统且未办结的转接可以导出介绍信",
            "only an open transfer to an outside organization exports a letter",
        ));
    }
    let row = sqlx::query(
        "SELECT name, gender, ethnicity, birth_date, education, joined_on, status, phone, id_number \
         FROM members WHERE id = $1",
    )
    .bind(transfer.member_id)
    .fetch_one(&mut *conn)
    .await?;
    let letter = Letter {
        letter_no: transfer.letter_no,
        from_org_name: transfer.from_org_name,
        to_org_name: transfer.to_org_name,
        issued_on: transfer.issued_on,
        valid_until: transfer.valid_until,
        dues_paid_until: transfer.dues_paid_until,
        reason: transfer.reason,
        name: row.try_get("name")?,
        gender: row.try_get("gender")?,
        ethnicity: row.try_get("ethnicity")?,
        birth_date: row.try_get("birth_date")?,
        education: row.try_get("education")?,
        joined_on: row.try_get("joined_on")?,
        status: row.try_get("status")?,
        phone: row.try_get("phone")?,
        id_number: row.try_get("id_number")?,
    };
    let content = serde_json::to_string(&letter).map_err(AppError::internal)?;
    Ok(ApiJson(sign(&state, LETTER_FORMAT, content)))
}

fn bad_letter(reason: impl std::fmt::Display) -> AppError {
    AppError::invalid(
        "file",
        format!("介绍信文件无效：{reason}"),
        format!("invalid letter file: {reason}"),
    )
}

/// Imports a signed letter from another deployment into an organization the
/// caller manages, and returns the signed receipt.
// NOTE: the signature proves that the file is unchanged since the named
// key signed it. Whether that key belongs to the sending committee is for
// the receiving officer to check, outside Dangwu.
#[utoipa::path(post, path = "/api/membership/transfers/import", tag = "membership", request_body = LetterImport,
    responses((status = 201, body = Imported), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn import_letter(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<LetterImport>,
) -> AppResult<(StatusCode, ApiJson<Imported>)> {
    verify(&input.file, LETTER_FORMAT).map_err(bad_letter)?;
    let letter: Letter = serde_json::from_str(&input.file.content).map_err(bad_letter)?;
    if letter.valid_until < today().to_string() {
        return Err(AppError::conflict(
            "transfer_expired",
            format!("介绍信已于 {} 过期，请转出组织重新开具", letter.valid_until),
            format!("the letter expired after {}", letter.valid_until),
        ));
    }
    let name = check_person_name(&letter.name).map_err(bad_letter)?;
    let id_number = check_id_number(&letter.id_number).map_err(bad_letter)?;
    let status = match letter.status.as_str() {
        "probationary" | "full" => letter.status.clone(),
        other => return Err(bad_letter(format!("status {other}"))),
    };
    Month::parse(&letter.dues_paid_until).ok_or_else(|| bad_letter("dues_paid_until"))?;

    let mut tx = state.db.begin().await?;
    let org = officer_org(
        &state,
        &caller,
        &mut tx,
        input.org_id,
        "org_id",
        Access::Write,
    )
    .await?;
    let now = now_ms();
    let member_id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO members (org_id, name, gender, ethnicity, birth_date, education, joined_on, \
         status, phone, id_number, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
    )
    .bind(org.id)
    .bind(&name)
    .bind(&letter.gender)
    .bind(&letter.ethnicity)
    .bind(&letter.birth_date)
    .bind(&letter.education)
    .bind(&letter.joined_on)
    .bind(&status)
    .bind(&letter.phone)
    .bind(&id_number)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(member_insert_error)?;
    let received = today().to_string();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO membership_transfers (member_id, from_org_name, to_org_id, to_org_name, \
         letter_no, issued_on, valid_until, dues_paid_until, reason, status, receipt_on, created_by, \
         created_at, decided_by, decided_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'accepted', $10, $11, $12, $11, $12) RETURNING id",
    )
    .bind(member_id)
    .bind(&letter.from_org_name)
    .bind(org.id)
    .bind(&org.name)
    .bind(&letter.letter_no)
    .bind(&letter.issued_on)
    .bind(&letter.valid_until)
    .bind(&letter.dues_paid_until)
    .bind(&letter.reason)
    .bind(&received)
    .bind(caller.session.account.id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|error| {
        if is_unique_violation(&error) {
            AppError::conflict(
                "letter_imported",
                "该介绍信已经导入",
                "this letter is already imported",
            )
        } else {
            error.into()
        }
    })?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "transfer.import",
        ("transfer", id.to_string()),
        json!({"letter_no": letter.letter_no, "from_org_name": letter.from_org_name,
            "member_id": member_id, "signer": input.file.public_key}),
    )
    .await?;
    let transfer = load_transfer(&mut tx, id).await?;
    tx.commit().await?;
    let receipt =
        json!({"letter_no": letter.letter_no, "received_by": org.name, "receipt_on": received});
    Ok((
        StatusCode::CREATED,
        ApiJson(Imported {
            transfer,
            receipt: sign(&state, RECEIPT_FORMAT, receipt.to_string()),
        }),
    ))
}

/// Records the signed receipt returned by the outside organization, which
/// closes the transfer: from then on the receiving side is responsible. The
/// member record stays for history with status `moved_out` (关系已转出),
/// loses its officer roles and ends an active mobile registration.
#[utoipa::path(post, path = "/api/membership/transfers/{id}/receipt", tag = "membership", request_body = SignedFile,
    params(("id" = i64, Path, description = "Transfer id")),
    responses((status = 200, body = Transfer), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn record_receipt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(file): ApiJson<SignedFile>,
) -> AppResult<ApiJson<Transfer>> {
    verify(&file, RECEIPT_FORMAT).map_err(bad_letter)?;
    let receipt: serde_json::Value = serde_json::from_str(&file.content).map_err(bad_letter)?;
    let mut tx = state.db.begin().await?;
    let transfer = load_transfer(&mut tx, id).await?;
    let from_org = transfer
        .from_org_id
        .ok_or_else(|| AppError::not_found(("转出介绍信", "outgoing letter"), id))?;
    let org = load_org(&mut tx, from_org).await?;
    let allowed = caller.principal.can_org(&org.path, Access::Write);
    caller
        .principal
        .check(&state.db, allowed, ("transfer", id), Access::Write)
        .await?;
    if receipt["letter_no"] != transfer.letter_no.as_str() {
        return Err(bad_letter("the receipt names another letter"));
    }
    if transfer.to_org_id.is_some() || transfer.status != "pending" {
        return Err(AppError::conflict(
            "transfer_closed",
            "该组织关系转接已办结",
            "this transfer is already closed",
        ));
    }
    let receipt_on = receipt["receipt_on"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    sqlx::query(
        "UPDATE membership_transfers SET status = 'accepted', receipt_on = $1, decided_by = $2, \
         decided_at = $3 WHERE id = $4",
    )
    .bind(&receipt_on)
    .bind(caller.session.account.id)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    move_out(&mut tx, transfer.member_id).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "transfer.receipt",
        ("transfer", id.to_string()),
        json!({"receipt_on": receipt_on, "signer": file.public_key}),
    )
    .await?;
    let transfer = load_transfer(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiJson(transfer))
}

/// Takes a member whose relation left the deployment off the active rolls.
// NOTE: the member's login account stays enabled; the system administrator
// disables it when the person should no longer sign in.
async fn move_out(conn: &mut sqlx::AnyConnection, member_id: i64) -> AppResult<()> {
    let now = now_ms();
    sqlx::query("UPDATE members SET status = 'moved_out', updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(member_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM org_roles WHERE member_id = $1")
        .bind(member_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE membership_mobile SET status = 'ended', ended_at = $1, temporary_branch_id = NULL \
         WHERE member_id = $2 AND status = 'active'",
    )
    .bind(now)
    .bind(member_id)
    .execute(&mut *conn)
    .await?;
    tracing::info!(member_id, "member relation moved out");
    Ok(())
}
