//! `dangwu cert` with an intranet CA: the server certificate is signed by
//! the CA, and a client that trusts only the CA's root reaches the server.

mod common;

use common::{Backend, PATIENCE, Store, TestServer, run_dangwu};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "江南省委内网根证书");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca = params.self_signed(&ca_key).unwrap();
    let (ca_cert_path, ca_key_path) = (dir.path().join("ca.pem"), dir.path().join("ca-key.pem"));
    std::fs::write(&ca_cert_path, ca.pem()).unwrap();
    std::fs::write(&ca_key_path, ca_key.serialize_pem()).unwrap();

    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (status, output) = run_dangwu(&[
        "cert",
        "127.0.0.1",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--ca-cert",
        ca_cert_path.to_str().unwrap(),
        "--ca-key",
        ca_key_path.to_str().unwrap(),
    ]);
    assert!(status.success(), "dangwu cert failed: {output}");

    let server = TestServer::start_on(Store::new(Backend::Sqlite).await, Some((cert, key))).await;
    common::install_crypto_provider();
    let root = reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}/healthz", server.addr.port());
    let response = http.get(&url).send().await.expect("HTTPS through the CA");
    assert_eq!(response.status(), StatusCode::OK);
}
