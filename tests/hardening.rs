//! Rules found by trying to misuse the product: who may be appointed, who
//! sets whose clearance, what a roster shows, which names an attachment may
//! carry, and commands that must not create a store by accident.

use reqwest::StatusCode;
use serde_json::{Value, json};
use server::config::{ServeArgs, StoreArgs};
use server::serve::Server;

struct Running {
    base: String,
    state: server::state::AppState,
    _dir: tempfile::TempDir,
}

async fn start() -> Running {
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
    let server = Server::bind(args.resolve().unwrap()).await.unwrap();
    let (base, state) = (format!("http://{}", server.addr), server.state.clone());
    tokio::spawn(server.run(std::future::pending()));
    Running {
        base,
        state,
        _dir: dir,
    }
}

struct User {
    http: reqwest::Client,
    base: String,
    csrf: String,
    account_id: i64,
}

impl Running {
    async fn login(&self, username: &str) -> User {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let response = http
            .post(format!("{}/api/auth/login", self.base))
            .json(&json!({"username": username, "password": server::demo::DEMO_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "login {username}");
        let body: Value = response.json().await.unwrap();
        User {
            http,
            base: self.base.clone(),
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
            account_id: body["account"]["id"].as_i64().unwrap(),
        }
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.state.db.pool)
            .await
            .unwrap()
    }
}

impl User {
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
}

const BRANCH_ID: &str = "(SELECT id FROM orgs WHERE name = '东城区机关第一党支部')";

#[tokio::test]
async fn officer_cannot_appoint_outsider() {
    let running = start().await;
    let secretary = running.login("zhibu").await;
    let branch = running.scalar(&format!("SELECT {BRANCH_ID}")).await;
    let outsider = running
        .scalar(&format!(
            "SELECT MIN(id) FROM members WHERE org_id <> {BRANCH_ID}"
        ))
        .await;
    let (status, error) = secretary
        .send(
            reqwest::Method::PUT,
            &format!("/api/orgs/{branch}/roles/{outsider}"),
            json!({"role": "committee_member"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert_eq!(error["error"]["field"], "member_id");
    let insider = running
        .scalar(&format!(
            "SELECT MAX(id) FROM members WHERE org_id = {BRANCH_ID}"
        ))
        .await;
    let (status, _) = secretary
        .send(
            reqwest::Method::PUT,
            &format!("/api/orgs/{branch}/roles/{insider}"),
            json!({"role": "committee_member"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn security_admin_cannot_raise_own_clearance() {
    let running = start().await;
    let secadmin = running.login("secadmin").await;
    let (status, error) = secadmin
        .send(
            reqwest::Method::PUT,
            &format!("/api/accounts/{}/clearance", secadmin.account_id),
            json!({"clearance": "secret"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error["error"]["code"], "own_clearance");
    let other = running.login("zhibu").await;
    let (status, _) = secadmin
        .send(
            reqwest::Method::PUT,
            &format!("/api/accounts/{}/clearance", other.account_id),
            json!({"clearance": "confidential"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn roster_hides_personal_details() {
    let running = start().await;
    let member = running.login("dangyuan").await;
    let secretary = running.login("zhibu").await;
    let branch = running.scalar(&format!("SELECT {BRANCH_ID}")).await;
    let (_, roster) = member.get(&format!("/api/orgs/{branch}/members")).await;
    let items = roster["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    let own = running
        .scalar("SELECT member_id FROM accounts WHERE username = 'dangyuan'")
        .await;
    for item in items {
        if item["id"] == own {
            assert_ne!(item["phone"], "", "own record stays complete");
        } else {
            assert!(!item["name"].as_str().unwrap().is_empty());
            assert_eq!(item["phone"], "");
            assert_eq!(item["birth_date"], "");
            assert_eq!(item["id_number_masked"], "");
        }
    }
    let (_, full) = secretary.get(&format!("/api/orgs/{branch}/members")).await;
    assert!(
        full["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["phone"] != "")
    );
}

#[tokio::test]
async fn attachment_name_must_match_type() {
    let running = start().await;
    let secretary = running.login("zhibu").await;
    let branch = running.scalar(&format!("SELECT {BRANCH_ID}")).await;
    let response = secretary
        .http
        .post(format!("{}/api/files?name=d.txt", running.base))
        .header("x-csrf-token", &secretary.csrf)
        .header("content-type", "application/octet-stream")
        .body("hello")
        .send()
        .await
        .unwrap();
    let stored: Value = response.json().await.unwrap();
    for name in ["evil.html", "a\r\nb.txt", "报告\u{202e}txt.exe", "x.pdf"] {
        let (status, error) = secretary
            .send(
                reqwest::Method::POST,
                "/api/notices",
                json!({"title": "附件", "body_html": "x", "targets": {"org_ids": [branch]},
                       "attachments": [{"sha256": stored["sha256"], "name": name}]}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name:?}: {error}"
        );
        assert_eq!(error["error"]["field"], "attachments[0]", "{name:?}");
    }
}

#[tokio::test]
async fn usernames_ignore_case() {
    let running = start().await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/auth/login", running.base))
        .json(&json!({"username": "ZhiBu", "password": server::demo::DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let admin = running.login("sysadmin").await;
    let (status, error) = admin
        .send(
            reqwest::Method::POST,
            "/api/accounts",
            json!({"username": "ZHIBU", "display_name": "冒名", "password": "Other-Pass-2026"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
}

#[tokio::test]
async fn template_members_must_exist() {
    let running = start().await;
    let secretary = running.login("zhibu").await;
    let branch = running.scalar(&format!("SELECT {BRANCH_ID}")).await;
    let (status, error) = secretary
        .send(
            reqwest::Method::POST,
            "/api/approvals/templates",
            json!({"org_id": branch, "definition": {"name": "x", "steps": [
                {"id": "a", "name": "a", "kind": {"type": "all_of"}, "assignees": [{"members": [999999]}]}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("999999")
    );
}

#[test]
fn commands_refuse_missing_store() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let out = dir.path().join("out.tar.gz");
    let dangwu = env!("CARGO_BIN_EXE_dangwu");
    let backup = std::process::Command::new(dangwu)
        .args([
            "backup",
            "--data-dir",
            missing.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!backup.status.success());
    assert!(String::from_utf8_lossy(&backup.stderr).contains("no Dangwu store"));
    let verify = std::process::Command::new(dangwu)
        .args(["audit", "verify", "--data-dir", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!verify.status.success());
    assert!(
        !missing.exists(),
        "nothing was created at the mistyped path"
    );
    assert!(!out.exists());
}
