//! Hub protocol scenarios against a real server with the demo province on
//! SQLite: resume without gaps or duplicates, topic permissions, presence,
//! dead and slow clients, oversized frames and truncated history.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use server::config::{ServeArgs, StoreArgs};
use server::hub::HubConfig;
use server::hub::store;
use server::serve::Server;
use server::state::AppState;
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Generous bound for anything that must arrive.
const PATIENCE: Duration = Duration::from_secs(20);
/// The demo branch of `zhibu` (secretary) and `dangyuan` (member).
const BRANCH_NAME: &str = "东城区机关第一党支部";
const SIBLING_NAME: &str = "西城区教育系统党支部";

struct Harness {
    addr: SocketAddr,
    state: AppState,
    _dir: TempDir,
    _stop: oneshot::Sender<()>,
}

async fn start(hub: HubConfig) -> Harness {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let args = ServeArgs {
        store: StoreArgs {
            data_dir: Some(dir.path().to_owned()),
            ..Default::default()
        },
        listen: Some("127.0.0.1:0".parse().unwrap()),
        demo: true,
        ..Default::default()
    };
    let server = Server::bind_with(args.resolve().unwrap(), hub)
        .await
        .unwrap();
    let (addr, state) = (server.addr, server.state.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Harness {
        addr,
        state,
        _dir: dir,
        _stop: stop,
    }
}

/// A logged-in demo account: its session cookie and account id.
struct Login {
    cookie: String,
    account_id: i64,
}

async fn login(harness: &Harness, username: &str) -> Login {
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/auth/login", harness.addr))
        .json(&json!({"username": username, "password": server::demo::DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "login {username}");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("dangwu_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .unwrap();
    let body: Value = response.json().await.unwrap();
    Login {
        cookie,
        account_id: body["account"]["id"].as_i64().unwrap(),
    }
}

async fn org_id(harness: &Harness, name: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM orgs WHERE name = $1")
        .bind(name)
        .fetch_one(&harness.state.db.pool)
        .await
        .unwrap()
}

async fn connect(harness: &Harness, login: &Login) -> Ws {
    let mut request = format!("ws://{}/ws?v=1", harness.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", login.cookie.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    ws
}

/// Reads the next JSON message, skipping control frames.
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.next())
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

/// Reads until a message of the given type arrives; returns it and the
/// events seen before it.
async fn read_until(ws: &mut Ws, kind: &str) -> (Value, Vec<Value>) {
    let mut events = Vec::new();
    loop {
        let message = next_json(ws).await;
        if message["type"] == kind {
            return (message, events);
        }
        if message["type"] == "event" {
            events.push(message);
        }
    }
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// Sends a ping and collects every event that arrives before its pong, so
/// a test can assert that nothing more is pending.
async fn drain(ws: &mut Ws) -> Vec<Value> {
    send(ws, json!({"type": "ping", "id": "barrier"})).await;
    read_until(ws, "pong").await.1
}

async fn subscribe(ws: &mut Ws, topic: &str, since: Option<i64>) -> Value {
    let mut message = json!({"type": "subscribe", "id": "s", "topic": topic});
    if let Some(since) = since {
        message["since"] = since.into();
    }
    send(ws, message).await;
    loop {
        let reply = next_json(ws).await;
        if reply["type"] == "subscribed" || reply["type"] == "error" {
            return reply;
        }
    }
}

/// Stores and publishes one event, as a feature would.
async fn publish(harness: &Harness, topic: &str, n: i64) -> i64 {
    let mut tx = harness.state.db.pool.begin().await.unwrap();
    let event = store::append(&mut tx, topic, "test.counter", json!({"n": n}))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let seq = event.seq;
    harness.state.hub.publish([event]);
    seq
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn resume_after_drop_no_gap() {
    let harness = start(HubConfig::default()).await;
    let user = login(&harness, "zhibu").await;
    let topic = format!("user:{}", user.account_id);

    let mut ws = connect(&harness, &user).await;
    let subscribed = subscribe(&mut ws, &topic, Some(0)).await;
    assert_eq!(subscribed["seq"], 0);
    for n in 1..=3 {
        publish(&harness, &topic, n).await;
    }
    let mut received = Vec::new();
    while received.len() < 3 {
        let message = next_json(&mut ws).await;
        if message["type"] == "event" {
            received.push(message);
        }
    }
    assert_eq!(seqs(&received), vec![1, 2, 3]);
    drop(ws);

    for n in 4..=6 {
        publish(&harness, &topic, n).await;
    }
    let mut ws = connect(&harness, &user).await;
    let subscribed = subscribe(&mut ws, &topic, Some(3)).await;
    assert_eq!(subscribed["seq"], 6);
    publish(&harness, &topic, 7).await;
    let mut resumed = drain(&mut ws).await;
    while resumed.len() < 4 {
        let message = next_json(&mut ws).await;
        if message["type"] == "event" {
            resumed.push(message);
        }
    }
    assert_eq!(seqs(&resumed), vec![4, 5, 6, 7]);
    assert!(
        drain(&mut ws).await.is_empty(),
        "no duplicate after the resume"
    );
}

#[tokio::test]
async fn resume_with_nothing_before_drop() {
    let harness = start(HubConfig::default()).await;
    let user = login(&harness, "dangyuan").await;
    let topic = format!("user:{}", user.account_id);

    let mut ws = connect(&harness, &user).await;
    let subscribed = subscribe(&mut ws, &topic, None).await;
    let head = subscribed["seq"].as_i64().unwrap();
    assert_eq!(head, 0);
    drop(ws);

    publish(&harness, &topic, 1).await;
    publish(&harness, &topic, 2).await;
    let mut ws = connect(&harness, &user).await;
    subscribe(&mut ws, &topic, Some(head)).await;
    let events = drain(&mut ws).await;
    assert_eq!(seqs(&events), vec![1, 2]);
    assert_eq!(events[0]["data"]["n"], 1);
}

#[tokio::test]
async fn subscribe_during_publishing_keeps_order() {
    let harness = start(HubConfig::default()).await;
    let user = login(&harness, "zhibu").await;
    let topic = format!("user:{}", user.account_id);
    const TOTAL: i64 = 300;

    let producer = {
        let (state, topic) = (harness.state.clone(), topic.clone());
        tokio::spawn(async move {
            for n in 1..=TOTAL {
                let mut tx = state.db.pool.begin().await.unwrap();
                let event = store::append(&mut tx, &topic, "test.counter", json!({"n": n}))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                state.hub.publish([event]);
                if n % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    // Subscribe while the producer is running, asking for everything.
    let mut ws = connect(&harness, &user).await;
    subscribe(&mut ws, &topic, Some(0)).await;
    producer.await.unwrap();
    let mut events = Vec::new();
    while events.len() < TOTAL as usize {
        let message = next_json(&mut ws).await;
        if message["type"] == "event" {
            events.push(message);
        }
    }
    assert_eq!(seqs(&events), (1..=TOTAL).collect::<Vec<_>>());
    assert!(drain(&mut ws).await.is_empty());
}

#[tokio::test]
async fn foreign_topics_are_denied() {
    let harness = start(HubConfig::default()).await;
    let secretary = login(&harness, "zhibu").await;
    let member = login(&harness, "dangyuan").await;
    let branch = org_id(&harness, BRANCH_NAME).await;
    let sibling = org_id(&harness, SIBLING_NAME).await;
    let mut ws = connect(&harness, &secretary).await;

    let own = subscribe(&mut ws, &format!("org:{branch}"), None).await;
    assert_eq!(own["type"], "subscribed");
    let sibling_reply = subscribe(&mut ws, &format!("org:{sibling}"), None).await;
    assert_eq!(sibling_reply["type"], "error");
    assert_eq!(sibling_reply["code"], "forbidden");
    let other_user = subscribe(&mut ws, &format!("user:{}", member.account_id), None).await;
    assert_eq!(other_user["code"], "forbidden");
    let unknown = subscribe(&mut ws, "team:1", None).await;
    assert_eq!(unknown["code"], "invalid_field");
    assert!(!unknown["message"].as_str().unwrap().is_empty());
}

fn presence_ids(message: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = message["online"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["account_id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

/// Reads presence messages until one lists exactly `expected`.
async fn await_presence(ws: &mut Ws, expected: &[i64]) {
    let mut expected = expected.to_vec();
    expected.sort();
    loop {
        let (presence, _) = read_until(ws, "presence").await;
        if presence_ids(&presence) == expected {
            return;
        }
    }
}

#[tokio::test]
async fn presence_one_entry_per_person() {
    let harness = start(HubConfig::default()).await;
    let secretary = login(&harness, "zhibu").await;
    let member = login(&harness, "dangyuan").await;
    let topic = format!("org:{}", org_id(&harness, BRANCH_NAME).await);

    let mut first_tab = connect(&harness, &secretary).await;
    subscribe(&mut first_tab, &topic, None).await;
    let mut second_tab = connect(&harness, &secretary).await;
    subscribe(&mut second_tab, &topic, None).await;
    let mut other = connect(&harness, &member).await;
    subscribe(&mut other, &topic, None).await;
    await_presence(&mut first_tab, &[secretary.account_id, member.account_id]).await;

    // The second tab closing leaves the secretary online through the first.
    drop(second_tab);
    drop(other);
    await_presence(&mut first_tab, &[secretary.account_id]).await;
}

#[tokio::test]
async fn vanished_client_is_cleaned_up() {
    let config = HubConfig {
        heartbeat: Duration::from_millis(200),
        heartbeat_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let harness = start(config).await;
    let secretary = login(&harness, "zhibu").await;
    let member = login(&harness, "dangyuan").await;
    let topic = format!("org:{}", org_id(&harness, BRANCH_NAME).await);

    let mut watcher = connect(&harness, &secretary).await;
    subscribe(&mut watcher, &topic, None).await;
    // This client stops reading, so it never answers the server's pings:
    // to the server it looks like a peer that vanished without a close.
    let mut silent = connect(&harness, &member).await;
    subscribe(&mut silent, &topic, None).await;
    await_presence(&mut watcher, &[secretary.account_id, member.account_id]).await;

    let started = tokio::time::Instant::now();
    loop {
        // The watcher keeps answering pings because it keeps reading.
        let (presence, _) = read_until(&mut watcher, "presence").await;
        if presence_ids(&presence) == vec![secretary.account_id] {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "silent client still present");
    }
    assert_eq!(harness.state.hub.registry.presence(&topic).len(), 1);
    drop(silent);
}

#[tokio::test]
async fn slow_consumer_is_cut() {
    let config = HubConfig {
        queue_capacity: 8,
        send_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let harness = start(config).await;
    let secretary = login(&harness, "zhibu").await;
    let member = login(&harness, "dangyuan").await;
    let topic = format!("org:{}", org_id(&harness, BRANCH_NAME).await);
    const TOTAL: i64 = 600;

    let mut fast = connect(&harness, &secretary).await;
    subscribe(&mut fast, &topic, Some(0)).await;
    let mut slow = connect(&harness, &member).await;
    subscribe(&mut slow, &topic, Some(0)).await;
    await_presence(&mut fast, &[secretary.account_id, member.account_id]).await;

    // Large payloads fill the slow client's socket buffers and then its queue.
    let filler = "党".repeat(20_000);
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut presence_after_cut = false;
        while seen.len() < TOTAL as usize || !presence_after_cut {
            let message = next_json(&mut fast).await;
            match message["type"].as_str() {
                Some("event") => seen.push(message["seq"].as_i64().unwrap()),
                Some("presence") => {
                    presence_after_cut = message["online"].as_array().unwrap().len() == 1
                }
                _ => {}
            }
        }
        seen
    });
    for n in 1..=TOTAL {
        let mut tx = harness.state.db.pool.begin().await.unwrap();
        let event = store::append(
            &mut tx,
            &topic,
            "test.bulk",
            json!({"n": n, "filler": filler}),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        harness.state.hub.publish([event]);
    }
    let seen = tokio::time::timeout(Duration::from_secs(120), reader)
        .await
        .expect("fast client finished")
        .unwrap();
    assert_eq!(
        seen,
        (1..=TOTAL).collect::<Vec<_>>(),
        "fast client received everything in order"
    );

    // The slow client, reading now, finds its connection closed.
    let mut close_code = None;
    while let Ok(Some(frame)) = tokio::time::timeout(PATIENCE, slow.next()).await {
        match frame {
            Ok(Message::Close(Some(frame))) => close_code = Some(frame.code),
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    if let Some(code) = close_code {
        assert_eq!(code, CloseCode::from(4008));
    }
    let online = harness.state.hub.registry.presence(&topic);
    assert!(
        online
            .iter()
            .all(|entry| entry.account_id != member.account_id),
        "{online:?}"
    );
}

#[tokio::test]
async fn oversized_frame_closes_1009() {
    let harness = start(HubConfig::default()).await;
    let user = login(&harness, "zhibu").await;
    let mut ws = connect(&harness, &user).await;
    let big = json!({"type": "ping", "id": "x".repeat(100 * 1024)});
    send(&mut ws, big).await;
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Close(Some(frame)) = frame {
            assert_eq!(frame.code, CloseCode::Size);
            assert!(frame.reason.contains("limit"), "reason: {}", frame.reason);
            break;
        }
    }
}

#[tokio::test]
async fn malformed_message_gets_error() {
    let harness = start(HubConfig::default()).await;
    let user = login(&harness, "zhibu").await;
    let mut ws = connect(&harness, &user).await;
    ws.send(Message::Text("{not json".into())).await.unwrap();
    let reply = next_json(&mut ws).await;
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["code"], "invalid_message");
    assert_eq!(
        reply["message"],
        "消息格式错误：不是有效的 JSON，或不是可识别的消息"
    );
    send(&mut ws, json!({"type": "subscribe"})).await;
    let reply = next_json(&mut ws).await;
    assert_eq!(reply["code"], "invalid_message");
    // The connection stays usable.
    send(&mut ws, json!({"type": "ping", "id": "after"})).await;
    assert_eq!(next_json(&mut ws).await["type"], "pong");
}

#[tokio::test]
async fn truncated_history_sends_reset() {
    let harness = start(HubConfig::default()).await;
    let user = login(&harness, "zhibu").await;
    let topic = format!("user:{}", user.account_id);
    for n in 1..=3 {
        publish(&harness, &topic, n).await;
    }
    sqlx::query("DELETE FROM hub_events WHERE topic = $1 AND seq <= 2")
        .bind(&topic)
        .execute(&harness.state.db.pool)
        .await
        .unwrap();

    let mut ws = connect(&harness, &user).await;
    subscribe(&mut ws, &topic, Some(0)).await;
    let reset = next_json(&mut ws).await;
    assert_eq!(reset["type"], "reset");
    assert_eq!(reset["reason"], "history_truncated");
    assert_eq!(reset["seq"], 3);
    // Resuming from an event that is still stored works.
    subscribe(&mut ws, &topic, Some(2)).await;
    assert_eq!(seqs(&drain(&mut ws).await), vec![3]);
}

#[tokio::test]
async fn unauthenticated_upgrade_rejected() {
    let harness = start(HubConfig::default()).await;
    let request = format!("ws://{}/ws", harness.addr)
        .into_client_request()
        .unwrap();
    let error = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert!(error.to_string().contains("401"), "{error}");
}
