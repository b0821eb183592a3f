//! The node's shared media ports end to end: rooms on several shards behind one UDP port,
//! and `webrtc` client peers that reach the engine over ICE-TCP only.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::{Client, spawn_media, wait_for};
use rtc::peer_connection::transport::RTCIceCandidateInit;
use sfu::{ParticipantId, RoomId, RoomOptions, Sfu, SfuConfig, SfuEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Participants' clients and rooms, shared with the event pump.
type Members = Arc<Mutex<HashMap<ParticipantId, (RoomId, Arc<Client>)>>>;

/// Answers the engine's offers for participants of any room.
fn spawn_answers(sfu: Sfu, members: Members, mut events: mpsc::UnboundedReceiver<SfuEvent>) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let SfuEvent::Offer { participant, sdp } = event else {
                continue;
            };
            let member = members.lock().unwrap().get(&participant).cloned();
            if let Some((room, client)) = member {
                let answer = client.answer(sdp).await;
                if let Err(err) = sfu.accept_answer(&room, participant.clone(), answer).await {
                    panic!("answer of {participant} rejected: {err}");
                }
            }
        }
    });
}

async fn start(config: SfuConfig) -> (Sfu, Members) {
    common::init_tracing();
    let (sfu, events) = Sfu::start(config).await.unwrap();
    let members = Members::default();
    spawn_answers(sfu.clone(), Arc::clone(&members), events);
    (sfu, members)
}

async fn create_room(sfu: &Sfu, name: &str) -> RoomId {
    let room = RoomId::from(name);
    let options = RoomOptions {
        auto_subscribe: true,
    };
    sfu.create_room(room.clone(), options).await.unwrap();
    room
}

/// Joins `client` as `name`, waits until it is connected and returns the engine's answer.
async fn enter(sfu: &Sfu, members: &Members, room: &RoomId, name: &str, client: Client) -> String {
    let client = Arc::new(client);
    let participant = ParticipantId::from(name);
    members
        .lock()
        .unwrap()
        .insert(participant.clone(), (room.clone(), Arc::clone(&client)));
    let offer = client.offer().await;
    let answer = sfu.join(room, participant, offer).await.expect("join");
    client.apply_answer(answer.clone()).await;
    // The `webrtc` 0.21 client opens TCP connections only to passive candidates added
    // with `add_ice_candidate`, not to those in the answer, so they are added again. It
    // would open one connection per candidate line, so only component 1 is added.
    for line in answer.lines() {
        let Some(candidate) = line.strip_prefix("a=") else {
            continue;
        };
        let component = candidate.split_whitespace().nth(1);
        if candidate.starts_with("candidate:")
            && component == Some("1")
            && candidate.contains("tcptype passive")
        {
            let init = RTCIceCandidateInit {
                candidate: candidate.to_owned(),
                sdp_mid: Some("0".to_owned()),
                sdp_mline_index: Some(0),
                ..Default::default()
            };
            client.pc.add_ice_candidate(init).await.unwrap();
        }
    }
    wait_for(&format!("{name} to connect"), move || client.is_connected()).await;
    answer
}

fn client_of(members: &Members, name: &str) -> Arc<Client> {
    let members = members.lock().unwrap();
    Arc::clone(&members[&ParticipantId::from(name)].1)
}

/// Returns the host candidates of an SDP as (transport, port, tcptype) triples.
fn host_candidates(sdp: &str) -> Vec<(String, u16, Option<String>)> {
    sdp.lines()
        .filter_map(|line| line.strip_prefix("a=candidate:"))
        .filter_map(|candidate| {
            let fields: Vec<&str> = candidate.split_whitespace().collect();
            let port = fields.get(5)?.parse().ok()?;
            let tcp_type = fields
                .iter()
                .position(|field| *field == "tcptype")
                .and_then(|at| fields.get(at + 1))
                .map(|value| (*value).to_owned());
            Some((fields.get(2)?.to_lowercase(), port, tcp_type))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_on_three_shards_share_one_port() {
    let (sfu, members) = start(SfuConfig {
        shards: 3,
        ..SfuConfig::default()
    })
    .await;
    let port = sfu.udp_addr().port();
    let rooms = [
        create_room(&sfu, "north").await,
        create_room(&sfu, "south").await,
        create_room(&sfu, "east").await,
    ];

    let mut media = Vec::new();
    for room in &rooms {
        for person in ["a", "b"] {
            let name = format!("{room}-{person}");
            let answer = enter(&sfu, &members, room, &name, Client::new(true).await).await;
            let candidates = host_candidates(&answer);
            assert!(!candidates.is_empty(), "{answer}");
            for candidate in candidates {
                assert_eq!(candidate, ("udp".to_owned(), port, None), "{answer}");
            }
            media.push(spawn_media(client_of(&members, &name), 10).0);
        }
    }

    for room in &rooms {
        for person in ["a", "b"] {
            let client = client_of(&members, &format!("{room}-{person}"));
            wait_for(
                &format!("media from the other member of {room}"),
                move || {
                    let (video, audio) = client.counts();
                    video >= 30 && audio >= 30
                },
            )
            .await;
        }
    }
    let stats = sfu.stats().await.unwrap();
    assert_eq!(stats.rooms, 3);
    assert_eq!(stats.participants, 6);
    for task in media {
        task.abort();
    }
    sfu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_only_peers_exchange_media() {
    let (sfu, members) = start(SfuConfig {
        shards: 2,
        tcp_port: Some(0),
        ..SfuConfig::default()
    })
    .await;
    let tcp_port = sfu.tcp_addr().expect("ICE-TCP listener").port();
    // A room on each shard, so that connections are routed to the second one too.
    create_room(&sfu, "first").await;
    let room = create_room(&sfu, "second").await;

    let answer = enter(&sfu, &members, &room, "tcp-a", Client::tcp_only(true).await).await;
    assert!(
        host_candidates(&answer).contains(&("tcp".to_owned(), tcp_port, Some("passive".into()))),
        "{answer}"
    );
    enter(&sfu, &members, &room, "tcp-b", Client::tcp_only(true).await).await;
    assert_eq!(sfu.tcp_connections(), 2);

    let a = client_of(&members, "tcp-a");
    let b = client_of(&members, "tcp-b");
    let (media_a, _) = spawn_media(Arc::clone(&a), 10);
    let (media_b, _) = spawn_media(Arc::clone(&b), 10);
    for client in [&a, &b] {
        let client = Arc::clone(client);
        wait_for("30 video and 30 audio packets over TCP", move || {
            let (video, audio) = client.counts();
            video >= 30 && audio >= 30
        })
        .await;
    }
    media_a.abort();
    media_b.abort();

    sfu.leave(&room, ParticipantId::from("tcp-a"))
        .await
        .unwrap();
    let engine = sfu.clone();
    wait_for("the engine to close tcp-a's connection", move || {
        engine.tcp_connections() == 1
    })
    .await;
    sfu.shutdown().await;
}

/// Reads until the engine closes the connection; fails if it sends anything.
async fn assert_closed(stream: &mut TcpStream) {
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(common::PATIENCE, stream.read(&mut buffer))
        .await
        .expect("the engine closes the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tcp_connections_are_closed() {
    let (sfu, _members) = start(SfuConfig {
        shards: 1,
        tcp_port: Some(0),
        tcp_max_connections: 2,
        ..SfuConfig::default()
    })
    .await;
    let addr = sfu.tcp_addr().unwrap();

    // A first frame that is not a STUN Binding request.
    let mut not_stun = TcpStream::connect(addr).await.unwrap();
    not_stun.write_all(&[0, 4, 0x80, 0, 0, 1]).await.unwrap();
    assert_closed(&mut not_stun).await;

    // A frame longer than any packet the engine accepts.
    let mut oversized = TcpStream::connect(addr).await.unwrap();
    oversized.write_all(&[0xff, 0xff, 0, 1]).await.unwrap();
    assert_closed(&mut oversized).await;

    // Two idle connections fill the cap of two, so a third is closed at once.
    let engine = sfu.clone();
    wait_for("the closed connections to be counted", move || {
        engine.tcp_connections() == 0
    })
    .await;
    let _first = TcpStream::connect(addr).await.unwrap();
    let _second = TcpStream::connect(addr).await.unwrap();
    let engine = sfu.clone();
    wait_for("two open connections", move || {
        engine.tcp_connections() == 2
    })
    .await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert_closed(&mut third).await;
    assert_eq!(sfu.tcp_connections(), 2);
    sfu.shutdown().await;
}

/// With an unspecified bind address the engine advertises `public_ip`, and its ICE agent
/// must accept checks that arrive on the wildcard socket. Binding 0.0.0.0 would listen on
/// every interface of the machine, so this runs only inside a network namespace of its
/// own, whose loopback also needs a default route for the client's mDNS socket:
/// `unshare -rn sh -c 'ip link set lo up && ip route add default dev lo && BIN --ignored'`
/// with BIN the built test binary of this file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "binds 0.0.0.0; run inside its own network namespace (see the doc comment)"]
async fn unspecified_bind_uses_public_ip() {
    let (sfu, members) = start(SfuConfig {
        bind_ip: std::net::Ipv4Addr::UNSPECIFIED.into(),
        public_ip: Some(std::net::Ipv4Addr::LOCALHOST.into()),
        tcp_port: Some(0),
        shards: 1,
        ..SfuConfig::default()
    })
    .await;
    let room = create_room(&sfu, "nat").await;
    let answer = enter(&sfu, &members, &room, "udp", Client::new(true).await).await;
    assert!(answer.contains(" 127.0.0.1 "), "{answer}");
    enter(&sfu, &members, &room, "tcp", Client::tcp_only(true).await).await;
    sfu.shutdown().await;
}
