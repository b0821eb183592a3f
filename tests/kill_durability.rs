//! A crash loses nothing acknowledged: workflow actions and notice receipts
//! sent while the server process is killed with SIGKILL are all present
//! after a restart, and the audit trail still verifies.

mod server_process;

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use server_process::{free_port, login, spawn, wait_ready};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_actions_survive_sigkill() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn(dir.path(), port);
    wait_ready(&reqwest::Client::new(), &base).await;

    let (secretary, secretary_csrf) = login(&base, "zhibu").await;
    let (drafter, csrf) = login(&base, "dangyuan").await;
    let org_id = {
        let orgs: Value = drafter
            .get(format!("{base}/api/orgs"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        orgs[0]["id"].as_i64().unwrap()
    };
    let template = json!({"org_id": org_id, "definition": {"name": "书记审批", "steps": [
        {"id": "sign", "name": "书记签发", "kind": {"type": "single"}, "assignees": [{"role": {"role": "secretary", "org": "issuing"}}]}]}});
    let saved: Value = secretary
        .post(format!("{base}/api/approvals/templates"))
        .header("x-csrf-token", &secretary_csrf)
        .json(&template)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let view: Value = drafter
        .post(format!("{base}/api/documents"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"org_id": org_id, "title": "耐久性检查", "doc_type": "请示", "security_level": "internal", "template_id": saved["id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = view["document"]["id"].as_i64().unwrap();
    let actions = format!("{base}/api/documents/{id}/actions");
    let submitted = drafter
        .post(&actions)
        .header("x-csrf-token", &csrf)
        .json(&json!({"action": "submit", "based_on_version": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), StatusCode::OK);

    // Comments are acknowledged one after another until the process dies.
    let writer = {
        let (drafter, csrf, actions) = (drafter.clone(), csrf.clone(), actions.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0..400 {
                let text = format!("意见 {n}");
                let sent = drafter
                    .post(&actions)
                    .header("x-csrf-token", &csrf)
                    .json(&json!({"action": "comment", "based_on_version": 1, "text": text}))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == StatusCode::OK => acknowledged.push(text),
                    _ => break,
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().expect("SIGKILL the server");
    child.wait().unwrap();
    let acknowledged = writer.await.unwrap();
    assert!(
        !acknowledged.is_empty(),
        "some comments were acknowledged before the kill"
    );
    assert!(
        acknowledged.len() < 400,
        "the kill landed while comments were being written"
    );

    let mut child = spawn(dir.path(), port);
    wait_ready(&reqwest::Client::new(), &base).await;
    let (drafter, _) = login(&base, "dangyuan").await;
    let view: Value = drafter
        .get(format!("{base}/api/documents/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: Vec<String> = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["action"]["text"].as_str().map(str::to_owned))
        .collect();
    for text in &acknowledged {
        assert!(
            stored.contains(text),
            "acknowledged {text:?} is missing after the restart"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_dangwu"))
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
