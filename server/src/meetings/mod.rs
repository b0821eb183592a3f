//! Meetings (会议): scheduling, attendance and quorum, votes and elections
//! with open or secret ballots, minutes and the archive behind the 三会一课
//! record.
//!
//! This module keeps the record; the live side (signaling, media, lobby)
//! calls [`access`], [`joined`], [`left`], [`set_locked`] and [`end`].
//! Every change takes the meeting's row lock first ([`store::lock`]), is
//! audited, and appends its `meeting:ID` hub event in the same transaction.

mod kind;
mod lifecycle;
mod presence;
pub mod rules;
pub mod store;

pub use kind::{Body, MeetingKind};
pub use lifecycle::{end, set_locked};
pub use presence::{Access, Standing, access, can_read, joined, left};
pub use store::MeetingStatus;
