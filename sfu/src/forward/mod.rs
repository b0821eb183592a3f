//! Forwarding decisions as plain state machines.
//!
//! Nothing here touches sockets, clocks or the WebRTC stack: every function takes the
//! current time and packet metadata and returns what to send. The engine applies the
//! results to real packets, and the tests drive the same code on a simulated clock.

pub mod bandwidth;
pub mod cache;
pub mod codec;
pub mod congestion;
pub mod forwarder;
pub mod keyframe;
pub mod layer;
pub mod seq;
pub mod speaker;
pub mod window;

#[cfg(test)]
mod scenarios;
