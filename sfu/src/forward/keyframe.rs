//! Keyframe requests to a publisher (RFC 4585 PLI, RFC 5104 FIR).
//!
//! While any subscriber waits for a keyframe on a layer, a request is sent at once and then
//! repeated every [`RETRY_INTERVAL`] until a keyframe arrives on that layer. Requests are
//! never sent more often than that, however many subscribers ask, so joins and layer
//! switches in a large room do not flood the publisher. After [`PLI_ATTEMPTS`] unanswered
//! PLIs the request becomes a FIR, which some encoders honour when they ignore PLI.

use std::time::{Duration, Instant};

/// Time between two requests for the same layer.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(300);

/// Number of PLIs sent before switching to FIR.
pub const PLI_ATTEMPTS: u32 = 3;

/// Kind of keyframe request to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Picture Loss Indication.
    Pli,
    /// Full Intra Request with its command sequence number.
    Fir {
        /// Command sequence number, increased for every new request.
        seq: u8,
    },
}

/// Counters of one layer's keyframe requests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KeyframeStats {
    /// Requests sent to the publisher.
    pub requests_sent: u64,
    /// Keyframes received while a request was pending.
    pub keyframes_answered: u64,
    /// Keyframes received in total.
    pub keyframes_received: u64,
}

/// Keyframe request state of one simulcast layer of a published video track.
#[derive(Debug, Default)]
pub struct KeyframeRequester {
    wanted_since: Option<Instant>,
    last_sent: Option<Instant>,
    attempts: u32,
    fir_seq: u8,
    stats: KeyframeStats,
}

impl KeyframeRequester {
    /// Records that a subscriber waits for a keyframe.
    pub fn want(&mut self, now: Instant) {
        if self.wanted_since.is_none() {
            self.wanted_since = Some(now);
            self.attempts = 0;
        }
    }

    /// Records a keyframe from the publisher, which satisfies every pending request.
    pub fn on_keyframe(&mut self) {
        self.stats.keyframes_received += 1;
        if self.wanted_since.take().is_some() {
            self.stats.keyframes_answered += 1;
        }
    }

    /// Returns the request to send now, if one is due.
    pub fn poll_request(&mut self, now: Instant) -> Option<Request> {
        self.wanted_since?;
        if self
            .last_sent
            .is_some_and(|last| now.saturating_duration_since(last) < RETRY_INTERVAL)
        {
            return None;
        }

        self.last_sent = Some(now);
        self.attempts += 1;
        self.stats.requests_sent += 1;
        if self.attempts <= PLI_ATTEMPTS {
            return Some(Request::Pli);
        }
        self.fir_seq = self.fir_seq.wrapping_add(1);
        Some(Request::Fir { seq: self.fir_seq })
    }

    /// Time the next request becomes due, if one is wanted.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wanted_since?;
        Some(
            self.last_sent
                .map_or(self.wanted_since?, |last| last + RETRY_INTERVAL),
        )
    }

    /// Counters so far.
    pub fn stats(&self) -> KeyframeStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_sent_without_want() {
        let mut requester = KeyframeRequester::default();
        assert_eq!(requester.poll_request(Instant::now()), None);
        assert_eq!(requester.poll_timeout(), None);
    }

    #[test]
    fn requests_repeat_until_keyframe() {
        let start = Instant::now();
        let mut requester = KeyframeRequester::default();
        requester.want(start);
        assert_eq!(requester.poll_request(start), Some(Request::Pli));

        // Many subscribers asking within the interval cause no extra request.
        for step in 1..10 {
            let now = start + Duration::from_millis(step * 20);
            requester.want(now);
            assert_eq!(requester.poll_request(now), None);
        }

        let retry = start + RETRY_INTERVAL;
        assert_eq!(requester.poll_timeout(), Some(retry));
        assert_eq!(requester.poll_request(retry), Some(Request::Pli));

        requester.on_keyframe();
        assert_eq!(requester.poll_request(retry + RETRY_INTERVAL), None);
        assert_eq!(requester.stats().requests_sent, 2);
        assert_eq!(requester.stats().keyframes_answered, 1);
    }

    #[test]
    fn unanswered_plis_escalate_to_fir() {
        let start = Instant::now();
        let mut requester = KeyframeRequester::default();
        requester.want(start);
        let mut sent = Vec::new();
        for attempt in 0..5 {
            let now = start + RETRY_INTERVAL * attempt;
            sent.extend(requester.poll_request(now));
        }
        assert_eq!(&sent[..3], &[Request::Pli; 3]);
        assert_eq!(sent[3], Request::Fir { seq: 1 });
        assert_eq!(sent[4], Request::Fir { seq: 2 });
    }
}
