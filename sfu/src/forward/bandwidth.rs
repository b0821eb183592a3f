//! A subscriber's downlink bandwidth estimate and its share per video track.
//!
//! Subscribers report how much they can receive in REMB messages (RTCP payload-specific
//! feedback, draft-alvestrand-rmcat-remb), which the engine invites by negotiating
//! `goog-remb` on video. The estimate expires when no report arrives for
//! [`ESTIMATE_LIFETIME`], so a subscriber that stops reporting gets the highest layers
//! again instead of being held at an old low value.
//!
//! NOTE: the tests send REMB from `webrtc` clients. Chromium 156 sent none for the engine's
//! streams in the browser suite, so its layers are still chosen without an estimate.

use std::time::{Duration, Instant};

/// A report older than this is ignored.
pub const ESTIMATE_LIFETIME: Duration = Duration::from_secs(5);

/// Bit rate kept free for each audio subscription, in bit/s (Opus voice at 32 kbit/s plus
/// packet overhead).
pub const AUDIO_ALLOWANCE_BPS: u64 = 40_000;

/// Latest bandwidth estimate of one subscriber.
#[derive(Debug, Default, Clone, Copy)]
pub struct DownlinkEstimate {
    latest: Option<(u64, Instant)>,
}

impl DownlinkEstimate {
    /// Records a reported estimate in bit/s.
    pub fn on_report(&mut self, bitrate_bps: u64, now: Instant) {
        self.latest = Some((bitrate_bps, now));
    }

    /// Current estimate in bit/s, or `None` when no report arrived within
    /// [`ESTIMATE_LIFETIME`].
    pub fn current(&self, now: Instant) -> Option<u64> {
        let (bitrate, at) = self.latest?;
        (now.saturating_duration_since(at) < ESTIMATE_LIFETIME).then_some(bitrate)
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
}
