//! The real-time hub: WebSocket connections, topics, stored events with
//! per-topic sequence numbers, resume, presence and slow-consumer control.
//!
//! Features change state and append events in one transaction
//! ([`store::append`]), then hand the committed events to [`Hub::publish`].
//! Publishing goes through a [`Transport`]: the in-process one delivers to
//! this node's connections directly; the NATS one ([`nats`]) also fans out
//! to every other node sharing the database, which calls
//! [`Registry::deliver`] there, without any feature changing.
//!
//! Every connection has a bounded queue. Delivery never waits on it: a full
//! queue marks the connection as a slow consumer, which then closes with
//! [`protocol::close::SLOW_CONSUMER`] while every other connection goes on.

mod connection;
pub mod kv_lease;
pub mod nats;
pub mod presence;
pub mod protocol;
pub mod registry;
pub mod store;
pub mod topic;

pub use connection::router;
pub use registry::Registry;

use std::sync::Arc;
use std::time::Duration;

use protocol::Event;

/// Connection limits and timers.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Interval of server pings.
    pub heartbeat: Duration,
    /// A connection that sends nothing, not even a pong, for this long is
    /// closed as dead.
    pub heartbeat_timeout: Duration,
    /// Outbound items queued per connection before it is cut as a slow
    /// consumer.
    pub queue_capacity: usize,
    /// Longest wait for one frame to leave before the client is cut as a
    /// slow consumer.
    pub send_timeout: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(15),
            heartbeat_timeout: Duration::from_secs(45),
            queue_capacity: 1024,
            send_timeout: Duration::from_secs(10),
        }
    }
}

/// Delivers committed events to every node's subscribers.
pub trait Transport: Send + Sync {
    fn send(&self, event: Arc<Event>);
}

/// Delivers straight to this node's registry: the single-node transport.
pub struct LocalTransport {
    registry: Arc<Registry>,
}

impl Transport for LocalTransport {
    fn send(&self, event: Arc<Event>) {
        self.registry.deliver(&event);
    }
}

/// The hub as the rest of the server sees it.
#[derive(Clone)]
pub struct Hub {
    pub registry: Arc<Registry>,
    pub config: Arc<HubConfig>,
    transport: Arc<dyn Transport>,
    /// The broker link of a multi-node hub.
    nats: Option<Arc<nats::NatsLink>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::local()
    }
}

impl Hub {
    /// A hub whose events reach only this process's connections.
    pub fn local() -> Self {
        Self::local_with(HubConfig::default())
    }

    /// A single-node hub with the given limits.
    pub fn local_with(config: HubConfig) -> Self {
        let registry = Arc::new(Registry::default());
        let transport = Arc::new(LocalTransport {
            registry: registry.clone(),
        });
        Self {
            registry,
            config: Arc::new(config),
            transport,
            nats: None,
        }
    }

    /// A hub whose events reach the connections of every node that uses the
    /// same NATS stream and database.
    pub async fn with_nats(
        config: HubConfig,
        nats: &crate::config::NatsConfig,
        node_id: &str,
    ) -> Result<Self, nats::NatsError> {
        let registry = Arc::new(Registry::default());
        let (transport, link) = nats::start(nats, node_id, registry.clone()).await?;
        Ok(Self {
            registry,
            config: Arc::new(config),
            transport: Arc::new(transport),
            nats: Some(Arc::new(link)),
        })
    }

    /// Whether events can reach other nodes: always true for a single-node
    /// hub, and true for a multi-node hub while it is connected to NATS.
    pub fn broker_connected(&self) -> bool {
        self.nats.as_ref().is_none_or(|link| link.is_connected())
    }

    /// Returns the NATS link of a multi-node hub, for state that nodes share
    /// besides events.
    pub fn nats(&self) -> Option<&nats::NatsLink> {
        self.nats.as_deref()
    }

    /// Publishes events that were stored in a transaction that has committed.
    pub fn publish(&self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            self.transport.send(Arc::new(event));
        }
    }
}
