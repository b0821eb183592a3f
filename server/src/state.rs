//! Shared state handed to every request handler.

use std::sync::Arc;

use ed25519_dalek::SigningKey;

use crate::config::Config;
use crate::db::Db;

/// Cheap to clone: everything lives behind one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub db: Db,
    pub audit_key: SigningKey,
    pub config: Config,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub hub: crate::hub::Hub,
    /// Live meeting rooms and the media engine.
    pub live: Arc<crate::meetings::live::Live>,
    /// Active study sessions, whose progress the server counts.
    pub study: Arc<crate::learning::Tracker>,
}

impl AppState {
    pub fn new(
        db: Db,
        audit_key: SigningKey,
        config: Config,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
        hub: crate::hub::Hub,
        live: Arc<crate::meetings::live::Live>,
    ) -> Self {
        Self(Arc::new(Inner {
            db,
            audit_key,
            config,
            metrics,
            hub,
            live,
            study: Arc::default(),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
