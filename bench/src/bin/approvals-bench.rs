//! Benchmark of document approval: durable workflow actions per second and
//! the time from an action's request to its event at a viewer, on SQLite and
//! on PostgreSQL.
//!
//! For each store the program starts the real server in this process with
//! the demo province, saves a template of sequential single-approver steps
//! for one branch, and creates the documents. Workers then drive documents
//! through the route over HTTP: one submit and one approval per step, each
//! action based on the version the previous reply reported. A viewer holds
//! one hub connection subscribed to every document's topic and notes when
//! each `document.action` event arrives. An action counts as durable when
//! its HTTP reply has arrived, because the server commits before it
//! replies.
//!
//! Prints one line per phase to standard error and a Markdown table to
//! standard output. Everything runs on loopback.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use server::config::{ServeArgs, StoreArgs};
use server::serve::Server;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const BRANCH: &str = "东城区机关第一党支部";
const DRAFTER: &str = "dangyuan";
/// Demo members of the branch who approve in turn, one step each.
const APPROVERS: [&str; 4] = ["dy002", "dy003", "dy005", "zhibu"];
const PASSWORD: &str = server::demo::DEMO_PASSWORD;

#[derive(Parser)]
#[command(
    about = "Approval actions per second and action-to-viewer latency on SQLite and PostgreSQL"
)]
struct Args {
    /// Documents driven through the route per store.
    #[arg(long, default_value_t = 200)]
    documents: usize,
    /// Documents in flight at once, each driven by its own worker.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Approval steps per document (1 to 4).
    #[arg(long, default_value_t = 4)]
    steps: usize,
    /// PostgreSQL server for the PostgreSQL run; a database is created for
    /// the run and dropped after it. `none` skips PostgreSQL.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres: String,
}

/// The figures of one store.
struct Report {
    store: &'static str,
    actions: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    missing_events: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(1..=APPROVERS.len()).contains(&args.steps) {
        bail!("--steps must be between 1 and {}", APPROVERS.len());
    }
    if args.documents == 0 || args.concurrency == 0 {
        bail!("--documents and --concurrency must be at least 1");
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();

    let mut reports = Vec::new();
    let data = tempfile::tempdir()?;
    reports.push(run_store(&args, "SQLite", data.path().join("sqlite"), None).await?);
    if args.postgres != "none" {
        let database = format!("dangwu_bench_{}", std::process::id());
        let admin = args.postgres.clone();
        sqlx_admin(&admin, &format!("CREATE DATABASE {database}")).await?;
        let url = replace_database(&admin, &database)?;
        let result = run_store(&args, "PostgreSQL", data.path().join("postgres"), Some(url)).await;
        sqlx_admin(
            &admin,
            &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        )
        .await?;
        reports.push(result?);
    }

    println!(
        "| store | documents | workers | actions | seconds | actions/s | viewer p50 (ms) | viewer p99 (ms) | viewer max (ms) | events missing |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for report in &reports {
        let mut latencies = report.latencies.clone();
        latencies.sort();
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {} |",
            report.store,
            args.documents,
            args.concurrency,
            report.actions,
            report.elapsed.as_secs_f64(),
            report.actions as f64 / report.elapsed.as_secs_f64(),
            millis(percentile(&latencies, 50.0)),
            millis(percentile(&latencies, 99.0)),
            millis(latencies.last().copied().unwrap_or_default()),
            report.missing_events,
        );
    }
    Ok(())
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn sqlx_admin(url: &str, statement: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .with_context(|| format!("failed to connect to PostgreSQL at {url}"))?;
    sqlx::query(statement)
        .execute(&mut conn)
        .await
        .with_context(|| format!("failed to run {statement:?}"))?;
    conn.close().await?;
    Ok(())
}

/// Returns `url` with its database name replaced by `database`.
fn replace_database(url: &str, database: &str) -> anyhow::Result<String> {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let slash = base
        .rfind('/')
        .filter(|index| *index > "postgres://".len())
        .with_context(|| format!("the PostgreSQL URL {url:?} names no database"))?;
    let mut replaced = format!("{}/{database}", &base[..slash]);
    if let Some(query) = query {
        replaced.push('?');
        replaced.push_str(query);
    }
    Ok(replaced)
}

/// A logged-in demo account.
#[derive(Clone)]
struct User {
    http: reqwest::Client,
    base: String,
    csrf: String,
    cookie: String,
}

impl User {
    async fn login(base: &str, username: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().cookie_store(true).build()?;
        let response = http
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("login as {username} failed: HTTP {}", response.status());
        }
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("dangwu_session="))
            .and_then(|v| v.split(';').next())
            .context("login set no session cookie")?
            .to_owned();
        let body: Value = response.json().await?;
        let csrf = body["csrf_token"]
            .as_str()
            .context("login returned no CSRF token")?
            .to_owned();
        Ok(Self {
            http,
            base: base.to_owned(),
            csrf,
            cookie,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {path} failed: HTTP {status} {value}");
        }
        Ok(value)
    }
}

/// When each (document, workflow version) was requested and when its event
/// reached the viewer.
#[derive(Default)]
struct Timings {
    sent: HashMap<(i64, i64), Instant>,
    seen: HashMap<(i64, i64), Instant>,
}

async fn run_store(
    args: &Args,
    store: &'static str,
    data_dir: std::path::PathBuf,
    database_url: Option<String>,
) -> anyhow::Result<Report> {
    let serve_args = ServeArgs {
        store: StoreArgs {
            data_dir: Some(data_dir),
            database_url,
            ..Default::default()
        },
        listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
        log_level: Some("warn".into()),
        demo: true,
        ..Default::default()
    };
    let server = Server::bind(serve_args.resolve()?).await?;
    let addr = server.addr;
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}");

    let drafter = User::login(&base, DRAFTER).await?;
    let mut approvers = Vec::new();
    for username in &APPROVERS[..args.steps] {
        approvers.push(User::login(&base, username).await?);
    }
    let secretary = User::login(&base, "zhibu").await?;
    let orgs = secretary
        .call(reqwest::Method::GET, "/api/orgs", None)
        .await?;
    let branch = orgs
        .as_array()
        .and_then(|orgs| orgs.iter().find(|org| org["name"] == BRANCH))
        .and_then(|org| org["id"].as_i64())
        .context("the demo branch is missing")?;
    let mut steps = Vec::new();
    for (index, approver) in approvers.iter().enumerate() {
        let me = approver
            .call(reqwest::Method::GET, "/api/auth/me", None)
            .await?;
        steps.push(
            json!({"id": format!("s{index}"), "name": format!("第{}步", index + 1),
            "kind": {"type": "single"}, "assignees": [{"members": [me["account"]["member_id"]]}]}),
        );
    }
    let template = secretary
        .call(
            reqwest::Method::POST,
            "/api/approvals/templates",
            Some(json!({"org_id": branch, "definition": {"name": "基准测试", "steps": steps}})),
        )
        .await?;

    let mut documents = Vec::new();
    for index in 0..args.documents {
        let created = drafter
            .call(
                reqwest::Method::POST,
                "/api/documents",
                Some(json!({"org_id": branch, "title": format!("基准测试请示第{index}号"), "doc_type": "请示",
                    "security_level": "internal", "urgency": "normal", "template_id": template["id"],
                    "body_html": "<p>请审批。</p>"})),
            )
            .await?;
        documents.push(created["document"]["id"].as_i64().context("document id")?);
    }
    eprintln!("{store}: {} documents created", documents.len());

    // The viewer subscribes to every document before the actions start.
    let timings = Arc::new(Mutex::new(Timings::default()));
    let mut request = format!("ws://{addr}/ws?v=1").into_client_request()?;
    request
        .headers_mut()
        .insert("cookie", drafter.cookie.parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    for id in &documents {
        let subscribe = json!({"type": "subscribe", "topic": format!("document:{id}")});
        socket
            .send(Message::Text(subscribe.to_string().into()))
            .await?;
    }
    let mut subscribed = 0;
    while subscribed < documents.len() {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .context("timed out waiting for subscriptions")?
            .context("hub connection closed")??;
        if let Message::Text(text) = frame {
            let message: Value = serde_json::from_str(&text)?;
            match message["type"].as_str() {
                Some("subscribed") => subscribed += 1,
                Some("error") => bail!("subscription failed: {message}"),
                _ => {}
            }
        }
    }
    let viewer_timings = timings.clone();
    let viewer = tokio::spawn(async move {
        while let Some(Ok(frame)) = socket.next().await {
            let Message::Text(text) = frame else { continue };
            let Ok(message) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if message["type"] != "event" || message["kind"] != "document.action" {
                continue;
            }
            let now = Instant::now();
            let topic = message["topic"].as_str().unwrap_or_default();
            let id = topic
                .strip_prefix("document:")
                .and_then(|id| id.parse::<i64>().ok());
            let version = message["data"]["version"].as_i64();
            if let (Some(id), Some(version)) = (id, version) {
                viewer_timings
                    .lock()
                    .unwrap()
                    .seen
                    .insert((id, version), now);
            }
        }
    });

    let queue = Arc::new(Mutex::new(documents.clone()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let queue = queue.clone();
        let timings = timings.clone();
        let drafter = drafter.clone();
        let approvers = approvers.clone();
        workers.push(tokio::spawn(async move {
            let mut actions = 0usize;
            loop {
                let Some(id) = queue.lock().unwrap().pop() else {
                    break;
                };
                let path = format!("/api/documents/{id}/actions");
                let mut version = 0;
                let turns = std::iter::once((&drafter, json!({"action": "submit"}))).chain(
                    approvers.iter().map(|approver| {
                        (approver, json!({"action": "approve", "opinion": "同意"}))
                    }),
                );
                for (user, mut action) in turns {
                    action["based_on_version"] = json!(version);
                    timings
                        .lock()
                        .unwrap()
                        .sent
                        .insert((id, version + 1), Instant::now());
                    let view = user
                        .call(reqwest::Method::POST, &path, Some(action))
                        .await?;
                    version = view["document"]["workflow_version"]
                        .as_i64()
                        .context("workflow version")?;
                    actions += 1;
                }
            }
            anyhow::Ok(actions)
        }));
    }
    let mut actions = 0;
    for worker in workers {
        actions += worker.await??;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{store}: {actions} actions in {:.1} s, {:.0} actions/s",
        elapsed.as_secs_f64(),
        actions as f64 / elapsed.as_secs_f64()
    );

    // Give the last events time to reach the viewer.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && timings.lock().unwrap().seen.len() < actions {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    viewer.abort();
    let latencies: Vec<Duration> = {
        let timings = timings.lock().unwrap();
        timings
            .sent
            .iter()
            .filter_map(|(key, sent)| {
                timings
                    .seen
                    .get(key)
                    .map(|seen| seen.saturating_duration_since(*sent))
            })
            .collect()
    };
    let missing_events = actions - latencies.len();
    let _ = stop.send(());
    running.await??;
    Ok(Report {
        store,
        actions,
        elapsed,
        latencies,
        missing_events,
    })
}
