//! Blocking one kind of a publisher's media, end to end: while its audio is blocked no
//! subscriber receives any, its video goes on, and unblocking resumes the audio.

mod common;

use std::sync::Arc;

use common::{Client, Clients, join, spawn_event_pump, spawn_media, wait_for};
use sfu::{MediaKind, ParticipantId, RoomId, RoomOptions, Sfu, SfuConfig, SfuError};

/// Waits until the client has received `more` video packets beyond `from`.
async fn wait_for_video(client: &Arc<Client>, from: usize, more: usize) {
    let waiting = Arc::clone(client);
    wait_for(&format!("{more} more video packets"), move || {
        waiting.counts().0 >= from + more
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_audio_stops_while_video_goes_on() {
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
    let alice = join(&sfu, &room, &clients, "alice", true).await;
    let bob = join(&sfu, &room, &clients, "bob", false).await;
    let carol = join(&sfu, &room, &clients, "carol", false).await;
    let (media, _) = spawn_media(Arc::clone(&alice), 10);
    for subscriber in [&bob, &carol] {
        let subscriber = Arc::clone(subscriber);
        wait_for("audio and video before the block", move || {
            let (video, audio) = subscriber.counts();
            video >= 20 && audio >= 20
        })
        .await;
    }

    sfu.set_blocked(&room, ParticipantId::from("alice"), MediaKind::Audio, true)
        .await
        .unwrap();
    // Packets forwarded before the block may still be on their way; let them land.
    for subscriber in [&bob, &carol] {
        wait_for_video(subscriber, subscriber.counts().0, 30).await;
    }
    let audio_after_block: Vec<usize> = [&bob, &carol].iter().map(|c| c.counts().1).collect();
    for subscriber in [&bob, &carol] {
        wait_for_video(subscriber, subscriber.counts().0, 60).await;
    }
    for (subscriber, before) in [&bob, &carol].iter().zip(&audio_after_block) {
        assert_eq!(
            subscriber.counts().1,
            *before,
            "audio arrived while blocked"
        );
    }

    sfu.set_blocked(&room, ParticipantId::from("alice"), MediaKind::Audio, false)
        .await
        .unwrap();
    for (subscriber, before) in [&bob, &carol].iter().zip(&audio_after_block) {
        let subscriber = Arc::clone(subscriber);
        let before = *before;
        wait_for("audio after unblocking", move || {
            subscriber.counts().1 >= before + 20
        })
        .await;
    }
    media.abort();
    sfu.shutdown().await;
}

#[tokio::test]
async fn blocking_unknown_participant_fails() {
    let (sfu, _events) = Sfu::start(SfuConfig {
        shards: 1,
        ..SfuConfig::default()
    })
    .await
    .unwrap();
    let room = RoomId::from("room");
    sfu.create_room(room.clone(), RoomOptions::default())
        .await
        .unwrap();
    let result = sfu
        .set_blocked(&room, ParticipantId::from("nobody"), MediaKind::Audio, true)
        .await;
    assert!(
        matches!(result, Err(SfuError::ParticipantNotFound(_))),
        "{result:?}"
    );
    sfu.shutdown().await;
}
