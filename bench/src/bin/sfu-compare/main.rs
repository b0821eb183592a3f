//! Load generator of the SFU comparison: one publisher sending three simulcast layers and
//! N receive-only subscribers, against either Dangwu's media engine (`sfu-server`) or
//! Janus VideoRoom, each running as its own process. One invocation is one run; it
//! prints one Markdown table row to standard output and its progress to standard error.
//! `bench/janus/run.sh` starts the servers, pins them and this program to different
//! CPUs, and collects the rows.
//!
//! The server's CPU time and resident memory come from `/proc/PID` of the process given
//! with `--server-pid`. Delay runs from the publisher's `write_rtp` call to the
//! subscriber's track event, both in this process, so it includes both `webrtc` client
//! stacks and is an upper bound for the server's own forwarding delay.

#[path = "../../../../sfu/tests/common/mod.rs"]
mod common;
mod janus;
mod peers;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::{Parser, ValueEnum};
use futures_util::StreamExt;
use peers::{Publisher, RIDS, SendLog, Subscriber};
use serde_json::{Value, json};

/// Generous limit for a peer to connect; not a speed check.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Time the publisher streams before the subscribers join, so every layer is active.
const PUBLISHER_WARMUP: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    /// `sfu-server`, the Dangwu media engine with a small HTTP signaling API.
    Dangwu,
    /// Janus VideoRoom through Janus's HTTP transport.
    Janus,
}

#[derive(Parser)]
#[command(about = "One SFU run: a simulcast publisher and N receive-only subscribers")]
struct Args {
    /// Server under test.
    #[arg(long, value_enum)]
    target: Target,
    /// Signaling URL: sfu-server's base URL, or Janus's HTTP API path
    /// (http://127.0.0.1:8088/janus).
    #[arg(long)]
    url: String,
    /// Process id of the server, for its CPU time and memory.
    #[arg(long)]
    server_pid: u32,
    /// Number of receive-only subscribers.
    #[arg(long)]
    subscribers: usize,
    /// Address the clients' ICE agents gather their UDP host candidate on.
    #[arg(long, default_value = "127.0.0.1")]
    client_ip: String,
    /// Simulcast layer every subscriber requests: 0 (about 150 kbit/s), 1 (500 kbit/s)
    /// or 2 (1.5 Mbit/s).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=2))]
    layer: u8,
    /// Subscribers joining at the same time.
    #[arg(long, default_value_t = 8)]
    join_concurrency: usize,
    /// Seconds of streaming to all subscribers before the measured window.
    #[arg(long, default_value_t = 3)]
    warmup_s: u64,
    /// Seconds of the measured window.
    #[arg(long, default_value_t = 10)]
    measure_s: u64,
    /// Print the table header and exit.
    #[arg(long)]
    header: bool,
}

/// Signaling state of one run.
enum Session {
    Dangwu {
        http: reqwest::Client,
        url: String,
    },
    Janus {
        janus: janus::Janus,
        room: u64,
        feed: Option<u64>,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.header {
        println!(
            "| server | subscribers | layer | packets sent on the layer | packets forwarded | loss | server CPU | server CPU per forwarded packet | delay p50 | delay p99 | server RSS before → after | RSS per subscriber | load generator CPU |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let row = runtime.block_on(run(&args))?;
    println!("{row}");
    // The peers' background tasks are not shut down one by one; the process ends here.
    std::process::exit(0);
}

async fn run(args: &Args) -> anyhow::Result<String> {
    let mut session = connect(args).await?;
    let name = match args.target {
        Target::Dangwu => "Dangwu",
        Target::Janus => "Janus",
    };

    let publisher = Arc::new(Publisher::new(&args.client_ip).await?);
    publish(&mut session, &publisher).await?;
    wait_until("the publisher to connect", || publisher.is_connected()).await?;
    let log = Arc::new(Mutex::new(SendLog::default()));
    let sending = tokio::spawn(Arc::clone(&publisher).send(Arc::clone(&log)));
    tokio::time::sleep(PUBLISHER_WARMUP).await;
    eprintln!("{name}: publisher connected and sending");

    let rss_before = rss_kib(args.server_pid)?;
    let started = Instant::now();
    let session = Arc::new(session);
    let subscribers: Vec<anyhow::Result<Subscriber>> =
        futures_util::stream::iter(0..args.subscribers)
            .map(|index| {
                let session = Arc::clone(&session);
                async move { subscribe(&session, args, index).await }
            })
            .buffer_unordered(args.join_concurrency.max(1))
            .collect()
            .await;
    let subscribers = subscribers
        .into_iter()
        .collect::<anyhow::Result<Vec<Subscriber>>>()?;
    eprintln!(
        "{name}: {} subscribers connected in {:.1} s",
        subscribers.len(),
        started.elapsed().as_secs_f64()
    );

    tokio::time::sleep(Duration::from_secs(args.warmup_s)).await;
    let first_index = log.lock().unwrap().times.len();
    let server_cpu_before = process_cpu_seconds(args.server_pid)?;
    let client_cpu_before = process_cpu_seconds(std::process::id())?;
    tokio::time::sleep(Duration::from_secs(args.measure_s)).await;
    let server_cpu = process_cpu_seconds(args.server_pid)? - server_cpu_before;
    let client_cpu = process_cpu_seconds(std::process::id())? - client_cpu_before;
    let last_index = log.lock().unwrap().times.len();
    let rss_after = rss_kib(args.server_pid)?;
    sending.abort();
    // Packets in flight at the end of the window still count.
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let Ok(session) = Arc::try_unwrap(session)
        && let Session::Janus { janus, .. } = session
    {
        janus.destroy().await;
    }

    let log = log.lock().unwrap();
    let window = first_index as u64..last_index as u64;
    let sent_on_layer = (first_index..last_index)
        .filter(|&index| log.layers[index] == args.layer)
        .count();
    let mut forwarded = 0usize;
    let mut delays = Vec::new();
    for subscriber in &subscribers {
        let arrivals = subscriber.arrivals.lock().unwrap();
        let mut seen = HashSet::new();
        for arrival in arrivals.iter() {
            if arrival.layer != args.layer
                || !window.contains(&arrival.index)
                || !seen.insert(arrival.index)
            {
                continue;
            }
            forwarded += 1;
            let sent_at = log.times[arrival.index as usize];
            delays.push(arrival.at.saturating_duration_since(sent_at));
        }
    }
    let mut by_layer = [0usize; 3];
    for subscriber in &subscribers {
        for arrival in subscriber.arrivals.lock().unwrap().iter() {
            if let Some(count) = by_layer.get_mut(usize::from(arrival.layer)) {
                *count += 1;
            }
        }
    }
    eprintln!("{name}: packets received by layer, whole run: {by_layer:?}");
    delays.sort_unstable();
    let percentile = |p: f64| {
        delays
            .get(((delays.len() as f64 * p) as usize).min(delays.len().saturating_sub(1)))
            .map_or(0.0, |delay| delay.as_secs_f64() * 1000.0)
    };
    let expected = sent_on_layer * subscribers.len();
    let loss = 1.0 - forwarded as f64 / expected.max(1) as f64;
    let measure_s = args.measure_s as f64;

    Ok(format!(
        "| {name} | {} | {} ({}) | {} | {} | {:.2} % | {:.0} % of a core | {:.1} µs | {:.1} ms | {:.1} ms | {:.1} → {:.1} MiB | {:.0} KiB | {:.0} % of a core |",
        subscribers.len(),
        args.layer,
        RIDS[args.layer as usize],
        sent_on_layer,
        forwarded,
        loss * 100.0,
        server_cpu / measure_s * 100.0,
        server_cpu * 1e6 / forwarded.max(1) as f64,
        percentile(0.5),
        percentile(0.99),
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        (rss_after as f64 - rss_before as f64) / subscribers.len().max(1) as f64,
        client_cpu / measure_s * 100.0,
    ))
}

/// Waits until the server responds and opens the run's signaling state: a Janus session
/// with a new room, or the sfu-server URL.
async fn connect(args: &Args) -> anyhow::Result<Session> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    match args.target {
        Target::Dangwu => {
            let http = reqwest::Client::new();
            let url = args.url.trim_end_matches('/').to_owned();
            // Any HTTP response shows that the server listens, even the 404 that
            // GET /offer returns for an unknown participant.
            while let Err(error) = http
                .get(format!("{url}/offer?participant=none"))
                .send()
                .await
            {
                if Instant::now() > deadline {
                    bail!("sfu-server at {url} did not respond within 30 s: {error}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(Session::Dangwu { http, url })
        }
        Target::Janus => {
            let janus = loop {
                match janus::Janus::connect(&args.url).await {
                    Ok(janus) => break janus,
                    Err(error) if Instant::now() > deadline => {
                        return Err(error.context("Janus did not respond within 30 s"));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            };
            let handle = janus.attach().await?;
            let room = 1000 + u64::from(rand::random::<u16>());
            // Janus sends the room's bitrate cap to the publisher as REMB. It is set above
            // the sum of the three layers, so the cap never requests less.
            let created = janus
                .request(
                    &handle,
                    json!({
                        "request": "create",
                        "room": room,
                        "publishers": 1,
                        "bitrate": 4_000_000,
                        "videocodec": "vp8",
                        "notify_joining": false,
                    }),
                )
                .await?;
            if created["videoroom"] != "created" {
                bail!("Janus did not create room {room}: {created}");
            }
            Ok(Session::Janus {
                janus,
                room,
                feed: None,
            })
        }
    }
}

async fn publish(session: &mut Session, publisher: &Publisher) -> anyhow::Result<()> {
    let offer = publisher.offer().await?;
    match session {
        Session::Dangwu { http, url } => {
            let reply = post_json(
                http,
                &format!("{url}/join"),
                json!({"participant": "publisher", "offer": offer}),
            )
            .await?;
            publisher.apply_answer(sdp_field(&reply, "answer")?).await
        }
        Session::Janus { janus, room, feed } => {
            let handle = janus.attach().await?;
            let (data, answer) = janus
                .message(
                    &handle,
                    json!({
                        "request": "joinandconfigure",
                        "room": *room,
                        "ptype": "publisher",
                        "display": "publisher",
                    }),
                    Some(("offer", offer)),
                )
                .await?;
            *feed = Some(
                data["id"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("Janus returned no publisher id: {data}"))?,
            );
            let answer = answer.ok_or_else(|| anyhow!("Janus returned no answer: {data}"))?;
            publisher.apply_answer(answer).await
        }
    }
}

async fn subscribe(session: &Session, args: &Args, index: usize) -> anyhow::Result<Subscriber> {
    let subscriber = Subscriber::new(&args.client_ip).await?;
    let participant = format!("subscriber-{index}");
    match session {
        Session::Dangwu { http, url } => {
            let offer = subscriber.receive_only_offer().await?;
            let reply = post_json(
                http,
                &format!("{url}/join"),
                json!({"participant": participant, "offer": offer, "max_layer": args.layer}),
            )
            .await?;
            subscriber
                .apply_answer(sdp_field(&reply, "answer")?)
                .await?;
            // The room subscribes the new member to the published track, and the engine
            // sends that subscription in an offer of its own.
            let response = http
                .get(format!("{url}/offer?participant={participant}"))
                .send()
                .await?;
            if response.status() != reqwest::StatusCode::OK {
                bail!(
                    "no engine offer for {participant}: HTTP {}",
                    response.status()
                );
            }
            let offer = sdp_field(&response.json().await?, "offer")?;
            let answer = subscriber.answer(offer).await?;
            post_json(
                http,
                &format!("{url}/answer"),
                json!({"participant": participant, "answer": answer}),
            )
            .await?;
        }
        Session::Janus { janus, room, feed } => {
            let feed = feed.ok_or_else(|| anyhow!("subscribing before the publisher joined"))?;
            let handle = janus.attach().await?;
            let (data, offer) = janus
                .message(
                    &handle,
                    json!({
                        "request": "join",
                        "ptype": "subscriber",
                        "room": *room,
                        "streams": [{"feed": feed, "substream": args.layer}],
                    }),
                    None,
                )
                .await?;
            let offer = offer.ok_or_else(|| anyhow!("Janus returned no offer: {data}"))?;
            let answer = subscriber.answer(offer).await?;
            let (data, _) = janus
                .message(
                    &handle,
                    json!({"request": "start"}),
                    Some(("answer", answer)),
                )
                .await?;
            if data["started"] != "ok" {
                bail!("Janus did not start {participant}: {data}");
            }
        }
    }
    wait_until(&format!("{participant} to connect"), || {
        subscriber.is_connected()
    })
    .await?;
    Ok(subscriber)
}

async fn post_json(http: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<Value> {
    let response = http
        .post(url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    if status == reqwest::StatusCode::NO_CONTENT {
        return Ok(Value::Null);
    }
    let reply: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {url} failed ({status}): {reply}");
    }
    Ok(reply)
}

fn sdp_field(reply: &Value, field: &str) -> anyhow::Result<String> {
    reply[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("reply has no {field}: {reply}"))
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while !condition() {
        if Instant::now() > deadline {
            bail!("timed out after 30 s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// User plus system CPU time of a whole process (all threads), in seconds.
fn process_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of proc_pid_stat(5), so 12 and 13 after the
    // name. The kernel counts them in ticks of 1/100 s.
    let ticks: u64 = fields
        .get(11..13)
        .ok_or_else(|| anyhow!("/proc/{pid}/stat has too few fields"))?
        .iter()
        .map(|field| field.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    Ok(ticks as f64 / 100.0)
}

/// Resident set size of a process (`VmRSS`), in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("/proc/{pid}/status has no VmRSS"))
}
