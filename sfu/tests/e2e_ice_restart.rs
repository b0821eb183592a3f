//! ICE restart: a subscriber restarts ICE with a new offer (new ufrag and password) while
//! it receives video. Its ICE agent checks and connects again, and video keeps arriving.
//!
//! NOTE: the subscriber keeps its address, so this does not show that a restart from a
//! new address (a network change) is routed to the participant.

mod common;

use std::sync::Arc;

use common::{join, spawn_media, start_room, wait_for};
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::peer_connection::sdp::RTCSessionDescription;
use sfu::ParticipantId;
use webrtc::peer_connection::RTCIceConnectionState;

fn ice_ufrag(sdp: &str) -> &str {
    sdp.lines()
        .find_map(|line| line.strip_prefix("a=ice-ufrag:"))
        .expect("SDP has an ICE ufrag")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_continues_after_ice_restart() {
    let (sfu, room, clients, seen) = start_room().await;
    let publisher = join(&sfu, &room, &clients, "publisher", true).await;
    let viewer = join(&sfu, &room, &clients, "viewer", false).await;
    let (media, _) = spawn_media(Arc::clone(&publisher), 10);
    let receiving = Arc::clone(&viewer);
    wait_for("video before the restart", move || {
        receiving.counts().0 >= 10
    })
    .await;
    let first_offer = viewer.pc.local_description().await.unwrap().sdp;

    let states_before = viewer.ice_states.lock().unwrap().len();
    let options = RTCOfferOptions { ice_restart: true };
    let offer = viewer.pc.create_offer(Some(options)).await.unwrap();
    viewer
        .pc
        .set_local_description(offer.clone())
        .await
        .unwrap();
    assert_ne!(
        ice_ufrag(&offer.sdp),
        ice_ufrag(&first_offer),
        "offer is no ICE restart"
    );
    let answer = sfu
        .renegotiate(&room, ParticipantId::from("viewer"), offer.sdp)
        .await
        .expect("restart offer accepted");
    viewer
        .pc
        .set_remote_description(RTCSessionDescription::answer(answer).unwrap())
        .await
        .unwrap();

    let restarting = Arc::clone(&viewer);
    wait_for("ICE to check and connect again", move || {
        let states = restarting.ice_states.lock().unwrap();
        let after = &states[states_before..];
        let checking = after
            .iter()
            .position(|s| *s == RTCIceConnectionState::Checking);
        let connected = after
            .iter()
            .rposition(|s| *s == RTCIceConnectionState::Connected);
        matches!((checking, connected), (Some(c), Some(d)) if c < d)
    })
    .await;
    assert!(
        !viewer.ice_states.lock().unwrap()[states_before..]
            .contains(&RTCIceConnectionState::Failed),
        "ICE failed during the restart"
    );

    let before = viewer.counts().0;
    let receiving = Arc::clone(&viewer);
    wait_for("60 more video packets after the restart", move || {
        receiving.counts().0 >= before + 60
    })
    .await;
    media.abort();

    let disconnected = seen
        .lock()
        .unwrap()
        .iter()
        .any(|event| matches!(event, sfu::SfuEvent::ParticipantDisconnected { .. }));
    assert!(
        !disconnected,
        "a participant was dropped during the restart"
    );
    assert_eq!(sfu.stats().await.unwrap().participants, 2);
    sfu.shutdown().await;
}
