//! The audio tap, end to end: it receives a copy of every audio packet a publisher sends,
//! in order, to every tap of the room, and skips audio a host has blocked.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Clients, join, spawn_event_pump, spawn_media};
use sfu::{MediaKind, ParticipantId, RoomId, RoomOptions, Sfu, SfuConfig, SfuError};

/// Long enough for dozens of packets at the test publisher's 33 ms pace.
const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_copies_received_audio() {
    common::init_tracing();
    let (sfu, events) = Sfu::start(SfuConfig {
        shards: 1,
        ..SfuConfig::default()
    })
    .await
    .unwrap();
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
    spawn_event_pump(sfu.clone(), room.clone(), Arc::clone(&clients), events);
    let mut tap = sfu.tap_audio(&room).await.unwrap();
    let alice = join(&sfu, &room, &clients, "alice", true).await;
    let (media, _) = spawn_media(Arc::clone(&alice), 10);

    let mut previous: Option<u16> = None;
    for _ in 0..20 {
        let packet = tokio::time::timeout(PATIENCE, tap.recv())
            .await
            .expect("audio reaches the tap")
            .expect("the tap stays open");
        assert_eq!(packet.publisher, ParticipantId::from("alice"));
        assert_eq!(packet.ssrc, alice.publishing.as_ref().unwrap().audio_ssrc);
        // The test publisher's Opus packets start with a fixed TOC and padding bytes.
        assert_eq!(&packet.payload[..3], &[0xf8, 0xff, 0xfe]);
        if let Some(previous) = previous {
            assert_eq!(packet.sequence_number, previous.wrapping_add(1), "in order");
        }
        previous = Some(packet.sequence_number);
    }

    // Blocked audio is not copied: the tap runs dry once the queue is read.
    sfu.set_blocked(&room, ParticipantId::from("alice"), MediaKind::Audio, true)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    while tap.try_recv().is_ok() {}
    let during_block = tokio::time::timeout(Duration::from_secs(1), tap.recv()).await;
    assert!(during_block.is_err(), "audio copied while blocked");
    sfu.set_blocked(&room, ParticipantId::from("alice"), MediaKind::Audio, false)
        .await
        .unwrap();
    tokio::time::timeout(PATIENCE, tap.recv())
        .await
        .expect("audio reaches the tap after unblocking")
        .unwrap();

    // A second tap receives the same packets, and closing the first leaves it running.
    let mut second = sfu.tap_audio(&room).await.unwrap();
    let copied = tokio::time::timeout(PATIENCE, second.recv())
        .await
        .expect("audio reaches the second tap")
        .unwrap();
    let mut found = false;
    while let Ok(Some(packet)) = tokio::time::timeout(PATIENCE, tap.recv()).await {
        if packet.sequence_number == copied.sequence_number {
            found = true;
            break;
        }
    }
    assert!(found, "the first tap missed a packet the second got");
    drop(tap);
    for _ in 0..5 {
        tokio::time::timeout(PATIENCE, second.recv())
            .await
            .expect("audio reaches the second tap after the first closed")
            .unwrap();
    }

    drop(second);
    media.abort();
    sfu.shutdown().await;
}

#[tokio::test]
async fn tapping_unknown_room_fails() {
    let (sfu, _events) = Sfu::start(SfuConfig {
        shards: 1,
        ..SfuConfig::default()
    })
    .await
    .unwrap();
    let error = sfu.tap_audio(&RoomId::from("nowhere")).await.unwrap_err();
    assert!(matches!(error, SfuError::RoomNotFound(_)), "{error}");
    sfu.shutdown().await;
}
