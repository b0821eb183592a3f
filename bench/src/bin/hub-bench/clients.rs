//! WebSocket load clients for the Dangwu hub protocol and for Socket.IO's
//! Engine.IO v4 wire protocol, and the shared tally of what they received.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// The topic every client subscribes to.
pub const TOPIC: &str = "org:1";

/// Maximum wait for one client's handshake and subscription.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Wire protocol and credentials of a client.
#[derive(Clone)]
pub enum Protocol {
    /// The Dangwu hub at `/ws?v=1`, with a bearer token.
    Hub { token: String },
    /// Socket.IO at `/socket.io/?EIO=4&transport=websocket`.
    SocketIo,
}

/// Counters shared by all clients of one run. Times are nanoseconds since
/// `base`.
pub struct Tally {
    pub base: Instant,
    /// Clients that finished their handshake and subscription.
    pub ready: AtomicUsize,
    /// Clients whose connection ended after they were ready.
    pub closed: AtomicUsize,
    /// Clients that failed before they were ready.
    pub failed: AtomicUsize,
    /// Events received by all clients together.
    pub events: AtomicU64,
    /// `events` value at which `progress` is notified.
    wake_at: AtomicU64,
    progress: Notify,
    /// The fan-out round being measured, 0 when none is.
    round: AtomicU64,
    round_received: AtomicUsize,
    round_expected: AtomicUsize,
    round_first: AtomicU64,
    round_last: AtomicU64,
    round_done: Notify,
}

/// One fan-out round's result, in nanoseconds after the publish started.
pub struct RoundResult {
    pub first: Duration,
    pub last: Duration,
    pub received: usize,
}

impl Tally {
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            ready: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            events: AtomicU64::new(0),
            wake_at: AtomicU64::new(u64::MAX),
            progress: Notify::new(),
            round: AtomicU64::new(0),
            round_received: AtomicUsize::new(0),
            round_expected: AtomicUsize::new(usize::MAX),
            round_first: AtomicU64::new(u64::MAX),
            round_last: AtomicU64::new(0),
            round_done: Notify::new(),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn on_event(&self, round: u64) {
        let total = self.events.fetch_add(1, Ordering::Relaxed) + 1;
        if total >= self.wake_at.load(Ordering::Relaxed) {
            self.progress.notify_one();
        }
        if round == 0 || round != self.round.load(Ordering::Relaxed) {
            return;
        }
        let now = self.now_ns();
        self.round_first.fetch_min(now, Ordering::Relaxed);
        self.round_last.fetch_max(now, Ordering::Relaxed);
        let received = self.round_received.fetch_add(1, Ordering::Relaxed) + 1;
        if received >= self.round_expected.load(Ordering::Relaxed) {
            self.round_done.notify_one();
        }
    }

    /// Waits until all clients together have received `target` events;
    /// returns false on timeout.
    pub async fn wait_events(&self, target: u64, limit: Duration) -> bool {
        self.wake_at.store(target, Ordering::Relaxed);
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.progress.notified();
            if self.events.load(Ordering::Relaxed) >= target {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.events.load(Ordering::Relaxed) >= target;
            }
        }
    }

    /// Starts measuring round `round`, which `expected` clients must receive.
    pub fn start_round(&self, round: u64, expected: usize) {
        self.round_received.store(0, Ordering::Relaxed);
        self.round_expected.store(expected, Ordering::Relaxed);
        self.round_first.store(u64::MAX, Ordering::Relaxed);
        self.round_last.store(0, Ordering::Relaxed);
        self.round.store(round, Ordering::Relaxed);
    }

    /// Waits for the current round to reach every expected client, or for
    /// the timeout, and returns its times relative to `started_ns`.
    pub async fn finish_round(&self, started_ns: u64, limit: Duration) -> RoundResult {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.round_done.notified();
            let received = self.round_received.load(Ordering::Relaxed);
            if received >= self.round_expected.load(Ordering::Relaxed) {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        self.round.store(0, Ordering::Relaxed);
        let since_start = |ns: u64| Duration::from_nanos(ns.saturating_sub(started_ns));
        RoundResult {
            first: since_start(self.round_first.load(Ordering::Relaxed)),
            last: since_start(self.round_last.load(Ordering::Relaxed)),
            received: self.round_received.load(Ordering::Relaxed),
        }
    }
}

/// Connects one client from `source`, subscribes it to [`TOPIC`], releases
/// `permit` once subscribed, then reads until the connection ends.
pub async fn run_client(
    protocol: Protocol,
    server: SocketAddr,
    source: Ipv4Addr,
    tally: Arc<Tally>,
    permit: OwnedSemaphorePermit,
) {
    let connected =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, connect(&protocol, server, source)).await;
    let mut ws = match connected {
        Ok(Ok(ws)) => ws,
        Ok(Err(error)) => {
            report_failure(&tally, &error);
            return;
        }
        Err(_) => {
            report_failure(&tally, &anyhow::anyhow!("handshake timed out"));
            return;
        }
    };
    tally.ready.fetch_add(1, Ordering::Relaxed);
    drop(permit);
    let result = match protocol {
        Protocol::Hub { .. } => read_hub(&mut ws, &tally).await,
        Protocol::SocketIo => read_socket_io(&mut ws, &tally).await,
    };
    if let Err(error) = result {
        tracing::debug!(%error, "client connection ended with an error");
    }
    tally.closed.fetch_add(1, Ordering::Relaxed);
}

fn report_failure(tally: &Tally, error: &anyhow::Error) {
    // Only the first three failures are printed in full; `failed` counts all.
    if tally.failed.fetch_add(1, Ordering::Relaxed) < 3 {
        eprintln!("client failed to connect: {error:#}");
    }
}

async fn connect(
    protocol: &Protocol,
    server: SocketAddr,
    source: Ipv4Addr,
) -> anyhow::Result<WebSocketStream<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket
        .bind(SocketAddr::new(source.into(), 0))
        .with_context(|| format!("failed to bind source address {source}"))?;
    let stream = socket
        .connect(server)
        .await
        .with_context(|| format!("failed to connect from {source} to {server}"))?;
    stream.set_nodelay(true)?;
    let url = match protocol {
        Protocol::Hub { .. } => format!("ws://{server}/ws?v=1"),
        Protocol::SocketIo => format!("ws://{server}/socket.io/?EIO=4&transport=websocket"),
    };
    let mut request = url.into_client_request()?;
    if let Protocol::Hub { token } = protocol {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
    }
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .context("WebSocket handshake failed")?;
    match protocol {
        Protocol::Hub { .. } => subscribe_hub(&mut ws).await?,
        Protocol::SocketIo => subscribe_socket_io(&mut ws).await?,
    }
    Ok(ws)
}

/// The parts of a hub server message that the clients look at.
#[derive(Deserialize)]
struct HubMessage<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default)]
    data: Option<TickData>,
    #[serde(default)]
    message: Option<String>,
}

/// The data of a benchmark event, on both servers.
#[derive(Deserialize)]
struct TickData {
    round: u64,
}

/// The payload of a Socket.IO `event`.
#[derive(Deserialize)]
struct SocketIoEvent {
    data: TickData,
}

async fn next_text(ws: &mut WebSocketStream<TcpStream>) -> anyhow::Result<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(frame))) => bail!("server closed the connection: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
            None => bail!("connection ended"),
        }
    }
}

async fn subscribe_hub(ws: &mut WebSocketStream<TcpStream>) -> anyhow::Result<()> {
    let subscribe = format!(r#"{{"type":"subscribe","id":"s1","topic":"{TOPIC}"}}"#);
    ws.send(Message::text(subscribe)).await?;
    loop {
        let text = next_text(ws).await?;
        let message: HubMessage =
            serde_json::from_str(&text).with_context(|| format!("invalid hub message {text:?}"))?;
        match message.kind {
            "subscribed" => return Ok(()),
            "error" => bail!(
                "subscribe rejected: {}",
                message.message.unwrap_or_default()
            ),
            _ => {}
        }
    }
}

async fn subscribe_socket_io(ws: &mut WebSocketStream<TcpStream>) -> anyhow::Result<()> {
    let open = next_text(ws).await?;
    if !open.starts_with('0') {
        bail!("expected an Engine.IO open packet, got {open:?}");
    }
    // The namespace accepts events only after its CONNECT reply `40{...}`.
    ws.send(Message::text("40")).await?;
    loop {
        let text = next_text(ws).await?;
        if text.starts_with("40") {
            break;
        } else if text.starts_with("44") {
            bail!("Socket.IO connect rejected: {text}");
        }
    }
    ws.send(Message::text(format!(r#"42["subscribe","{TOPIC}"]"#)))
        .await?;
    loop {
        let text = next_text(ws).await?;
        if text == "2" {
            ws.send(Message::text("3")).await?;
        } else if text.starts_with(r#"42["subscribed""#) {
            return Ok(());
        }
    }
}

async fn read_hub(ws: &mut WebSocketStream<TcpStream>, tally: &Tally) -> anyhow::Result<()> {
    while let Some(message) = ws.next().await {
        match message? {
            Message::Text(text) => {
                let message: HubMessage = serde_json::from_str(text.as_str())?;
                if message.kind == "event" {
                    tally.on_event(message.data.map_or(0, |data| data.round));
                }
            }
            Message::Close(frame) => bail!("server closed the connection: {frame:?}"),
            _ => {}
        }
    }
    Ok(())
}

async fn read_socket_io(ws: &mut WebSocketStream<TcpStream>, tally: &Tally) -> anyhow::Result<()> {
    while let Some(message) = ws.next().await {
        match message? {
            Message::Text(text) => {
                let text = text.as_str();
                if text == "2" {
                    ws.send(Message::text("3")).await?;
                } else if let Some(packet) = text.strip_prefix("42")
                    && let Ok((name, event)) = serde_json::from_str::<(&str, SocketIoEvent)>(packet)
                    && name == "event"
                {
                    tally.on_event(event.data.round);
                }
            }
            Message::Close(frame) => bail!("server closed the connection: {frame:?}"),
            _ => {}
        }
    }
    Ok(())
}
