//! The sans-IO core of one shard: rooms, participants and their share of the node's UDP
//! and ICE-TCP traffic.
//!
//! The caller feeds packets, commands and time in, and drains packets to send and events
//! out. A packet from an unknown address is routed by the local ufrag in a STUN Binding
//! request; after that, by its transport and remote address.
//!
//! Caller contract: after every `handle_*` call, drain [`Shard::poll_transmit`] and
//! [`Shard::poll_event`] until they return `None`, then wait until
//! [`Shard::poll_timeout`] (or the next input) and call [`Shard::handle_timeout`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc::sansio::Protocol;
use rtc::shared::TransportProtocol;

use super::codecs::decodable_video_codecs;
use super::local::LocalTrackState;
use super::participant::{Connection, Participant, PublishedTrack};
use super::peer::{LocalAddrs, Peer, Transmit};
use super::room::{Room, RoomOptions};
use super::stun;
use crate::error::SfuError;
use crate::event::SfuEvent;
use crate::forward::bandwidth::ESTIMATE_LIFETIME;
use crate::ids::{ParticipantId, RoomId, TrackId};
use crate::sdp;

/// A participant that has not connected within this time after joining is removed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A connected participant that sent nothing for this long is removed. Browsers send ICE
/// consent checks every few seconds (RFC 7675), so silence means the peer is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Interval of housekeeping: active speaker updates and timeouts.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(100);

/// Counts of what a shard holds, for monitoring and leak checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Rooms.
    pub rooms: usize,
    /// Participants (each has one peer connection).
    pub participants: usize,
    /// Remote addresses mapped to participants.
    pub routes: usize,
    /// Subscriptions over all participants.
    pub subscriptions: usize,
}

/// A participant's downlink as the engine measures it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DownlinkStats {
    /// Transport-wide congestion control feedback packets received from the participant.
    pub twcc_feedback_packets: u64,
    /// Estimate from that feedback in bit/s, or `None` when none arrived recently.
    pub twcc_estimate_bps: Option<u64>,
    /// Estimate that chooses the participant's simulcast layers, in bit/s: the lower of
    /// its REMB reports and the TWCC estimate, or `None` when neither is recent.
    pub estimate_bps: Option<u64>,
}

/// A remote transport address: UDP source address, or the far end of an ICE-TCP connection.
pub type Remote = (TransportProtocol, SocketAddr);

/// State of one shard.
pub struct Shard {
    pub(crate) local: LocalAddrs,
    /// Prefix of the ufrags of this shard's peers, which routes packets to the shard.
    ufrag_prefix: String,
    pub(crate) rooms: HashMap<RoomId, Room>,
    pub(crate) participants: HashMap<ParticipantId, Participant>,
    /// Tracks whose packets the caller writes, by track id.
    pub(crate) local_tracks: HashMap<TrackId, LocalTrackState>,
    by_ufrag: HashMap<String, ParticipantId>,
    by_addr: HashMap<Remote, ParticipantId>,
    pub(crate) dirty: HashSet<ParticipantId>,
    transmits: VecDeque<Transmit>,
    /// ICE-TCP connections whose participant left, for the caller to close.
    closed_connections: VecDeque<SocketAddr>,
    pub(crate) events: VecDeque<SfuEvent>,
    next_housekeeping: Option<Instant>,
    pub(crate) drops: super::RateLimitedLog,
    /// Set by a stop command; the driver then closes all rooms and ends.
    pub(crate) stopping: bool,
}

impl Shard {
    /// Creates a shard receiving on `local_addr` and advertising `advertised` to peers
    /// (the same unless a public address is configured for 1:1 NAT).
    pub fn new(local_addr: SocketAddr, advertised: SocketAddr) -> Self {
        Self::with_local(0, LocalAddrs::udp(local_addr, advertised))
    }

    /// Creates shard number `index` of an engine whose sockets are `local`.
    pub fn with_local(index: usize, local: LocalAddrs) -> Self {
        Self {
            local,
            ufrag_prefix: stun::shard_prefix(index),
            rooms: HashMap::new(),
            participants: HashMap::new(),
            local_tracks: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            dirty: HashSet::new(),
            transmits: VecDeque::new(),
            closed_connections: VecDeque::new(),
            events: VecDeque::new(),
            next_housekeeping: None,
            drops: super::RateLimitedLog::default(),
            stopping: false,
        }
    }

    /// Counts of rooms, participants, routes and subscriptions.
    pub fn stats(&self) -> ShardStats {
        ShardStats {
            rooms: self.rooms.len(),
            participants: self.participants.len(),
            routes: self.by_addr.len() + self.by_ufrag.len(),
            subscriptions: self
                .participants
                .values()
                .map(|participant| participant.subscriptions.len())
                .sum(),
        }
    }

    /// Feedback counts and bandwidth estimates of a participant's downlink.
    pub fn downlink_stats(
        &self,
        now: Instant,
        participant: &ParticipantId,
    ) -> Result<DownlinkStats, SfuError> {
        let entry = self
            .participants
            .get(participant)
            .ok_or_else(|| SfuError::ParticipantNotFound(participant.clone()))?;
        Ok(DownlinkStats {
            twcc_feedback_packets: entry.twcc.feedback_packets(),
            twcc_estimate_bps: entry.twcc.estimate(now, ESTIMATE_LIFETIME),
            estimate_bps: entry.downlink.current(now),
        })
    }

    /// Creates an empty room.
    pub fn create_room(&mut self, room: RoomId, options: RoomOptions) -> Result<(), SfuError> {
        if self.rooms.contains_key(&room) {
            return Err(SfuError::RoomExists(room));
        }
        tracing::info!(%room, "room created");
        self.rooms.insert(room.clone(), Room::new(room, options));
        Ok(())
    }

    /// Removes a room after disconnecting all its participants.
    pub fn close_room(&mut self, now: Instant, room: &RoomId) -> Result<(), SfuError> {
        let members: Vec<ParticipantId> = self
            .rooms
            .get(room)
            .ok_or_else(|| SfuError::RoomNotFound(room.clone()))?
            .members
            .iter()
            .cloned()
            .collect();
        for member in members {
            self.remove_participant(now, &member);
        }
        let local: Vec<TrackId> = self
            .local_tracks
            .iter()
            .filter(|(_, local)| local.room == *room)
            .map(|(id, _)| id.clone())
            .collect();
        for track in local {
            self.unpublish_local(now, room, &track);
        }
        self.rooms.remove(room);
        tracing::info!(%room, "room closed");
        Ok(())
    }

    /// Adds a participant from its first offer and returns the answer. A `relay` peer of
    /// another engine gets only the subscriptions asked for with `subscribe`.
    pub fn join(
        &mut self,
        now: Instant,
        room: &RoomId,
        participant: ParticipantId,
        offer: String,
        relay: bool,
    ) -> Result<String, SfuError> {
        if !self.rooms.contains_key(room) {
            return Err(SfuError::RoomNotFound(room.clone()));
        }
        if self.participants.contains_key(&participant) {
            return Err(SfuError::ParticipantExists(participant));
        }

        let sections = sdp::summarize(&offer)?;
        let allowed = self.room_video_codecs(room, &participant);
        let mut peer = Peer::new(now, self.local, &self.ufrag_prefix)?;
        let answer = peer.accept_offer(now, offer, &sections, allowed.as_ref())?;
        self.by_ufrag
            .insert(peer.ufrag.clone(), participant.clone());
        let mut entry = Participant::new(participant.clone(), room.clone(), peer, now);
        entry.video_decoders = decodable_video_codecs(&sections);
        entry.relay = relay;
        self.participants.insert(participant.clone(), entry);
        if let Some(room) = self.rooms.get_mut(room) {
            room.members.insert(participant.clone());
        }
        tracing::info!(%room, %participant, "participant joined");

        self.update_published(now, &participant, &sections)?;
        self.auto_subscribe_member(now, &participant);
        self.flush(now);
        Ok(answer)
    }

    /// Removes a participant, unpublishing its tracks.
    pub fn leave(&mut self, now: Instant, participant: &ParticipantId) -> Result<(), SfuError> {
        if !self.participants.contains_key(participant) {
            return Err(SfuError::ParticipantNotFound(participant.clone()));
        }
        self.remove_participant(now, participant);
        self.flush(now);
        Ok(())
    }

    /// Feeds one datagram received on the UDP socket.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.handle_packet(now, (TransportProtocol::UDP, from), datagram);
    }

    /// Feeds the payload of one RFC 4571 frame received on the ICE-TCP connection from
    /// `from`.
    pub fn handle_tcp_packet(&mut self, now: Instant, from: SocketAddr, packet: &[u8]) {
        self.handle_packet(now, (TransportProtocol::TCP, from), packet);
    }

    /// Forgets an ICE-TCP connection that the remote end or the caller closed.
    pub fn tcp_closed(&mut self, from: SocketAddr) {
        if let Some(participant) = self.by_addr.remove(&(TransportProtocol::TCP, from)) {
            tracing::debug!(%participant, %from, "ICE-TCP connection closed");
        }
    }

    fn handle_packet(&mut self, now: Instant, from: Remote, packet: &[u8]) {
        let Some(participant) = self.route(from, packet) else {
            self.drops
                .warn("packet from unknown address dropped", from.1);
            return;
        };
        if let Some(entry) = self.participants.get_mut(&participant) {
            entry.last_datagram = now;
            entry.peer.handle_packet(now, from.0, from.1, packet);
            self.dirty.insert(participant);
        }
        self.flush(now);
    }

    fn route(&mut self, from: Remote, packet: &[u8]) -> Option<ParticipantId> {
        if let Some(participant) = self.by_addr.get(&from) {
            return Some(participant.clone());
        }
        let ufrag = stun::binding_request_local_ufrag(packet)?;
        let participant = self.by_ufrag.get(ufrag)?.clone();
        tracing::debug!(%participant, protocol = ?from.0, "new remote address");
        self.by_addr.insert(from, participant.clone());
        Some(participant)
    }

    /// Advances timers of every peer and of the forwarding logic.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<ParticipantId> = self
            .participants
            .iter_mut()
            .filter_map(|(id, participant)| {
                let deadline = participant.peer.pc.poll_timeout()?;
                (deadline <= now).then(|| id.clone())
            })
            .collect();
        for id in due {
            if let Some(participant) = self.participants.get_mut(&id)
                && let Err(err) = participant.peer.pc.handle_timeout(now)
            {
                tracing::debug!(participant = %id, error = %err, "timeout handling failed");
            }
            self.dirty.insert(id);
        }

        if self.next_housekeeping.is_none_or(|at| at <= now) {
            self.next_housekeeping = Some(now + HOUSEKEEPING_INTERVAL);
            self.housekeeping(now);
        }
        self.send_keyframe_requests(now);
        self.flush(now);
    }

    /// Earliest time [`Shard::handle_timeout`] must be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        // TODO(perf): this walks every peer and track after each input; keep deadlines in a
        // heap once shards hold hundreds of peers.
        let peers = self
            .participants
            .values_mut()
            .filter_map(|participant| participant.peer.pc.poll_timeout())
            .min();
        let requests = self.participants.values().flat_map(|participant| {
            participant
                .published
                .values()
                .flat_map(|track| track.requesters.iter().filter_map(|r| r.poll_timeout()))
        });
        let local_requests = self.local_tracks.values().flat_map(|local| {
            local
                .track
                .requesters
                .iter()
                .filter_map(|r| r.poll_timeout())
        });
        let housekeeping = if self.participants.is_empty() {
            None
        } else {
            Some(self.next_housekeeping.unwrap_or_else(Instant::now))
        };
        peers
            .into_iter()
            .chain(requests)
            .chain(local_requests)
            .chain(housekeeping)
            .min()
    }

    /// Next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next ICE-TCP connection to close, because its participant left.
    pub fn poll_closed_connection(&mut self) -> Option<SocketAddr> {
        self.closed_connections.pop_front()
    }

    /// Next event for the caller.
    pub fn poll_event(&mut self) -> Option<SfuEvent> {
        self.events.pop_front()
    }

    fn housekeeping(&mut self, now: Instant) {
        let expired: Vec<ParticipantId> = self
            .participants
            .values()
            .filter(|participant| match participant.connection {
                Connection::Connecting => {
                    now.duration_since(participant.joined_at) > CONNECT_TIMEOUT
                }
                Connection::Connected => {
                    now.duration_since(participant.last_datagram) > IDLE_TIMEOUT
                }
            })
            .map(|participant| participant.id.clone())
            .collect();
        for participant in expired {
            tracing::info!(%participant, "participant timed out");
            self.remove_participant(now, &participant);
        }

        for room in self.rooms.values_mut() {
            if let Some(speaker) = room.speaker.poll(now) {
                self.events.push_back(SfuEvent::ActiveSpeakerChanged {
                    room: room.id.clone(),
                    participant: speaker,
                });
            }
        }
    }

    /// Processes the output of every peer touched since the last flush: events, received
    /// media, and datagrams to send.
    pub(crate) fn flush(&mut self, now: Instant) {
        // Handling one peer's media touches its subscribers, so repeat until nothing is new.
        while !self.dirty.is_empty() {
            let dirty: Vec<ParticipantId> = self.dirty.drain().collect();
            for participant in &dirty {
                self.drain_peer_events(now, participant);
                self.drain_peer_media(now, participant);
            }
            for participant in &dirty {
                self.drain_peer_transmits(participant);
            }
        }
    }

    fn drain_peer_transmits(&mut self, participant: &ParticipantId) {
        let Some(entry) = self.participants.get_mut(participant) else {
            return;
        };
        while let Some(transmit) = entry.peer.poll_transmit() {
            self.transmits.push_back(transmit);
        }
    }

    /// Finds a published track, of a participant or local.
    pub(crate) fn published(&self, track: &TrackId) -> Option<&PublishedTrack> {
        match self.participants.get(&track.publisher) {
            Some(entry) => entry.published.get(&track.mid),
            None => self.local_tracks.get(track).map(|local| &local.track),
        }
    }

    /// Finds a published track, of a participant or local, for updating.
    pub(crate) fn published_mut(&mut self, track: &TrackId) -> Option<&mut PublishedTrack> {
        match self.participants.get_mut(&track.publisher) {
            Some(entry) => entry.published.get_mut(&track.mid),
            None => self
                .local_tracks
                .get_mut(track)
                .map(|local| &mut local.track),
        }
    }

    /// Removes a participant and everything that refers to it.
    pub(crate) fn remove_participant(&mut self, now: Instant, id: &ParticipantId) {
        let Some(mut participant) = self.participants.remove(id) else {
            return;
        };
        participant.peer.close();
        while let Some(transmit) = participant.peer.poll_transmit() {
            self.transmits.push_back(transmit);
        }
        self.by_ufrag.retain(|_, owner| owner != id);
        let closed = &mut self.closed_connections;
        self.by_addr.retain(|(protocol, addr), owner| {
            let keep = owner != id;
            if !keep && *protocol == TransportProtocol::TCP {
                closed.push_back(*addr);
            }
            keep
        });
        self.dirty.remove(id);

        let tracks: Vec<_> = participant
            .published
            .values()
            .map(|t| t.id.clone())
            .collect();
        for track in tracks {
            self.unpublish(now, &participant.room, &track);
        }
        if let Some(room) = self.rooms.get_mut(&participant.room) {
            room.members.remove(id);
            room.speaker.remove(id);
            for subscribers in room.subscribers.values_mut() {
                subscribers.remove(id);
            }
        }
        tracing::info!(room = %participant.room, participant = %id, "participant left");
        self.events.push_back(SfuEvent::ParticipantDisconnected {
            room: participant.room,
            participant: id.clone(),
        });
    }
}
