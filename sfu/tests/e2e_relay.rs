//! A relay between two engines in one process, without the server. A `webrtc` client
//! publishes three VP8 simulcast layers on engine A, and A sends the track over one
//! relay to engine B (`Sfu::join_relay` on A, `RelayReceiver` on B). Two viewers on B
//! then get different layers of it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{Client, Clients, Simulcast, extension_id, join, join_client, wait_for};
use rtc::rtp;
use rtc::sdp::extmap::{SDES_MID_URI, SDES_RTP_STREAM_ID_URI};
use sfu::{ParticipantId, RelayReceiver, RoomId, RoomOptions, Sfu, SfuConfig, SfuEvent, TrackId};
use webrtc::media_stream::track_local::TrackLocal;

/// Sends one VP8 frame on every layer every 33 ms, a keyframe every 10 frames. The
/// third payload byte is the layer, and the rid header extension names the layer of
/// each SSRC to the engine.
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
                let keyframe = number % 10 == 0;
                let mut payload = vec![0x10, if keyframe { 0x00 } else { 0x01 }, layer as u8];
                payload.extend_from_slice(&number.to_be_bytes());
                payload.resize(100, 0xab);
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

async fn start_engine() -> (Sfu, tokio::sync::mpsc::UnboundedReceiver<SfuEvent>) {
    common::init_tracing();
    let config = SfuConfig {
        shards: 1,
        ..SfuConfig::default()
    };
    let (sfu, events) = Sfu::start(config).await.unwrap();
    let options = RoomOptions {
        auto_subscribe: true,
    };
    sfu.create_room(RoomId::from("room"), options)
        .await
        .unwrap();
    (sfu, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_carries_every_layer_once() {
    let room = RoomId::from("room");
    let (origin, mut origin_events) = start_engine().await;
    let (destination, destination_events) = start_engine().await;
    let destination_clients = Clients::default();
    common::spawn_event_pump(
        destination.clone(),
        room.clone(),
        Arc::clone(&destination_clients),
        destination_events,
    );

    // The relay: B's receiver offers, A joins it as a relay peer.
    let (receiver, offer) =
        RelayReceiver::start(destination.clone(), room.clone(), [127, 0, 0, 1].into())
            .await
            .unwrap();
    let receiver = Arc::new(receiver);
    let relay = ParticipantId::from("relay-to-b");
    let answer = origin
        .join_relay(&room, relay.clone(), offer)
        .await
        .unwrap();
    receiver.accept_answer(answer).await.unwrap();

    // A's events: its offers to the relay go to the receiver, the publisher's answers
    // go to the publisher, and published tracks are recorded.
    let origin_clients = Clients::default();
    let published = Arc::new(Mutex::new(Vec::new()));
    {
        let (origin, room, receiver, relay) = (
            origin.clone(),
            room.clone(),
            Arc::clone(&receiver),
            relay.clone(),
        );
        let (clients, published) = (Arc::clone(&origin_clients), Arc::clone(&published));
        tokio::spawn(async move {
            while let Some(event) = origin_events.recv().await {
                match event {
                    SfuEvent::Offer { participant, sdp } if participant == relay => {
                        let answer = receiver.answer(sdp).await.unwrap();
                        origin
                            .accept_answer(&room, participant, answer)
                            .await
                            .unwrap();
                    }
                    SfuEvent::Offer { participant, sdp } => {
                        let client = clients.lock().unwrap().get(&participant).cloned();
                        if let Some(client) = client {
                            let answer = client.answer(sdp).await;
                            origin
                                .accept_answer(&room, participant, answer)
                                .await
                                .unwrap();
                        }
                    }
                    SfuEvent::TrackPublished { track, .. } => {
                        published.lock().unwrap().push(track.id);
                    }
                    _ => {}
                }
            }
        });
    }

    let (publisher, simulcast) = Client::simulcast_publisher(&["q", "h", "f"]).await;
    let (publisher, _) = join_client(&origin, &room, &origin_clients, "publisher", publisher).await;
    let publisher_offer = publisher.pc.local_description().await.unwrap().sdp;
    let sender = spawn_layers(simulcast, &publisher_offer);
    let watched = Arc::clone(&published);
    wait_for("the publisher's track", move || {
        !watched.lock().unwrap().is_empty()
    })
    .await;
    let track: TrackId = published.lock().unwrap()[0].clone();
    // Automatic subscription leaves the relay peer out.
    assert_eq!(origin.stats().await.unwrap().subscriptions, 0);
    origin
        .subscribe(&room, relay.clone(), track.clone())
        .await
        .unwrap();

    let low = join(&destination, &room, &destination_clients, "low", false).await;
    let high = join(&destination, &room, &destination_clients, "high", false).await;
    let watched = Arc::clone(&receiver);
    wait_for("the relayed track", move || watched.stats().tracks == 1).await;
    let low_id = ParticipantId::from("low");
    let watched = Arc::clone(&low);
    wait_for("video at the low viewer", move || {
        !watched.received.lock().unwrap().video.is_empty()
    })
    .await;
    destination
        .set_max_layer(&room, low_id, track.clone(), 0)
        .await
        .unwrap();

    wait_for_layer(&low, 0).await;
    wait_for_layer(&high, 2).await;

    // One subscription on A carries the track, whatever B's viewers choose, and B
    // published it once.
    assert_eq!(origin.stats().await.unwrap().subscriptions, 1);
    assert_eq!(receiver.stats().tracks, 1);

    // Dropping the track on both ends unpublishes it on B.
    origin
        .unsubscribe(&room, relay, track.clone())
        .await
        .unwrap();
    receiver.drop_track(&track);
    assert_eq!(receiver.stats().tracks, 0);
    let engine = destination.clone();
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    while engine.stats().await.unwrap().subscriptions > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B's viewers still subscribe to the dropped track"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    sender.abort();
    receiver.close().await;
    origin.shutdown().await;
    destination.shutdown().await;
}
