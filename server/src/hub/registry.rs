//! This node's subscribers per topic, and presence derived from them.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{Notify, mpsc};

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

#[derive(Default)]
pub struct Registry {
    next_id: AtomicU64,
    topics: RwLock<HashMap<String, HashMap<ConnId, Subscriber>>>,
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
            let before = presence_of(entry);
            entry.insert(id, subscriber.clone());
            let after = presence_of(entry);
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
            let before = presence_of(entry);
            entry.remove(&id);
            let after = presence_of(entry);
            let remaining: Vec<Subscriber> = entry.values().cloned().collect();
            if entry.is_empty() {
                topics.remove(topic);
            }
            (before != after).then_some((remaining, after))
        };
        if let Some((subscribers, online)) = presence {
            broadcast(&subscribers, presence_message(topic, &online));
        }
    }

    /// The people online on a topic, one entry per account.
    // TODO(hub): with several nodes this counts only this node's connections.
    pub fn presence(&self, topic: &str) -> Vec<PresenceEntry> {
        let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
        topics
            .get(topic)
            .map(presence_of)
            .unwrap_or_default()
            .into_iter()
            .collect()
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

fn presence_message(topic: &str, online: &BTreeSet<PresenceEntry>) -> Outbound {
    Outbound::Text(Utf8Bytes::from(message_text(&ServerMessage::Presence {
        topic: topic.to_owned(),
        online: online.iter().cloned().collect(),
    })))
}
