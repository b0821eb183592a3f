//! Health and operations: `/healthz`, `/readyz`, `/metrics`, the OpenAPI
//! document covering every API route, and a graceful shutdown that finishes
//! a request in flight.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::{ADMIN_PASSWORD, Backend, PATIENCE, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

on_both_backends!(health_and_readiness, graceful_shutdown);

async fn health_and_readiness(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.anonymous();

    let health = client.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body, json!("ok"));
    let ready = client.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body, json!("ready"));
    let request_id = &health.headers["x-request-id"];
    assert!(
        !request_id.is_empty(),
        "every response carries a request id"
    );

    // With its database pool closed the process is alive but not ready.
    server.state.db.pool.close().await;
    let unready = client.get("/readyz").await;
    assert_eq!(unready.status, StatusCode::SERVICE_UNAVAILABLE);
    let alive = client.get("/healthz").await;
    assert_eq!(alive.status, StatusCode::OK);
}

/// Reads the request counter of one method, route and status from the
/// Prometheus text, 0 when the series does not exist yet.
fn request_count(metrics: &str, method: &str, route: &str, status: &str) -> f64 {
    let labels = [
        format!("method=\"{method}\""),
        format!("route=\"{route}\""),
        format!("status=\"{status}\""),
    ];
    metrics
        .lines()
        .filter(|line| line.starts_with("dangwu_http_requests_total{"))
        .filter(|line| labels.iter().all(|label| line.contains(label.as_str())))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests() {
    let server = TestServer::start(Backend::Sqlite).await;
    let client = server.anonymous();
    let read_metrics = || async {
        let response = client
            .request(Method::GET, "/metrics")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        response.text().await.unwrap()
    };

    client.get("/healthz").await;
    let before = read_metrics().await;
    for _ in 0..3 {
        client.get("/healthz").await;
    }
    client.get("/api/orgs").await;
    let after = read_metrics().await;

    // Other tests in this process share the recorder, so counts only grow.
    let healthz_before = request_count(&before, "GET", "/healthz", "200");
    let healthz_after = request_count(&after, "GET", "/healthz", "200");
    assert!(healthz_before >= 1.0, "first request counted:\n{before}");
    assert!(
        healthz_after >= healthz_before + 3.0,
        "three more counted:\n{after}"
    );
    let denied = request_count(&after, "GET", "/api/orgs", "401");
    assert!(denied >= 1.0, "failed requests counted by status:\n{after}");
    assert!(
        after.contains("dangwu_http_request_duration_seconds"),
        "latencies recorded:\n{after}"
    );
}

/// Collects `(METHOD, path)` of every `#[utoipa::path(...)]` handler and
/// every plain axum route under `/api/` in the server's source.
fn routes_in_source() -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    let mut documented = BTreeSet::new();
    let mut plain = BTreeSet::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("server/src");
    let mut pending = vec![root];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                documented.extend(annotated_paths(&text));
                plain.extend(plain_api_routes(&text));
            }
        }
    }
    (documented, plain)
}

/// Finds `#[utoipa::path(get, path = "/api/x"` annotations.
fn annotated_paths(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (start, _) in text.match_indices("#[utoipa::path(") {
        let rest = &text[start + "#[utoipa::path(".len()..];
        let method = rest.split(',').next().unwrap().trim().to_ascii_uppercase();
        let Some(path_start) = rest.find("path = \"") else {
            continue;
        };
        let path = &rest[path_start + "path = \"".len()..];
        let path = path.split('"').next().unwrap().to_owned();
        found.push((method, path));
    }
    found
}

/// Finds `.route("/api/...", ...)` calls, which bypass the OpenAPI router,
/// also when rustfmt puts the path on the next line.
fn plain_api_routes(text: &str) -> Vec<String> {
    text.match_indices(".route(")
        .filter_map(|(start, _)| {
            let rest = text[start + ".route(".len()..].trim_start();
            let path = rest.strip_prefix('"')?.split('"').next()?;
            path.starts_with("/api/").then(|| path.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route() {
    let server = TestServer::start(Backend::Sqlite).await;
    let client = server.anonymous();
    let document = client.get("/api/openapi.json").await.expect(StatusCode::OK);
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().expect("paths object");
    let mut listed = BTreeSet::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            listed.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }

    // Every handler written in the source is served and documented.
    let (annotated, plain) = routes_in_source();
    assert!(
        plain.contains("/api/openapi.json"),
        "plain routes found: {plain:?}"
    );
    assert!(annotated.len() >= 20, "annotations found: {annotated:?}");
    for route in &annotated {
        assert!(
            listed.contains(route),
            "{route:?} is annotated but not documented"
        );
    }
    for path in plain {
        let exempt = path == "/api/openapi.json" || path == "/api/{*rest}";
        let documented = listed.iter().any(|(_, listed_path)| *listed_path == path);
        assert!(
            exempt || documented,
            "{path} is routed without documentation"
        );
    }

    // Every documented route reaches a handler rather than the API fallback.
    for (method, path) in &listed {
        let concrete: Vec<&str> = path
            .split('/')
            .map(|part| if part.starts_with('{') { "1" } else { part })
            .collect();
        let concrete = concrete.join("/");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = matches!(method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}));
        let reply = client.send(method.clone(), &concrete, body).await;
        assert_ne!(reply.code(), "no_such_endpoint", "{method} {concrete}");
        assert_ne!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {concrete}"
        );
    }

    // The identity, tree, member and audit endpoints are among them.
    for (method, path) in [
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/logout"),
        ("POST", "/api/auth/password"),
        ("POST", "/api/auth/tokens"),
        ("GET", "/api/orgs"),
        ("PATCH", "/api/orgs/{id}"),
        ("POST", "/api/orgs/{id}/move"),
        ("PUT", "/api/orgs/{id}/roles/{member_id}"),
        ("GET", "/api/members/{id}"),
        ("POST", "/api/members/{id}/reveal-id"),
        ("POST", "/api/accounts"),
        ("POST", "/api/accounts/{id}/reset-password"),
        ("GET", "/api/audit"),
    ] {
        let route = (method.to_owned(), path.to_owned());
        assert!(listed.contains(&route), "{method} {path} documented");
    }

    let unknown = client.get("/api/no/such/route").await;
    unknown.expect_error(StatusCode::NOT_FOUND, "no_such_endpoint");
}

/// Reads from the stream until the end of the response head.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut byte).await.expect("read response head");
        assert_eq!(
            read,
            1,
            "connection closed after {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Waits until the server stops accepting connections.
async fn wait_until_refused(addr: std::net::SocketAddr) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "listener still open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn graceful_shutdown(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let addr = server.addr;
    let body = json!({"username": "sysadmin", "password": ADMIN_PASSWORD}).to_string();

    // `Expect: 100-continue` makes the server confirm that the handler is
    // reading the body, so the request is in flight before the shutdown.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let interim = read_head(&mut stream).await;
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");

    server.signal_shutdown();
    wait_until_refused(addr).await;

    stream.write_all(body.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "in-flight request finishes: {head}"
    );
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await;
    let text = String::from_utf8_lossy(&rest);
    let json_start = text.find('{').expect("JSON body");
    let reply: Value = serde_json::from_str(text[json_start..].trim_end()).unwrap_or(Value::Null);
    assert_eq!(reply["account"]["username"], "sysadmin", "body: {text}");

    server.stop().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no new connections"
    );
}
