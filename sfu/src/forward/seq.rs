//! Extension of 16-bit RTP sequence numbers to 64 bits (RFC 3550, appendix A.1).
//!
//! A packet is placed in the 2^16 cycle that puts it closest to the highest sequence number
//! seen so far, so a wrap from 65535 to 0 continues upward and a late packet from before a
//! wrap lands in the previous cycle.

/// Unwraps one stream's 16-bit sequence numbers.
#[derive(Debug, Default, Clone)]
pub struct SeqUnwrapper {
    highest: Option<u64>,
}

impl SeqUnwrapper {
    /// Returns the extended sequence number of `seq` and updates the highest one seen.
    pub fn unwrap(&mut self, seq: u16) -> u64 {
        let extended = self.extend(seq);
        if self.highest.is_none_or(|highest| extended > highest) {
            self.highest = Some(extended);
        }
        extended
    }

    /// Returns the extended sequence number of `seq` without updating the state.
    pub fn extend(&self, seq: u16) -> u64 {
        // The first packet starts in cycle 1, so a packet from just before it still has a
        // non-negative extended number.
        let Some(highest) = self.highest else {
            return (1 << 16) + u64::from(seq);
        };

        let cycle = highest & !0xffff;
        let candidate = cycle | u64::from(seq);
        let delta = i64::from(seq) - (highest & 0xffff) as i64;

        if delta > 0x8000 {
            candidate.saturating_sub(1 << 16)
        } else if delta < -0x8000 {
            candidate + (1 << 16)
        } else {
            candidate
        }
    }

    /// Highest extended sequence number seen, if any.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_continues_upward() {
        let mut unwrapper = SeqUnwrapper::default();
        let a = unwrapper.unwrap(65534);
        let b = unwrapper.unwrap(65535);
        let c = unwrapper.unwrap(0);
        let d = unwrapper.unwrap(1);
        assert_eq!(b, a + 1);
        assert_eq!(c, b + 1);
        assert_eq!(d, c + 1);
    }

    #[test]
    fn late_packet_from_before_wrap() {
        let mut unwrapper = SeqUnwrapper::default();
        let before = unwrapper.unwrap(65535);
        let after = unwrapper.unwrap(2);
        let late = unwrapper.unwrap(65534);
        assert_eq!(after, before + 3);
        assert_eq!(late, before - 1);
        assert_eq!(unwrapper.highest(), Some(after));
    }

    #[test]
    fn reordered_packet_keeps_highest() {
        let mut unwrapper = SeqUnwrapper::default();
        unwrapper.unwrap(10);
        unwrapper.unwrap(12);
        let reordered = unwrapper.unwrap(11);
        assert_eq!(reordered, (1 << 16) + 11);
        assert_eq!(unwrapper.highest(), Some((1 << 16) + 12));
    }
}
