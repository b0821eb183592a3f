//! Meetings (会议): scheduling, attendance and quorum, votes and elections
//! with open or secret ballots, minutes and the archive behind the 三会一课
//! record.
//!
//! This module keeps the record; the live side (signaling, media, lobby)
//! calls [`access`], [`joined`], [`left`], [`set_locked`] and [`end`].
//! Every change takes the meeting's row lock first ([`store::lock`]), is
//! audited, and appends its `meeting:ID` hub event in the same transaction.
//! `docs/design/meetings.md` describes the rules and the ballot secrecy.

mod attendance;
mod ballots;
pub mod demo;
mod ics;
mod input;
mod kind;
mod lifecycle;
pub(crate) mod list;
pub mod live;
mod minutes;
pub mod presence;
pub mod recording;
mod roster;
pub mod rules;
mod schedule;
pub mod store;
mod view;
mod votes;

pub use input::MeetingInput;
pub use kind::{Body, MeetingKind};
pub use lifecycle::{end, set_locked};
pub use presence::{Access, Standing, access, can_read, joined, left};
pub use schedule::{can_manage, schedule_meeting};
pub use store::MeetingStatus;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Builds the meetings API, except the live-side routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(schedule::router())
        .merge(view::router())
        .merge(list::router())
        .merge(attendance::router())
        .merge(votes::router())
        .merge(minutes::router())
        .merge(recording::router())
}
