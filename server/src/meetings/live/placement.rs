//! Meeting placement across nodes and the choice of node for a participant.
//!
//! With NATS, every node keeps its entries in the lease bucket
//! `{PREFIX}_PLACEMENT` (see [`crate::hub::kv_lease`]):
//! - `node.{node_id}`: the node's URL, media region and total participants
//!   in its media, written every heartbeat while the node runs;
//! - `meeting.{meeting_id}.{node_id}`: the same with the participants of
//!   that meeting on that node, their entries as the participant list shows
//!   them, and the entries of the people waiting in that node's lobby. It is
//!   written while the node has anyone in the media or the lobby, and deleted
//!   when the last one leaves;
//! - `members.{meeting_id}.{node_id}.{index}`: chunks of that participant list
//!   when it is too large for one value (see [`super::placement_chunks`]).
//!
//! Both also name the NATS subject where the node takes relay requests for its
//! media engine (see [`super::cascade`]).
//!
//! Entries are rewritten every [`kv_lease::HEARTBEAT`] and at once when a participant
//! joins or leaves, and a stopped node's entries drop out after [`kv_lease::LEASE`].
//! `GET /api/meetings/{id}/node` chooses from the entries every node reads.
//! Without NATS there is one node and it always chooses itself.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, RwLock};

use async_nats::jetstream::{self, kv};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Live;
use super::placement_chunks::{self, MemberChunk, MemberChunks, Pending, chunk_key};
use super::protocol::{ParticipantEntry, WaitingEntry};
use crate::config::{Config, NodeSelection, valid_node_id, valid_region};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::hub::kv_lease::{self, Leased};
use crate::perm::Caller;
use crate::state::AppState;

/// Request header with the caller's media region, set by the reverse proxy.
pub const REGION_HEADER: &str = "x-dangwu-region";

/// A node as the placement bucket records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeEntry {
    pub node_id: String,
    /// Address browsers use to reach the node directly.
    pub url: String,
    /// Media region label, if the node has one.
    pub region: Option<String>,
    /// Participants in the node's media: all of them in a `node.` entry, those
    /// of one meeting in a `meeting.` entry.
    pub participants: u64,
}

/// A value in the placement bucket: a node entry, the subject of the node's
/// relay requests and, in a `meeting.` entry, the node's part of the
/// participant list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacementValue {
    #[serde(flatten)]
    pub node: NodeEntry,
    /// NATS subject of the node's relay requests; absent for a node that
    /// does not relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_subject: Option<String>,
    /// Participants of the meeting in this node's media. A reader fills it from
    /// `member_chunks` when the writer put the list in chunks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<ParticipantEntry>,
    /// Chunks holding the participant list in place of `members`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_chunks: Option<MemberChunks>,
    /// People waiting in this node's lobby of the meeting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lobby: Vec<WaitingEntry>,
}

/// This node's part of one meeting, as its `meeting.` entry lists it.
#[derive(Debug, Clone, Default)]
pub struct LocalPart {
    pub members: Vec<ParticipantEntry>,
    pub lobby: Vec<WaitingEntry>,
}

/// Another node's part of a meeting, as its placement entry shows it.
#[derive(Debug, Clone)]
pub struct RemotePart {
    pub node_id: String,
    pub media_subject: Option<String>,
    pub members: Vec<ParticipantEntry>,
    pub lobby: Vec<WaitingEntry>,
}

/// The response of `GET /api/meetings/{id}/node`.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeChoice {
    #[serde(flatten)]
    pub node: NodeEntry,
    /// Whether the chosen node handled the request, so the page can stay.
    pub this_node: bool,
    /// Whether the node already hosts part of the meeting.
    pub hosts_meeting: bool,
}

/// This node's placement entries and the other nodes' entries as read.
pub struct Placement {
    this: NodeEntry,
    policy: NodeSelection,
    entries: RwLock<Leased<PlacementValue>>,
    /// Chunks of other nodes' participant lists, and `meeting.` entries waiting
    /// for them, until each list is complete.
    pending: Mutex<Pending<PlacementValue>>,
    /// Subject of this node's relay requests, once NATS is in use.
    media_subject: std::sync::OnceLock<String>,
    /// Wakes the writer when a participant joins or leaves here.
    changed: Notify,
}

/// Returns the placement bucket's name for a NATS prefix.
pub fn bucket_name(prefix: &str) -> String {
    kv_lease::bucket_name(prefix, "PLACEMENT")
}

fn node_key(node_id: &str) -> String {
    format!("node.{}", kv_lease::key_token(node_id))
}

fn meeting_key(meeting_id: i64, node_id: &str) -> String {
    format!("meeting.{meeting_id}.{}", kv_lease::key_token(node_id))
}

/// Returns the NATS subject where a node takes relay requests.
pub fn media_subject(prefix: &str, node_id: &str) -> String {
    format!("{prefix}.media.{}", kv_lease::key_token(node_id))
}

/// Returns the meeting id of a `meeting.` key.
fn meeting_of_key(key: &str) -> Option<i64> {
    key.strip_prefix("meeting.")?
        .split_once('.')?
        .0
        .parse()
        .ok()
}

/// Minimum time between two writes caused by participant changes while any of this
/// node's participant lists takes chunks. A lecture whose viewers keep joining would
/// otherwise rewrite megabytes for each of them.
const CHUNKED_WRITE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Bookkeeping of this node's writer: the keys it put and the latest generation.
struct Written {
    /// Chunks of the participant list of each meeting with an entry, 0 when the
    /// list is inside the entry.
    chunks: HashMap<i64, usize>,
    /// Generation of the latest chunked list.
    generation: u64,
}

impl Written {
    fn any_chunked(&self) -> bool {
        self.chunks.values().any(|chunks| *chunks > 0)
    }

    fn new() -> Self {
        // Generations start from the clock so that a restarted node does not reuse
        // one whose chunks readers may still hold.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            chunks: HashMap::new(),
            generation: u64::try_from(now.as_micros()).unwrap_or(u64::MAX / 2),
        }
    }
}

impl Placement {
    pub fn new(config: &Config) -> Self {
        Self::for_node(
            NodeEntry {
                node_id: config.node_id.clone(),
                url: config.node_url.clone(),
                region: config.media_region.clone(),
                participants: 0,
            },
            config.node_selection,
        )
    }

    fn for_node(this: NodeEntry, policy: NodeSelection) -> Self {
        Self {
            this,
            policy,
            entries: RwLock::default(),
            pending: Mutex::default(),
            media_subject: std::sync::OnceLock::new(),
            changed: Notify::new(),
        }
    }

    /// Asks the writer to rewrite this node's entries now.
    pub fn participants_changed(&self) {
        self.changed.notify_one();
    }

    /// Picks the node for a participant of a meeting from the region given
    /// by the proxy, or this node's region when the request has none.
    pub fn select(&self, meeting_id: i64, caller_region: Option<&str>) -> NodeChoice {
        let (mut nodes, hosts) = {
            let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
            split_entries(&entries, meeting_id)
        };
        if !nodes.iter().any(|node| node.node_id == self.this.node_id) {
            // Without NATS, or before this node read its own entry back.
            nodes.push(self.this.clone());
        }
        let region = caller_region.or(self.this.region.as_deref());
        let node = choose(self.policy, region, &self.this.node_id, &nodes, &hosts)
            .unwrap_or(&self.this)
            .clone();
        NodeChoice {
            this_node: node.node_id == self.this.node_id,
            hosts_meeting: hosts.iter().any(|host| host.node_id == node.node_id),
            node,
        }
    }

    /// Returns the other nodes' parts of a meeting, the oldest write first.
    ///
    /// Someone listed in two parts moved from one node to the other, and the
    /// part written last shows where they are now. That happens after a node
    /// dies, until its entries expire after [`kv_lease::LEASE`]. The write
    /// times are read from the NATS server's clock (see [`kv_lease::written_at`]).
    pub fn remote_parts(&self, meeting_id: i64) -> Vec<RemotePart> {
        let mut parts: Vec<(Instant, RemotePart)> = {
            let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
            entries
                .iter_written()
                .filter(|(key, value, _)| {
                    meeting_of_key(key) == Some(meeting_id)
                        && value.node.node_id != self.this.node_id
                })
                .map(|(_, value, written)| {
                    let part = RemotePart {
                        node_id: value.node.node_id.clone(),
                        media_subject: value.media_subject.clone(),
                        members: value.members.clone(),
                        lobby: value.lobby.clone(),
                    };
                    (written, part)
                })
                .collect()
        };
        parts.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.node_id.cmp(&b.1.node_id)));
        parts.into_iter().map(|(_, part)| part).collect()
    }

    /// Returns the subject of another node's relay requests, if it relays.
    pub fn media_subject_of(&self, node_id: &str) -> Option<String> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .find(|(key, value)| key.starts_with("node.") && value.node.node_id == node_id)
            .and_then(|(_, value)| value.media_subject.clone())
    }

    /// Returns the live nodes as read from the bucket, this one included.
    pub fn nodes(&self) -> Vec<NodeEntry> {
        let mut nodes: Vec<NodeEntry> = {
            let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
            entries
                .iter()
                .filter(|(key, _)| key.starts_with("node."))
                .map(|(_, value)| value.node.clone())
                .collect()
        };
        if !nodes.iter().any(|node| node.node_id == self.this.node_id) {
            nodes.push(self.this.clone());
        }
        nodes
    }

    /// Drops a node that is gone from this node's view before its lease ends.
    /// Its next write, if it runs after all, brings it back.
    pub fn forget_node(&self, node_id: &str) {
        let token = kv_lease::key_token(node_id);
        let suffix = format!(".{token}");
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(|key| key.ends_with(&suffix));
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<String> = entries
            .iter()
            .map(|(key, _)| key.clone())
            .filter(|key| {
                key == &node_key(node_id) || (key.starts_with("meeting.") && key.ends_with(&suffix))
            })
            .collect();
        for key in keys {
            entries.remove(&key);
        }
    }

    /// Returns the WebSocket origins (`ws://host:port`) of every node known,
    /// this one included, which the room page may connect its hub socket to.
    /// A URL with characters that do not belong in an origin is left out.
    pub fn websocket_origins(&self) -> Vec<String> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let urls = entries
            .iter()
            .filter(|(key, _)| key.starts_with("node."))
            .map(|(_, value)| value.node.url.as_str())
            .chain([self.this.url.as_str()]);
        let mut origins: Vec<String> = urls.filter_map(websocket_origin).collect();
        origins.sort();
        origins.dedup();
        origins
    }

    /// Writes this node's entries and reads everyone's until the task is
    /// aborted, starting again after [`kv_lease::RETRY_DELAY`] when NATS fails.
    pub async fn run(
        self: Arc<Self>,
        context: jetstream::Context,
        prefix: String,
        live: Arc<Live>,
    ) {
        let bucket = bucket_name(&prefix);
        let _ = self
            .media_subject
            .set(media_subject(&prefix, &self.this.node_id));
        let mut written = Written::new();
        let mut failing = false;
        loop {
            let error = match self
                .share(&context, &bucket, &live, &mut written, &mut failing)
                .await
            {
                Ok(never) => match never {},
                Err(error) => error,
            };
            kv_lease::retry_after(&bucket, "meeting placement", &error, &mut failing).await;
        }
    }

    /// Runs one cycle of [`Placement::run`]: opens the bucket and its watcher and
    /// serves them until either fails.
    async fn share(
        &self,
        context: &jetstream::Context,
        bucket: &str,
        live: &Arc<Live>,
        written: &mut Written,
        failing: &mut bool,
    ) -> Result<Infallible, String> {
        let mut link = kv_lease::link(context, bucket, "meeting placement", failing).await?;
        let max_value = placement_chunks::max_value_bytes(context.client().max_payload());
        let mut last_write = Instant::now();
        // A change waiting for CHUNKED_WRITE_INTERVAL to pass since the last write.
        let mut deferred: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = link.heartbeat.tick() => {
                    self.write(&link.store, live, written, max_value).await?;
                    last_write = Instant::now();
                    deferred = None;
                    // Relays are checked every heartbeat too, so one that failed is
                    // started again.
                    live.check_relays();
                }
                _ = self.changed.notified() => {
                    let next = last_write + CHUNKED_WRITE_INTERVAL;
                    if written.any_chunked() && Instant::now() < next {
                        deferred = Some(next);
                    } else {
                        self.write(&link.store, live, written, max_value).await?;
                        last_write = Instant::now();
                    }
                }
                _ = tokio::time::sleep_until(deferred.unwrap_or_else(Instant::now)),
                    if deferred.is_some() =>
                {
                    self.write(&link.store, live, written, max_value).await?;
                    last_write = Instant::now();
                    deferred = None;
                }
                entry = link.watch.next() => match entry {
                    Some(Ok(entry)) => {
                        if let Some(meeting_id) = self.read(&entry) {
                            live.remote_changed(meeting_id);
                        }
                    }
                    Some(Err(error)) => return Err(error.to_string()),
                    None => return Err("the watcher ended".to_owned()),
                },
                _ = link.sweep.tick() => {
                    let now = Instant::now();
                    self.pending.lock().unwrap_or_else(|e| e.into_inner()).expire(now);
                    let expired = {
                        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
                        entries.expire(now)
                    };
                    let meetings: HashSet<i64> =
                        expired.iter().filter_map(|key| meeting_of_key(key)).collect();
                    for meeting_id in meetings {
                        live.remote_changed(meeting_id);
                    }
                }
            }
        }
    }

    /// Writes the node entry and one entry per meeting with participants
    /// here, and deletes the entries of meetings that have none any more.
    async fn write(
        &self,
        store: &kv::Store,
        live: &Live,
        written: &mut Written,
        max_value: usize,
    ) -> Result<(), String> {
        let members = live.local_entries().await;
        self.write_entries(store, members, written, max_value).await
    }

    /// Writes this node's part of each meeting, in values of at most `max_value`
    /// bytes, and deletes entries and chunks no longer needed.
    async fn write_entries(
        &self,
        store: &kv::Store,
        parts: HashMap<i64, LocalPart>,
        written: &mut Written,
        max_value: usize,
    ) -> Result<(), String> {
        let total = parts.values().map(|part| part.members.len() as u64).sum();
        let node = self.value(total, LocalPart::default(), None);
        put(store, node_key(&self.this.node_id), &node).await?;
        let meetings: HashSet<i64> = parts.keys().copied().collect();
        for (meeting_id, part) in parts {
            let chunks = self
                .write_meeting(store, meeting_id, part, written, max_value)
                .await?;
            let before = written.chunks.insert(meeting_id, chunks).unwrap_or(0);
            self.delete_chunks(store, meeting_id, chunks..before)
                .await?;
        }
        let emptied: Vec<(i64, usize)> = written
            .chunks
            .iter()
            .filter(|(meeting_id, _)| !meetings.contains(meeting_id))
            .map(|(meeting_id, chunks)| (*meeting_id, *chunks))
            .collect();
        for (meeting_id, chunks) in emptied {
            // The entry goes first, so no reader waits for chunks that are gone.
            store
                .delete(meeting_key(meeting_id, &self.this.node_id))
                .await
                .map_err(|error| error.to_string())?;
            self.delete_chunks(store, meeting_id, 0..chunks).await?;
            written.chunks.remove(&meeting_id);
        }
        Ok(())
    }

    /// Writes the entry of one meeting and returns the number of chunks its
    /// participant list took: 0 when the list fits in the entry. Chunks are
    /// written before the entry that names them.
    async fn write_meeting(
        &self,
        store: &kv::Store,
        meeting_id: i64,
        part: LocalPart,
        written: &mut Written,
        max_value: usize,
    ) -> Result<usize, String> {
        let key = meeting_key(meeting_id, &self.this.node_id);
        let participants = part.members.len() as u64;
        let mut entry = self.value(participants, part, None);
        let value = serde_json::to_vec(&entry).map_err(|error| error.to_string())?;
        if value.len() <= max_value {
            put_value(store, key, value).await?;
            return Ok(0);
        }
        let members = std::mem::take(&mut entry.members);
        written.generation += 1;
        let generation = written.generation;
        let chunks = placement_chunks::encode(&members, generation, max_value)
            .map_err(|error| error.to_string())?;
        let count = chunks.len();
        for (index, chunk) in chunks.into_iter().enumerate() {
            let chunk_key = chunk_key(meeting_id, &self.this.node_id, index);
            put_value(store, chunk_key, chunk).await?;
        }
        entry.member_chunks = Some(MemberChunks { generation, count });
        put(store, key, &entry).await?;
        Ok(count)
    }

    async fn delete_chunks(
        &self,
        store: &kv::Store,
        meeting_id: i64,
        indexes: std::ops::Range<usize>,
    ) -> Result<(), String> {
        for index in indexes {
            store
                .delete(chunk_key(meeting_id, &self.this.node_id, index))
                .await
                .map_err(|error| error.to_string())?;
        }
        Ok(())
    }

    fn value(
        &self,
        participants: u64,
        part: LocalPart,
        member_chunks: Option<MemberChunks>,
    ) -> PlacementValue {
        PlacementValue {
            node: NodeEntry {
                participants,
                ..self.this.clone()
            },
            media_subject: self.media_subject.get().cloned(),
            members: part.members,
            member_chunks,
            lobby: part.lobby,
        }
    }

    /// Applies one change from the bucket and returns the meeting whose part on
    /// another node it changed.
    fn read(&self, entry: &kv::Entry) -> Option<i64> {
        self.apply(
            &entry.key,
            entry.operation,
            &entry.value,
            kv_lease::written_at(entry),
        )
    }

    fn apply(
        &self,
        key: &str,
        operation: kv::Operation,
        value: &[u8],
        written: Instant,
    ) -> Option<i64> {
        if key.starts_with("members.") {
            return self.apply_chunk(key, operation, value, written);
        }
        let remote_meeting =
            meeting_of_key(key).filter(|id| key != meeting_key(*id, &self.this.node_id));
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.entries.remove(key);
        match operation {
            kv::Operation::Put => {
                let mut value: PlacementValue = match serde_json::from_slice(value) {
                    Ok(value) => value,
                    Err(error) => {
                        tracing::warn!(key, %error, "invalid placement entry from NATS");
                        return None;
                    }
                };
                // This node's own participant lists are never read back, so their
                // chunks are not kept.
                if let Some(chunks) = value.member_chunks
                    && remote_meeting.is_some()
                {
                    match pending.assemble(key, chunks) {
                        Some(members) => value.members = members,
                        None => {
                            // Until every chunk is read the previous list stays, and
                            // without chunks it expires with its lease.
                            pending.entries.insert(key.to_owned(), value, written);
                            return None;
                        }
                    }
                }
                let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
                entries.insert(key.to_owned(), value, written);
            }
            kv::Operation::Delete | kv::Operation::Purge => {
                let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
                entries.remove(key);
            }
        }
        remote_meeting
    }

    /// Applies a change of a chunk of a participant list, and returns the meeting
    /// whose entry it completed.
    fn apply_chunk(
        &self,
        key: &str,
        operation: kv::Operation,
        value: &[u8],
        written: Instant,
    ) -> Option<i64> {
        let entry_key = placement_chunks::entry_key_of_chunk(key)?;
        let meeting_id = meeting_of_key(&entry_key)?;
        if entry_key == meeting_key(meeting_id, &self.this.node_id) {
            return None;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match operation {
            kv::Operation::Put => match serde_json::from_slice::<MemberChunk>(value) {
                Ok(chunk) => pending.chunks.insert(key.to_owned(), chunk, written),
                Err(error) => {
                    tracing::warn!(key, %error, "invalid participant list chunk from NATS");
                    return None;
                }
            },
            kv::Operation::Delete | kv::Operation::Purge => {
                pending.chunks.remove(key);
                return None;
            }
        }
        let expected = pending.entries.get(&entry_key)?.member_chunks?;
        let members = pending.assemble(&entry_key, expected)?;
        let (mut value, written) = pending.entries.take(&entry_key)?;
        value.members = members;
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.insert(entry_key, value, written);
        Some(meeting_id)
    }
}

async fn put(store: &kv::Store, key: String, value: &PlacementValue) -> Result<(), String> {
    let value = serde_json::to_vec(value).map_err(|error| error.to_string())?;
    put_value(store, key, value).await
}

async fn put_value(store: &kv::Store, key: String, value: Vec<u8>) -> Result<(), String> {
    store
        .put(&key, value.into())
        .await
        .map(|_| ())
        .map_err(|error| format!("failed to write placement entry {key}: {error}"))
}

/// Returns the `scheme://host[:port]` part of a URL.
pub fn url_origin(url: &str) -> &str {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    match url[authority_start..].find('/') {
        Some(end) => &url[..authority_start + end],
        None => url,
    }
}

/// Returns the WebSocket origin of an `http` or `https` URL.
fn websocket_origin(url: &str) -> Option<String> {
    let origin = url_origin(url);
    let valid = origin
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '-' | '[' | ']'));
    if !valid {
        return None;
    }
    if let Some(rest) = origin.strip_prefix("https://") {
        Some(format!("wss://{rest}"))
    } else {
        origin
            .strip_prefix("http://")
            .map(|rest| format!("ws://{rest}"))
    }
}

/// Splits the entries into the nodes and the nodes hosting the meeting.
fn split_entries(
    entries: &Leased<PlacementValue>,
    meeting_id: i64,
) -> (Vec<NodeEntry>, Vec<NodeEntry>) {
    let mut nodes = Vec::new();
    let mut hosts = Vec::new();
    for (key, value) in entries.iter() {
        if key.starts_with("node.") {
            nodes.push(value.node.clone());
        } else if meeting_of_key(key) == Some(meeting_id) {
            hosts.push(value.node.clone());
        }
    }
    (nodes, hosts)
}

/// Chooses the node for a participant.
///
/// Under `region`, a node hosting the meeting in the caller's region comes
/// first, the one with the most of its participants, and then the least
/// loaded node of that region, which relays the meeting from the hosting
/// nodes. A caller from a region without nodes, and every caller under
/// `least-loaded`, goes to the node hosting most of the meeting's
/// participants, so no relay is needed. A meeting that no node hosts goes to
/// the least loaded node. Ties go to `this_node`, then to the lowest node id.
fn choose<'a>(
    policy: NodeSelection,
    region: Option<&str>,
    this_node: &str,
    nodes: &'a [NodeEntry],
    hosts: &'a [NodeEntry],
) -> Option<&'a NodeEntry> {
    let busiest = |candidates: &mut dyn Iterator<Item = &'a NodeEntry>| {
        candidates.max_by(|a, b| {
            a.participants
                .cmp(&b.participants)
                .then_with(|| b.node_id.cmp(&a.node_id))
        })
    };
    let least_loaded = |candidates: &mut dyn Iterator<Item = &'a NodeEntry>| {
        candidates.min_by(|a, b| {
            a.participants
                .cmp(&b.participants)
                .then_with(|| (a.node_id != this_node).cmp(&(b.node_id != this_node)))
                .then_with(|| a.node_id.cmp(&b.node_id))
        })
    };
    let in_region = |node: &&NodeEntry| region.is_some() && node.region.as_deref() == region;
    if policy == NodeSelection::Region {
        if let Some(host) = busiest(&mut hosts.iter().filter(in_region)) {
            return Some(host);
        }
        if let Some(node) = least_loaded(&mut nodes.iter().filter(in_region)) {
            return Some(node);
        }
    }
    if let Some(host) = busiest(&mut hosts.iter()) {
        return Some(host);
    }
    least_loaded(&mut nodes.iter())
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(node))
}

/// Query of `GET /api/meetings/{id}/node`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct NodeQuery {
    /// Id of the node the page lost its hub socket or media on. The node is
    /// left out when it does not reply to a liveness request through NATS.
    pub unreachable: Option<String>,
}

/// Returns the node whose hub socket and media the caller should use for the
/// meeting. The caller's region comes from the `X-Dangwu-Region` header,
/// which the reverse proxy sets; an invalid or missing label counts as none.
#[utoipa::path(get, path = "/api/meetings/{id}/node", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id"), NodeQuery,
        ("X-Dangwu-Region" = Option<String>, Header, description = "Caller's media region")),
    responses((status = 200, body = NodeChoice), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn node(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<NodeQuery>,
    headers: HeaderMap,
) -> AppResult<Json<NodeChoice>> {
    crate::meetings::view::readable(&state, &caller, id).await?;
    let region = headers
        .get(REGION_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|region| valid_region(region));
    let choice = match query.unreachable.as_deref() {
        None => state.live.placement().select(id, region),
        Some(node_id) if valid_node_id(node_id) => {
            super::liveness::choose_after_loss(&state, id, region, node_id).await
        }
        Some(node_id) => {
            return Err(AppError::invalid(
                "unreachable",
                format!("节点编号无效：{node_id:?}"),
                format!(
                    "invalid node id {node_id:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
                ),
            ));
        }
    };
    Ok(Json(choice))
}

#[cfg(test)]
mod tests {
    use super::super::placement_chunks::tests::viewer;
    use super::*;

    /// Returns a node's part of a meeting with people in the media and no one waiting.
    fn members_only(members: Vec<ParticipantEntry>) -> LocalPart {
        LocalPart {
            members,
            lobby: Vec::new(),
        }
    }

    fn entry(node_id: &str, region: &str, participants: u64) -> NodeEntry {
        NodeEntry {
            node_id: node_id.to_owned(),
            url: format!("http://{node_id}"),
            region: Some(region.to_owned()),
            participants,
        }
    }

    fn chosen(
        policy: NodeSelection,
        region: &str,
        nodes: &[NodeEntry],
        hosts: &[NodeEntry],
    ) -> String {
        choose(policy, Some(region), "a", nodes, hosts)
            .unwrap()
            .node_id
            .clone()
    }

    #[test]
    fn new_meeting_goes_to_least_loaded_in_region() {
        let nodes = [
            entry("a", "north", 1),
            entry("b", "south", 5),
            entry("c", "south", 2),
        ];
        assert_eq!(chosen(NodeSelection::Region, "south", &nodes, &[]), "c");
        assert_eq!(
            chosen(NodeSelection::LeastLoaded, "south", &nodes, &[]),
            "a"
        );
        assert_eq!(chosen(NodeSelection::Region, "west", &nodes, &[]), "a");
    }

    #[test]
    fn hosting_node_in_region_wins() {
        let nodes = [
            entry("a", "north", 0),
            entry("b", "south", 9),
            entry("c", "south", 1),
        ];
        let hosts = [entry("a", "north", 1), entry("b", "south", 2)];
        assert_eq!(chosen(NodeSelection::Region, "south", &nodes, &hosts), "b");
        assert_eq!(chosen(NodeSelection::Region, "north", &nodes, &hosts), "a");
        // Outside every host's region, the busiest host keeps the meeting together.
        assert_eq!(chosen(NodeSelection::Region, "west", &nodes, &hosts), "b");
        assert_eq!(
            chosen(NodeSelection::LeastLoaded, "north", &nodes, &hosts),
            "b"
        );
    }

    #[test]
    fn region_without_host_relays() {
        let nodes = [
            entry("a", "north", 3),
            entry("b", "south", 9),
            entry("c", "south", 1),
            entry("d", "north", 0),
        ];
        let hosts = [entry("b", "south", 9)];
        // The least loaded node of the caller's region, which relays from b.
        assert_eq!(chosen(NodeSelection::Region, "north", &nodes, &hosts), "d");
        // A host in the region wins even when another node there is idle.
        assert_eq!(chosen(NodeSelection::Region, "south", &nodes, &hosts), "b");
        // Under least-loaded everyone goes to the hosting node.
        assert_eq!(
            chosen(NodeSelection::LeastLoaded, "north", &nodes, &hosts),
            "b"
        );
    }

    #[test]
    fn ties_prefer_this_node() {
        let nodes = [
            entry("b", "south", 0),
            entry("a", "south", 0),
            entry("c", "south", 0),
        ];
        assert_eq!(chosen(NodeSelection::Region, "south", &nodes, &[]), "a");
        let others = [entry("c", "south", 0), entry("b", "south", 0)];
        assert_eq!(chosen(NodeSelection::Region, "south", &others, &[]), "b");
    }

    #[test]
    fn url_origin_drops_path() {
        assert_eq!(
            url_origin("https://dangwu.intranet:8443"),
            "https://dangwu.intranet:8443"
        );
        assert_eq!(
            url_origin("https://dangwu.intranet/party"),
            "https://dangwu.intranet"
        );
    }

    #[test]
    fn websocket_origin_from_node_url() {
        assert_eq!(
            websocket_origin("https://dangwu.intranet:8443/party").as_deref(),
            Some("wss://dangwu.intranet:8443")
        );
        assert_eq!(
            websocket_origin("http://127.0.0.1:8080").as_deref(),
            Some("ws://127.0.0.1:8080")
        );
        assert_eq!(websocket_origin("http://a b;"), None);
        assert_eq!(websocket_origin("ftp://host"), None);
    }

    fn placement(node_id: &str) -> Placement {
        Placement::for_node(entry(node_id, "north", 0), NodeSelection::Region)
    }

    fn members_of(placement: &Placement, meeting_id: i64) -> Vec<i64> {
        placement
            .remote_parts(meeting_id)
            .iter()
            .flat_map(|part| part.members.iter().map(|member| member.account_id))
            .collect()
    }

    #[test]
    fn chunked_list_replaces_previous_only_when_complete() {
        let reader = placement("reader");
        let writer = placement("lecture");
        let now = Instant::now();
        let entry_key = meeting_key(7, "lecture");
        let chunked = |generation, count| {
            let value = writer.value(
                3,
                LocalPart::default(),
                Some(MemberChunks { generation, count }),
            );
            serde_json::to_vec(&value).unwrap()
        };
        let chunk = |generation, accounts: &[i64]| {
            let members: Vec<ParticipantEntry> = accounts.iter().map(|a| viewer(*a)).collect();
            let mut chunks = placement_chunks::encode(&members, generation, usize::MAX).unwrap();
            chunks.remove(0)
        };
        let put = kv::Operation::Put;
        let first = writer.value(1, members_only(vec![viewer(1)]), None);
        let first = serde_json::to_vec(&first).unwrap();
        assert_eq!(reader.apply(&entry_key, put, &first, now), Some(7));
        assert_eq!(members_of(&reader, 7), [1]);

        // The entry arrives before its second chunk: the previous list stays.
        let chunk0 = chunk_key(7, "lecture", 0);
        let chunk1 = chunk_key(7, "lecture", 1);
        assert_eq!(reader.apply(&chunk0, put, &chunk(5, &[2, 3]), now), None);
        assert_eq!(reader.apply(&entry_key, put, &chunked(5, 2), now), None);
        assert_eq!(members_of(&reader, 7), [1]);
        // A chunk of an older generation does not complete it.
        assert_eq!(reader.apply(&chunk1, put, &chunk(4, &[9]), now), None);
        assert_eq!(members_of(&reader, 7), [1]);
        assert_eq!(reader.apply(&chunk1, put, &chunk(5, &[4]), now), Some(7));
        assert_eq!(members_of(&reader, 7), [2, 3, 4]);

        // This node's own chunks are not kept.
        let own = placement("lecture");
        assert_eq!(own.apply(&chunk0, put, &chunk(6, &[2]), now), None);
        assert_eq!(own.apply(&entry_key, put, &chunked(6, 1), now), None);
        let pending = own.pending.lock().unwrap();
        assert_eq!(pending.chunks.iter().count(), 0);
        assert_eq!(pending.entries.iter().count(), 0);
    }

    fn test_nats_url() -> String {
        std::env::var("DANGWU_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
    }

    /// Reads changes from the bucket into `reader` until `done` holds.
    async fn read_until(
        reader: &Placement,
        watch: &mut kv::Watch,
        done: impl Fn(&Placement) -> bool,
    ) {
        let wait = async {
            while !done(reader) {
                let entry = watch
                    .next()
                    .await
                    .expect("watcher ended")
                    .expect("watch failed");
                reader.read(&entry);
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), wait)
            .await
            .expect("the reader did not see the written entries within 60 s");
    }

    /// Writes and reads a lecture with 20 000 viewers on one node through the NATS
    /// server at `DANGWU_TEST_NATS` (default `nats://127.0.0.1:4222`), in a bucket of
    /// its own.
    #[tokio::test]
    async fn large_lecture_entries_through_nats() {
        let url = test_nats_url();
        let client = async_nats::connect(&url).await.unwrap_or_else(|error| {
            panic!("NATS is not reachable at {url}: {error}; start it or set DANGWU_TEST_NATS")
        });
        let context = jetstream::new(client.clone());
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let bucket = bucket_name(&format!("placement-test-{}-{unique}", std::process::id()));
        let store = kv_lease::open(&context, &bucket).await.unwrap();
        let mut watch = store.watch_all().await.unwrap();
        let writer = placement("lecture");
        let reader = placement("reader");
        let max_value = placement_chunks::max_value_bytes(client.max_payload());
        let mut written = Written::new();

        let viewers: Vec<ParticipantEntry> = (1..=20_000).map(viewer).collect();
        let small: Vec<ParticipantEntry> = (1..=3).map(viewer).collect();
        let members = HashMap::from([
            (7, members_only(viewers.clone())),
            (8, members_only(small.clone())),
        ]);
        writer
            .write_entries(&store, members, &mut written, max_value)
            .await
            .unwrap();
        let lecture_chunks = written.chunks[&7];
        assert!(lecture_chunks > 1, "{lecture_chunks} chunks");
        assert_eq!(written.chunks[&8], 0);
        read_until(&reader, &mut watch, |reader| {
            members_of(reader, 7).len() == 20_000 && members_of(reader, 8).len() == 3
        })
        .await;
        let parts = reader.remote_parts(7);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].members, viewers);
        assert_eq!(reader.remote_parts(8)[0].members, small);
        let node = reader
            .nodes()
            .into_iter()
            .find(|node| node.node_id == "lecture")
            .unwrap();
        assert_eq!(node.participants, 20_003);

        // Fewer viewers take fewer chunks, and the ones left over are deleted.
        let fewer: Vec<ParticipantEntry> = viewers[..5_000].to_vec();
        let members = HashMap::from([(7, members_only(fewer.clone()))]);
        writer
            .write_entries(&store, members, &mut written, max_value)
            .await
            .unwrap();
        assert!(written.chunks[&7] < lecture_chunks);
        for index in written.chunks[&7]..lecture_chunks {
            let key = chunk_key(7, "lecture", index);
            assert_eq!(store.get(&key).await.unwrap(), None, "{key}");
        }
        read_until(&reader, &mut watch, |reader| {
            members_of(reader, 7).len() == 5_000 && reader.remote_parts(8).is_empty()
        })
        .await;
        assert_eq!(reader.remote_parts(7)[0].members, fewer);

        // Without participants the entry and every chunk are deleted.
        let chunks = written.chunks[&7];
        writer
            .write_entries(&store, HashMap::new(), &mut written, max_value)
            .await
            .unwrap();
        assert!(written.chunks.is_empty());
        assert_eq!(store.get(meeting_key(7, "lecture")).await.unwrap(), None);
        for index in 0..chunks {
            let key = chunk_key(7, "lecture", index);
            assert_eq!(store.get(&key).await.unwrap(), None, "{key}");
        }
        read_until(&reader, &mut watch, |reader| {
            reader.remote_parts(7).is_empty()
        })
        .await;

        context.delete_key_value(&bucket).await.unwrap();
    }

    #[test]
    fn meeting_key_parses() {
        assert_eq!(meeting_of_key(&meeting_key(42, "node.1")), Some(42));
        assert_eq!(meeting_of_key(&node_key("node-1")), None);
    }
}
