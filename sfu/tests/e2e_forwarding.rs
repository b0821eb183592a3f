//! End to end through real sockets: `webrtc` client peers publish and subscribe through the
//! engine on loopback.

mod common;

use std::sync::Arc;

use common::{Clients, is_vp8_keyframe, join, spawn_event_pump, spawn_media, wait_for};
use sfu::{RoomId, RoomOptions, Sfu, SfuConfig};

async fn start() -> (
    Sfu,
    RoomId,
    Clients,
    Arc<std::sync::Mutex<Vec<sfu::SfuEvent>>>,
) {
    common::init_tracing();
    let config = SfuConfig {
        shards: 1,
        ..SfuConfig::default()
    };
    let (sfu, events) = Sfu::start(config).await.unwrap();
    let room = RoomId::from("room");
    sfu.create_room(
        room.clone(),
        RoomOptions {
            auto_subscribe: true,
        },
    )
    .await
    .unwrap();
    let clients = Clients::default();
    let seen = spawn_event_pump(sfu.clone(), room.clone(), Arc::clone(&clients), events);
    (sfu, room, clients, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_reach_every_subscriber_intact() {
    let (sfu, room, clients, _) = start().await;
    let publisher = join(&sfu, &room, &clients, "alice", true).await;
    let bob = join(&sfu, &room, &clients, "bob", false).await;
    let carol = join(&sfu, &room, &clients, "carol", false).await;
    let (media, sent) = spawn_media(Arc::clone(&publisher), 10);

    for subscriber in [&bob, &carol] {
        let subscriber = Arc::clone(subscriber);
        wait_for("30 video and 30 audio packets", move || {
            let (video, audio) = subscriber.counts();
            video >= 30 && audio >= 30
        })
        .await;
    }
    media.abort();

    let sent = sent.lock().unwrap().clone();
    for subscriber in [&bob, &carol] {
        let received = subscriber.received.lock().unwrap();
        for payload in &received.video {
            assert!(
                sent.contains(payload),
                "payload changed in transit: {payload:?}"
            );
        }
        assert!(
            is_vp8_keyframe(&received.video[0]),
            "first frame is not a keyframe"
        );
        assert!(
            received
                .audio
                .iter()
                .all(|payload| payload.len() == 4 && payload[0] == 0xf8)
        );
    }
    assert_eq!(sfu.stats().await.unwrap().participants, 3);
    sfu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_subscriber_starts_on_keyframe() {
    let (sfu, room, clients, _) = start().await;
    let publisher = join(&sfu, &room, &clients, "alice", true).await;
    // A keyframe only every 60 frames (2 s), so joining mid-stream rarely lands on one.
    let (media, _) = spawn_media(Arc::clone(&publisher), 60);
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;

    let late = join(&sfu, &room, &clients, "dave", false).await;
    let waiting = Arc::clone(&late);
    wait_for("video at the late subscriber", move || {
        waiting.counts().0 >= 5
    })
    .await;
    media.abort();

    let first_frame = late.received.lock().unwrap().video[0].clone();
    assert!(
        is_vp8_keyframe(&first_frame),
        "late subscriber started on a delta frame"
    );
    sfu.shutdown().await;
}
