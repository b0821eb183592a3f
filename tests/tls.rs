//! HTTPS: `dangwu cert` writes a certificate for the given names and
//! addresses, and the server serves it directly to a client that trusts only
//! that certificate.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{ADMIN_PASSWORD, Backend, Client, PATIENCE, Reply, Store, TestServer, run_dangwu};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(serves_https);

/// Builds a client whose only trusted root is `cert_pem`.
fn trusting(cert_pem: &[u8]) -> reqwest::Client {
    common::install_crypto_provider();
    let certificate = reqwest::Certificate::from_pem(cert_pem).expect("PEM certificate");
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(certificate)
        .cookie_store(true)
        .timeout(PATIENCE)
        .build()
        .expect("HTTPS client")
}

async fn serves_https(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let (status, output) = run_dangwu(&[
        "cert",
        "127.0.0.1",
        "localhost",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(status.success(), "dangwu cert failed: {output}");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "private key is readable by its owner only"
    );
    let cert_pem = std::fs::read(&cert).unwrap();

    let store = Store::new(backend).await;
    let server = TestServer::start_on(store, Some((cert.clone(), key.clone()))).await;
    let port = server.addr.port();
    assert!(server.base_url.starts_with("https://"));
    let http = trusting(&cert_pem);

    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{port}/healthz");
        let response = http.get(&url).send().await.expect("HTTPS request");
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(response.text().await.unwrap(), "ok", "{url}");
    }

    // Session cookies are marked Secure when the server speaks HTTPS.
    let client = Client::new(server.base_url.clone(), http.clone());
    let login = json!({"username": "sysadmin", "password": ADMIN_PASSWORD});
    let reply = client.post("/api/auth/login", login).await;
    let cookies: Vec<&str> = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!cookies.is_empty());
    for cookie in cookies {
        assert!(cookie.contains("; Secure"), "{cookie}");
    }

    // A client that does not trust the certificate fails the handshake.
    let stranger = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let untrusted = stranger.get(server.url("/healthz")).send().await;
    assert!(untrusted.is_err(), "untrusted certificate accepted");

    // Plain HTTP on the HTTPS port never gets a 200 response.
    let plain = common::http_client();
    let plain = plain
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    if let Ok(response) = plain {
        let reply = Reply::read(response).await;
        assert_ne!(
            reply.status,
            StatusCode::OK,
            "plain HTTP served: {:?}",
            reply.body
        );
    }

    server.stop().await;
}
