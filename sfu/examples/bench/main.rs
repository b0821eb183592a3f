//! Forwarding benchmark: one publisher, N receive-only subscribers, all on loopback.
//!
//! The engine runs alone on one thread, so its CPU time can be read apart from the
//! clients' (`/proc/<pid>/task/<tid>/stat`). Usage:
//!
//! ```text
//! cargo run --release -p sfu --example bench -- [SUBSCRIBERS...]
//! ```
//!
//! NOTE: the publisher sends one synthetic VP8 stream, not three simulcast layers, and the
//! clients are `webrtc` peers in the same process. Forwarding delay therefore includes
//! both client stacks and is an upper bound for the engine's own delay.

#[path = "../../tests/common/mod.rs"]
mod common;
mod load;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Client, Clients, join, spawn_event_pump};
use load::{packet_index, send_video, start_engine, thread_cpu_seconds};
use sfu::{RoomId, RoomOptions, Sfu};

const WARMUP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(10);

/// Result of one run.
struct Report {
    subscribers: usize,
    sent: usize,
    forwarded: usize,
    cpu_seconds: f64,
    delay_p50_ms: f64,
    delay_p99_ms: f64,
}

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![1, 5, 10, 20]
    } else {
        counts
    };

    println!(
        "| subscribers | packets sent | packets forwarded | loss | engine CPU per forwarded packet | delay p50 | delay p99 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for subscribers in counts {
        let report = run(subscribers);
        let expected = report.sent * report.subscribers;
        let loss = 1.0 - report.forwarded as f64 / expected.max(1) as f64;
        println!(
            "| {} | {} | {} | {:.2} % | {:.1} µs | {:.1} ms | {:.1} ms |",
            report.subscribers,
            report.sent,
            report.forwarded,
            loss * 100.0,
            report.cpu_seconds * 1e6 / report.forwarded.max(1) as f64,
            report.delay_p50_ms,
            report.delay_p99_ms,
        );
    }
}

fn run(subscribers: usize) -> Report {
    let (sfu, events, stat_path) = start_engine(|| {});
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    let report = runtime.block_on(measure(sfu.clone(), events, stat_path, subscribers));
    runtime.block_on(sfu.shutdown());
    report
}

async fn measure(
    sfu: Sfu,
    events: tokio::sync::mpsc::UnboundedReceiver<sfu::SfuEvent>,
    stat_path: String,
    subscribers: usize,
) -> Report {
    let room = RoomId::from("bench");
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
    let publisher = join(&sfu, &room, &clients, "publisher", true).await;
    let mut viewers: Vec<Arc<Client>> = Vec::new();
    for index in 0..subscribers {
        viewers.push(join(&sfu, &room, &clients, &format!("viewer-{index}"), false).await);
    }

    let send_times = Arc::new(Mutex::new(Vec::new()));
    let sending = tokio::spawn(send_video(Arc::clone(&publisher), Arc::clone(&send_times)));
    tokio::time::sleep(WARMUP).await;

    let first_index = send_times.lock().unwrap().len();
    let received_before: Vec<usize> = viewers.iter().map(|v| v.counts().0).collect();
    let cpu_before = thread_cpu_seconds(&stat_path);
    tokio::time::sleep(MEASURE).await;
    let cpu_seconds = thread_cpu_seconds(&stat_path) - cpu_before;
    let last_index = send_times.lock().unwrap().len();
    sending.abort();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let send_times = send_times.lock().unwrap().clone();
    let mut delays = Vec::new();
    let mut forwarded = 0;
    for (viewer, before) in viewers.iter().zip(received_before) {
        let received = viewer.received.lock().unwrap();
        for (payload, arrival) in received
            .video
            .iter()
            .zip(&received.video_arrivals)
            .skip(before)
        {
            let index = packet_index(payload);
            if (first_index..last_index).contains(&index) {
                forwarded += 1;
                delays.push(arrival.saturating_duration_since(send_times[index]));
            }
        }
    }
    delays.sort_unstable();
    let percentile = |p: f64| {
        delays
            .get(((delays.len() as f64 * p) as usize).min(delays.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };

    Report {
        subscribers,
        sent: last_index - first_index,
        forwarded,
        cpu_seconds,
        delay_p50_ms: percentile(0.5),
        delay_p99_ms: percentile(0.99),
    }
}
