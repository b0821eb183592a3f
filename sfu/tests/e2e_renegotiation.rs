//! Renegotiation: a participant that joined with video only adds audio with a new offer.
//! The audio track is published and its audio level extension, whose id comes from the
//! second offer, drives active speaker detection.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, Clients, OPUS_PT, local_track, spawn_event_pump, wait_for};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp;
use rtc::rtp::extension::HeaderExtension;
use rtc::rtp::extension::audio_level_extension::AudioLevelExtension;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use sfu::{MediaKind, ParticipantId, RoomId, RoomOptions, Sfu, SfuConfig, SfuEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_added_by_renegotiation_drives_speaker() {
    common::init_tracing();
    let (sfu, events) = Sfu::start(SfuConfig {
        shards: 1,
        ..SfuConfig::default()
    })
    .await
    .unwrap();
    let room = RoomId::from("renegotiation");
    sfu.create_room(room.clone(), RoomOptions::default())
        .await
        .unwrap();
    let clients = Clients::default();
    let seen = spawn_event_pump(sfu.clone(), room.clone(), Arc::clone(&clients), events);
    let alice_id = ParticipantId::from("alice");

    // First offer: video only.
    let alice = Arc::new(Client::empty().await);
    clients
        .lock()
        .unwrap()
        .insert(alice_id.clone(), Arc::clone(&alice));
    local_track(&*alice.pc, RtpCodecKind::Video, MIME_TYPE_VP8, 90_000, 0).await;
    let answer = sfu
        .join(&room, alice_id.clone(), alice.offer().await)
        .await
        .unwrap();
    alice.apply_answer(answer).await;
    let connecting = Arc::clone(&alice);
    wait_for("alice to connect", move || connecting.is_connected()).await;

    let published_kinds = |seen: &[SfuEvent]| -> Vec<MediaKind> {
        seen.iter()
            .filter_map(|event| match event {
                SfuEvent::TrackPublished { track, .. } => Some(track.kind),
                _ => None,
            })
            .collect()
    };
    let watching = Arc::clone(&seen);
    wait_for("the video track to be published", move || {
        published_kinds(&watching.lock().unwrap()) == [MediaKind::Video]
    })
    .await;

    // Second offer adds audio.
    let (audio, audio_ssrc) =
        local_track(&*alice.pc, RtpCodecKind::Audio, MIME_TYPE_OPUS, 48_000, 2).await;
    let answer = sfu
        .renegotiate(&room, alice_id.clone(), alice.offer().await)
        .await
        .unwrap();
    alice.apply_answer(answer).await;
    let watching = Arc::clone(&seen);
    wait_for("the audio track to be published", move || {
        published_kinds(&watching.lock().unwrap()) == [MediaKind::Video, MediaKind::Audio]
    })
    .await;

    // Loud speech: level 20 dBov with voice activity, every 20 ms.
    let sender = tokio::spawn(async move {
        for number in 0u32.. {
            let packet = rtp::Packet {
                header: rtp::Header {
                    version: 2,
                    payload_type: OPUS_PT,
                    sequence_number: number as u16,
                    timestamp: number.wrapping_mul(960),
                    ssrc: audio_ssrc,
                    ..Default::default()
                },
                payload: vec![0xf8, 0xff, 0xfe].into(),
            };
            let level = HeaderExtension::AudioLevel(AudioLevelExtension {
                level: 20,
                voice: true,
            });
            let _ = audio.write_rtp_with_extensions(packet, &[level]).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    let watching = Arc::clone(&seen);
    wait_for("alice to become the active speaker", move || {
        watching.lock().unwrap().iter().any(|event| {
            matches!(event, SfuEvent::ActiveSpeakerChanged { participant, .. }
                if participant.0 == "alice")
        })
    })
    .await;
    sender.abort();
    sfu.shutdown().await;
}
