//! Live lecture benchmark: one publisher and N receive-only viewers in one media engine
//! room, driven the way the server's lecture mode drives it. The room subscribes
//! automatically, every viewer joins with a receive-only offer, and the engine blocks each
//! viewer's audio and video (`Sfu::set_blocked`) before the viewer's answer is applied.
//!
//! The engine runs alone on one thread pinned to `--engine-cpu`, and the clients (the
//! `webrtc` peers of the `sfu` crate's tests) run on a runtime pinned to `--client-cpu`,
//! so the engine's CPU time is read apart from theirs (`/proc/<pid>/task/<tid>/stat`).
//! Each count in `VIEWERS` is one run. A run passes when every viewer receives more than
//! 99 % of the packets sent in the measured window and the 99th percentile delay is below
//! 200 ms. Usage:
//!
//! ```text
//! cargo run --release -p dangwu-bench --bin lecture-bench -- 200 300 400
//! ```
//!
//! NOTE: delay runs from the publisher's `write_rtp` call to the viewer's track event,
//! through both client stacks on the client core, so it is an upper bound for the
//! engine's own delay. Memory is the whole process's resident set, clients included.

#[path = "../../../sfu/tests/common/mod.rs"]
mod common;
#[path = "../../../sfu/examples/bench/load.rs"]
mod load;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use common::{Client, Clients, spawn_event_pump};
use load::{packet_index, send_video, start_engine, thread_cpu_seconds};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;
use sfu::{MediaKind, ParticipantId, RoomId, RoomOptions, Sfu};
/// Smallest share of the sent packets every viewer must receive for a run to pass.
const MIN_DELIVERY: f64 = 0.99;
/// Largest 99th percentile delay of a passing run, in milliseconds.
const MAX_P99_MS: f64 = 200.0;

#[derive(Parser)]
#[command(about = "One lecture publisher and N receive-only viewers through the media engine")]
struct Args {
    /// Viewer counts, one run each.
    #[arg(default_values_t = vec![200])]
    viewers: Vec<usize>,
    /// CPU the engine thread is pinned to.
    #[arg(long, default_value_t = 0)]
    engine_cpu: usize,
    /// CPU the client runtime is pinned to.
    #[arg(long, default_value_t = 1)]
    client_cpu: usize,
    /// Seconds of sending before the measured window.
    #[arg(long, default_value_t = 3)]
    warmup_s: u64,
    /// Seconds of the measured window.
    #[arg(long, default_value_t = 10)]
    measure_s: u64,
}

/// Result of one run.
struct Report {
    viewers: usize,
    join_seconds: f64,
    sent: usize,
    forwarded: usize,
    /// Smallest share of the sent packets that one viewer received.
    worst_delivery: f64,
    engine_cpu_seconds: f64,
    rss_growth_kib: u64,
    delay_p50_ms: f64,
    delay_p99_ms: f64,
}

impl Report {
    fn passes(&self) -> bool {
        self.worst_delivery > MIN_DELIVERY && self.delay_p99_ms < MAX_P99_MS
    }
}

fn main() {
    let args = Args::parse();
    println!(
        "| viewers | join time | packets sent | packets forwarded | worst viewer delivery | engine CPU | engine CPU per forwarded packet | RSS growth per viewer | delay p50 | delay p99 | passes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut largest = None;
    for viewers in args.viewers.clone() {
        let report = run(&args, viewers);
        let window = args.measure_s as f64;
        println!(
            "| {} | {:.1} s | {} | {} | {:.2} % | {:.0} % of a core | {:.1} µs | {} KiB | {:.1} ms | {:.1} ms | {} |",
            report.viewers,
            report.join_seconds,
            report.sent,
            report.forwarded,
            report.worst_delivery * 100.0,
            report.engine_cpu_seconds * 100.0 / window,
            report.engine_cpu_seconds * 1e6 / report.forwarded.max(1) as f64,
            report.rss_growth_kib / report.viewers.max(1) as u64,
            report.delay_p50_ms,
            report.delay_p99_ms,
            if report.passes() { "yes" } else { "no" },
        );
        if report.passes() {
            largest = Some(largest.map_or(viewers, |known: usize| known.max(viewers)));
        }
    }
    match largest {
        Some(viewers) => println!("\nLargest passing viewer count: {viewers}"),
        None => println!("\nNo viewer count passed"),
    }
}

/// Pins the calling thread to one CPU; a failure is printed and the run goes on unpinned.
fn pin_current_thread(cpu: usize) {
    let mut set = CpuSet::new();
    let pinned = set
        .set(cpu)
        .and_then(|()| sched_setaffinity(Pid::from_raw(0), &set));
    if let Err(error) = pinned {
        eprintln!("pinning a thread to CPU {cpu} failed: {error}");
    }
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn run(args: &Args, viewers: usize) -> Report {
    let engine_cpu = args.engine_cpu;
    let (sfu, events, stat_path) = start_engine(move || pin_current_thread(engine_cpu));
    let client_cpu = args.client_cpu;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(move || pin_current_thread(client_cpu))
        .enable_all()
        .build()
        .expect("client runtime");
    let windows = (
        Duration::from_secs(args.warmup_s),
        Duration::from_secs(args.measure_s),
    );
    let report = runtime.block_on(measure(sfu.clone(), events, stat_path, viewers, windows));
    runtime.block_on(sfu.shutdown());
    report
}

/// Joins a receive-only viewer as lecture mode does: the engine blocks the viewer's media
/// before the answer is applied, so nothing the viewer might send is forwarded.
async fn join_viewer(sfu: &Sfu, room: &RoomId, clients: &Clients, name: &str) -> Arc<Client> {
    let client = Arc::new(Client::new(false).await);
    let participant = ParticipantId::from(name);
    clients
        .lock()
        .unwrap()
        .insert(participant.clone(), Arc::clone(&client));
    let offer = client.offer().await;
    let answer = sfu
        .join(room, participant.clone(), offer)
        .await
        .expect("join accepted");
    for kind in [MediaKind::Audio, MediaKind::Video] {
        sfu.set_blocked(room, participant.clone(), kind, true)
            .await
            .expect("viewer blocked");
    }
    client.apply_answer(answer).await;
    client
}

async fn measure(
    sfu: Sfu,
    events: tokio::sync::mpsc::UnboundedReceiver<sfu::SfuEvent>,
    stat_path: String,
    viewers: usize,
    (warmup, window): (Duration, Duration),
) -> Report {
    let room = RoomId::from("lecture");
    sfu.create_room(
        room.clone(),
        RoomOptions {
            auto_subscribe: true,
        },
    )
    .await
    .expect("room");
    let clients = Clients::default();
    spawn_event_pump(sfu.clone(), room.clone(), Arc::clone(&clients), events);
    let publisher = common::join(&sfu, &room, &clients, "lecturer", true).await;

    let rss_before = rss_kib();
    let joining = Instant::now();
    let mut audience: Vec<Arc<Client>> = Vec::with_capacity(viewers);
    for index in 0..viewers {
        audience.push(join_viewer(&sfu, &room, &clients, &format!("viewer-{index}")).await);
    }
    let deadline = Instant::now() + Duration::from_secs(60 + viewers as u64 / 2);
    while audience.iter().any(|viewer| !viewer.is_connected()) {
        assert!(
            Instant::now() < deadline,
            "viewers did not connect: {} of {viewers}",
            audience.iter().filter(|v| v.is_connected()).count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let join_seconds = joining.elapsed().as_secs_f64();

    let send_times = Arc::new(Mutex::new(Vec::new()));
    let sending = tokio::spawn(send_video(Arc::clone(&publisher), Arc::clone(&send_times)));
    tokio::time::sleep(warmup).await;

    let first_index = send_times.lock().unwrap().len();
    let received_before: Vec<usize> = audience.iter().map(|v| v.counts().0).collect();
    let cpu_before = thread_cpu_seconds(&stat_path);
    tokio::time::sleep(window).await;
    let engine_cpu_seconds = thread_cpu_seconds(&stat_path) - cpu_before;
    let last_index = send_times.lock().unwrap().len();
    sending.abort();
    // Packets still on their way when sending stops arrive in this grace period.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_growth_kib = rss_kib().saturating_sub(rss_before);

    let send_times = send_times.lock().unwrap().clone();
    let sent = last_index - first_index;
    let mut delays = Vec::new();
    let mut forwarded = 0;
    let mut worst_delivery: f64 = 1.0;
    for (viewer, before) in audience.iter().zip(received_before) {
        let received = viewer.received.lock().unwrap();
        // A retransmitted packet arrives twice; only its first arrival counts.
        let mut seen = HashSet::new();
        for (payload, arrival) in received
            .video
            .iter()
            .zip(&received.video_arrivals)
            .skip(before)
        {
            let index = packet_index(payload);
            if (first_index..last_index).contains(&index) && seen.insert(index) {
                delays.push(arrival.saturating_duration_since(send_times[index]));
            }
        }
        forwarded += seen.len();
        worst_delivery = worst_delivery.min(seen.len() as f64 / sent.max(1) as f64);
    }
    delays.sort_unstable();
    let percentile = |p: f64| {
        delays
            .get(((delays.len() as f64 * p) as usize).min(delays.len().saturating_sub(1)))
            .map_or(f64::INFINITY, |d| d.as_secs_f64() * 1000.0)
    };

    Report {
        viewers,
        join_seconds,
        sent,
        forwarded,
        worst_delivery,
        engine_cpu_seconds,
        rss_growth_kib,
        delay_p50_ms: percentile(0.5),
        delay_p99_ms: percentile(0.99),
    }
}
