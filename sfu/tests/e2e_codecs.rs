//! Room codec policy end to end: `webrtc` client peers with different video codec sets.
//! A publisher's answer keeps only codecs every other member decodes, and a member that
//! cannot decode an already published track gets `SfuEvent::TrackUndecodable` instead of a
//! subscription.

mod common;

use std::sync::Arc;

use common::{Client, join_client, spawn_media, start_room, wait_for};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_VP8, MIME_TYPE_VP9,
};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use sfu::forward::codec::VideoCodec;
use sfu::{ParticipantId, SfuEvent};

/// Returns the video media section of an SDP, from its `m=` line to the next one.
fn video_section(sdp: &str) -> &str {
    sdp.split("m=")
        .find(|section| section.starts_with("video"))
        .expect("SDP has a video section")
}

fn undecodable_events(seen: &std::sync::Mutex<Vec<SfuEvent>>) -> Vec<SfuEvent> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|event| matches!(event, SfuEvent::TrackUndecodable { .. }))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_answer_keeps_common_codecs() {
    let (sfu, room, clients, seen) = start_room().await;
    // Like Firefox here: VP8 and VP9, no H.264.
    let viewer = Client::with_video_codecs(&[MIME_TYPE_VP8, MIME_TYPE_VP9], None).await;
    let (viewer, _) = join_client(&sfu, &room, &clients, "viewer", viewer).await;

    // The publisher prefers H.264, which the viewer cannot decode.
    let publisher =
        Client::with_video_codecs(&[MIME_TYPE_H264, MIME_TYPE_VP8], Some(MIME_TYPE_VP8)).await;
    let (publisher, answer) = join_client(&sfu, &room, &clients, "publisher", publisher).await;
    let video = video_section(&answer);
    assert!(video.contains("VP8/90000"), "answer lacks VP8: {video}");
    assert!(!video.contains("H264/90000"), "answer keeps H.264: {video}");

    let (media, sent) = spawn_media(Arc::clone(&publisher), 10);
    let receiving = Arc::clone(&viewer);
    wait_for("20 video packets at the viewer", move || {
        receiving.counts().0 >= 20
    })
    .await;
    media.abort();

    let sent = sent.lock().unwrap().clone();
    for payload in &viewer.received.lock().unwrap().video {
        assert!(sent.contains(payload), "payload changed in transit");
    }
    assert_eq!(undecodable_events(&seen), Vec::new());
    sfu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_member_gets_event() {
    let (sfu, room, clients, seen) = start_room().await;
    let publisher = Client::with_video_codecs(&[MIME_TYPE_H264], Some(MIME_TYPE_H264)).await;
    let (publisher, _) = join_client(&sfu, &room, &clients, "publisher", publisher).await;
    let (media, _) = spawn_media(Arc::clone(&publisher), 10);

    let h264_viewer = Client::with_video_codecs(&[MIME_TYPE_H264], None).await;
    let (h264_viewer, _) = join_client(&sfu, &room, &clients, "h264", h264_viewer).await;
    let vp8_viewer = Client::with_video_codecs(&[MIME_TYPE_VP8], None).await;
    let (vp8_viewer, _) = join_client(&sfu, &room, &clients, "vp8", vp8_viewer).await;

    let receiving = Arc::clone(&h264_viewer);
    wait_for("H.264 video at the H.264 viewer", move || {
        receiving.counts().0 >= 20
    })
    .await;
    let receiving = Arc::clone(&vp8_viewer);
    wait_for("audio at the VP8 viewer", move || {
        receiving.counts().1 >= 20
    })
    .await;
    media.abort();

    assert_eq!(vp8_viewer.counts().0, 0, "undecodable video was forwarded");
    let events = undecodable_events(&seen);
    assert_eq!(events.len(), 1, "events: {events:?}");
    let SfuEvent::TrackUndecodable {
        subscriber,
        track,
        codec,
        ..
    } = &events[0]
    else {
        unreachable!();
    };
    assert_eq!(*subscriber, ParticipantId::from("vp8"));
    assert_eq!(track.publisher, ParticipantId::from("publisher"));
    assert_eq!(*codec, VideoCodec::H264);

    // Audio and video for the H.264 viewer, audio only for the VP8 viewer.
    assert_eq!(sfu.stats().await.unwrap().subscriptions, 3);
    sfu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_rejecting_codec_gets_event() {
    let (sfu, room, clients, seen) = start_room().await;
    let publisher = Client::with_video_codecs(&[MIME_TYPE_H264], Some(MIME_TYPE_H264)).await;
    let (publisher, _) = join_client(&sfu, &room, &clients, "publisher", publisher).await;
    let (media, _) = spawn_media(Arc::clone(&publisher), 10);

    // It offers only audio, so the engine learns that it lacks H.264 from its answer.
    let viewer = Client::empty_with_video_codecs(&[MIME_TYPE_VP8]).await;
    viewer.receive(RtpCodecKind::Audio).await;
    let (viewer, _) = join_client(&sfu, &room, &clients, "viewer", viewer).await;

    let watching = Arc::clone(&seen);
    wait_for("an undecodable track event", move || {
        !undecodable_events(&watching).is_empty()
    })
    .await;
    let receiving = Arc::clone(&viewer);
    wait_for("audio at the viewer", move || receiving.counts().1 >= 20).await;
    media.abort();

    let events = undecodable_events(&seen);
    assert_eq!(events.len(), 1, "events: {events:?}");
    let SfuEvent::TrackUndecodable {
        subscriber, codec, ..
    } = &events[0]
    else {
        unreachable!();
    };
    assert_eq!(*subscriber, ParticipantId::from("viewer"));
    assert_eq!(*codec, VideoCodec::H264);
    assert_eq!(viewer.counts().0, 0, "undecodable video was forwarded");
    // Only the audio subscription is left.
    assert_eq!(sfu.stats().await.unwrap().subscriptions, 1);
    sfu.shutdown().await;
}
