//! The handle the server uses to drive the engine.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::engine::driver::{self, Command};
use crate::engine::io::{self, SHARD_QUEUE};
use crate::engine::peer::LocalAddrs;
use crate::engine::room::RoomOptions;
use crate::engine::shard::{DownlinkStats, Shard, ShardStats};
use crate::error::SfuError;
use crate::event::SfuEvent;
use crate::ids::{MediaKind, ParticipantId, RoomId, TrackId};
use crate::local::{LocalTrack, LocalTrackOptions};
use crate::tap::{AudioPacket, AudioTap};

/// Engine configuration.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Address the media sockets bind to.
    pub bind_ip: IpAddr,
    /// UDP port shared by all shards; 0 picks a free port.
    pub udp_port: u16,
    /// ICE-TCP port (RFC 6544 passive candidates) shared by all shards; 0 picks a free
    /// port, `None` offers no ICE-TCP.
    pub tcp_port: Option<u16>,
    /// Most ICE-TCP connections open at once; more are closed as they arrive.
    pub tcp_max_connections: usize,
    /// Address advertised in ICE candidates instead of `bind_ip`, for 1:1 NAT.
    pub public_ip: Option<IpAddr>,
    /// Number of shards, each one task. Rooms are spread over shards and all participants
    /// of a room live in the same shard. At most [`MAX_SHARDS`].
    pub shards: usize,
}

/// Largest number of shards, since each peer's ICE ufrag names its shard in four
/// hexadecimal digits.
pub const MAX_SHARDS: usize = crate::engine::stun::MAX_SHARDS;

impl Default for SfuConfig {
    fn default() -> Self {
        Self {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            udp_port: 0,
            tcp_port: None,
            tcp_max_connections: io::MAX_TCP_CONNECTIONS,
            public_ip: None,
            shards: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// Handle to a running engine. Dropping every clone stops the shard tasks.
#[derive(Clone)]
pub struct Sfu {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Vec<mpsc::UnboundedSender<Command>>,
    udp_addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
    tcp_connections: Arc<AtomicUsize>,
    placement: Mutex<HashMap<RoomId, usize>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Sfu {
    /// Binds the media sockets and starts one task per shard, plus the receive tasks that
    /// route packets to them. Events of all shards arrive on the returned receiver; read
    /// it continuously, since it is unbounded.
    pub async fn start(
        config: SfuConfig,
    ) -> Result<(Sfu, mpsc::UnboundedReceiver<SfuEvent>), SfuError> {
        let shard_count = config.shards.clamp(1, MAX_SHARDS);
        let advertised_ip = config.public_ip.unwrap_or(config.bind_ip);
        let udp =
            Arc::new(UdpSocket::bind(SocketAddr::new(config.bind_ip, config.udp_port)).await?);
        let udp_addr = udp.local_addr()?;
        let tcp = match config.tcp_port {
            Some(port) => Some(TcpListener::bind(SocketAddr::new(config.bind_ip, port)).await?),
            None => None,
        };
        let tcp_addr = tcp.as_ref().map(TcpListener::local_addr).transpose()?;
        let local = LocalAddrs {
            udp: udp_addr,
            udp_advertised: SocketAddr::new(advertised_ip, udp_addr.port()),
            tcp: tcp_addr.map(|addr| (addr, SocketAddr::new(advertised_ip, addr.port()))),
        };

        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let mut shards = Vec::new();
        let mut inbound = Vec::new();
        let mut tasks = Vec::new();
        for index in 0..shard_count {
            let (commands_tx, commands_rx) = mpsc::unbounded_channel();
            let (inbound_tx, inbound_rx) = mpsc::channel(SHARD_QUEUE);
            let shard = Shard::with_local(index, local);
            tasks.push(tokio::spawn(driver::run(
                shard,
                Arc::clone(&udp),
                inbound_rx,
                commands_rx,
                events_tx.clone(),
            )));
            shards.push(commands_tx);
            inbound.push(inbound_tx);
        }
        tasks.push(tokio::spawn(io::run_udp(Arc::clone(&udp), inbound.clone())));
        let tcp_connections = Arc::new(AtomicUsize::new(0));
        if let Some(listener) = tcp {
            tasks.push(tokio::spawn(io::run_tcp(
                listener,
                inbound,
                Arc::clone(&tcp_connections),
                config.tcp_max_connections,
            )));
        }
        tracing::info!(shards = shard_count, udp = %udp_addr, tcp = ?tcp_addr, "media engine started");

        let inner = Inner {
            shards,
            udp_addr,
            tcp_addr,
            tcp_connections,
            placement: Mutex::new(HashMap::new()),
            tasks: Mutex::new(tasks),
        };
        Ok((
            Sfu {
                inner: Arc::new(inner),
            },
            events_rx,
        ))
    }

    /// Local address of the UDP socket that all shards share.
    pub fn udp_addr(&self) -> SocketAddr {
        self.inner.udp_addr
    }

    /// Local address of the ICE-TCP listener, when ICE-TCP is on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.inner.tcp_addr
    }

    /// Number of ICE-TCP connections open now.
    pub fn tcp_connections(&self) -> usize {
        self.inner.tcp_connections.load(Ordering::Acquire)
    }

    /// Creates a room on the least loaded shard.
    pub async fn create_room(&self, room: RoomId, options: RoomOptions) -> Result<(), SfuError> {
        let shard = {
            let mut placement = self.placement();
            if placement.contains_key(&room) {
                return Err(SfuError::RoomExists(room));
            }
            let mut load = vec![0usize; self.inner.shards.len()];
            for shard in placement.values() {
                load[*shard] += 1;
            }
            let shard = (0..load.len())
                .min_by_key(|shard| load[*shard])
                .unwrap_or(0);
            placement.insert(room.clone(), shard);
            shard
        };
        let result = self
            .call(shard, move |s, _| {
                s.create_room(room.clone(), options).map_err(|e| (e, room))
            })
            .await?;
        result.map_err(|(err, room)| {
            self.placement().remove(&room);
            err
        })
    }

    /// Disconnects every participant of a room and removes it.
    pub async fn close_room(&self, room: &RoomId) -> Result<(), SfuError> {
        let shard = self.shard_of(room)?;
        let id = room.clone();
        let result = self
            .call(shard, move |s, now| s.close_room(now, &id))
            .await?;
        self.placement().remove(room);
        result
    }

    /// Adds a participant with its first SDP offer and returns the SDP answer.
    pub async fn join(
        &self,
        room: &RoomId,
        participant: ParticipantId,
        offer: String,
    ) -> Result<String, SfuError> {
        let shard = self.shard_of(room)?;
        let room = room.clone();
        self.call(shard, move |s, now| {
            s.join(now, &room, participant, offer, false)
        })
        .await?
    }

    /// Adds the relay peer of another engine with its first SDP offer and returns the
    /// answer. Unlike [`Sfu::join`], the peer is never subscribed automatically: it gets
    /// the tracks passed to [`Sfu::subscribe`] and nothing else, so tracks that another
    /// engine relays into this room are not sent back. It receives every simulcast layer
    /// of a track, each on a sender of its own whose track id is
    /// `{publisher}-{mid}@{layer}/{layers}`; [`crate::RelayReceiver`] reads that.
    pub async fn join_relay(
        &self,
        room: &RoomId,
        participant: ParticipantId,
        offer: String,
    ) -> Result<String, SfuError> {
        let shard = self.shard_of(room)?;
        let room = room.clone();
        self.call(shard, move |s, now| {
            s.join(now, &room, participant, offer, true)
        })
        .await?
    }

    /// Applies a new offer from the participant (tracks added or removed) and returns the
    /// answer.
    pub async fn renegotiate(
        &self,
        room: &RoomId,
        participant: ParticipantId,
        offer: String,
    ) -> Result<String, SfuError> {
        let shard = self.shard_of(room)?;
        self.call(shard, move |s, now| s.renegotiate(now, &participant, offer))
            .await?
    }

    /// Applies the participant's answer to an [`SfuEvent::Offer`].
    pub async fn accept_answer(
        &self,
        room: &RoomId,
        participant: ParticipantId,
        answer: String,
    ) -> Result<(), SfuError> {
        let shard = self.shard_of(room)?;
        self.call(shard, move |s, now| {
            s.accept_answer(now, &participant, answer)
        })
        .await?
    }

    /// Removes a participant and unpublishes its tracks.
    pub async fn leave(&self, room: &RoomId, participant: ParticipantId) -> Result<(), SfuError> {
        let shard = self.shard_of(room)?;
        self.call(shard, move |s, now| s.leave(now, &participant))
            .await?
    }

    /// Subscribes a participant to a track; an [`SfuEvent::Offer`] follows. Fails with
    /// [`SfuError::CodecNotSupported`] when the participant's offers do not list the track's
    /// video codec.
    pub async fn subscribe(
        &self,
        room: &RoomId,
        subscriber: ParticipantId,
        track: TrackId,
    ) -> Result<(), SfuError> {
        let shard = self.shard_of(room)?;
        self.call(shard, move |s, now| s.subscribe(now, &subscriber, &track))
            .await?
    }

    /// Ends a subscription; an [`SfuEvent::Offer`] follows.
    pub async fn unsubscribe(
        &self,
        room: &RoomId,
        subscriber: ParticipantId,
        track: TrackId,
    ) -> Result<(), SfuError> {
        let shard = self.shard_of(room)?;
        self.call(shard, move |s, now| s.unsubscribe(now, &subscriber, &track))
            .await?
    }

    /// Sets the highest simulcast layer (0 is the lowest) a subscriber receives of a track,
    /// for example from the size it renders the video at.
    pub async fn set_max_layer(
        &self,
        room: &RoomId,
        subscriber: ParticipantId,
        track: TrackId,
        max_layer: usize,
    ) -> Result<(), SfuError> {
        let shard = self.shard_of(room)?;
        self.call(shard, move |s, _| {
            s.set_max_layer(&subscriber, &track, max_layer)
        })
        .await?
    }

    /// Pauses (mutes) or resumes one subscribed track for one subscriber.
    pub async fn set_paused(
        &self,
        room: &RoomId,
        subscriber: ParticipantId,
        track: TrackId,
        paused: bool,
    ) -> Result<(), SfuError> {
        let shard = self.shard_of(room)?;
        self.call(shard, move |s, _| s.set_paused(&subscriber, &track, paused))
            .await?
    }

    /// Stops (`blocked`) or resumes forwarding a publisher's tracks of one kind to everyone,
    /// for example its audio while a meeting host has muted it. The block holds for tracks
    /// it publishes later and ends when it leaves. Packets already forwarded when this
    /// returns may still arrive; none received afterwards are forwarded.
    pub async fn set_blocked(
        &self,
        room: &RoomId,
        publisher: ParticipantId,
        kind: MediaKind,
        blocked: bool,
    ) -> Result<(), SfuError> {
        let shard = self.shard_of(room)?;
        self.call(shard, move |s, _| s.set_blocked(&publisher, kind, blocked))
            .await?
    }

    /// Starts copying every audio packet the room receives to the returned channel, in
    /// arrival order. A room may have several taps at once, for example a recording and
    /// the mixed audio for listeners on weak links. Audio blocked with
    /// [`Sfu::set_blocked`] is not copied. When the receiver falls [`TAP_CAPACITY`]
    /// packets behind, new packets are dropped (and logged); dropping the receiver ends
    /// the tap.
    ///
    /// [`TAP_CAPACITY`]: crate::tap::TAP_CAPACITY
    pub async fn tap_audio(&self, room: &RoomId) -> Result<mpsc::Receiver<AudioPacket>, SfuError> {
        let shard = self.shard_of(room)?;
        let room = room.clone();
        self.call(shard, move |s, _| {
            let state = s
                .rooms
                .get_mut(&room)
                .ok_or_else(|| SfuError::RoomNotFound(room.clone()))?;
            let (tap, receiver) = AudioTap::new();
            state.audio_taps.push(tap);
            Ok(receiver)
        })
        .await?
    }

    /// Publishes a track in a room whose packets the caller writes through the returned
    /// handle; dropping the handle unpublishes it. `track.publisher` names the source and
    /// must not be the id of a participant. Subscribers see it as the stream id. [`SfuEvent::TrackPublished`] announces the
    /// track and, when `options.auto_subscribe` is set in an automatically subscribing
    /// room, every member is subscribed to it.
    pub async fn publish_local(
        &self,
        room: &RoomId,
        track: TrackId,
        options: LocalTrackOptions,
    ) -> Result<LocalTrack, SfuError> {
        let shard = self.shard_of(room)?;
        let (requests_tx, requests_rx) = mpsc::unbounded_channel();
        let id = track.clone();
        let room_id = room.clone();
        self.call(shard, move |s, now| {
            s.publish_local(now, &room_id, id, options, requests_tx)
        })
        .await??;
        Ok(LocalTrack {
            id: track,
            room: room.clone(),
            shard: self.inner.shards[shard].clone(),
            keyframe_requests: requests_rx,
        })
    }

    /// Returns the feedback counts and bandwidth estimates of a participant's downlink.
    pub async fn downlink_stats(
        &self,
        room: &RoomId,
        participant: ParticipantId,
    ) -> Result<DownlinkStats, SfuError> {
        let shard = self.shard_of(room)?;
        self.call(shard, move |s, now| s.downlink_stats(now, &participant))
            .await?
    }

    /// Sums the counts of all shards.
    pub async fn stats(&self) -> Result<ShardStats, SfuError> {
        let mut total = ShardStats::default();
        for shard in 0..self.inner.shards.len() {
            let stats = self.call(shard, |s, _| s.stats()).await?;
            total.rooms += stats.rooms;
            total.participants += stats.participants;
            total.routes += stats.routes;
            total.subscriptions += stats.subscriptions;
        }
        Ok(total)
    }

    /// Stops every shard task after closing its rooms, and waits for them to end. Other
    /// clones of the handle get [`SfuError::Stopped`] afterwards.
    pub async fn shutdown(&self) {
        for shard in 0..self.inner.shards.len() {
            // An error means the shard already stopped.
            let _ = self.call(shard, |s, _| s.stopping = true).await;
        }
        let tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
    }

    fn placement(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, usize>> {
        // A panic while holding the lock cannot leave the map inconsistent: every
        // critical section is a single insert, remove or read.
        self.inner
            .placement
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn shard_of(&self, room: &RoomId) -> Result<usize, SfuError> {
        self.placement()
            .get(room)
            .copied()
            .ok_or_else(|| SfuError::RoomNotFound(room.clone()))
    }

    async fn call<T: Send + 'static>(
        &self,
        shard: usize,
        work: impl FnOnce(&mut Shard, Instant) -> T + Send + 'static,
    ) -> Result<T, SfuError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let command: Command = Box::new(move |shard, now| {
            let _ = reply_tx.send(work(shard, now));
        });
        self.inner.shards[shard]
            .send(command)
            .map_err(|_| SfuError::Stopped)?;
        reply_rx.await.map_err(|_| SfuError::Stopped)
    }
}
