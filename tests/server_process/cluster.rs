//! Three `dangwu serve --demo` processes on loopback that share one
//! PostgreSQL schema, one NATS server (under a subject prefix of their own),
//! one files directory and one audit key, and demo logins that work on every
//! node. Used by the multi-node tests through `#[path]`, next to `mod common`.

// Shared by several test binaries, each of which uses a part.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::time::Instant;

use super::common::{self, Backend, PATIENCE, Store};

/// Returns the NATS server of the tests: `DANGWU_TEST_NATS`, or the local
/// default.
pub fn nats_url() -> String {
    std::env::var("DANGWU_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How to start a cluster.
pub struct Settings {
    /// Start of the NATS prefix, which gets a unique suffix per cluster.
    pub label: &'static str,
    pub nats_url: String,
    /// Media region of each node, `None` for a node without one.
    pub regions: [Option<&'static str>; 3],
}

/// One `dangwu serve` process.
pub struct Node {
    pub child: Child,
    pub base: String,
    pub port: u16,
}

/// Three nodes over one store, NATS prefix and shared directory.
pub struct Cluster {
    pub store: Store,
    pub shared: TempDir,
    pub nats_url: String,
    pub prefix: String,
    regions: [Option<&'static str>; 3],
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Starts three nodes at once and waits until each is ready and lists
    /// every node. Whichever takes the startup lease first seeds the demo
    /// province, and the others find it.
    pub async fn start(settings: Settings) -> Self {
        common::install_crypto_provider();
        let store = Store::new(Backend::Postgres).await;
        let shared = tempfile::tempdir().unwrap();
        let prefix = common::unique_name(settings.label).replace('_', "-");
        let mut cluster = Self {
            store,
            shared,
            nats_url: settings.nats_url,
            prefix,
            regions: settings.regions,
            nodes: Vec::new(),
        };
        for index in 0..3 {
            let node = cluster.spawn(index, free_port());
            cluster.nodes.push(node);
        }
        for index in 0..3 {
            cluster.wait_ready(index).await;
        }
        cluster.wait_views_agree().await;
        cluster
    }

    /// Waits until every node has read every node's placement entry, which
    /// its pages' Content Security Policy lists as WebSocket origins. Nodes
    /// pick the same replacement for a lost node only from the same view.
    pub async fn wait_views_agree(&self) {
        let origins: Vec<String> = self
            .nodes
            .iter()
            .map(|node| node.base.replacen("http", "ws", 1))
            .collect();
        let deadline = Instant::now() + PATIENCE;
        for node in &self.nodes {
            loop {
                let response = reqwest::get(format!("{}/", node.base)).await.unwrap();
                let policy = response
                    .headers()
                    .get("content-security-policy")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                if origins
                    .iter()
                    .all(|origin| policy.contains(origin.as_str()))
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} never listed every node: {policy}",
                    node.base
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    pub fn node_dir(&self, index: usize) -> PathBuf {
        self.shared.path().join(format!("node-{index}"))
    }

    pub fn audit_key(&self) -> PathBuf {
        self.shared.path().join("audit-signing-key.pem")
    }

    fn spawn(&self, index: usize, port: u16) -> Node {
        let dir = self.node_dir(index);
        std::fs::create_dir_all(&dir).unwrap();
        // Appended to, so that a restarted node's log follows its first life.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("serve.log"))
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_dangwu"));
        command
            .arg("serve")
            .arg("--demo")
            .args(["--log-level", "info", "--media-shards", "1"])
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&dir)
            .arg("--database-url")
            .arg(&self.store.database_url)
            .arg("--files-dir")
            .arg(self.shared.path().join("files"))
            .arg("--audit-key-file")
            .arg(self.audit_key())
            .arg("--nats-url")
            .arg(&self.nats_url)
            .arg("--nats-prefix")
            .arg(&self.prefix)
            .arg("--node-id")
            .arg(format!("node-{index}"))
            .arg("--node-url")
            .arg(format!("http://127.0.0.1:{port}"));
        if let Some(region) = self.regions[index] {
            command.args(["--media-region", region]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dangwu serve");
        Node {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    pub async fn wait_ready(&self, index: usize) {
        self.wait_readiness(index, StatusCode::OK).await;
    }

    /// Polls `/readyz` of a node until it returns `expected`.
    pub async fn wait_readiness(&self, index: usize, expected: StatusCode) {
        let base = &self.nodes[index].base;
        let deadline = Instant::now() + PATIENCE * 2;
        while Instant::now() < deadline {
            let response = reqwest::get(format!("{base}/readyz")).await;
            if response.is_ok_and(|r| r.status() == expected) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(self.node_dir(index).join("serve.log"));
        panic!("/readyz of node {index} at {base} never returned {expected}; log: {log:?}");
    }

    pub fn base(&self, index: usize) -> &str {
        &self.nodes[index].base
    }

    pub fn index_of(&self, base: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| node.base == base)
            .unwrap_or_else(|| panic!("no node at {base}"))
    }

    /// Kills a node with SIGKILL, as a crash would.
    pub fn kill(&mut self, index: usize) {
        let child = &mut self.nodes[index].child;
        child.kill().expect("SIGKILL the node");
        child.wait().unwrap();
    }

    /// Starts a killed node again on its old port.
    pub async fn restart(&mut self, index: usize) {
        let port = self.nodes[index].port;
        self.nodes[index] = self.spawn(index, port);
        self.wait_ready(index).await;
    }

    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        let client = async_nats::connect(self.nats_url.as_str()).await.unwrap();
        async_nats::jetstream::new(client)
    }

    /// Stops every node and deletes the NATS stream and buckets of this
    /// cluster, checking that the nodes created them.
    pub async fn finish(mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
        let jetstream = self.jetstream().await;
        let stream = server::hub::nats::stream_name(&self.prefix);
        jetstream
            .delete_stream(&stream)
            .await
            .unwrap_or_else(|error| panic!("delete NATS stream {stream}: {error}"));
        for bucket in [
            server::hub::presence::bucket_name(&self.prefix),
            server::meetings::live::placement::bucket_name(&self.prefix),
        ] {
            jetstream
                .delete_key_value(&bucket)
                .await
                .unwrap_or_else(|error| panic!("delete NATS bucket {bucket}: {error}"));
        }
    }
}

impl Drop for Cluster {
    /// Stops every node, and after a failed check prints the end of each
    /// node's log.
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
        if std::thread::panicking() {
            for index in 0..self.nodes.len() {
                let log = std::fs::read_to_string(self.node_dir(index).join("serve.log"));
                let log = log.unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!(
                    "--- node {index} log, last lines first ---\n{}",
                    tail.join("\n")
                );
            }
        }
    }
}

/// A logged-in demo account, usable on every node.
#[derive(Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    pub account_id: i64,
}

pub async fn login(base: &str, username: &str) -> Session {
    let response = common::http_client()
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": username, "password": server::demo::DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "login {username}");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    let body: Value = response.json().await.unwrap();
    Session {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        account_id: body["account"]["id"].as_i64().unwrap(),
    }
}

/// Reads one gauge from a node's `/metrics`. A gauge that is not listed reads 0.
pub async fn gauge(base: &str, name: &str) -> f64 {
    let body = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until a node's gauge reads `expected`.
pub async fn gauge_reaches(base: &str, name: &str, expected: f64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = gauge(base, name).await;
        if value == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} at {base} is {value}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
