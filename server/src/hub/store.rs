//! The event log: every hub event is stored, with a per-topic sequence
//! number assigned in the same transaction as the change it reports, before
//! anything is sent.

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::protocol::Event;
use crate::db::{Db, now_ms};

/// How long events stay replayable, in milliseconds (30 days).
pub const RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// Appends an event inside the caller's transaction. The caller publishes
/// the returned event after the transaction commits.
///
/// The counter row is updated first, which takes its row lock: a second
/// transaction appending to the same topic waits until this one commits, so
/// sequence numbers commit in order on every node sharing the database.
pub async fn append(
    conn: &mut AnyConnection,
    topic: &str,
    kind: &str,
    data: Value,
) -> Result<Event, sqlx::Error> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO hub_topics (topic, last_seq) VALUES ($1, 1) \
         ON CONFLICT (topic) DO UPDATE SET last_seq = hub_topics.last_seq + 1 RETURNING last_seq",
    )
    .bind(topic)
    .fetch_one(&mut *conn)
    .await?;
    let at = now_ms();
    sqlx::query(
        "INSERT INTO hub_events (topic, seq, kind, data, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(topic)
    .bind(seq)
    .bind(kind)
    .bind(data.to_string())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(Event {
        topic: topic.to_owned(),
        seq,
        kind: kind.to_owned(),
        data,
        at,
    })
}

/// The topic's newest sequence number, 0 when it has none.
pub async fn head(db: &Db, topic: &str) -> Result<i64, sqlx::Error> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT last_seq FROM hub_topics WHERE topic = $1")
        .bind(topic)
        .fetch_optional(&db.pool)
        .await?;
    Ok(seq.unwrap_or(0))
}

/// Events after `since`, oldest first, at most `limit`.
pub async fn since(
    db: &Db,
    topic: &str,
    since: i64,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, kind, data, created_at FROM hub_events WHERE topic = $1 AND seq > $2 \
         ORDER BY seq LIMIT $3",
    )
    .bind(topic)
    .bind(since)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            let data: String = row.try_get("data")?;
            Ok(Event {
                topic: topic.to_owned(),
                seq: row.try_get("seq")?,
                kind: row.try_get("kind")?,
                data: serde_json::from_str(&data).unwrap_or(Value::Null),
                at: row.try_get("created_at")?,
            })
        })
        .collect()
}

/// The oldest sequence number still stored for the topic, if any.
pub async fn oldest(db: &Db, topic: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT MIN(seq) FROM hub_events WHERE topic = $1")
        .bind(topic)
        .fetch_one(&db.pool)
        .await
}

/// Deletes events older than the retention period; returns how many.
pub async fn prune(db: &Db, older_than_ms: i64) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM hub_events WHERE created_at < $1")
        .bind(now_ms() - older_than_ms)
        .execute(&db.pool)
        .await
        .map(|result| result.rows_affected())
}
