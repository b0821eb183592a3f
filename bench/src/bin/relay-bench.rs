//! Relay benchmark: one simulcast publisher on an origin engine and N receive-only
//! subscribers, either all on the origin or spread over D destination engines that each
//! receive the track over one relay (`Sfu::join_relay` on the origin, `RelayReceiver` on
//! the destination). One invocation is one run; it prints a summary row and one row per
//! engine as Markdown tables.
//!
//! Every engine and every relay receiver runs alone on a current-thread runtime of its
//! own thread, so their CPU times are read apart (`/proc/self/task/TID/stat`). The
//! clients (the publisher and the subscribers of the SFU comparison) share a runtime
//! with two worker threads. Usage:
//!
//! ```text
//! cargo run --release -p dangwu-bench --bin relay-bench -- --destinations 1 --subscribers 20
//! ```
//!
//! NOTE: delay runs from the publisher's `write_rtp` call to the subscriber's track
//! event, through both client stacks in this process, so it is an upper bound for the
//! engines' own delay. All threads share the machine's cores unpinned.

#[path = "../../../sfu/tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "sfu-compare/peers.rs"]
mod peers;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use futures_util::StreamExt;
use peers::{Publisher, SendLog, Subscriber};
use sfu::{ParticipantId, RelayReceiver, RoomId, RoomOptions, Sfu, SfuConfig, SfuEvent, TrackId};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// Generous limit for a peer to connect or a relayed track to appear, not a speed check.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Time the publisher streams before the relays open, so every layer is active.
const PUBLISHER_WARMUP: Duration = Duration::from_secs(2);
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[derive(Parser)]
#[command(about = "One relay run: a simulcast publisher on an origin engine and N subscribers")]
struct Args {
    /// Destination engines, each fed by one relay from the origin. With 0 every
    /// subscriber joins the origin itself.
    #[arg(long, default_value_t = 1)]
    destinations: usize,
    /// Receive-only subscribers, spread round-robin over the destination engines.
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Subscribers joining at the same time.
    #[arg(long, default_value_t = 8)]
    join_concurrency: usize,
    /// Seconds of streaming to all subscribers before the measured window.
    #[arg(long, default_value_t = 3)]
    warmup_s: u64,
    /// Seconds of the measured window.
    #[arg(long, default_value_t = 10)]
    measure_s: u64,
    /// Print the table headers and exit.
    #[arg(long)]
    header: bool,
}

/// A thread with a current-thread runtime of its own, for one engine or one relay
/// receiver: tasks spawned on `handle`, and the tasks they spawn, run only there.
struct Worker {
    handle: Handle,
    stat_path: String,
}

impl Worker {
    fn start(name: &str) -> anyhow::Result<Worker> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("worker runtime");
                let task = std::fs::read_link("/proc/thread-self").expect("thread id");
                let stat_path = format!("/proc/{}/stat", task.display());
                ready_tx
                    .send((runtime.handle().clone(), stat_path))
                    .expect("bench alive");
                runtime.block_on(std::future::pending::<()>());
            })
            .with_context(|| format!("starting thread {name}"))?;
        let (handle, stat_path) = ready_rx.recv().context("worker thread started")?;
        Ok(Worker { handle, stat_path })
    }

    /// Runs `future` on this worker's runtime and returns its output.
    async fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> anyhow::Result<T> {
        self.handle
            .spawn(future)
            .await
            .context("task on a worker thread failed")
    }

    fn cpu_seconds(&self) -> anyhow::Result<f64> {
        stat_cpu_seconds(&self.stat_path)
    }
}

/// The peer that returns the SDP answer to an engine's offers to one participant.
#[derive(Clone)]
enum Answerer {
    Subscriber(Arc<Subscriber>),
    /// A relay receiver, which creates its answers on its own worker.
    Relay(Arc<RelayReceiver>, Handle),
}

type Answerers = Arc<Mutex<HashMap<ParticipantId, Answerer>>>;

/// One engine on its worker, with its subscribers and (on a destination) its relay.
struct Engine {
    name: String,
    sfu: Sfu,
    worker: Worker,
    answerers: Answerers,
    relay: Option<(Arc<RelayReceiver>, Worker)>,
    subscribers: Vec<Arc<Subscriber>>,
}

/// CPU and packet counts of one engine over the measured window.
struct Window {
    engine_cpu: f64,
    relay_cpu: f64,
    relayed_packets: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.header {
        print_headers();
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(&args))?;
    // The peers' background tasks are not shut down one by one, so the process ends here.
    std::process::exit(0);
}

fn print_headers() {
    println!(
        "| destinations | subscribers | packets sent on layer 2 | packets forwarded | loss | delay p50 | delay p99 | CPU of all engines and receivers | CPU of the clients |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!();
    println!(
        "| engine | subscribers | engine CPU | packets over relays | packets forwarded on layer 2 | loss | engine CPU per packet sent | receiver CPU | receiver CPU per relayed packet |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let room = RoomId::from("bench");
    let (origin, mut origin_events) = start_engine("origin", &room).await?;
    let mut destinations = Vec::new();
    for index in 0..args.destinations {
        destinations.push(start_engine(&format!("engine-{index}"), &room).await?);
    }

    let publisher = Arc::new(Publisher::new("127.0.0.1").await?);
    let offer = publisher.offer().await?;
    let answer = origin
        .sfu
        .join(&room, ParticipantId::from("publisher"), offer)
        .await?;
    publisher.apply_answer(answer).await?;
    wait_until("the publisher to connect", || publisher.is_connected()).await?;
    let log = Arc::new(Mutex::new(SendLog::default()));
    let sending = tokio::spawn(Arc::clone(&publisher).send(Arc::clone(&log)));
    let track: TrackId = loop {
        match tokio::time::timeout(CONNECT_TIMEOUT, origin_events.recv()).await {
            Ok(Some(SfuEvent::TrackPublished { track, .. })) => break track.id,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => bail!("the publisher's track was not published"),
        }
    };
    spawn_event_pump(
        origin.sfu.clone(),
        room.clone(),
        Arc::clone(&origin.answerers),
        origin_events,
    );
    tokio::time::sleep(PUBLISHER_WARMUP).await;
    eprintln!("publisher connected and sending track {track}");

    let mut engines = vec![origin];
    for (index, (mut engine, events)) in destinations.into_iter().enumerate() {
        spawn_event_pump(
            engine.sfu.clone(),
            room.clone(),
            Arc::clone(&engine.answerers),
            events,
        );
        let receiver_worker = Worker::start(&format!("relay-{index}"))?;
        let (sfu, relay_room) = (engine.sfu.clone(), room.clone());
        let (receiver, offer) = receiver_worker
            .run(async move { RelayReceiver::start(sfu, relay_room, LOOPBACK).await })
            .await??;
        let receiver = Arc::new(receiver);
        let relay = ParticipantId::from(format!("relay-to-{}", engine.name).as_str());
        engines[0].answerers.lock().unwrap().insert(
            relay.clone(),
            Answerer::Relay(Arc::clone(&receiver), receiver_worker.handle.clone()),
        );
        let answer = engines[0]
            .sfu
            .join_relay(&room, relay.clone(), offer)
            .await?;
        let accepting = Arc::clone(&receiver);
        receiver_worker
            .run(async move { accepting.accept_answer(answer).await })
            .await??;
        engines[0]
            .sfu
            .subscribe(&room, relay, track.clone())
            .await?;
        let watched = Arc::clone(&receiver);
        wait_until(&format!("the relayed track on {}", engine.name), || {
            watched.stats().tracks == 1
        })
        .await?;
        engine.relay = Some((receiver, receiver_worker));
        engines.push(engine);
    }
    eprintln!("{} relays open", args.destinations);

    let started = Instant::now();
    let first_subscribed = usize::from(args.destinations > 0);
    let placement: Vec<usize> = (0..args.subscribers)
        .map(|index| first_subscribed + index % args.destinations.max(1))
        .collect();
    let joined: Vec<anyhow::Result<(usize, Arc<Subscriber>)>> =
        futures_util::stream::iter(placement.iter().copied().enumerate())
            .map(|(index, engine)| {
                let (target, room) = (&engines[engine], &room);
                async move {
                    let subscriber = subscribe(target, room, index).await?;
                    Ok((engine, subscriber))
                }
            })
            .buffer_unordered(args.join_concurrency.max(1))
            .collect()
            .await;
    for joined in joined {
        let (engine, subscriber) = joined?;
        engines[engine].subscribers.push(subscriber);
    }
    eprintln!(
        "{} subscribers connected in {:.1} s",
        args.subscribers,
        started.elapsed().as_secs_f64()
    );

    tokio::time::sleep(Duration::from_secs(args.warmup_s)).await;
    let first_index = log.lock().unwrap().times.len();
    let before = engines
        .iter()
        .map(measure_engine)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let process_before = stat_cpu_seconds("/proc/self/stat")?;
    tokio::time::sleep(Duration::from_secs(args.measure_s)).await;
    let after = engines
        .iter()
        .map(measure_engine)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let process_cpu = stat_cpu_seconds("/proc/self/stat")? - process_before;
    let last_index = log.lock().unwrap().times.len();
    sending.abort();
    // Packets in flight at the end of the window still count.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let log = log.lock().unwrap();
    let sent_on_layer = (first_index..last_index)
        .filter(|&index| log.layers[index] == 2)
        .count();
    let window = first_index as u64..last_index as u64;
    let measure_s = args.measure_s as f64;
    let relayed_out: u64 = before
        .iter()
        .zip(&after)
        .map(|(before, after)| after.relayed_packets - before.relayed_packets)
        .sum();
    let mut delays = Vec::new();
    let mut engine_rows = Vec::new();
    let mut engines_cpu = 0.0;
    for (index, ((engine, before), after)) in engines.iter().zip(&before).zip(&after).enumerate() {
        let mut forwarded = 0u64;
        for subscriber in &engine.subscribers {
            let arrivals = subscriber.arrivals.lock().unwrap();
            let mut seen = HashSet::new();
            for arrival in arrivals.iter() {
                if arrival.layer != 2
                    || !window.contains(&arrival.index)
                    || !seen.insert(arrival.index)
                {
                    continue;
                }
                forwarded += 1;
                let sent_at = log.times[arrival.index as usize];
                delays.push(arrival.at.saturating_duration_since(sent_at));
            }
        }
        let engine_cpu = after.engine_cpu - before.engine_cpu;
        let relay_cpu = after.relay_cpu - before.relay_cpu;
        engines_cpu += engine_cpu + relay_cpu;
        let expected = sent_on_layer * engine.subscribers.len();
        let loss = if expected == 0 {
            "–".to_owned()
        } else {
            format!(
                "{:.2} %",
                (1.0 - forwarded as f64 / expected as f64) * 100.0
            )
        };
        // The origin sends every relayed packet, a destination receives its share.
        let (relayed, sent) = if index == 0 {
            (relayed_out, forwarded + relayed_out)
        } else {
            let relayed = after.relayed_packets - before.relayed_packets;
            (relayed, forwarded)
        };
        let receiver = if engine.relay.is_some() {
            format!(
                "{} | {:.1} µs",
                percent_of_core(relay_cpu, measure_s),
                relay_cpu * 1e6 / relayed.max(1) as f64
            )
        } else {
            "– | –".to_owned()
        };
        engine_rows.push(format!(
            "| {} | {} | {} | {} | {} | {} | {:.1} µs | {} |",
            engine.name,
            engine.subscribers.len(),
            percent_of_core(engine_cpu, measure_s),
            relayed,
            forwarded,
            loss,
            engine_cpu * 1e6 / sent.max(1) as f64,
            receiver,
        ));
    }
    delays.sort_unstable();
    let percentile = |p: f64| {
        delays
            .get(((delays.len() as f64 * p) as usize).min(delays.len().saturating_sub(1)))
            .map_or(0.0, |delay| delay.as_secs_f64() * 1000.0)
    };
    let forwarded = delays.len();
    let expected = sent_on_layer * args.subscribers;
    let loss = 1.0 - forwarded as f64 / expected.max(1) as f64;
    println!(
        "| {} | {} | {} | {} | {:.2} % | {:.1} ms | {:.1} ms | {} | {} |",
        args.destinations,
        args.subscribers,
        sent_on_layer,
        forwarded,
        loss * 100.0,
        percentile(0.5),
        percentile(0.99),
        percent_of_core(engines_cpu, measure_s),
        percent_of_core(process_cpu - engines_cpu, measure_s),
    );
    println!();
    for row in engine_rows {
        println!("{row}");
    }
    Ok(())
}

/// Starts an engine with one shard on a worker of its own and creates the room.
async fn start_engine(
    name: &str,
    room: &RoomId,
) -> anyhow::Result<(Engine, mpsc::UnboundedReceiver<SfuEvent>)> {
    let worker = Worker::start(name)?;
    let config = SfuConfig {
        shards: 1,
        bind_ip: LOOPBACK,
        ..SfuConfig::default()
    };
    let (sfu, events) = worker.run(Sfu::start(config)).await??;
    let options = RoomOptions {
        auto_subscribe: true,
    };
    sfu.create_room(room.clone(), options).await?;
    let engine = Engine {
        name: name.to_owned(),
        sfu,
        worker,
        answerers: Answerers::default(),
        relay: None,
        subscribers: Vec::new(),
    };
    Ok((engine, events))
}

/// Applies each engine offer to the subscriber or relay receiver it is for and returns
/// that peer's SDP answer to the engine.
fn spawn_event_pump(
    sfu: Sfu,
    room: RoomId,
    answerers: Answerers,
    mut events: mpsc::UnboundedReceiver<SfuEvent>,
) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let SfuEvent::Offer { participant, sdp } = event else {
                continue;
            };
            let answerer = answerers.lock().unwrap().get(&participant).cloned();
            let answer = match answerer {
                Some(Answerer::Subscriber(subscriber)) => subscriber.answer(sdp).await,
                Some(Answerer::Relay(receiver, handle)) => {
                    let answering = handle.spawn(async move { receiver.answer(sdp).await });
                    match answering.await {
                        Ok(answer) => answer.map_err(anyhow::Error::from),
                        Err(error) => Err(anyhow::Error::from(error)),
                    }
                }
                None => continue,
            };
            let result = match answer {
                Ok(answer) => sfu
                    .accept_answer(&room, participant.clone(), answer)
                    .await
                    .map_err(anyhow::Error::from),
                Err(error) => Err(error),
            };
            if let Err(error) = result {
                eprintln!("answering the engine's offer to {participant} failed: {error:#}");
            }
        }
    });
}

/// Joins a receive-only subscriber to `engine` and waits until it is connected. The
/// room subscribes it to the track, and the engine sends that in an offer of its own.
async fn subscribe(
    engine: &Engine,
    room: &RoomId,
    index: usize,
) -> anyhow::Result<Arc<Subscriber>> {
    let subscriber = Arc::new(Subscriber::new("127.0.0.1").await?);
    let participant = ParticipantId::from(format!("subscriber-{index}").as_str());
    engine.answerers.lock().unwrap().insert(
        participant.clone(),
        Answerer::Subscriber(Arc::clone(&subscriber)),
    );
    let offer = subscriber.receive_only_offer().await?;
    let answer = engine.sfu.join(room, participant.clone(), offer).await?;
    subscriber.apply_answer(answer).await?;
    wait_until(&format!("{participant} to connect"), || {
        subscriber.is_connected()
    })
    .await?;
    wait_until(&format!("video at {participant}"), || {
        !subscriber.arrivals.lock().unwrap().is_empty()
    })
    .await?;
    Ok(subscriber)
}

fn measure_engine(engine: &Engine) -> anyhow::Result<Window> {
    let (relay_cpu, relayed_packets) = match &engine.relay {
        Some((receiver, worker)) => (worker.cpu_seconds()?, receiver.stats().packets),
        None => (0.0, 0),
    };
    Ok(Window {
        engine_cpu: engine.worker.cpu_seconds()?,
        relay_cpu,
        relayed_packets,
    })
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while !condition() {
        if Instant::now() > deadline {
            bail!("timed out after 30 s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// User plus system CPU time of a thread or process, in seconds, from its `stat` file.
fn stat_cpu_seconds(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of proc_pid_stat(5), so 12 and 13 after the
    // name. The kernel counts them in ticks of 1/100 s.
    let ticks: u64 = fields
        .get(11..13)
        .ok_or_else(|| anyhow!("{path} has too few fields"))?
        .iter()
        .map(|field| field.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    Ok(ticks as f64 / 100.0)
}

fn percent_of_core(cpu_seconds: f64, window_seconds: f64) -> String {
    format!("{:.0} % of a core", cpu_seconds / window_seconds * 100.0)
}
