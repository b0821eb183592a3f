//! Account list: server-side search, state filter and the linked member.

use reqwest::StatusCode;
use serde_json::{Value, json};
use server::config::{ServeArgs, StoreArgs};
use server::serve::Server;

#[tokio::test]
async fn list_filters_and_pages() {
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
    let base = format!("http://{}", server.addr);
    tokio::spawn(server.run(std::future::pending()));

    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login: Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": "sysadmin", "password": server::demo::DEMO_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = login["csrf_token"].as_str().unwrap().to_owned();
    let get = |query: &'static str| {
        let http = http.clone();
        let url = format!("{base}/api/accounts{query}");
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };

    let all = get("?limit=5").await;
    assert_eq!(all["total"], 63, "60 members and 3 administrators");
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    let found = get("?q=zhibu").await;
    assert_eq!(found["total"], 1);
    let zhibu = &found["items"][0];
    assert_eq!(zhibu["org_name"], "东城区机关第一党支部");
    assert!(zhibu["member_name"].is_string());

    let id = zhibu["id"].as_i64().unwrap();
    let status = http
        .patch(format!("{base}/api/accounts/{id}"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let disabled = get("?disabled=true").await;
    assert_eq!(disabled["total"], 1);
    assert_eq!(disabled["items"][0]["id"], id);
    let active = get("?disabled=false").await;
    assert_eq!(active["total"], 62);
}
