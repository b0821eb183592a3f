//! Host decisions (admitted, removed, muted) and raised hands of live meetings, kept in
//! `meeting_live_decisions` so that a restarted server still applies them. The room's
//! sets stay the working copy. Each change is written through while the room is locked,
//! so the stored rows follow the order of the changes, and then announced to the other
//! nodes (see [`super::room_sync`]).

use std::collections::{BTreeMap, HashSet};

use sqlx::Row;
use sqlx::any::AnyRow;

use super::room::Room;
use super::room_sync::Notice;
use crate::error::AppResult;
use crate::state::AppState;

/// A room's decisions and raised hands as stored.
#[derive(Debug, Default)]
pub struct Stored {
    pub admitted: HashSet<i64>,
    pub removed: HashSet<i64>,
    pub muted: HashSet<i64>,
    /// Unix milliseconds when each raised hand went up, by account.
    pub hands: BTreeMap<i64, i64>,
}

/// Reads the stored decisions and raised hands of a meeting.
pub async fn load(state: &AppState, meeting_id: i64) -> AppResult<Stored> {
    let rows = sqlx::query(
        "SELECT account_id, admitted, removed, muted, hand_raised_at \
         FROM meeting_live_decisions WHERE meeting_id = $1",
    )
    .bind(meeting_id)
    .fetch_all(&state.db.pool)
    .await?;
    collect(rows)
}

/// Reads the stored decisions and raised hand of one account in a meeting.
pub async fn load_account(state: &AppState, meeting_id: i64, account_id: i64) -> AppResult<Stored> {
    let rows = sqlx::query(
        "SELECT account_id, admitted, removed, muted, hand_raised_at \
         FROM meeting_live_decisions WHERE meeting_id = $1 AND account_id = $2",
    )
    .bind(meeting_id)
    .bind(account_id)
    .fetch_all(&state.db.pool)
    .await?;
    collect(rows)
}

fn collect(rows: Vec<AnyRow>) -> AppResult<Stored> {
    let mut stored = Stored::default();
    for row in rows {
        let account: i64 = row.try_get("account_id")?;
        if row.try_get::<i64, _>("admitted")? != 0 {
            stored.admitted.insert(account);
        }
        if row.try_get::<i64, _>("removed")? != 0 {
            stored.removed.insert(account);
        }
        if row.try_get::<i64, _>("muted")? != 0 {
            stored.muted.insert(account);
        }
        if let Some(raised_at) = row.try_get::<Option<i64>, _>("hand_raised_at")? {
            stored.hands.insert(account, raised_at);
        }
    }
    Ok(stored)
}

/// Writes the room's current decisions and hand of one account, and publishes a notice
/// so that the other nodes read them again. A failed write is logged and not returned: the room has already
/// applied the change, and it stays in force on this node until the server restarts.
pub async fn save(state: &AppState, room: &Room, account_id: i64) {
    match write(state, room, account_id).await {
        Ok(()) => {
            state
                .live
                .room_sync
                .publish(room.meeting_id, Notice::Decision { account_id })
                .await
        }
        Err(error) => tracing::error!(
            meeting_id = room.meeting_id,
            account_id,
            %error,
            "storing a live decision failed"
        ),
    }
}

async fn write(state: &AppState, room: &Room, account_id: i64) -> Result<(), sqlx::Error> {
    let flag = |set: &HashSet<i64>| i64::from(set.contains(&account_id));
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "INSERT INTO meeting_live_decisions \
         (meeting_id, account_id, admitted, removed, muted, hand_raised_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (meeting_id, account_id) DO UPDATE SET admitted = excluded.admitted, \
         removed = excluded.removed, muted = excluded.muted, \
         hand_raised_at = excluded.hand_raised_at",
    )
    .bind(room.meeting_id)
    .bind(account_id)
    .bind(flag(&room.admitted))
    .bind(flag(&room.removed))
    .bind(flag(&room.muted))
    .bind(room.hands.get(&account_id).copied())
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
