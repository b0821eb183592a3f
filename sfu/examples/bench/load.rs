//! Load helpers shared by the forwarding benchmarks: the engine on its own thread, the
//! publisher's synthetic VP8 stream with packet indexes, and thread CPU time. The lecture
//! benchmark of the `dangwu-bench` crate includes this file too.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::rtp;
use sfu::{Sfu, SfuConfig};
use webrtc::media_stream::track_local::TrackLocal;

use crate::common::{Client, VP8_PT};

pub const FRAMES_PER_SECOND: u64 = 30;
pub const PACKETS_PER_FRAME: u32 = 4;
pub const PAYLOAD_BYTES: usize = 1000;

/// Starts the engine with one shard on its own thread, after running `on_start` on that
/// thread (for example to pin it to a CPU), and returns the handle, its events and the
/// thread's `/proc` stat path.
pub fn start_engine(
    on_start: impl FnOnce() + Send + 'static,
) -> (
    Sfu,
    tokio::sync::mpsc::UnboundedReceiver<sfu::SfuEvent>,
    String,
) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("sfu-engine".to_owned())
        .spawn(move || {
            on_start();
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
pub fn thread_cpu_seconds(stat_path: &str) -> f64 {
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

/// Reads the packet index that [`send_video`] wrote into a payload.
pub fn packet_index(payload: &[u8]) -> usize {
    payload
        .get(2..10)
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(usize::MAX, |bytes| u64::from_be_bytes(bytes) as usize)
}

/// Sends frames of `PACKETS_PER_FRAME` packets at `FRAMES_PER_SECOND` (about 1 Mbit/s), a
/// keyframe every second. Each payload carries its packet index, and `send_times` its
/// send time.
pub async fn send_video(publisher: Arc<Client>, send_times: Arc<Mutex<Vec<Instant>>>) {
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
