//! Simulcast layer choice from the subscriber's bandwidth estimate, end to end: a `webrtc`
//! client publishes three VP8 layers of different bit rates. A subscriber's REMB reports
//! move it between layers, each switch on a keyframe, and a subscriber behind a narrow
//! path is moved down by the engine's estimate from its transport-wide feedback (TWCC).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{Client, Simulcast, extension_id, join, join_client, start_room, wait_for};
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp;
use rtc::sdp::extmap::{SDES_MID_URI, SDES_RTP_STREAM_ID_URI};
use sfu::ParticipantId;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;

/// Payload size of each layer: about 24, 96 and 264 kbit/s at 30 frames per second.
const LAYER_BYTES: [usize; 3] = [100, 400, 1100];

/// Builds packet `part` of a VP8 frame, recording its layer in the third byte. Only the
/// first packet of a frame starts a VP8 partition, so only it can be a keyframe.
fn layer_frame(layer: usize, number: u32, keyframe: bool, part: usize) -> Vec<u8> {
    let start = if part == 0 { 0x10 } else { 0x00 };
    let mut payload = vec![start, if keyframe { 0x00 } else { 0x01 }, layer as u8];
    payload.extend_from_slice(&number.to_be_bytes());
    payload.resize(LAYER_BYTES[layer], 0xab);
    payload
}

fn frame_number(payload: &[u8]) -> u32 {
    u32::from_be_bytes([payload[3], payload[4], payload[5], payload[6]])
}

fn is_keyframe(payload: &[u8]) -> bool {
    payload[1] & 0x01 == 0
}

/// Sends one frame on every layer every 33 ms, a keyframe every 10 frames, with the mid
/// and rid header extensions that tell the engine the layer of a new SSRC. A frame of
/// layer `l` has `packets[l]` packets.
fn spawn_layers(
    simulcast: Simulcast,
    offer: &str,
    packets: [usize; 3],
) -> tokio::task::JoinHandle<()> {
    let mid_id = extension_id(offer, SDES_MID_URI).expect("mid extension offered");
    let rid_id = extension_id(offer, SDES_RTP_STREAM_ID_URI).expect("rid extension offered");
    tokio::spawn(async move {
        let mut seqs = [1000u16, 20_000, 40_000];
        for number in 0u32.. {
            for (layer, (rid, ssrc)) in simulcast.layers.iter().enumerate() {
                for part in 0..packets[layer] {
                    let mut header = rtp::Header {
                        version: 2,
                        marker: part + 1 == packets[layer],
                        payload_type: common::VP8_PT,
                        sequence_number: seqs[layer],
                        timestamp: number.wrapping_mul(3000),
                        ssrc: *ssrc,
                        ..Default::default()
                    };
                    header.set_extension(mid_id, Bytes::from("0")).unwrap();
                    header
                        .set_extension(rid_id, Bytes::from(rid.clone()))
                        .unwrap();
                    let payload = layer_frame(layer, number, number % 10 == 0, part);
                    let packet = rtp::Packet {
                        header,
                        payload: payload.into(),
                    };
                    let _ = simulcast.track.write_rtp(packet).await;
                    seqs[layer] = seqs[layer].wrapping_add(1);
                }
            }
            tokio::time::sleep(Duration::from_millis(33)).await;
        }
    })
}

/// Sends a REMB report of `bitrate` bit/s for the viewer's video every 300 ms.
fn spawn_remb(viewer: Arc<Client>, bitrate: f32) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (track, ssrc) = {
                let received = viewer.received.lock().unwrap();
                (received.video_track.clone(), received.video_ssrc)
            };
            if let (Some(track), Some(ssrc)) = (track, ssrc) {
                let remb = ReceiverEstimatedMaximumBitrate {
                    sender_ssrc: 1,
                    bitrate,
                    ssrcs: vec![ssrc],
                };
                let _ = track.write_rtcp(vec![Box::new(remb)]).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// Starts a UDP relay in front of `engine` that carries the engine's datagrams to the
/// client at `rate_bps` (counting UDP payload bytes) and drops those that would wait in
/// its queue longer than `queue_limit`, as a narrow access link does. Returns the relay's
/// address and the count of dropped datagrams.
async fn start_narrow_relay(
    engine: SocketAddr,
    rate_bps: u64,
    queue_limit: Duration,
) -> (SocketAddr, Arc<AtomicU64>) {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = socket.local_addr().unwrap();
    let dropped = Arc::new(AtomicU64::new(0));
    let dropped_by_task = Arc::clone(&dropped);

    // Datagrams leave in order, each at the time the link has finished sending it.
    let (queue, mut queued) =
        mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>, SocketAddr)>();
    let sender = Arc::clone(&socket);
    tokio::spawn(async move {
        while let Some((at, datagram, to)) = queued.recv().await {
            tokio::time::sleep_until(at).await;
            let _ = sender.send_to(&datagram, to).await;
        }
    });

    tokio::spawn(async move {
        let mut client: Option<SocketAddr> = None;
        let mut busy_until = tokio::time::Instant::now();
        let mut buffer = vec![0u8; 2048];
        while let Ok((len, from)) = socket.recv_from(&mut buffer).await {
            let datagram = &buffer[..len];
            if from != engine {
                client = Some(from);
                let _ = socket.send_to(datagram, engine).await;
                continue;
            }
            let Some(client) = client else {
                continue;
            };
            let now = tokio::time::Instant::now();
            let start = busy_until.max(now);
            if start - now > queue_limit {
                dropped_by_task.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            busy_until = start + Duration::from_nanos(len as u64 * 8 * 1_000_000_000 / rate_bps);
            let _ = queue.send((busy_until, datagram.to_vec(), client));
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

/// Layer of each video packet the viewer received, in order.
fn received_layers(viewer: &Client) -> Vec<usize> {
    let received = viewer.received.lock().unwrap();
    received
        .video
        .iter()
        .map(|payload| payload[2] as usize)
        .collect()
}

/// Waits until the last 15 video packets at the viewer are all from `layer`.
async fn wait_for_layer(viewer: &Arc<Client>, layer: usize) {
    let watched = Arc::clone(viewer);
    wait_for(&format!("layer {layer} at the viewer"), move || {
        let layers = received_layers(&watched);
        layers.len() >= 15 && layers[layers.len() - 15..].iter().all(|l| *l == layer)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remb_estimate_selects_layer() {
    let (sfu, room, clients, _) = start_room().await;
    let (publisher, simulcast) = Client::simulcast_publisher(&["q", "h", "f"]).await;
    let (publisher, _) = join_client(&sfu, &room, &clients, "publisher", publisher).await;
    let offer = publisher.pc.local_description().await.unwrap().sdp;
    let sender = spawn_layers(simulcast, &offer, [1, 1, 1]);
    let viewer = join(&sfu, &room, &clients, "viewer", false).await;

    // No estimate yet: the top layer.
    wait_for_layer(&viewer, 2).await;

    let remb = spawn_remb(Arc::clone(&viewer), 150_000.0);
    wait_for_layer(&viewer, 1).await;
    remb.abort();

    let remb = spawn_remb(Arc::clone(&viewer), 30_000.0);
    wait_for_layer(&viewer, 0).await;
    remb.abort();

    let remb = spawn_remb(Arc::clone(&viewer), 2_000_000.0);
    wait_for_layer(&viewer, 2).await;
    remb.abort();
    sender.abort();

    let received = viewer.received.lock().unwrap().video.clone();
    assert!(is_keyframe(&received[0]), "viewer started on a delta frame");
    for pair in received.windows(2) {
        if pair[0][2] != pair[1][2] {
            assert!(
                is_keyframe(&pair[1]),
                "switch from layer {} to {} on a delta frame",
                pair[0][2],
                pair[1][2]
            );
        }
    }
    sfu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twcc_estimate_lowers_narrow_subscriber() {
    let (sfu, room, clients, _) = start_room().await;
    let (publisher, simulcast) = Client::simulcast_publisher(&["q", "h", "f"]).await;
    let (publisher, _) = join_client(&sfu, &room, &clients, "publisher", publisher).await;
    let offer = publisher.pc.local_description().await.unwrap().sdp;
    // About 24, 190 and 1,060 kbit/s of payload.
    let sender = spawn_layers(simulcast, &offer, [1, 2, 4]);

    let wide = join(&sfu, &room, &clients, "wide", false).await;
    wait_for_layer(&wide, 2).await;

    // The narrow viewer reaches the engine through a 500 kbit/s link with a 200 ms queue:
    // the top layer does not fit, the middle one does.
    let engine = sfu.udp_addr();
    let (relay, dropped) = start_narrow_relay(engine, 500_000, Duration::from_millis(200)).await;
    let narrow = Arc::new(Client::new(false).await);
    clients
        .lock()
        .unwrap()
        .insert(ParticipantId::from("narrow"), Arc::clone(&narrow));
    let narrow_offer = narrow.offer().await;
    let answer = sfu
        .join(&room, ParticipantId::from("narrow"), narrow_offer)
        .await
        .unwrap();
    narrow.apply_answer(via_relay(&answer, engine, relay)).await;
    let connecting = Arc::clone(&narrow);
    wait_for("the narrow viewer to connect", move || {
        connecting.is_connected()
    })
    .await;

    wait_for_layer(&narrow, 1).await;
    let settled_frame = {
        let received = narrow.received.lock().unwrap();
        frame_number(received.video.last().unwrap())
    };
    let stats = sfu
        .downlink_stats(&room, ParticipantId::from("narrow"))
        .await
        .unwrap();
    assert!(
        stats.twcc_feedback_packets > 0,
        "no TWCC feedback: {stats:?}"
    );
    let estimate = stats.twcc_estimate_bps.expect("a TWCC estimate");
    assert!(
        estimate < 1_000_000,
        "estimate {estimate} above the 500 kbit/s link"
    );
    assert!(
        dropped.load(Ordering::Relaxed) > 0,
        "the link never overflowed"
    );

    // Both keep their layers for a while: the narrow one does not try the top layer again
    // at once, and the wide one was never moved down.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sender.abort();

    // Retransmissions of older top-layer packets may still arrive, so frames are compared
    // by number.
    let top_frames_later: Vec<u32> = narrow
        .received
        .lock()
        .unwrap()
        .video
        .iter()
        .filter(|payload| payload[2] == 2 && frame_number(payload) > settled_frame)
        .map(|payload| frame_number(payload))
        .collect();
    assert!(
        top_frames_later.is_empty(),
        "narrow viewer got top-layer frames after settling on layer 1: {top_frames_later:?}"
    );
    let wide_layers = received_layers(&wide);
    let first_top = wide_layers.iter().position(|layer| *layer == 2).unwrap();
    let wide_lower = wide_layers[first_top..]
        .iter()
        .filter(|layer| **layer != 2)
        .count();
    assert_eq!(wide_lower, 0, "wide viewer got lower-layer packets");
    let wide_stats = sfu
        .downlink_stats(&room, ParticipantId::from("wide"))
        .await
        .unwrap();
    assert!(
        wide_stats.twcc_feedback_packets > 0,
        "no TWCC feedback from the wide viewer: {wide_stats:?}"
    );

    sfu.shutdown().await;
}
