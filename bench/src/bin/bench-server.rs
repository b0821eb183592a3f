//! Runs a Dangwu server with the demo data for the hub benchmark, plus a
//! loopback-only trigger socket that stores and publishes events on request.
//!
//! No HTTP endpoint publishes on an `org:ID` topic, so the trigger does what
//! a feature does: append the event with `hub::store::append` in its own
//! transaction, commit, then `Hub::publish` it.
//!
//! Trigger protocol, one line per request over TCP:
//! `publish TOPIC ROUND COUNT` gets the reply `ok LAST_SEQ` or
//! `error MESSAGE`. ROUND is copied into every event's data so that clients
//! can tell the rounds of the fan-out measurement apart.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;
use server::config::{ServeArgs, StoreArgs};
use server::hub::store;
use server::hub::topic::Topic;
use server::serve::Server;
use server::state::AppState;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Most events one trigger request may publish.
const MAX_COUNT: u64 = 10_000;

#[derive(Parser)]
#[command(about = "Dangwu server with demo data and a benchmark trigger socket")]
struct Args {
    /// Data directory; the demo province is seeded when it is empty.
    #[arg(long)]
    data_dir: PathBuf,
    /// Address of the HTTP and WebSocket listener (loopback only).
    #[arg(long, default_value = "127.0.0.1:18080")]
    listen: SocketAddr,
    /// Address of the trigger socket (loopback only).
    #[arg(long, default_value = "127.0.0.1:18081")]
    trigger: SocketAddr,
    /// Log filter in tracing syntax. `info` logs every hub connection.
    #[arg(long, default_value = "warn")]
    log: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for addr in [args.listen, args.trigger] {
        if !addr.ip().is_loopback() {
            bail!(
                "address {addr} is not a loopback address; the benchmark runs on 127.0.0.0/8 only"
            );
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .init();

    let serve_args = ServeArgs {
        store: StoreArgs {
            data_dir: Some(args.data_dir.clone()),
            ..Default::default()
        },
        listen: Some(args.listen),
        log_level: Some(args.log.clone()),
        demo: true,
        ..Default::default()
    };
    let config = serve_args.resolve()?;
    let server = Server::bind(config).await?;
    let state = server.state.clone();
    let trigger = TcpListener::bind(args.trigger)
        .await
        .with_context(|| format!("failed to bind the trigger socket {}", args.trigger))?;
    tracing::warn!(listen = %server.addr, trigger = %args.trigger, "bench server ready");
    tokio::spawn(accept_triggers(trigger, state));
    server.run(server::serve::shutdown_signal()).await
}

async fn accept_triggers(listener: TcpListener, state: AppState) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(error) = serve_trigger(stream, &state).await {
                        tracing::error!(%peer, %error, "trigger connection failed");
                    }
                });
            }
            Err(error) => {
                tracing::error!(%error, "failed to accept a trigger connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_trigger(stream: TcpStream, state: &AppState) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    while let Some(line) = lines.next_line().await? {
        let reply = match parse_request(&line) {
            Ok((topic, round, count)) => match publish(state, &topic, round, count).await {
                Ok(seq) => format!("ok {seq}\n"),
                Err(error) => {
                    tracing::error!(%error, topic, "failed to publish benchmark events");
                    format!("error {error}\n")
                }
            },
            Err(error) => format!("error {error}\n"),
        };
        writer.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

/// Parses `publish TOPIC ROUND COUNT`.
fn parse_request(line: &str) -> anyhow::Result<(String, u64, u64)> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    let ["publish", topic, round, count] = parts[..] else {
        bail!("invalid request {line:?}, expected `publish TOPIC ROUND COUNT`");
    };
    let topic = Topic::parse(topic)
        .with_context(|| format!("invalid topic {topic:?}"))?
        .name();
    let round: u64 = round
        .parse()
        .with_context(|| format!("invalid round {round:?}"))?;
    let count: u64 = count
        .parse()
        .with_context(|| format!("invalid count {count:?}"))?;
    if count > MAX_COUNT {
        bail!("count {count} exceeds the maximum of {MAX_COUNT}");
    }
    Ok((topic, round, count))
}

/// Stores and publishes `count` events, one transaction each, and returns
/// the last sequence number.
async fn publish(state: &AppState, topic: &str, round: u64, count: u64) -> anyhow::Result<i64> {
    let mut seq = 0;
    for index in 0..count {
        let data = serde_json::json!({"round": round, "index": index, "title": "支部学习通知"});
        let mut tx = state.db.begin().await?;
        let event = store::append(&mut tx, topic, "bench.tick", data).await?;
        tx.commit().await?;
        seq = event.seq;
        state.hub.publish([event]);
    }
    Ok(seq)
}
