//! Node liveness over NATS, for moving a meeting off a node that died.
//!
//! Every node replies to requests on the subject `{prefix}.alive.{node}`
//! (the node id escaped with [`kv_lease::key_token`]). NATS replies to a
//! request on a subject without subscribers with "no responders" at once, so a node
//! whose process died, and whose NATS connection closed with it, is known
//! to be gone within one round trip. A node that hangs or is cut off from
//! NATS is known to be gone after [`CHECK_TIMEOUT`].
//!
//! Two things use the check:
//! - `GET /api/meetings/{id}/node?unreachable=NODE`: a page that lost its
//!   hub socket or media on NODE names it. When NODE does not reply, the
//!   node handling the request drops NODE's placement entries from its own
//!   view and chooses again, without waiting for the lease. A node that
//!   replies is kept, so a client cannot evict a healthy node.
//! - The sweep of media connections (`meeting_live_connections`): a row of
//!   a node that is neither in the placement view nor replying is removed,
//!   which closes the attendance of people who did not come back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::{Client, RequestErrorKind};
use futures_util::StreamExt;
use tokio::time::Instant;

use super::placement::{NodeChoice, NodeEntry};
use crate::config::NodeSelection;
use crate::hub::kv_lease;
use crate::state::AppState;

/// How long a node has to reply to a liveness request.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the result of one check is reused, so that every page of a
/// meeting reporting the same node costs one request.
const CHECK_REUSE: Duration = Duration::from_secs(2);
/// How often the sweep looks for connection rows of nodes that are gone.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// How long a node must be gone before the sweep removes its connection
/// rows, so that people moving to another node stay present throughout.
pub const PURGE_GRACE: Duration = kv_lease::LEASE;

/// Returns the liveness subject of a node.
pub fn subject(prefix: &str, node_id: &str) -> String {
    format!("{prefix}.alive.{}", kv_lease::key_token(node_id))
}

/// Sends liveness requests to other nodes and caches the results briefly.
pub struct Liveness {
    client: Client,
    prefix: String,
    this_node: String,
    /// Last check per node: when it ran and whether the node replied.
    checked: Mutex<HashMap<String, (Instant, bool)>>,
}

impl Liveness {
    pub fn new(client: Client, prefix: String, this_node: String) -> Self {
        Self {
            client,
            prefix,
            this_node,
            checked: Mutex::default(),
        }
    }

    /// Replies to liveness requests to this node until the task is aborted. The
    /// client subscribes again by itself after a reconnect.
    pub async fn respond(self: std::sync::Arc<Self>) {
        let subject = subject(&self.prefix, &self.this_node);
        loop {
            let mut requests = match self.client.subscribe(subject.clone()).await {
                Ok(requests) => requests,
                Err(error) => {
                    tracing::warn!(%subject, %error, "subscribing to liveness requests failed, retrying");
                    tokio::time::sleep(kv_lease::RETRY_DELAY).await;
                    continue;
                }
            };
            while let Some(request) = requests.next().await {
                let Some(reply) = request.reply else {
                    continue;
                };
                let answer = self.this_node.clone().into_bytes().into();
                if let Err(error) = self.client.publish(reply, answer).await {
                    tracing::warn!(%subject, %error, "replying to a liveness request failed");
                }
            }
            tracing::warn!(%subject, "liveness subscription ended, subscribing again");
            tokio::time::sleep(kv_lease::RETRY_DELAY).await;
        }
    }

    /// Checks whether a node is gone: it did not reply within
    /// [`CHECK_TIMEOUT`], or NATS reports no subscriber on its subject.
    /// Any other failure (this node lost NATS, say) counts as alive, because
    /// nothing was learned about the other node.
    pub async fn is_gone(&self, node_id: &str) -> bool {
        if node_id == self.this_node {
            return false;
        }
        if !crate::config::valid_node_id(node_id) {
            // No node runs under such an id, such as the '' of connection
            // rows from before nodes were recorded.
            return true;
        }
        if let Some(&(at, alive)) = self.lock_checked().get(node_id)
            && at.elapsed() < CHECK_REUSE
        {
            return !alive;
        }
        let request = async_nats::Request::new().timeout(Some(CHECK_TIMEOUT));
        let alive = match self
            .client
            .send_request(subject(&self.prefix, node_id), request)
            .await
        {
            Ok(_) => true,
            Err(error) => match error.kind() {
                RequestErrorKind::NoResponders | RequestErrorKind::TimedOut => false,
                _ => {
                    tracing::warn!(node_id, %error, "liveness request failed");
                    true
                }
            },
        };
        let mut checked = self.lock_checked();
        // Results too old to reuse go, so that many distinct names cannot grow the map.
        checked.retain(|_, (at, _)| at.elapsed() < CHECK_REUSE);
        checked.insert(node_id.to_owned(), (Instant::now(), alive));
        drop(checked);
        if !alive {
            tracing::info!(node_id, "node did not reply to the liveness request");
        }
        !alive
    }

    fn lock_checked(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, bool)>> {
        self.checked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Chooses the node for a meeting after a page reported `unreachable`.
///
/// When that node is gone, its placement entries leave this node's view at
/// once. If no live node hosts the meeting then, every node that receives
/// such a report picks the same replacement. It is the node with the
/// highest rendezvous hash of meeting and node id, among the caller's region
/// under `region` when that region has a node. So the pages of one meeting
/// meet on one node whichever node they ask, instead of each going to the
/// least loaded node as seen by the node they asked.
///
/// NOTE: the nodes agree only when their placement views agree. Within a
/// heartbeat of a node starting, two nodes may pick different replacements,
/// and the meeting stays split until its pages ask again.
pub async fn choose_after_loss(
    state: &AppState,
    meeting_id: i64,
    region: Option<&str>,
    unreachable: &str,
) -> NodeChoice {
    let placement = state.live.placement();
    let Some(liveness) = state.live.liveness() else {
        return placement.select(meeting_id, region);
    };
    // A name this node does not list needs no request: nothing of it would be forgotten.
    let listed = placement
        .nodes()
        .iter()
        .any(|node| node.node_id == unreachable);
    if !listed || !liveness.is_gone(unreachable).await {
        return placement.select(meeting_id, region);
    }
    placement.forget_node(unreachable);
    let choice = placement.select(meeting_id, region);
    if choice.hosts_meeting {
        return choice;
    }

    let nodes = placement.nodes();
    let region = region.or(state.config.media_region.as_deref());
    let in_region: Vec<&NodeEntry> = nodes
        .iter()
        .filter(|node| region.is_some() && node.region.as_deref() == region)
        .collect();
    let candidates: Vec<&NodeEntry> =
        if state.config.node_selection == NodeSelection::Region && !in_region.is_empty() {
            in_region
        } else {
            nodes.iter().collect()
        };

    let Some(node) = candidates.into_iter().max_by_key(|node| {
        (
            rendezvous_hash(meeting_id, &node.node_id),
            node.node_id.clone(),
        )
    }) else {
        return choice;
    };
    NodeChoice {
        this_node: node.node_id == state.config.node_id,
        hosts_meeting: false,
        node: node.clone(),
    }
}

/// Returns the 64-bit FNV-1a hash of a meeting id and a node id, the same
/// on every node and build.
fn rendezvous_hash(meeting_id: i64, node_id: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = meeting_id
        .to_be_bytes()
        .into_iter()
        .chain([b'/'])
        .chain(node_id.bytes());
    bytes.fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// Removes the media connection rows of nodes that are gone, every
/// [`SWEEP_INTERVAL`] until the task is aborted. A node counts as gone when
/// it has no placement entry and does not reply to a liveness request, and
/// its rows go once it has been gone for [`PURGE_GRACE`].
pub async fn sweep_connections(state: AppState) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut gone_since: HashMap<String, Instant> = HashMap::new();
    loop {
        ticks.tick().await;
        let Some(liveness) = state.live.liveness() else {
            return;
        };
        let nodes = match crate::meetings::presence::connection_nodes(&state).await {
            Ok(nodes) => nodes,
            Err(error) => {
                tracing::warn!(%error, "listing the nodes of media connections failed");
                continue;
            }
        };
        let placed: Vec<String> = state
            .live
            .placement()
            .nodes()
            .into_iter()
            .map(|node| node.node_id)
            .collect();
        gone_since.retain(|node_id, _| nodes.contains(node_id));
        for node_id in nodes {
            if node_id == state.config.node_id
                || placed.contains(&node_id)
                || !liveness.is_gone(&node_id).await
            {
                gone_since.remove(&node_id);
                continue;
            }
            let since = *gone_since
                .entry(node_id.clone())
                .or_insert_with(Instant::now);
            if since.elapsed() >= PURGE_GRACE {
                crate::meetings::presence::purge_node(&state, &node_id).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_escapes_node_id() {
        assert_eq!(subject("dangwu", "node-1"), "dangwu.alive.node-1");
        assert_eq!(subject("prov.a", "n.2"), "prov.a.alive.n=2E2");
    }

    #[test]
    fn rendezvous_hash_is_stable() {
        assert_eq!(rendezvous_hash(1, "a"), rendezvous_hash(1, "a"));
        assert_ne!(rendezvous_hash(1, "a"), rendezvous_hash(1, "b"));
        assert_ne!(rendezvous_hash(1, "a"), rendezvous_hash(2, "a"));
    }
}
