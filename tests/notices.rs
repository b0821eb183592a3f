//! Notices end to end over HTTP and the hub: compose, live delivery, read
//! and confirmation receipts seen live by the sender, reminders, withdrawal,
//! attachments and durability across a restart.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::config::{ServeArgs, StoreArgs};
use server::serve::Server;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const PATIENCE: Duration = Duration::from_secs(20);
const BRANCH_NAME: &str = "东城区机关第一党支部";
const SIBLING_NAME: &str = "西城区教育系统党支部";

struct Running {
    addr: SocketAddr,
    state: server::state::AppState,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(dir: &Path) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = ServeArgs {
        store: StoreArgs {
            data_dir: Some(dir.to_owned()),
            ..Default::default()
        },
        listen: Some("127.0.0.1:0".parse().unwrap()),
        demo: true,
        ..Default::default()
    };
    let server = Server::bind(args.resolve().unwrap()).await.unwrap();
    let (addr, state) = (server.addr, server.state.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        state,
        stop,
        done,
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.done.await.unwrap().unwrap();
    }

    async fn org_id(&self, name: &str) -> i64 {
        sqlx::query_scalar("SELECT id FROM orgs WHERE name = $1")
            .bind(name)
            .fetch_one(&self.state.db.pool)
            .await
            .unwrap()
    }
}

/// A logged-in HTTP client with its CSRF token and session cookie.
struct User {
    http: reqwest::Client,
    base: String,
    csrf: String,
    cookie: String,
    account_id: i64,
    member_id: i64,
}

async fn login(running: &Running, username: &str) -> User {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let base = format!("http://{}", running.addr);
    let response = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": username, "password": server::demo::DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("dangwu_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .unwrap();
    let body: Value = response.json().await.unwrap();
    User {
        http,
        base,
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        cookie,
        account_id: body["account"]["id"].as_i64().unwrap(),
        member_id: body["account"]["member_id"].as_i64().unwrap_or(0),
    }
}

impl User {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn upload(&self, name: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/api/files", self.base))
            .query(&[("name", name)])
            .header("x-csrf-token", &self.csrf)
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn connect(&self, topic: &str, since: Option<i64>) -> Ws {
        let url = self.base.replace("http://", "ws://") + "/ws";
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("cookie", self.cookie.parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut subscribe = json!({"type": "subscribe", "topic": topic});
        if let Some(since) = since {
            subscribe["since"] = since.into();
        }
        ws.send(Message::Text(subscribe.to_string().into()))
            .await
            .unwrap();
        loop {
            let message = next_json(&mut ws).await;
            assert_ne!(message["type"], "error", "{message}");
            if message["type"] == "subscribed" {
                return ws;
            }
        }
    }
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("message in time")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// Waits for the next event of the given kind.
async fn next_event(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let message = next_json(ws).await;
        if message["type"] == "event" && message["kind"] == kind {
            return message;
        }
    }
}

fn notice(org_id: i64, require_confirm: bool) -> Value {
    json!({
        "title": "关于召开十二月支委会的通知",
        "body_html": "<p>定于下周二召开支委会。<script>alert(1)</script></p>",
        "priority": "urgent",
        "require_confirm": require_confirm,
        "targets": {"org_ids": [org_id]},
    })
}

#[tokio::test]
async fn receipts_reach_sender_live() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    let branch = running.org_id(BRANCH_NAME).await;
    let sender = login(&running, "zhibu").await;
    let reader = login(&running, "dangyuan").await;
    let mut inbox_ws = reader
        .connect(&format!("user:{}", reader.account_id), None)
        .await;

    let (status, sent) = sender.post("/api/notices", notice(branch, true)).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let id = sent["id"].as_i64().unwrap();
    assert!(!sent["body_html"].as_str().unwrap().contains("script"));

    let arrived = next_event(&mut inbox_ws, "notice.new").await;
    assert_eq!(arrived["data"]["id"], id);
    let (_, inbox) = reader.get("/api/notices/inbox").await;
    assert_eq!(inbox["unread"], 1);
    let (_, urgent) = reader.get("/api/notices/inbox?priority=urgent").await;
    assert_eq!(urgent["total"], 1);
    let (_, normal) = reader.get("/api/notices/inbox?priority=normal").await;
    assert_eq!(normal["total"], 0);
    assert_eq!(normal["items"].as_array().unwrap().len(), 0);
    let (_, todo) = reader.get("/api/todo").await;
    assert_eq!(todo["notices_unread"], 1);
    assert_eq!(todo["total"], 1);
    assert_eq!(inbox["items"][0]["title"], "关于召开十二月支委会的通知");

    let (_, progress) = sender.get(&format!("/api/notices/{id}/progress")).await;
    assert_eq!(progress["total"], 6);
    assert_eq!(progress["read"], 0);
    assert_eq!(progress["unread"].as_array().unwrap().len(), 6);
    let mut progress_ws = sender
        .connect(&format!("notice:{id}"), progress["seq"].as_i64())
        .await;

    let (status, receipt) = reader
        .post(&format!("/api/notices/{id}/read"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(receipt["read_at"].is_i64());
    let read = next_event(&mut progress_ws, "receipt.read").await;
    assert_eq!(read["data"]["member_id"], reader.member_id);
    // Reading twice changes nothing and sends nothing new.
    let (status, again) = reader
        .post(&format!("/api/notices/{id}/read"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["read_at"], receipt["read_at"]);

    let (status, confirmed) = reader
        .post(
            &format!("/api/notices/{id}/confirm"),
            json!({"reply": "收到，准时参加"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let event = next_event(&mut progress_ws, "receipt.confirmed").await;
    assert_eq!(event["data"]["reply"], "收到，准时参加");
    assert_eq!(
        event["seq"].as_i64().unwrap(),
        read["seq"].as_i64().unwrap() + 1
    );
    let (status, error) = reader
        .post(
            &format!("/api/notices/{id}/confirm"),
            json!({"reply": "再次"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["error"]["code"], "already_confirmed");

    let (_, progress) = sender.get(&format!("/api/notices/{id}/progress")).await;
    assert_eq!(progress["read"], 1);
    assert_eq!(progress["confirmed"], 1);
    assert_eq!(progress["unread"].as_array().unwrap().len(), 5);
    assert_eq!(progress["replies"][0]["reply"], "收到，准时参加");
    assert_eq!(progress["replies"][0]["org_id"], branch);
    assert_eq!(progress["seq"], event["seq"]);
    let (_, sent_list) = sender.get("/api/notices/sent").await;
    assert_eq!(sent_list["items"][0]["seq"], event["seq"]);
    assert_eq!(sent_list["items"][0]["confirmed"], 1);
    assert_eq!(read["data"]["org_id"], branch);
    assert_eq!(read["data"]["org_name"], BRANCH_NAME);
    let (_, inbox) = reader.get("/api/notices/inbox").await;
    assert_eq!(inbox["unread"], 0);
    let (_, todo) = reader.get("/api/todo").await;
    assert_eq!(todo["total"], 0);
}

#[tokio::test]
async fn remind_limited_and_withdraw() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    let branch = running.org_id(BRANCH_NAME).await;
    let sender = login(&running, "zhibu").await;
    let reader = login(&running, "dangyuan").await;
    let (_, sent) = sender.post("/api/notices", notice(branch, false)).await;
    let id = sent["id"].as_i64().unwrap();
    let mut inbox_ws = reader
        .connect(&format!("user:{}", reader.account_id), Some(0))
        .await;
    next_event(&mut inbox_ws, "notice.new").await;

    let (status, reminded) = sender
        .post(&format!("/api/notices/{id}/remind"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reminded["reminded"], 6);
    next_event(&mut inbox_ws, "notice.remind").await;
    let (status, error) = sender
        .post(&format!("/api/notices/{id}/remind"), json!({}))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error["error"]["code"], "remind_too_soon");

    let (status, _) = reader
        .post(&format!("/api/notices/{id}/remind"), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = reader
        .post(&format!("/api/notices/{id}/withdraw"), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = sender
        .post(&format!("/api/notices/{id}/withdraw"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    next_event(&mut inbox_ws, "notice.withdrawn").await;
    let (_, seen) = reader.get(&format!("/api/notices/{id}")).await;
    assert_eq!(seen["status"], "withdrawn");
    assert_eq!(seen["body_html"], "");
    let (status, _) = reader
        .post(&format!("/api/notices/{id}/confirm"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn targets_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    let sibling = running.org_id(SIBLING_NAME).await;
    let sender = login(&running, "zhibu").await;
    let member = login(&running, "dangyuan").await;

    let (status, error) = sender.post("/api/notices", notice(sibling, false)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error["error"]["field"], "targets.org_ids[0]");
    let (status, error) = member
        .post(
            "/api/notices",
            notice(running.org_id(BRANCH_NAME).await, false),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");

    let mut empty = notice(sibling, false);
    empty["targets"] = json!({});
    let (status, error) = sender.post("/api/notices", empty).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "targets");
    let mut untitled = notice(sibling, false);
    untitled["title"] = json!("  ");
    let (status, error) = sender.post("/api/notices", untitled).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "title");

    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notices")
        .fetch_one(&running.state.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "rejected notices store nothing");
    // A member outside the sender's subtree cannot be named either.
    let stranger: i64 = sqlx::query_scalar("SELECT id FROM members WHERE org_id = $1 LIMIT 1")
        .bind(sibling)
        .fetch_one(&running.state.db.pool)
        .await
        .unwrap();
    let mut named = notice(sibling, false);
    named["targets"] = json!({"member_ids": [stranger]});
    let (status, _) = sender.post("/api/notices", named).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn attachments_upload_and_download() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    let branch = running.org_id(BRANCH_NAME).await;
    let sender = login(&running, "zhibu").await;
    let reader = login(&running, "dangyuan").await;

    let pdf = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n".to_vec();
    let (status, stored) = sender.upload("学习材料.pdf", pdf.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let (status, error) = sender
        .upload(
            "伪装.pdf",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error["error"]["code"], "file_type_mismatch");
    let (status, _) = sender
        .upload("big.txt", vec![b'a'; 20 * 1024 * 1024 + 1])
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let mut with_file = notice(branch, false);
    with_file["attachments"] = json!([{"sha256": stored["sha256"], "name": "学习材料.pdf"}]);
    let (status, sent) = sender.post("/api/notices", with_file).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let id = sent["id"].as_i64().unwrap();
    assert_eq!(sent["attachments"][0]["name"], "学习材料.pdf");

    let response = reader
        .http
        .get(format!("{}/api/notices/{id}/attachments/0", reader.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    assert_eq!(response.bytes().await.unwrap().to_vec(), pdf);
    let outsider = login(&running, "dy020").await;
    let response = outsider
        .http
        .get(format!("{}/api/notices/{id}/attachments/0", outsider.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let mut unknown = notice(branch, false);
    unknown["attachments"] = json!([{"sha256": "0".repeat(64), "name": "x.pdf"}]);
    let (status, error) = sender.post("/api/notices", unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"]["field"], "attachments[0]");
}

#[tokio::test]
async fn receipts_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    let branch = running.org_id(BRANCH_NAME).await;
    let sender = login(&running, "zhibu").await;
    let reader = login(&running, "dangyuan").await;
    let (_, sent) = sender.post("/api/notices", notice(branch, true)).await;
    let id = sent["id"].as_i64().unwrap();
    let (status, _) = reader
        .post(
            &format!("/api/notices/{id}/confirm"),
            json!({"reply": "收到"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    running.stop().await;

    let running = start(dir.path()).await;
    let sender = login(&running, "zhibu").await;
    let (_, progress) = sender.get(&format!("/api/notices/{id}/progress")).await;
    assert_eq!(progress["confirmed"], 1);
    assert_eq!(progress["read"], 1);
    // The hub history survives too: a resume from 0 replays both receipts' events.
    let mut ws = sender.connect(&format!("notice:{id}"), Some(0)).await;
    let event = next_event(&mut ws, "receipt.confirmed").await;
    assert_eq!(event["data"]["reply"], "收到");
}
