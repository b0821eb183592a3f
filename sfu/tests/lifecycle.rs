//! Shard lifecycle on a simulated clock: peers that never connect are freed, and malformed
//! datagrams from unknown or known addresses are dropped without panicking.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sfu::engine::shard::{CONNECT_TIMEOUT, Shard};
use sfu::{ParticipantId, RoomId, RoomOptions, SfuEvent};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/sdp/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("reading {path}: {err}"))
}

fn shard_with_participant(now: Instant) -> (Shard, String) {
    let addr: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut shard = Shard::new(addr, addr);
    let room = RoomId::from("room");
    shard
        .create_room(room.clone(), RoomOptions::default())
        .unwrap();
    let answer = shard
        .join(
            now,
            &room,
            ParticipantId::from("alice"),
            fixture("chromium-simulcast-offer.sdp"),
            false,
        )
        .unwrap();
    let ufrag = answer
        .lines()
        .find_map(|line| line.strip_prefix("a=ice-ufrag:"))
        .expect("answer has an ICE ufrag")
        .trim()
        .to_owned();
    (shard, ufrag)
}

fn binding_request(username: &str) -> Vec<u8> {
    let mut attribute = vec![0x00, 0x06];
    attribute.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attribute.extend_from_slice(username.as_bytes());
    while attribute.len() % 4 != 0 {
        attribute.push(0);
    }
    let mut message = vec![0x00, 0x01];
    message.extend_from_slice(&(attribute.len() as u16).to_be_bytes());
    message.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    message.extend_from_slice(&[9; 12]);
    message.extend_from_slice(&attribute);
    message
}

/// Datagrams that look like each protocol on the socket but are broken.
fn malformed_datagrams() -> Vec<Vec<u8>> {
    let mut datagrams = vec![
        vec![],
        vec![0],
        vec![0xff; 3],
        vec![0x80, 0x60, 0x00],
        vec![0x80, 0xc8, 0xff, 0xff, 0, 0, 0, 1],
        vec![0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
        vec![0x00, 0x01, 0xff, 0xff, 0x21, 0x12, 0xa4, 0x42],
    ];
    // Deterministic pseudo-random garbage of many lengths and first bytes.
    let mut state: u32 = 0x1234_5678;
    for len in 1..200 {
        let datagram = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        datagrams.push(datagram);
    }
    datagrams
}

#[test]
fn never_connecting_peer_is_removed() {
    let start = Instant::now();
    let (mut shard, _) = shard_with_participant(start);
    assert_eq!(shard.stats().participants, 1);

    shard.handle_timeout(start + CONNECT_TIMEOUT / 2);
    assert_eq!(shard.stats().participants, 1);

    shard.handle_timeout(start + CONNECT_TIMEOUT + Duration::from_secs(1));
    let stats = shard.stats();
    assert_eq!(stats.participants, 0);
    assert_eq!(stats.routes, 0);
    let mut disconnected = false;
    while let Some(event) = shard.poll_event() {
        disconnected |= matches!(event, SfuEvent::ParticipantDisconnected { .. });
    }
    assert!(disconnected);
}

#[test]
fn malformed_datagrams_from_unknown_address_are_dropped() {
    let now = Instant::now();
    let (mut shard, _) = shard_with_participant(now);
    let stranger: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    for datagram in malformed_datagrams() {
        shard.handle_datagram(now, stranger, &datagram);
    }
    assert_eq!(shard.poll_transmit(), None);
    assert_eq!(shard.stats().routes, 1);
}

#[test]
fn malformed_datagrams_from_known_address_are_dropped() {
    let now = Instant::now();
    let (mut shard, ufrag) = shard_with_participant(now);
    let peer: SocketAddr = "127.0.0.1:50001".parse().unwrap();

    // The Binding request lacks MESSAGE-INTEGRITY, so the ICE agent ignores it, but the
    // address is now routed to the participant and everything after reaches its stack.
    shard.handle_datagram(now, peer, &binding_request(&format!("{ufrag}:remote")));
    assert_eq!(shard.stats().routes, 2);
    for datagram in malformed_datagrams() {
        shard.handle_datagram(now, peer, &datagram);
    }
    shard.handle_timeout(now + Duration::from_millis(100));
    assert_eq!(shard.stats().participants, 1);
}
