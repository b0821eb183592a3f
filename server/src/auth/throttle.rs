//! Login throttling per account name and per client address.
//!
//! Failures are counted in the database, so that every node of a deployment
//! sees the same counts. After `limit` failures within the window the key is
//! locked for the lock time; a successful login clears the account's count.

use sqlx::Row;

use crate::db::{Db, now_ms};

/// Failures allowed per account name within [`WINDOW_MS`].
pub const ACCOUNT_LIMIT: i64 = 5;
/// Failures allowed per client address within [`WINDOW_MS`].
pub const ADDRESS_LIMIT: i64 = 20;
/// Counting window and lock time, in milliseconds (15 minutes).
pub const WINDOW_MS: i64 = 15 * 60 * 1000;

pub fn account_key(username: &str) -> String {
    format!("account:{}", username.to_lowercase())
}

pub fn address_key(addr: &str) -> String {
    format!("address:{addr}")
}

/// Returns the lock's end (Unix ms) if the key is locked now.
pub async fn locked_until(db: &Db, key: &str) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query("SELECT locked_until FROM login_failures WHERE throttle_key = $1")
        .bind(key)
        .fetch_optional(&db.pool)
        .await?;
    let now = now_ms();
    Ok(row
        .map(|row| row.try_get::<i64, _>("locked_until"))
        .transpose()?
        .filter(|until| *until > now))
}

/// Counts one failure, locking the key once it reaches `limit`.
pub async fn record_failure(db: &Db, key: &str, limit: i64) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let row =
        sqlx::query("SELECT failures, window_start FROM login_failures WHERE throttle_key = $1")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
    let (failures, window_start) = match row {
        Some(row) if now - row.try_get::<i64, _>("window_start")? < WINDOW_MS => (
            row.try_get::<i64, _>("failures")? + 1,
            row.try_get("window_start")?,
        ),
        _ => (1, now),
    };
    let locked_until = if failures >= limit {
        now + WINDOW_MS
    } else {
        0
    };
    sqlx::query(
        "INSERT INTO login_failures (throttle_key, failures, window_start, locked_until) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (throttle_key) DO UPDATE SET \
         failures = excluded.failures, window_start = excluded.window_start, \
         locked_until = excluded.locked_until",
    )
    .bind(key)
    .bind(failures)
    .bind(window_start)
    .bind(locked_until)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

pub async fn clear(db: &Db, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_failures WHERE throttle_key = $1")
        .bind(key)
        .execute(&db.pool)
        .await
        .map(|_| ())
}
