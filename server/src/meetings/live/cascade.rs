//! Relays between the media engines of several nodes, so that the participants of one
//! meeting may use different nodes and still receive each other.
//!
//! Each node takes requests on its NATS subject `{prefix}.media.{node_id}` (request and
//! reply, JSON [`MediaRequest`] and [`MediaReply`]). A node with participants in a
//! meeting (the destination) reads the other nodes' placement entries for that meeting,
//! and for each origin node that lists published tracks it:
//! 1. starts a [`RelayReceiver`] and sends its offer as `relay_offer`; the origin adds a
//!    relay peer to its engine room with [`sfu::Sfu::join_relay`] and returns the answer;
//! 2. sends `add_track` for each track listed there and `drop_track` for each that
//!    went away; the origin subscribes or unsubscribes its relay peer, and its engine
//!    offers the changed senders back as `relay_renegotiate`, which the destination's
//!    receiver answers;
//! 3. sends `relay_close` and closes the receiver once it has no participants in the
//!    meeting, the origin's entry expired or the connection failed (the next check
//!    starts it again).
//!
//! So a track crosses from one node to another once, however many participants the
//! destination has. Host controls for a participant in another node's media or lobby
//! travel on the same subject (`mute`, `remove`, `admit`, `deny`, `end`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sfu::{ParticipantId, RelayReceiver, SfuError, TrackId};

use super::protocol::{LeftReason, LiveMessage, ParticipantEntry};
use super::{Live, room_id};
use crate::audit::Actor;
use crate::error::{AppError, AppResult};
use crate::hub::kv_lease;
use crate::state::AppState;

/// How long a node waits for another node's reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Maximum relay checks of different meetings that run at once against one origin
/// node, so a node that does not reply holds up only its own checks.
const CHECKS_PER_ORIGIN: usize = 4;

/// A request to another node that got no reply.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Nothing subscribes to the subject: the node stopped or died.
    #[error("no node takes requests on {0}")]
    NoResponders(String),
    #[error("{0}")]
    Failed(String),
}

impl RequestError {
    fn failed(error: impl std::fmt::Display) -> Self {
        Self::Failed(error.to_string())
    }
}

/// A request on a node's media subject.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MediaRequest {
    /// The destination's first offer for a relay of the meeting's tracks.
    RelayOffer {
        meeting_id: i64,
        node_id: String,
        sdp: String,
    },
    /// The origin engine's offer after the relay's senders changed.
    RelayRenegotiate {
        meeting_id: i64,
        node_id: String,
        sdp: String,
    },
    /// Sends one more track over the relay to `node_id`.
    AddTrack {
        meeting_id: i64,
        node_id: String,
        publisher: String,
        mid: String,
    },
    /// Stops sending one track over the relay to `node_id`.
    DropTrack {
        meeting_id: i64,
        node_id: String,
        publisher: String,
        mid: String,
    },
    /// Ends the relay to `node_id`.
    RelayClose { meeting_id: i64, node_id: String },
    /// The host's mute of a participant in this node's media.
    Mute {
        meeting_id: i64,
        account_id: i64,
        muted: bool,
    },
    /// The host's removal of a participant in this node's media or lobby.
    Remove { meeting_id: i64, account_id: i64 },
    /// The host's start of an audio recording, for the node that records the meeting.
    RecordingStart { meeting_id: i64, actor: Actor },
    /// The host's stop of the audio recording this node runs.
    RecordingStop { meeting_id: i64, actor: Actor },
    /// The person joined the meeting on another node, so their connection here ends.
    Replace { meeting_id: i64, account_id: i64 },
    /// The host's admission of a person waiting in this node's lobby.
    Admit { meeting_id: i64, account_id: i64 },
    /// The host's denial of a person waiting in this node's lobby.
    Deny { meeting_id: i64, account_id: i64 },
    /// The host ended the meeting.
    End { meeting_id: i64 },
}

/// The reply to a [`MediaRequest`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MediaReply {
    Sdp {
        sdp: String,
    },
    Ok,
    /// The recording a `recording_start` began or a `recording_stop` ended.
    Recording {
        recording_id: i64,
    },
    /// `code` is `not_found` when the participant, meeting or relay is not on the node.
    Error {
        code: String,
        message: String,
    },
}

/// A relay into this node from one origin node.
struct Incoming {
    receiver: RelayReceiver,
    subject: String,
    /// Engine room generation the relay publishes into.
    epoch: u64,
    tracks: Mutex<HashSet<TrackId>>,
}

impl Incoming {
    fn tracks(&self) -> std::sync::MutexGuard<'_, HashSet<TrackId>> {
        self.tracks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The relays of this node, in both directions.
pub struct Cascade {
    node_id: String,
    bind_ip: IpAddr,
    nats: OnceLock<async_nats::Client>,
    /// Relays into this node by meeting and origin node.
    incoming: Mutex<HashMap<(i64, String), Arc<Incoming>>>,
    /// Relay peers in this node's engine by meeting and destination node.
    outgoing: Mutex<HashMap<(i64, String), ParticipantId>>,
    /// Relay checks by meeting and origin node. One runs at a time for each, so two
    /// never start the same relay and requests to one origin keep their order.
    checks: Mutex<HashMap<(i64, String), Arc<Check>>>,
    /// Limits of the checks running at once against each origin node.
    origin_limits: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

/// The relay check of one meeting and origin node.
#[derive(Default)]
struct Check {
    running: tokio::sync::Mutex<()>,
    /// A check waits to run. It reads the placement entries once it runs, so a
    /// request for another check meanwhile is covered by it.
    queued: std::sync::atomic::AtomicBool,
}

/// Returns the engine participant id of the relay peer for a destination node.
pub fn relay_participant(meeting_id: i64, node_id: &str) -> ParticipantId {
    ParticipantId::from(format!(
        "relay-m{meeting_id}-{}",
        kv_lease::key_token(node_id)
    ))
}

/// Parses the meeting and destination node out of a relay peer's participant id.
pub fn parse_relay_participant(participant: &ParticipantId) -> Option<(i64, String)> {
    let (meeting, node) = participant.0.strip_prefix("relay-m")?.split_once('-')?;
    Some((meeting.parse().ok()?, kv_lease::parse_key_token(node)?))
}

impl Cascade {
    pub fn new(node_id: String, bind_ip: IpAddr) -> Self {
        Self {
            node_id,
            bind_ip,
            nats: OnceLock::new(),
            incoming: Mutex::new(HashMap::new()),
            outgoing: Mutex::new(HashMap::new()),
            checks: Mutex::new(HashMap::new()),
            origin_limits: Mutex::new(HashMap::new()),
        }
    }

    fn incoming(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, String), Arc<Incoming>>> {
        // Every critical section is one lookup, insert or removal.
        self.incoming.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn outgoing(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, String), ParticipantId>> {
        self.outgoing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns the counts of tracks and packets of every relay into this node, by
    /// meeting and origin node.
    pub fn incoming_stats(&self) -> BTreeMap<(i64, String), sfu::RelayStats> {
        self.incoming()
            .iter()
            .map(|(key, incoming)| (key.clone(), incoming.receiver.stats()))
            .collect()
    }

    /// Returns the number of relay peers in this node's engine.
    pub fn outgoing_count(&self) -> usize {
        self.outgoing().len()
    }

    /// Returns the meetings that have a relay into this node.
    pub fn relayed_meetings(&self) -> HashSet<i64> {
        self.incoming()
            .keys()
            .map(|(meeting, _)| *meeting)
            .collect()
    }

    /// Sends a request to another node's media subject and waits for the reply.
    pub async fn request(
        &self,
        subject: &str,
        request: &MediaRequest,
    ) -> Result<MediaReply, RequestError> {
        let client = self
            .nats
            .get()
            .ok_or_else(|| RequestError::Failed("no NATS connection".to_owned()))?;
        let body = serde_json::to_vec(request).map_err(RequestError::failed)?;
        let reply = tokio::time::timeout(
            REQUEST_TIMEOUT,
            client.request(subject.to_owned(), body.into()),
        )
        .await
        .map_err(|_| {
            RequestError::Failed(format!("no reply on {subject} within {REQUEST_TIMEOUT:?}"))
        })?
        .map_err(|error| match error.kind() {
            async_nats::RequestErrorKind::NoResponders => {
                RequestError::NoResponders(subject.to_owned())
            }
            _ => RequestError::failed(error),
        })?;
        serde_json::from_slice(&reply.payload)
            .map_err(|error| RequestError::Failed(format!("invalid reply: {error}")))
    }

    /// Brings the relays of one meeting into this node in line with the participants
    /// here and the tracks the other nodes list. The origin nodes are checked
    /// concurrently, so one that is slow to reply delays no relay from the others.
    pub async fn reconcile(&self, live: &Live, meeting_id: i64) {
        if self.nats.get().is_none() {
            return;
        }
        let mut origins: HashSet<String> = live
            .placement()
            .remote_parts(meeting_id)
            .into_iter()
            .map(|part| part.node_id)
            .collect();
        origins.extend(
            self.incoming()
                .keys()
                .filter(|(meeting, _)| *meeting == meeting_id)
                .map(|(_, origin)| origin.clone()),
        );
        let checks = origins
            .into_iter()
            .map(|origin| self.check_origin(live, meeting_id, origin));
        futures_util::future::join_all(checks).await;
    }

    /// Runs the relay check of one meeting and origin node after the earlier one,
    /// unless another check is already waiting to run.
    async fn check_origin(&self, live: &Live, meeting_id: i64, origin: String) {
        let key = (meeting_id, origin);
        let check = Arc::clone(
            self.checks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key.clone())
                .or_default(),
        );
        if check.queued.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let running = check.running.lock().await;
        check
            .queued
            .store(false, std::sync::atomic::Ordering::Release);
        let limit = Arc::clone(
            self.origin_limits
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key.1.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(CHECKS_PER_ORIGIN))),
        );
        if let Ok(_permit) = limit.acquire().await {
            self.check_relay(live, meeting_id, &key.1).await;
        }
        drop(running);
        drop(check);
        self.forget_idle_check(&key);
    }

    /// Drops the check of a meeting and origin that no task uses and that has no
    /// relay, and the origin's limit once no check uses it.
    fn forget_idle_check(&self, key: &(i64, String)) {
        let relay = self.incoming().contains_key(key);
        let mut checks = self.checks.lock().unwrap_or_else(|e| e.into_inner());
        // Tasks get a check only from this map, under its lock, so a count of one
        // means no task holds it.
        if !relay
            && checks
                .get(key)
                .is_some_and(|check| Arc::strong_count(check) == 1)
        {
            checks.remove(key);
        }
        if !checks.keys().any(|(_, origin)| *origin == key.1) {
            let mut limits = self.origin_limits.lock().unwrap_or_else(|e| e.into_inner());
            if limits
                .get(&key.1)
                .is_some_and(|limit| Arc::strong_count(limit) == 1)
            {
                limits.remove(&key.1);
            }
        }
    }

    /// Brings the relay of one meeting from one origin node in line with the
    /// participants here and the tracks the origin lists.
    async fn check_relay(&self, live: &Live, meeting_id: i64, origin: &str) {
        let (present, epoch) = match live.room(meeting_id) {
            Some(room) => {
                let room = room.lock().await;
                (
                    room.engine_room && !room.members.is_empty() && !room.closed,
                    room.engine_epoch,
                )
            }
            None => (false, 0),
        };
        let part = live
            .placement()
            .remote_parts(meeting_id)
            .into_iter()
            .find(|part| part.node_id == origin);
        let key = (meeting_id, origin.to_owned());

        let stale = {
            let mut incoming = self.incoming();
            let stale = incoming.get(&key).is_some_and(|relay| {
                !present || relay.epoch != epoch || relay.receiver.is_failed() || part.is_none()
            });
            if stale { incoming.remove(&key) } else { None }
        };
        if let Some(relay) = stale {
            tracing::info!(meeting_id, origin, "closing relay");
            relay.receiver.close().await;
            let request = MediaRequest::RelayClose {
                meeting_id,
                node_id: self.node_id.clone(),
            };
            if let Err(error) = self.request(&relay.subject, &request).await {
                tracing::debug!(meeting_id, origin, %error, "relay close request failed");
            }
        }
        if !present {
            return;
        }
        let Some(part) = part else {
            return;
        };
        let Some(subject) = part.media_subject else {
            return;
        };
        let wanted = tracks_of(&part.members);
        let existing = self.incoming().get(&key).cloned();
        let relay = match existing {
            Some(relay) => relay,
            None if wanted.is_empty() => return,
            None => match self.open(live, meeting_id, origin, subject, epoch).await {
                Ok(relay) => {
                    self.incoming().insert(key, relay.clone());
                    relay
                }
                Err(error) => {
                    tracing::warn!(meeting_id, origin, %error, "starting a relay failed");
                    return;
                }
            },
        };
        self.update_tracks(meeting_id, origin, &relay, &wanted)
            .await;
    }

    /// Starts a relay from `origin` into this node's room of the meeting.
    async fn open(
        &self,
        live: &Live,
        meeting_id: i64,
        origin: &str,
        subject: String,
        epoch: u64,
    ) -> Result<Arc<Incoming>, String> {
        let (receiver, offer) =
            RelayReceiver::start(live.sfu.clone(), room_id(meeting_id), self.bind_ip)
                .await
                .map_err(|error| error.to_string())?;
        let request = MediaRequest::RelayOffer {
            meeting_id,
            node_id: self.node_id.clone(),
            sdp: offer,
        };
        let answer = match self
            .request(&subject, &request)
            .await
            .map_err(|error| error.to_string())?
        {
            MediaReply::Sdp { sdp } => sdp,
            other => {
                receiver.close().await;
                return Err(format!("unexpected reply to relay_offer: {other:?}"));
            }
        };
        if let Err(error) = receiver.accept_answer(answer).await {
            receiver.close().await;
            return Err(error.to_string());
        }
        tracing::info!(meeting_id, origin, "relay started");
        Ok(Arc::new(Incoming {
            receiver,
            subject,
            epoch,
            tracks: Mutex::new(HashSet::new()),
        }))
    }

    /// Asks the origin for the wanted tracks it does not send yet, and to stop the
    /// ones no longer listed.
    async fn update_tracks(
        &self,
        meeting_id: i64,
        origin: &str,
        relay: &Incoming,
        wanted: &HashSet<TrackId>,
    ) {
        let (added, dropped): (Vec<TrackId>, Vec<TrackId>) = {
            let tracks = relay.tracks();
            (
                wanted.difference(&tracks).cloned().collect(),
                tracks.difference(wanted).cloned().collect(),
            )
        };
        for track in added {
            let request = MediaRequest::AddTrack {
                meeting_id,
                node_id: self.node_id.clone(),
                publisher: track.publisher.0.clone(),
                mid: track.mid.clone(),
            };
            match self.request(&relay.subject, &request).await {
                Ok(MediaReply::Ok) => {
                    relay.tracks().insert(track);
                }
                Ok(reply) => {
                    tracing::debug!(meeting_id, origin, %track, ?reply, "adding a relayed track failed")
                }
                Err(error) => {
                    tracing::warn!(meeting_id, origin, %track, %error, "adding a relayed track failed")
                }
            }
        }
        for track in dropped {
            relay.tracks().remove(&track);
            relay.receiver.drop_track(&track);
            let request = MediaRequest::DropTrack {
                meeting_id,
                node_id: self.node_id.clone(),
                publisher: track.publisher.0.clone(),
                mid: track.mid.clone(),
            };
            if let Err(error) = self.request(&relay.subject, &request).await {
                tracing::debug!(meeting_id, origin, %track, %error, "dropping a relayed track failed");
            }
        }
    }

    /// Forgets the relay peers of a meeting whose engine room closed.
    pub fn engine_room_closed(&self, meeting_id: i64) {
        self.outgoing()
            .retain(|(meeting, _), _| *meeting != meeting_id);
    }

    /// Forgets a relay peer that the engine dropped.
    pub fn relay_peer_gone(&self, participant: &ParticipantId) {
        if let Some(key) = parse_relay_participant(participant) {
            let mut outgoing = self.outgoing();
            if outgoing.get(&key) == Some(participant) {
                outgoing.remove(&key);
            }
        }
    }
}

/// Returns every published track of the given participants.
fn tracks_of(members: &[ParticipantEntry]) -> HashSet<TrackId> {
    members
        .iter()
        .flat_map(|member| {
            member.tracks.iter().map(|track| TrackId {
                publisher: ParticipantId::from(member.participant.as_str()),
                mid: track.mid.clone(),
            })
        })
        .collect()
}

/// Takes requests on this node's media subject until the subscription ends.
pub async fn serve(state: AppState, client: async_nats::Client, subject: String) {
    let _ = state.live.cascade.nats.set(client.clone());
    let mut requests = match client.subscribe(subject.clone()).await {
        Ok(requests) => requests,
        Err(error) => {
            tracing::error!(%subject, %error, "subscribing to relay requests failed; this node relays nothing");
            return;
        }
    };
    tracing::info!(%subject, "taking relay requests");
    while let Some(message) = requests.next().await {
        let reply = match serde_json::from_slice::<MediaRequest>(&message.payload) {
            Ok(request) => handle(&state, request).await,
            Err(error) => MediaReply::Error {
                code: "invalid".to_owned(),
                message: format!("invalid media request: {error}"),
            },
        };
        let Some(reply_to) = message.reply else {
            continue;
        };
        let body = serde_json::to_vec(&reply).expect("media replies serialize");
        if let Err(error) = client.publish(reply_to, body.into()).await {
            tracing::warn!(%error, "sending a relay reply failed");
        }
    }
    tracing::warn!(%subject, "relay request subscription ended");
}

fn not_found(message: impl Into<String>) -> MediaReply {
    MediaReply::Error {
        code: "not_found".to_owned(),
        message: message.into(),
    }
}

fn failed(error: impl std::fmt::Display) -> MediaReply {
    MediaReply::Error {
        code: "failed".to_owned(),
        message: error.to_string(),
    }
}

/// Applies one request from another node. Handlers only act on this node, so a reply
/// never waits for a request to a third node.
async fn handle(state: &AppState, request: MediaRequest) -> MediaReply {
    let live = &state.live;
    let cascade = &live.cascade;
    match request {
        MediaRequest::RelayOffer {
            meeting_id,
            node_id,
            sdp,
        } => {
            let participant = relay_participant(meeting_id, &node_id);
            let key = (meeting_id, node_id.clone());
            // A destination that starts again replaces its earlier relay.
            let earlier = cascade.outgoing().remove(&key);
            if earlier.is_some() {
                let _ = live
                    .sfu
                    .leave(&room_id(meeting_id), participant.clone())
                    .await;
            }
            match live
                .sfu
                .join_relay(&room_id(meeting_id), participant.clone(), sdp)
                .await
            {
                Ok(answer) => {
                    tracing::info!(meeting_id, destination = %node_id, "relay peer joined");
                    cascade.outgoing().insert(key, participant);
                    MediaReply::Sdp { sdp: answer }
                }
                Err(SfuError::RoomNotFound(_)) => {
                    not_found(format!("meeting {meeting_id} has no media on this node"))
                }
                Err(error) => failed(error),
            }
        }
        MediaRequest::RelayRenegotiate {
            meeting_id,
            node_id,
            sdp,
        } => {
            let relay = cascade
                .incoming()
                .get(&(meeting_id, node_id.clone()))
                .cloned();
            let Some(relay) = relay else {
                return not_found(format!("no relay of meeting {meeting_id} from {node_id}"));
            };
            match relay.receiver.answer(sdp).await {
                Ok(sdp) => MediaReply::Sdp { sdp },
                Err(error) => failed(error),
            }
        }
        MediaRequest::AddTrack {
            meeting_id,
            node_id,
            publisher,
            mid,
        } => change_relayed_track(live, meeting_id, &node_id, publisher, mid, true).await,
        MediaRequest::DropTrack {
            meeting_id,
            node_id,
            publisher,
            mid,
        } => change_relayed_track(live, meeting_id, &node_id, publisher, mid, false).await,
        MediaRequest::RelayClose {
            meeting_id,
            node_id,
        } => {
            let removed = cascade.outgoing().remove(&(meeting_id, node_id.clone()));
            if let Some(participant) = removed {
                live.drop_participant(meeting_id, &participant).await;
                tracing::info!(meeting_id, destination = %node_id, "relay peer left");
            }
            MediaReply::Ok
        }
        MediaRequest::Mute {
            meeting_id,
            account_id,
            muted,
        } => control_reply(
            super::control::mute_here(state, meeting_id, account_id, muted).await,
            account_id,
        ),
        MediaRequest::Remove {
            meeting_id,
            account_id,
        } => control_reply(
            super::control::remove_here(state, meeting_id, account_id).await,
            account_id,
        ),
        MediaRequest::RecordingStart { meeting_id, actor } => {
            recording_reply(crate::meetings::recording::start_here(state, &actor, meeting_id).await)
        }
        MediaRequest::RecordingStop { meeting_id, actor } => {
            recording_reply(crate::meetings::recording::stop_here(state, &actor, meeting_id).await)
        }
        MediaRequest::Replace {
            meeting_id,
            account_id,
        } => control_reply(
            Ok(super::control::replace_here(state, meeting_id, account_id).await),
            account_id,
        ),
        MediaRequest::Admit {
            meeting_id,
            account_id,
        } => control_reply(
            super::control::admit_here(state, meeting_id, account_id).await,
            account_id,
        ),
        MediaRequest::Deny {
            meeting_id,
            account_id,
        } => control_reply(
            super::control::deny_here(state, meeting_id, account_id).await,
            account_id,
        ),
        MediaRequest::End { meeting_id } => {
            let accounts = live.close(meeting_id, LeftReason::Ended).await;
            for account in accounts {
                super::record_left(state, meeting_id, account).await;
            }
            MediaReply::Ok
        }
    }
}

/// Subscribes (`add`) or unsubscribes the relay peer of a destination node.
async fn change_relayed_track(
    live: &Live,
    meeting_id: i64,
    node_id: &str,
    publisher: String,
    mid: String,
    add: bool,
) -> MediaReply {
    let key = (meeting_id, node_id.to_owned());
    if !live.cascade.outgoing().contains_key(&key) {
        return not_found(format!("no relay of meeting {meeting_id} to {node_id}"));
    }
    let subscriber = relay_participant(meeting_id, node_id);
    let track = TrackId {
        publisher: ParticipantId::from(publisher),
        mid,
    };
    let room = room_id(meeting_id);
    let result = if add {
        live.sfu.subscribe(&room, subscriber, track).await
    } else {
        live.sfu.unsubscribe(&room, subscriber, track).await
    };
    match result {
        Ok(()) => MediaReply::Ok,
        Err(SfuError::TrackNotFound(track)) => not_found(format!("no track {track}")),
        Err(error) => failed(error),
    }
}

fn control_reply(result: AppResult<bool>, account_id: i64) -> MediaReply {
    match result {
        Ok(true) => MediaReply::Ok,
        Ok(false) => not_found(format!("participant {account_id} is not on this node")),
        Err(error) => failed(error),
    }
}

fn recording_reply(result: AppResult<i64>) -> MediaReply {
    match result {
        Ok(recording_id) => MediaReply::Recording { recording_id },
        Err(error) => MediaReply::Error {
            code: error.code.to_owned(),
            message: error.to_string(),
        },
    }
}

/// Sends an offer of the engine to the destination of a relay peer and applies the
/// destination's answer. A relay whose destination sends no answer is dropped, and the
/// destination starts it again at its next check.
pub async fn send_relay_offer(state: AppState, participant: ParticipantId, sdp: String) {
    let Some((meeting_id, node_id)) = parse_relay_participant(&participant) else {
        return;
    };
    let live = &state.live;
    let Some(subject) = live.placement().media_subject_of(&node_id) else {
        tracing::warn!(meeting_id, destination = %node_id, "relay destination unknown; dropping the relay");
        live.cascade.relay_peer_gone(&participant);
        live.drop_participant(meeting_id, &participant).await;
        return;
    };
    let request = MediaRequest::RelayRenegotiate {
        meeting_id,
        node_id: live.cascade.node_id.clone(),
        sdp,
    };
    let result = match live.cascade.request(&subject, &request).await {
        Ok(MediaReply::Sdp { sdp }) => live
            .sfu
            .accept_answer(&room_id(meeting_id), participant.clone(), sdp)
            .await
            .map_err(|error| error.to_string()),
        Ok(other) => Err(format!("unexpected reply: {other:?}")),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = result {
        tracing::warn!(meeting_id, destination = %node_id, %error, "relay renegotiation failed; dropping the relay");
        live.cascade.relay_peer_gone(&participant);
        live.drop_participant(meeting_id, &participant).await;
    }
}

/// Sends a host control to the node whose media or lobby has the participant, when it
/// is not this node. Returns false when no other node lists the participant, or the
/// node that lists them no longer has them.
pub async fn forward_control(
    live: &Live,
    meeting_id: i64,
    account_id: i64,
    request: MediaRequest,
) -> AppResult<bool> {
    let parts = live.placement().remote_parts(meeting_id);
    // The part written last, because the entry of a node that died lists
    // people who have moved on until it expires.
    let Some(subject) = parts
        .iter()
        .rev()
        .find(|part| {
            part.members.iter().any(|m| m.account_id == account_id)
                || part.lobby.iter().any(|w| w.account_id == account_id)
        })
        .and_then(|part| part.media_subject.clone())
    else {
        return Ok(false);
    };
    match live.cascade.request(&subject, &request).await {
        Ok(MediaReply::Ok) => Ok(true),
        Ok(MediaReply::Error { code, .. }) if code == "not_found" => Ok(false),
        // The person's node is gone, and they with it, though its entries stay listed
        // until their lease ends.
        Err(RequestError::NoResponders(_)) => Ok(false),
        Ok(other) => Err(AppError::internal(format!(
            "host control on another node failed: {other:?}"
        ))),
        Err(error) => Err(AppError::internal(format!(
            "host control on another node failed: {error}"
        ))),
    }
}

/// Tells every other node with part of the meeting that the host ended it.
pub async fn forward_end(live: &Live, meeting_id: i64) {
    for part in live.placement().remote_parts(meeting_id) {
        let Some(subject) = part.media_subject else {
            continue;
        };
        if let Err(error) = live
            .cascade
            .request(&subject, &MediaRequest::End { meeting_id })
            .await
        {
            tracing::warn!(meeting_id, node = %part.node_id, %error, "ending the meeting on another node failed");
        }
    }
}

/// Tells the local participants what changed in the other nodes' part of the
/// participant list, and the host what changed in their lobbies, and keeps both for
/// snapshots. `parts` come oldest write first, so someone listed twice keeps the
/// entry of the node written last. In lecture mode a viewer hears only of presenters
/// and the floor holder, as for local members.
pub fn apply_remote(room: &mut super::room::Room, parts: Vec<super::placement::RemotePart>) {
    let mut remote = BTreeMap::new();
    let mut remote_lobby = BTreeMap::new();
    for part in parts {
        for member in part.members {
            remote.insert(member.account_id, (part.node_id.clone(), member));
        }
        for waiting in part.lobby {
            remote_lobby.insert(waiting.account_id, (part.node_id.clone(), waiting));
        }
    }
    if room.remote_lobby != remote_lobby {
        room.remote_lobby = remote_lobby;
        room.send_lobby();
    }
    let meeting_id = room.meeting_id;
    for (account, (_, entry)) in &remote {
        if room.members.contains_key(account) {
            continue;
        }
        let before = room.remote.get(account).map(|(_, entry)| entry);
        if before == Some(entry) {
            continue;
        }
        room.broadcast_about(
            *account,
            &LiveMessage::MeetingParticipant {
                meeting_id,
                participant: entry.clone(),
            },
        );
    }
    for (account, (_, entry)) in &room.remote {
        if !remote.contains_key(account) && !room.members.contains_key(account) {
            room.broadcast_about(
                *account,
                &LiveMessage::MeetingParticipantLeft {
                    meeting_id,
                    account_id: *account,
                    participant: entry.participant.clone(),
                },
            );
        }
    }
    room.remote = remote;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_participant_round_trip() {
        let participant = relay_participant(42, "node.1");
        assert_eq!(
            parse_relay_participant(&participant),
            Some((42, "node.1".to_owned()))
        );
        assert_eq!(
            parse_relay_participant(&ParticipantId::from("m42-a7-3")),
            None
        );
    }

    /// Adds a member with a lecture role to the room and returns the receiving end
    /// of its connection's queue.
    fn add_member(
        room: &mut super::super::room::Room,
        account_id: i64,
        role: super::super::lecture::LectureRole,
    ) -> tokio::sync::mpsc::Receiver<crate::hub::registry::Outbound> {
        let (queue, receiver) = tokio::sync::mpsc::channel(64);
        let link = super::super::Link::new(
            account_id as u64,
            account_id,
            format!("account {account_id}"),
            crate::perm::Principal::default(),
            queue,
            Arc::new(crate::hub::registry::Kick::default()),
        );
        let member = super::super::room::Member {
            participant: ParticipantId::from(format!("m7-a{account_id}-1")),
            link,
            standing: crate::meetings::Standing::Member,
            connected: true,
            microphone: false,
            camera: false,
            screen: false,
            tracks: BTreeMap::new(),
            sources: BTreeMap::new(),
            mixed: false,
        };
        room.members.insert(account_id, member);
        if let Some(lecture) = room.lecture.as_mut() {
            lecture.roles.insert(account_id, role);
        }
        receiver
    }

    /// Returns the account ids of the `meeting_participant` messages queued.
    fn participants_sent(
        receiver: &mut tokio::sync::mpsc::Receiver<crate::hub::registry::Outbound>,
    ) -> Vec<i64> {
        let mut accounts = Vec::new();
        while let Ok(crate::hub::registry::Outbound::Text(text)) = receiver.try_recv() {
            let message: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
            if message["type"] == "meeting_participant" {
                accounts.push(message["participant"]["account_id"].as_i64().unwrap());
            }
        }
        accounts
    }

    #[test]
    fn lecture_viewers_on_other_nodes_reach_staff_only() {
        use super::super::lecture::{LectureFacts, LectureMode, LectureRole};
        let mut room = super::super::room::Room::new(7, false);
        room.lecture = Some(LectureMode::new(LectureFacts {
            lesson_id: 1,
            course_id: 1,
            presenters: HashSet::from([1, 3]),
        }));
        let mut presenter = add_member(&mut room, 1, LectureRole::Presenter);
        let mut viewer = add_member(&mut room, 2, LectureRole::Viewer);
        // Account 3 presents from another node, and account 4 watches there.
        let part = super::super::placement::RemotePart {
            node_id: "node-b".to_owned(),
            media_subject: None,
            members: vec![ParticipantEntry::sample(3), ParticipantEntry::sample(4)],
            lobby: Vec::new(),
        };
        apply_remote(&mut room, vec![part]);
        assert_eq!(participants_sent(&mut presenter), [3, 4]);
        assert_eq!(participants_sent(&mut viewer), [3]);

        let listed = |account_id| -> Vec<i64> {
            let snapshot = room.snapshot(account_id, false, 0);
            let mut accounts: Vec<i64> = snapshot
                .participants
                .iter()
                .map(|entry| entry.account_id)
                .collect();
            accounts.sort();
            accounts
        };
        assert_eq!(listed(1), [1, 2, 3, 4]);
        assert_eq!(listed(2), [1, 2, 3]);
    }

    #[test]
    fn requests_round_trip() {
        let request = MediaRequest::AddTrack {
            meeting_id: 7,
            node_id: "node-1".to_owned(),
            publisher: "m7-a3-1".to_owned(),
            mid: "0".to_owned(),
        };
        let text = serde_json::to_string(&request).unwrap();
        assert!(text.contains("\"type\":\"add_track\""), "{text}");
        let back: MediaRequest = serde_json::from_str(&text).unwrap();
        assert!(matches!(back, MediaRequest::AddTrack { meeting_id: 7, .. }));
    }
}
