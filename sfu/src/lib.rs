//! Selective forwarding unit: the Dangwu media engine.
//!
//! The engine receives WebRTC audio and video from publishers and forwards it, without
//! decoding, to the participants that subscribe. It manages rooms, participants and tracks,
//! and has no notion of HTTP, storage or who may join what. The server decides that and
//! drives the engine through [`Sfu`].
//!
//! # Using the engine
//!
//! ```no_run
//! # async fn example(offer_from_browser: String) -> Result<(), sfu::SfuError> {
//! use sfu::{ParticipantId, RoomId, RoomOptions, Sfu, SfuConfig, SfuEvent};
//!
//! let (sfu, mut events) = Sfu::start(SfuConfig::default()).await?;
//! let room = RoomId::from("weekly");
//! sfu.create_room(room.clone(), RoomOptions { auto_subscribe: true }).await?;
//!
//! // The participant's first offer may publish tracks; the answer goes back to it.
//! let answer = sfu
//!     .join(&room, ParticipantId::from("alice"), offer_from_browser)
//!     .await?;
//! # let _ = answer;
//!
//! while let Some(event) = events.recv().await {
//!     match event {
//!         // Subscribing adds senders, so the engine offers and the participant answers.
//!         SfuEvent::Offer { participant, sdp } => {
//!             # let answer_from_browser = sdp;
//!             sfu.accept_answer(&room, participant, answer_from_browser).await?;
//!         }
//!         SfuEvent::TrackPublished { track, .. } => tracing::info!(track = %track.id, "published"),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Signaling rules:
//! - A participant's own offers go to [`Sfu::join`] (first) and [`Sfu::renegotiate`]
//!   (later: tracks added or removed). Every sending media section becomes a published
//!   track, announced with [`SfuEvent::TrackPublished`].
//! - The engine sends [`SfuEvent::Offer`] when a participant's subscriptions change;
//!   its answer goes to [`Sfu::accept_answer`]. While such an offer is pending,
//!   [`Sfu::renegotiate`] fails with [`SfuError::NegotiationInProgress`]; the participant
//!   answers first and offers again.
//! - The engine is ICE-lite with one UDP host candidate, plus a passive TCP host candidate
//!   when [`SfuConfig::tcp_port`] is set, and needs no trickled candidates from the
//!   participant.
//!
//! Media control: [`Sfu::subscribe`] and [`Sfu::unsubscribe`] when rooms do not
//! subscribe automatically, [`Sfu::set_max_layer`] to cap the simulcast layer (for
//! example by the rendered size), [`Sfu::set_paused`] to stop one track for one
//! subscriber, [`Sfu::set_blocked`] to stop a publisher's audio or video for everyone (a
//! host's mute), [`Sfu::tap_audio`] to receive a copy of a room's audio (a recording),
//! [`Sfu::publish_local`] to publish a track whose packets the caller writes (audio the
//! server mixes, or a track relayed from another engine).
//!
//! Relays between engines: [`Sfu::join_relay`] adds another engine's relay peer to a
//! room, subscribed only to the tracks passed to [`Sfu::subscribe`], and
//! [`RelayReceiver`] is the other end, which publishes the tracks it receives in a room
//! of this engine. The caller carries the offers and answers between the two.
//! Events also report connections, departures, the active speaker and keyframe request
//! counters.
//!
//! # Architecture
//!
//! | Module | Role |
//! |---|---|
//! | [`forward`] | forwarding decisions as plain state machines: layer choice, sequence and timestamp rewriting, keyframe requests, NACK cache, active speaker |
//! | [`engine::io`] | the node's UDP socket and ICE-TCP listener, routing each packet to its shard |
//! | [`engine::shard`] | sans-IO core of one shard: routing of packets to peers, rooms and peers |
//! | [`engine::driver`] | the tokio task that drives a shard and sends its packets |
//! | [`sdp`] | reading tracks, simulcast layers and header extension ids from offers |
//!
//! Each shard is one task with any number of peers; all shards share one UDP socket and
//! one ICE-TCP port. All participants of a room live in the same shard, so forwarding
//! never crosses tasks. Peer connections are
//! the sans-IO `RTCPeerConnection` of the `rtc` crate; `docs/design/media.md` records why.

mod api;
pub mod engine;
pub mod error;
pub mod event;
pub mod forward;
pub mod ids;
pub mod local;
pub mod relay;
pub mod sdp;
pub mod tap;

pub use api::{MAX_SHARDS, Sfu, SfuConfig};
pub use engine::room::RoomOptions;
pub use engine::shard::{DownlinkStats, ShardStats};
pub use error::SfuError;
pub use event::{SfuEvent, TrackInfo};
pub use ids::{MediaKind, ParticipantId, Rid, RoomId, Ssrc, TrackId};
pub use local::{
    KeyframeRequest, LocalCodec, LocalPacket, LocalTrack, LocalTrackOptions, LocalTrackWriter,
};
pub use relay::{RelayReceiver, RelayStats};
pub use tap::AudioPacket;
