//! Simulcast layer choice from the subscriber's bandwidth estimate, end to end: a `webrtc`
//! client publishes three VP8 layers of different bit rates, and a subscriber's REMB
//! reports move it between layers, each switch on a keyframe.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Client, Simulcast, extension_id, join, join_client, start_room, wait_for};
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp;
use rtc::sdp::extmap::{SDES_MID_URI, SDES_RTP_STREAM_ID_URI};
use webrtc::media_stream::track_local::TrackLocal;

/// Payload size of each layer: about 24, 96 and 264 kbit/s at 30 frames per second.
const LAYER_BYTES: [usize; 3] = [100, 400, 1100];

/// Builds a one-packet VP8 frame that records its layer in the third byte.
fn layer_frame(layer: usize, number: u32, keyframe: bool) -> Vec<u8> {
    let mut payload = vec![0x10, if keyframe { 0x00 } else { 0x01 }, layer as u8];
    payload.extend_from_slice(&number.to_be_bytes());
    payload.resize(LAYER_BYTES[layer], 0xab);
    payload
}

fn is_keyframe(payload: &[u8]) -> bool {
    payload[1] & 0x01 == 0
}

/// Sends one frame on every layer every 33 ms, a keyframe every 10 frames, with the mid
/// and rid header extensions that tell the engine the layer of a new SSRC.
fn spawn_layers(simulcast: Simulcast, offer: &str) -> tokio::task::JoinHandle<()> {
    let mid_id = extension_id(offer, SDES_MID_URI).expect("mid extension offered");
    let rid_id = extension_id(offer, SDES_RTP_STREAM_ID_URI).expect("rid extension offered");
    tokio::spawn(async move {
        let mut seqs = [1000u16, 20_000, 40_000];
        for number in 0u32.. {
            for (layer, (rid, ssrc)) in simulcast.layers.iter().enumerate() {
                let mut header = rtp::Header {
                    version: 2,
                    marker: true,
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
                let payload = layer_frame(layer, number, number % 10 == 0);
                let packet = rtp::Packet {
                    header,
                    payload: payload.into(),
                };
                let _ = simulcast.track.write_rtp(packet).await;
                seqs[layer] = seqs[layer].wrapping_add(1);
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
    let sender = spawn_layers(simulcast, &offer);
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
