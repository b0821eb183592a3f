//! Local tracks: packets the caller writes reach real `webrtc` subscribers, keyframe
//! requests come back to the caller, and dropping the handle unpublishes the track.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, is_vp8_keyframe, join, join_client, start_room, vp8_frame, wait_for};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use sfu::{
    LocalCodec, LocalPacket, LocalTrack, LocalTrackOptions, MediaKind, ParticipantId, Rid,
    SfuEvent, TrackId,
};

fn local_id(mid: &str) -> TrackId {
    TrackId {
        publisher: ParticipantId::from("local-source"),
        mid: mid.to_owned(),
    }
}

/// Writes an Opus-like payload carrying its number every 20 ms until aborted.
fn spawn_audio_writer(track: Arc<LocalTrack>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for number in 0u32.. {
            let mut payload = vec![0xf8, 0xff, 0xfe];
            payload.extend_from_slice(&number.to_be_bytes());
            let packet = LocalPacket {
                layer: 0,
                sequence_number: None,
                timestamp: number.wrapping_mul(960),
                marker: false,
                payload: payload.into(),
                audio_level: None,
            };
            if track.write(packet).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_audio_reaches_only_its_subscriber() {
    let (sfu, room, clients, seen) = start_room().await;
    let listener = join(&sfu, &room, &clients, "listener", false).await;
    let bystander = join(&sfu, &room, &clients, "bystander", false).await;

    let options = LocalTrackOptions {
        kind: MediaKind::Audio,
        codec: LocalCodec::opus(),
        rids: Vec::new(),
        auto_subscribe: false,
        tap_audio: false,
    };
    let track = Arc::new(
        sfu.publish_local(&room, local_id("mix"), options.clone())
            .await
            .expect("local track published"),
    );
    let duplicate = sfu.publish_local(&room, local_id("mix"), options).await;
    assert!(
        matches!(duplicate, Err(sfu::SfuError::TrackExists(_))),
        "a second track with the same id must be rejected"
    );
    sfu.subscribe(&room, ParticipantId::from("listener"), local_id("mix"))
        .await
        .expect("subscribed to the local track");
    let writer = spawn_audio_writer(Arc::clone(&track));

    let receiving = Arc::clone(&listener);
    wait_for("50 local audio packets at the listener", move || {
        receiving.counts().1 >= 50
    })
    .await;
    let numbers: Vec<u32> = listener
        .received
        .lock()
        .unwrap()
        .audio
        .iter()
        .map(|payload| {
            assert_eq!(
                &payload[..3],
                &[0xf8, 0xff, 0xfe],
                "payload changed on the way"
            );
            u32::from_be_bytes([payload[3], payload[4], payload[5], payload[6]])
        })
        .collect();
    assert!(
        numbers.windows(2).all(|pair| pair[0] < pair[1]),
        "packets out of order: {numbers:?}"
    );
    assert_eq!(
        bystander.counts(),
        (0, 0),
        "an unsubscribed member got media"
    );
    let published = seen.lock().unwrap().iter().any(|event| {
        matches!(event, SfuEvent::TrackPublished { track, .. } if track.id == local_id("mix"))
    });
    assert!(published, "no TrackPublished event for the local track");

    writer.abort();
    let _ = writer.await;
    drop(Arc::into_inner(track).expect("writer task released the handle"));
    let unpublished = Arc::clone(&seen);
    wait_for("TrackUnpublished after dropping the handle", move || {
        unpublished.lock().unwrap().iter().any(|event| {
            matches!(event, SfuEvent::TrackUnpublished { track, .. } if *track == local_id("mix"))
        })
    })
    .await;
    let stats = sfu.stats().await.unwrap();
    assert_eq!(
        stats.subscriptions, 0,
        "the listener's subscription remained"
    );
    sfu.shutdown().await;
}

/// Payload of a two-layer simulcast frame: the VP8 frame with its layer in the last byte.
fn layered_frame(number: u32, layer: usize, keyframe: bool) -> Vec<u8> {
    let mut payload = vp8_frame(number, keyframe);
    payload.push(layer as u8);
    payload
}

/// Writes one frame on each of two layers every 33 ms, like a relay of a simulcast
/// publisher, until `done` holds. A keyframe request is answered with a keyframe on the
/// requested layer in the next frame. Returns the requested layers in order.
async fn write_frames_until(
    track: &mut LocalTrack,
    number: &mut u32,
    mut done: impl FnMut() -> bool,
) -> Vec<usize> {
    let mut requested = Vec::new();
    let deadline = std::time::Instant::now() + common::PATIENCE;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out writing frames; keyframes requested for layers {requested:?}"
        );
        let mut keyframes = Vec::new();
        while let Ok(request) = track.keyframe_requests().try_recv() {
            requested.push(request.layer);
            keyframes.push(request.layer);
        }
        for layer in 0..2 {
            let keyframe = keyframes.contains(&layer);
            track
                .write(LocalPacket {
                    layer,
                    sequence_number: None,
                    timestamp: number.wrapping_mul(3000),
                    marker: true,
                    payload: layered_frame(*number, layer, keyframe).into(),
                    audio_level: None,
                })
                .unwrap();
        }
        *number += 1;
        tokio::time::sleep(Duration::from_millis(33)).await;
    }
    requested
}

/// Layer of each received video payload, from its last byte.
fn received_layers(client: &Client) -> Vec<u8> {
    let received = client.received.lock().unwrap();
    received
        .video
        .iter()
        .map(|payload| *payload.last().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_simulcast_video_with_keyframe_requests() {
    let (sfu, room, clients, _seen) = start_room().await;
    let options = LocalTrackOptions {
        kind: MediaKind::Video,
        codec: LocalCodec::vp8(),
        rids: vec![Rid::from("q"), Rid::from("f")],
        auto_subscribe: true,
        tap_audio: false,
    };
    let mut track = sfu
        .publish_local(&room, local_id("relayed-video"), options)
        .await
        .expect("local track published");

    // A member joining later is subscribed automatically and waits for a keyframe.
    let viewer = Client::empty().await;
    viewer.receive(RtpCodecKind::Audio).await;
    viewer.receive(RtpCodecKind::Video).await;
    let (viewer, _) = join_client(&sfu, &room, &clients, "viewer", viewer).await;

    let mut number = 0u32;
    let watching = Arc::clone(&viewer);
    let requested = write_frames_until(&mut track, &mut number, move || {
        received_layers(&watching)
            .iter()
            .filter(|layer| **layer == 1)
            .count()
            >= 20
    })
    .await;
    assert!(
        requested.contains(&1),
        "no keyframe request for the top layer: {requested:?}"
    );
    {
        let received = viewer.received.lock().unwrap();
        assert!(
            is_vp8_keyframe(&received.video[0]),
            "first forwarded frame is not a keyframe"
        );
        let first_top = received
            .video
            .iter()
            .position(|payload| payload.last() == Some(&1))
            .unwrap();
        assert!(
            is_vp8_keyframe(&received.video[first_top]),
            "top layer did not start at a keyframe"
        );
    }

    // Capping the viewer at the lowest layer asks the caller for a keyframe of it.
    sfu.set_max_layer(
        &room,
        ParticipantId::from("viewer"),
        local_id("relayed-video"),
        0,
    )
    .await
    .unwrap();
    let before = viewer.counts().0;
    let watching = Arc::clone(&viewer);
    let requested = write_frames_until(&mut track, &mut number, move || {
        received_layers(&watching)[before..]
            .iter()
            .filter(|layer| **layer == 0)
            .count()
            >= 20
    })
    .await;
    assert_eq!(
        requested,
        vec![0],
        "layer switch must request the lowest layer once"
    );
    let received = viewer.received.lock().unwrap().video.clone();
    let switched = &received[before..];
    let first_low = switched
        .iter()
        .position(|payload| payload.last() == Some(&0))
        .unwrap();
    assert!(
        is_vp8_keyframe(&switched[first_low]),
        "switch did not start at a keyframe"
    );
    assert!(
        switched[first_low..]
            .iter()
            .all(|payload| payload.last() == Some(&0)),
        "top layer forwarded after the switch"
    );
    sfu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tapped_local_audio_reaches_audio_taps() {
    let (sfu, room, _clients, _seen) = start_room().await;
    let mut tap = sfu.tap_audio(&room).await.expect("audio tap");
    let options = LocalTrackOptions {
        kind: MediaKind::Audio,
        codec: LocalCodec::opus(),
        rids: Vec::new(),
        auto_subscribe: true,
        tap_audio: true,
    };
    let relayed = Arc::new(
        sfu.publish_local(&room, local_id("relayed"), options.clone())
            .await
            .expect("tapped track published"),
    );
    let untapped = Arc::new(
        sfu.publish_local(
            &room,
            local_id("mix"),
            LocalTrackOptions {
                tap_audio: false,
                ..options
            },
        )
        .await
        .expect("untapped track published"),
    );
    let writers = [
        spawn_audio_writer(Arc::clone(&relayed)),
        spawn_audio_writer(Arc::clone(&untapped)),
    ];

    let mut copies = Vec::new();
    while copies.len() < 20 {
        let copy = tokio::time::timeout(Duration::from_secs(10), tap.recv())
            .await
            .expect("a tapped packet within 10 s")
            .expect("the tap stays open");
        copies.push(copy);
    }
    for copy in &copies {
        assert_eq!(copy.publisher, local_id("relayed").publisher);
        assert_eq!(copy.ssrc, copies[0].ssrc, "one SSRC per tapped track");
    }
    // The payloads carry the writer's consecutive numbers: nothing of the
    // untapped track, written at the same time, is among them.
    let numbers: Vec<u32> = copies
        .iter()
        .map(|copy| u32::from_be_bytes(copy.payload[3..7].try_into().unwrap()))
        .collect();
    assert!(
        numbers.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "the tap mixed in other packets: {numbers:?}"
    );
    for writer in writers {
        writer.abort();
    }
}
