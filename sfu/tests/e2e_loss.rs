//! Loss on the path to a subscriber is repaired: a relay drops every seventh VP8 packet the
//! engine sends, the subscriber NACKs them, and the engine resends them over RTX.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Client, Clients, VP8_PT, join, spawn_event_pump, spawn_media, wait_for};
use sfu::{ParticipantId, RoomId, RoomOptions, Sfu, SfuConfig};
use tokio::net::UdpSocket;

/// Drops every `DROP_EVERY`th VP8 packet from the engine to the client.
const DROP_EVERY: u64 = 7;

/// Starts a UDP relay in front of `engine` and returns its address and the count of
/// dropped packets.
async fn start_lossy_relay(engine: SocketAddr) -> (SocketAddr, Arc<AtomicU64>) {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = socket.local_addr().unwrap();
    let dropped = Arc::new(AtomicU64::new(0));
    let dropped_by_task = Arc::clone(&dropped);
    tokio::spawn(async move {
        let mut client: Option<SocketAddr> = None;
        let mut media_packets = 0u64;
        let mut buffer = vec![0u8; 2048];
        while let Ok((len, from)) = socket.recv_from(&mut buffer).await {
            let datagram = &buffer[..len];
            if from != engine {
                client = Some(from);
                let _ = socket.send_to(datagram, engine).await;
                continue;
            }
            // RTP (not RTCP) with the VP8 payload type; RTX uses another payload type.
            let is_vp8 = len > 12 && datagram[0] >> 6 == 2 && datagram[1] & 0x7f == VP8_PT;
            if is_vp8 {
                media_packets += 1;
                if media_packets.is_multiple_of(DROP_EVERY) {
                    dropped_by_task.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            if let Some(client) = client {
                let _ = socket.send_to(datagram, client).await;
            }
        }
    });
    (addr, dropped)
}

/// Replaces the engine's candidate port in an SDP with the relay's.
fn via_relay(sdp: &str, engine: SocketAddr, relay: SocketAddr) -> String {
    sdp.replace(
        &format!("{} {} typ host", engine.ip(), engine.port()),
        &format!("{} {} typ host", relay.ip(), relay.port()),
    )
}

fn frame_number(payload: &[u8]) -> u32 {
    u32::from_be_bytes([payload[2], payload[3], payload[4], payload[5]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_packets_are_resent_over_rtx() {
    common::init_tracing();
    let (sfu, events) = Sfu::start(SfuConfig {
        shards: 1,
        ..SfuConfig::default()
    })
    .await
    .unwrap();
    let engine = sfu.udp_addr();
    let room = RoomId::from("lossy");
    sfu.create_room(
        room.clone(),
        RoomOptions {
            auto_subscribe: true,
        },
    )
    .await
    .unwrap();
    let (relay, dropped) = start_lossy_relay(engine).await;

    // The event pump answers engine offers; offers to the lossy subscriber go through the
    // relay because its answer was rewritten, and the engine keeps using that address.
    let clients = Clients::default();
    spawn_event_pump(sfu.clone(), room.clone(), Arc::clone(&clients), events);
    let publisher = join(&sfu, &room, &clients, "alice", true).await;

    let subscriber = Arc::new(Client::new(false).await);
    clients
        .lock()
        .unwrap()
        .insert(ParticipantId::from("bob"), Arc::clone(&subscriber));
    let offer = subscriber.offer().await;
    let answer = sfu
        .join(&room, ParticipantId::from("bob"), offer)
        .await
        .unwrap();
    subscriber
        .apply_answer(via_relay(&answer, engine, relay))
        .await;
    let connecting = Arc::clone(&subscriber);
    wait_for("bob to connect through the relay", move || {
        connecting.is_connected()
    })
    .await;

    let (media, _) = spawn_media(Arc::clone(&publisher), 10);
    let dropping = Arc::clone(&dropped);
    wait_for("20 dropped packets", move || {
        dropping.load(Ordering::Relaxed) >= 20
    })
    .await;
    // Give the last retransmissions time to arrive before judging.
    media.abort();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut numbers: Vec<u32> = subscriber
        .received
        .lock()
        .unwrap()
        .video
        .iter()
        .map(|payload| frame_number(payload))
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    let first = numbers[0];
    let last = *numbers.last().unwrap();
    let missing: Vec<u32> = (first..=last)
        .filter(|n| numbers.binary_search(n).is_err())
        .collect();

    assert!(missing.is_empty(), "frames never repaired: {missing:?}");
    sfu.shutdown().await;
}
