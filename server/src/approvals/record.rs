//! The approval record: a document's route, opinions, times and server
//! signatures, exported as JSON (alone or inside a PDF) that `dangwu
//! verify-record` checks offline,
//! and checked in place by `dangwu audit verify`.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::actions::signed_message;
use super::documents::view;
use crate::db::{Db, now_ms};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::perm::Caller;
use crate::state::AppState;

/// Format tag of an exported record, raised when its layout changes.
pub const RECORD_FORMAT: &str = "dangwu-approval-record/1";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_record))
        .routes(routes!(export_record_pdf))
}

/// An exported approval record.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalRecord {
    pub format: String,
    pub document_id: i64,
    pub title: String,
    pub number: Option<String>,
    pub issuing_org: String,
    pub doc_type: String,
    pub security_level: String,
    pub status: String,
    /// Every body version the actions refer to, with its hash.
    pub bodies: Vec<RecordBody>,
    pub actions: Vec<RecordAction>,
    /// The deployment's public key (Ed25519, hex) that signed the actions.
    pub public_key: String,
    pub exported_at: i64,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordBody {
    pub version: i64,
    pub sha256: String,
    pub body_html: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordAction {
    pub version: i64,
    pub actor_member: i64,
    pub actor_name: String,
    /// The stored action JSON, exactly as signed.
    pub action: String,
    pub body_version: i64,
    pub body_sha256: String,
    pub signature: String,
    pub at: i64,
}

const ACTION_COLUMNS: &str = "document_id, workflow_version, actor_member, actor_name, action, \
     body_version, body_sha256, signature, at";

fn action_from_row(row: &sqlx::any::AnyRow) -> Result<(i64, RecordAction), sqlx::Error> {
    Ok((
        row.try_get("document_id")?,
        RecordAction {
            version: row.try_get("workflow_version")?,
            actor_member: row.try_get("actor_member")?,
            actor_name: row.try_get("actor_name")?,
            action: row.try_get("action")?,
            body_version: row.try_get("body_version")?,
            body_sha256: row.try_get("body_sha256")?,
            signature: row.try_get("signature")?,
            at: row.try_get("at")?,
        },
    ))
}

/// Exports the approval record of a document the caller may see.
#[utoipa::path(get, path = "/api/documents/{id}/record", tag = "approvals",
    params(("id" = i64, Path, description = "Document id")),
    responses((status = 200, body = ApprovalRecord), (status = 404, body = ErrorBody)))]
async fn export_record(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let record = build_record(&state, &caller, id).await?;
    let json = serde_json::to_string_pretty(&record).map_err(AppError::internal)?;
    let disposition = format!("attachment; filename=\"approval-record-{id}.json\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        json,
    )
        .into_response())
}

/// Exports the approval record as a PDF: the record laid out for reading,
/// with the JSON record attached inside, so that `dangwu verify-record`
/// checks the PDF file itself.
#[utoipa::path(get, path = "/api/documents/{id}/record/pdf", tag = "approvals",
    params(("id" = i64, Path, description = "Document id")),
    responses((status = 200, content_type = "application/pdf"), (status = 404, body = ErrorBody)))]
async fn export_record_pdf(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let record = build_record(&state, &caller, id).await?;
    let pdf = super::record_pdf::render(&record).map_err(AppError::internal)?;
    let disposition = format!("attachment; filename=\"approval-record-{id}.pdf\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        pdf,
    )
        .into_response())
}

/// Collects the approval record of a document the caller may see.
async fn build_record(state: &AppState, caller: &Caller, id: i64) -> AppResult<ApprovalRecord> {
    let page = view(state, caller, id).await?;
    let rows = sqlx::query(
        "SELECT version, sha256, body_html FROM document_versions WHERE document_id = $1 \
         AND version IN (SELECT body_version FROM document_actions WHERE document_id = $1) ORDER BY version",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    let bodies = rows
        .iter()
        .map(|row| {
            Ok(RecordBody {
                version: row.try_get("version")?,
                sha256: row.try_get("sha256")?,
                body_html: row.try_get("body_html")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    // The stored action text, byte for byte as signed.
    let actions = sqlx::query(&format!("SELECT {ACTION_COLUMNS} FROM document_actions WHERE document_id = $1 ORDER BY workflow_version"))
        .bind(id)
        .fetch_all(&state.db.pool)
        .await?
        .iter()
        .map(|row| action_from_row(row).map(|(_, action)| action))
        .collect::<Result<_, sqlx::Error>>()?;
    let document = page.document;
    Ok(ApprovalRecord {
        format: RECORD_FORMAT.to_owned(),
        document_id: document.id,
        title: document.title,
        number: document.number,
        issuing_org: document.org_name,
        doc_type: document.doc_type,
        security_level: document.security_level,
        status: document.status,
        bodies,
        actions,
        public_key: hex::encode(state.audit_key.verifying_key().to_bytes()),
        exported_at: now_ms(),
    })
}

fn check_signature(
    key: &VerifyingKey,
    document_id: i64,
    action: &RecordAction,
) -> Result<(), String> {
    let message = signed_message(
        document_id,
        action.version,
        action.actor_member,
        &action.action,
        action.body_version,
        &action.body_sha256,
        action.at,
    );
    let signature = hex::decode(&action.signature)
        .ok()
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
        .ok_or_else(|| format!("action {}: malformed signature", action.version))?;
    key.verify(message.as_bytes(), &signature).map_err(|_| {
        format!(
            "action {} by {}: signature does not match",
            action.version, action.actor_name
        )
    })
}

/// Checks an exported record: every action signature against `key`, and
/// every body against its hash. Returns a summary line or the first fault.
pub fn verify_record(record: &ApprovalRecord, key: &VerifyingKey) -> Result<String, String> {
    if record.format != RECORD_FORMAT {
        return Err(format!("unsupported record format {:?}", record.format));
    }
    for body in &record.bodies {
        let actual = hex::encode(Sha256::digest(body.body_html.as_bytes()));
        if actual != body.sha256 {
            return Err(format!(
                "body version {}: text does not match its hash",
                body.version
            ));
        }
    }
    for action in &record.actions {
        check_signature(key, record.document_id, action)?;
        let body = record
            .bodies
            .iter()
            .find(|b| b.version == action.body_version);
        if body.is_some_and(|b| b.sha256 != action.body_sha256) {
            return Err(format!(
                "action {}: body hash differs from body version {}",
                action.version, action.body_version
            ));
        }
    }
    Ok(format!(
        "record of document {} ({}) verified: {} signed actions, {} body versions",
        record.document_id,
        record.number.as_deref().unwrap_or("unnumbered"),
        record.actions.len(),
        record.bodies.len()
    ))
}

/// Checks every stored action signature; returns how many, or the first
/// fault.
pub async fn verify_stored_actions(
    db: &Db,
    key: &VerifyingKey,
) -> Result<Result<i64, String>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {ACTION_COLUMNS} FROM document_actions ORDER BY document_id, workflow_version"
    ))
    .fetch_all(&db.pool)
    .await?;
    for row in &rows {
        let (document_id, action) = action_from_row(row)?;
        if let Err(fault) = check_signature(key, document_id, &action) {
            return Ok(Err(format!("document {document_id}: {fault}")));
        }
    }
    Ok(Ok(rows.len() as i64))
}

/// Parses a public key given as hex, or as the PKCS#8 PEM key file of the
/// deployment's data directory.
pub fn parse_key(text: &str) -> anyhow::Result<VerifyingKey> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(text)
            .map_err(|e| anyhow::anyhow!("invalid key file: {e}"))?;
        return Ok(key.verifying_key());
    }
    let bytes: [u8; 32] = hex::decode(text)
        .map_err(|e| anyhow::anyhow!("invalid hex public key: {e}"))?
        .try_into()
        .map_err(|_| anyhow::anyhow!("a public key is 32 bytes (64 hex digits)"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("invalid public key: {e}"))
}
