//! Scenario tests: a simulated simulcast publisher, a lossy path and one subscriber's
//! forwarder and keyframe requester, all on a simulated clock.

use std::time::{Duration, Instant};

use super::bandwidth::DownlinkEstimate;
use super::forwarder::{Action, DropReason, Forwarder, SourcePacket, State};
use super::keyframe::{KeyframeRequester, Request};
use super::layer::LayerMonitor;

const FRAME_INTERVAL: Duration = Duration::from_millis(33);
const TICKS_PER_FRAME: u32 = 3000;
const PACKETS_PER_FRAME: u16 = 3;

/// Publisher of `layers` simulcast layers, each with its own sequence space.
struct Publisher {
    seqs: Vec<u16>,
    timestamp: u32,
    now: Instant,
    keyframe_pending: Vec<bool>,
}

impl Publisher {
    fn new(layers: usize, first_seq: u16) -> Self {
        Self {
            seqs: (0..layers)
                .map(|layer| first_seq.wrapping_add(layer as u16 * 1000))
                .collect(),
            timestamp: 90_000,
            now: Instant::now(),
            keyframe_pending: vec![true; layers],
        }
    }

    /// Produces one frame on every layer; a layer's frame is a keyframe when requested.
    fn frame(&mut self) -> Vec<SourcePacket> {
        self.now += FRAME_INTERVAL;
        self.timestamp = self.timestamp.wrapping_add(TICKS_PER_FRAME);
        let mut packets = Vec::new();
        for layer in 0..self.seqs.len() {
            let keyframe = std::mem::take(&mut self.keyframe_pending[layer]);
            for index in 0..PACKETS_PER_FRAME {
                packets.push(SourcePacket {
                    layer,
                    seq: self.seqs[layer],
                    timestamp: self.timestamp,
                    keyframe: keyframe && index == 0,
                    arrival: self.now,
                });
                self.seqs[layer] = self.seqs[layer].wrapping_add(1);
            }
        }
        packets
    }
}

/// Outgoing packets as the subscriber sees them.
#[derive(Default)]
struct Subscriber {
    received: Vec<(u16, u32)>,
    switches: usize,
}

impl Subscriber {
    fn deliver(&mut self, forwarder: &mut Forwarder, packet: &SourcePacket) -> Action {
        let action = forwarder.on_packet(packet);
        if let Action::Forward {
            seq,
            timestamp,
            switched,
        } = action
        {
            self.received.push((seq, timestamp));
            self.switches += usize::from(switched);
        }
        action
    }

    fn sequence_numbers(&self) -> Vec<u16> {
        self.received.iter().map(|(seq, _)| *seq).collect()
    }
}

fn assert_consecutive(seqs: &[u16]) {
    for pair in seqs.windows(2) {
        assert_eq!(pair[1], pair[0].wrapping_add(1), "gap or jump in {seqs:?}");
    }
}

fn assert_timestamps_advance(received: &[(u16, u32)]) {
    for pair in received.windows(2) {
        let delta = pair[1].1.wrapping_sub(pair[0].1);
        assert!(delta < u32::MAX / 2, "timestamp went backwards: {pair:?}");
    }
}

#[test]
fn subscriber_starts_on_keyframe() {
    let mut publisher = Publisher::new(3, 100);
    publisher.keyframe_pending = vec![false; 3];
    let mut forwarder = Forwarder::new(90_000, true, 1);
    let mut subscriber = Subscriber::default();

    for _ in 0..5 {
        for packet in publisher.frame() {
            subscriber.deliver(&mut forwarder, &packet);
        }
    }
    assert!(subscriber.received.is_empty());
    assert_eq!(forwarder.awaited_keyframe(), Some(1));

    publisher.keyframe_pending[1] = true;
    for packet in publisher.frame() {
        subscriber.deliver(&mut forwarder, &packet);
    }
    assert_eq!(subscriber.received.len(), usize::from(PACKETS_PER_FRAME));
    assert_eq!(
        forwarder.state(),
        State::Forwarding {
            layer: 1,
            target: 1
        }
    );
    assert_eq!(forwarder.awaited_keyframe(), None);
}

#[test]
fn layer_switch_keeps_stream_continuous() {
    let mut publisher = Publisher::new(3, 40_000);
    let mut forwarder = Forwarder::new(90_000, true, 0);
    let mut subscriber = Subscriber::default();

    for frame in 0..60 {
        if frame == 10 {
            forwarder.set_target(2);
        }
        if frame == 14 {
            publisher.keyframe_pending[2] = true;
        }
        if frame == 30 {
            forwarder.set_target(1);
        }
        if frame == 40 {
            publisher.keyframe_pending[1] = true;
        }
        for packet in publisher.frame() {
            subscriber.deliver(&mut forwarder, &packet);
        }
    }

    assert_eq!(subscriber.switches, 3);
    assert_eq!(
        forwarder.state(),
        State::Forwarding {
            layer: 1,
            target: 1
        }
    );
    // Frame 14 goes out twice: from layer 0, then from the layer 2 keyframe that follows it
    // within the same frame interval.
    assert_eq!(
        subscriber.received.len(),
        61 * usize::from(PACKETS_PER_FRAME)
    );
    assert_consecutive(&subscriber.sequence_numbers());
    assert_timestamps_advance(&subscriber.received);
}

#[test]
fn switch_waits_for_keyframe_on_target() {
    let mut publisher = Publisher::new(2, 1);
    let mut forwarder = Forwarder::new(90_000, true, 0);
    let mut subscriber = Subscriber::default();
    for packet in publisher.frame() {
        subscriber.deliver(&mut forwarder, &packet);
    }

    forwarder.set_target(1);
    for _ in 0..3 {
        for packet in publisher.frame() {
            subscriber.deliver(&mut forwarder, &packet);
        }
    }
    assert_eq!(
        forwarder.state(),
        State::Forwarding {
            layer: 0,
            target: 1
        }
    );
    assert_eq!(forwarder.awaited_keyframe(), Some(1));
    assert_eq!(
        subscriber.received.len(),
        4 * usize::from(PACKETS_PER_FRAME)
    );
}

#[test]
fn loss_leaves_gap_and_late_retransmission_fills_it() {
    let mut publisher = Publisher::new(1, 200);
    let mut forwarder = Forwarder::new(90_000, true, 0);
    let mut subscriber = Subscriber::default();
    let mut lost = Vec::new();

    for frame in 0..20 {
        for (index, packet) in publisher.frame().into_iter().enumerate() {
            if frame % 4 == 1 && index == 1 {
                lost.push(packet);
                continue;
            }
            subscriber.deliver(&mut forwarder, &packet);
        }
    }

    let mut seqs = subscriber.sequence_numbers();
    assert_eq!(seqs.len(), 60 - lost.len());
    for pair in seqs.windows(2) {
        let step = pair[1].wrapping_sub(pair[0]);
        assert!(step == 1 || step == 2, "unexpected jump {pair:?}");
    }

    // The retransmissions arrive late, after newer packets, and fill exactly the gaps.
    for packet in &lost {
        let action = subscriber.deliver(&mut forwarder, packet);
        assert!(matches!(action, Action::Forward { .. }), "{action:?}");
    }
    seqs = subscriber.sequence_numbers();
    seqs.sort_unstable();
    assert_consecutive(&seqs);
}

#[test]
fn duplicates_are_dropped() {
    let mut publisher = Publisher::new(1, 7);
    let mut forwarder = Forwarder::new(90_000, true, 0);
    let mut subscriber = Subscriber::default();

    for _ in 0..10 {
        for packet in publisher.frame() {
            subscriber.deliver(&mut forwarder, &packet);
            let again = subscriber.deliver(&mut forwarder, &packet);
            assert_eq!(again, Action::Drop(DropReason::Duplicate));
        }
    }
    assert_eq!(subscriber.received.len(), 30);
    assert_consecutive(&subscriber.sequence_numbers());
}

#[test]
fn reordering_is_preserved() {
    let mut publisher = Publisher::new(1, 65_000);
    let mut forwarder = Forwarder::new(90_000, true, 0);
    let mut subscriber = Subscriber::default();
    let mut source_order = Vec::new();

    for frame in 0..30 {
        let mut packets = publisher.frame();
        if frame > 0 {
            packets.swap(0, 2);
        }
        for packet in packets {
            if let Action::Forward { seq, .. } = subscriber.deliver(&mut forwarder, &packet) {
                source_order.push((packet.seq, seq));
            }
        }
    }

    // Every packet keeps its distance to the first one, so the subscriber can reorder.
    let (first_source, first_out) = source_order[0];
    for (source, out) in &source_order {
        assert_eq!(
            source.wrapping_sub(first_source),
            out.wrapping_sub(first_out),
            "packet {source} mapped to {out}"
        );
    }
    let mut seqs = subscriber.sequence_numbers();
    seqs.sort_unstable_by_key(|seq| seq.wrapping_sub(first_out));
    assert_consecutive(&seqs);
}

#[test]
fn sequence_wrap_is_not_loss() {
    let mut publisher = Publisher::new(1, 65_530);
    let mut forwarder = Forwarder::new(90_000, true, 0);
    let mut subscriber = Subscriber::default();

    for _ in 0..10 {
        for packet in publisher.frame() {
            subscriber.deliver(&mut forwarder, &packet);
        }
    }
    assert_eq!(subscriber.received.len(), 30);
    assert_consecutive(&subscriber.sequence_numbers());
}

#[test]
fn audio_forwards_without_keyframe() {
    let mut publisher = Publisher::new(1, 10);
    publisher.keyframe_pending = vec![false];
    let mut forwarder = Forwarder::new(48_000, false, 0);
    let mut subscriber = Subscriber::default();
    for packet in publisher.frame() {
        subscriber.deliver(&mut forwarder, &packet);
    }
    assert_eq!(subscriber.received.len(), 3);
}

#[test]
fn pause_and_resume_restart_on_keyframe() {
    let mut publisher = Publisher::new(1, 10);
    let mut forwarder = Forwarder::new(90_000, true, 0);
    let mut subscriber = Subscriber::default();
    for packet in publisher.frame() {
        subscriber.deliver(&mut forwarder, &packet);
    }

    forwarder.pause();
    for packet in publisher.frame() {
        assert_eq!(
            subscriber.deliver(&mut forwarder, &packet),
            Action::Drop(DropReason::Paused)
        );
    }

    forwarder.resume(0);
    for packet in publisher.frame() {
        subscriber.deliver(&mut forwarder, &packet);
    }
    assert_eq!(forwarder.awaited_keyframe(), Some(0));

    publisher.keyframe_pending[0] = true;
    for packet in publisher.frame() {
        subscriber.deliver(&mut forwarder, &packet);
    }
    assert_eq!(subscriber.received.len(), 6);
    assert_consecutive(&subscriber.sequence_numbers());
}

/// The requester keeps asking until the publisher, which answers only the third request
/// and only after a delay, produces a keyframe; then the forwarder starts.
#[test]
fn keyframe_requests_repeat_until_forwarded() {
    let mut publisher = Publisher::new(1, 500);
    publisher.keyframe_pending = vec![false];
    let mut forwarder = Forwarder::new(90_000, true, 0);
    let mut requester = KeyframeRequester::default();
    let mut subscriber = Subscriber::default();
    let mut requests = 0;

    for _ in 0..100 {
        let packets = publisher.frame();
        for packet in &packets {
            subscriber.deliver(&mut forwarder, packet);
            if packet.keyframe {
                requester.on_keyframe();
            }
        }
        if forwarder.awaited_keyframe().is_some() {
            requester.want(publisher.now);
        }
        if let Some(request) = requester.poll_request(publisher.now) {
            assert_eq!(request, Request::Pli);
            requests += 1;
            if requests == 3 {
                publisher.keyframe_pending[0] = true;
            }
        }
    }

    assert_eq!(requests, 3);
    assert_eq!(
        forwarder.state(),
        State::Forwarding {
            layer: 0,
            target: 0
        }
    );
    assert_eq!(requester.poll_timeout(), None);
    assert!(!subscriber.received.is_empty());
}

/// A subscriber whose REMB estimate drops twice is moved down one layer at a time, each
/// switch on a keyframe of the new layer, and the outgoing stream stays continuous.
#[test]
fn limited_estimate_lowers_layer_at_keyframes() {
    // Packet sizes that give about 72, 288 and 864 kbit/s at 30 frames per second.
    const PACKET_BYTES: [usize; 3] = [100, 400, 1200];
    let mut publisher = Publisher::new(3, 7_000);
    let mut monitor = LayerMonitor::default();
    let mut estimate = DownlinkEstimate::default();
    let mut forwarder = Forwarder::new(90_000, true, 0);
    let mut subscriber = Subscriber::default();
    let mut layers_at = Vec::new();

    for frame in 0..300 {
        let now = publisher.now;
        match frame {
            100 => estimate.on_report(400_000, now),
            // Kept fresh: reports arrive about once a second.
            130 | 160 => estimate.on_report(400_000, now),
            200 | 230 | 260 | 290 => estimate.on_report(120_000, now),
            _ => {}
        }
        let current = match forwarder.state() {
            State::Forwarding { layer, .. } => Some(layer),
            _ => None,
        };
        let budget = estimate.video_budget(now, 0, 1);
        if let Some(target) = monitor.select(2, budget, current, now) {
            forwarder.set_target(target);
        }

        for packet in publisher.frame() {
            monitor.on_packet(packet.layer, PACKET_BYTES[packet.layer], packet.arrival);
            let action = subscriber.deliver(&mut forwarder, &packet);
            if let Action::Forward { switched: true, .. } = action {
                assert!(
                    packet.keyframe,
                    "switched on a delta frame at frame {frame}"
                );
            }
        }
        // The publisher sends a keyframe in the frame after a request.
        if let Some(layer) = forwarder.awaited_keyframe() {
            publisher.keyframe_pending[layer] = true;
        }
        if let State::Forwarding { layer, .. } = forwarder.state() {
            layers_at.push(layer);
        }
    }

    assert_eq!(
        layers_at[90], 2,
        "unlimited subscriber is not on the top layer"
    );
    assert_eq!(
        layers_at[190], 1,
        "400 kbit/s does not give the middle layer"
    );
    assert_eq!(
        layers_at[295], 0,
        "120 kbit/s does not give the lowest layer"
    );
    assert_consecutive(&subscriber.sequence_numbers());
    assert_timestamps_advance(&subscriber.received);
}
