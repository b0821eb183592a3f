//! Selective forwarding unit: the Dangwu media engine.

pub mod error;
pub mod forward;
pub mod ids;
