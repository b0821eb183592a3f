//! Document approval (公文审批): templates, routes and the per-document
//! workflow.
//!
//! [`engine`] is the workflow itself as a pure state machine: no SQL, no
//! HTTP and no clock, so storage and the API drive it and persist its state
//! as JSON.

mod actions;
pub mod deadlines;
pub mod demo;
mod documents;
pub mod engine;
mod issue;
mod messages;
mod numbering;
mod print;
pub mod record;
pub mod record_pdf;
mod register;
pub mod store;
mod templates;

pub use actions::signed_message;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The approval API: templates, documents and workflow actions.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(templates::router())
        .merge(documents::router())
        .merge(actions::router())
        .merge(record::router())
        .merge(register::router())
        .merge(issue::router())
        .merge(print::router())
}
