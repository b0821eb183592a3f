//! This node's subscribers per topic, and presence derived from them and
//! from the other nodes' presence on the same topics.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use axum::extract::ws::Utf8Bytes;

use super::protocol::{Event, PresenceEntry, ServerMessage, close, event_text, message_text};

/// Something queued for one connection. Messages for many connections are
/// serialized once, before they are queued, and share the text.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A live event and its `event` message, already serialized.
    Event(Arc<Event>, Utf8Bytes),
    /// Any other message, already serialized.
    Text(Utf8Bytes),
}

/// A request to close a connection, with the close code to use.
#[derive(Default)]
pub struct Kick {
    code: AtomicU16,
    notify: Notify,
}

impl Kick {
    pub fn kick(&self, code: u16) {
        if self
            .code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.notify.notify_one();
        }
    }

    /// Waits until kicked and returns the close code.
    pub async fn kicked(&self) -> u16 {
        loop {
            let code = self.code.load(Ordering::Acquire);
            if code != 0 {
                return code;
            }
            self.notify.notified().await;
        }
    }
}

/// One connection's entry on a topic.
#[derive(Clone)]
pub struct Subscriber {
    pub account_id: i64,
    pub name: String,
    pub queue: mpsc::Sender<Outbound>,
    pub kick: Arc<Kick>,
}

/// Connection id, unique within this process.
pub type ConnId = u64;

/// The people online on one topic, one entry per account.
type Online = BTreeSet<PresenceEntry>;

/// Other nodes' presence on one topic: by node id, the people online there
/// and when that node last wrote them.
type RemoteTopic = HashMap<String, (Online, Instant)>;

#[derive(Default)]
pub struct Registry {
    next_id: AtomicU64,
    topics: RwLock<HashMap<String, HashMap<ConnId, Subscriber>>>,
    /// Other nodes' presence by topic. Locked after `topics`, never before.
    remote: RwLock<HashMap<String, RemoteTopic>>,
    /// Topics whose local presence changed, for the task that shares this
    /// node's presence with the others; unset on a single node.
    local_changes: OnceLock<mpsc::UnboundedSender<String>>,
}

impl Registry {
    pub fn next_conn_id(&self) -> ConnId {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Queues an event for every local subscriber of its topic, never
    /// waiting: a full queue kicks that connection as a slow consumer.
    pub fn deliver(&self, event: &Arc<Event>) {
        let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
        let Some(subscribers) = topics.get(&event.topic) else {
            return;
        };
        let text = Utf8Bytes::from(event_text(event));
        for subscriber in subscribers.values() {
            offer_to(subscriber, Outbound::Event(event.clone(), text.clone()));
        }
        metrics::counter!("dangwu_hub_deliveries_total").increment(subscribers.len() as u64);
    }

    /// Adds a subscription and tells the topic's subscribers if the set of
    /// people online changed.
    pub fn subscribe(&self, topic: &str, id: ConnId, subscriber: Subscriber) {
        let presence = {
            let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
            let entry = topics.entry(topic.to_owned()).or_default();
            let before_here = presence_of(entry);
            entry.insert(id, subscriber.clone());
            let after_here = presence_of(entry);
            if before_here != after_here {
                self.local_changed(topic);
            }
            let elsewhere = self.remote_presence(topic);
            let before = union(&before_here, &elsewhere);
            let after = union(&after_here, &elsewhere);
            if before == after {
                // The set is unchanged, but the new subscriber still needs it.
                offer_to(&subscriber, presence_message(topic, &after));
                None
            } else {
                Some((entry.values().cloned().collect::<Vec<_>>(), after))
            }
        };
        if let Some((subscribers, online)) = presence {
            broadcast(&subscribers, presence_message(topic, &online));
        }
    }

    /// Removes one subscription.
    pub fn unsubscribe(&self, topic: &str, id: ConnId) {
        let presence = {
            let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
            let Some(entry) = topics.get_mut(topic) else {
                return;
            };
            let before_here = presence_of(entry);
            entry.remove(&id);
            let after_here = presence_of(entry);
            let remaining: Vec<Subscriber> = entry.values().cloned().collect();
            if entry.is_empty() {
                topics.remove(topic);
            }
            if before_here != after_here {
                self.local_changed(topic);
            }
            let elsewhere = self.remote_presence(topic);
            let before = union(&before_here, &elsewhere);
            let after = union(&after_here, &elsewhere);
            (before != after).then_some((remaining, after))
        };
        if let Some((subscribers, online)) = presence {
            broadcast(&subscribers, presence_message(topic, &online));
        }
    }

    /// Returns the people online on a topic at any node, one entry per account.
    pub fn presence(&self, topic: &str) -> Vec<PresenceEntry> {
        let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
        let here = topics.get(topic).map(presence_of).unwrap_or_default();
        union(&here, &self.remote_presence(topic))
            .into_iter()
            .collect()
    }

    /// Returns the people online on a topic at this node only, which this
    /// node shares with the others.
    pub fn local_presence(&self, topic: &str) -> Online {
        let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
        topics.get(topic).map(presence_of).unwrap_or_default()
    }

    /// Returns the topics with local subscribers and the people online on each.
    pub fn local_topics(&self) -> Vec<(String, Online)> {
        let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
        topics
            .iter()
            .map(|(topic, subscribers)| (topic.clone(), presence_of(subscribers)))
            .collect()
    }

    /// Sends the topic of every later local presence change to `changes`.
    /// Returns false if a receiver was set before.
    pub fn report_local_changes(&self, changes: mpsc::UnboundedSender<String>) -> bool {
        self.local_changes.set(changes).is_ok()
    }

    /// Stores another node's presence on a topic, written at `written`; an
    /// empty set removes it. Local subscribers get the new presence if the
    /// set of people online changed.
    pub fn set_remote(&self, topic: &str, node_id: &str, online: Online, written: Instant) {
        let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
        let mut remote = self.remote.write().unwrap_or_else(|e| e.into_inner());
        let before = remote_union(remote.get(topic));
        if online.is_empty() {
            if let Some(nodes) = remote.get_mut(topic) {
                nodes.remove(node_id);
                if nodes.is_empty() {
                    remote.remove(topic);
                }
            }
        } else {
            remote
                .entry(topic.to_owned())
                .or_default()
                .insert(node_id.to_owned(), (online, written));
        }
        let after = remote_union(remote.get(topic));
        drop(remote);
        notify_topic(&topics, topic, &before, &after);
    }

    /// Drops other nodes' presence not rewritten within `lease` before `now`,
    /// which is how a node that stopped drops out.
    pub fn expire_remote(&self, now: Instant, lease: std::time::Duration) {
        let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
        let mut remote = self.remote.write().unwrap_or_else(|e| e.into_inner());
        let mut changed = Vec::new();
        remote.retain(|topic, nodes| {
            let before = remote_union(Some(nodes));
            let count = nodes.len();
            nodes.retain(|_, (_, written)| now.saturating_duration_since(*written) <= lease);
            if nodes.len() != count {
                changed.push((topic.clone(), before, remote_union(Some(nodes))));
            }
            !nodes.is_empty()
        });
        drop(remote);
        for (topic, before, after) in changed {
            notify_topic(&topics, &topic, &before, &after);
        }
    }

    fn remote_presence(&self, topic: &str) -> Online {
        let remote = self.remote.read().unwrap_or_else(|e| e.into_inner());
        remote_union(remote.get(topic))
    }

    fn local_changed(&self, topic: &str) {
        if let Some(changes) = self.local_changes.get() {
            // The receiver ends only with the process.
            let _ = changes.send(topic.to_owned());
        }
    }

    /// Number of topics with at least one local subscriber.
    pub fn topic_count(&self) -> usize {
        self.topics.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn offer_to(subscriber: &Subscriber, item: Outbound) {
    offer(&subscriber.queue, &subscriber.kick, item);
}

/// Queues an item for one connection without waiting; a full queue kicks the
/// connection as a slow consumer.
pub fn offer(queue: &mpsc::Sender<Outbound>, kick: &Kick, item: Outbound) {
    match queue.try_send(item) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            metrics::counter!("dangwu_hub_slow_consumers_total").increment(1);
            kick.kick(close::SLOW_CONSUMER);
        }
        // The connection is ending and will unsubscribe itself.
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

fn broadcast(subscribers: &[Subscriber], item: Outbound) {
    for subscriber in subscribers {
        offer_to(subscriber, item.clone());
    }
}

fn presence_of(subscribers: &HashMap<ConnId, Subscriber>) -> BTreeSet<PresenceEntry> {
    subscribers
        .values()
        .map(|s| PresenceEntry {
            account_id: s.account_id,
            name: s.name.clone(),
        })
        .collect()
}

fn union(here: &Online, elsewhere: &Online) -> Online {
    here.union(elsewhere).cloned().collect()
}

fn remote_union(nodes: Option<&RemoteTopic>) -> Online {
    nodes
        .into_iter()
        .flat_map(|nodes| nodes.values())
        .flat_map(|(online, _)| online.iter().cloned())
        .collect()
}

/// Sends a topic's local subscribers its presence after other nodes'
/// presence on it changed from `before` to `after`, unless the people online
/// stay the same because they are also connected here.
fn notify_topic(
    topics: &HashMap<String, HashMap<ConnId, Subscriber>>,
    topic: &str,
    before: &Online,
    after: &Online,
) {
    let Some(subscribers) = topics.get(topic) else {
        return;
    };
    let here = presence_of(subscribers);
    let online = union(&here, after);
    if union(&here, before) == online {
        return;
    }
    let message = presence_message(topic, &online);
    for subscriber in subscribers.values() {
        offer_to(subscriber, message.clone());
    }
}

fn presence_message(topic: &str, online: &BTreeSet<PresenceEntry>) -> Outbound {
    Outbound::Text(Utf8Bytes::from(message_text(&ServerMessage::Presence {
        topic: topic.to_owned(),
        online: online.iter().cloned().collect(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(account_id: i64) -> PresenceEntry {
        PresenceEntry {
            account_id,
            name: format!("p{account_id}"),
        }
    }

    /// Returns the account ids of every presence message queued so far.
    fn presences(queue: &mut mpsc::Receiver<Outbound>) -> Vec<Vec<i64>> {
        let mut seen = Vec::new();
        while let Ok(Outbound::Text(text)) = queue.try_recv() {
            let message: serde_json::Value = serde_json::from_str(&text).unwrap();
            let online = message["online"].as_array().unwrap();
            seen.push(
                online
                    .iter()
                    .map(|p| p["account_id"].as_i64().unwrap())
                    .collect(),
            );
        }
        seen
    }

    #[test]
    fn remote_presence_joins_and_expires() {
        let registry = Registry::default();
        let (queue, mut received) = mpsc::channel(16);
        let subscriber = Subscriber {
            account_id: 1,
            name: "p1".to_owned(),
            queue,
            kick: Arc::default(),
        };
        registry.subscribe("document:1", 1, subscriber);
        assert_eq!(presences(&mut received), [vec![1]]);

        let start = Instant::now();
        let elsewhere: Online = [person(2), person(1)].into();
        registry.set_remote("document:1", "b", elsewhere.clone(), start);
        assert_eq!(presences(&mut received), [vec![1, 2]]);
        assert_eq!(registry.presence("document:1").len(), 2);
        assert_eq!(registry.local_presence("document:1").len(), 1);

        // The same set again changes nothing, so nothing is sent.
        registry.set_remote("document:1", "b", elsewhere, start);
        assert!(presences(&mut received).is_empty());

        let lease = std::time::Duration::from_secs(15);
        registry.expire_remote(start + lease, lease);
        assert!(presences(&mut received).is_empty(), "expired too early");
        registry.expire_remote(start + lease * 2, lease);
        assert_eq!(presences(&mut received), [vec![1]]);
    }
}
