//! The tokio task that drives one shard: it owns the shard's UDP socket, runs commands
//! from the [`crate::Sfu`] handle, and feeds time to the sans-IO core.

use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::shard::Shard;
use crate::event::SfuEvent;

/// Work sent to a shard task: a closure run with exclusive access to the shard.
pub type Command = Box<dyn FnOnce(&mut Shard, Instant) + Send>;

/// Largest datagram accepted; WebRTC stacks keep packets under 1500 bytes.
const RECEIVE_BUFFER: usize = 2048;

/// Used as the deadline when the shard has no timer pending.
const IDLE_WAIT: Duration = Duration::from_secs(3600);

/// Runs a shard until it is asked to stop or its command channel closes.
pub async fn run(
    mut shard: Shard,
    socket: UdpSocket,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<SfuEvent>,
) {
    let mut buffer = vec![0u8; RECEIVE_BUFFER];
    while !shard.stopping {
        drain(&mut shard, &socket, &events).await;

        let deadline = shard
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + IDLE_WAIT);
        let sleep = tokio::time::sleep_until(deadline.into());

        tokio::select! {
            received = socket.recv_from(&mut buffer) => match received {
                Ok((len, from)) => shard.handle_datagram(Instant::now(), from, &buffer[..len]),
                // On Linux an ICMP port unreachable for an earlier send surfaces here; the
                // socket stays usable.
                Err(err) => tracing::debug!(error = %err, "receive failed"),
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
    drain(&mut shard, &socket, &events).await;
    tracing::info!(addr = %shard.local_addr, "shard stopped");
}

async fn drain(shard: &mut Shard, socket: &UdpSocket, events: &mpsc::UnboundedSender<SfuEvent>) {
    while let Some((to, datagram)) = shard.poll_transmit() {
        if let Err(err) = socket.send_to(&datagram, to).await {
            shard.drops.warn("send failed", err);
        }
    }
    while let Some(event) = shard.poll_event() {
        // The receiver may be gone while the engine shuts down; events are then dropped.
        let _ = events.send(event);
    }
}
