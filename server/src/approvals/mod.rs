//! Document approval (公文审批): templates, routes and the per-document
//! workflow.
//!
//! [`engine`] is the workflow itself as a pure state machine: no SQL, no
//! HTTP and no clock, so storage and the API drive it and persist its state
//! as JSON.

pub mod engine;
