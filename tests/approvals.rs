//! Document approval end to end on the demo province: templates, drafting,
//! submitting, a countersign step, returns, body versions, sign-off with a
//! document number, signed actions, visibility, stale and racing actions,
//! and live events on the document topic.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Backend, Store};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::serve::Server;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const BRANCH: &str = "东城区机关第一党支部";

struct Running {
    addr: SocketAddr,
    state: server::state::AppState,
    _store: Store,
}

async fn start(backend: Backend) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Store::new(backend).await;
    let mut config = common::config(&store, None);
    config.demo = true;
    let server = Server::bind(config).await.unwrap();
    let (addr, state) = (server.addr, server.state.clone());
    tokio::spawn(server.run(std::future::pending()));
    Running {
        addr,
        state,
        _store: store,
    }
}

#[derive(Clone)]
struct User {
    http: reqwest::Client,
    base: String,
    csrf: String,
    cookie: String,
    member_id: i64,
}

impl Running {
    async fn login(&self, username: &str) -> User {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let base = format!("http://{}", self.addr);
        let response = http
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
            member_id: body["account"]["member_id"].as_i64().unwrap_or(0),
        }
    }

    /// Logs in as whoever holds `role` in the organization named `org`.
    async fn login_role(&self, org: &str, role: &str) -> User {
        let username: String = sqlx::query_scalar(
            "SELECT a.username FROM org_roles r JOIN orgs o ON o.id = r.org_id \
             JOIN accounts a ON a.member_id = r.member_id WHERE o.name = $1 AND r.role = $2",
        )
        .bind(org)
        .bind(role)
        .fetch_one(&self.state.db.pool)
        .await
        .unwrap();
        self.login(&username).await
    }

    async fn org_id(&self, name: &str) -> i64 {
        sqlx::query_scalar("SELECT id FROM orgs WHERE name = $1")
            .bind(name)
            .fetch_one(&self.state.db.pool)
            .await
            .unwrap()
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

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// Acts on the current version of the document.
    async fn act(&self, id: i64, mut action: Value) -> (StatusCode, Value) {
        let (_, view) = self.get(&format!("/api/documents/{id}")).await;
        action["based_on_version"] = view["document"]["workflow_version"].clone();
        self.post(&format!("/api/documents/{id}/actions"), action)
            .await
    }
}

fn template(name: &str, countersigners: &[i64]) -> Value {
    json!({
        "name": name,
        "steps": [
            {"id": "review", "name": "部门审核", "kind": {"type": "single"},
             "assignees": [{"role": {"role": "organization_member", "org": "issuing"}}]},
            {"id": "countersign", "name": "会签", "kind": {"type": "all_of"},
             "assignees": [{"members": countersigners}]},
            {"id": "signoff", "name": "书记签发", "kind": {"type": "single"},
             "assignees": [{"role": {"role": "secretary", "org": "parent"}}]}
        ]
    })
}

async fn draft(
    running: &Running,
    drafter: &User,
    template_id: &Value,
    security_level: &str,
) -> i64 {
    let (status, view) = drafter
        .post(
            "/api/documents",
            json!({"org_id": running.org_id(BRANCH).await, "title": "关于开展主题党日活动的请示", "doc_type": "请示",
                   "security_level": security_level, "urgency": "urgent", "template_id": template_id,
                   "body_html": "<p>拟于下月开展主题党日活动。</p>"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    view["document"]["id"].as_i64().unwrap()
}

async fn todo_ids(user: &User) -> Vec<i64> {
    let (_, list) = user.get("/api/documents?box=todo").await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect()
}

async fn route_through_countersign(backend: Backend) {
    let running = start(backend).await;
    let secretary = running.login("zhibu").await;
    let drafter = running.login("dangyuan").await;
    let reviewer = running.login_role(BRANCH, "organization_member").await;
    let signer_a = running.login_role(BRANCH, "propaganda_member").await;
    let signer_b = running.login("dy005").await;
    let chief = running.login_role("青川市东城区委", "secretary").await;

    let (status, saved) = secretary
        .post(
            "/api/approvals/templates",
            json!({"org_id": running.org_id(BRANCH).await,
            "definition": template("支部请示", &[signer_a.member_id, signer_b.member_id])}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    assert_eq!(saved["version"], 1);
    let id = draft(&running, &drafter, &saved["id"], "internal").await;

    // The drafter watches the document live.
    let mut request = format!("ws://{}/ws", running.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", drafter.cookie.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::Text(
        json!({"type": "subscribe", "topic": format!("document:{id}"), "since": 0})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();

    let (status, view) = drafter.act(id, json!({"action": "submit"})).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["document"]["status"], "in_progress");
    assert_eq!(todo_ids(&reviewer).await, vec![id]);
    assert!(todo_ids(&signer_a).await.is_empty());
    let (_, counts) = reviewer.get("/api/todo").await;
    assert_eq!(counts["approvals_pending"], 1);

    let (_, before) = reviewer.get(&format!("/api/documents/{id}")).await;
    assert_eq!(before["can"]["decide"], true);
    assert_eq!(before["can"]["submit"], false);
    let chief_name = &before["members"][chief.member_id.to_string()];
    assert!(
        chief_name.is_string(),
        "route members are named: {}",
        before["members"]
    );
    let (status, view) = reviewer
        .act(id, json!({"action": "approve", "opinion": "同意"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["can"]["withdraw"], true, "the last actor may withdraw");
    assert!(todo_ids(&reviewer).await.is_empty());
    assert_eq!(todo_ids(&signer_a).await, vec![id]);
    assert_eq!(todo_ids(&signer_b).await, vec![id]);

    // Countersign: one signer returns it to the drafter.
    let (status, view) = signer_a
        .act(
            id,
            json!({"action": "return", "target": {"to": "drafter"}, "opinion": "请补充预算"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["document"]["status"], "returned_to_drafter");
    assert!(
        todo_ids(&signer_b).await.is_empty(),
        "the other countersigner's task closed"
    );

    let (_, returned) = drafter.get(&format!("/api/documents/{id}")).await;
    assert_eq!(returned["can"]["submit"], true);
    assert_eq!(returned["can"]["edit_body"], true);
    // The drafter edits the body and submits again.
    let (status, version) = drafter
        .send(reqwest::Method::PUT, &format!("/api/documents/{id}/body"),
            json!({"body_html": "<p>拟于下月开展主题党日活动，预算两千元。</p>", "reason": "补充预算", "based_on_body_version": 1}))
        .await;
    assert_eq!(status, StatusCode::OK, "{version}");
    assert_eq!(version["version"], 2);
    let (status, _) = drafter.act(id, json!({"action": "submit"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = reviewer
        .act(
            id,
            json!({"action": "approve", "opinion": "同意", "body_version": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for signer in [&signer_b, &signer_a] {
        let (status, view) = signer
            .act(id, json!({"action": "approve", "opinion": "会签同意"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{view}");
    }
    assert_eq!(todo_ids(&chief).await, vec![id]);
    let (status, view) = chief
        .act(id, json!({"action": "approve", "opinion": "同意，签发"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["document"]["status"], "approved");
    let year = chrono::Local::now().format("%Y").to_string();
    assert_eq!(view["document"]["number"], format!("{BRANCH}〔{year}〕1号"));

    // Every action is in the timeline, signed over the body it applied to.
    let timeline = view["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 8);
    let key = running.state.audit_key.verifying_key();
    for entry in timeline {
        let message = server::approvals::signed_message(
            id,
            entry["version"].as_i64().unwrap(),
            entry["actor_member"].as_i64().unwrap(),
            &entry["action"].to_string(),
            entry["body_version"].as_i64().unwrap(),
            entry["body_sha256"].as_str().unwrap(),
            entry["at"].as_i64().unwrap(),
        );
        let signature = hex::decode(entry["signature"].as_str().unwrap()).unwrap();
        let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
        use ed25519_dalek::Verifier;
        key.verify(message.as_bytes(), &signature)
            .expect("valid action signature");
    }
    assert_eq!(timeline.last().unwrap()["body_version"], 2);

    // The drafter saw every action live, in order.
    let mut versions = Vec::new();
    while versions.len() < 8 {
        let frame = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            let message: Value = serde_json::from_str(&text).unwrap();
            if message["kind"] == "document.action" {
                versions.push(message["data"]["version"].as_i64().unwrap());
            }
        }
    }
    assert_eq!(versions, (1..=8).collect::<Vec<_>>());
}

async fn stale_and_racing_actions(backend: Backend) {
    let running = start(backend).await;
    let secretary = running.login("zhibu").await;
    let drafter = running.login("dangyuan").await;
    let a = running.login_role(BRANCH, "propaganda_member").await;
    let b = running.login("dy005").await;
    let any_of = json!({"name": "或签", "steps": [
        {"id": "either", "name": "或签", "kind": {"type": "any_of"}, "assignees": [{"members": [a.member_id, b.member_id]}]}
    ]});
    let (_, saved) = secretary
        .post(
            "/api/approvals/templates",
            json!({"org_id": running.org_id(BRANCH).await, "definition": any_of}),
        )
        .await;
    let id = draft(&running, &drafter, &saved["id"], "internal").await;
    let (status, _) = drafter.act(id, json!({"action": "submit"})).await;
    assert_eq!(status, StatusCode::OK);

    // Stale: based on version 0 after the submit made version 1.
    let (status, error) = a
        .post(
            &format!("/api/documents/{id}/actions"),
            json!({"action": "approve", "based_on_version": 0, "opinion": "同意"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["error"]["code"], "stale_version");
    let drafter_name: String = sqlx::query_scalar("SELECT name FROM members WHERE id = $1")
        .bind(drafter.member_id)
        .fetch_one(&running.state.db.pool)
        .await
        .unwrap();
    assert_eq!(
        error["error"]["message"],
        format!("您看到的是第 0 版，之后{drafter_name}已提交（第 1 版）。请刷新公文后再办理")
            .as_str(),
        "the message names the drafter and the versions"
    );

    // Both any-of approvers act on version 1 at once: exactly one succeeds.
    let path = format!("/api/documents/{id}/actions");
    let body = json!({"action": "approve", "based_on_version": 1, "opinion": "同意"});
    let first = a.post(&path, body.clone());
    let second = b.post(&path, body);
    let ((s1, _), (s2, _)) = tokio::join!(first, second);
    let mut statuses = vec![s1, s2];
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::OK, StatusCode::CONFLICT]);
    let (_, view) = drafter.get(&format!("/api/documents/{id}")).await;
    assert_eq!(view["document"]["status"], "approved");
    assert_eq!(view["timeline"].as_array().unwrap().len(), 2);
}

async fn visibility_follows_route_and_clearance(backend: Backend) {
    let running = start(backend).await;
    let secretary = running.login("zhibu").await;
    let drafter = running.login("dangyuan").await;
    let reviewer = running.login_role(BRANCH, "organization_member").await;
    let outsider = running.login("dy020").await;
    let single = json!({"name": "单人审核", "steps": [
        {"id": "review", "name": "审核", "kind": {"type": "single"}, "assignees": [{"role": {"role": "organization_member", "org": "issuing"}}]}
    ]});
    let (_, saved) = secretary
        .post(
            "/api/approvals/templates",
            json!({"org_id": running.org_id(BRANCH).await, "definition": single}),
        )
        .await;

    // A confidential draft needs the drafter's clearance first.
    let (status, error) = drafter
        .post(
            "/api/documents",
            json!({"org_id": running.org_id(BRANCH).await, "title": "秘密文件", "doc_type": "请示",
            "security_level": "confidential", "template_id": saved["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "security_level");

    let id = draft(&running, &drafter, &saved["id"], "internal").await;
    let (status, _) = reviewer.get(&format!("/api/documents/{id}")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "not on the route before submission"
    );
    drafter.act(id, json!({"action": "submit"})).await;
    let (status, _) = reviewer.get(&format!("/api/documents/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = outsider.get(&format!("/api/documents/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = outsider
        .post(
            &format!("/api/documents/{id}/actions"),
            json!({"action": "approve", "based_on_version": 1, "opinion": "x"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "outside the route cannot act"
    );

    // Lowering the reviewer's clearance below the level hides it.
    sqlx::query("UPDATE accounts SET clearance = 'public' WHERE member_id = $1")
        .bind(reviewer.member_id)
        .execute(&running.state.db.pool)
        .await
        .unwrap();
    let (status, _) = reviewer.get(&format!("/api/documents/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn unresolvable_step_is_reported(backend: Backend) {
    let running = start(backend).await;
    let secretary = running.login("zhibu").await;
    let drafter = running.login("dangyuan").await;
    // The branch has no 纪检委员 in the demo data.
    let missing = json!({"name": "纪检审核", "steps": [
        {"id": "discipline", "name": "纪检审核", "kind": {"type": "single"}, "assignees": [{"role": {"role": "discipline_member", "org": "issuing"}}]}
    ]});
    let (_, saved) = secretary
        .post(
            "/api/approvals/templates",
            json!({"org_id": running.org_id(BRANCH).await, "definition": missing}),
        )
        .await;
    let id = draft(&running, &drafter, &saved["id"], "internal").await;
    let (status, error) = drafter.act(id, json!({"action": "submit"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "route");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("步骤“纪检审核”没有办理人"),
        "{error}"
    );
    let (_, view) = drafter.get(&format!("/api/documents/{id}")).await;
    assert_eq!(view["document"]["status"], "draft", "nothing changed");

    let (status, error) = secretary
        .post("/api/approvals/templates", json!({"org_id": running.org_id(BRANCH).await, "definition": {"name": "空", "steps": []}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "definition");
    let (status, _) = drafter
        .post(
            "/api/approvals/templates",
            json!({"org_id": running.org_id(BRANCH).await, "definition": missing}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a plain member cannot save templates"
    );
}

async fn countersigners_decide_at_once(backend: Backend) {
    let running = start(backend).await;
    let secretary = running.login("zhibu").await;
    let drafter = running.login("dangyuan").await;
    let a = running.login_role(BRANCH, "propaganda_member").await;
    let b = running.login("dy005").await;
    let all_of = json!({"name": "会签", "steps": [
        {"id": "both", "name": "会签", "kind": {"type": "all_of"}, "assignees": [{"members": [a.member_id, b.member_id]}]}
    ]});
    let (_, saved) = secretary
        .post(
            "/api/approvals/templates",
            json!({"org_id": running.org_id(BRANCH).await, "definition": all_of}),
        )
        .await;
    let id = draft(&running, &drafter, &saved["id"], "internal").await;
    let (status, _) = drafter.act(id, json!({"action": "submit"})).await;
    assert_eq!(status, StatusCode::OK);

    // Both countersigners opened version 1 and approve at the same moment:
    // neither decision touches the other's task, so both stand.
    let path = format!("/api/documents/{id}/actions");
    let body = json!({"action": "approve", "based_on_version": 1, "opinion": "同意"});
    let first = a.post(&path, body.clone());
    let second = b.post(&path, body.clone());
    let ((s1, v1), (s2, v2)) = tokio::join!(first, second);
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{v1} {v2}");
    let (_, view) = drafter.get(&format!("/api/documents/{id}")).await;
    assert_eq!(view["document"]["status"], "approved");
    assert_eq!(view["document"]["workflow_version"], 3);

    // A decision on a view that a return has overtaken is still refused.
    let id = draft(&running, &drafter, &saved["id"], "internal").await;
    drafter.act(id, json!({"action": "submit"})).await;
    let (status, view) = a
        .act(
            id,
            json!({"action": "return", "target": {"to": "drafter"}, "opinion": "请修改"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let (status, error) = b.post(&format!("/api/documents/{id}/actions"), body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["error"]["code"], "stale_version");
}

/// Lists the kinds of the stored events on a topic, oldest first.
async fn event_kinds(running: &Running, topic: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT kind FROM hub_events WHERE topic = $1 ORDER BY seq")
        .bind(topic)
        .fetch_all(&running.state.db.pool)
        .await
        .unwrap()
}

async fn account_of(running: &Running, username: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM accounts WHERE username = $1")
        .bind(username)
        .fetch_one(&running.state.db.pool)
        .await
        .unwrap()
}

async fn calendar_and_deadlines(backend: Backend) {
    use chrono::{DateTime, Utc};
    use server::approvals::deadlines::{Swept, sweep};

    let running = start(backend).await;
    let admin = running.login("sysadmin").await;
    let secretary = running.login("zhibu").await;
    let drafter = running.login("dangyuan").await;
    let signer = running.login_role(BRANCH, "propaganda_member").await;
    let put = reqwest::Method::PUT;

    // The system administrator enters a year's exceptions; others may read them.
    let days = json!({"days": [
        {"day": "2026-10-01", "kind": "holiday", "name": "国庆节"},
        {"day": "2026-10-10", "kind": "workday", "name": "国庆节调休上班"}
    ]});
    let (status, saved) = admin
        .send(put.clone(), "/api/calendar/2026", days.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["days"].as_array().unwrap().len(), 2);
    let (status, read) = drafter.get("/api/calendar/2026").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["days"][1]["kind"], "workday");
    let (status, _) = secretary
        .send(put.clone(), "/api/calendar/2026", days)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (bad, field) in [
        (
            json!({"days": [{"day": "2027-01-01", "kind": "holiday"}]}),
            "days[0].day",
        ),
        (
            json!({"days": [{"day": "2026-02-30", "kind": "holiday"}]}),
            "days[0].day",
        ),
        (
            json!({"days": [{"day": "2026-05-01", "kind": "holiday"}, {"day": "2026-05-01", "kind": "workday"}]}),
            "days[1].day",
        ),
    ] {
        let (status, error) = admin.send(put.clone(), "/api/calendar/2026", bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(error["error"]["field"], field);
    }
    let (_, unchanged) = drafter.get("/api/calendar/2026").await;
    assert_eq!(
        unchanged["days"].as_array().unwrap().len(),
        2,
        "a rejected update changes nothing"
    );

    // A step with a deadline of one working day.
    let definition = json!({"name": "限时审核", "steps": [
        {"id": "check", "name": "审核", "kind": {"type": "single"},
         "assignees": [{"members": [signer.member_id]}], "deadline_working_days": 1}
    ]});
    let (_, saved) = secretary
        .post(
            "/api/approvals/templates",
            json!({"org_id": running.org_id(BRANCH).await, "definition": definition}),
        )
        .await;
    let id = draft(&running, &drafter, &saved["id"], "internal").await;
    let submitted_at = Utc::now();
    let (status, view) = drafter.act(id, json!({"action": "submit"})).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let due_at = view["deadlines"][0]["due_at"]
        .as_i64()
        .expect("the task has a due time");
    assert_eq!(view["deadlines"][0]["member"], signer.member_id);
    assert_eq!(view["document"]["due_at"], due_at);
    // Due at midnight Beijing time (16:00 UTC), one to five days ahead.
    assert_eq!(due_at.rem_euclid(86_400_000), 16 * 3_600_000);
    let ahead = due_at - submitted_at.timestamp_millis();
    assert!(ahead > 0, "due {ahead} ms ahead");
    assert!(ahead <= 5 * 86_400_000, "due {ahead} ms ahead");

    // On the due day the assignee is reminded, once.
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
    let before = sweep(&running.state, at(due_at - 3_600_000)).await.unwrap();
    assert_eq!(
        before,
        Swept {
            reminded: 1,
            escalated: 0
        }
    );
    let again = sweep(&running.state, at(due_at - 1_800_000)).await.unwrap();
    assert_eq!(again, Swept::default());
    let signer_account: i64 = sqlx::query_scalar("SELECT id FROM accounts WHERE member_id = $1")
        .bind(signer.member_id)
        .fetch_one(&running.state.db.pool)
        .await
        .unwrap();
    let kinds = event_kinds(&running, &format!("user:{signer_account}")).await;
    assert!(kinds.contains(&"todo.due".to_owned()), "{kinds:?}");

    // Once overdue, the branch secretary is notified once, and it is audited.
    let overdue = sweep(&running.state, at(due_at + 1)).await.unwrap();
    assert_eq!(
        overdue,
        Swept {
            reminded: 0,
            escalated: 1
        }
    );
    let again = sweep(&running.state, at(due_at + 60_000)).await.unwrap();
    assert_eq!(again, Swept::default());
    let superior = account_of(&running, "zhibu").await;
    let kinds = event_kinds(&running, &format!("user:{superior}")).await;
    assert!(kinds.contains(&"todo.escalated".to_owned()), "{kinds:?}");
    let kinds = event_kinds(&running, &format!("document:{id}")).await;
    assert!(kinds.contains(&"document.overdue".to_owned()), "{kinds:?}");
    let (status, view) = secretary.get(&format!("/api/documents/{id}")).await;
    assert_eq!(status, StatusCode::OK, "the superior may read the document");
    assert!(
        view["deadlines"][0]["escalated_at"].is_i64(),
        "{}",
        view["deadlines"]
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'approval.task.escalate' AND target_id = $1",
    )
    .bind(id.to_string())
    .fetch_one(&running.state.db.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // Deciding closes the task and its deadline.
    let (status, view) = signer
        .act(id, json!({"action": "approve", "opinion": "同意"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["deadlines"], json!([]));
    assert_eq!(view["document"]["due_at"], Value::Null);
}

async fn parallel_actions_on_many_documents(backend: Backend) {
    let running = start(backend).await;
    let secretary = running.login("zhibu").await;
    let drafter = running.login("dangyuan").await;
    let reviewer = running.login("dy002").await;
    let single = json!({"name": "单人审核", "steps": [
        {"id": "check", "name": "审核", "kind": {"type": "single"}, "assignees": [{"members": [reviewer.member_id]}]}
    ]});
    let (_, saved) = secretary
        .post(
            "/api/approvals/templates",
            json!({"org_id": running.org_id(BRANCH).await, "definition": single}),
        )
        .await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(draft(&running, &drafter, &saved["id"], "internal").await);
    }

    // Every submit and every approval commits, however they interleave: a
    // transaction that reads before it writes must wait for the others.
    let paths: Vec<String> = ids
        .iter()
        .map(|id| format!("/api/documents/{id}/actions"))
        .collect();
    let submits = paths
        .iter()
        .map(|path| drafter.post(path, json!({"action": "submit", "based_on_version": 0})));
    for (status, view) in futures_util::future::join_all(submits).await {
        assert_eq!(status, StatusCode::OK, "{view}");
    }
    let approvals = paths.iter().map(|path| {
        reviewer.post(
            path,
            json!({"action": "approve", "based_on_version": 1, "opinion": "同意"}),
        )
    });
    for (status, view) in futures_util::future::join_all(approvals).await {
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["document"]["status"], "approved");
    }
}

async fn copied_organizations_and_attachments(backend: Backend) {
    let running = start(backend).await;
    let secretary = running.login("zhibu").await;
    let drafter = running.login("dangyuan").await;
    let reviewer = running.login("dy002").await;
    let single = json!({"name": "单人审核", "steps": [
        {"id": "check", "name": "审核", "kind": {"type": "single"}, "assignees": [{"members": [reviewer.member_id]}]}
    ]});
    let (_, saved) = secretary
        .post(
            "/api/approvals/templates",
            json!({"org_id": running.org_id(BRANCH).await, "definition": single}),
        )
        .await;
    let branch = running.org_id(BRANCH).await;
    let district = running.org_id("青川市东城区委").await;
    let body = |cc: Value| {
        json!({"org_id": branch, "title": "关于开展主题党日活动的通知", "doc_type": "通知",
               "security_level": "internal", "template_id": saved["id"], "body_html": "<p>正文</p>",
               "cc_org_ids": cc})
    };

    // Unknown and repeated organizations are named and nothing is created.
    for (cc, expected) in [
        (json!([district, 999_999]), StatusCode::NOT_FOUND),
        (
            json!([district, district]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, error) = drafter.post("/api/documents", body(cc)).await;
        assert_eq!(status, expected, "{error}");
        assert_eq!(error["error"]["field"], "cc_org_ids[1]");
    }
    let (_, drafts) = drafter.get("/api/documents?box=drafts").await;
    assert_eq!(drafts["total"], 0, "a rejected draft is not stored");
    let (status, view) = drafter
        .post("/api/documents", body(json!([district])))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    assert_eq!(view["cc_orgs"][0]["name"], "青川市东城区委");
    let id = view["document"]["id"].as_i64().unwrap();

    // The drafter may change the list until submitting, then no longer.
    let path = format!("/api/documents/{id}/cc");
    let (status, view) = drafter
        .send(
            reqwest::Method::PUT,
            &path,
            json!({"cc_org_ids": [district, branch]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["cc_orgs"].as_array().unwrap().len(), 2);
    let (status, _) = reviewer
        .send(reqwest::Method::PUT, &path, json!({"cc_org_ids": []}))
        .await;
    assert_ne!(status, StatusCode::OK, "only the drafter edits the list");
    drafter.act(id, json!({"action": "submit"})).await;
    let (status, error) = drafter
        .send(reqwest::Method::PUT, &path, json!({"cc_org_ids": []}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");

    // Attachments: uploaded first, then named on the new document.
    let pdf = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n".to_vec();
    let uploaded: Value = drafter
        .http
        .post(format!("{}/api/files", drafter.base))
        .query(&[("name", "活动方案.pdf")])
        .header("x-csrf-token", &drafter.csrf)
        .header("content-type", "application/octet-stream")
        .body(pdf.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut with_file = body(json!([]));
    with_file["attachments"] = json!([{"sha256": uploaded["sha256"], "name": "活动方案.exe"}]);
    let (status, error) = drafter.post("/api/documents", with_file.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["field"], "attachments[0]");
    with_file["attachments"][0]["name"] = json!("活动方案.pdf");
    let (status, view) = drafter.post("/api/documents", with_file).await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    assert_eq!(view["attachments"][0]["name"], "活动方案.pdf");
    let attached = view["document"]["id"].as_i64().unwrap();
    let download = drafter
        .http
        .get(format!(
            "{}/api/documents/{attached}/attachments/0",
            drafter.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.unwrap().to_vec(), pdf);
    // Someone who may not read the document cannot download its files.
    let outsider = running.login("qingchuan").await;
    let (status, _) = outsider
        .get(&format!("/api/documents/{attached}/attachments/0"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The print view's footer names them in order.
    let printed = drafter
        .http
        .get(format!("{}/api/documents/{id}/print", drafter.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        printed.contains(&format!("抄送：青川市东城区委，{BRANCH}。")),
        "{printed}"
    );
}

on_both_backends!(
    route_through_countersign,
    stale_and_racing_actions,
    countersigners_decide_at_once,
    calendar_and_deadlines,
    parallel_actions_on_many_documents,
    copied_organizations_and_attachments,
    visibility_follows_route_and_clearance,
    unresolvable_step_is_reported,
);

fn dangwu(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dangwu"))
        .args(args)
        .output()
        .expect("run dangwu")
}

/// Replaces every occurrence of `from` in `bytes` with `to`.
fn replace_bytes(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_verifies_and_void_keeps_number() {
    let running = start(Backend::Sqlite).await;
    let secretary = running.login("zhibu").await;
    let drafter = running.login("dangyuan").await;
    let single = json!({"name": "书记审批", "steps": [
        {"id": "sign", "name": "书记签发", "kind": {"type": "single"}, "assignees": [{"role": {"role": "secretary", "org": "issuing"}}]}
    ]});
    let (_, saved) = secretary
        .post(
            "/api/approvals/templates",
            json!({"org_id": running.org_id(BRANCH).await, "definition": single}),
        )
        .await;
    let first = draft(&running, &drafter, &saved["id"], "internal").await;
    drafter.act(first, json!({"action": "submit"})).await;
    let (status, view) = secretary
        .act(first, json!({"action": "approve", "opinion": "同意"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let year = chrono::Local::now().format("%Y").to_string();
    assert_eq!(view["document"]["number"], format!("{BRANCH}〔{year}〕1号"));

    // Export the record and check it offline with the deployment's key.
    let (status, record) = drafter.get(&format!("/api/documents/{first}/record")).await;
    assert_eq!(status, StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("record.json");
    std::fs::write(&file, record.to_string()).unwrap();
    let key = hex::encode(running.state.audit_key.verifying_key().to_bytes());
    let output = dangwu(&["verify-record", file.to_str().unwrap(), "--key", &key]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let mut forged = record.clone();
    let action = forged["actions"][1]["action"]
        .as_str()
        .unwrap()
        .replace("同意", "不同意");
    forged["actions"][1]["action"] = Value::String(action);
    std::fs::write(&file, forged.to_string()).unwrap();
    let output = dangwu(&["verify-record", file.to_str().unwrap(), "--key", &key]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("signature"));
    let other_key = hex::encode([7u8; 32]);
    std::fs::write(&file, record.to_string()).unwrap();
    let output = dangwu(&["verify-record", file.to_str().unwrap(), "--key", &other_key]);
    assert!(
        !output.status.success(),
        "a record does not verify under another key"
    );

    // The PDF record carries the same JSON and verifies as a file.
    let response = drafter
        .http
        .get(format!("{}/api/documents/{first}/record/pdf", drafter.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let pdf = response.bytes().await.unwrap().to_vec();
    assert!(pdf.starts_with(b"%PDF-"));
    let pdf_file = dir.path().join("record.pdf");
    std::fs::write(&pdf_file, &pdf).unwrap();
    let output = dangwu(&["verify-record", pdf_file.to_str().unwrap(), "--key", &key]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // The title is in the page text, as UTF-16 in the text operators.
    let title_utf16: String = "关于开展主题党日活动的请示"
        .encode_utf16()
        .map(|unit| format!("{unit:04X}"))
        .collect();
    let title_in_text = pdf
        .windows(title_utf16.len())
        .any(|window| window.eq_ignore_ascii_case(title_utf16.as_bytes()));
    assert!(title_in_text, "the page shows the document title");
    // An opinion changed inside the attached JSON breaks its signature; the
    // replacement has the same byte length, so the PDF stays readable.
    let forged_pdf = replace_bytes(&pdf, "同意".as_bytes(), "反对".as_bytes());
    assert_ne!(forged_pdf, pdf, "the opinion is inside the PDF");
    std::fs::write(&pdf_file, &forged_pdf).unwrap();
    let output = dangwu(&["verify-record", pdf_file.to_str().unwrap(), "--key", &key]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("signature"));
    std::fs::write(&pdf_file, b"%PDF-1.7\nnot a pdf").unwrap();
    let output = dangwu(&["verify-record", pdf_file.to_str().unwrap(), "--key", &key]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a readable PDF"));

    // Voiding keeps the number in the register; the next number is 2.
    let (status, _) = drafter
        .post(
            &format!("/api/documents/{first}/void"),
            json!({"reason": "内容有误"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, voided) = secretary
        .post(
            &format!("/api/documents/{first}/void"),
            json!({"reason": "内容有误"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{voided}");
    assert_eq!(voided["document"]["status"], "voided");
    assert_eq!(voided["void_reason"], "内容有误");
    let (status, _) = drafter
        .act(first, json!({"action": "comment", "text": "还能办理吗"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let second = draft(&running, &drafter, &saved["id"], "internal").await;
    drafter.act(second, json!({"action": "submit"})).await;
    let (_, view) = secretary
        .act(second, json!({"action": "approve", "opinion": "同意"}))
        .await;
    assert_eq!(view["document"]["number"], format!("{BRANCH}〔{year}〕2号"));
    let (_, register) = secretary
        .get(&format!(
            "/api/approvals/register?org_id={}",
            running.org_id(BRANCH).await
        ))
        .await;
    let entries: Vec<(i64, String)> = register
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["seq"].as_i64().unwrap(),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![(1, "void".to_owned()), (2, "used".to_owned())]
    );
    assert_eq!(register[0]["void_reason"], "内容有误");

    // `dangwu audit verify` checks the stored action signatures too.
    let args = running._store.cli_args();
    let mut verify: Vec<&str> = vec!["audit", "verify"];
    verify.extend(args.iter().map(String::as_str));
    let output = dangwu(&verify);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    sqlx::query("UPDATE document_actions SET action = REPLACE(action, '同意', '反对') WHERE document_id = $1 AND workflow_version = 2")
        .bind(second)
        .execute(&running.state.db.pool)
        .await
        .unwrap();
    let output = dangwu(&verify);
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("document {second}")), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_as_notice_and_print() {
    let running = start(Backend::Sqlite).await;
    let secretary = running.login("zhibu").await;
    let drafter = running.login("dangyuan").await;
    let branch = running.org_id(BRANCH).await;
    let single = json!({"name": "书记审批", "steps": [
        {"id": "sign", "name": "书记签发", "kind": {"type": "single"}, "assignees": [{"role": {"role": "secretary", "org": "issuing"}}]}
    ]});
    let (_, saved) = secretary
        .post(
            "/api/approvals/templates",
            json!({"org_id": branch, "definition": single}),
        )
        .await;
    let id = draft(&running, &drafter, &saved["id"], "internal").await;
    let (status, error) = secretary
        .post(
            &format!("/api/documents/{id}/issue"),
            json!({"org_ids": [branch]}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "not on the route yet: {error}"
    );
    drafter.act(id, json!({"action": "submit"})).await;
    let (status, error) = secretary
        .post(
            &format!("/api/documents/{id}/issue"),
            json!({"org_ids": [branch]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "not signed off yet");
    assert_eq!(error["error"]["code"], "not_signed_off");
    let (_, view) = secretary
        .act(id, json!({"action": "approve", "opinion": "同意<b>"}))
        .await;
    let number = view["document"]["number"].as_str().unwrap().to_owned();

    let (status, notice) = secretary
        .post(
            &format!("/api/documents/{id}/issue"),
            json!({"org_ids": [branch], "require_confirm": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{notice}");
    assert!(notice["title"].as_str().unwrap().starts_with(&number));
    let (_, inbox) = drafter.get("/api/notices/inbox").await;
    assert_eq!(inbox["items"][0]["id"], notice["id"]);
    assert_eq!(inbox["items"][0]["require_confirm"], true);
    let sibling = running.org_id("西城区教育系统党支部").await;
    let (status, error) = secretary
        .post(
            &format!("/api/documents/{id}/issue"),
            json!({"org_ids": [sibling]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error["error"]["field"], "org_ids[0]");

    let response = drafter
        .http
        .get(format!("{}/api/documents/{id}/print", drafter.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(html.contains(&format!("{BRANCH}文件")));
    assert!(html.contains(&number));
    assert!(html.contains("签发人："));
    assert!(html.contains("内部"));
    let record = drafter
        .http
        .get(format!("{}/api/documents/{id}/record/print", drafter.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(record.contains(&view["timeline"][1]["signature"].as_str().unwrap()[..32]));
    assert!(record.contains("同意&lt;b&gt;"), "opinions are escaped");
    assert!(!record.contains("同意<b>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_search_names_only() {
    let running = start(Backend::Sqlite).await;
    let member = running.login("dangyuan").await;
    let name: String = sqlx::query_scalar(
        "SELECT name FROM members WHERE id = (SELECT member_id FROM accounts WHERE username = 'zhibu')",
    )
    .fetch_one(&running.state.db.pool)
    .await
    .unwrap();
    let (status, found) = member.get(&format!("/api/members/search?q={name}")).await;
    assert_eq!(status, StatusCode::OK);
    let entry = &found.as_array().unwrap()[0];
    assert_eq!(entry["name"], name.as_str());
    assert_eq!(entry["org_name"], BRANCH);
    assert!(entry.get("phone").is_none());
    assert!(entry.get("id_number_masked").is_none());
    let (status, error) = member.get("/api/members/search?q=").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "q");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_template_routes_a_draft() {
    let running = start(Backend::Sqlite).await;
    let drafter = running.login("dangyuan").await;
    let branch = running.org_id(BRANCH).await;
    let (status, templates) = drafter
        .get(&format!("/api/approvals/templates?org_id={branch}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let demo = templates
        .as_array()
        .unwrap()
        .iter()
        .find(|template| template["name"] == server::approvals::demo::TEMPLATE_NAME)
        .expect("the demo template is offered to the branch's members")
        .clone();
    let id = draft(&running, &drafter, &demo["id"], "internal").await;
    let (status, view) = drafter.act(id, json!({"action": "submit"})).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["document"]["status"], "in_progress");
    assert_eq!(view["turn"]["step"], "review", "{}", view["turn"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_search_outside_own_subtree() {
    let running = start(Backend::Sqlite).await;
    let member = running.login("dangyuan").await;
    let (status, own_tree) = member.get("/api/orgs").await;
    assert_eq!(status, StatusCode::OK);
    let readable: Vec<&str> = own_tree
        .as_array()
        .unwrap()
        .iter()
        .map(|org| org["name"].as_str().unwrap())
        .collect();
    assert!(
        !readable.contains(&"青川市东城区委"),
        "the district is outside the member's tree"
    );

    let (status, found) = member.get("/api/orgs/search?q=东城区委").await;
    assert_eq!(status, StatusCode::OK);
    let entries = found.as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["name"], "青川市东城区委");
    assert!(entries[0]["parent_name"].is_string());
    assert!(entries[0].get("path").is_none(), "entries carry names only");

    for wildcard in ["%25", "_"] {
        let (status, found) = member.get(&format!("/api/orgs/search?q={wildcard}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            found.as_array().unwrap().len(),
            0,
            "{wildcard} matches itself only"
        );
    }

    for bad in ["", "%20%20", &"党".repeat(51)] {
        let (status, error) = member.get(&format!("/api/orgs/search?q={bad}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "q={bad}");
        assert_eq!(error["error"]["field"], "q");
    }
}
