//! Dangwu server: the HTTP API, the domain logic and storage of the party
//! organization tree, members, identity and the audit trail.
//!
//! The binary crate parses the command line and calls [`serve::run`] and the
//! other commands here. Each HTTP resource lives in its own module and
//! exposes a `router()`; [`app::build`] puts them together.

pub mod app;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod calendar;
pub mod cert;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod files;
pub mod http;
pub mod hub;
pub mod i18n;
pub mod import;
pub mod learning;
pub mod lease;
pub mod meetings;
pub mod members;
pub mod membership;
pub mod notices;
pub mod org;
pub mod perm;
pub mod serve;
pub mod state;
pub mod todo;
pub mod web;
