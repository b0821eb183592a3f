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

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, Clients, VP8_PT, join, spawn_event_pump};
use rtc::rtp;
use sfu::{RoomId, RoomOptions, Sfu, SfuConfig};
use webrtc::media_stream::track_local::TrackLocal;

const FRAMES_PER_SECOND: u64 = 30;
const PACKETS_PER_FRAME: u32 = 4;
const PAYLOAD_BYTES: usize = 1000;
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

/// Starts the engine on its own thread and returns the handle, its events and the thread's
/// `/proc` stat path.
fn start_engine() -> (
    Sfu,
    tokio::sync::mpsc::UnboundedReceiver<sfu::SfuEvent>,
    String,
) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("sfu-engine".to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("engine runtime");
            runtime.block_on(async move {
                let config = SfuConfig {
                    shards: 1,
                    ..SfuConfig::default()
                };
                let (sfu, events) = Sfu::start(config).await.expect("engine start");
                let task = std::fs::read_link("/proc/thread-self").expect("thread id");
                let stat = format!("/proc/{}/stat", task.display());
                ready_tx.send((sfu, events, stat)).expect("bench alive");
                std::future::pending::<()>().await;
            });
        })
        .expect("engine thread");
    ready_rx.recv().expect("engine started")
}

/// User plus system CPU time of one thread, in seconds (clock ticks of 10 ms).
fn thread_cpu_seconds(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of stat(5), so 12 and 13 after the name.
    let ticks: u64 = fields.get(11..13).map_or(0, |times| {
        times.iter().filter_map(|t| t.parse::<u64>().ok()).sum()
    });
    ticks as f64 / 100.0
}

fn run(subscribers: usize) -> Report {
    let (sfu, events, stat_path) = start_engine();
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

fn packet_index(payload: &[u8]) -> usize {
    payload
        .get(2..10)
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(usize::MAX, |bytes| u64::from_be_bytes(bytes) as usize)
}

/// Sends frames of `PACKETS_PER_FRAME` packets at `FRAMES_PER_SECOND`, a keyframe every
/// second. Each payload carries its packet index, and `send_times` its send time.
async fn send_video(publisher: Arc<Client>, send_times: Arc<Mutex<Vec<Instant>>>) {
    let publishing = publisher.publishing.as_ref().expect("publishing client");
    let mut interval = tokio::time::interval(Duration::from_micros(1_000_000 / FRAMES_PER_SECOND));
    let mut seq: u16 = 0;
    for frame in 0u64.. {
        interval.tick().await;
        for part in 0..PACKETS_PER_FRAME {
            let index = send_times.lock().unwrap().len() as u64;
            let keyframe = frame % FRAMES_PER_SECOND == 0;
            let mut payload = vec![if part == 0 { 0x10 } else { 0x00 }, u8::from(!keyframe)];
            payload.extend_from_slice(&index.to_be_bytes());
            payload.resize(PAYLOAD_BYTES, 0xab);
            let packet = rtp::Packet {
                header: rtp::Header {
                    version: 2,
                    marker: part + 1 == PACKETS_PER_FRAME,
                    payload_type: VP8_PT,
                    sequence_number: seq,
                    timestamp: (frame * 3000) as u32,
                    ssrc: publishing.video_ssrc,
                    ..Default::default()
                },
                payload: payload.into(),
            };
            send_times.lock().unwrap().push(Instant::now());
            let _ = publishing.video.write_rtp(packet).await;
            seq = seq.wrapping_add(1);
        }
    }
}
