//! The tokio task that drives one shard: it takes the shard's packets from the receive
//! tasks (`engine::io`), runs commands from the [`crate::Sfu`] handle, feeds time to the
//! sans-IO core, and sends over the node's shared UDP socket and ICE-TCP connections.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::shared::TransportProtocol;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::RateLimitedLog;
use super::io::Inbound;
use super::shard::Shard;
use crate::event::SfuEvent;

/// Work sent to a shard task: a closure run with exclusive access to the shard.
pub type Command = Box<dyn FnOnce(&mut Shard, Instant) + Send>;

/// Used as the deadline when the shard has no timer pending.
const IDLE_WAIT: Duration = Duration::from_secs(3600);

/// The sending side of a shard: the shared UDP socket and the writers of the ICE-TCP
/// connections routed to this shard.
struct Output {
    udp: Arc<UdpSocket>,
    tcp: HashMap<SocketAddr, mpsc::Sender<Bytes>>,
    tcp_drops: RateLimitedLog,
}

/// Runs a shard until it is asked to stop or its command channel closes.
pub async fn run(
    mut shard: Shard,
    udp: Arc<UdpSocket>,
    mut inbound: mpsc::Receiver<Inbound>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<SfuEvent>,
) {
    let mut output = Output {
        udp,
        tcp: HashMap::new(),
        tcp_drops: RateLimitedLog::default(),
    };
    while !shard.stopping {
        drain(&mut shard, &mut output, &events).await;

        let deadline = shard
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + IDLE_WAIT);
        let sleep = tokio::time::sleep_until(deadline.into());

        tokio::select! {
            received = inbound.recv() => match received {
                Some(received) => handle_inbound(&mut shard, &mut output, received),
                None => break,
            },
            command = commands.recv() => match command {
                Some(command) => command(&mut shard, Instant::now()),
                None => break,
            },
            () = sleep => shard.handle_timeout(Instant::now()),
        }
    }

    let now = Instant::now();
    let rooms: Vec<_> = shard.rooms.keys().cloned().collect();
    for room in rooms {
        let _ = shard.close_room(now, &room);
    }
    drain(&mut shard, &mut output, &events).await;
    tracing::info!(udp = %shard.local.udp, "shard stopped");
}

fn handle_inbound(shard: &mut Shard, output: &mut Output, inbound: Inbound) {
    let now = Instant::now();
    match inbound {
        Inbound::Udp { from, datagram } => shard.handle_datagram(now, from, &datagram),
        Inbound::TcpOpened { from, writer } => {
            output.tcp.insert(from, writer);
        }
        Inbound::Tcp { from, packet } => shard.handle_tcp_packet(now, from, &packet),
        Inbound::TcpClosed { from } => {
            output.tcp.remove(&from);
            shard.tcp_closed(from);
        }
    }
}

async fn drain(shard: &mut Shard, output: &mut Output, events: &mpsc::UnboundedSender<SfuEvent>) {
    while let Some(transmit) = shard.poll_transmit() {
        match transmit.protocol {
            TransportProtocol::TCP => {
                let sent = output
                    .tcp
                    .get(&transmit.to)
                    .map(|writer| writer.try_send(transmit.payload.freeze()));
                match sent {
                    Some(Ok(())) => {}
                    Some(Err(_)) => output.tcp_drops.warn(
                        "ICE-TCP send queue full or closed, packet dropped",
                        transmit.to,
                    ),
                    None => output
                        .tcp_drops
                        .warn("no ICE-TCP connection, packet dropped", transmit.to),
                }
            }
            _ => {
                if let Err(err) = output.udp.send_to(&transmit.payload, transmit.to).await {
                    shard.drops.warn("send failed", err);
                }
            }
        }
    }
    // Dropping a connection's writer makes its task close the connection.
    while let Some(from) = shard.poll_closed_connection() {
        output.tcp.remove(&from);
    }
    while let Some(event) = shard.poll_event() {
        // The receiver may be gone while the engine shuts down; events are then dropped.
        let _ = events.send(event);
    }
}
