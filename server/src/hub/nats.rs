//! The multi-node hub transport over NATS JetStream.
//!
//! Every node publishes the events it commits to the subject
//! `{prefix}.hub.{topic}` of one JetStream stream and reads the stream back
//! through an ordered consumer, handing other nodes' events to its
//! [`Registry`]. A node's own events go to its local subscribers directly;
//! it skips their copies from the stream by the `Dangwu-Node` header.
//!
//! Order and completeness come from the database, not from NATS: sequence
//! numbers are assigned in the committing transaction, and a connection that
//! detects a gap fills it from the event log before sending. So an event that
//! NATS loses (the broker was down, the publish timed out) reaches a
//! subscriber late, with the topic's next event or at its next resume, but
//! never out of order. The stream keeps events for [`STREAM_MAX_AGE`], so a
//! node whose broker connection dropped picks up where it stopped.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::Transport;
use super::protocol::Event;
use super::registry::Registry;
use crate::config::NatsConfig;

/// Header naming the node that published an event.
const NODE_HEADER: &str = "Dangwu-Node";
/// How long the stream keeps events. Clients older than this resume from
/// the database anyway; the stream only bridges broker reconnects.
pub const STREAM_MAX_AGE: Duration = Duration::from_secs(600);
/// Committed events waiting to be published; past this they are dropped
/// from NATS (other nodes' clients then catch up from the database).
const OUTGOING_QUEUE: usize = 65_536;
/// Publishes whose acknowledgement from JetStream is awaited at once.
const MAX_IN_FLIGHT: usize = 256;
/// Pause before recreating a consumer that failed.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Maximum wait at start for the first consumer.
const FIRST_CONSUMER_TIMEOUT: Duration = Duration::from_secs(10);

/// A failure to set up the NATS link at start.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("failed to connect to NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    #[error("failed to create the JetStream stream {stream} (is JetStream enabled?): {source}")]
    Stream {
        stream: String,
        source: jetstream::context::CreateStreamError,
    },
}

/// Delivers to this node's registry at once and queues the event for NATS.
pub struct NatsTransport {
    registry: Arc<Registry>,
    outgoing: mpsc::Sender<Arc<Event>>,
}

impl Transport for NatsTransport {
    fn send(&self, event: Arc<Event>) {
        self.registry.deliver(&event);
        if self.outgoing.try_send(event).is_err() {
            metrics::counter!("dangwu_hub_nats_dropped_total").increment(1);
        }
    }
}

/// The running link: the client, for readiness checks, the JetStream
/// context and prefix for other shared state, and its tasks.
pub struct NatsLink {
    client: async_nats::Client,
    context: jetstream::Context,
    prefix: String,
    tasks: Vec<JoinHandle<()>>,
}

impl NatsLink {
    /// Returns the NATS client of the link, for request and reply.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Returns the JetStream context of the link.
    pub fn context(&self) -> &jetstream::Context {
        &self.context
    }

    /// Returns the first token of this deployment's subjects and bucket names.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Returns whether the client is connected to a NATS server right now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

impl Drop for NatsLink {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Returns the JetStream stream name for a prefix: dots become '_', in upper case.
pub fn stream_name(prefix: &str) -> String {
    format!("{}_HUB", prefix.replace('.', "_").to_ascii_uppercase())
}

fn subject(prefix: &str, topic: &str) -> String {
    format!("{prefix}.hub.{topic}")
}

/// Connects, creates the stream if it is missing and starts publishing and
/// receiving.
pub async fn start(
    config: &NatsConfig,
    node_id: &str,
    registry: Arc<Registry>,
) -> Result<(NatsTransport, NatsLink), NatsError> {
    let client = async_nats::ConnectOptions::new()
        .name(format!("dangwu {node_id}"))
        .connect(config.url.as_str())
        .await?;
    let context = jetstream::new(client.clone());
    let name = stream_name(&config.prefix);
    let stream_config = stream::Config {
        name: name.clone(),
        subjects: vec![subject(&config.prefix, ">")],
        max_age: STREAM_MAX_AGE,
        storage: stream::StorageType::Memory,
        ..Default::default()
    };
    context
        .get_or_create_stream(stream_config.clone())
        .await
        .map_err(|source| NatsError::Stream {
            stream: name.clone(),
            source,
        })?;
    tracing::info!(stream = %name, node_id, "hub events shared through NATS");

    let (outgoing_tx, outgoing_rx) = mpsc::channel(OUTGOING_QUEUE);
    let (reading_tx, reading_rx) = oneshot::channel();
    let receiver = tokio::spawn(receive_loop(
        context.clone(),
        stream_config,
        node_id.to_owned(),
        registry.clone(),
        reading_tx,
    ));
    // Other nodes' events reach this node's clients only once the consumer
    // exists, so the node waits for it before it reports ready.
    if tokio::time::timeout(FIRST_CONSUMER_TIMEOUT, reading_rx)
        .await
        .is_err()
    {
        tracing::warn!(
            "NATS hub consumer not created within {FIRST_CONSUMER_TIMEOUT:?}, still trying"
        );
    }
    let publisher = tokio::spawn(publish_loop(
        context.clone(),
        config.prefix.clone(),
        node_id.to_owned(),
        outgoing_rx,
    ));
    let (changes_tx, changes_rx) = mpsc::unbounded_channel();
    registry.report_local_changes(changes_tx);
    let presence = tokio::spawn(super::presence::run(
        context.clone(),
        config.prefix.clone(),
        node_id.to_owned(),
        registry.clone(),
        changes_rx,
    ));
    let transport = NatsTransport {
        registry,
        outgoing: outgoing_tx,
    };
    let link = NatsLink {
        client,
        context,
        prefix: config.prefix.clone(),
        tasks: vec![publisher, receiver, presence],
    };
    Ok((transport, link))
}

/// Publishes queued events in commit order, with up to [`MAX_IN_FLIGHT`]
/// acknowledgements outstanding.
async fn publish_loop(
    context: jetstream::Context,
    prefix: String,
    node_id: String,
    mut outgoing: mpsc::Receiver<Arc<Event>>,
) {
    let mut pending = FuturesUnordered::new();
    let mut failing = false;
    loop {
        tokio::select! {
            Some(result) = pending.next(), if !pending.is_empty() => {
                report_publish(result, &mut failing);
            }
            event = outgoing.recv(), if pending.len() < MAX_IN_FLIGHT => {
                let Some(event) = event else { break };
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(NODE_HEADER, node_id.as_str());
                let payload = match serde_json::to_vec(&*event) {
                    Ok(payload) => payload,
                    Err(error) => {
                        tracing::error!(topic = %event.topic, seq = event.seq, %error, "failed to encode hub event");
                        continue;
                    }
                };
                let published = context
                    .publish_with_headers(subject(&prefix, &event.topic), headers, payload.into())
                    .await;
                let topic = event.topic.clone();
                let seq = event.seq;
                pending.push(async move {
                    let result = match published {
                        Ok(ack) => ack.await.map(|_| ()).map_err(|error| error.to_string()),
                        Err(error) => Err(error.to_string()),
                    };
                    result.map_err(|error| (topic, seq, error))
                });
            }
        }
    }
}

/// Counts a publish outcome and logs the first failure of a run of them and
/// the recovery after it, not every failure.
fn report_publish(result: Result<(), (String, i64, String)>, failing: &mut bool) {
    match result {
        Ok(()) => {
            metrics::counter!("dangwu_hub_nats_published_total").increment(1);
            if *failing {
                *failing = false;
                tracing::info!("publishing hub events to NATS works again");
            }
        }
        Err((topic, seq, error)) => {
            metrics::counter!("dangwu_hub_nats_publish_failures_total").increment(1);
            if !*failing {
                *failing = true;
                tracing::warn!(%topic, seq, %error,
                    "failed to publish hub event to NATS; other nodes read it from the database");
            }
        }
    }
}

/// Reads every event from the stream and delivers other nodes' events here.
///
/// A consumer that ends is recreated after the last stream sequence seen.
/// The stream is created again when it is missing, as it is after a restart
/// of a NATS server that kept it in memory. A new stream numbers its
/// messages from 1 again, so reading then starts with new messages.
async fn receive_loop(
    context: jetstream::Context,
    config: stream::Config,
    node_id: String,
    registry: Arc<Registry>,
    reading: oneshot::Sender<()>,
) {
    let mut reading = Some(reading);
    let mut position: Option<(time::OffsetDateTime, u64)> = None;
    loop {
        let stream = match context.get_or_create_stream(config.clone()).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, stream = %config.name, "failed to open the NATS hub stream, retrying");
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
        };
        let created = stream.cached_info().created;
        let deliver_policy = match position {
            Some((read_from, last)) if read_from == created => {
                consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: last + 1,
                }
            }
            _ => consumer::DeliverPolicy::New,
        };
        let consumer_config = consumer::pull::OrderedConfig {
            deliver_policy,
            ..Default::default()
        };
        let messages = match stream.create_consumer(consumer_config).await {
            Ok(consumer) => consumer.messages().await.map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "failed to create the NATS hub consumer, retrying");
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
        };
        if let Some(reading) = reading.take() {
            let _ = reading.send(());
        }
        while let Some(message) = messages.next().await {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "NATS hub consumer failed, recreating it");
                    break;
                }
            };
            if let Ok(info) = message.info() {
                position = Some((created, info.stream_sequence));
            }
            receive(&message, &node_id, &registry);
        }
        tokio::time::sleep(RETRY_DELAY).await;
    }
}

fn receive(message: &async_nats::Message, node_id: &str, registry: &Registry) {
    let sender = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(NODE_HEADER))
        .map(|value| value.as_str());
    if sender == Some(node_id) {
        return;
    }
    match serde_json::from_slice::<Event>(&message.payload) {
        Ok(event) => {
            metrics::counter!("dangwu_hub_nats_received_total").increment(1);
            registry.deliver(&Arc::new(event));
        }
        Err(error) => {
            tracing::warn!(subject = %message.subject, %error, "invalid hub event from NATS");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_name_from_prefix() {
        assert_eq!(stream_name("dangwu"), "DANGWU_HUB");
        assert_eq!(stream_name("prov.js-1"), "PROV_JS-1_HUB");
    }

    #[test]
    fn subject_contains_topic() {
        assert_eq!(subject("dangwu", "meeting:9"), "dangwu.hub.meeting:9");
    }
}
