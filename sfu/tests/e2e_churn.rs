//! Many subscribers join and leave while a publisher streams. Afterwards the engine holds
//! only the publisher, and the process has no more open files than after the first cycle.

mod common;

use std::sync::Arc;

use common::{Clients, join, open_fds, spawn_event_pump, spawn_media, wait_for};
use sfu::{ParticipantId, RoomId, RoomOptions, Sfu, SfuConfig};

const CYCLES: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leave_churn_frees_peers() {
    common::init_tracing();
    let (sfu, events) = Sfu::start(SfuConfig {
        shards: 2,
        ..SfuConfig::default()
    })
    .await
    .unwrap();
    let room = RoomId::from("churn");
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
    let publisher = join(&sfu, &room, &clients, "publisher", true).await;
    let (media, _) = spawn_media(Arc::clone(&publisher), 5);
    let baseline = sfu.stats().await.unwrap();

    let mut fds_after_first = 0;
    for cycle in 0..CYCLES {
        let name = format!("viewer-{cycle}");
        let viewer = join(&sfu, &room, &clients, &name, false).await;
        let receiving = Arc::clone(&viewer);
        wait_for("video at the viewer", move || receiving.counts().0 > 0).await;

        viewer.pc.close().await.unwrap();
        sfu.leave(&room, ParticipantId::from(name.as_str()))
            .await
            .unwrap();
        clients
            .lock()
            .unwrap()
            .remove(&ParticipantId::from(name.as_str()));
        drop(viewer);
        if cycle == 0 {
            fds_after_first = open_fds();
        }
    }

    let after = sfu.stats().await.unwrap();
    assert_eq!(
        after, baseline,
        "engine state differs from before the churn"
    );
    assert_eq!(after.participants, 1);
    assert_eq!(after.subscriptions, 0);

    // Closed client connections release their sockets asynchronously.
    wait_for("file descriptors back to the first cycle's count", || {
        open_fds() <= fds_after_first
    })
    .await;

    media.abort();
    sfu.shutdown().await;
}
