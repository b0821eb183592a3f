//! Meeting placement across nodes and the choice of node for a participant.
//!
//! With NATS, every node keeps its entries in the lease bucket
//! `{PREFIX}_PLACEMENT` (see [`crate::hub::kv_lease`]):
//! - `node.{node_id}`: the node's URL, media region and total participants
//!   in its media, written every heartbeat while the node runs;
//! - `meeting.{meeting_id}.{node_id}`: the same with the participants of
//!   that meeting on that node, and their entries as the participant list
//!   shows them, written while it has any and deleted when the last one leaves.
//!
//! Both also name the NATS subject where the node takes relay requests for its
//! media engine (see [`super::cascade`]).
//!
//! Entries are rewritten every [`kv_lease::HEARTBEAT`] and at once when a participant
//! joins or leaves, and a stopped node's entries drop out after [`kv_lease::LEASE`].
//! `GET /api/meetings/{id}/node` chooses from the entries every node reads.
//! Without NATS there is one node and it always chooses itself.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};

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
use super::protocol::ParticipantEntry;
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
    /// Participants of the meeting in this node's media.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<ParticipantEntry>,
}

/// Another node's part of a meeting, as its placement entry shows it.
#[derive(Debug, Clone)]
pub struct RemotePart {
    pub node_id: String,
    pub media_subject: Option<String>,
    pub members: Vec<ParticipantEntry>,
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

impl Placement {
    pub fn new(config: &Config) -> Self {
        Self {
            this: NodeEntry {
                node_id: config.node_id.clone(),
                url: config.node_url.clone(),
                region: config.media_region.clone(),
                participants: 0,
            },
            policy: config.node_selection,
            entries: RwLock::default(),
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
        let mut written = HashSet::new();
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
        written: &mut HashSet<i64>,
        failing: &mut bool,
    ) -> Result<Infallible, String> {
        let mut link = kv_lease::link(context, bucket, "meeting placement", failing).await?;
        loop {
            tokio::select! {
                _ = link.heartbeat.tick() => {
                    self.write(&link.store, live, written).await?;
                    // Relays are checked every heartbeat too, so one that failed is
                    // started again.
                    live.check_relays();
                }
                _ = self.changed.notified() => self.write(&link.store, live, written).await?,
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
                    let expired = {
                        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
                        entries.expire(Instant::now())
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
        written: &mut HashSet<i64>,
    ) -> Result<(), String> {
        let counts = live.local_entries().await;
        let total = counts.values().map(|members| members.len() as u64).sum();
        self.put(store, node_key(&self.this.node_id), total, Vec::new())
            .await?;
        // TODO: a meeting entry carries every local participant's entry, so a lecture
        // with thousands of viewers on one node writes a value of several hundred
        // kilobytes each heartbeat, and NATS rejects values above its max_payload.
        for (&meeting_id, members) in &counts {
            let key = meeting_key(meeting_id, &self.this.node_id);
            self.put(store, key, members.len() as u64, members.clone())
                .await?;
            written.insert(meeting_id);
        }
        let emptied: Vec<i64> = written
            .iter()
            .copied()
            .filter(|meeting_id| !counts.contains_key(meeting_id))
            .collect();
        for meeting_id in emptied {
            store
                .delete(meeting_key(meeting_id, &self.this.node_id))
                .await
                .map_err(|error| error.to_string())?;
            written.remove(&meeting_id);
        }
        Ok(())
    }

    async fn put(
        &self,
        store: &kv::Store,
        key: String,
        participants: u64,
        members: Vec<ParticipantEntry>,
    ) -> Result<(), String> {
        let entry = PlacementValue {
            node: NodeEntry {
                participants,
                ..self.this.clone()
            },
            media_subject: self.media_subject.get().cloned(),
            members,
        };
        let value = serde_json::to_vec(&entry).map_err(|error| error.to_string())?;
        store
            .put(key, value.into())
            .await
            .map(|_| ())
            .map_err(|error| error.to_string())
    }

    /// Applies one change from the bucket and returns the meeting whose part on
    /// another node it changed.
    fn read(&self, entry: &kv::Entry) -> Option<i64> {
        let meeting_id = meeting_of_key(&entry.key)
            .filter(|id| entry.key != meeting_key(*id, &self.this.node_id));
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        match entry.operation {
            kv::Operation::Put => match serde_json::from_slice(&entry.value) {
                Ok(value) => entries.insert(entry.key.clone(), value, kv_lease::written_at(entry)),
                Err(error) => {
                    tracing::warn!(key = %entry.key, %error, "invalid placement entry from NATS")
                }
            },
            kv::Operation::Delete | kv::Operation::Purge => {
                entries.remove(&entry.key);
            }
        }
        meeting_id
    }
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
    use super::*;

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

    #[test]
    fn meeting_key_parses() {
        assert_eq!(meeting_of_key(&meeting_key(42, "node.1")), Some(42));
        assert_eq!(meeting_of_key(&node_key("node-1")), None);
    }
}
