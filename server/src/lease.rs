//! Leases in the database, so that one node at a time runs a background
//! task (a sweep, the first-start setup) when several nodes share it.
//!
//! A lease is a row naming its holder and when it expires. The holder
//! renews it each time it runs the task; a node that dies stops renewing,
//! and another node takes the lease over once it expires. A lease only
//! keeps nodes from doing the same work at once: tasks must still be safe
//! to repeat, because a holder that stalls past the expiry overlaps with
//! the next one.

use std::time::Duration;

use crate::db::{Db, now_ms};

/// Takes or renews the lease `name` for `holder` until `ttl` from now.
/// Returns false while another holder has it and it has not expired.
pub async fn try_acquire(
    db: &Db,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let expires_at = now + ttl.as_millis() as i64;
    // One statement, so that two nodes racing for a free or expired lease
    // are ordered by the primary key and only one of them updates the row.
    let result = sqlx::query(
        "INSERT INTO node_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE node_leases.holder = excluded.holder OR node_leases.expires_at < $4",
    )
    .bind(name)
    .bind(holder)
    .bind(expires_at)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Gives the lease up if `holder` has it, so another node may take it at once.
pub async fn release(db: &Db, name: &str, holder: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM node_leases WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Waits until `holder` has the lease, checking every `poll`.
pub async fn acquire(
    db: &Db,
    name: &str,
    holder: &str,
    ttl: Duration,
    poll: Duration,
) -> Result<(), sqlx::Error> {
    let mut waited = false;
    while !try_acquire(db, name, holder, ttl).await? {
        if !waited {
            tracing::info!(lease = name, "waiting for another node to finish");
            waited = true;
        }
        tokio::time::sleep(poll).await;
    }
    Ok(())
}

/// Runs `task` every `period` on whichever node holds the lease `name`;
/// the other nodes only check the lease. The lease lasts three periods, so
/// a dead holder's task moves to another node after at most that long.
pub async fn run_periodically<F, Fut>(
    db: Db,
    name: &'static str,
    holder: String,
    period: Duration,
    mut task: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut interval = tokio::time::interval(period);
    let mut holding = false;
    loop {
        interval.tick().await;
        match try_acquire(&db, name, &holder, period * 3).await {
            Ok(true) => {
                if !holding {
                    tracing::info!(lease = name, holder, "took over background task");
                    holding = true;
                }
                task().await;
            }
            Ok(false) => holding = false,
            Err(error) => {
                tracing::error!(lease = name, %error, "failed to check background task lease")
            }
        }
    }
}
