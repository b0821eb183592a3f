//! Meetings, the live side: the server drives the media engine (`sfu`) so that people
//! meet in the browser. Signaling rides on the hub WebSocket (`signal`), host controls
//! are HTTP routes (`control`), engine events become messages to the pages (`events`),
//! and chat is stored on the `meeting:ID` topic (`chat`).
//!
//! Rules:
//! - [`crate::meetings::access`] decides who enters; [`room::entry`] applies the lobby
//!   rule on top of it.
//! - One media participant per account and meeting: joining again, from the same or
//!   another connection, replaces the earlier participant.
//! - Host controls act on the engine, not only on the pages: a muted participant's audio
//!   is not forwarded, a removed participant is dropped from the engine at once.
//! - Live state is kept in memory per meeting. Its lock is held across engine calls, and
//!   across database calls only on the host's control routes, while a host decision or
//!   raised hand is written or read again, and when a join that replaced a participant
//!   fails.
//!
//! Host decisions (admitted, removed, muted) and raised hands are written through to the
//! database (`decisions`) and read back when a room is created, or reused while empty,
//! so they survive a restart and a move to another node. A meeting's entry leaves memory
//! only when the host ends it or the server stops. Each node runs its own engine. With
//! NATS, the engines of the nodes where a meeting has participants relay its tracks to
//! each other (`cascade`), and each node shares its part of the participant list and its
//! lobby through `placement`. Host controls for a person on another node go to that
//! node (`cascade`), and every decision, raised hand and lock change reaches the other
//! nodes that have the meeting's room loaded (`room_sync`). A room page gets its node
//! from `placement`, and from `liveness` after its node died.

pub mod cascade;
pub mod chat;
pub mod control;
mod decisions;
mod events;
pub mod lecture;
pub mod liveness;
mod mixed_audio;
pub mod placement;
mod placement_chunks;
pub mod protocol;
pub mod room;
pub mod room_sync;
pub mod signal;
pub mod turn;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use sfu::{ParticipantId, RoomId, Sfu, SfuConfig, SfuError, SfuEvent};
use tokio::sync::mpsc;

pub use signal::{Request, handle};

use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::hub::registry::{ConnId, Kick, Outbound, offer};
use crate::state::AppState;
use placement::Placement;
use protocol::{LeftReason, LiveMessage};
use room::Room;

/// Builds the live-side routes: host controls, ICE servers and node selection.
pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    control::router()
        .merge(turn::router())
        .merge(placement::router())
}

/// One hub connection as the live rooms see it: who it is and how to reach it.
#[derive(Clone)]
pub struct Link {
    pub conn_id: ConnId,
    pub account_id: i64,
    pub name: String,
    /// The account's permissions when the request arrived, for lecture roles.
    pub principal: crate::perm::Principal,
    queue: mpsc::Sender<Outbound>,
    kick: Arc<Kick>,
}

impl Link {
    pub fn new(
        conn_id: ConnId,
        account_id: i64,
        name: String,
        principal: crate::perm::Principal,
        queue: mpsc::Sender<Outbound>,
        kick: Arc<Kick>,
    ) -> Self {
        Self {
            conn_id,
            account_id,
            name,
            principal,
            queue,
            kick,
        }
    }

    /// Queues a message for the connection without waiting; a full queue closes the
    /// connection as a slow consumer, like hub events.
    pub fn send(&self, message: &LiveMessage) {
        self.send_text(message_text(message));
    }

    /// Queues a message serialized with [`message_text`], for sending one text to many.
    pub fn send_text(&self, text: Utf8Bytes) {
        offer(&self.queue, &self.kick, Outbound::Text(text));
    }
}

/// Serializes a live message once, for any number of connections.
pub fn message_text(message: &LiveMessage) -> Utf8Bytes {
    serde_json::to_string(message)
        .expect("live messages serialize")
        .into()
}

/// The live rooms of this node and the engine behind them.
pub struct Live {
    sfu: Sfu,
    rooms: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<Room>>>>,
    next_participant: AtomicU64,
    recorders: crate::meetings::recording::Recorders,
    placement: Arc<Placement>,
    /// Relays between this node's engine and the other nodes'.
    pub cascade: cascade::Cascade,
    /// Sender of the changes the other nodes apply to their rooms.
    pub room_sync: room_sync::RoomSync,
    /// Generation of the latest engine room, so a relay into a closed room is noticed.
    next_engine_epoch: AtomicU64,
    /// Liveness checks of other nodes, set once NATS is linked.
    liveness: std::sync::OnceLock<Arc<liveness::Liveness>>,
}

impl Live {
    /// Starts the media engine. Its events must be handed to [`Live::spawn_events`].
    pub async fn start(
        config: &Config,
    ) -> Result<(Arc<Live>, mpsc::UnboundedReceiver<SfuEvent>), SfuError> {
        let media = &config.media;
        let (sfu, events) = Sfu::start(SfuConfig {
            bind_ip: media.bind,
            udp_port: media.port,
            tcp_port: media.tcp_port,
            public_ip: media.advertise,
            shards: media.shards,
            ..SfuConfig::default()
        })
        .await?;
        let live = Live {
            sfu,
            rooms: Mutex::new(HashMap::new()),
            // A random start keeps ids apart from other nodes', whose tracks this
            // engine publishes under their publishers' ids when it relays them.
            next_participant: AtomicU64::new(u64::from(rand::random::<u32>())),
            recorders: Default::default(),
            placement: Arc::new(Placement::new(config)),
            cascade: cascade::Cascade::new(config.node_id.clone(), media.bind),
            room_sync: room_sync::RoomSync::new(config.node_id.clone()),
            next_engine_epoch: AtomicU64::new(0),
            liveness: std::sync::OnceLock::new(),
        };
        Ok((Arc::new(live), events))
    }

    /// Handles engine events until the engine stops.
    pub fn spawn_events(
        state: AppState,
        events: mpsc::UnboundedReceiver<SfuEvent>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(events::run(state, events))
    }

    /// Starts sharing this node's meeting placement through NATS.
    pub fn spawn_placement(
        self: &Arc<Self>,
        context: async_nats::jetstream::Context,
        prefix: String,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.placement.clone().run(context, prefix, self.clone()))
    }

    /// Starts taking relay requests from other nodes on this node's media subject.
    pub fn spawn_cascade(
        state: AppState,
        client: async_nats::Client,
        prefix: &str,
    ) -> tokio::task::JoinHandle<()> {
        let subject = placement::media_subject(prefix, &state.config.node_id);
        tokio::spawn(cascade::serve(state, client, subject))
    }

    /// Starts applying the room notices of other nodes and sending this node's.
    pub fn spawn_room_sync(
        state: AppState,
        client: async_nats::Client,
        prefix: &str,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(room_sync::serve(state, client, prefix.to_owned()))
    }

    /// Starts replying to liveness requests from other nodes, and the sweep that
    /// removes media connection rows of nodes that are gone.
    pub fn spawn_liveness(
        self: &Arc<Self>,
        state: AppState,
        client: async_nats::Client,
        prefix: String,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let liveness = Arc::new(liveness::Liveness::new(
            client,
            prefix,
            state.config.node_id.clone(),
        ));
        let liveness = self.liveness.get_or_init(|| liveness).clone();
        vec![
            tokio::spawn(liveness.respond()),
            tokio::spawn(liveness::sweep_connections(state)),
        ]
    }

    /// Returns the liveness checks of other nodes, when NATS links the nodes.
    pub fn liveness(&self) -> Option<&liveness::Liveness> {
        self.liveness.get().map(|liveness| liveness.as_ref())
    }

    /// Returns the meeting placement of this node and the others.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Returns the entries of the participants in this node's media and lobby per
    /// meeting, leaving out meetings with nobody in either.
    pub async fn local_entries(&self) -> HashMap<i64, placement::LocalPart> {
        let rooms: Vec<_> = self.rooms_map().values().cloned().collect();
        let mut entries = HashMap::new();
        for room in rooms {
            let room = room.lock().await;
            if !room.is_empty() {
                let members = room
                    .members
                    .keys()
                    .filter_map(|account| room.participant_entry(*account))
                    .collect();
                let lobby = room.local_lobby_entries();
                entries.insert(room.meeting_id, placement::LocalPart { members, lobby });
            }
        }
        entries
    }

    /// Takes in another node's changed part of a meeting: updates the participant
    /// list of the people here and the relays into this node.
    pub fn remote_changed(self: &Arc<Self>, meeting_id: i64) {
        let live = Arc::clone(self);
        tokio::spawn(async move {
            if let Some(room) = live.room(meeting_id) {
                let parts = live.placement.remote_parts(meeting_id);
                cascade::apply_remote(&mut *room.lock().await, parts);
            }
            live.cascade.reconcile(&live, meeting_id).await;
        });
    }

    /// Checks the relays of every meeting with people here or a relay into this node,
    /// so a failed relay starts again and one without participants here ends.
    pub fn check_relays(self: &Arc<Self>) {
        let mut meetings = self.cascade.relayed_meetings();
        meetings.extend(self.rooms_map().keys().copied());
        for meeting_id in meetings {
            self.remote_changed(meeting_id);
        }
    }

    /// The audio recordings running on this node.
    pub fn recorders(&self) -> &crate::meetings::recording::Recorders {
        &self.recorders
    }

    /// Returns whether people are in the meeting's media on this node.
    pub async fn has_media(&self, meeting_id: i64) -> bool {
        match self.room(meeting_id) {
            Some(room) => {
                let room = room.lock().await;
                room.engine_room && !room.members.is_empty()
            }
            None => false,
        }
    }

    /// Taps the audio of a meeting's media room; fails when the room has no engine
    /// room because nobody is in its media.
    pub async fn tap_audio(
        &self,
        meeting_id: i64,
    ) -> Result<mpsc::Receiver<sfu::AudioPacket>, SfuError> {
        self.sfu.tap_audio(&room_id(meeting_id)).await
    }

    /// Returns the engine's UDP socket address, shared by all shards.
    pub fn media_udp_addr(&self) -> std::net::SocketAddr {
        self.sfu.udp_addr()
    }

    /// Returns the engine's ICE-TCP listener address, when ICE-TCP is on.
    pub fn media_tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.sfu.tcp_addr()
    }

    /// Counts of what the engine holds: rooms, participants, subscriptions.
    pub async fn media_stats(&self) -> Result<sfu::ShardStats, SfuError> {
        self.sfu.stats().await
    }

    /// Sets the live meeting gauges from the engine's counts and the lobbies, for a
    /// `/metrics` scrape.
    pub async fn record_metrics(&self) {
        if let Ok(stats) = self.sfu.stats().await {
            metrics::gauge!("dangwu_media_rooms").set(stats.rooms as f64);
            metrics::gauge!("dangwu_media_participants").set(stats.participants as f64);
            metrics::gauge!("dangwu_media_subscriptions").set(stats.subscriptions as f64);
        }
        let relays = self.cascade.incoming_stats();
        let tracks: usize = relays.values().map(|relay| relay.tracks).sum();
        let packets: u64 = relays.values().map(|relay| relay.packets).sum();
        metrics::gauge!("dangwu_media_relays_in").set(relays.len() as f64);
        metrics::gauge!("dangwu_media_relayed_tracks_in").set(tracks as f64);
        metrics::gauge!("dangwu_media_relayed_packets_in").set(packets as f64);
        metrics::gauge!("dangwu_media_relay_peers").set(self.cascade.outgoing_count() as f64);
        let rooms: Vec<_> = self.rooms_map().values().cloned().collect();
        let mut waiting = 0;
        for room in rooms {
            waiting += room.lock().await.lobby.len();
        }
        metrics::gauge!("dangwu_meeting_lobby_waiting").set(waiting as f64);
    }

    /// Records every present person as gone and stops the engine.
    pub async fn shutdown(&self, state: &AppState) {
        let rooms: Vec<_> = self.rooms_map().drain().collect();
        for (meeting_id, room) in rooms {
            let accounts: Vec<i64> = room.lock().await.members.keys().copied().collect();
            for account_id in accounts {
                record_left(state, meeting_id, account_id).await;
            }
        }
        self.sfu.shutdown().await;
        tracing::info!("media engine stopped");
    }

    fn rooms_map(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<tokio::sync::Mutex<Room>>>> {
        // Every critical section is one lookup, insert or removal, so a panic cannot
        // leave the map half changed.
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn room(&self, meeting_id: i64) -> Option<Arc<tokio::sync::Mutex<Room>>> {
        self.rooms_map().get(&meeting_id).cloned()
    }

    /// Returns the meeting's room, creating it with the stored host decisions, raised
    /// hands and lecture facts when it does not exist yet. A lecture's room gets its
    /// ticker of counts and dashboard.
    ///
    /// A room that exists with its media and lobby empty reads the stored decisions again.
    /// The meeting may have run on another node meanwhile (after this node's people moved
    /// off, say), and the host's decisions there are newer than this room's.
    async fn room_or_load(
        &self,
        state: &AppState,
        meeting_id: i64,
        locked: bool,
    ) -> AppResult<Arc<tokio::sync::Mutex<Room>>> {
        if let Some(room) = self.room(meeting_id) {
            if room.lock().await.is_empty() {
                let stored = decisions::load(state, meeting_id).await?;
                let mut guard = room.lock().await;
                if guard.is_empty() {
                    guard.restore_decisions(stored);
                }
            }
            return Ok(room);
        }
        let stored = decisions::load(state, meeting_id).await?;
        let lecture = crate::learning::lectures::facts_of_meeting(state, meeting_id).await?;
        let is_lecture = lecture.is_some();
        // Another request may have created the room meanwhile, from the same rows.
        let (room, created) = {
            let mut rooms = self.rooms_map();
            match rooms.get(&meeting_id) {
                Some(room) => (room.clone(), false),
                None => {
                    let mut room = Room::restore(meeting_id, locked, stored);
                    room.lecture = lecture.map(lecture::LectureMode::new);
                    room.placement = Some(self.placement.clone());
                    let parts = self.placement.remote_parts(meeting_id);
                    cascade::apply_remote(&mut room, parts);
                    let room = Arc::new(tokio::sync::Mutex::new(room));
                    rooms.insert(meeting_id, room.clone());
                    (room, true)
                }
            }
        };
        if created && is_lecture {
            lecture::spawn_ticker(state.clone(), Arc::downgrade(&room));
        }
        Ok(room)
    }

    fn take_room(&self, meeting_id: i64) -> Option<Arc<tokio::sync::Mutex<Room>>> {
        self.rooms_map().remove(&meeting_id)
    }

    /// Makes a new engine participant id for an account. Ids are unique, so a late event
    /// about an earlier participant never matches a newer one.
    fn new_participant(&self, meeting_id: i64, account_id: i64) -> ParticipantId {
        let n = self.next_participant.fetch_add(1, Ordering::Relaxed) + 1;
        ParticipantId::from(format!("m{meeting_id}-a{account_id}-{n}"))
    }

    /// Creates the engine room on first use.
    async fn ensure_engine_room(&self, room: &mut Room) -> Result<(), AppError> {
        if room.engine_room {
            return Ok(());
        }
        let options = sfu::RoomOptions {
            auto_subscribe: true,
        };
        match self
            .sfu
            .create_room(room_id(room.meeting_id), options)
            .await
        {
            Ok(()) | Err(SfuError::RoomExists(_)) => {
                room.engine_room = true;
                room.engine_epoch = self.next_engine_epoch.fetch_add(1, Ordering::Relaxed) + 1;
                Ok(())
            }
            Err(error) => Err(sfu_error(error)),
        }
    }

    /// Closes the engine room once nobody is in the media, so an idle meeting holds no
    /// engine state.
    async fn close_engine_room_if_empty(&self, room: &mut Room) {
        if !room.engine_room || !room.members.is_empty() {
            return;
        }
        if let Err(error) = self.sfu.close_room(&room_id(room.meeting_id)).await {
            tracing::warn!(meeting_id = room.meeting_id, %error, "closing media room failed");
        }
        room.engine_room = false;
        self.cascade.engine_room_closed(room.meeting_id);
    }

    /// Drops a participant from the engine; one already gone is not an error.
    async fn drop_participant(&self, meeting_id: i64, participant: &ParticipantId) {
        match self
            .sfu
            .leave(&room_id(meeting_id), participant.clone())
            .await
        {
            Ok(()) | Err(SfuError::ParticipantNotFound(_)) | Err(SfuError::RoomNotFound(_)) => {}
            Err(error) => {
                tracing::warn!(meeting_id, %participant, %error, "dropping participant failed")
            }
        }
    }

    /// Ends the live room of a meeting: sends `meeting_left` to everyone in the media or
    /// the lobby and closes the engine room. Returns the accounts that were in the media.
    async fn close(&self, meeting_id: i64, reason: LeftReason) -> Vec<i64> {
        let Some(room) = self.take_room(meeting_id) else {
            return Vec::new();
        };
        let mut room = room.lock().await;
        room.closed = true;
        let message = LiveMessage::MeetingLeft {
            id: None,
            meeting_id,
            reason,
        };
        for waiting in room.lobby.values() {
            waiting.link.send(&message);
        }
        room.broadcast(&message);
        let accounts: Vec<i64> = room.members.keys().copied().collect();
        room.members.clear();
        room.mixed_audio = None;
        room.lobby.clear();
        if room.engine_room
            && let Err(error) = self.sfu.close_room(&room_id(meeting_id)).await
        {
            tracing::warn!(meeting_id, %error, "closing media room failed");
        }
        room.engine_room = false;
        self.cascade.engine_room_closed(meeting_id);
        accounts
    }

    /// Checks whether the account is in the media or admitted to it, which lets an
    /// outsider read the meeting's topic.
    pub async fn is_let_in(&self, meeting_id: i64, account_id: i64) -> bool {
        let Some(room) = self.room(meeting_id) else {
            return false;
        };
        let room = room.lock().await;
        room.members.contains_key(&account_id) || room.admitted.contains(&account_id)
    }

    /// Takes a closed connection out of the media and lobby of the given meetings.
    pub async fn connection_closed(
        &self,
        state: &AppState,
        conn_id: ConnId,
        meeting_ids: impl IntoIterator<Item = i64>,
    ) {
        for meeting_id in meeting_ids {
            signal::leave_connection(state, meeting_id, conn_id).await;
        }
    }
}

/// Returns the engine room id of a meeting.
pub fn room_id(meeting_id: i64) -> RoomId {
    RoomId::from(format!("meeting-{meeting_id}"))
}

/// Parses the meeting id out of an engine room id.
pub fn meeting_of_room(room: &RoomId) -> Option<i64> {
    room.0.strip_prefix("meeting-")?.parse().ok()
}

/// Parses the meeting id out of a participant id made by [`Live::new_participant`].
pub fn meeting_of_participant(participant: &ParticipantId) -> Option<i64> {
    participant
        .0
        .strip_prefix('m')?
        .split_once('-')?
        .0
        .parse()
        .ok()
}

/// Maps an engine failure to an API error.
fn sfu_error(error: SfuError) -> AppError {
    match error {
        SfuError::InvalidSdp(detail) => AppError::invalid(
            "sdp",
            format!("SDP 无效：{detail}"),
            format!("invalid SDP: {detail}"),
        ),
        SfuError::NegotiationInProgress(_) => AppError::conflict(
            "negotiation_in_progress",
            "服务器的媒体协商尚未完成，请先回复 meeting_offer 再重新发起",
            "the server's offer awaits an answer; send meeting_answer first, then offer again",
        ),
        SfuError::TrackNotFound(track) => AppError::not_found(("媒体轨道", "track"), track),
        other => AppError::internal(other),
    }
}

/// Records on the meeting's record that a person entered the media; a failure is
/// logged, because the person is in the media either way.
async fn record_joined(state: &AppState, meeting_id: i64, account_id: i64) {
    state.live.placement().participants_changed();
    if let Err(error) = crate::meetings::joined(state, meeting_id, account_id).await {
        tracing::error!(meeting_id, account_id, %error, "recording attendance (join) failed");
    }
}

/// Records on the meeting's record that a person left the media.
async fn record_left(state: &AppState, meeting_id: i64, account_id: i64) {
    state.live.placement().participants_changed();
    state.live.remote_changed(meeting_id);
    if let Err(error) = crate::meetings::left(state, meeting_id, account_id).await {
        tracing::error!(meeting_id, account_id, %error, "recording attendance (leave) failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        assert_eq!(meeting_of_room(&room_id(42)), Some(42));
        let participant = ParticipantId::from("m42-a7-3");
        assert_eq!(meeting_of_participant(&participant), Some(42));
        assert_eq!(meeting_of_participant(&ParticipantId::from("x")), None);
        assert_eq!(meeting_of_room(&RoomId::from("room")), None);
    }
}
