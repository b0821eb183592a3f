//! Simulcast layer activity and per-subscriber layer choice.
//!
//! A publisher may stop sending a layer at any time (Chromium drops the top layers when its
//! uplink shrinks), so the choice only considers layers that sent a packet within
//! [`INACTIVE_AFTER`].

use std::time::{Duration, Instant};

/// A layer with no packet for this long is considered stopped.
pub const INACTIVE_AFTER: Duration = Duration::from_secs(1);

/// Length of the window over which a layer's bitrate is measured.
const BITRATE_WINDOW: Duration = Duration::from_secs(1);

/// Switching up to a higher layer needs this factor of its bitrate (in percent) to fit the
/// bandwidth, so an estimate close to a layer's bitrate does not switch back and forth,
/// each switch costing a keyframe.
const UPGRADE_HEADROOM_PERCENT: u64 = 125;

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
    /// [`UPGRADE_HEADROOM_PERCENT`] of its bitrate.
    pub fn select(
        &self,
        max_layer: usize,
        bandwidth_bps: Option<u64>,
        current: Option<usize>,
        now: Instant,
    ) -> Option<usize> {
        let active: Vec<usize> = (0..self.layers.len())
            .filter(|&layer| self.is_active(layer, now))
            .collect();
        let fits = |layer: &&usize| {
            let layer = **layer;
            let mut needed = self.bitrate_bps(layer);
            if current.is_some_and(|current| layer > current) {
                needed = needed * UPGRADE_HEADROOM_PERCENT / 100;
            }
            layer <= max_layer && bandwidth_bps.is_none_or(|bandwidth| needed <= bandwidth)
        };
        active.iter().rev().find(fits).or(active.first()).copied()
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
    fn no_active_layer() {
        let monitor = LayerMonitor::default();
        assert_eq!(monitor.select(2, None, None, Instant::now()), None);
    }
}
