//! Simulcast layer activity and per-subscriber layer choice.
//!
//! A publisher may stop sending a layer at any time (Chromium drops the top layers when its
//! uplink shrinks), so the choice only considers layers that sent a packet within
//! [`INACTIVE_AFTER`].
//!
//! Each switch costs a keyframe, so the choice has hysteresis. A subscriber goes down as soon
//! as its bandwidth share falls below [`KEEP_PERCENT`] of its layer's bit rate. Going up needs
//! [`UPGRADE_HEADROOM_PERCENT`] of the higher layer's bit rate, and after the estimate held the
//! subscriber below a layer, [`UpgradeGate`] waits [`UPGRADE_DELAY`] of fitting estimates.

use std::time::{Duration, Instant};

/// A layer with no packet for this long is considered stopped.
pub const INACTIVE_AFTER: Duration = Duration::from_secs(1);

/// Length of the window over which a layer's bitrate is measured.
const BITRATE_WINDOW: Duration = Duration::from_secs(1);

/// Switching up to a higher layer needs this factor of its bitrate (in percent) to fit the
/// bandwidth, so an estimate close to a layer's bitrate does not switch back and forth,
/// each switch costing a keyframe.
const UPGRADE_HEADROOM_PERCENT: u64 = 125;

/// The layer being forwarded is kept while the bandwidth covers this share of its bit rate
/// (in percent). A congestion controller backs off to 85 % of the rate it measures arriving,
/// so one spurious back-off keeps the layer, while a path that carries less than the layer
/// soon falls below this share.
pub const KEEP_PERCENT: u64 = 80;

/// After the estimate held a subscriber below the layer its maximum allows, an upgrade
/// waits until the estimate has allowed the higher layer for this long.
pub const UPGRADE_DELAY: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, Default)]
struct LayerStats {
    last_packet: Option<Instant>,
    window_start: Option<Instant>,
    window_bytes: u64,
    bitrate_bps: u64,
}

/// Activity and bitrate of the layers of one published track.
#[derive(Debug, Default)]
pub struct LayerMonitor {
    layers: Vec<LayerStats>,
}

impl LayerMonitor {
    /// Records a packet of `bytes` on `layer`.
    pub fn on_packet(&mut self, layer: usize, bytes: usize, now: Instant) {
        if self.layers.len() <= layer {
            self.layers.resize(layer + 1, LayerStats::default());
        }
        let stats = &mut self.layers[layer];
        stats.last_packet = Some(now);

        let window_start = *stats.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(window_start);
        if elapsed >= BITRATE_WINDOW {
            stats.bitrate_bps = stats.window_bytes * 8 * 1000 / elapsed.as_millis().max(1) as u64;
            stats.window_start = Some(now);
            stats.window_bytes = 0;
        }
        stats.window_bytes += bytes as u64;
    }

    /// Returns true when `layer` sent a packet within [`INACTIVE_AFTER`].
    pub fn is_active(&self, layer: usize, now: Instant) -> bool {
        self.layers
            .get(layer)
            .and_then(|stats| stats.last_packet)
            .is_some_and(|last| now.saturating_duration_since(last) < INACTIVE_AFTER)
    }

    /// Bitrate of `layer` over the last complete window, in bit/s.
    pub fn bitrate_bps(&self, layer: usize) -> u64 {
        self.layers.get(layer).map_or(0, |stats| stats.bitrate_bps)
    }

    /// Chooses the layer to forward: the highest active layer not above `max_layer` whose
    /// bitrate fits `bandwidth_bps` (when an estimate exists), else the lowest active
    /// layer, or `None` when no layer is active. A layer above `current` must fit with
    /// [`UPGRADE_HEADROOM_PERCENT`] of its bitrate, and `current` itself only with
    /// [`KEEP_PERCENT`].
    pub fn select(
        &self,
        max_layer: usize,
        bandwidth_bps: Option<u64>,
        current: Option<usize>,
        now: Instant,
    ) -> Option<usize> {
        let active = |layer: &usize| self.is_active(*layer, now);
        let fits = |layer: &usize| {
            let layer = *layer;
            let bitrate = self.bitrate_bps(layer);
            let needed = match current {
                Some(current) if layer > current => bitrate * UPGRADE_HEADROOM_PERCENT / 100,
                Some(current) if layer == current => bitrate * KEEP_PERCENT / 100,
                _ => bitrate,
            };
            layer <= max_layer && bandwidth_bps.is_none_or(|bandwidth| needed <= bandwidth)
        };
        let layers = 0..self.layers.len();
        layers
            .clone()
            .rev()
            .filter(active)
            .find(fits)
            .or_else(|| layers.clone().find(active))
    }
}

/// Delays a subscriber's upgrades while its bandwidth estimate recently limited its layer.
#[derive(Debug, Default, Clone, Copy)]
pub struct UpgradeGate {
    /// Last time the estimate chose a lower layer than the maximum alone would.
    limited_at: Option<Instant>,
}

impl UpgradeGate {
    /// Returns the layer to forward. `chosen` is [`LayerMonitor::select`] with the bandwidth
    /// estimate, `unlimited` the same without it, and `current` the active layer being
    /// forwarded. An upgrade above `current` is held back until [`UPGRADE_DELAY`] after the
    /// estimate last limited the choice.
    pub fn admit(
        &mut self,
        chosen: Option<usize>,
        unlimited: Option<usize>,
        current: Option<usize>,
        now: Instant,
    ) -> Option<usize> {
        if let (Some(chosen), Some(unlimited)) = (chosen, unlimited)
            && chosen < unlimited
        {
            self.limited_at = Some(now);
        }
        let recently_limited = self
            .limited_at
            .is_some_and(|at| now.saturating_duration_since(at) < UPGRADE_DELAY);
        match (chosen, current) {
            (Some(chosen), Some(current)) if chosen > current && recently_limited => Some(current),
            _ => chosen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor_with_layers(layers: &[(usize, usize)], now: Instant) -> LayerMonitor {
        let mut monitor = LayerMonitor::default();
        for step in 0..=20u64 {
            let at = now + Duration::from_millis(step * 60);
            for &(layer, bytes) in layers {
                monitor.on_packet(layer, bytes, at);
            }
        }
        monitor
    }

    #[test]
    fn highest_allowed_active_layer_is_chosen() {
        let now = Instant::now();
        let monitor = monitor_with_layers(&[(0, 100), (1, 400), (2, 1200)], now);
        let later = now + Duration::from_millis(1200);
        assert_eq!(monitor.select(2, None, None, later), Some(2));
        assert_eq!(monitor.select(1, None, None, later), Some(1));
        assert_eq!(monitor.select(0, None, None, later), Some(0));
    }

    #[test]
    fn stopped_layer_is_skipped() {
        let now = Instant::now();
        let mut monitor = monitor_with_layers(&[(0, 100), (1, 400), (2, 1200)], now);
        let later = now + Duration::from_secs(3);
        monitor.on_packet(0, 100, later);
        monitor.on_packet(1, 400, later);
        assert_eq!(monitor.select(2, None, None, later), Some(1));
        assert!(!monitor.is_active(2, later));
    }

    #[test]
    fn bandwidth_limits_layer() {
        let now = Instant::now();
        let monitor = monitor_with_layers(&[(0, 100), (1, 400), (2, 1200)], now);
        let later = now + Duration::from_millis(1200);
        let low_bandwidth = monitor.bitrate_bps(1) + 1;
        assert_eq!(monitor.select(2, Some(low_bandwidth), None, later), Some(1));
        assert_eq!(monitor.select(2, Some(1), None, later), Some(0));
    }

    #[test]
    fn upgrade_needs_headroom() {
        let now = Instant::now();
        let monitor = monitor_with_layers(&[(0, 100), (1, 400), (2, 1200)], now);
        let later = now + Duration::from_millis(1200);
        let just_enough = monitor.bitrate_bps(2);
        assert_eq!(
            monitor.select(2, Some(just_enough), Some(2), later),
            Some(2)
        );
        assert_eq!(
            monitor.select(2, Some(just_enough), Some(1), later),
            Some(1)
        );
        let with_headroom = just_enough * 5 / 4;
        assert_eq!(
            monitor.select(2, Some(with_headroom), Some(1), later),
            Some(2)
        );
    }

    #[test]
    fn current_layer_kept_within_tolerance() {
        let now = Instant::now();
        let monitor = monitor_with_layers(&[(0, 100), (1, 400), (2, 1200)], now);
        let later = now + Duration::from_millis(1200);
        let top = monitor.bitrate_bps(2);
        // A back-off to 85 % of the top layer's rate keeps it.
        let backed_off = top * 85 / 100;
        assert_eq!(monitor.select(2, Some(backed_off), Some(2), later), Some(2));
        // Below the tolerance it goes down, and no other layer gets the tolerance.
        let below = top * KEEP_PERCENT / 100 - 1;
        assert_eq!(monitor.select(2, Some(below), Some(2), later), Some(1));
        assert_eq!(monitor.select(2, Some(backed_off), None, later), Some(1));
    }

    #[test]
    fn upgrade_waits_after_limit() {
        let now = Instant::now();
        let mut gate = UpgradeGate::default();

        // Unlimited by the estimate, an upgrade passes at once.
        assert_eq!(gate.admit(Some(2), Some(2), Some(1), now), Some(2));

        // The estimate keeps the subscriber at layer 0 below the allowed layer 2.
        assert_eq!(gate.admit(Some(0), Some(2), Some(2), now), Some(0));

        // The estimate recovers: the upgrade waits for the delay.
        let soon = now + UPGRADE_DELAY - Duration::from_millis(1);
        assert_eq!(gate.admit(Some(2), Some(2), Some(0), soon), Some(0));
        assert_eq!(
            gate.admit(Some(2), Some(2), Some(0), now + UPGRADE_DELAY),
            Some(2)
        );
    }

    #[test]
    fn downgrade_is_never_delayed() {
        let now = Instant::now();
        let mut gate = UpgradeGate::default();
        assert_eq!(gate.admit(Some(1), Some(2), Some(2), now), Some(1));
        let soon = now + Duration::from_millis(10);
        assert_eq!(gate.admit(Some(0), Some(2), Some(1), soon), Some(0));
        // Without a layer being forwarded, the choice is returned unchanged.
        assert_eq!(gate.admit(Some(2), Some(2), None, soon), Some(2));
    }

    #[test]
    fn no_active_layer() {
        let monitor = LayerMonitor::default();
        assert_eq!(monitor.select(2, None, None, Instant::now()), None);
    }
}
