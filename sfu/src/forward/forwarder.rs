//! Per-subscriber forwarding of one published track.
//!
//! A [`Forwarder`] sees every packet of every simulcast layer of a track and decides which
//! ones the subscriber gets. It rewrites sequence numbers and timestamps so the subscriber
//! sees one continuous stream on one SSRC even when the source layer changes:
//! - video starts, resumes and switches layer only at a keyframe;
//! - reordered packets keep their relative order and gaps, so the subscriber can NACK them;
//! - duplicates are dropped, and a 16-bit wrap is not a gap.

use std::time::{Duration, Instant};

use super::seq::SeqUnwrapper;
use super::window::{Insert, SeqWindow};

/// Metadata of one received RTP packet, as the forwarding decision needs it.
#[derive(Debug, Clone, Copy)]
pub struct SourcePacket {
    /// Simulcast layer index, 0 for the lowest (and for tracks without simulcast).
    pub layer: usize,
    /// RTP sequence number as received.
    pub seq: u16,
    /// RTP timestamp as received.
    pub timestamp: u32,
    /// True when the packet starts a keyframe (always false for audio).
    pub keyframe: bool,
    /// Time the packet arrived.
    pub arrival: Instant,
}

/// Decision for one [`SourcePacket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send the packet with this sequence number and timestamp.
    Forward {
        /// Rewritten sequence number.
        seq: u16,
        /// Rewritten timestamp.
        timestamp: u32,
        /// True when this packet made the subscriber switch to (or start on) its layer.
        switched: bool,
    },
    /// Do not send the packet.
    Drop(DropReason),
}

/// Why a packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The subscriber paused this track.
    Paused,
    /// The packet is from a layer the subscriber does not receive.
    OtherLayer,
    /// The subscriber waits for a keyframe on its target layer.
    AwaitingKeyframe,
    /// The packet was already forwarded.
    Duplicate,
    /// The packet predates the keyframe the current layer started at, or is too old to tell.
    TooOld,
}

/// Where the forwarder is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Nothing is forwarded.
    Paused,
    /// No layer is forwarded yet; waits for a keyframe on `target`.
    AwaitingKeyframe {
        /// Layer that will be forwarded from its next keyframe.
        target: usize,
    },
    /// `layer` is forwarded; when `target` differs, a keyframe on it switches over.
    Forwarding {
        /// Layer currently forwarded.
        layer: usize,
        /// Layer wanted by the subscriber.
        target: usize,
    },
}

/// Mapping from the current source layer to the outgoing stream.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    /// Extended sequence number of the first packet forwarded from the current layer.
    start: u64,
    /// Outgoing extended sequence number given to `start`.
    out_start: u64,
    /// Added (wrapping) to source timestamps.
    timestamp_offset: u32,
}

/// Forwarding state of one track for one subscriber.
#[derive(Debug)]
pub struct Forwarder {
    clock_rate: u32,
    needs_keyframe: bool,
    state: State,
    unwrappers: Vec<SeqUnwrapper>,
    mapping: Option<Mapping>,
    sent: SeqWindow,
    highest_out: Option<u64>,
    last_timestamp: u32,
    last_sent_at: Option<Instant>,
}

impl Forwarder {
    /// Creates a forwarder for video (switching at keyframes) or audio (`needs_keyframe`
    /// false), with the track's RTP clock rate in Hz. It starts waiting for `target`.
    pub fn new(clock_rate: u32, needs_keyframe: bool, target: usize) -> Self {
        Self {
            clock_rate,
            needs_keyframe,
            state: State::AwaitingKeyframe { target },
            unwrappers: Vec::new(),
            mapping: None,
            sent: SeqWindow::default(),
            highest_out: None,
            last_timestamp: 0,
            last_sent_at: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Layer for which a keyframe is awaited, if any.
    pub fn awaited_keyframe(&self) -> Option<usize> {
        match self.state {
            State::AwaitingKeyframe { target } if self.needs_keyframe => Some(target),
            State::Forwarding { layer, target } if layer != target => Some(target),
            _ => None,
        }
    }

    /// Stops forwarding until [`Forwarder::resume`].
    pub fn pause(&mut self) {
        self.state = State::Paused;
    }

    /// Resumes forwarding `target`, from its next keyframe for video.
    pub fn resume(&mut self, target: usize) {
        if self.state == State::Paused {
            self.state = State::AwaitingKeyframe { target };
        } else {
            self.set_target(target);
        }
    }

    /// Changes the wanted layer. The switch happens at the next keyframe on that layer.
    pub fn set_target(&mut self, target: usize) {
        self.state = match self.state {
            State::Paused => State::Paused,
            State::AwaitingKeyframe { .. } => State::AwaitingKeyframe { target },
            State::Forwarding { layer, .. } => State::Forwarding { layer, target },
        };
    }

    /// Decides what to do with one received packet.
    pub fn on_packet(&mut self, packet: &SourcePacket) -> Action {
        let extended = self.unwrapper(packet.layer).unwrap(packet.seq);

        match self.state {
            State::Paused => Action::Drop(DropReason::Paused),
            State::AwaitingKeyframe { target } => self.on_awaiting(packet, extended, target),
            State::Forwarding { layer, target } => {
                self.on_forwarding(packet, extended, layer, target)
            }
        }
    }

    fn on_awaiting(&mut self, packet: &SourcePacket, extended: u64, target: usize) -> Action {
        if packet.layer != target {
            return Action::Drop(DropReason::OtherLayer);
        }
        if self.needs_keyframe && !packet.keyframe {
            return Action::Drop(DropReason::AwaitingKeyframe);
        }
        self.switch_to(packet, extended);
        self.state = State::Forwarding {
            layer: target,
            target,
        };
        self.emit(packet, extended, true)
    }

    fn on_forwarding(
        &mut self,
        packet: &SourcePacket,
        extended: u64,
        layer: usize,
        target: usize,
    ) -> Action {
        if packet.layer == target && target != layer && packet.keyframe {
            self.switch_to(packet, extended);
            self.state = State::Forwarding {
                layer: target,
                target,
            };
            return self.emit(packet, extended, true);
        }
        if packet.layer != layer {
            return Action::Drop(DropReason::OtherLayer);
        }
        self.emit(packet, extended, false)
    }

    /// Maps the current layer so that `packet` follows the last forwarded packet.
    fn switch_to(&mut self, packet: &SourcePacket, extended: u64) {
        let out_start = self.highest_out.map_or(1 << 16, |highest| highest + 1);
        let timestamp = self.next_timestamp(packet.arrival);
        self.mapping = Some(Mapping {
            start: extended,
            out_start,
            timestamp_offset: timestamp.wrapping_sub(packet.timestamp),
        });
    }

    /// Outgoing timestamp for the first packet of a new layer: the last one sent plus the
    /// wall-clock time since then, at least one tick so frames stay distinct.
    fn next_timestamp(&self, now: Instant) -> u32 {
        let Some(last_sent_at) = self.last_sent_at else {
            return rand::random();
        };
        let elapsed = now.saturating_duration_since(last_sent_at);
        let ticks = ticks(elapsed, self.clock_rate).max(1);
        self.last_timestamp.wrapping_add(ticks)
    }

    fn emit(&mut self, packet: &SourcePacket, extended: u64, switched: bool) -> Action {
        let Some(mapping) = self.mapping else {
            return Action::Drop(DropReason::AwaitingKeyframe);
        };
        if extended < mapping.start {
            return Action::Drop(DropReason::TooOld);
        }

        let out = mapping.out_start + (extended - mapping.start);
        match self.sent.insert(out) {
            Insert::New => {}
            Insert::Duplicate => return Action::Drop(DropReason::Duplicate),
            Insert::TooOld => return Action::Drop(DropReason::TooOld),
        }

        let timestamp = packet.timestamp.wrapping_add(mapping.timestamp_offset);
        if self.highest_out.is_none_or(|highest| out > highest) {
            self.highest_out = Some(out);
            self.last_timestamp = timestamp;
            self.last_sent_at = Some(packet.arrival);
        }
        Action::Forward {
            seq: out as u16,
            timestamp,
            switched,
        }
    }

    fn unwrapper(&mut self, layer: usize) -> &mut SeqUnwrapper {
        if self.unwrappers.len() <= layer {
            self.unwrappers
                .resize_with(layer + 1, SeqUnwrapper::default);
        }
        &mut self.unwrappers[layer]
    }
}

fn ticks(elapsed: Duration, clock_rate: u32) -> u32 {
    (elapsed.as_micros() * u128::from(clock_rate) / 1_000_000) as u32
}
