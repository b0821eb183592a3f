//! Hub benchmark: connects N WebSocket clients to the Dangwu hub and to a
//! Socket.IO server in the same run, and measures for each
//!
//! - the time for one event to reach the first and the last client
//!   (percentiles over rounds),
//! - sustained deliveries per second (events per second × subscribers),
//! - server memory per idle connection (VmRSS before and after connecting).
//!
//! Both servers are started by this program as child processes, pinned to
//! `--server-cpu` with taskset, while this program pins itself to
//! `--client-cpu`. See docs/benchmarks.md for the command and results.

mod clients;
mod targets;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use clients::{Protocol, TOPIC, Tally, run_client};
use targets::{Kind, Launch, Target, Trigger, cpu_time, hub_token, rss_kib};

/// Demo account that may read `org:1`, the provincial committee.
const HUB_USER: &str = "shengwei";
const HUB_PASSWORD: &str = "Dangwu@2026";
/// Maximum wait for all clients of a run to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(600);
/// Maximum wait for one fan-out round to reach every client.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);
/// Maximum wait for outstanding events in the sustained phase.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Parser)]
#[command(about = "Fan-out, throughput and memory per connection: Dangwu hub against Socket.IO")]
struct Args {
    /// Client counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    clients: Vec<usize>,
    /// Servers to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "hub,socket-io")]
    targets: Vec<TargetArg>,
    /// Fan-out rounds per run; each publishes one event and waits until
    /// every client has it.
    #[arg(long, default_value_t = 200)]
    rounds: u64,
    /// Pause between fan-out rounds, in milliseconds.
    #[arg(long, default_value_t = 20)]
    round_gap_ms: u64,
    /// Length of the sustained-throughput phase, in seconds.
    #[arg(long, default_value_t = 10)]
    sustain_secs: u64,
    /// Events per trigger request in the sustained phase. At most two
    /// requests are outstanding, which keeps every client's backlog far
    /// below the hub's queue of 1,024 messages.
    #[arg(long, default_value_t = 10)]
    batch: u64,
    /// Source addresses 127.0.0.1 to 127.0.0.N that clients bind to, so
    /// that ephemeral ports do not run short.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=250))]
    source_addrs: u8,
    /// Client handshakes in progress at once.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// Wait between the last subscription and the memory reading, in seconds.
    #[arg(long, default_value_t = 3)]
    settle_secs: u64,
    /// CPU that the servers are pinned to (taskset -c).
    #[arg(long)]
    server_cpu: Option<usize>,
    /// CPU that this load generator pins itself to.
    #[arg(long)]
    client_cpu: Option<usize>,
    /// First loopback port; each run uses two ports from here on.
    #[arg(long, default_value_t = 19100)]
    base_port: u16,
    /// Node.js executable for the Socket.IO server.
    #[arg(long, default_value = "node")]
    node: String,
    /// Folder with the Socket.IO server and its installed node_modules.
    #[arg(long, default_value = "bench/socketio")]
    socketio_dir: PathBuf,
    /// Folder for server logs and the hub's data, kept after the run.
    /// [default: a temporary folder that is deleted at the end]
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum TargetArg {
    Hub,
    SocketIo,
}

impl From<TargetArg> for Kind {
    fn from(arg: TargetArg) -> Self {
        match arg {
            TargetArg::Hub => Kind::Hub,
            TargetArg::SocketIo => Kind::SocketIo,
        }
    }
}

/// Measurements of one run: one server, one client count.
struct RunResult {
    kind: Kind,
    clients: usize,
    ready: usize,
    failed: usize,
    connect_time: Duration,
    rss_before_kib: u64,
    rss_after_kib: u64,
    first: Vec<Duration>,
    last: Vec<Duration>,
    incomplete_rounds: usize,
    sustained: Sustained,
    closed: usize,
}

struct Sustained {
    events: u64,
    deliveries: u64,
    elapsed: Duration,
    complete: bool,
    server_cpu: Duration,
    client_cpu: Duration,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    if let Some(cpu) = args.client_cpu {
        pin_to_cpu(cpu)?;
    }
    let max_clients = args.clients.iter().copied().max().unwrap_or(0);
    let limit = raise_fd_limit(65_536.max(2 * max_clients as u64 + 1024))?;
    eprintln!("open file limit {limit} (inherited by the servers)");
    if limit < max_clients as u64 + 256 {
        bail!(
            "open file limit {limit} is too low for {max_clients} clients; raise it with `ulimit -n`"
        );
    }
    // One thread: the load generator gets one core, like each server.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

fn pin_to_cpu(cpu: usize) -> anyhow::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)
        .with_context(|| format!("invalid CPU number {cpu}"))?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("failed to pin the load generator to CPU {cpu}"))
}

/// Raises the soft and, where permitted, the hard limit of open files.
fn raise_fd_limit(target: u64) -> anyhow::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= target {
        return Ok(soft);
    }
    if setrlimit(Resource::RLIMIT_NOFILE, target, hard.max(target)).is_ok() {
        return Ok(target);
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(hard)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let temporary = tempfile::Builder::new().prefix("hub-bench-").tempdir()?;
    let work_dir = match &args.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
            dir.clone()
        }
        None => temporary.path().to_owned(),
    };
    let launch = Launch {
        bench_server: targets::sibling_binary("bench-server")?,
        node: args.node.clone(),
        socketio_dir: args.socketio_dir.clone(),
        server_cpu: args.server_cpu,
        work_dir,
    };
    if args
        .targets
        .iter()
        .any(|t| matches!(t, TargetArg::SocketIo))
        && !args.socketio_dir.join("node_modules/socket.io").exists()
    {
        bail!(
            "socket.io is not installed in {}; run `npm ci` there",
            args.socketio_dir.display()
        );
    }
    let mut results = Vec::new();
    let mut port = args.base_port;
    for &clients in &args.clients {
        for &target in &args.targets {
            let kind = Kind::from(target);
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let trigger = SocketAddr::from((Ipv4Addr::LOCALHOST, port + 1));
            port += 2;
            eprintln!("== {} with {clients} clients", kind.label());
            let result = run_one(&args, &launch, kind, clients, addr, trigger).await?;
            print_run(&result);
            results.push(result);
            // Lets the kernel and the allocator settle between runs.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    print_table(&results);
    Ok(())
}

async fn run_one(
    args: &Args,
    launch: &Launch,
    kind: Kind,
    clients: usize,
    addr: SocketAddr,
    trigger_addr: SocketAddr,
) -> anyhow::Result<RunResult> {
    let run = format!("{}-{clients}", kind.label().replace([' ', '.'], "-"));
    let target = Target::start(kind, launch, addr, trigger_addr, &run).await?;
    let protocol = match kind {
        Kind::Hub => Protocol::Hub {
            token: hub_token(addr, HUB_USER, HUB_PASSWORD).await?,
        },
        Kind::SocketIo => Protocol::SocketIo,
    };
    let pid = target.pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before_kib = rss_kib(pid)?;

    let tally = Arc::new(Tally::new());
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let handshakes = Arc::new(Semaphore::new(args.connect_concurrency));
    for index in 0..clients {
        let permit = handshakes.clone().acquire_owned().await?;
        let source = Ipv4Addr::new(127, 0, 0, 1 + (index % args.source_addrs as usize) as u8);
        tasks.spawn(run_client(
            protocol.clone(),
            addr,
            source,
            tally.clone(),
            permit,
        ));
    }
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while tally.ready.load(Ordering::Relaxed) + tally.failed.load(Ordering::Relaxed) < clients {
        if Instant::now() > deadline {
            bail!("clients did not finish connecting within {CONNECT_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_time = started.elapsed();
    let ready = tally.ready.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    eprintln!("{ready} clients subscribed in {connect_time:.2?}, {failed} failed");
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let rss_after_kib = rss_kib(pid)?;

    let mut trigger = Trigger::connect(trigger_addr).await?;
    // One unmeasured event first, so that every connection has sent once.
    let warm_target = tally.events.load(Ordering::Relaxed) + ready as u64;
    trigger.publish(TOPIC, 0, 1).await?;
    tally.wait_events(warm_target, ROUND_TIMEOUT).await;

    let (first, last, incomplete_rounds) = measure_fan_out(args, &tally, &mut trigger).await?;
    let sustained = measure_sustained(args, &tally, &mut trigger, pid).await?;
    let closed = tally.closed.load(Ordering::Relaxed);

    target.stop().await?;
    tasks.shutdown().await;
    Ok(RunResult {
        kind,
        clients,
        ready,
        failed,
        connect_time,
        rss_before_kib,
        rss_after_kib,
        first,
        last,
        incomplete_rounds,
        sustained,
        closed,
    })
}

/// Publishes one event per round and records when the first and the last
/// client received it, counted from just before the trigger request.
async fn measure_fan_out(
    args: &Args,
    tally: &Tally,
    trigger: &mut Trigger,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>, usize)> {
    let mut first = Vec::new();
    let mut last = Vec::new();
    let mut incomplete = 0;
    for round in 1..=args.rounds {
        let expected = tally.ready.load(Ordering::Relaxed) - tally.closed.load(Ordering::Relaxed);
        tally.start_round(round, expected);
        let started_ns = tally.now_ns();
        trigger.publish(TOPIC, round, 1).await?;
        let result = tally.finish_round(started_ns, ROUND_TIMEOUT).await;
        if expected == 0 || result.received < expected {
            incomplete += 1;
        } else {
            first.push(result.first);
            last.push(result.last);
        }
        tokio::time::sleep(Duration::from_millis(args.round_gap_ms)).await;
    }
    Ok((first, last, incomplete))
}

/// Publishes batches for `--sustain-secs`, with at most two batches not yet
/// received by every client, and counts the deliveries.
async fn measure_sustained(
    args: &Args,
    tally: &Tally,
    trigger: &mut Trigger,
    pid: u32,
) -> anyhow::Result<Sustained> {
    let subscribers =
        (tally.ready.load(Ordering::Relaxed) - tally.closed.load(Ordering::Relaxed)) as u64;
    let duration = Duration::from_secs(args.sustain_secs);
    let server_cpu_before = cpu_time(&pid.to_string())?;
    let client_cpu_before = cpu_time("self")?;
    let events_before = tally.events.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut published = 0;
    let mut complete = true;

    while started.elapsed() < duration {
        if published >= args.batch {
            let target = events_before + (published - args.batch) * subscribers;
            if !tally.wait_events(target, DRAIN_TIMEOUT).await {
                complete = false;
                break;
            }
        }
        trigger.publish(TOPIC, 0, args.batch).await?;
        published += args.batch;
    }

    if complete {
        complete = tally
            .wait_events(events_before + published * subscribers, DRAIN_TIMEOUT)
            .await;
    }
    let elapsed = started.elapsed();
    Ok(Sustained {
        events: published,
        deliveries: tally.events.load(Ordering::Relaxed) - events_before,
        elapsed,
        complete,
        server_cpu: cpu_time(&pid.to_string())? - server_cpu_before,
        client_cpu: cpu_time("self")? - client_cpu_before,
    })
}

/// Returns the `q` quantile of sorted samples by the nearest-rank method.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

struct Summary {
    first_p50: Duration,
    last_p50: Duration,
    last_p99: Duration,
    last_max: Duration,
    per_connection_kib: f64,
    deliveries_per_second: f64,
    events_per_second: f64,
    server_cpu_share: f64,
    client_cpu_share: f64,
}

fn summarize(result: &RunResult) -> Summary {
    let mut first = result.first.clone();
    let mut last = result.last.clone();
    first.sort();
    last.sort();
    let seconds = result.sustained.elapsed.as_secs_f64();
    Summary {
        first_p50: percentile(&first, 0.5),
        last_p50: percentile(&last, 0.5),
        last_p99: percentile(&last, 0.99),
        last_max: last.last().copied().unwrap_or_default(),
        per_connection_kib: result.rss_after_kib.saturating_sub(result.rss_before_kib) as f64
            / result.ready.max(1) as f64,
        deliveries_per_second: result.sustained.deliveries as f64 / seconds,
        events_per_second: result.sustained.events as f64 / seconds,
        server_cpu_share: result.sustained.server_cpu.as_secs_f64() / seconds,
        client_cpu_share: result.sustained.client_cpu.as_secs_f64() / seconds,
    }
}

fn print_run(result: &RunResult) {
    let summary = summarize(result);
    eprintln!(
        "{} {} clients: connected {} ({} failed) in {:.1} s; RSS {} -> {} KiB ({:.1} KiB per connection)",
        result.kind.label(),
        result.clients,
        result.ready,
        result.failed,
        result.connect_time.as_secs_f64(),
        result.rss_before_kib,
        result.rss_after_kib,
        summary.per_connection_kib,
    );
    eprintln!(
        "  fan-out over {} rounds ({} incomplete): first p50 {:.2} ms, last p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        result.last.len(),
        result.incomplete_rounds,
        ms(summary.first_p50),
        ms(summary.last_p50),
        ms(summary.last_p99),
        ms(summary.last_max),
    );
    eprintln!(
        "  sustained {:.1} s: {} events, {} deliveries, {:.0} events/s, {:.0} deliveries/s, server CPU {:.0} %, load generator CPU {:.0} %{}; {} connections closed",
        result.sustained.elapsed.as_secs_f64(),
        result.sustained.events,
        result.sustained.deliveries,
        summary.events_per_second,
        summary.deliveries_per_second,
        summary.server_cpu_share * 100.0,
        summary.client_cpu_share * 100.0,
        if result.sustained.complete {
            ""
        } else {
            " (stalled: not every event arrived)"
        },
        result.closed,
    );
}

fn print_table(results: &[RunResult]) {
    println!(
        "| server | clients | connected | fan-out first p50 (ms) | fan-out last p50 (ms) | last p99 (ms) | last max (ms) | events/s | deliveries/s | server CPU | load generator CPU | RSS before → after (MiB) | KiB per idle connection |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for result in results {
        let summary = summarize(result);
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} % | {:.0} % | {:.1} → {:.1} | {:.1} |",
            result.kind.label(),
            result.clients,
            result.ready,
            ms(summary.first_p50),
            ms(summary.last_p50),
            ms(summary.last_p99),
            ms(summary.last_max),
            summary.events_per_second,
            summary.deliveries_per_second,
            summary.server_cpu_share * 100.0,
            summary.client_cpu_share * 100.0,
            result.rss_before_kib as f64 / 1024.0,
            result.rss_after_kib as f64 / 1024.0,
            summary.per_connection_kib,
        );
    }
}
