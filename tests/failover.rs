//! Failover of a live meeting: three `dangwu serve` processes on loopback
//! share one PostgreSQL schema and one NATS server, a meeting runs on one of
//! them with real WebRTC peers, and that node is killed with SIGKILL. The
//! clients report the lost node, are sent to a survivor, join there again
//! and exchange media. What was acknowledged before the kill holds after
//! it: a cast ballot is counted, a host mute still silences the person, and
//! attendance keeps one interval with the first arrival time. A node that
//! replies to the liveness request keeps its meeting.
//!
//! Needs PostgreSQL (see tests/common) and NATS with JetStream on
//! 127.0.0.1:4222, or the URL in `DANGWU_TEST_NATS`; `scripts/services`
//! starts both.

mod common;
#[path = "meeting_media/peer.rs"]
mod peer;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, PATIENCE, Store};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use peer::Peer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn nats_url() -> String {
    std::env::var("DANGWU_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// One `dangwu serve` process.
struct Node {
    child: Child,
    base: String,
}

/// Three nodes over one store, NATS prefix and shared directory.
struct Cluster {
    store: Store,
    shared: TempDir,
    prefix: String,
    nodes: Vec<Node>,
}

impl Cluster {
    async fn start() -> Self {
        common::install_crypto_provider();
        let store = Store::new(Backend::Postgres).await;
        let shared = tempfile::tempdir().unwrap();
        let prefix = common::unique_name("failover").replace('_', "-");
        let mut cluster = Self {
            store,
            shared,
            prefix,
            nodes: Vec::new(),
        };
        for index in 0..3 {
            let node = cluster.spawn(index);
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
    async fn wait_views_agree(&self) {
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

    fn node_dir(&self, index: usize) -> PathBuf {
        self.shared.path().join(format!("node-{index}"))
    }

    fn spawn(&self, index: usize) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = self.node_dir(index);
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("serve.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_dangwu"))
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
            .arg(self.shared.path().join("audit-signing-key.pem"))
            .arg("--nats-url")
            .arg(nats_url())
            .arg("--nats-prefix")
            .arg(&self.prefix)
            .arg("--node-id")
            .arg(format!("node-{index}"))
            .arg("--node-url")
            .arg(format!("http://127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dangwu serve");
        Node {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn wait_ready(&self, index: usize) {
        let base = &self.nodes[index].base;
        let deadline = Instant::now() + PATIENCE * 2;
        while Instant::now() < deadline {
            let response = reqwest::get(format!("{base}/readyz")).await;
            if response.is_ok_and(|r| r.status() == StatusCode::OK) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(self.node_dir(index).join("serve.log"));
        panic!("node {index} at {base} never became ready; log: {log:?}");
    }

    fn base(&self, index: usize) -> &str {
        &self.nodes[index].base
    }

    fn index_of(&self, base: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| node.base == base)
            .unwrap_or_else(|| panic!("no node at {base}"))
    }

    /// Kills a node with SIGKILL, as a crash would.
    fn kill(&mut self, index: usize) {
        let child = &mut self.nodes[index].child;
        child.kill().expect("SIGKILL the node");
        child.wait().unwrap();
    }

    /// Stops every node and deletes this cluster's NATS stream and buckets.
    async fn finish(mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
        let client = async_nats::connect(nats_url()).await.unwrap();
        let jetstream = async_nats::jetstream::new(client);
        let _ = jetstream
            .delete_stream(server::hub::nats::stream_name(&self.prefix))
            .await;
        for bucket in [
            server::hub::presence::bucket_name(&self.prefix),
            server::meetings::live::placement::bucket_name(&self.prefix),
        ] {
            let _ = jetstream.delete_key_value(&bucket).await;
        }
    }
}

impl Drop for Cluster {
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
struct Session {
    cookie: String,
    csrf: String,
    account_id: i64,
}

async fn login(base: &str, username: &str) -> Session {
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

async fn send(
    method: reqwest::Method,
    url: String,
    session: &Session,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut builder = common::http_client()
        .request(method.clone(), &url)
        .header("cookie", &session.cookie)
        .header("x-csrf-token", &session.csrf);
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let response = builder
        .send()
        .await
        .unwrap_or_else(|error| panic!("{method} {url}: {error}"));
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(base: &str, session: &Session, path: &str) -> Value {
    let url = format!("{base}{path}");
    let (status, body) = send(reqwest::Method::GET, url, session, None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

async fn post(base: &str, session: &Session, path: &str, body: Value) -> Value {
    let url = format!("{base}{path}");
    let (status, body) = send(reqwest::Method::POST, url, session, Some(body)).await;
    assert!(status.is_success(), "POST {path}: {status} {body}");
    body
}

/// One hub connection whose reader task replies to the server's offers with
/// answers of the current peer and keeps every other message.
struct Signal {
    sink: tokio::sync::Mutex<SplitSink<Ws, Message>>,
    inbox: Mutex<Vec<Value>>,
    peer: Mutex<Option<Arc<Peer>>>,
    closed: Mutex<bool>,
}

impl Signal {
    async fn connect(base: &str, session: &Session) -> Arc<Signal> {
        let url = format!("{}/ws?v=1", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("cookie", session.cookie.parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let (sink, mut stream) = ws.split();
        let signal = Arc::new(Signal {
            sink: tokio::sync::Mutex::new(sink),
            inbox: Mutex::new(Vec::new()),
            peer: Mutex::new(None),
            closed: Mutex::new(false),
        });
        let reader = Arc::clone(&signal);
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                let Message::Text(text) = frame else {
                    continue;
                };
                let message: Value = serde_json::from_str(&text).unwrap();
                if message["type"] == "meeting_offer" {
                    reader.answer_offer(&message).await;
                }
                reader.inbox.lock().unwrap().push(message);
            }
            *reader.closed.lock().unwrap() = true;
        });
        signal.wait(|message| message["type"] == "welcome").await;
        signal
    }

    async fn answer_offer(&self, offer: &Value) {
        let peer = self.peer.lock().unwrap().clone();
        let Some(peer) = peer else {
            return;
        };
        let sdp = peer.answer(offer["sdp"].as_str().unwrap()).await;
        let answer =
            json!({"type": "meeting_answer", "meeting_id": offer["meeting_id"], "sdp": sdp});
        let _ = self
            .sink
            .lock()
            .await
            .send(Message::text(answer.to_string()))
            .await;
    }

    async fn wait(&self, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = self
                .inbox
                .lock()
                .unwrap()
                .iter()
                .find(|m| matches(m))
                .cloned();
            if let Some(message) = found {
                return message;
            }
            assert!(Instant::now() < deadline, "timed out waiting for a message");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn is_closed(&self) -> bool {
        *self.closed.lock().unwrap()
    }

    /// Joins the meeting's media with a new peer that sends video and audio,
    /// and waits until the peer is connected.
    async fn enter(&self, meeting_id: i64) -> Arc<Peer> {
        let peer = Peer::new().await;
        *self.peer.lock().unwrap() = Some(Arc::clone(&peer));
        let id = format!("join-{}", rand::random::<u32>());
        let join = json!({"type": "meeting_join", "id": id, "meeting_id": meeting_id, "sdp": peer.offer().await});
        self.sink
            .lock()
            .await
            .send(Message::text(join.to_string()))
            .await
            .unwrap();
        let reply = self.wait(|message| message["id"] == id).await;
        assert_eq!(reply["type"], "meeting_joined", "{reply}");
        peer.apply_answer(reply["sdp"].as_str().unwrap()).await;
        wait_until("the media to connect", || peer.is_connected()).await;
        peer::spawn_media(Arc::clone(&peer));
        peer
    }
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `peer` has received `more` video packets from `account`
/// beyond those it had at the call.
async fn wait_for_video(peer: &Arc<Peer>, account: i64, more: usize) {
    let from = peer.from(account).video;
    wait_until(
        &format!("{more} more video packets from account {account}"),
        || peer.from(account).video >= from + more,
    )
    .await;
}

/// Returns the node the server at `base` chooses for the meeting, after the
/// page reported `unreachable` when given.
async fn node_choice(
    base: &str,
    session: &Session,
    meeting_id: i64,
    unreachable: Option<&str>,
) -> Value {
    let query = unreachable.map_or(String::new(), |node| format!("?unreachable={node}"));
    get(
        base,
        session,
        &format!("/api/meetings/{meeting_id}/node{query}"),
    )
    .await
}

/// Finds a scheduled online demo meeting, its host's username and the
/// username of a voting participant other than the host.
async fn demo_meeting(store: &Store) -> (i64, String, String) {
    let mut conn = store.connect().await;
    let (meeting_id, host): (i64, String) = sqlx::query_as(
        "SELECT mt.id, a.username FROM meetings mt JOIN accounts a ON a.member_id = mt.host_member \
         WHERE mt.status = 'scheduled' AND mt.online = 1 ORDER BY mt.id LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .expect("a scheduled demo meeting");
    let voter: String = sqlx::query_scalar(
        "SELECT a.username FROM meeting_participants p JOIN accounts a ON a.member_id = p.member_id \
         JOIN meetings mt ON mt.id = p.meeting_id \
         WHERE p.meeting_id = $1 AND p.voting = 1 AND p.member_id <> mt.host_member \
         AND p.member_id <> mt.recorder_member ORDER BY p.member_id LIMIT 1",
    )
    .bind(meeting_id)
    .fetch_one(&mut conn)
    .await
    .expect("a voting participant with an account");
    (meeting_id, host, voter)
}

/// Reads the attendance intervals of an account: `(joined_at, left_at)`.
async fn attendance(store: &Store, meeting_id: i64, account_id: i64) -> Vec<(i64, Option<i64>)> {
    let mut conn = store.connect().await;
    sqlx::query_as(
        "SELECT at.joined_at, at.left_at FROM meeting_attendance at \
         JOIN accounts a ON a.member_id = at.member_id \
         WHERE at.meeting_id = $1 AND a.id = $2 ORDER BY at.id",
    )
    .bind(meeting_id)
    .bind(account_id)
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// Counts the media connection rows that a node holds.
async fn connections_of(store: &Store, node_id: &str) -> i64 {
    let mut conn = store.connect().await;
    sqlx::query_scalar("SELECT COUNT(*) FROM meeting_live_connections WHERE node_id = $1")
        .bind(node_id)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// Marks every voting participant present, so the meeting is quorate, and
/// opens an open-ballot motion; returns the vote id.
async fn open_vote(base: &str, host: &Session, store: &Store, meeting_id: i64) -> i64 {
    let mut conn = store.connect().await;
    let voters: Vec<i64> = sqlx::query_scalar(
        "SELECT member_id FROM meeting_participants WHERE meeting_id = $1 AND voting = 1",
    )
    .bind(meeting_id)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for member_id in voters {
        let url = format!("{base}/api/meetings/{meeting_id}/attendance/{member_id}");
        let (status, body) = send(
            reqwest::Method::PUT,
            url,
            host,
            Some(json!({"present": true})),
        )
        .await;
        assert!(
            status.is_success(),
            "mark {member_id} present: {status} {body}"
        );
    }
    let motion = json!({"kind": "motion", "title": "表决故障切换", "ballot": "open",
        "pass_rule": "majority"});
    let vote = post(
        base,
        host,
        &format!("/api/meetings/{meeting_id}/votes"),
        motion,
    )
    .await;
    vote["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_survives_node_kill() {
    let mut cluster = Cluster::start().await;
    let (meeting_id, host_name, voter_name) = demo_meeting(&cluster.store).await;
    let host = login(cluster.base(0), &host_name).await;
    let voter = login(cluster.base(0), &voter_name).await;

    // Both go to the node that node 0 names, and meet there.
    let first = node_choice(cluster.base(0), &host, meeting_id, None).await;
    let lost_base = first["url"].as_str().unwrap().to_owned();
    let lost_id = first["node_id"].as_str().unwrap().to_owned();
    let lost = cluster.index_of(&lost_base);
    let host_signal = Signal::connect(&lost_base, &host).await;
    let host_peer = host_signal.enter(meeting_id).await;
    let voter_signal = Signal::connect(&lost_base, &voter).await;
    let voter_peer = voter_signal.enter(meeting_id).await;
    wait_for_video(&host_peer, voter.account_id, 30).await;
    wait_for_video(&voter_peer, host.account_id, 30).await;
    let arrival = attendance(&cluster.store, meeting_id, voter.account_id).await;
    assert_eq!(
        arrival.len(),
        1,
        "one interval before the kill: {arrival:?}"
    );
    assert_eq!(arrival[0].1, None, "{arrival:?}");

    // Acknowledged before the kill: a ballot and a host mute.
    let vote_id = open_vote(&lost_base, &host, &cluster.store, meeting_id).await;
    let ballot = json!({"choice": "for"});
    post(
        &lost_base,
        &voter,
        &format!("/api/meetings/{meeting_id}/votes/{vote_id}/ballot"),
        ballot,
    )
    .await;
    let mute = json!({"account_id": voter.account_id, "muted": true});
    post(
        &lost_base,
        &host,
        &format!("/api/meetings/{meeting_id}/live/mute"),
        mute,
    )
    .await;
    let audio_before = host_peer.from(voter.account_id).audio;
    wait_for_video(&host_peer, voter.account_id, 60).await;
    let muted_audio = host_peer.from(voter.account_id).audio - audio_before;
    // Packets on their way when the mute landed may still arrive.
    assert!(
        muted_audio < 10,
        "muted audio still flows: {muted_audio} packets"
    );

    let killed_at = Instant::now();
    cluster.kill(lost);
    wait_until("the hub sockets to close", || {
        host_signal.is_closed() && voter_signal.is_closed()
    })
    .await;
    host_peer.close().await;
    voter_peer.close().await;

    // Each page asks a different survivor, naming the node it lost. Both are
    // sent to one survivor at once, without waiting for the lease.
    let survivors: Vec<usize> = (0..3).filter(|index| *index != lost).collect();
    let host_choice = node_choice(
        cluster.base(survivors[0]),
        &host,
        meeting_id,
        Some(&lost_id),
    )
    .await;
    let voter_choice = node_choice(
        cluster.base(survivors[1]),
        &voter,
        meeting_id,
        Some(&lost_id),
    )
    .await;
    assert_ne!(host_choice["node_id"], lost_id.as_str(), "{host_choice}");
    assert_eq!(host_choice["node_id"], voter_choice["node_id"]);
    let next_base = host_choice["url"].as_str().unwrap().to_owned();

    let host_signal = Signal::connect(&next_base, &host).await;
    let host_peer = host_signal.enter(meeting_id).await;
    let voter_signal = Signal::connect(&next_base, &voter).await;
    let voter_peer = voter_signal.enter(meeting_id).await;
    wait_for_video(&host_peer, voter.account_id, 1).await;
    wait_for_video(&voter_peer, host.account_id, 1).await;
    eprintln!(
        "media flowed again {:?} after the kill",
        killed_at.elapsed()
    );

    // The host's mute still holds on the new node: the voter's video
    // arrives, its audio does not.
    wait_for_video(&host_peer, voter.account_id, 60).await;
    assert_eq!(
        host_peer.from(voter.account_id).audio,
        0,
        "the host's mute was lost in the move"
    );
    assert!(
        voter_peer.from(host.account_id).audio > 0,
        "the host's own audio still flows"
    );

    // The ballot cast before the kill is counted.
    let view = get(&next_base, &voter, &format!("/api/meetings/{meeting_id}")).await;
    let vote = view["votes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|vote| vote["id"] == vote_id)
        .unwrap_or_else(|| panic!("vote {vote_id} missing: {view}"));
    assert_eq!(vote["voted"], 1, "{vote}");
    assert_eq!(vote["i_voted"], true, "{vote}");
    let closed = post(
        &next_base,
        &host,
        &format!("/api/meetings/{meeting_id}/votes/{vote_id}/close"),
        json!({}),
    )
    .await;
    assert_eq!(closed["result"]["votes_for"], 1, "{closed}");

    // A survivor removes the dead node's connection rows once it is gone
    // past the grace period. The voter, back on a survivor, stays present
    // in one interval with the first arrival time.
    let deadline = Instant::now() + PATIENCE * 2;
    while connections_of(&cluster.store, &lost_id).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the connections of {lost_id} were never removed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let after = attendance(&cluster.store, meeting_id, voter.account_id).await;
    assert_eq!(after, arrival, "the move changed the voter's attendance");
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_node_is_not_evicted() {
    let cluster = Cluster::start().await;
    let (meeting_id, host_name, _) = demo_meeting(&cluster.store).await;
    let host = login(cluster.base(0), &host_name).await;
    let first = node_choice(cluster.base(0), &host, meeting_id, None).await;
    let hosting_base = first["url"].as_str().unwrap().to_owned();
    let hosting_id = first["node_id"].as_str().unwrap().to_owned();
    let signal = Signal::connect(&hosting_base, &host).await;
    let _peer = signal.enter(meeting_id).await;
    let other = (0..3)
        .find(|index| cluster.base(*index) != hosting_base)
        .unwrap();
    // Wait until the other node has read the hosting node's placement entry.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let choice = node_choice(cluster.base(other), &host, meeting_id, None).await;
        if choice["hosts_meeting"] == true {
            assert_eq!(choice["node_id"], hosting_id.as_str());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the meeting never showed as hosted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A page claims the hosting node is unreachable. It replies to the
    // liveness request, so it keeps the meeting.
    let choice = node_choice(cluster.base(other), &host, meeting_id, Some(&hosting_id)).await;
    assert_eq!(choice["node_id"], hosting_id.as_str(), "{choice}");
    assert_eq!(choice["hosts_meeting"], true, "{choice}");

    // A malformed node id is rejected.
    let url = format!(
        "{}/api/meetings/{meeting_id}/node?unreachable=a%20b",
        cluster.base(other)
    );
    let (status, body) = send(reqwest::Method::GET, url, &host, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "unreachable", "{body}");
    cluster.finish().await;
}
