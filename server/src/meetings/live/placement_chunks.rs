//! Member lists too large for one placement value, such as a live lecture with
//! thousands of viewers on one node.
//!
//! NATS rejects a message above the server's `max_payload` (1 MiB by default), and
//! every participant entry takes a few hundred bytes. So the writer puts a member list
//! whose `meeting.` entry would exceed [`max_value_bytes`] in chunks under
//! `members.{meeting_id}.{node_id}.{index}`, each tagged with a generation, and then
//! the `meeting.` entry itself with [`MemberChunks`] in place of the members. Readers
//! take a chunked list as the node's part only once they hold every chunk of the
//! generation that the `meeting.` entry names. Until then they keep the part they read
//! before, so nobody ever sees a half-written list.
//!
//! The bucket's stream keeps messages in the order they were written, and a watcher
//! delivers them in that order, so the chunks normally arrive before their entry.
//! A writer that fails halfway leaves chunks of a generation that no entry names,
//! and readers drop them after the lease like any other entry.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::protocol::ParticipantEntry;
use crate::hub::kv_lease::{self, Leased};

/// Upper bound of the size of one value the writer puts, below NATS's default
/// `max_payload` of 1 MiB so that the value and its headers fit with room to spare.
pub const MAX_VALUE_BYTES: usize = 256 * 1024;

/// Returns the size limit of one value for a NATS server with this `max_payload`.
pub fn max_value_bytes(max_payload: usize) -> usize {
    MAX_VALUE_BYTES.min(max_payload / 2)
}

/// The chunks of a member list, named in its `meeting.` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberChunks {
    /// Tag of the chunks of this write. Earlier writes of the node used smaller numbers.
    pub generation: u64,
    /// Number of chunks, with indexes `0..count`.
    pub count: usize,
}

/// One chunk of a member list, as read from the bucket.
#[derive(Debug, Deserialize)]
pub struct MemberChunk {
    pub generation: u64,
    pub members: Vec<ParticipantEntry>,
}

/// Returns the key of one chunk of a node's member list of a meeting.
pub fn chunk_key(meeting_id: i64, node_id: &str, index: usize) -> String {
    format!(
        "members.{meeting_id}.{}.{index}",
        kv_lease::key_token(node_id)
    )
}

/// Returns the `meeting.` key that a `members.` key belongs to.
pub fn entry_key_of_chunk(key: &str) -> Option<String> {
    let (entry, index) = key.strip_prefix("members.")?.rsplit_once('.')?;
    index.parse::<usize>().ok()?;
    Some(format!("meeting.{entry}"))
}

/// Returns the key of chunk `index` of the `meeting.` entry `entry_key`.
fn chunk_key_of_entry(entry_key: &str, index: usize) -> Option<String> {
    let entry = entry_key.strip_prefix("meeting.")?;
    Some(format!("members.{entry}.{index}"))
}

/// Serializes a member list into chunk values of at most `max_bytes` each, unless a
/// single participant's entry is larger than that. Each value is a [`MemberChunk`].
pub fn encode(
    members: &[ParticipantEntry],
    generation: u64,
    max_bytes: usize,
) -> Result<Vec<Vec<u8>>, serde_json::Error> {
    let opening = format!("{{\"generation\":{generation},\"members\":[").into_bytes();
    let closing = b"]}";
    let mut chunks = Vec::new();
    let mut chunk = opening.clone();
    let mut empty = true;
    for member in members {
        let entry = serde_json::to_vec(member)?;
        if !empty && chunk.len() + 1 + entry.len() + closing.len() > max_bytes {
            chunk.extend_from_slice(closing);
            chunks.push(std::mem::replace(&mut chunk, opening.clone()));
            empty = true;
        }
        if !empty {
            chunk.push(b',');
        }
        chunk.extend_from_slice(&entry);
        empty = false;
    }
    chunk.extend_from_slice(closing);
    chunks.push(chunk);
    Ok(chunks)
}

/// Chunks and `meeting.` entries that a reader has read of member lists that are
/// not complete yet.
pub struct Pending<T> {
    /// Chunks read and not yet joined into a list, by key.
    pub chunks: Leased<MemberChunk>,
    /// `meeting.` entries read whose chunks have not all arrived, by key.
    pub entries: Leased<T>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self {
            chunks: Leased::default(),
            entries: Leased::default(),
        }
    }
}

impl<T> Pending<T> {
    /// Joins the chunks of `entry_key` named by `expected` into its member list and
    /// removes them. Returns `None`, keeping the chunks, while any of them is missing
    /// or of another generation.
    pub fn assemble(
        &mut self,
        entry_key: &str,
        expected: MemberChunks,
    ) -> Option<Vec<ParticipantEntry>> {
        let keys: Vec<String> = (0..expected.count)
            .map(|index| chunk_key_of_entry(entry_key, index))
            .collect::<Option<_>>()?;
        let complete = keys.iter().all(|key| {
            self.chunks
                .get(key)
                .is_some_and(|chunk| chunk.generation == expected.generation)
        });
        if !complete {
            return None;
        }
        let mut members = Vec::new();
        for key in keys {
            if let Some(chunk) = self.chunks.remove(&key) {
                members.extend(chunk.members);
            }
        }
        Some(members)
    }

    /// Drops the chunks and entries older than the lease at `now`.
    pub fn expire(&mut self, now: Instant) {
        self.chunks.expire(now);
        self.entries.expire(now);
    }

    /// Drops everything of the `meeting.` entries for which `drop_entry` is true.
    pub fn forget(&mut self, drop_entry: impl Fn(&str) -> bool) {
        let chunk_keys: Vec<String> = self
            .chunks
            .iter()
            .map(|(key, _)| key.clone())
            .filter(|key| entry_key_of_chunk(key).is_some_and(|entry| drop_entry(&entry)))
            .collect();
        for key in chunk_keys {
            self.chunks.remove(&key);
        }
        let entry_keys: HashSet<String> = self
            .entries
            .iter()
            .map(|(key, _)| key.clone())
            .filter(|key| drop_entry(key))
            .collect();
        for key in entry_keys {
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn viewer(account_id: i64) -> ParticipantEntry {
        ParticipantEntry::sample(account_id)
    }

    #[test]
    fn chunk_keys_parse() {
        let key = chunk_key(42, "node.1", 3);
        assert_eq!(key, "members.42.node=2E1.3");
        assert_eq!(
            entry_key_of_chunk(&key).as_deref(),
            Some("meeting.42.node=2E1")
        );
        assert_eq!(
            chunk_key_of_entry("meeting.42.node=2E1", 3).as_deref(),
            Some(key.as_str())
        );
        assert_eq!(entry_key_of_chunk("members.42.node"), None);
        assert_eq!(entry_key_of_chunk("meeting.42.node.1"), None);
    }

    #[test]
    fn encoded_chunks_stay_under_limit() {
        let members: Vec<ParticipantEntry> = (0..1000).map(viewer).collect();
        let chunks = encode(&members, 9, 16 * 1024).unwrap();
        assert!(chunks.len() > 1, "{} chunks", chunks.len());
        let mut decoded = Vec::new();
        for chunk in &chunks {
            assert!(chunk.len() <= 16 * 1024, "chunk of {} bytes", chunk.len());
            let chunk: MemberChunk = serde_json::from_slice(chunk).unwrap();
            assert_eq!(chunk.generation, 9);
            decoded.extend(chunk.members);
        }
        assert_eq!(decoded, members);
    }

    #[test]
    fn empty_list_is_one_chunk() {
        let chunks = encode(&[], 1, 1024).unwrap();
        assert_eq!(chunks.len(), 1);
        let chunk: MemberChunk = serde_json::from_slice(&chunks[0]).unwrap();
        assert!(chunk.members.is_empty());
    }

    #[test]
    fn assemble_waits_for_every_chunk_of_generation() {
        let mut pending = Pending::<()>::default();
        let entry_key = "meeting.7.b";
        let now = Instant::now();
        let chunk = |generation, account| MemberChunk {
            generation,
            members: vec![viewer(account)],
        };
        pending
            .chunks
            .insert("members.7.b.0".to_owned(), chunk(2, 1), now);
        pending
            .chunks
            .insert("members.7.b.1".to_owned(), chunk(1, 2), now);
        let expected = MemberChunks {
            generation: 2,
            count: 2,
        };
        assert_eq!(pending.assemble(entry_key, expected), None);
        pending
            .chunks
            .insert("members.7.b.1".to_owned(), chunk(2, 3), now);
        let members = pending.assemble(entry_key, expected).unwrap();
        let accounts: Vec<i64> = members.iter().map(|member| member.account_id).collect();
        assert_eq!(accounts, [1, 3]);
        assert_eq!(pending.chunks.iter().count(), 0);
    }

    #[test]
    fn forget_drops_one_node() {
        let mut pending = Pending::default();
        let now = Instant::now();
        for key in ["members.7.a.0", "members.7.b.0", "members.8.b.1"] {
            let chunk = MemberChunk {
                generation: 1,
                members: Vec::new(),
            };
            pending.chunks.insert(key.to_owned(), chunk, now);
        }
        pending.entries.insert("meeting.7.b".to_owned(), (), now);
        pending.entries.insert("meeting.7.a".to_owned(), (), now);
        pending.forget(|key| key.ends_with(".b"));
        let chunks: Vec<&String> = pending.chunks.iter().map(|(key, _)| key).collect();
        assert_eq!(chunks, ["members.7.a.0"]);
        let entries: Vec<&String> = pending.entries.iter().map(|(key, _)| key).collect();
        assert_eq!(entries, ["meeting.7.a"]);
    }
}
