//! Selective forwarding unit: the Dangwu media engine.

mod api;
pub mod engine;
pub mod error;
pub mod event;
pub mod forward;
pub mod ids;
pub mod sdp;

pub use api::{Sfu, SfuConfig};
pub use engine::room::RoomOptions;
pub use engine::shard::ShardStats;
pub use error::SfuError;
pub use event::{SfuEvent, TrackInfo};
pub use ids::{MediaKind, ParticipantId, Rid, RoomId, Ssrc, TrackId};
