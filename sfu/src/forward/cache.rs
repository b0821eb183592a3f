//! Cache of packets sent to one subscriber, for answering NACKs (RFC 4585) with RTX
//! (RFC 4588).
//!
//! The cache is keyed by the sequence number the subscriber saw, so a NACK is answered
//! without mapping back to the source layer. A packet is resent at most once per
//! [`RESEND_INTERVAL`], so a subscriber that repeats a NACK before the retransmission can
//! arrive does not double the traffic.

use std::time::{Duration, Instant};

/// Number of packets kept per outgoing stream (about 1.5 s of 1 Mbit/s video).
pub const CAPACITY: usize = 512;

/// Minimum time between two retransmissions of the same packet.
pub const RESEND_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug)]
struct Slot<T> {
    seq: u16,
    packet: T,
    resent_at: Option<Instant>,
}

/// Ring buffer of recently sent packets.
#[derive(Debug)]
pub struct PacketCache<T> {
    slots: Vec<Option<Slot<T>>>,
}

impl<T> Default for PacketCache<T> {
    fn default() -> Self {
        Self {
            slots: (0..CAPACITY).map(|_| None).collect(),
        }
    }
}

impl<T: Clone> PacketCache<T> {
    /// Stores a sent packet under its outgoing sequence number.
    pub fn insert(&mut self, seq: u16, packet: T) {
        self.slots[usize::from(seq) % CAPACITY] = Some(Slot {
            seq,
            packet,
            resent_at: None,
        });
    }

    /// Returns the packet to retransmit for a NACKed sequence number, or `None` when it is
    /// no longer cached or was resent less than [`RESEND_INTERVAL`] ago.
    pub fn take_for_resend(&mut self, seq: u16, now: Instant) -> Option<T> {
        let slot = self.slots[usize::from(seq) % CAPACITY].as_mut()?;
        if slot.seq != seq {
            return None;
        }
        if slot
            .resent_at
            .is_some_and(|at| now.saturating_duration_since(at) < RESEND_INTERVAL)
        {
            return None;
        }
        slot.resent_at = Some(now);
        Some(slot.packet.clone())
    }
}

/// Builder of RTX packets: payload type, SSRC and sequence numbers of the repair stream.
#[derive(Debug, Clone)]
pub struct RtxStream {
    /// SSRC of the repair stream.
    pub ssrc: u32,
    /// Payload type of the `rtx` codec whose `apt` is the media payload type.
    pub payload_type: u8,
    next_seq: u16,
}

impl RtxStream {
    /// Creates a repair stream starting at a random sequence number.
    pub fn new(ssrc: u32, payload_type: u8) -> Self {
        Self {
            ssrc,
            payload_type,
            next_seq: rand::random(),
        }
    }

    /// Returns the RTX payload for a retransmission of `original_seq`: the original
    /// sequence number followed by the original payload (RFC 4588, section 4).
    pub fn payload(original_seq: u16, original_payload: &[u8]) -> Vec<u8> {
        let mut payload = Vec::with_capacity(2 + original_payload.len());
        payload.extend_from_slice(&original_seq.to_be_bytes());
        payload.extend_from_slice(original_payload);
        payload
    }

    /// Returns the next repair stream sequence number.
    pub fn next_seq(&mut self) -> u16 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resend_is_rate_limited() {
        let now = Instant::now();
        let mut cache = PacketCache::default();
        cache.insert(7, "seven");
        assert_eq!(cache.take_for_resend(7, now), Some("seven"));
        assert_eq!(cache.take_for_resend(7, now + RESEND_INTERVAL / 2), None);
        assert_eq!(
            cache.take_for_resend(7, now + RESEND_INTERVAL),
            Some("seven")
        );
    }

    #[test]
    fn overwritten_slot_is_not_returned() {
        let now = Instant::now();
        let mut cache = PacketCache::default();
        cache.insert(3, 3);
        cache.insert(3 + CAPACITY as u16, 4);
        assert_eq!(cache.take_for_resend(3, now), None);
        assert_eq!(cache.take_for_resend(3 + CAPACITY as u16, now), Some(4));
    }

    #[test]
    fn sequence_wrap_keeps_entries() {
        let now = Instant::now();
        let mut cache = PacketCache::default();
        cache.insert(65535, 'a');
        cache.insert(0, 'b');
        assert_eq!(cache.take_for_resend(65535, now), Some('a'));
        assert_eq!(cache.take_for_resend(0, now), Some('b'));
    }

    #[test]
    fn rtx_payload_starts_with_original_seq() {
        assert_eq!(RtxStream::payload(0x1234, &[9, 8]), vec![0x12, 0x34, 9, 8]);
        let mut rtx = RtxStream::new(1, 97);
        let first = rtx.next_seq();
        assert_eq!(rtx.next_seq(), first.wrapping_add(1));
    }
}
