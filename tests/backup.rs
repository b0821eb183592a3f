//! `dangwu backup` while the server runs, then `dangwu restore` into an
//! empty store of the same or the other database: the organizations,
//! members, stored files and the audit chain come back intact.

mod common;

use std::process::Command;

use common::{Backend, Store, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn dangwu(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dangwu"))
        .args(args)
        .output()
        .expect("run dangwu")
}

/// Creates a small tree with a member, a stored file and a notice.
async fn seed(server: &TestServer) -> String {
    let admin = server.sysadmin().await;
    let root = admin
        .post(
            "/api/orgs",
            json!({"name": "南岭市委", "kind": "committee"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let branch = admin
        .post(
            "/api/orgs",
            json!({"parent_id": root["id"], "name": "机关第一党支部", "kind": "branch"}),
        )
        .await
        .expect(StatusCode::CREATED);
    admin
        .post(
            "/api/members",
            json!({"org_id": branch["id"], "name": "陈志远", "gender": "male", "ethnicity": "汉族",
                "birth_date": "1985-01-01", "education": "大学本科", "status": "full",
                "phone": "13900000001", "id_number": "11010519491231002X"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let response = admin
        .request(reqwest::Method::POST, "/api/files?name=材料.txt")
        .header("content-type", "application/octet-stream")
        .body("学习材料".as_bytes().to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let stored: Value = response.json().await.unwrap();
    admin
        .post(
            "/api/notices",
            json!({"title": "通知", "body_html": "<p>正文</p>", "targets": {"org_ids": [branch["id"]]},
                "attachments": [{"sha256": stored["sha256"], "name": "材料.txt"}]}),
        )
        .await
        .expect(StatusCode::CREATED);
    stored["sha256"].as_str().unwrap().to_owned()
}

async fn snapshot(server: &TestServer) -> Vec<Value> {
    let admin = server.sysadmin().await;
    let orgs = admin.get("/api/orgs").await.expect(StatusCode::OK);
    let root = orgs[0]["id"].as_i64().unwrap();
    let members = admin
        .get(&format!("/api/orgs/{root}/members?subtree=true"))
        .await
        .expect(StatusCode::OK);
    let accounts = admin.get("/api/accounts").await.expect(StatusCode::OK);
    let sent = admin.get("/api/notices/sent").await.expect(StatusCode::OK);
    vec![
        orgs,
        members,
        accounts["total"].clone(),
        sent["total"].clone(),
    ]
}

async fn round_trip(from: Backend, to: Backend) {
    let server = TestServer::start(from).await;
    let sha256 = seed(&server).await;
    let before = snapshot(&server).await;
    let archive = tempfile::tempdir().unwrap();
    let out = archive.path().join("snapshot.tar.gz");

    // The backup runs while the server is up.
    let mut args = server.store().cli_args();
    args.extend(["--out".to_owned(), out.display().to_string()]);
    let mut backup_args = vec!["backup".to_owned()];
    backup_args.extend(args);
    let output = dangwu(&backup_args);
    assert!(
        output.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    server.stop().await;

    let target = Store::new(to).await;
    let mut restore_args = vec!["restore".to_owned()];
    restore_args.extend(target.cli_args());
    restore_args.extend(["--from".to_owned(), out.display().to_string()]);
    let output = dangwu(&restore_args);
    assert!(
        output.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut verify_args = vec!["audit".to_owned(), "verify".to_owned()];
    verify_args.extend(target.cli_args());
    let output = dangwu(&verify_args);
    assert!(
        output.status.success(),
        "audit verify: {}",
        String::from_utf8_lossy(&output.stdout)
    );

    let blob = server::files::blob_path(&target.data_path().join("files"), &sha256);
    assert_eq!(std::fs::read(blob).unwrap(), "学习材料".as_bytes());
    let restored = TestServer::start_on(target, None).await;
    assert_eq!(snapshot(&restored).await, before);

    // Ids continue after the restored ones.
    let admin = restored.sysadmin().await;
    let created = admin
        .post(
            "/api/orgs",
            json!({"name": "新建市委", "kind": "committee"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert!(created["id"].as_i64().unwrap() > before[0][1]["id"].as_i64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres() {
    round_trip(Backend::Sqlite, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_sqlite() {
    round_trip(Backend::Postgres, Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_nonempty_store() {
    let server = TestServer::start(Backend::Sqlite).await;
    let archive = tempfile::tempdir().unwrap();
    let out = archive.path().join("snapshot.tar.gz");
    let mut backup_args = vec!["backup".to_owned()];
    backup_args.extend(server.store().cli_args());
    backup_args.extend(["--out".to_owned(), out.display().to_string()]);
    assert!(dangwu(&backup_args).status.success());
    let store = server.stop().await;

    let mut restore_args = vec!["restore".to_owned()];
    restore_args.extend(store.cli_args());
    restore_args.extend(["--from".to_owned(), out.display().to_string()]);
    let output = dangwu(&restore_args);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("empty"), "{stderr}");
}
