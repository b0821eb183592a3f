//! Record of which recent extended sequence numbers were already handled.

/// Number of sequence numbers behind the highest one that the window remembers.
pub const WINDOW: u64 = 512;

/// Bit set over the `WINDOW` sequence numbers up to the highest one inserted.
#[derive(Debug, Clone)]
pub struct SeqWindow {
    highest: Option<u64>,
    bits: [u64; (WINDOW / 64) as usize],
}

impl Default for SeqWindow {
    fn default() -> Self {
        Self {
            highest: None,
            bits: [0; (WINDOW / 64) as usize],
        }
    }
}

/// Outcome of inserting a sequence number into a [`SeqWindow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// First time this sequence number is seen.
    New,
    /// Already inserted before.
    Duplicate,
    /// Older than the window, so it is unknown whether it was seen.
    TooOld,
}

impl SeqWindow {
    /// Inserts `seq` and reports whether it was new.
    pub fn insert(&mut self, seq: u64) -> Insert {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            self.set(seq);
            return Insert::New;
        };

        if seq > highest {
            self.clear_range(highest + 1, seq);
            self.highest = Some(seq);
            self.set(seq);
            return Insert::New;
        }
        if highest - seq >= WINDOW {
            return Insert::TooOld;
        }
        if self.get(seq) {
            return Insert::Duplicate;
        }
        self.set(seq);
        Insert::New
    }

    fn clear_range(&mut self, from: u64, to: u64) {
        // Advancing by a whole window or more clears everything.
        if to - from >= WINDOW {
            self.bits = [0; (WINDOW / 64) as usize];
            return;
        }
        for seq in from..=to {
            let (word, bit) = Self::position(seq);
            self.bits[word] &= !(1 << bit);
        }
    }

    fn set(&mut self, seq: u64) {
        let (word, bit) = Self::position(seq);
        self.bits[word] |= 1 << bit;
    }

    fn get(&self, seq: u64) -> bool {
        let (word, bit) = Self::position(seq);
        self.bits[word] & (1 << bit) != 0
    }

    fn position(seq: u64) -> (usize, u64) {
        let slot = seq % WINDOW;
        ((slot / 64) as usize, slot % 64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_is_detected() {
        let mut window = SeqWindow::default();
        assert_eq!(window.insert(100), Insert::New);
        assert_eq!(window.insert(101), Insert::New);
        assert_eq!(window.insert(100), Insert::Duplicate);
        assert_eq!(window.insert(101), Insert::Duplicate);
    }

    #[test]
    fn gap_filled_later_is_new() {
        let mut window = SeqWindow::default();
        window.insert(10);
        window.insert(13);
        assert_eq!(window.insert(12), Insert::New);
        assert_eq!(window.insert(11), Insert::New);
        assert_eq!(window.insert(12), Insert::Duplicate);
    }

    #[test]
    fn slots_are_reused_after_advance() {
        let mut window = SeqWindow::default();
        window.insert(5);
        assert_eq!(window.insert(5 + WINDOW), Insert::New);
        assert_eq!(window.insert(5), Insert::TooOld);
        assert_eq!(window.insert(4 + WINDOW), Insert::New);
    }
}
