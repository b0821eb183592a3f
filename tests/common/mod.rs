//! Test harness: a real Dangwu server on port 0 over a fresh SQLite file or
//! a fresh PostgreSQL schema, and HTTP clients logged in as its accounts.
//!
//! PostgreSQL tests need a server on 127.0.0.1:5432 that trusts the local
//! user (`postgres`, else `root`) on the database `test`; `DANGWU_TEST_PG`
//! overrides that base URL. Each test gets its own schema, selected through
//! the connection's `search_path`, and drops it at the end.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::config::{Config, StoreConfig};
use sqlx::Connection;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Password of the three built-in administrator accounts in every test.
pub const ADMIN_PASSWORD: &str = "Test-Admin-2026";
/// Password of member accounts created by [`Client::create_account`].
pub const MEMBER_PASSWORD: &str = "Member-Pass-2026";

/// Generous bound for anything that must happen eventually.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The database behind a test server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Defines one test per backend, `NAME::sqlite` and `NAME::postgres`, that
/// both run `async fn NAME(backend: Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            }
        )+
    };
}

/// Returns the base URL of the PostgreSQL test database, without a schema.
pub async fn postgres_base_url() -> String {
    if let Ok(url) = std::env::var("DANGWU_TEST_PG") {
        return url;
    }
    for user in ["postgres", "root"] {
        let url = format!("postgres://{user}@127.0.0.1:5432/test");
        if sqlx::PgConnection::connect(&url).await.is_ok() {
            return url;
        }
    }
    panic!(
        "PostgreSQL is not reachable at 127.0.0.1:5432 (database `test`, user postgres or root, \
         trust authentication); start it or set DANGWU_TEST_PG"
    );
}

/// A fresh, empty data store: a data directory, and for PostgreSQL a schema
/// of its own that is dropped with this value.
pub struct Store {
    pub backend: Backend,
    pub data_dir: TempDir,
    pub database_url: String,
    schema: Option<(String, String)>,
}

impl Store {
    pub async fn new(backend: Backend) -> Self {
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        let (database_url, schema) = match backend {
            Backend::Sqlite => (
                format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.path().join("dangwu.db").display()
                ),
                None,
            ),
            Backend::Postgres => {
                let base = postgres_base_url().await;
                let schema = unique_name("t");
                let mut conn = sqlx::PgConnection::connect(&base)
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test schema");
                conn.close().await.ok();
                let separator = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
                (url, Some((base, schema)))
            }
        };
        let store = Self {
            backend,
            data_dir,
            database_url,
            schema,
        };
        if let Some((_, schema)) = &store.schema {
            // A URL whose search_path were ignored would put every test's
            // tables into one shared schema.
            let mut conn = store.connect().await;
            let current: String = sqlx::query_scalar("SELECT current_schema()::text")
                .fetch_one(&mut conn)
                .await
                .expect("query current schema");
            assert_eq!(&current, schema, "search_path from the database URL");
        }
        store
    }

    pub fn data_path(&self) -> &Path {
        self.data_dir.path()
    }

    pub fn config(&self) -> StoreConfig {
        StoreConfig {
            data_dir: self.data_dir.path().to_owned(),
            database_url: self.database_url.clone(),
            files_dir: None,
            audit_key_file: None,
        }
    }

    /// Opens a direct connection to the store, for checks and for deliberate
    /// damage that the API does not allow.
    pub async fn connect(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        let options =
            sqlx::any::AnyConnectOptions::from_str(&self.database_url).expect("valid database URL");
        sqlx::AnyConnection::connect_with(&options)
            .await
            .expect("connect to the test store")
    }

    /// Returns the arguments that point a `dangwu` command at this store.
    pub fn cli_args(&self) -> Vec<String> {
        vec![
            "--data-dir".to_owned(),
            self.data_dir.path().display().to_string(),
            "--database-url".to_owned(),
            self.database_url.clone(),
        ]
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let Some((base, schema)) = self.schema.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on a
        // future, so the cleanup gets a thread and a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                    let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    if let Err(error) = sqlx::query(&drop).execute(&mut conn).await {
                        eprintln!("failed to drop test schema {schema}: {error}");
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Returns a name unique on this machine during the test run, made of the
/// prefix, the process id, a counter and the clock's nanoseconds.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// Builds a server configuration over `store` that listens on a free
/// loopback port.
pub fn config(store: &Store, tls: Option<(PathBuf, PathBuf)>) -> Config {
    let scheme = if tls.is_some() { "https" } else { "http" };
    Config {
        store: store.config(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        public_url: format!("{scheme}://127.0.0.1"),
        tls,
        log_level: "warn".to_owned(),
        demo: false,
        media: server::config::MediaConfig {
            shards: 1,
            ..Default::default()
        },
        nats: None,
        node_id: "test".to_owned(),
        node_url: format!("{scheme}://127.0.0.1"),
        media_region: None,
        node_selection: Default::default(),
    }
}

/// Creates the built-in accounts with [`ADMIN_PASSWORD`] before the server's
/// first start, so that tests can log in with them. The server then finds
/// them and creates no others.
async fn bootstrap(store: &Store) {
    let db = server::db::Db::open(&store.config())
        .await
        .expect("open and migrate the test store");
    let key = server::audit::load_or_create_key(store.data_path()).expect("audit key");
    server::auth::accounts::bootstrap_system_accounts(&db, &key, Some(ADMIN_PASSWORD))
        .await
        .expect("create built-in accounts");
    db.close().await;
}

/// A running server and the store behind it.
pub struct TestServer {
    store: Option<Store>,
    /// The running server's shared state, for checks from inside.
    pub state: server::state::AppState,
    pub addr: SocketAddr,
    pub base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts a server over a fresh store of the given backend.
    pub async fn start(backend: Backend) -> Self {
        let store = Store::new(backend).await;
        Self::start_on(store, None).await
    }

    /// Starts a server over `store`, with TLS when `tls` names a
    /// certificate and key.
    pub async fn start_on(store: Store, tls: Option<(PathBuf, PathBuf)>) -> Self {
        Self::start_configured(store, tls, |_| {}).await
    }

    /// Starts a server over `store` with a configuration that `configure`
    /// changed from the default of [`config`].
    pub async fn start_configured(
        store: Store,
        tls: Option<(PathBuf, PathBuf)>,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        bootstrap(&store).await;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut config = config(&store, tls);
        configure(&mut config);
        let server = server::serve::Server::bind(config)
            .await
            .expect("bind test server");
        let addr = server.addr;
        let state = server.state.clone();
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = signal.await;
        }));
        Self {
            store: Some(store),
            state,
            addr,
            base_url: format!("{scheme}://{addr}"),
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    pub fn store(&self) -> &Store {
        self.store.as_ref().expect("store of a running server")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Starts the graceful shutdown without waiting for it.
    pub fn signal_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Shuts the server down, waits until it has drained and closed the
    /// database, and returns the store for offline checks.
    pub async fn stop(mut self) -> Store {
        self.signal_shutdown();
        let task = self.task.take().expect("server task");
        let outcome = tokio::time::timeout(PATIENCE, task)
            .await
            .expect("server stops within the timeout")
            .expect("server task does not panic");
        outcome.expect("server run ends without error");
        self.store.take().expect("store of a running server")
    }

    /// Returns a client with no session.
    pub fn anonymous(&self) -> Client {
        Client::new(self.base_url.clone(), http_client())
    }

    /// Logs in through the login endpoint and returns the cookie session.
    pub async fn login(&self, username: &str, password: &str) -> Client {
        let mut client = self.anonymous();
        let reply = client
            .post(
                "/api/auth/login",
                json!({"username": username, "password": password}),
            )
            .await;
        let body = reply.expect(StatusCode::OK);
        client.csrf = body["csrf_token"].as_str().map(str::to_owned);
        client.account = body["account"].clone();
        client
    }

    pub async fn sysadmin(&self) -> Client {
        self.login("sysadmin", ADMIN_PASSWORD).await
    }

    pub async fn secadmin(&self) -> Client {
        self.login("secadmin", ADMIN_PASSWORD).await
    }

    pub async fn auditor(&self) -> Client {
        self.login("auditor", ADMIN_PASSWORD).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.signal_shutdown();
    }
}

/// Installs the ring TLS provider for the process; reqwest is built
/// without one and refuses to build a client until one is installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds an HTTP client with a cookie store and a generous timeout.
pub fn http_client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(PATIENCE)
        .build()
        .expect("HTTP client")
}

/// A response: status, headers and the body parsed as JSON (`Null` when the
/// body is empty, a JSON string when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Self {
            status,
            headers,
            body,
        }
    }

    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status, body: {}",
            self.body
        );
        self.body
    }

    /// Returns the `error.code` of an error body, or "" when there is none.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts an error response: status, code, a non-empty message and the
    /// documented shape with nothing else in it.
    #[track_caller]
    pub fn expect_error(&self, status: StatusCode, code: &str) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status, body: {}",
            self.body
        );
        let error = &self.body["error"];
        assert!(error.is_object(), "no error object in {}", self.body);
        assert_eq!(error["code"], code, "unexpected code in {}", self.body);
        let message = error["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "empty message in {}", self.body);
        let body_keys: Vec<&String> = self.body.as_object().unwrap().keys().collect();
        assert_eq!(body_keys, ["error"], "extra keys in {}", self.body);
        for key in error.as_object().unwrap().keys() {
            assert!(
                ["code", "message", "field", "detail"].contains(&key.as_str()),
                "unexpected key {key} in {}",
                self.body
            );
        }
        error
    }
}

/// An API client, anonymous or logged in with a cookie session (which sends
/// the CSRF token on every request) or a bearer token.
#[derive(Clone)]
pub struct Client {
    pub base_url: String,
    pub http: reqwest::Client,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
    /// The account returned at login.
    pub account: Value,
    /// `Accept-Language` to send, if any.
    pub language: Option<String>,
}

impl Client {
    pub fn new(base_url: String, http: reqwest::Client) -> Self {
        Self {
            base_url,
            http,
            csrf: None,
            bearer: None,
            account: Value::Null,
            language: None,
        }
    }

    /// Returns the same session without the CSRF token.
    pub fn without_csrf(&self) -> Self {
        Self {
            csrf: None,
            ..self.clone()
        }
    }

    pub fn account_id(&self) -> i64 {
        self.account["id"].as_i64().expect("logged-in account id")
    }

    /// Starts a request with the session's headers.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(csrf) = &self.csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(language) = &self.language {
            request = request.header("Accept-Language", language);
        }
        request
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::read(request.send().await.expect("request reaches the server")).await
    }

    /// Sends raw bytes as `application/json`.
    pub async fn send_raw(&self, method: Method, path: &str, body: Vec<u8>) -> Reply {
        let request = self
            .request(method, path)
            .header("Content-Type", "application/json")
            .body(body);
        Reply::read(request.send().await.expect("request reaches the server")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn post_empty(&self, path: &str) -> Reply {
        self.send(Method::POST, path, None).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// Creates an organization and returns its id.
    pub async fn create_org(&self, parent_id: Option<i64>, name: &str, kind: &str) -> i64 {
        let body = json!({"parent_id": parent_id, "name": name, "kind": kind});
        let org = self
            .post("/api/orgs", body)
            .await
            .expect(StatusCode::CREATED);
        org["id"].as_i64().expect("organization id")
    }

    /// Creates a member with a fresh valid identity number; returns the id.
    pub async fn create_member(&self, org_id: i64, name: &str) -> i64 {
        let body = member_body(org_id, name, &next_id_number());
        let member = self
            .post("/api/members", body)
            .await
            .expect(StatusCode::CREATED);
        member["id"].as_i64().expect("member id")
    }

    /// Creates an account for a member with [`MEMBER_PASSWORD`]; returns the
    /// account id.
    pub async fn create_account(&self, username: &str, member_id: Option<i64>) -> i64 {
        let body = json!({
            "username": username,
            "display_name": username,
            "password": MEMBER_PASSWORD,
            "member_id": member_id,
        });
        let account = self
            .post("/api/accounts", body)
            .await
            .expect(StatusCode::CREATED);
        clear_initial_password(&self.base_url, username).await;
        account["id"].as_i64().expect("account id")
    }

    /// Creates an account and leaves its initial-password flag set, for
    /// tests of the first-login password change.
    pub async fn create_account_unchanged(&self, username: &str, member_id: Option<i64>) -> i64 {
        let body = json!({
            "username": username,
            "display_name": username,
            "password": MEMBER_PASSWORD,
            "member_id": member_id,
        });
        let account = self
            .post("/api/accounts", body)
            .await
            .expect(StatusCode::CREATED);
        account["id"].as_i64().expect("account id")
    }

    /// Gives a member an officer role in an organization.
    pub async fn assign_role(&self, org_id: i64, member_id: i64, role: &str) {
        self.put(
            &format!("/api/orgs/{org_id}/roles/{member_id}"),
            json!({"role": role}),
        )
        .await
        .expect(StatusCode::OK);
    }

    /// Creates a bearer token and returns a client that uses only it.
    pub async fn bearer_client(&self, label: &str) -> Client {
        let created = self
            .post("/api/auth/tokens", json!({"label": label}))
            .await
            .expect(StatusCode::CREATED);
        let token = created["token"].as_str().expect("token").to_owned();
        Client {
            base_url: self.base_url.clone(),
            http: {
                install_crypto_provider();
                reqwest::Client::builder()
                    .timeout(PATIENCE)
                    .build()
                    .expect("HTTP client")
            },
            csrf: None,
            bearer: Some(token),
            account: self.account.clone(),
            language: None,
        }
    }

    /// Fetches audit entries, newest first (auditor only), optionally of one
    /// target type.
    pub async fn audit_entries(&self, target_type: Option<&str>) -> Vec<Value> {
        let mut path = "/api/audit?limit=200".to_owned();
        if let Some(target_type) = target_type {
            path.push_str(&format!("&target_type={target_type}"));
        }
        let page = self.get(&path).await.expect(StatusCode::OK);
        page["items"].as_array().expect("audit items").clone()
    }
}

/// Builds a complete member body for `POST /api/members`.
pub fn member_body(org_id: i64, name: &str, id_number: &str) -> Value {
    json!({
        "org_id": org_id,
        "name": name,
        "gender": "female",
        "ethnicity": "汉族",
        "birth_date": "1990-01-01",
        "education": "本科",
        "joined_on": "2015-07-01",
        "status": "full",
        "phone": "13800000000",
        "id_number": id_number,
    })
}

/// Returns a valid identity-card number, different on each call in this
/// process.
pub fn next_id_number() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let body = format!("11010519900101{:03}", n % 1000);
    let check = server::members::idcard::check_char(&body).expect("17 digits");
    format!("{body}{check}")
}

/// Runs the `dangwu` binary and returns its exit status and output.
pub fn run_dangwu(args: &[&str]) -> (std::process::ExitStatus, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dangwu"))
        .args(args)
        .output()
        .expect("run the dangwu binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, text)
}

/// Clears a new account's initial-password flag the way its user would: by
/// changing the password, then changing it back to [`MEMBER_PASSWORD`].
async fn clear_initial_password(base_url: &str, username: &str) {
    const INTERIM: &str = "Interim-Pass-2026";
    let mut client = Client::new(base_url.to_owned(), http_client());
    let login = json!({"username": username, "password": MEMBER_PASSWORD});
    let body = client
        .post("/api/auth/login", login)
        .await
        .expect(StatusCode::OK);
    client.csrf = body["csrf_token"].as_str().map(str::to_owned);
    for (old, new) in [(MEMBER_PASSWORD, INTERIM), (INTERIM, MEMBER_PASSWORD)] {
        let change = json!({"old_password": old, "new_password": new});
        client
            .post("/api/auth/password", change)
            .await
            .expect(StatusCode::NO_CONTENT);
    }
}
