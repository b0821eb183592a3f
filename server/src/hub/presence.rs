//! Presence across nodes, through the lease bucket `{PREFIX}_PRESENCE`.
//!
//! Each node writes the people online on each topic at this node under the
//! key `{topic}.{node_id}` (both escaped by [`kv_lease::key_token`]) when
//! that set changes, deletes the key when the set becomes empty, and
//! rewrites all its keys every [`kv_lease::HEARTBEAT`]. Every node watches
//! the bucket and hands the other nodes' sets to its [`Registry`], which
//! sends subscribers the union. A node that stops drops out of every
//! presence within [`kv_lease::LEASE`] plus one [`kv_lease::SWEEP`].

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::kv_lease::{self, LEASE};
use super::protocol::PresenceEntry;
use super::registry::Registry;

/// Returns the presence bucket's name for a NATS prefix.
pub fn bucket_name(prefix: &str) -> String {
    kv_lease::bucket_name(prefix, "PRESENCE")
}

fn key(topic: &str, node_id: &str) -> String {
    format!(
        "{}.{}",
        kv_lease::key_token(topic),
        kv_lease::key_token(node_id)
    )
}

/// Splits a key into topic and node id.
fn parse_key(key: &str) -> Option<(String, String)> {
    let (topic, node_id) = key.split_once('.')?;
    Some((
        kv_lease::parse_key_token(topic)?,
        kv_lease::parse_key_token(node_id)?,
    ))
}

/// Shares this node's presence and reads the other nodes' until the task is
/// aborted. A failed bucket, watcher or write starts the cycle again after
/// [`kv_lease::RETRY_DELAY`], rewriting every local set, so presence recovers after
/// NATS restarts.
pub async fn run(
    context: jetstream::Context,
    prefix: String,
    node_id: String,
    registry: Arc<Registry>,
    mut changes: mpsc::UnboundedReceiver<String>,
) {
    let bucket = bucket_name(&prefix);
    let mut failing = false;
    loop {
        let error = match share(
            &context,
            &bucket,
            &node_id,
            &registry,
            &mut changes,
            &mut failing,
        )
        .await
        {
            Ok(never) => match never {},
            Err(error) => error,
        };
        kv_lease::retry_after(&bucket, "presence", &error, &mut failing).await;
    }
}

/// Runs one cycle of [`run`]: opens the bucket and its watcher and serves them
/// until either fails.
async fn share(
    context: &jetstream::Context,
    bucket: &str,
    node_id: &str,
    registry: &Registry,
    changes: &mut mpsc::UnboundedReceiver<String>,
    failing: &mut bool,
) -> Result<Infallible, String> {
    let mut link = kv_lease::link(context, bucket, "presence", failing).await?;
    loop {
        tokio::select! {
            _ = link.heartbeat.tick() => {
                for (topic, online) in registry.local_topics() {
                    write(&link.store, &topic, node_id, &online).await?;
                }
            }
            changed = changes.recv() => {
                let Some(topic) = changed else {
                    return Err("the registry stopped reporting changes".to_owned());
                };
                let online = registry.local_presence(&topic);
                write(&link.store, &topic, node_id, &online).await?;
            }
            entry = link.watch.next() => match entry {
                Some(Ok(entry)) => read(&entry, node_id, registry),
                Some(Err(error)) => return Err(error.to_string()),
                None => return Err("the watcher ended".to_owned()),
            },
            _ = link.sweep.tick() => registry.expire_remote(Instant::now(), LEASE),
        }
    }
}

/// Writes this node's set on a topic, or deletes its key when the set is empty.
async fn write(
    store: &kv::Store,
    topic: &str,
    node_id: &str,
    online: &BTreeSet<PresenceEntry>,
) -> Result<(), String> {
    let key = key(topic, node_id);
    if online.is_empty() {
        return store.delete(&key).await.map_err(|error| error.to_string());
    }
    let value = serde_json::to_vec(online).map_err(|error| error.to_string())?;
    store
        .put(&key, value.into())
        .await
        .map(|_| ())
        .map_err(|error| error.to_string())
}

fn read(entry: &kv::Entry, node_id: &str, registry: &Registry) {
    let Some((topic, writer)) = parse_key(&entry.key) else {
        tracing::warn!(key = %entry.key, "invalid key in the presence bucket");
        return;
    };
    if writer == node_id {
        return;
    }
    let online = match entry.operation {
        kv::Operation::Put => match serde_json::from_slice(&entry.value) {
            Ok(online) => online,
            Err(error) => {
                tracing::warn!(key = %entry.key, %error, "invalid presence from NATS");
                return;
            }
        },
        kv::Operation::Delete | kv::Operation::Purge => BTreeSet::new(),
    };
    registry.set_remote(&topic, &writer, online, kv_lease::written_at(entry));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips() {
        let key = key("meeting:9", "node.1");
        assert_eq!(key, "meeting=3A9.node=2E1");
        assert_eq!(
            parse_key(&key),
            Some(("meeting:9".to_owned(), "node.1".to_owned()))
        );
    }
}
