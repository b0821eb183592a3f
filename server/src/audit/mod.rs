//! The audit trail: every state change, hash-chained and with a signed head.
//!
//! Entry `n` stores `hash_n = SHA-256(canonical(entry_n) including hash_{n-1})`,
//! so editing or deleting any entry breaks every later hash. The single
//! `audit_head` row holds the newest sequence number and hash, signed with
//! the server's Ed25519 key, so that cutting off the newest entries (which
//! leaves an intact but shorter chain) is detected as well: the head then
//! names an entry that no longer exists. Appends run inside the caller's
//! transaction, so a state change and its audit entry commit together.

pub mod key;
mod routes;

pub use key::{load_or_create_key, load_or_create_key_at, load_verifying_key};
pub use routes::router;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use crate::db::{Db, now_ms};

/// The hash that precedes the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did something, and from where.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Actor {
    pub account_id: Option<i64>,
    pub name: String,
    pub client_addr: String,
}

impl Actor {
    /// The server itself, for changes made by commands such as the demo seed.
    pub fn system() -> Self {
        Self {
            account_id: None,
            name: "system".to_owned(),
            client_addr: "local".to_owned(),
        }
    }
}

/// One audit entry as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: i64,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub detail: String,
    pub client_addr: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// Computes this entry's hash from its fields and `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::json!([
            self.seq,
            self.at,
            self.actor_id,
            self.actor_name,
            self.action,
            self.target_type,
            self.target_id,
            self.detail,
            self.client_addr,
            self.prev_hash,
        ]);
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }

    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            seq: row.try_get("seq")?,
            at: row.try_get("at")?,
            actor_id: row.try_get("actor_id")?,
            actor_name: row.try_get("actor_name")?,
            action: row.try_get("action")?,
            target_type: row.try_get("target_type")?,
            target_id: row.try_get("target_id")?,
            detail: row.try_get("detail")?,
            client_addr: row.try_get("client_addr")?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        })
    }
}

fn head_message(seq: i64, hash: &str) -> Vec<u8> {
    format!("dangwu-audit-head\n{seq}\n{hash}").into_bytes()
}

/// Appends one entry inside the caller's transaction and re-signs the head.
///
/// The first statement takes the write lock on the head row, so concurrent
/// appends (also from other nodes on PostgreSQL) queue instead of forking
/// the chain.
pub async fn append(
    conn: &mut AnyConnection,
    key: &SigningKey,
    actor: &Actor,
    action: &str,
    target: (&str, String),
    detail: serde_json::Value,
) -> Result<i64, sqlx::Error> {
    sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?;
    let (prev_seq, prev_hash) = match head {
        Some(row) => (row.try_get::<i64, _>("seq")?, row.try_get("hash")?),
        None => (0, GENESIS_HASH.to_owned()),
    };
    let mut entry = AuditEntry {
        seq: prev_seq + 1,
        at: now_ms(),
        actor_id: actor.account_id,
        actor_name: actor.name.clone(),
        action: action.to_owned(),
        target_type: target.0.to_owned(),
        target_id: target.1,
        detail: detail.to_string(),
        client_addr: actor.client_addr.clone(),
        prev_hash,
        hash: String::new(),
    };
    entry.hash = entry.compute_hash();
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor_id, actor_name, action, target_type, target_id, \
         detail, client_addr, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(entry.seq)
    .bind(entry.at)
    .bind(entry.actor_id)
    .bind(&entry.actor_name)
    .bind(&entry.action)
    .bind(&entry.target_type)
    .bind(&entry.target_id)
    .bind(&entry.detail)
    .bind(&entry.client_addr)
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .execute(&mut *conn)
    .await?;
    let signature = hex::encode(key.sign(&head_message(entry.seq, &entry.hash)).to_bytes());
    sqlx::query(
        "INSERT INTO audit_head (id, seq, hash, signature) VALUES (1, $1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
         signature = excluded.signature",
    )
    .bind(entry.seq)
    .bind(&entry.hash)
    .bind(signature)
    .execute(&mut *conn)
    .await?;
    Ok(entry.seq)
}

/// The outcome of a chain check that found a fault.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainFault {
    #[error("entry {seq}: stored hash does not match its contents")]
    HashMismatch { seq: i64 },
    #[error("entry {seq}: previous hash does not match entry {prev}")]
    BrokenLink { seq: i64, prev: i64 },
    #[error("entry {expected} is missing (next stored entry is {found})")]
    Gap { expected: i64, found: i64 },
    #[error("head names entry {head_seq}, but the newest stored entry is {last_seq}")]
    Truncated { head_seq: i64, last_seq: i64 },
    #[error("head hash does not match entry {seq}")]
    HeadMismatch { seq: i64 },
    #[error("head signature is invalid (wrong key, or the head row was edited)")]
    BadSignature,
    #[error("entries exist but the signed head is missing")]
    MissingHead,
}

/// Walks the whole chain in order and checks every link and the signed head.
/// Returns the number of entries checked.
pub async fn verify(db: &Db, key: &VerifyingKey) -> Result<Result<i64, ChainFault>, sqlx::Error> {
    const PAGE: i64 = 1000;
    let mut expected_seq = 1;
    let mut prev_hash = GENESIS_HASH.to_owned();
    loop {
        let rows = sqlx::query(
            "SELECT seq, at, actor_id, actor_name, action, target_type, target_id, detail, \
             client_addr, prev_hash, hash FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(expected_seq)
        .bind(PAGE)
        .fetch_all(&db.pool)
        .await?;
        for row in &rows {
            let entry = AuditEntry::from_row(row)?;
            if entry.seq != expected_seq {
                return Ok(Err(ChainFault::Gap {
                    expected: expected_seq,
                    found: entry.seq,
                }));
            }
            if entry.prev_hash != prev_hash {
                return Ok(Err(ChainFault::BrokenLink {
                    seq: entry.seq,
                    prev: entry.seq - 1,
                }));
            }
            if entry.compute_hash() != entry.hash {
                return Ok(Err(ChainFault::HashMismatch { seq: entry.seq }));
            }
            prev_hash = entry.hash;
            expected_seq += 1;
        }
        if (rows.len() as i64) < PAGE {
            break;
        }
    }
    let last_seq = expected_seq - 1;
    Ok(check_head(db, key, last_seq, &prev_hash)
        .await?
        .map(|()| last_seq))
}

async fn check_head(
    db: &Db,
    key: &VerifyingKey,
    last_seq: i64,
    last_hash: &str,
) -> Result<Result<(), ChainFault>, sqlx::Error> {
    let head = sqlx::query("SELECT seq, hash, signature FROM audit_head WHERE id = 1")
        .fetch_optional(&db.pool)
        .await?;
    let Some(head) = head else {
        return Ok(if last_seq == 0 {
            Ok(())
        } else {
            Err(ChainFault::MissingHead)
        });
    };
    let head_seq: i64 = head.try_get("seq")?;
    let head_hash: String = head.try_get("hash")?;
    let signature: String = head.try_get("signature")?;
    let signature_ok = hex::decode(&signature)
        .ok()
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
        .is_some_and(|sig| {
            key.verify(&head_message(head_seq, &head_hash), &sig)
                .is_ok()
        });
    if !signature_ok {
        return Ok(Err(ChainFault::BadSignature));
    }
    if head_seq != last_seq {
        return Ok(Err(ChainFault::Truncated { head_seq, last_seq }));
    }
    if head_hash != last_hash {
        return Ok(Err(ChainFault::HeadMismatch { seq: last_seq }));
    }
    Ok(Ok(()))
}

/// Lists entries newest first, optionally only those about one target.
pub async fn list(
    db: &Db,
    target_type: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AuditEntry>, i64), sqlx::Error> {
    let filter = target_type.unwrap_or("");
    let rows = sqlx::query(
        "SELECT seq, at, actor_id, actor_name, action, target_type, target_id, detail, \
         client_addr, prev_hash, hash FROM audit_log WHERE ($1 = '' OR target_type = $1) \
         ORDER BY seq DESC LIMIT $2 OFFSET $3",
    )
    .bind(filter)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE ($1 = '' OR target_type = $1)")
            .bind(filter)
            .fetch_one(&db.pool)
            .await?;
    let entries = rows
        .iter()
        .map(AuditEntry::from_row)
        .collect::<Result<_, _>>()?;
    Ok((entries, total))
}

/// `dangwu audit verify`: prints the result; exit status 0 when intact, 1
/// with the first bad entry named otherwise.
pub async fn verify_command(
    store: &crate::config::StoreConfig,
) -> anyhow::Result<std::process::ExitCode> {
    let db = Db::open_existing(store).await?;
    let key = load_verifying_key(&store.audit_key_path())?;
    let outcome = verify(&db, &key).await?;
    let actions = crate::approvals::record::verify_stored_actions(&db, &key).await?;
    db.close().await;
    Ok(match (outcome, actions) {
        (Ok(entries), Ok(signed)) => {
            println!("audit trail intact: {entries} entries, head signature valid");
            println!("approval actions intact: {signed} signatures valid");
            std::process::ExitCode::SUCCESS
        }
        (Ok(_), Err(fault)) => {
            println!("approval action signature invalid: {fault}");
            std::process::ExitCode::FAILURE
        }
        (Err(fault), _) => {
            println!("audit trail broken: {fault}");
            std::process::ExitCode::FAILURE
        }
    })
}
