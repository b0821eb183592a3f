//! Several nodes: three `dangwu serve` processes on loopback that share one
//! PostgreSQL schema, one NATS server (under a subject prefix of their own),
//! one files directory and one audit key. The tests check that hub events
//! reach every node in the same order and resume on another node, that
//! concurrent audit appends keep one chain, that a node killed with
//! SIGKILL loses nothing acknowledged, and that delivery resumes after the
//! NATS server restarts. Presence on a topic covers every node's
//! connections and drops a killed node's people after the lease. The node
//! chosen for a meeting follows the placement bucket: the hosting node in
//! the caller's region first, else the least loaded node of that region.
//! A meeting spread over nodes relays media between their engines, once
//! per track and node, and host controls reach people on other nodes: the
//! host sees and admits people waiting in other nodes' lobbies, and a
//! removal holds on every node. Lecture mode hides viewers from viewers
//! across nodes.
//! Background-task leases are checked on both database backends.
//!
//! Needs PostgreSQL (see tests/common) and NATS with JetStream on
//! 127.0.0.1:4222, or the URL in `DANGWU_TEST_NATS`; `scripts/services`
//! starts both.

#[path = "meeting_media/audio.rs"]
mod audio;
#[path = "server_process/cluster.rs"]
mod cluster;
mod common;
#[path = "meeting_media/peer.rs"]
mod peer;
#[path = "meeting_media/signal.rs"]
mod signal;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use audio::{decode_all, opus_packets, tone_power};
use cluster::{Cluster, Session, Settings, free_port, gauge_reaches, login, nats_url};
use common::{Backend, PATIENCE, Store};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use signal::Signal;
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

impl signal::Credentials for Session {
    fn auth_header(&self) -> (&'static str, String) {
        ("cookie", self.cookie.clone())
    }
}

on_both_backends!(lease_has_one_holder);

/// Media region of each node: node 0 alone in `north`, nodes 1 and 2 in `south`.
const REGIONS: [Option<&str>; 3] = [Some("north"), Some("south"), Some("south")];

/// Starts three nodes at once on the given NATS server.
async fn start_on(nats_url: String) -> Cluster {
    Cluster::start(Settings {
        label: "nodes",
        nats_url,
        regions: REGIONS,
    })
    .await
}

async fn start() -> Cluster {
    start_on(nats_url()).await
}

/// Checks the audit chain with `dangwu audit verify` over the cluster's
/// database and key.
fn verify_audit(cluster: &Cluster) {
    let output = Command::new(env!("CARGO_BIN_EXE_dangwu"))
        .args(["audit", "verify", "--data-dir"])
        .arg(cluster.node_dir(0))
        .arg("--database-url")
        .arg(&cluster.store.database_url)
        .arg("--audit-key-file")
        .arg(cluster.audit_key())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn request(
    method: reqwest::Method,
    url: String,
    session: &Session,
    body: Option<Value>,
) -> reqwest::Result<(StatusCode, Value)> {
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let mut builder = client
        .request(method, url)
        .header("cookie", &session.cookie)
        .header("x-csrf-token", &session.csrf);
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let response = builder.send().await?;
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

async fn post(base: &str, session: &Session, path: &str, body: Value) -> Value {
    let (status, body) = request(
        reqwest::Method::POST,
        format!("{base}{path}"),
        session,
        Some(body),
    )
    .await
    .unwrap();
    assert!(status.is_success(), "POST {path}: {status} {body}");
    body
}

async fn get(base: &str, session: &Session, path: &str) -> Value {
    let (status, body) = request(reqwest::Method::GET, format!("{base}{path}"), session, None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

/// Creates and submits a document drafted by `dangyuan` with a one-step
/// route to the branch secretary `zhibu`; returns its id.
async fn submitted_document(base: &str, drafter: &Session) -> i64 {
    let secretary = login(base, "zhibu").await;
    let orgs = get(base, drafter, "/api/orgs").await;
    let org_id = orgs[0]["id"].as_i64().unwrap();
    let template = json!({"org_id": org_id, "definition": {"name": "书记审批", "steps": [
        {"id": "sign", "name": "书记签发", "kind": {"type": "single"},
         "assignees": [{"role": {"role": "secretary", "org": "issuing"}}]}]}});
    let saved = post(base, &secretary, "/api/approvals/templates", template).await;
    let document = json!({"org_id": org_id, "title": "多节点检查", "doc_type": "请示",
        "security_level": "internal", "template_id": saved["id"]});
    let view = post(base, drafter, "/api/documents", document).await;
    let id = view["document"]["id"].as_i64().unwrap();
    let submit = json!({"action": "submit", "based_on_version": 0});
    post(
        base,
        drafter,
        &format!("/api/documents/{id}/actions"),
        submit,
    )
    .await;
    id
}

/// Posts a comment; returns whether the server acknowledged it, with the
/// reason when it did not.
async fn try_comment(
    base: &str,
    session: &Session,
    document: i64,
    text: &str,
) -> Result<(), String> {
    let body = json!({"action": "comment", "based_on_version": 1, "text": text});
    let url = format!("{base}/api/documents/{document}/actions");
    match request(reqwest::Method::POST, url, session, Some(body)).await {
        Ok((StatusCode::OK, _)) => Ok(()),
        Ok((status, body)) => Err(format!("{status} {body}")),
        Err(error) => Err(error.to_string()),
    }
}

async fn comment(base: &str, session: &Session, document: i64, text: &str) -> bool {
    let result = try_comment(base, session, document, text).await;
    if let Err(reason) = &result {
        eprintln!("comment {text:?} through {base} failed: {reason}");
    }
    result.is_ok()
}

/// Posts `count` comments through one node, one after another, and returns
/// the texts that were acknowledged before the first failure other than a
/// stale version.
fn spawn_writer(
    base: String,
    session: Session,
    document: i64,
    label: &'static str,
    count: usize,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        for n in 0..count {
            let text = format!("{label} 意见 {n}");
            // Actions on one document are serialized: a comment that raced
            // another one is rejected as stale, and a client sends it again.
            let mut result = try_comment(&base, &session, document, &text).await;
            while result
                .as_ref()
                .is_err_and(|reason| reason.contains("stale_version"))
            {
                result = try_comment(&base, &session, document, &text).await;
            }
            if result.is_err() {
                break;
            }
            acknowledged.push(text);
        }
        acknowledged
    })
}

async fn connect(base: &str, session: &Session) -> Ws {
    let url = format!("{}/ws?v=1", base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", session.cookie.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    ws
}

/// Reads the next JSON message, skipping control frames. The server's
/// pings do not extend the wait.
async fn next_json(ws: &mut Ws) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a message within the timeout")
            .expect("the connection is open")
            .expect("a valid frame");
        match frame {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Subscribes and returns the topic's sequence number at that moment.
async fn subscribe(ws: &mut Ws, topic: &str, since: Option<i64>) -> i64 {
    let mut message = json!({"type": "subscribe", "id": "s", "topic": topic});
    if let Some(since) = since {
        message["since"] = json!(since);
    }
    ws.send(Message::text(message.to_string())).await.unwrap();
    loop {
        let reply = next_json(ws).await;
        match reply["type"].as_str() {
            Some("subscribed") => return reply["seq"].as_i64().unwrap(),
            Some("presence") => continue,
            _ => panic!("unexpected reply to subscribe: {reply}"),
        }
    }
}

/// Reads events until the one with sequence number `until`, checking that
/// they come without gaps or repeats after `after`; returns them.
async fn events_until(ws: &mut Ws, topic: &str, after: i64, until: i64) -> Vec<Value> {
    let mut events = Vec::new();
    let mut last = after;
    while last < until {
        let message = next_json(ws).await;
        if message["type"] != "event" {
            assert_ne!(message["type"], "reset", "unexpected reset: {message}");
            continue;
        }
        assert_eq!(message["topic"], topic);
        let seq = message["seq"].as_i64().unwrap();
        assert_eq!(seq, last + 1, "events out of order or missing: {message}");
        last = seq;
        events.push(message);
    }
    events
}

fn comment_text(event: &Value) -> Option<&str> {
    event["data"]["action"]["text"].as_str()
}

async fn topic_head(store: &Store, topic: &str) -> i64 {
    let mut conn = store.connect().await;
    sqlx::query_scalar("SELECT last_seq FROM hub_topics WHERE topic = $1")
        .bind(topic)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_events_cross_nodes_and_resume() {
    let cluster = start().await;
    let drafter = login(cluster.base(0), "dangyuan").await;
    let document = submitted_document(cluster.base(0), &drafter).await;
    let topic = format!("document:{document}");

    let mut on_node1 = connect(cluster.base(1), &drafter).await;
    let mut on_node2 = connect(cluster.base(2), &drafter).await;
    let start = subscribe(&mut on_node1, &topic, None).await;
    assert_eq!(subscribe(&mut on_node2, &topic, None).await, start);

    // Events committed on node 0 alone reach the other nodes' clients live.
    for n in 0..5 {
        assert!(comment(cluster.base(0), &drafter, document, &format!("单点 {n}")).await);
    }
    let seen1 = events_until(&mut on_node1, &topic, start, start + 5).await;
    let seen2 = events_until(&mut on_node2, &topic, start, start + 5).await;
    assert_eq!(seen1, seen2);
    assert_eq!(comment_text(&seen1[4]), Some("单点 4"));

    // Writers on all three nodes at once: every client sees one order.
    let writers = [
        spawn_writer(cluster.base(0).into(), drafter.clone(), document, "甲", 15),
        spawn_writer(cluster.base(1).into(), drafter.clone(), document, "乙", 15),
        spawn_writer(cluster.base(2).into(), drafter.clone(), document, "丙", 15),
    ];
    for writer in writers {
        assert_eq!(writer.await.unwrap().len(), 15);
    }
    let head = topic_head(&cluster.store, &topic).await;
    assert_eq!(head, start + 5 + 45);
    let seen1 = events_until(&mut on_node1, &topic, start + 5, head).await;
    let seen2 = events_until(&mut on_node2, &topic, start + 5, head).await;
    assert_eq!(seen1, seen2, "clients on two nodes saw different orders");

    // The client on node 1 drops, events go on, and it resumes on node 0.
    on_node1.close(None).await.unwrap();
    for n in 0..4 {
        assert!(comment(cluster.base(2), &drafter, document, &format!("离线 {n}")).await);
    }
    let mut resumed = connect(cluster.base(0), &drafter).await;
    assert_eq!(subscribe(&mut resumed, &topic, Some(head)).await, head + 4);
    let replayed = events_until(&mut resumed, &topic, head, head + 4).await;
    let texts: Vec<_> = replayed.iter().filter_map(comment_text).collect();
    assert_eq!(texts, ["离线 0", "离线 1", "离线 2", "离线 3"]);
    assert!(comment(cluster.base(1), &drafter, document, "恢复后").await);
    let live = events_until(&mut resumed, &topic, head + 4, head + 5).await;
    assert_eq!(comment_text(&live[0]), Some("恢复后"));

    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_appends_from_nodes_keep_one_chain() {
    let cluster = start().await;
    let drafter = login(cluster.base(0), "dangyuan").await;
    let document = submitted_document(cluster.base(0), &drafter).await;
    let writers = [
        spawn_writer(cluster.base(0).into(), drafter.clone(), document, "甲", 25),
        spawn_writer(cluster.base(1).into(), drafter.clone(), document, "乙", 25),
        spawn_writer(cluster.base(2).into(), drafter.clone(), document, "丙", 25),
    ];
    for writer in writers {
        assert_eq!(writer.await.unwrap().len(), 25);
    }

    let mut conn = cluster.store.connect().await;
    let comments: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'document.comment' AND target_id = $1",
    )
    .bind(document.to_string())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(comments, 75);
    let (count, max_seq): (i64, i64) = sqlx::query_as("SELECT COUNT(*), MAX(seq) FROM audit_log")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(count, max_seq, "audit sequence numbers have gaps");
    let forks: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT prev_hash FROM audit_log GROUP BY prev_hash \
         HAVING COUNT(*) > 1) AS shared",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(forks, 0, "two entries follow the same entry");
    verify_audit(&cluster);
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_loses_nothing_acknowledged() {
    let mut cluster = start().await;
    let drafter = login(cluster.base(0), "dangyuan").await;
    let document = submitted_document(cluster.base(0), &drafter).await;
    let topic = format!("document:{document}");
    let mut watcher = connect(cluster.base(0), &drafter).await;
    let start = subscribe(&mut watcher, &topic, None).await;

    let victim = spawn_writer(cluster.base(1).into(), drafter.clone(), document, "乙", 400);
    let survivors = [
        spawn_writer(cluster.base(0).into(), drafter.clone(), document, "甲", 30),
        spawn_writer(cluster.base(2).into(), drafter.clone(), document, "丙", 30),
    ];
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.kill(1);
    let mut acknowledged = victim.await.unwrap();
    assert!(!acknowledged.is_empty(), "node 1 acknowledged comments");
    assert!(
        acknowledged.len() < 400,
        "the kill landed during the writes"
    );
    for survivor in survivors {
        let written = survivor.await.unwrap();
        assert_eq!(written.len(), 30, "surviving nodes keep working");
        acknowledged.extend(written);
    }

    // Every acknowledged comment is stored and was delivered, in order.
    let view = get(
        cluster.base(2),
        &drafter,
        &format!("/api/documents/{document}"),
    )
    .await;
    let stored: Vec<&str> = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["action"]["text"].as_str())
        .collect();
    for text in &acknowledged {
        assert!(stored.contains(&text.as_str()), "{text:?} lost");
    }
    let head = topic_head(&cluster.store, &topic).await;
    let events = events_until(&mut watcher, &topic, start, head).await;
    let delivered: Vec<&str> = events.iter().filter_map(comment_text).collect();
    for text in &acknowledged {
        assert!(delivered.contains(&text.as_str()), "{text:?} not delivered");
    }

    // The killed node comes back and serves the same state.
    cluster.restart(1).await;
    let view = get(
        cluster.base(1),
        &drafter,
        &format!("/api/documents/{document}"),
    )
    .await;
    let count = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["action"]["text"].is_string())
        .count();
    assert_eq!(count, stored.len());
    verify_audit(&cluster);
    cluster.finish().await;
}

/// A NATS server of this test's own on a free loopback port, so that it
/// can be killed without disturbing other tests.
struct PrivateNats {
    child: Child,
    port: u16,
    store_dir: TempDir,
}

impl PrivateNats {
    fn start() -> Self {
        let store_dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Self::spawn(port, store_dir.path());
        Self {
            child,
            port,
            store_dir,
        }
    }

    fn spawn(port: u16, store_dir: &std::path::Path) -> Child {
        let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned());
        Command::new(&binary)
            .args(["-a", "127.0.0.1", "-js", "-p"])
            .arg(port.to_string())
            .arg("-sd")
            .arg(store_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("start {binary} (set NATS_SERVER): {error}"))
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn wait_listening(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn restart(&mut self) {
        self.child = Self::spawn(self.port, self.store_dir.path());
        self.wait_listening().await;
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_resumes_delivery() {
    let mut nats = PrivateNats::start();
    nats.wait_listening().await;
    let cluster = start_on(nats.url()).await;
    let drafter = login(cluster.base(0), "dangyuan").await;
    let document = submitted_document(cluster.base(0), &drafter).await;
    let topic = format!("document:{document}");
    let mut watcher = connect(cluster.base(1), &drafter).await;
    let start = subscribe(&mut watcher, &topic, None).await;
    assert!(comment(cluster.base(0), &drafter, document, "之前").await);
    events_until(&mut watcher, &topic, start, start + 1).await;

    // Without NATS the nodes are not ready, but writes still succeed.
    nats.kill();
    cluster
        .wait_readiness(0, StatusCode::SERVICE_UNAVAILABLE)
        .await;
    cluster
        .wait_readiness(1, StatusCode::SERVICE_UNAVAILABLE)
        .await;
    assert!(comment(cluster.base(0), &drafter, document, "中断时").await);

    // The restarted server lost the in-memory stream; the nodes recreate it
    // and the client on node 1 gets both events, in order.
    nats.restart().await;
    cluster.wait_ready(0).await;
    cluster.wait_ready(1).await;
    // Publishes fail until a node has recreated the stream, so comments go
    // out until one of them reaches node 1.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut sent = 0;
    let first = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event after the restart"
        );
        let text = format!("恢复后 {sent}");
        assert!(comment(cluster.base(0), &drafter, document, &text).await);
        sent += 1;
        if let Ok(message) =
            tokio::time::timeout(Duration::from_secs(2), next_json(&mut watcher)).await
        {
            break message;
        }
    };
    assert_eq!(first["type"], "event", "{first}");
    assert_eq!(first["seq"], start + 2);
    assert_eq!(comment_text(&first), Some("中断时"));
    let head = topic_head(&cluster.store, &topic).await;
    assert_eq!(head, start + 2 + sent);
    let rest = events_until(&mut watcher, &topic, start + 2, head).await;
    assert_eq!(comment_text(&rest[0]), Some("恢复后 0"));
    cluster.finish().await;
}

async fn lease_has_one_holder(backend: Backend) {
    let store = Store::new(backend).await;
    let db = server::db::Db::open(&store.config()).await.unwrap();
    let ttl = Duration::from_millis(400);
    let acquire = |holder: &'static str| {
        let db = db.clone();
        async move {
            server::lease::try_acquire(&db, "sweep", holder, ttl)
                .await
                .unwrap()
        }
    };
    assert!(acquire("a").await, "a free lease is taken");
    assert!(!acquire("b").await, "a held lease is not taken");
    assert!(acquire("a").await, "the holder renews");
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    assert!(acquire("b").await, "an expired lease is taken over");
    assert!(!acquire("a").await, "the old holder lost it");
    server::lease::release(&db, "sweep", "a").await.unwrap();
    assert!(!acquire("a").await, "release by a non-holder does nothing");
    server::lease::release(&db, "sweep", "b").await.unwrap();
    assert!(acquire("a").await, "a released lease is free");

    // Racing nodes: exactly one of many concurrent takers wins.
    let racers: Vec<_> = ["r1", "r2", "r3", "r4", "r5", "r6"]
        .into_iter()
        .map(|holder| {
            let db = db.clone();
            tokio::spawn(async move {
                server::lease::try_acquire(&db, "race", holder, Duration::from_secs(60))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        winners += usize::from(racer.await.unwrap());
    }
    assert_eq!(winners, 1);
    db.close().await;
}

/// Sends a hub request with `id` and returns the reply carrying that id.
/// Messages pushed meanwhile go to `pushed`.
async fn hub_request(ws: &mut Ws, mut message: Value, id: &str, pushed: &mut Vec<Value>) -> Value {
    message["id"] = json!(id);
    ws.send(Message::text(message.to_string())).await.unwrap();
    loop {
        let reply = next_json(ws).await;
        if reply["id"] == id {
            return reply;
        }
        pushed.push(reply);
    }
}

async fn study_start(ws: &mut Ws, lesson_id: i64, pushed: &mut Vec<Value>) -> String {
    let start =
        json!({"type": "study_start", "lesson_id": lesson_id, "position": 0, "visible": true});
    let reply = hub_request(ws, start, "start", pushed).await;
    assert_eq!(reply["type"], "study_started", "{reply}");
    reply["nonce"].as_str().unwrap().to_owned()
}

async fn study_progress(
    ws: &mut Ws,
    lesson_id: i64,
    nonce: &str,
    seq: u64,
    pushed: &mut Vec<Value>,
) -> Value {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let progress = json!({"type": "study_progress", "lesson_id": lesson_id, "nonce": nonce,
        "seq": seq, "position": seq as f64 * 0.5, "playing": true, "visible": true});
    hub_request(ws, progress, &format!("p{seq}"), pushed).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn study_on_other_node_pauses_first() {
    let cluster = start().await;
    let learner = login(cluster.base(0), "dangyuan").await;
    let courses = get(cluster.base(0), &learner, "/api/learning/courses").await;
    let course_id = courses
        .as_array()
        .unwrap()
        .iter()
        .find(|course| course["lesson_count"].as_i64() > Some(0))
        .expect("a demo course with lessons")["id"]
        .as_i64()
        .unwrap();
    let course = get(
        cluster.base(0),
        &learner,
        &format!("/api/learning/courses/{course_id}"),
    )
    .await;
    let lesson_id = course["lessons"][0]["id"].as_i64().unwrap();

    let mut first_pushed = Vec::new();
    let mut first = connect(cluster.base(0), &learner).await;
    let first_nonce = study_start(&mut first, lesson_id, &mut first_pushed).await;
    let ack = study_progress(&mut first, lesson_id, &first_nonce, 1, &mut first_pushed).await;
    assert_eq!(ack["status"], "counted", "{ack}");

    let mut second_pushed = Vec::new();
    let mut second = connect(cluster.base(1), &learner).await;
    let second_nonce = study_start(&mut second, lesson_id, &mut second_pushed).await;

    let refused = study_progress(&mut first, lesson_id, &first_nonce, 2, &mut first_pushed).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "study_paused", "{refused}");
    let after = study_progress(&mut first, lesson_id, &first_nonce, 3, &mut first_pushed).await;
    assert_eq!(after["code"], "study_not_active", "{after}");
    // The pushed message may come after the reply to the refused report.
    assert!(
        first_pushed
            .iter()
            .any(|m| m["type"] == "study_paused" && m["reason"] == "other_session"),
        "the first tab is told it is paused: {first_pushed:?}"
    );

    let ack = study_progress(&mut second, lesson_id, &second_nonce, 1, &mut second_pushed).await;
    assert_eq!(ack["status"], "counted", "{ack}");

    let mut conn = cluster.store.connect().await;
    let holder: String =
        sqlx::query_scalar("SELECT node_id FROM learning_study_claims WHERE lesson_id = $1")
            .bind(lesson_id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(holder, "node-1");
    cluster.finish().await;
}

/// Reads messages until the topic's presence lists `count` people; returns
/// their entries. Every subscription gets a presence message, before or
/// after its `subscribed` reply, so no change is missed.
async fn presence_with(ws: &mut Ws, topic: &str, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut last = None;
    loop {
        let Ok(message) = tokio::time::timeout_at(deadline, next_json(ws)).await else {
            panic!("presence on {topic} never listed {count} people; last {last:?}");
        };
        if message["type"] == "presence" && message["topic"] == topic {
            let online = message["online"].as_array().unwrap().clone();
            if online.len() == count {
                return online;
            }
            last = Some(online);
        }
    }
}

async fn send_subscribe(ws: &mut Ws, topic: &str) {
    let message = json!({"type": "subscribe", "id": "s", "topic": topic});
    ws.send(Message::text(message.to_string())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_spans_nodes_and_expires() {
    let mut cluster = start().await;
    let drafter = login(cluster.base(0), "dangyuan").await;
    let secretary = login(cluster.base(1), "zhibu").await;
    let document = submitted_document(cluster.base(0), &drafter).await;
    let topic = format!("document:{document}");

    let mut on_node0 = connect(cluster.base(0), &drafter).await;
    send_subscribe(&mut on_node0, &topic).await;
    let alone = presence_with(&mut on_node0, &topic, 1).await;

    // Each client sees both people, although each node has one of them.
    let mut on_node1 = connect(cluster.base(1), &secretary).await;
    send_subscribe(&mut on_node1, &topic).await;
    let seen1 = presence_with(&mut on_node1, &topic, 2).await;
    let seen0 = presence_with(&mut on_node0, &topic, 2).await;
    assert_eq!(seen0, seen1);
    assert!(seen0.contains(&alone[0]), "{seen0:?} lacks {alone:?}");

    // Node 1 dies without a word; its person drops out after the lease.
    cluster.kill(1);
    let after = presence_with(&mut on_node0, &topic, 1).await;
    assert_eq!(after, alone);
    cluster.finish().await;
}

/// Requests from `base` the node that should carry the meeting until the
/// response names `expected`; returns that response.
async fn node_choice(
    base: &str,
    session: &Session,
    meeting_id: i64,
    region: Option<&str>,
    expected: &str,
) -> Value {
    let client = common::http_client();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut builder = client
            .get(format!("{base}/api/meetings/{meeting_id}/node"))
            .header("cookie", &session.cookie);
        if let Some(region) = region {
            builder = builder.header("x-dangwu-region", region);
        }
        let response = builder.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let choice: Value = response.json().await.unwrap();
        if choice["node_id"] == expected {
            return choice;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base} never chose {expected} for region {region:?}; last answer {choice}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Joins the meeting's media through a hub socket on `base` with a real
/// WebRTC peer and keeps sending media; returns the socket and the peer.
async fn join_media(base: &str, session: &Session, meeting_id: i64) -> (Ws, Arc<peer::Peer>) {
    let mut ws = connect(base, session).await;
    let peer = peer::Peer::new().await;
    let join = json!({"type": "meeting_join", "meeting_id": meeting_id, "sdp": peer.offer().await});
    let reply = hub_request(&mut ws, join, "join", &mut Vec::new()).await;
    assert_eq!(reply["type"], "meeting_joined", "{reply}");
    peer.apply_answer(reply["sdp"].as_str().unwrap()).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !peer.is_connected() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "media never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    peer::spawn_media(peer.clone());
    (ws, peer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_node_follows_placement() {
    let mut cluster = start().await;
    // A scheduled online demo meeting, and its host, who may open it.
    let mut conn = cluster.store.connect().await;
    let (meeting_id, username): (i64, String) = sqlx::query_as(
        "SELECT mt.id, a.username FROM meetings mt JOIN accounts a ON a.member_id = mt.host_member \
         WHERE mt.status = 'scheduled' AND mt.online = 1 ORDER BY mt.id LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .expect("a scheduled demo meeting");
    let host = login(cluster.base(0), &username).await;

    // No one is in the meeting: the least loaded node of the caller's
    // region, with ties going to the node that handles the request.
    let choice = node_choice(cluster.base(0), &host, meeting_id, Some("south"), "node-1").await;
    assert_eq!(choice["url"], cluster.base(1));
    assert_eq!(choice["region"], "south");
    assert_eq!(choice["this_node"], false);
    assert_eq!(choice["hosts_meeting"], false);
    let choice = node_choice(cluster.base(2), &host, meeting_id, None, "node-2").await;
    assert_eq!(
        choice["this_node"], true,
        "no header: the answering node's region"
    );
    node_choice(cluster.base(1), &host, meeting_id, Some("north"), "node-0").await;

    // The host joins on node 2, which records its part of the meeting.
    let (_ws, peer) = join_media(cluster.base(2), &host, meeting_id).await;
    let choice = node_choice(cluster.base(0), &host, meeting_id, Some("south"), "node-2").await;
    assert_eq!(choice["hosts_meeting"], true);
    assert_eq!(choice["participants"], 1);
    // No host in the caller's region: the region's own node, which relays.
    let choice = node_choice(cluster.base(1), &host, meeting_id, Some("north"), "node-0").await;
    assert_eq!(choice["hosts_meeting"], false);
    // A region without nodes: the hosting node, so no relay is needed.
    node_choice(cluster.base(1), &host, meeting_id, Some("west"), "node-2").await;
    let jetstream = cluster.jetstream().await;
    let bucket = jetstream
        .get_key_value(server::meetings::live::placement::bucket_name(
            &cluster.prefix,
        ))
        .await
        .unwrap();
    let key = format!("meeting.{meeting_id}.node-2");
    let entry: Value = serde_json::from_slice(&bucket.get(&key).await.unwrap().unwrap()).unwrap();
    assert_eq!(entry["url"], cluster.base(2));
    assert_eq!(entry["region"], "south");
    assert_eq!(entry["participants"], 1);

    // Node 2 dies: its entries expire and the meeting goes to node 1.
    cluster.kill(2);
    peer.close().await;
    node_choice(cluster.base(0), &host, meeting_id, Some("south"), "node-1").await;
    // NATS removes the entry by the bucket's max age, on its own timer.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while bucket.get(&key).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} outlived its lease"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.finish().await;
}

/// A participant of a meeting spread over nodes: a hub connection on one
/// node that replies to the server's offers with the peer's answers, and
/// the peer sending media.
struct Attendee {
    account_id: i64,
    signal: Arc<Signal>,
    peer: Arc<peer::Peer>,
    media: tokio::task::JoinHandle<()>,
}

impl Attendee {
    /// Joins the meeting's media on `base` and waits until the peer connected.
    async fn join(base: &str, session: &Session, account_id: i64, meeting_id: i64) -> Attendee {
        let peer = peer::Peer::new().await;
        Attendee::join_with(base, session, account_id, meeting_id, peer).await
    }

    /// Joins the meeting's media on `base` with the given peer and waits until
    /// the peer connected.
    async fn join_with(
        base: &str,
        session: &Session,
        account_id: i64,
        meeting_id: i64,
        peer: Arc<peer::Peer>,
    ) -> Attendee {
        let attendee = Attendee::ask(base, session, account_id, meeting_id, peer).await;
        let reply = attendee.signal.reply("join").await;
        attendee.enter(&reply).await
    }

    /// Opens a hub socket on `base` and sends `meeting_join` with the peer's
    /// offer, without waiting for the reply.
    async fn ask(
        base: &str,
        session: &Session,
        account_id: i64,
        meeting_id: i64,
        peer: Arc<peer::Peer>,
    ) -> Attendee {
        let signal = Signal::connect_to(base, session).await;
        *signal.peer.lock().unwrap() = Some(peer.clone());
        let join = json!({"type": "meeting_join", "id": "join", "meeting_id": meeting_id,
            "sdp": peer.offer().await});
        signal.send(join).await;
        Attendee {
            account_id,
            signal,
            peer,
            media: tokio::spawn(async {}),
        }
    }

    /// Applies the answer in a `meeting_joined` message, waits until the peer
    /// connected and starts sending its media.
    async fn enter(mut self, joined: &Value) -> Attendee {
        assert_eq!(joined["type"], "meeting_joined", "{joined}");
        self.peer
            .apply_answer(joined["sdp"].as_str().unwrap())
            .await;
        let peer = self.peer.clone();
        wait_for("the media connection", || peer.is_connected()).await;
        self.media = peer::spawn_media(self.peer.clone());
        self
    }

    /// Returns every message received so far that matches.
    fn received(&self, matches: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.signal
            .inbox
            .lock()
            .unwrap()
            .iter()
            .filter(|message| matches(message))
            .cloned()
            .collect()
    }

    /// Waits until the latest `meeting_lobby` message lists exactly these
    /// accounts, in any order.
    async fn lobby_lists(&self, accounts: &[i64]) {
        let mut expected = accounts.to_vec();
        expected.sort();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let latest = self
                .received(|message| message["type"] == "meeting_lobby")
                .pop();
            let mut listed: Vec<i64> = latest
                .as_ref()
                .map(|message| {
                    message["waiting"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|entry| entry["account_id"].as_i64().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            listed.sort();
            if listed == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "account {} timed out waiting for the lobby {expected:?}; latest {latest:?}",
                self.account_id
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for a message that matches among those received after the
    /// first `seen` ones.
    async fn wait_after(&self, seen: usize, what: &str, matches: impl Fn(&Value) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let found = self
                .signal
                .inbox
                .lock()
                .unwrap()
                .iter()
                .skip(seen)
                .any(&matches);
            if found {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "account {} timed out waiting for {what}",
                self.account_id
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Number of messages received so far.
    fn seen(&self) -> usize {
        self.signal.inbox.lock().unwrap().len()
    }

    /// Waits for a message that matches and returns the first such message.
    async fn wait(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let what = format!("{what} at account {}", self.account_id);
        self.signal.wait(&what, matches).await
    }

    /// Waits until the peer received at least `packets` more video and audio
    /// packets from each of the accounts than it had when called.
    async fn receives_from(&self, accounts: &[i64], packets: usize) {
        let start: Vec<peer::Counts> = accounts.iter().map(|a| self.peer.from(*a)).collect();
        for (account, start) in accounts.iter().zip(start) {
            let peer = self.peer.clone();
            let what = format!(
                "media from account {account} at account {}",
                self.account_id
            );
            wait_for(&what, || {
                let now = peer.from(*account);
                now.video >= start.video + packets && now.audio >= start.audio + packets
            })
            .await;
        }
    }

    /// Leaves the media, stops the peer and closes the hub connection.
    async fn leave(self, meeting_id: i64) {
        let leave = json!({"type": "meeting_leave", "id": "leave", "meeting_id": meeting_id});
        self.signal.send(leave).await;
        self.wait("the leave reply", |message| message["id"] == "leave")
            .await;
        self.media.abort();
        self.peer.close().await;
        self.signal.close().await;
    }
}

async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Returns a scheduled online demo meeting with its host and three members
/// of the meeting's branch, who enter directly, as (username, account id).
async fn meeting_with_people(cluster: &Cluster) -> (i64, Vec<(String, i64)>) {
    let mut conn = cluster.store.connect().await;
    let (meeting_id, org_id, host_member): (i64, i64, i64) = sqlx::query_as(
        "SELECT id, org_id, host_member FROM meetings WHERE status = 'scheduled' AND online = 1 \
         AND locked = 0 ORDER BY id LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .expect("a scheduled online demo meeting");
    let people: Vec<(String, i64)> = sqlx::query_as(
        "SELECT a.username, a.id FROM accounts a JOIN members m ON m.id = a.member_id \
         WHERE m.org_id = $1 AND a.disabled = 0 AND a.must_change_password = 0 \
         ORDER BY CASE WHEN a.member_id = $2 THEN 0 ELSE 1 END, a.id LIMIT 4",
    )
    .bind(org_id)
    .bind(host_member)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(people.len(), 4, "the branch has a host and three members");
    (meeting_id, people)
}

/// Four people on three nodes: the host on node 0, two on node 1 and one on
/// node 2. Everyone receives everyone, each track crosses to a node once,
/// a subscriber leaves and comes back, and the host mutes someone on
/// another node and ends the meeting on every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_media_relays_between_nodes() {
    let cluster = start().await;
    let (meeting_id, people) = meeting_with_people(&cluster).await;
    let mut sessions = Vec::new();
    for (username, _) in &people {
        sessions.push(login(cluster.base(0), username).await);
    }
    let accounts: Vec<i64> = people.iter().map(|(_, id)| *id).collect();
    let node_of = [0, 1, 1, 2];

    let host = Attendee::join(cluster.base(0), &sessions[0], accounts[0], meeting_id).await;
    // Under `region`, a caller from the north with the meeting hosted in the
    // south goes to its own region's node, which relays.
    let choice = node_choice(
        cluster.base(1),
        &sessions[1],
        meeting_id,
        Some("south"),
        "node-1",
    )
    .await;
    assert_eq!(choice["hosts_meeting"], false);
    let mut others = Vec::new();
    for index in 1..4 {
        let base = cluster.base(node_of[index]);
        others.push(Attendee::join(base, &sessions[index], accounts[index], meeting_id).await);
    }
    let mut everyone: Vec<&Attendee> = vec![&host];
    everyone.extend(others.iter());
    for attendee in &everyone {
        let senders: Vec<i64> = accounts
            .iter()
            .copied()
            .filter(|account| *account != attendee.account_id)
            .collect();
        attendee.receives_from(&senders, 20).await;
    }

    // Node 1 has two subscribers, yet it receives each remote track once: the
    // host's two from node 0 and two from node 2.
    gauge_reaches(cluster.base(1), "dangwu_media_relays_in", 2.0).await;
    gauge_reaches(cluster.base(1), "dangwu_media_relayed_tracks_in", 4.0).await;
    // Node 0's engine: the host subscribes to six relayed tracks, and the
    // relay peers of nodes 1 and 2 take the host's two tracks each.
    gauge_reaches(cluster.base(0), "dangwu_media_relay_peers", 2.0).await;
    gauge_reaches(cluster.base(0), "dangwu_media_subscriptions", 10.0).await;

    // Everyone sees the whole participant list, wherever they joined.
    let snapshot = get(
        cluster.base(1),
        &sessions[1],
        &format!("/api/meetings/{meeting_id}/live"),
    )
    .await;
    let mut listed: Vec<i64> = snapshot["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["account_id"].as_i64().unwrap())
        .collect();
    listed.sort();
    let mut expected = accounts.clone();
    expected.sort();
    assert_eq!(listed, expected, "{snapshot}");

    // The second subscriber on node 1 leaves: the others stop getting its
    // media, node 1 keeps its relays for the one still there.
    let leaving = others.remove(1);
    leaving.leave(meeting_id).await;
    gauge_reaches(cluster.base(1), "dangwu_media_relayed_tracks_in", 4.0).await;
    gauge_reaches(cluster.base(0), "dangwu_media_subscriptions", 8.0).await;
    host.wait("the leaver's departure", |message| {
        message["type"] == "meeting_participant_left" && message["account_id"] == accounts[2]
    })
    .await;
    others[0]
        .receives_from(&[accounts[0], accounts[3]], 20)
        .await;

    // It comes back on node 1 and receives everyone again.
    let back = Attendee::join(cluster.base(1), &sessions[2], accounts[2], meeting_id).await;
    back.receives_from(&[accounts[0], accounts[1], accounts[3]], 20)
        .await;
    host.receives_from(&[accounts[2]], 20).await;
    gauge_reaches(cluster.base(0), "dangwu_media_subscriptions", 10.0).await;

    // The host, on node 0, mutes the person on node 2.
    let muted = accounts[3];
    post(
        cluster.base(0),
        &sessions[0],
        &format!("/api/meetings/{meeting_id}/live/mute"),
        json!({"account_id": muted, "muted": true}),
    )
    .await;
    others[0]
        .wait("the mute in the participant list", |message| {
            message["type"] == "meeting_participant"
                && message["participant"]["account_id"] == muted
                && message["participant"]["muted_by_host"] == true
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = others[0].peer.from(muted);
    let host_before = host.peer.from(muted);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = others[0].peer.from(muted);
    let host_after = host.peer.from(muted);
    assert_eq!(after.audio, before.audio, "muted audio reached node 1");
    assert_eq!(
        host_after.audio, host_before.audio,
        "muted audio reached node 0"
    );
    assert!(after.video > before.video + 20, "video stops with the mute");
    post(
        cluster.base(0),
        &sessions[0],
        &format!("/api/meetings/{meeting_id}/live/mute"),
        json!({"account_id": muted, "muted": false}),
    )
    .await;
    others[0].receives_from(&[muted], 20).await;

    // Everyone on node 1 leaves: its relays end, and node 0 drops the relay peer.
    back.leave(meeting_id).await;
    others.remove(0).leave(meeting_id).await;
    gauge_reaches(cluster.base(1), "dangwu_media_relays_in", 0.0).await;
    gauge_reaches(cluster.base(0), "dangwu_media_relay_peers", 1.0).await;
    host.receives_from(&[accounts[3]], 20).await;

    // The host ends the meeting on node 0, and it ends on node 2 too.
    post(
        cluster.base(0),
        &sessions[0],
        &format!("/api/meetings/{meeting_id}/live/end"),
        json!({}),
    )
    .await;
    others[0]
        .wait("the end of the meeting on node 2", |message| {
            message["type"] == "meeting_left" && message["reason"] == "ended"
        })
        .await;
    gauge_reaches(cluster.base(2), "dangwu_media_relays_in", 0.0).await;
    cluster.finish().await;
}

/// Frequency of the speaker's tone in the audio test, far from the host's
/// [`peer::TONE_HZ`] and not a harmonic of it.
const OTHER_HZ: f32 = 1_130.0;

/// A speaker on node 1 and the host on node 0: a recording started and
/// stopped through node 2, which has no one in the media, runs on node 1
/// and hears both, no second recording starts once node 0 has people too,
/// node 1 names the host as the active speaker from the relayed audio
/// level, and the host's mixed audio carries the relayed voice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_speech_reaches_speaker_recording_mix() {
    let cluster = start().await;
    let (meeting_id, people) = meeting_with_people(&cluster).await;
    let host_session = login(cluster.base(0), &people[0].0).await;
    let speaker_session = login(cluster.base(0), &people[1].0).await;
    let (host_account, speaker_account) = (people[0].1, people[1].1);

    // The speaker, alone on node 1, sends only a tone at OTHER_HZ. A
    // recording started through node 2, which has no one in the media, runs
    // on node 1.
    let mut speaker = Attendee::join(
        cluster.base(1),
        &speaker_session,
        speaker_account,
        meeting_id,
    )
    .await;
    speaker.media.abort();
    speaker.media = peer::spawn_tone(speaker.peer.clone(), OTHER_HZ);
    let recording = format!("/api/meetings/{meeting_id}/recording");
    let started = post(
        cluster.base(2),
        &host_session,
        &format!("{recording}/start"),
        json!({}),
    )
    .await;
    assert_eq!(started["recording"], true, "{started}");

    // The host joins on node 0 with video and a tone at peer::TONE_HZ, which
    // reaches the recording on node 1 over the relay.
    let host = Attendee::join(cluster.base(0), &host_session, host_account, meeting_id).await;
    let heard = host.peer.from(speaker_account).audio;
    let peer = host.peer.clone();
    wait_for("the speaker's audio at the host", || {
        peer.from(speaker_account).audio >= heard + 50
    })
    .await;

    // Only the host's packets carry an audio level, and node 1 hears them
    // over the relay.
    host.peer.set_audio_level(10);
    speaker
        .wait("the host as active speaker on node 1", |message| {
            message["type"] == "meeting_speaker" && message["account_id"] == host_account
        })
        .await;

    // Node 0 now has people in the media and the lowest id, yet no start,
    // through any node, begins a second recording.
    for node in 0..3 {
        let (status, body) = request(
            reqwest::Method::POST,
            format!("{}{recording}/start", cluster.base(node)),
            &host_session,
            Some(json!({})),
        )
        .await
        .unwrap();
        assert_eq!(status, StatusCode::CONFLICT, "node {node}: {body}");
        assert_eq!(
            body["error"]["code"], "recording_running",
            "node {node}: {body}"
        );
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stopped = post(
        cluster.base(2),
        &host_session,
        &format!("{recording}/stop"),
        json!({}),
    )
    .await;
    assert_eq!(stopped["recording"], false, "{stopped}");
    assert_eq!(stopped["id"], started["id"], "{stopped}");

    let file = reqwest::Client::new()
        .get(format!(
            "{}/api/meetings/{meeting_id}/recordings/{}",
            cluster.base(2),
            stopped["id"]
        ))
        .header("cookie", &host_session.cookie)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let packets = opus_packets(&file);
    assert!(packets.len() >= 100, "{} packets", packets.len());
    let pcm = decode_all(&packets);
    let host_tone = tone_power(&pcm, peer::TONE_HZ);
    let relayed_tone = tone_power(&pcm, OTHER_HZ);
    let nobody = tone_power(&pcm, 3_000.0);
    assert!(host_tone > 1e5, "host's tone power {host_tone}");
    assert!(relayed_tone > 1e5, "relayed tone power {relayed_tone}");
    assert!(
        relayed_tone > 100.0 * nobody,
        "relayed tone {relayed_tone} against {nobody}"
    );

    // The host switches to mixed audio: its mix carries the speaker on node 1
    // and leaves out its own voice, and the relayed stream itself pauses.
    let mix = json!({"type": "meeting_mix", "id": "mix-on", "meeting_id": meeting_id,
        "mixed": true});
    host.signal.send(mix).await;
    let reply = host.signal.reply("mix-on").await;
    assert_eq!(reply["type"], "meeting_ok", "{reply}");
    let peer = host.peer.clone();
    wait_for("150 mixed audio packets", || {
        peer.mixed.lock().unwrap().len() >= 150
    })
    .await;
    let direct_before = host.peer.from(speaker_account).audio;
    let mixed_before = host.peer.mixed.lock().unwrap().len();
    wait_for("100 more mixed audio packets", || {
        peer.mixed.lock().unwrap().len() >= mixed_before + 100
    })
    .await;
    let direct_after = host.peer.from(speaker_account).audio;
    assert!(
        direct_after <= direct_before + 5,
        "the relayed stream kept coming while mixed: {direct_before} then {direct_after}"
    );
    let mixed = host.peer.mixed.lock().unwrap().clone();
    let pcm = decode_all(&mixed[50..]);
    let relayed_tone = tone_power(&pcm, OTHER_HZ);
    let own_tone = tone_power(&pcm, peer::TONE_HZ);
    assert!(relayed_tone > 1e5, "relayed tone in the mix {relayed_tone}");
    assert!(
        relayed_tone > 100.0 * own_tone,
        "the host hears itself: relayed {relayed_tone}, own {own_tone}"
    );

    // The speaker joins again through node 2: as on one node, the new
    // connection replaces the one on node 1.
    let again = Attendee::join(
        cluster.base(2),
        &speaker_session,
        speaker_account,
        meeting_id,
    )
    .await;
    speaker
        .wait("the replacement on node 1", |message| {
            message["type"] == "meeting_left" && message["reason"] == "replaced"
        })
        .await;
    speaker.media.abort();
    speaker.peer.close().await;
    again.leave(meeting_id).await;
    host.leave(meeting_id).await;
    cluster.finish().await;
}

/// Nodes that list a meeting's tracks in the placement bucket but never reply to
/// requests on their media subject. A background task keeps their entries alive, and
/// a subscriber records each request as (node id, request, time received).
struct SilentNodes {
    writer: tokio::task::JoinHandle<()>,
    listener: tokio::task::JoinHandle<()>,
    requests: Arc<std::sync::Mutex<Vec<(String, Value, tokio::time::Instant)>>>,
}

impl SilentNodes {
    async fn start(cluster: &Cluster, meeting_id: i64, node_ids: &[&str]) -> Self {
        let client = async_nats::connect(nats_url()).await.unwrap();
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut subscriptions = Vec::new();
        for node_id in node_ids {
            let subject =
                server::meetings::live::placement::media_subject(&cluster.prefix, node_id);
            let subscription = client.subscribe(subject).await.unwrap();
            let node_id = node_id.to_string();
            subscriptions.push(subscription.map(move |message| (node_id.clone(), message)));
        }
        client.flush().await.unwrap();
        let listener = {
            let requests = requests.clone();
            let mut messages = futures_util::stream::select_all(subscriptions);
            tokio::spawn(async move {
                // No request gets a reply.
                while let Some((node_id, message)) = messages.next().await {
                    let request: Value = serde_json::from_slice(&message.payload).unwrap();
                    let received = tokio::time::Instant::now();
                    requests.lock().unwrap().push((node_id, request, received));
                }
            })
        };

        let bucket = cluster
            .jetstream()
            .await
            .get_key_value(server::meetings::live::placement::bucket_name(
                &cluster.prefix,
            ))
            .await
            .unwrap();
        let entries: Vec<(String, Vec<u8>)> = node_ids
            .iter()
            .enumerate()
            .map(|(index, node_id)| {
                let account_id = 900_000_000 + index as i64;
                let entry = json!({
                    "node_id": node_id,
                    "url": "http://127.0.0.1:9",
                    "region": "south",
                    "participants": 1,
                    "media_subject": server::meetings::live::placement::media_subject(
                        &cluster.prefix, node_id),
                    "members": [{
                        "account_id": account_id,
                        "name": format!("silent {node_id}"),
                        "participant": format!("m{meeting_id}-a{account_id}-1"),
                        "standing": "member",
                        "connected": true,
                        "microphone": true,
                        "camera": false,
                        "screen": false,
                        "muted_by_host": false,
                        "hand_raised_at": null,
                        "speaking": false,
                        "tracks": [{"mid": "0", "kind": "audio", "source": null}],
                    }],
                });
                let key = format!("meeting.{meeting_id}.{node_id}");
                (key, serde_json::to_vec(&entry).unwrap())
            })
            .collect();
        let writer = tokio::spawn(async move {
            loop {
                for (key, value) in &entries {
                    bucket.put(key, value.clone().into()).await.unwrap();
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
        SilentNodes {
            writer,
            listener,
            requests,
        }
    }

    /// Returns when each node first received a `relay_offer` from `from`, once
    /// every node has received one.
    async fn first_offers(&self, from: &str, node_ids: &[&str]) -> Vec<tokio::time::Instant> {
        let offer_time = |node_id: &str| {
            self.requests
                .lock()
                .unwrap()
                .iter()
                .find(|(to, request, _)| {
                    to == node_id && request["type"] == "relay_offer" && request["node_id"] == from
                })
                .map(|(_, _, received)| *received)
        };
        wait_for(&format!("relay offers from {from} to {node_ids:?}"), || {
            node_ids.iter().all(|node_id| offer_time(node_id).is_some())
        })
        .await;
        node_ids
            .iter()
            .map(|node_id| offer_time(node_id).unwrap())
            .collect()
    }

    fn stop(self) {
        self.writer.abort();
        self.listener.abort();
    }
}

/// Three nodes that never reply list tracks of a meeting. A node checks their
/// relays at the same time, and the relay from a live node works meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_nodes_delay_no_relay() {
    let cluster = start().await;
    let (meeting_id, people) = meeting_with_people(&cluster).await;
    let host_session = login(cluster.base(0), &people[0].0).await;
    let member_session = login(cluster.base(0), &people[1].0).await;

    let host = Attendee::join(cluster.base(0), &host_session, people[0].1, meeting_id).await;
    let silent = ["silent-a", "silent-b", "silent-c"];
    let silent_nodes = SilentNodes::start(&cluster, meeting_id, &silent).await;
    let member = Attendee::join(cluster.base(1), &member_session, people[1].1, meeting_id).await;

    // Checked one after another, each silent node would get its offer only when
    // the previous one's request timed out.
    let offers = silent_nodes.first_offers("node-1", &silent).await;
    let first = *offers.iter().min().unwrap();
    let last = *offers.iter().max().unwrap();
    assert!(
        last - first < server::meetings::live::cascade::REQUEST_TIMEOUT,
        "node-1 sent its relay offers to the silent nodes {:?} apart",
        last - first
    );

    // The relays between the live nodes work while the silent nodes hold their
    // requests.
    member.receives_from(&[people[0].1], 20).await;
    host.receives_from(&[people[1].1], 20).await;
    gauge_reaches(cluster.base(1), "dangwu_media_relays_in", 1.0).await;

    silent_nodes.stop();
    member.leave(meeting_id).await;
    host.leave(meeting_id).await;
    cluster.finish().await;
}

/// Returns the account ids listed under `key` (`participants` or `lobby`)
/// of a live snapshot, sorted.
fn snapshot_accounts(snapshot: &Value, key: &str) -> Vec<i64> {
    let mut accounts: Vec<i64> = snapshot[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["account_id"].as_i64().unwrap())
        .collect();
    accounts.sort();
    accounts
}

/// A locked meeting with the host on node 0: people asking to join on nodes
/// 1 and 2 wait in their node's lobby, the host sees both live and in the
/// snapshot, denies one and admits the other, who then enters on node 1.
/// Unlocking on node 0 reaches the person on node 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_lobby_spans_nodes() {
    let cluster = start().await;
    let (meeting_id, people) = meeting_with_people(&cluster).await;
    let mut sessions = Vec::new();
    for (username, _) in &people {
        sessions.push(login(cluster.base(0), username).await);
    }
    let accounts: Vec<i64> = people.iter().map(|(_, id)| *id).collect();
    let live = format!("/api/meetings/{meeting_id}/live");

    let host = Attendee::join(cluster.base(0), &sessions[0], accounts[0], meeting_id).await;
    post(
        cluster.base(0),
        &sessions[0],
        &format!("{live}/lock"),
        json!({}),
    )
    .await;

    // Two members ask to join on nodes 1 and 2, and each waits there. The
    // recorder, `accounts[1]`, would enter directly.
    let mut asking = Vec::new();
    for (index, node) in [(2, 1), (3, 2)] {
        let peer = peer::Peer::new().await;
        let attendee = Attendee::ask(
            cluster.base(node),
            &sessions[index],
            accounts[index],
            meeting_id,
            peer,
        )
        .await;
        let reply = attendee
            .wait("the join reply", |message| message["id"] == "join")
            .await;
        assert_eq!(reply["type"], "meeting_waiting", "{reply}");
        asking.push(attendee);
    }
    let (waiting, denied) = (asking.remove(0), asking.remove(0));

    // The host on node 0 sees both, live and in the snapshot.
    host.lobby_lists(&[accounts[2], accounts[3]]).await;
    let snapshot = get(cluster.base(0), &sessions[0], &live).await;
    let mut expected = vec![accounts[2], accounts[3]];
    expected.sort();
    assert_eq!(
        snapshot_accounts(&snapshot, "lobby"),
        expected,
        "{snapshot}"
    );
    let entry = snapshot["lobby"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["account_id"] == accounts[2])
        .unwrap();
    assert!(entry["name"].as_str().is_some_and(|name| !name.is_empty()));
    assert!(entry["since"].as_i64().is_some_and(|since| since > 0));

    // Denied from node 0, the person on node 2 is turned away there.
    post(
        cluster.base(0),
        &sessions[0],
        &format!("{live}/deny"),
        json!({"account_id": accounts[3]}),
    )
    .await;
    denied
        .wait("the denial on node 2", |message| {
            message["type"] == "meeting_left" && message["reason"] == "denied"
        })
        .await;
    host.lobby_lists(&[accounts[2]]).await;

    // Admitted from node 0, the person on node 1 enters there with the
    // offer they sent, and media flows both ways.
    post(
        cluster.base(0),
        &sessions[0],
        &format!("{live}/admit"),
        json!({"account_id": accounts[2]}),
    )
    .await;
    let joined = waiting
        .wait("the admission on node 1", |message| {
            message["type"] == "meeting_joined"
        })
        .await;
    let admitted = waiting.enter(&joined).await;
    admitted.receives_from(&[accounts[0]], 20).await;
    host.receives_from(&[accounts[2]], 20).await;
    host.lobby_lists(&[]).await;

    // Admitting someone nobody has in a lobby fails.
    let (status, body) = request(
        reqwest::Method::POST,
        format!("{}{live}/admit", cluster.base(0)),
        &sessions[0],
        Some(json!({"account_id": accounts[1]})),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Unlocking on node 0 reaches the person in the media on node 1.
    post(
        cluster.base(0),
        &sessions[0],
        &format!("{live}/unlock"),
        json!({}),
    )
    .await;
    admitted
        .wait("the unlock on node 1", |message| {
            message["type"] == "meeting_locked" && message["locked"] == false
        })
        .await;
    cluster.finish().await;
}

/// The host on node 0 removes a person in the media on node 1. Node 2,
/// whose room of the meeting is loaded, learns of it at once: the person
/// coming back through node 2 waits in its lobby until the host admits
/// them. Lowering every hand on node 0 lowers a hand raised on node 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_reaches_every_node() {
    let cluster = start().await;
    let (meeting_id, people) = meeting_with_people(&cluster).await;
    let mut sessions = Vec::new();
    for (username, _) in &people {
        sessions.push(login(cluster.base(0), username).await);
    }
    let accounts: Vec<i64> = people.iter().map(|(_, id)| *id).collect();
    let live = format!("/api/meetings/{meeting_id}/live");

    let host = Attendee::join(cluster.base(0), &sessions[0], accounts[0], meeting_id).await;
    let removed = Attendee::join(cluster.base(1), &sessions[1], accounts[1], meeting_id).await;
    let staying = Attendee::join(cluster.base(2), &sessions[2], accounts[2], meeting_id).await;
    staying.receives_from(&[accounts[0], accounts[1]], 20).await;

    post(
        cluster.base(0),
        &sessions[0],
        &format!("{live}/remove"),
        json!({"account_id": accounts[1]}),
    )
    .await;
    removed
        .wait("the removal on node 1", |message| {
            message["type"] == "meeting_left" && message["reason"] == "removed"
        })
        .await;
    staying
        .wait("the removed person's departure", |message| {
            message["type"] == "meeting_participant_left" && message["account_id"] == accounts[1]
        })
        .await;

    // Back through node 2, the removed person waits in the lobby there.
    let peer = peer::Peer::new().await;
    let back = Attendee::ask(cluster.base(2), &sessions[1], accounts[1], meeting_id, peer).await;
    let reply = back
        .wait("the join reply", |message| message["id"] == "join")
        .await;
    assert_eq!(reply["type"], "meeting_waiting", "{reply}");
    host.lobby_lists(&[accounts[1]]).await;

    // Admitted from node 0, they enter on node 2.
    post(
        cluster.base(0),
        &sessions[0],
        &format!("{live}/admit"),
        json!({"account_id": accounts[1]}),
    )
    .await;
    let joined = back
        .wait("the admission on node 2", |message| {
            message["type"] == "meeting_joined"
        })
        .await;
    let back = back.enter(&joined).await;
    back.receives_from(&[accounts[0], accounts[2]], 20).await;

    // A hand raised on node 2 goes down when the host lowers every hand.
    let hand = json!({"type": "meeting_hand", "id": "hand", "meeting_id": meeting_id,
        "raised": true});
    staying.signal.send(hand).await;
    host.wait("the raised hand on node 2", |message| {
        message["type"] == "meeting_participant"
            && message["participant"]["account_id"] == accounts[2]
            && message["participant"]["hand_raised_at"].is_i64()
    })
    .await;
    let seen = staying.seen();
    post(
        cluster.base(0),
        &sessions[0],
        &format!("{live}/hands/lower"),
        json!({}),
    )
    .await;
    staying
        .wait_after(seen, "the lowered hand on node 2", |message| {
            message["type"] == "meeting_participant"
                && message["participant"]["account_id"] == accounts[2]
                && message["participant"]["hand_raised_at"].is_null()
        })
        .await;
    cluster.finish().await;
}

/// A live lecture spread over nodes: the lecturer on node 0, an organizer and
/// a viewer on node 1, another viewer on node 2. Staff see everyone, but a
/// viewer sees only the presenters and themselves, wherever the others are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lecture_hides_remote_viewers() {
    let cluster = start().await;
    let mut conn = cluster.store.connect().await;
    let (meeting_id, org_id, lecturer_member): (i64, i64, i64) = sqlx::query_as(
        "SELECT m.id, m.org_id, m.host_member FROM learning_lectures l \
         JOIN meetings m ON m.id = l.meeting_id ORDER BY m.id LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .expect("the demo's live lecture");
    let accounts_of = |officers: bool| {
        let exists = if officers { "EXISTS" } else { "NOT EXISTS" };
        format!(
            "SELECT a.username, a.id FROM accounts a JOIN members m ON m.id = a.member_id \
             WHERE m.org_id = $1 AND a.member_id <> $2 AND a.disabled = 0 \
             AND a.must_change_password = 0 AND {exists} \
             (SELECT 1 FROM org_roles r WHERE r.member_id = a.member_id AND r.org_id = $1) \
             ORDER BY a.id"
        )
    };
    let officers: Vec<(String, i64)> = sqlx::query_as(&accounts_of(true))
        .bind(org_id)
        .bind(lecturer_member)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let members: Vec<(String, i64)> = sqlx::query_as(&accounts_of(false))
        .bind(org_id)
        .bind(lecturer_member)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let (lecturer_name, lecturer): (String, i64) =
        sqlx::query_as("SELECT username, id FROM accounts WHERE member_id = $1")
            .bind(lecturer_member)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(!officers.is_empty(), "the branch has an officer");
    assert!(members.len() >= 2, "the branch has two plain members");
    let organizer = officers[0].1;
    let (viewer1, viewer2) = (members[0].1, members[1].1);
    let lecturer_session = login(cluster.base(0), &lecturer_name).await;
    let organizer_session = login(cluster.base(0), &officers[0].0).await;
    let viewer1_session = login(cluster.base(0), &members[0].0).await;
    let viewer2_session = login(cluster.base(0), &members[1].0).await;
    let live = format!("/api/meetings/{meeting_id}/live");

    let presenter = Attendee::join(cluster.base(0), &lecturer_session, lecturer, meeting_id).await;
    let mut audience = Vec::new();
    for (base, session, account, role) in [
        (cluster.base(1), &organizer_session, organizer, "organizer"),
        (cluster.base(1), &viewer1_session, viewer1, "viewer"),
        (cluster.base(2), &viewer2_session, viewer2, "viewer"),
    ] {
        let peer = peer::Peer::receive_only().await;
        let attendee = Attendee::join_with(base, session, account, meeting_id, peer).await;
        let joined = attendee
            .wait("the join reply", |message| message["id"] == "join")
            .await;
        assert_eq!(joined["snapshot"]["lecture"]["role"], role, "{joined}");
        attendee.receives_from(&[lecturer], 20).await;
        audience.push(attendee);
    }
    let (organizer_attendee, viewer1_attendee) = (&audience[0], &audience[1]);

    // Staff see the viewer on node 2, so node 1 and node 0 know of them.
    let arrived = |account: i64| {
        move |message: &Value| {
            message["type"] == "meeting_participant"
                && message["participant"]["account_id"] == account
        }
    };
    organizer_attendee
        .wait("the viewer on node 2 at the organizer", arrived(viewer2))
        .await;
    presenter
        .wait("the viewer on node 2 at the lecturer", arrived(viewer2))
        .await;
    let mut everyone = vec![lecturer, organizer, viewer1, viewer2];
    everyone.sort();
    let staff_view = get(cluster.base(1), &organizer_session, &live).await;
    assert_eq!(
        snapshot_accounts(&staff_view, "participants"),
        everyone,
        "{staff_view}"
    );

    // Each viewer sees the lecturer and themselves only.
    for (base, session, viewer) in [
        (cluster.base(1), &viewer1_session, viewer1),
        (cluster.base(2), &viewer2_session, viewer2),
    ] {
        let snapshot = get(base, session, &live).await;
        let mut expected = vec![lecturer, viewer];
        expected.sort();
        assert_eq!(
            snapshot_accounts(&snapshot, "participants"),
            expected,
            "{snapshot}"
        );
    }
    assert!(
        viewer1_attendee.received(arrived(viewer2)).is_empty(),
        "the viewer on node 1 got the entry of the viewer on node 2"
    );
    assert!(
        audience[2].received(arrived(organizer)).is_empty(),
        "the viewer on node 2 got the organizer's entry"
    );
    assert!(
        audience[2].received(arrived(viewer1)).is_empty(),
        "the viewer on node 2 got the entry of the viewer on node 1"
    );
    cluster.finish().await;
}
