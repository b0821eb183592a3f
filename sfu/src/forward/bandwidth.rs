//! A subscriber's downlink bandwidth estimate and its share per video track.
//!
//! Two sources set the estimate, and the lower one counts:
//! - REMB messages (RTCP payload-specific feedback, draft-alvestrand-rmcat-remb), in which a
//!   subscriber reports how much it can receive. The engine invites them by negotiating
//!   `goog-remb` on video. Chromium 156 sent none for the engine's streams.
//! - The engine's own estimate from the subscriber's transport-wide congestion control
//!   feedback ([`super::congestion::TwccEstimator`]), which Chromium sends.
//!
//! Each source expires when it has not been updated for [`ESTIMATE_LIFETIME`], so a
//! subscriber that stops reporting gets the highest layers again instead of being held at
//! an old low value.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A report older than this is ignored.
pub const ESTIMATE_LIFETIME: Duration = Duration::from_secs(5);

/// Bit rate kept free for each audio subscription, in bit/s (Opus voice at 32 kbit/s plus
/// packet overhead).
pub const AUDIO_ALLOWANCE_BPS: u64 = 40_000;

/// Latest bandwidth estimates of one subscriber.
#[derive(Debug, Default, Clone, Copy)]
pub struct DownlinkEstimate {
    /// Latest REMB report.
    latest: Option<(u64, Instant)>,
    /// Latest estimate from TWCC feedback.
    twcc: Option<(u64, Instant)>,
}

impl DownlinkEstimate {
    /// Records an estimate in bit/s that the subscriber reported in a REMB message.
    pub fn on_report(&mut self, bitrate_bps: u64, now: Instant) {
        self.latest = Some((bitrate_bps, now));
    }

    /// Records an estimate in bit/s computed from the subscriber's TWCC feedback.
    pub fn on_twcc_estimate(&mut self, bitrate_bps: u64, now: Instant) {
        self.twcc = Some((bitrate_bps, now));
    }

    /// Current estimate in bit/s: the lower of the REMB and TWCC estimates updated within
    /// [`ESTIMATE_LIFETIME`], or `None` when neither was.
    pub fn current(&self, now: Instant) -> Option<u64> {
        let fresh = |latest: Option<(u64, Instant)>| {
            let (bitrate, at) = latest?;
            (now.saturating_duration_since(at) < ESTIMATE_LIFETIME).then_some(bitrate)
        };
        match (fresh(self.latest), fresh(self.twcc)) {
            (Some(remb), Some(twcc)) => Some(remb.min(twcc)),
            (remb, twcc) => remb.or(twcc),
        }
    }

    /// Budget of one video track in bit/s: the estimate minus the audio allowance, shared
    /// equally by `video_tracks` tracks.
    ///
    /// TODO: share by priority (the active speaker and larger tiles first) rather than
    /// equally.
    pub fn video_budget(
        &self,
        now: Instant,
        audio_tracks: usize,
        video_tracks: usize,
    ) -> Option<u64> {
        let estimate = self.current(now)?;
        let audio = AUDIO_ALLOWANCE_BPS * audio_tracks as u64;
        Some(estimate.saturating_sub(audio) / video_tracks.max(1) as u64)
    }
}

/// Share of a subscriber's bandwidth estimate that retransmissions may use, in percent.
pub const RETRANSMISSION_SHARE_PERCENT: u64 = 20;

/// Window over which retransmitted bytes are counted.
const RETRANSMISSION_WINDOW: Duration = Duration::from_secs(1);

/// Caps a subscriber's retransmissions to [`RETRANSMISSION_SHARE_PERCENT`] of its bandwidth
/// estimate over the last second.
///
/// On a path that drops most of what it gets, every retransmission is lost again and
/// NACKed again. Without a cap the resends alone kept such a path full, so the subscriber
/// lost most packets even after it had been moved to a layer the path carries.
#[derive(Debug, Default)]
pub struct RetransmissionBudget {
    sent: VecDeque<(Instant, usize)>,
    bytes_in_window: usize,
}

impl RetransmissionBudget {
    /// Returns true when another retransmission fits the cap for `estimate_bps`. Without an
    /// estimate there is no cap.
    pub fn allows(&mut self, estimate_bps: Option<u64>, now: Instant) -> bool {
        self.expire(now);
        let Some(estimate) = estimate_bps else {
            return true;
        };
        let cap_bytes = estimate * RETRANSMISSION_SHARE_PERCENT / 100 / 8
            * RETRANSMISSION_WINDOW.as_millis() as u64
            / 1000;
        (self.bytes_in_window as u64) < cap_bytes
    }

    /// Records a retransmission of `bytes`.
    pub fn on_sent(&mut self, bytes: usize, now: Instant) {
        self.expire(now);
        self.sent.push_back((now, bytes));
        self.bytes_in_window += bytes;
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, bytes)) = self.sent.front() {
            if now.saturating_duration_since(at) < RETRANSMISSION_WINDOW {
                break;
            }
            self.sent.pop_front();
            self.bytes_in_window -= bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_expires() {
        let now = Instant::now();
        let mut estimate = DownlinkEstimate::default();
        assert_eq!(estimate.current(now), None);

        estimate.on_report(500_000, now);
        assert_eq!(
            estimate.current(now + Duration::from_secs(1)),
            Some(500_000)
        );
        assert_eq!(estimate.current(now + ESTIMATE_LIFETIME), None);
    }

    #[test]
    fn budget_is_shared_by_video_tracks() {
        let now = Instant::now();
        let mut estimate = DownlinkEstimate::default();
        estimate.on_report(1_080_000, now);
        assert_eq!(estimate.video_budget(now, 2, 2), Some(500_000));
        assert_eq!(estimate.video_budget(now, 0, 0), Some(1_080_000));
        estimate.on_report(10_000, now);
        assert_eq!(estimate.video_budget(now, 1, 1), Some(0));
    }

    #[test]
    fn lower_source_counts() {
        let now = Instant::now();
        let mut estimate = DownlinkEstimate::default();
        estimate.on_twcc_estimate(800_000, now);
        assert_eq!(estimate.current(now), Some(800_000));

        estimate.on_report(500_000, now);
        assert_eq!(estimate.current(now), Some(500_000));
        estimate.on_report(2_000_000, now);
        assert_eq!(estimate.current(now), Some(800_000));
    }

    #[test]
    fn sources_expire_separately() {
        let now = Instant::now();
        let mut estimate = DownlinkEstimate::default();
        estimate.on_report(300_000, now);
        let later = now + Duration::from_secs(4);
        estimate.on_twcc_estimate(900_000, later);
        assert_eq!(estimate.current(later), Some(300_000));
        assert_eq!(
            estimate.current(now + ESTIMATE_LIFETIME),
            Some(900_000),
            "an expired REMB report still limits the estimate"
        );
        assert_eq!(estimate.current(later + ESTIMATE_LIFETIME), None);
    }

    #[test]
    fn retransmissions_capped_by_estimate() {
        let now = Instant::now();
        let mut budget = RetransmissionBudget::default();
        // 20 % of 400 kbit/s is 10,000 bytes a second.
        let mut sent = 0;
        while budget.allows(Some(400_000), now) {
            budget.on_sent(1_000, now);
            sent += 1;
        }
        assert_eq!(sent, 10);

        // A second later the window is empty again.
        let later = now + Duration::from_secs(1);
        assert!(budget.allows(Some(400_000), later));
    }

    #[test]
    fn retransmissions_unlimited_without_estimate() {
        let now = Instant::now();
        let mut budget = RetransmissionBudget::default();
        for _ in 0..1_000 {
            assert!(budget.allows(None, now));
            budget.on_sent(1_200, now);
        }
    }
}
