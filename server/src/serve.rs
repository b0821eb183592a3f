//! `dangwu serve`: open the store, build the application and serve it over
//! HTTP or HTTPS until SIGINT or SIGTERM, then drain and close cleanly.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::audit;
use crate::auth::accounts::bootstrap_system_accounts;
use crate::config::Config;
use crate::db::Db;
use crate::hub::{Hub, HubConfig};
use crate::lease;
use crate::meetings::live::Live;
use crate::state::AppState;

/// How long in-flight requests may run after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Lease held while creating the built-in accounts and the demo data.
const STARTUP_LEASE: &str = "startup";
/// Maximum time that a node which died during its first start blocks the others.
const STARTUP_LEASE_TTL: Duration = Duration::from_secs(120);
/// How often old hub events are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Installs the process-wide Prometheus recorder once and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            handle
        })
        .clone()
}

/// A server that is listening and ready to run.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    listener: TcpListener,
    router: Router,
}

impl Server {
    /// Opens the store, applies migrations, creates the built-in accounts
    /// (and the demo data with `--demo`) and binds the listening socket.
    pub async fn bind(config: Config) -> anyhow::Result<Self> {
        Self::bind_with(config, HubConfig::default()).await
    }

    /// Like [`Server::bind`], with the hub's limits and timers given.
    pub async fn bind_with(config: Config, hub: HubConfig) -> anyhow::Result<Self> {
        let db = Db::open(&config.store).await?;
        let key = audit::load_or_create_key_at(&config.store.audit_key_path())?;
        // Nodes starting together on an empty database would each create the
        // built-in accounts; the lease lets one do it and the others find them.
        lease::acquire(
            &db,
            STARTUP_LEASE,
            &config.node_id,
            STARTUP_LEASE_TTL,
            Duration::from_millis(200),
        )
        .await?;
        let fixed_password = config.demo.then_some(crate::demo::DEMO_PASSWORD);
        for (username, password) in bootstrap_system_accounts(&db, &key, fixed_password).await? {
            if !config.demo {
                println!(
                    "created administrator account {username} with one-time password {password}"
                );
            }
        }
        if config.demo {
            crate::demo::seed(&db, &key).await?;
            crate::demo::print_logins(&config.public_url);
        }
        lease::release(&db, STARTUP_LEASE, &config.node_id).await?;
        let (live, media_events) = Live::start(&config)
            .await
            .map_err(|error| anyhow::anyhow!("failed to start the media engine: {error}"))?;
        tracing::info!(addr = %live.media_udp_addr(), "media listening (udp)");
        if let Some(addr) = live.media_tcp_addr() {
            tracing::info!(%addr, "media listening (ICE-TCP)");
        }
        let hub = match &config.nats {
            None => Hub::local_with(hub),
            Some(nats) => Hub::with_nats(hub, nats, &config.node_id).await?,
        };
        if let Some(link) = hub.nats() {
            // The task ends with the process, like the hub's own NATS tasks.
            live.spawn_placement(link.context().clone(), link.prefix().to_owned());
        }
        let state = AppState::new(db, key, config.clone(), Some(metrics_handle()), hub, live);
        // Media connections recorded by an earlier run of this node ended with
        // that run. Without NATS this node is the only one, so every row is stale.
        let stale = if state.hub.nats().is_some() {
            crate::meetings::presence::Stale::ThisNode
        } else {
            crate::meetings::presence::Stale::AllNodes
        };
        crate::meetings::presence::purge_at_start(&state, stale).await?;
        if let Some(link) = state.hub.nats() {
            // Replies to liveness requests start before the listener, so no
            // other node takes this one for gone while it accepts joins.
            state.live.spawn_liveness(
                state.clone(),
                link.client().clone(),
                link.prefix().to_owned(),
            );
        }
        Live::spawn_events(state.clone(), media_events);
        if let Some(link) = state.hub.nats() {
            Live::spawn_cascade(state.clone(), link.client().clone(), link.prefix());
            Live::spawn_room_sync(state.clone(), link.client().clone(), link.prefix());
        }
        crate::meetings::recording::spawn_repair(state.clone());
        let router = crate::app::build(state.clone());
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        Ok(Self {
            addr,
            state,
            listener,
            router,
        })
    }

    /// Serves until `shutdown` completes, then drains in-flight requests and
    /// closes the database.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Server {
            addr,
            state,
            listener,
            router,
        } = self;
        let pruner = tokio::spawn(prune_hub_events(
            state.db.clone(),
            state.config.node_id.clone(),
        ));
        let deadlines = tokio::spawn(crate::approvals::deadlines::run(state.clone()));
        let membership = tokio::spawn(crate::membership::reminders::run(state.clone()));
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        match &state.config.tls {
            None => {
                tracing::info!(%addr, "listening (http)");
                axum::serve(listener, service)
                    .with_graceful_shutdown(shutdown)
                    .await?;
            }
            Some((cert, key)) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .map_err(|error| {
                        anyhow::anyhow!("failed to load TLS certificate or key: {error}")
                    })?;
                let handle = axum_server::Handle::new();
                let signal_handle = handle.clone();
                tokio::spawn(async move {
                    shutdown.await;
                    signal_handle.graceful_shutdown(Some(DRAIN_TIMEOUT));
                });
                tracing::info!(%addr, "listening (https)");
                axum_server::from_tcp_rustls(listener.into_std()?, tls)
                    .handle(handle)
                    .serve(service)
                    .await?;
            }
        }
        pruner.abort();
        deadlines.abort();
        membership.abort();
        state.live.shutdown(&state).await;
        state.db.close().await;
        tracing::info!("server stopped");
        Ok(())
    }
}

/// Deletes hub events past their retention period, hourly, on the node that
/// holds the `hub-prune` lease.
async fn prune_hub_events(db: Db, node_id: String) {
    let pruned = db.clone();
    lease::run_periodically(db, "hub-prune", node_id, PRUNE_INTERVAL, move || {
        let db = pruned.clone();
        async move {
            match crate::hub::store::prune(&db, crate::hub::store::RETENTION_MS).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "pruned old hub events"),
                Err(error) => tracing::error!(%error, "failed to prune hub events"),
            }
        }
    })
    .await
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "failed to listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received, draining");
}
