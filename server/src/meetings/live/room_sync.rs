//! Keeps the rooms of one meeting on several nodes in step: host decisions, raised hands
//! and the lock reach every node that has the meeting's room loaded.
//!
//! A node publishes each change on the NATS subject `{prefix}.room.{meeting_id}` as a
//! JSON [`Notice`], and every node subscribes to `{prefix}.room.*`. A `decision` notice
//! names the account whose row in `meeting_live_decisions` changed. The other nodes read
//! that row again while they hold the room's lock, so when two nodes change the same row
//! at once, every node ends with the row the database kept. People waiting in a lobby
//! travel in the placement entries instead (see [`super::placement`]), and host controls
//! for one person go to that person's node (see [`super::cascade`]).
//!
//! A node without the meeting's room ignores its notices, because it reads the stored
//! decisions when it loads the room. Without NATS there is one node and nothing is sent.

use std::sync::OnceLock;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::control::{self, RemovedFrom};
use super::decisions;
use super::protocol::{LeftReason, LiveMessage};
use super::room::Room;
use crate::error::AppResult;
use crate::state::AppState;

/// A change to a meeting's room that the other nodes apply to theirs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    /// The stored host decisions or raised hand of one account changed.
    Decision { account_id: i64 },
    /// The host locked (`true`) or unlocked the meeting. Receivers read the stored
    /// value, which a later change may have replaced already.
    Locked { locked: bool },
    /// The host lowered one person's hand, or everyone's when `account_id` is absent.
    HandsLowered { account_id: Option<i64> },
}

/// A notice as it travels: the sending node and the meeting with it.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    node_id: String,
    meeting_id: i64,
    #[serde(flatten)]
    notice: Notice,
}

/// Returns the NATS subject of a meeting's room notices.
pub fn subject(prefix: &str, meeting_id: i64) -> String {
    format!("{prefix}.room.{meeting_id}")
}

/// This node's sender of room notices.
pub struct RoomSync {
    node_id: String,
    /// The NATS client and subject prefix, once NATS is in use.
    link: OnceLock<(async_nats::Client, String)>,
}

impl RoomSync {
    pub fn new(node_id: String) -> Self {
        Self {
            node_id,
            link: OnceLock::new(),
        }
    }

    /// Sends a notice to the other nodes. Without NATS it does nothing. A failure is
    /// logged: this node has applied the change already, and the others read the
    /// stored decisions when they load the room again.
    pub async fn publish(&self, meeting_id: i64, notice: Notice) {
        let Some((client, prefix)) = self.link.get() else {
            return;
        };
        let envelope = Envelope {
            node_id: self.node_id.clone(),
            meeting_id,
            notice,
        };
        let body = serde_json::to_vec(&envelope).expect("room notices serialize");
        if let Err(error) = client
            .publish(subject(prefix, meeting_id), body.into())
            .await
        {
            tracing::warn!(meeting_id, notice = ?envelope.notice, %error, "sending a room notice failed");
        }
    }
}

/// Applies the other nodes' room notices until the subscription ends. Notices are
/// applied one at a time, in the order they arrive.
// TODO: core NATS delivers at most once, so a node that was cut off from NATS misses
// the notices of that time until it loads the room again.
pub async fn serve(state: AppState, client: async_nats::Client, prefix: String) {
    let filter = format!("{prefix}.room.*");
    let sync = &state.live.room_sync;
    let _ = sync.link.set((client.clone(), prefix));
    let mut notices = match client.subscribe(filter.clone()).await {
        Ok(notices) => notices,
        Err(error) => {
            tracing::error!(%filter, %error, "subscribing to room notices failed; rooms on other nodes stay out of step");
            return;
        }
    };
    tracing::info!(%filter, "taking room notices");
    while let Some(message) = notices.next().await {
        let envelope: Envelope = match serde_json::from_slice(&message.payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(subject = %message.subject, %error, "invalid room notice from NATS");
                continue;
            }
        };
        if envelope.node_id == sync.node_id {
            continue;
        }
        let meeting_id = envelope.meeting_id;
        if let Err(error) = apply(&state, meeting_id, &envelope.notice).await {
            tracing::warn!(meeting_id, node = %envelope.node_id, notice = ?envelope.notice, %error, "applying a room notice failed");
        }
    }
    tracing::warn!(%filter, "room notice subscription ended");
}

/// Applies one notice from another node to this node's room of the meeting, if loaded.
async fn apply(state: &AppState, meeting_id: i64, notice: &Notice) -> AppResult<()> {
    let Some(room) = state.live.room(meeting_id) else {
        return Ok(());
    };
    match *notice {
        Notice::Decision { account_id } => {
            let mut guard = room.lock().await;
            let from = apply_decision(state, &mut guard, account_id).await?;
            drop(guard);
            if from == RemovedFrom::Media {
                super::record_left(state, meeting_id, account_id).await;
            }
            Ok(())
        }
        Notice::Locked { .. } => {
            let mut room = room.lock().await;
            // The stored value, not the notice's: when hosts lock and unlock through
            // different nodes at once, notices may arrive in another order than the
            // writes, and every node must end with the value the database kept.
            let locked = sqlx::query_scalar::<_, i64>("SELECT locked FROM meetings WHERE id = $1")
                .bind(meeting_id)
                .fetch_one(&state.db.pool)
                .await?
                != 0;
            if !room.closed && room.locked != locked {
                room.locked = locked;
                room.broadcast(&LiveMessage::MeetingLocked { meeting_id, locked });
            }
            Ok(())
        }
        Notice::HandsLowered { account_id } => {
            drop(room);
            control::lower_hands_here(state, meeting_id, account_id).await;
            Ok(())
        }
    }
}

/// Reads one account's stored decisions into the room and acts on what changed for a
/// person on this node. A removed person leaves the media or lobby here, and a change of
/// mute or hand reaches the engine and the participant list. Returns the place a removed
/// person was taken from, so that the caller records the leave after unlocking the room.
async fn apply_decision(state: &AppState, room: &mut Room, account: i64) -> AppResult<RemovedFrom> {
    if room.closed {
        return Ok(RemovedFrom::Nowhere);
    }
    let meeting_id = room.meeting_id;
    let stored = decisions::load_account(state, meeting_id, account).await?;
    let was_removed = room.removed.contains(&account);
    let was_muted = room.muted.contains(&account);
    let hand_before = room.hands.get(&account).copied();
    room.restore_account(account, &stored);

    if !was_removed && room.removed.contains(&account) {
        let from = control::send_away(state, room, account, LeftReason::Removed).await;
        if from != RemovedFrom::Nowhere {
            tracing::info!(
                meeting_id,
                account_id = account,
                "removed by the host on another node"
            );
        }
        return Ok(from);
    }
    if !room.members.contains_key(&account) {
        return Ok(RemovedFrom::Nowhere);
    }
    let muted = room.muted.contains(&account);
    if muted != was_muted {
        super::lecture::apply_blocks(state, room, account).await?;
        if muted && room.speaker == Some(account) {
            room.speaker = None;
        }
    }
    if muted != was_muted || hand_before != room.hands.get(&account).copied() {
        room.broadcast_participant(account);
    }
    Ok(RemovedFrom::Nowhere)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trip() {
        let envelope = Envelope {
            node_id: "node-1".to_owned(),
            meeting_id: 7,
            notice: Notice::HandsLowered { account_id: None },
        };
        let text = serde_json::to_string(&envelope).unwrap();
        assert!(text.contains("\"type\":\"hands_lowered\""), "{text}");
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back.meeting_id, 7);
        assert_eq!(back.notice, Notice::HandsLowered { account_id: None });
    }

    #[test]
    fn subject_names_meeting() {
        assert_eq!(subject("prov.a", 42), "prov.a.room.42");
    }
}
