//! Many subscribers join and leave while a publisher streams. Afterwards the engine holds
//! only the publisher, and the process has no more open files and tasks than after the
//! first cycle. The long variant also checks that resident memory stops growing.
//!
//! The long variant is ignored by default. Run it with
//! `cargo test -p sfu --release --test e2e_churn -- --ignored`, and set
//! `SFU_CHURN_CYCLES` to change its 2000 cycles.

mod common;

use std::sync::Arc;

use common::{Clients, join, open_fds, spawn_event_pump, spawn_media, wait_for};
use sfu::{ParticipantId, RoomId, RoomOptions, Sfu, SfuConfig};

/// Cycles of the default (CI) run.
const SHORT_CYCLES: usize = 25;

/// Cycles of the long run unless `SFU_CHURN_CYCLES` is set.
const LONG_CYCLES: usize = 2000;

/// Resident memory the second half of the long run may add, in bytes. A leak of more than
/// 16 KiB per cycle exceeds it over the 1000 cycles of the default second half.
const MAX_SECOND_HALF_GROWTH: usize = 16 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leave_churn_frees_peers() {
    churn(SHORT_CYCLES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes minutes; run with --ignored"]
async fn long_churn_stays_bounded() {
    let cycles = std::env::var("SFU_CHURN_CYCLES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(LONG_CYCLES);
    let rss = churn(cycles).await;
    let growth = rss.end.saturating_sub(rss.half);
    assert!(
        growth <= MAX_SECOND_HALF_GROWTH,
        "resident memory grew by {growth} bytes over the second half ({} to {})",
        rss.half,
        rss.end
    );
}

/// Resident memory in the middle and at the end of a churn run, in bytes.
struct Rss {
    half: usize,
    end: usize,
}

/// Runs `cycles` join/leave cycles and checks engine state, file descriptors and tasks.
async fn churn(cycles: usize) -> Rss {
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
    let mut tasks_after_first = 0;
    let mut rss_half = 0;
    for cycle in 0..cycles {
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
            tasks_after_first = alive_tasks();
        }
        if cycle == cycles / 2 {
            rss_half = resident_bytes();
        }
        if cycle % 100 == 99 {
            tracing::info!(
                cycle,
                rss = resident_bytes(),
                tasks = alive_tasks(),
                "churn"
            );
        }
    }

    let after = sfu.stats().await.unwrap();
    assert_eq!(
        after, baseline,
        "engine state differs from before the churn"
    );
    assert_eq!(after.participants, 1);
    assert_eq!(after.subscriptions, 0);

    // Closed client connections release their sockets and tasks asynchronously.
    wait_for("file descriptors back to the first cycle's count", || {
        open_fds() <= fds_after_first
    })
    .await;
    wait_for("tasks back to the first cycle's count", || {
        alive_tasks() <= tasks_after_first
    })
    .await;
    let end = resident_bytes();

    media.abort();
    sfu.shutdown().await;
    Rss {
        half: rss_half,
        end,
    }
}

/// Tasks alive in the test's runtime: the engine's shard tasks and the clients' tasks.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Resident set size of this process from `/proc/self/statm`, in bytes, assuming 4 KiB
/// pages (0 if unreadable).
fn resident_bytes() -> usize {
    const PAGE_SIZE: usize = 4096;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * PAGE_SIZE)
}
