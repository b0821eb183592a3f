//! The node's media sockets: one UDP socket and one optional ICE-TCP listener shared by
//! all shards. A receive task routes each packet to the shard that owns its peer, and
//! shard tasks send over the same sockets.
//!
//! Routing: the first packet from a new remote address is an ICE connectivity check, a
//! STUN Binding request whose local ufrag starts with the owning shard's index
//! ([`stun::shard_of_ufrag`]). Later UDP datagrams from that address follow the route it
//! set. An ICE-TCP connection is routed once, by its first frame.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::RateLimitedLog;
use super::stun;

/// Largest UDP datagram or ICE-TCP frame accepted. WebRTC stacks keep packets under the
/// path MTU of about 1500 bytes; RFC 4571 would allow 65535.
pub const MAX_PACKET: usize = 2048;

/// Capacity of each shard's inbound queue, in packets; the receive tasks drop packets
/// that do not fit.
pub const SHARD_QUEUE: usize = 8192;

/// Default maximum number of ICE-TCP connections open at once on a node.
pub const MAX_TCP_CONNECTIONS: usize = 1024;

/// Capacity of each ICE-TCP connection's send queue, in frames; frames that do not fit
/// are dropped.
const TCP_SEND_QUEUE: usize = 512;

/// An ICE-TCP connection must send its first frame within this time.
const TCP_FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// An ICE-TCP connection that sends nothing for this long is closed. Browsers send ICE
/// consent checks every few seconds (RFC 7675).
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A UDP route unused for this long is forgotten.
const UDP_ROUTE_IDLE: Duration = Duration::from_secs(30);

/// Maximum number of UDP routes kept. Beyond it, a STUN request from a new address is
/// still delivered but leaves no route.
const MAX_UDP_ROUTES: usize = 65_536;

/// Input for a shard task from the receive tasks.
#[derive(Debug)]
pub enum Inbound {
    /// A UDP datagram.
    Udp { from: SocketAddr, datagram: Bytes },
    /// A new ICE-TCP connection; `writer` takes the payloads of frames to send on it, and
    /// dropping it closes the connection.
    TcpOpened {
        from: SocketAddr,
        writer: mpsc::Sender<Bytes>,
    },
    /// The payload of one RFC 4571 frame of an ICE-TCP connection.
    Tcp { from: SocketAddr, packet: Bytes },
    /// An ICE-TCP connection ended.
    TcpClosed { from: SocketAddr },
}

/// Delivers `inbound` to `shard`, dropping it when the shard's queue is full.
fn deliver(shard: &mpsc::Sender<Inbound>, inbound: Inbound, drops: &mut RateLimitedLog) {
    match shard.try_send(inbound) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            drops.warn("shard queue full, packet dropped", SHARD_QUEUE);
        }
    }
}

struct UdpRoute {
    shard: usize,
    last_used: Instant,
}

/// Receives datagrams on the node's UDP socket and hands each to its shard, until every
/// shard task has stopped.
pub async fn run_udp(socket: Arc<UdpSocket>, shards: Vec<mpsc::Sender<Inbound>>) {
    let mut routes: HashMap<SocketAddr, UdpRoute> = HashMap::new();
    let mut drops = RateLimitedLog::default();
    let mut next_sweep = Instant::now() + UDP_ROUTE_IDLE;
    let mut buffer = vec![0u8; MAX_PACKET];
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buffer) => received,
            () = all_closed(&shards) => break,
        };
        let (len, from) = match received {
            Ok(received) => received,
            // On Linux an ICMP port unreachable for an earlier send surfaces here; the
            // socket stays usable.
            Err(err) => {
                tracing::debug!(error = %err, "receive failed");
                continue;
            }
        };
        let now = Instant::now();
        let datagram = &buffer[..len];
        let Some(shard) = udp_route(&mut routes, shards.len(), from, datagram, now) else {
            drops.warn("datagram from unknown address dropped", from);
            continue;
        };
        let inbound = Inbound::Udp {
            from,
            datagram: Bytes::copy_from_slice(datagram),
        };
        deliver(&shards[shard], inbound, &mut drops);

        if now >= next_sweep {
            routes.retain(|_, route| now.duration_since(route.last_used) < UDP_ROUTE_IDLE);
            next_sweep = now + UDP_ROUTE_IDLE;
        }
    }
    tracing::debug!(addr = ?socket.local_addr().ok(), "UDP receive task stopped");
}

/// Resolves as soon as every shard's queue is closed.
async fn all_closed(shards: &[mpsc::Sender<Inbound>]) {
    for shard in shards {
        shard.closed().await;
    }
}

/// Returns the shard of a datagram: from its STUN Binding request's ufrag, which also
/// moves the route of an address to a new owner, else from the address's route.
///
/// NOTE: the ufrag is not authenticated here, so a Binding request with a forged source
/// address can move a peer's route to another shard, which drops that peer's media until
/// the peer's next connectivity check moves it back.
fn udp_route(
    routes: &mut HashMap<SocketAddr, UdpRoute>,
    shards: usize,
    from: SocketAddr,
    datagram: &[u8],
    now: Instant,
) -> Option<usize> {
    if shards == 1 {
        return Some(0);
    }
    let requested = stun::binding_request_local_ufrag(datagram)
        .and_then(stun::shard_of_ufrag)
        .filter(|&shard| shard < shards);
    if let Some(shard) = requested {
        if routes.len() < MAX_UDP_ROUTES || routes.contains_key(&from) {
            routes.insert(
                from,
                UdpRoute {
                    shard,
                    last_used: now,
                },
            );
        }
        return Some(shard);
    }
    let route = routes.get_mut(&from)?;
    route.last_used = now;
    Some(route.shard)
}

/// Accepts ICE-TCP connections until every shard task has stopped. `open` counts the
/// connections open now; one more than `max_connections` is closed at once.
pub async fn run_tcp(
    listener: TcpListener,
    shards: Vec<mpsc::Sender<Inbound>>,
    open: Arc<AtomicUsize>,
    max_connections: usize,
) {
    let shards = Arc::new(shards);
    let mut rejected = RateLimitedLog::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = all_closed(&shards) => break,
        };
        let (stream, from) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                rejected.warn("ICE-TCP accept failed", err);
                continue;
            }
        };
        if open.fetch_add(1, Ordering::AcqRel) >= max_connections {
            open.fetch_sub(1, Ordering::AcqRel);
            rejected.warn(
                "ICE-TCP connection closed: too many connections",
                max_connections,
            );
            continue;
        }
        let _ = stream.set_nodelay(true);
        let open = Arc::clone(&open);
        let shards = Arc::clone(&shards);
        tokio::spawn(async move {
            if let Err(reason) = run_connection(stream, from, &shards).await {
                tracing::debug!(%from, reason, "ICE-TCP connection closed");
            }
            open.fetch_sub(1, Ordering::AcqRel);
        });
    }
    tracing::debug!("ICE-TCP accept task stopped");
}

/// Splits RFC 4571 frames (a 16-bit big-endian length, then the packet) out of a stream.
#[derive(Default)]
pub struct FrameReader {
    buffer: BytesMut,
}

impl FrameReader {
    /// Returns the next whole frame's payload, `Ok(None)` when more bytes are needed, or an
    /// error for an empty or oversized frame.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, &'static str> {
        if self.buffer.len() < 2 {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([self.buffer[0], self.buffer[1]]));
        if len == 0 || len > MAX_PACKET {
            return Err("frame length is zero or above the maximum");
        }
        if self.buffer.len() < 2 + len {
            return Ok(None);
        }
        self.buffer.advance(2);
        Ok(Some(self.buffer.split_to(len).freeze()))
    }

    /// Reads more bytes from `stream`; returns false at the end of the stream.
    async fn fill(&mut self, stream: &mut TcpStream) -> Result<bool, &'static str> {
        self.buffer.reserve(MAX_PACKET + 2);
        match stream.read_buf(&mut self.buffer).await {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(_) => Err("read failed"),
        }
    }

    /// Waits for the next frame; `Ok(None)` at the end of the stream.
    async fn read_frame(&mut self, stream: &mut TcpStream) -> Result<Option<Bytes>, &'static str> {
        loop {
            if let Some(frame) = self.next_frame()? {
                return Ok(Some(frame));
            }
            if !self.fill(stream).await? {
                return Ok(None);
            }
        }
    }
}

/// Routes one ICE-TCP connection by its first frame, then relays frames in both
/// directions until either end closes it. Returns why it ended, other than a clean close.
async fn run_connection(
    mut stream: TcpStream,
    from: SocketAddr,
    shards: &[mpsc::Sender<Inbound>],
) -> Result<(), &'static str> {
    let mut reader = FrameReader::default();
    let first = tokio::time::timeout(TCP_FIRST_FRAME_TIMEOUT, reader.read_frame(&mut stream))
        .await
        .map_err(|_| "no first frame in time")??
        .ok_or("closed before the first frame")?;
    let shard = stun::binding_request_local_ufrag(&first)
        .and_then(stun::shard_of_ufrag)
        .and_then(|index| shards.get(index))
        .ok_or("first frame is no STUN Binding request for a known shard")?;

    let (writer, mut outgoing) = mpsc::channel::<Bytes>(TCP_SEND_QUEUE);
    shard
        .send(Inbound::TcpOpened { from, writer })
        .await
        .map_err(|_| "shard stopped")?;
    let mut drops = RateLimitedLog::default();
    deliver(
        shard,
        Inbound::Tcp {
            from,
            packet: first,
        },
        &mut drops,
    );

    let result = loop {
        // Frames already buffered go first, so a read is started only when none is left.
        match reader.next_frame() {
            Ok(Some(packet)) => {
                deliver(shard, Inbound::Tcp { from, packet }, &mut drops);
                continue;
            }
            Ok(None) => {}
            Err(reason) => break Err(reason),
        }
        tokio::select! {
            filled = tokio::time::timeout(TCP_IDLE_TIMEOUT, reader.fill(&mut stream)) => match filled {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => break Ok(()),
                Ok(Err(reason)) => break Err(reason),
                Err(_) => break Err("idle timeout"),
            },
            packet = outgoing.recv() => match packet {
                Some(packet) => {
                    if write_frame(&mut stream, &packet).await.is_err() {
                        break Err("write failed");
                    }
                }
                // The shard dropped the writer: the participant left.
                None => break Ok(()),
            },
        }
    };
    let _ = shard.send(Inbound::TcpClosed { from }).await;
    result
}

/// Writes one packet with its RFC 4571 length prefix.
async fn write_frame(stream: &mut TcpStream, packet: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(packet.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut frame = Vec::with_capacity(2 + packet.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(packet);
    stream.write_all(&frame).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader_with(bytes: &[u8]) -> FrameReader {
        FrameReader {
            buffer: BytesMut::from(bytes),
        }
    }

    #[test]
    fn frames_split_at_length_prefix() {
        let mut reader = reader_with(&[0, 3, 1, 2, 3, 0, 1, 9, 0]);
        assert_eq!(
            reader.next_frame(),
            Ok(Some(Bytes::from_static(&[1, 2, 3])))
        );
        assert_eq!(reader.next_frame(), Ok(Some(Bytes::from_static(&[9]))));
        assert_eq!(reader.next_frame(), Ok(None));
        reader.buffer.extend_from_slice(&[2, 7]);
        assert_eq!(reader.next_frame(), Ok(None));
        reader.buffer.extend_from_slice(&[8]);
        assert_eq!(reader.next_frame(), Ok(Some(Bytes::from_static(&[7, 8]))));
    }

    #[test]
    fn empty_and_oversized_frames_are_rejected() {
        assert!(reader_with(&[0, 0]).next_frame().is_err());
        let too_long = u16::try_from(MAX_PACKET + 1).unwrap().to_be_bytes();
        assert!(reader_with(&too_long).next_frame().is_err());
        let longest = u16::try_from(MAX_PACKET).unwrap().to_be_bytes();
        assert_eq!(reader_with(&longest).next_frame(), Ok(None));
    }

    #[test]
    fn udp_routes_follow_binding_requests() {
        let mut routes = HashMap::new();
        let now = Instant::now();
        let from: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let media = [0x80u8; 40];
        assert_eq!(udp_route(&mut routes, 3, from, &media, now), None);

        let check = stun::tests::binding_request(&format!("{}abc:remote", stun::shard_prefix(2)));
        assert_eq!(udp_route(&mut routes, 3, from, &check, now), Some(2));
        assert_eq!(udp_route(&mut routes, 3, from, &media, now), Some(2));

        let moved = stun::tests::binding_request(&format!("{}xyz:remote", stun::shard_prefix(1)));
        assert_eq!(udp_route(&mut routes, 3, from, &moved, now), Some(1));
        assert_eq!(udp_route(&mut routes, 3, from, &media, now), Some(1));

        let unknown = stun::tests::binding_request(&format!("{}xyz:remote", stun::shard_prefix(3)));
        let stranger: SocketAddr = "192.0.2.2:5000".parse().unwrap();
        assert_eq!(udp_route(&mut routes, 3, stranger, &unknown, now), None);
        assert_eq!(udp_route(&mut routes, 1, stranger, &media, now), Some(0));
    }
}
