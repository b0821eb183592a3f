//! Meeting failover benchmark: three `dangwu serve` nodes on loopback over one
//! PostgreSQL schema and one NATS server, two WebRTC peers (the test peers of
//! `tests/meeting_media/peer.rs`) in one meeting on one node, and that node
//! killed with SIGKILL. The peers react as the room page does: when the hub
//! socket closes they ask a survivor for the meeting's node with
//! `?unreachable=NODE`, connect there and join again. A run's time is from the
//! kill until each peer has received video from the other again. The killed
//! node is started again before the next run. Usage:
//!
//! ```text
//! cargo build -p dangwu --bin dangwu && cargo run -p dangwu-bench --bin failover-bench -- --runs 10
//! ```
//!
//! Needs PostgreSQL and NATS with JetStream (`scripts/services` starts both).
//! The benchmark creates a schema of its own and drops it at the end.

#[path = "../../../tests/meeting_media/peer.rs"]
mod peer;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use peer::Peer;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Maximum wait for any one step (a node to start, media to flow).
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Parser)]
#[command(about = "Time from killing a meeting's node to media flowing again on a survivor")]
struct Args {
    /// Kills to measure.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// PostgreSQL database to create the benchmark's schema in.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    database_url: String,
    /// NATS server with JetStream.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// The `dangwu` binary; by default the one next to this benchmark.
    #[arg(long)]
    dangwu: Option<PathBuf>,
    /// Ask for the node without naming the lost one, every 500 ms until the
    /// response names another node, as a page without the report would.
    /// This measures the wait for the lease instead.
    #[arg(long)]
    without_report: bool,
}

/// One `dangwu serve` process.
struct Node {
    child: Child,
    port: u16,
}

impl Node {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The three nodes and what they share.
struct Cluster {
    binary: PathBuf,
    database_url: String,
    nats_url: String,
    prefix: String,
    shared: tempfile::TempDir,
    /// Directory of the node logs.
    logs: PathBuf,
    nodes: Vec<Node>,
}

impl Cluster {
    fn spawn(&self, index: usize, port: u16) -> anyhow::Result<Node> {
        let dir = self.shared.path().join(format!("node-{index}"));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("node-{index}.log")))?;
        let child = Command::new(&self.binary)
            .args([
                "serve",
                "--demo",
                "--log-level",
                "info",
                "--media-shards",
                "1",
            ])
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&dir)
            .arg("--database-url")
            .arg(&self.database_url)
            .arg("--files-dir")
            .arg(self.shared.path().join("files"))
            .arg("--audit-key-file")
            .arg(self.shared.path().join("audit-signing-key.pem"))
            .arg("--nats-url")
            .arg(&self.nats_url)
            .arg("--nats-prefix")
            .arg(&self.prefix)
            .arg("--node-id")
            .arg(format!("node-{index}"))
            .arg("--node-url")
            .arg(format!("http://127.0.0.1:{port}"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("failed to start {}", self.binary.display()))?;
        Ok(Node { child, port })
    }

    async fn wait_ready(&self, index: usize) -> anyhow::Result<()> {
        let url = format!("{}/readyz", self.nodes[index].base());
        let deadline = Instant::now() + STEP_TIMEOUT;
        while Instant::now() < deadline {
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("node {index} did not become ready at {url}")
    }

    /// Waits until every node has read every node's placement entry, which
    /// its pages' Content Security Policy lists as WebSocket origins.
    async fn wait_views_agree(&self) -> anyhow::Result<()> {
        let origins: Vec<String> = self
            .nodes
            .iter()
            .map(|node| node.base().replacen("http", "ws", 1))
            .collect();
        let deadline = Instant::now() + STEP_TIMEOUT;
        for node in &self.nodes {
            loop {
                let response = reqwest::get(format!("{}/", node.base())).await?;
                let policy = response
                    .headers()
                    .get("content-security-policy")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                if origins
                    .iter()
                    .all(|origin| policy.contains(origin.as_str()))
                {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("{} never listed every node: {policy}", node.base());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    fn index_of(&self, base: &str) -> anyhow::Result<usize> {
        self.nodes
            .iter()
            .position(|node| node.base() == base)
            .with_context(|| format!("no node at {base}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A logged-in account: its cookie, CSRF token and id.
struct Session {
    cookie: String,
    csrf: String,
    account_id: i64,
}

async fn login(http: &reqwest::Client, base: &str, username: &str) -> anyhow::Result<Session> {
    let response = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": username, "password": server::demo::DEMO_PASSWORD}))
        .send()
        .await?
        .error_for_status()?;
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    let body: Value = response.json().await?;
    Ok(Session {
        cookie,
        csrf: body["csrf_token"]
            .as_str()
            .context("no csrf_token")?
            .to_owned(),
        account_id: body["account"]["id"].as_i64().context("no account id")?,
    })
}

async fn node_choice(
    http: &reqwest::Client,
    base: &str,
    session: &Session,
    meeting_id: i64,
    unreachable: Option<&str>,
) -> anyhow::Result<Value> {
    let query = unreachable.map_or(String::new(), |node| format!("?unreachable={node}"));
    let response = http
        .get(format!("{base}/api/meetings/{meeting_id}/node{query}"))
        .header("cookie", &session.cookie)
        .header("x-csrf-token", &session.csrf)
        .send()
        .await?
        .error_for_status()?;
    Ok(response.json().await?)
}

/// One hub connection with a peer in the meeting; its reader task answers
/// the server's offers.
struct Member {
    sink: tokio::sync::Mutex<SplitSink<Ws, Message>>,
    replies: Mutex<Vec<Value>>,
    peer: Arc<Peer>,
    closed: Arc<tokio::sync::Notify>,
    /// Set on leaving, so that a late server offer is not answered.
    left: std::sync::atomic::AtomicBool,
    /// The task sending the peer's media.
    media: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Member {
    /// Connects to `base` and joins the meeting's media; returns once the
    /// peer is connected and sending.
    async fn enter(base: &str, session: &Session, meeting_id: i64) -> anyhow::Result<Arc<Member>> {
        let url = format!("{}/ws?v=1", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("cookie", session.cookie.parse()?);
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        let (sink, mut stream) = ws.split();
        let peer = Peer::new().await;
        let member = Arc::new(Member {
            sink: tokio::sync::Mutex::new(sink),
            replies: Mutex::new(Vec::new()),
            peer: peer.clone(),
            closed: Arc::new(tokio::sync::Notify::new()),
            left: std::sync::atomic::AtomicBool::new(false),
            media: Mutex::new(None),
        });
        let reader = member.clone();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                let Message::Text(text) = frame else {
                    continue;
                };
                let Ok(message) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if reader.left.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                if message["type"] == "meeting_offer" {
                    let sdp = reader
                        .peer
                        .answer(message["sdp"].as_str().unwrap_or(""))
                        .await;
                    let answer = json!({"type": "meeting_answer",
                        "meeting_id": message["meeting_id"], "sdp": sdp});
                    let _ = reader.send(answer).await;
                } else if message["id"].is_string() {
                    reader.replies.lock().unwrap().push(message);
                }
            }
            reader.closed.notify_one();
        });
        let join = json!({"type": "meeting_join", "id": "join", "meeting_id": meeting_id,
            "sdp": peer.offer().await});
        member.send(join).await?;
        let deadline = Instant::now() + STEP_TIMEOUT;
        let reply = loop {
            if let Some(reply) = member.replies.lock().unwrap().pop() {
                break reply;
            }
            if Instant::now() > deadline {
                bail!("no reply to meeting_join from {base}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if reply["type"] != "meeting_joined" {
            bail!("meeting_join failed: {reply}");
        }
        peer.apply_answer(reply["sdp"].as_str().unwrap_or("")).await;
        wait_until("the media to connect", || peer.is_connected()).await?;
        *member.media.lock().unwrap() = Some(peer::spawn_media(peer.clone()));
        Ok(member)
    }

    async fn send(&self, message: Value) -> anyhow::Result<()> {
        self.sink
            .lock()
            .await
            .send(Message::text(message.to_string()))
            .await?;
        Ok(())
    }

    async fn leave(&self) {
        self.left.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(media) = self.media.lock().unwrap().take() {
            media.abort();
        }
        self.peer.close().await;
        let _ = self.sink.lock().await.close().await;
    }
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !condition() {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Waits until `peer` receives video from `account`.
async fn wait_for_video(peer: &Peer, account: i64) -> anyhow::Result<()> {
    wait_until(&format!("video from account {account}"), || {
        peer.from(account).video > 0
    })
    .await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = match args.dangwu.clone() {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("benchmark binary has no directory")?
            .join("dangwu"),
    };
    let schema = format!("failover_bench_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&args.database_url).await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await?;
    let separator = if args.database_url.contains('?') {
        '&'
    } else {
        '?'
    };
    let database_url = format!(
        "{}{separator}options=-c%20search_path%3D{schema}",
        args.database_url
    );
    let logs = tempfile::tempdir()?;
    let result = run(&args, binary, database_url.clone(), &schema, logs.path()).await;
    if let Err(error) = &result {
        let kept = logs.keep();
        eprintln!("failed: {error:#}; node logs kept in {}", kept.display());
    }
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await?;
    result
}

async fn run(
    args: &Args,
    binary: PathBuf,
    database_url: String,
    schema: &str,
    logs: &std::path::Path,
) -> anyhow::Result<()> {
    let mut cluster = Cluster {
        binary,
        database_url,
        nats_url: args.nats_url.clone(),
        prefix: schema.replace('_', "-"),
        shared: tempfile::tempdir()?,
        logs: logs.to_owned(),
        nodes: Vec::new(),
    };
    for index in 0..3 {
        let node = cluster.spawn(index, free_port()?)?;
        cluster.nodes.push(node);
    }
    for index in 0..3 {
        cluster.wait_ready(index).await?;
    }
    cluster.wait_views_agree().await?;
    let mut db = sqlx::PgConnection::connect(&cluster.database_url).await?;
    let (meeting_id, host_name): (i64, String) = sqlx::query_as(
        "SELECT mt.id, a.username FROM meetings mt JOIN accounts a ON a.member_id = mt.host_member \
         WHERE mt.status = 'scheduled' AND mt.online = 1 ORDER BY mt.id LIMIT 1",
    )
    .fetch_one(&mut db)
    .await?;
    let other_name: String = sqlx::query_scalar(
        "SELECT a.username FROM meeting_participants p JOIN accounts a ON a.member_id = p.member_id \
         JOIN meetings mt ON mt.id = p.meeting_id WHERE p.meeting_id = $1 \
         AND p.member_id NOT IN (mt.host_member, mt.recorder_member) ORDER BY p.member_id LIMIT 1",
    )
    .bind(meeting_id)
    .fetch_one(&mut db)
    .await?;
    let http = reqwest::Client::builder().timeout(STEP_TIMEOUT).build()?;
    let first = cluster.nodes[0].base();
    let host = login(&http, &first, &host_name).await?;
    let other = login(&http, &first, &other_name).await?;

    let mut times = Vec::new();
    for run in 0..args.runs {
        let choice = node_choice(&http, &first, &host, meeting_id, None).await?;
        let base = choice["url"].as_str().context("no url")?.to_owned();
        let lost_id = choice["node_id"].as_str().context("no node_id")?.to_owned();
        let lost = cluster.index_of(&base)?;
        let a = Member::enter(&base, &host, meeting_id).await?;
        let b = Member::enter(&base, &other, meeting_id).await?;
        wait_for_video(&a.peer, other.account_id)
            .await
            .context("before the kill")?;
        wait_for_video(&b.peer, host.account_id)
            .await
            .context("before the kill")?;

        let killed = Instant::now();
        cluster.nodes[lost].child.kill()?;
        cluster.nodes[lost].child.wait()?;
        let survivors: Vec<String> = (0..3)
            .filter(|index| *index != lost)
            .map(|index| cluster.nodes[index].base())
            .collect();
        // Each peer reacts to its own socket closing, as a page does, and
        // asks a different survivor.
        let without_report = args.without_report;
        let moves = [(&a, &host, &survivors[0]), (&b, &other, &survivors[1])].map(
            |(member, session, survivor)| {
                let http = http.clone();
                let lost_id = lost_id.clone();
                let survivor = survivor.clone();
                let closed = member.closed.clone();
                let session = Session {
                    cookie: session.cookie.clone(),
                    csrf: session.csrf.clone(),
                    account_id: session.account_id,
                };
                let report = !without_report;
                tokio::spawn(async move {
                    closed.notified().await;
                    let next = loop {
                        let unreachable = report.then_some(lost_id.as_str());
                        let choice =
                            node_choice(&http, &survivor, &session, meeting_id, unreachable)
                                .await?;
                        if choice["node_id"] != lost_id.as_str() {
                            break choice["url"].as_str().context("no url")?.to_owned();
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    };
                    let member = Member::enter(&next, &session, meeting_id).await?;
                    anyhow::Ok((member, next))
                })
            },
        );
        let [a_move, b_move] = moves;
        let (a2, a_node) = a_move.await??;
        let (b2, b_node) = b_move.await??;
        if a_node != b_node {
            bail!("the peers were sent to different nodes: {a_node} and {b_node}");
        }
        wait_for_video(&a2.peer, other.account_id)
            .await
            .context("after the kill")?;
        wait_for_video(&b2.peer, host.account_id)
            .await
            .context("after the kill")?;
        let elapsed = killed.elapsed();
        println!(
            "run {}: media again after {:.0} ms",
            run + 1,
            elapsed.as_secs_f64() * 1000.0
        );
        times.push(elapsed);

        a.leave().await;
        b.leave().await;
        a2.leave().await;
        b2.leave().await;
        let port = cluster.nodes[lost].port;
        cluster.nodes[lost] = cluster.spawn(lost, port)?;
        cluster.wait_ready(lost).await?;
        cluster.wait_views_agree().await?;
    }
    times.sort();
    let p50 = times[times.len() / 2];
    let max = times[times.len() - 1];
    println!(
        "{} runs: p50 {:.0} ms, max {:.0} ms",
        times.len(),
        p50.as_secs_f64() * 1000.0,
        max.as_secs_f64() * 1000.0
    );
    drop(cluster);
    let client = async_nats::connect(args.nats_url.as_str()).await?;
    let jetstream = async_nats::jetstream::new(client);
    let prefix = schema.replace('_', "-");
    let _ = jetstream
        .delete_stream(server::hub::nats::stream_name(&prefix))
        .await;
    for bucket in [
        server::hub::presence::bucket_name(&prefix),
        server::meetings::live::placement::bucket_name(&prefix),
    ] {
        let _ = jetstream.delete_key_value(&bucket).await;
    }
    Ok(())
}
