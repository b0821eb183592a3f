//! Active speaker detection from the audio level header extension (RFC 6464).
//!
//! Each participant's level (0 dBov loudest, 127 silence) becomes a loudness
//! `127 - level`, smoothed with an exponential moving average over [`SMOOTHING`]. The active
//! speaker changes only when another participant has been louder by [`MARGIN`] for
//! [`HOLD`] and is above [`SPEECH_THRESHOLD`], so short noises and crosstalk do not make a
//! speaker view flicker. When everyone is quiet the last speaker stays active.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Time constant of the moving average.
pub const SMOOTHING: Duration = Duration::from_millis(400);
/// Time a challenger must stay louder before becoming the active speaker.
pub const HOLD: Duration = Duration::from_millis(600);
/// Loudness lead, in dB, a challenger needs over the active speaker.
pub const MARGIN: f64 = 6.0;
/// Smoothed loudness, in dB above the silence floor of 127 dBov, that counts as speech.
pub const SPEECH_THRESHOLD: f64 = 60.0;

#[derive(Debug, Clone, Copy)]
struct Level {
    smoothed: f64,
    updated: Instant,
}

/// Active speaker state of one room, keyed by participant.
#[derive(Debug)]
pub struct SpeakerDetector<P> {
    levels: HashMap<P, Level>,
    active: Option<P>,
    challenger: Option<(P, Instant)>,
}

impl<P> Default for SpeakerDetector<P> {
    fn default() -> Self {
        Self {
            levels: HashMap::new(),
            active: None,
            challenger: None,
        }
    }
}

impl<P: Clone + Eq + Hash> SpeakerDetector<P> {
    /// Records an audio level in dBov (the 7-bit value of the extension).
    pub fn on_level(&mut self, participant: &P, level_dbov: u8, now: Instant) {
        let loudness = 127.0 - f64::from(level_dbov.min(127));
        let entry = self.levels.entry(participant.clone()).or_insert(Level {
            smoothed: 0.0,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(entry.updated).as_secs_f64();
        // Weight of the new sample grows with the time since the previous one, so the
        // average does not depend on the packet rate.
        let weight = 1.0 - (-elapsed.max(0.02) / SMOOTHING.as_secs_f64()).exp();
        entry.smoothed += weight * (loudness - entry.smoothed);
        entry.updated = now;
    }

    /// Forgets a participant that left.
    pub fn remove(&mut self, participant: &P) {
        self.levels.remove(participant);
        if self.active.as_ref() == Some(participant) {
            self.active = None;
        }
        if self
            .challenger
            .as_ref()
            .is_some_and(|(p, _)| p == participant)
        {
            self.challenger = None;
        }
    }

    /// Current active speaker.
    pub fn active(&self) -> Option<&P> {
        self.active.as_ref()
    }

    /// Re-evaluates the active speaker, returning the new one when it changed.
    pub fn poll(&mut self, now: Instant) -> Option<P> {
        let (loudest, loudness) = self.loudest(now)?;
        if self.active.as_ref() == Some(&loudest) {
            self.challenger = None;
            return None;
        }

        let active_loudness = self
            .active
            .as_ref()
            .map_or(0.0, |active| self.current(active, now));
        if loudness < SPEECH_THRESHOLD || loudness < active_loudness + MARGIN {
            self.challenger = None;
            return None;
        }

        match &self.challenger {
            Some((challenger, since)) if *challenger == loudest => {
                if now.saturating_duration_since(*since) < HOLD {
                    return None;
                }
            }
            _ => {
                self.challenger = Some((loudest, now));
                return None;
            }
        }

        self.challenger = None;
        self.active = Some(loudest.clone());
        Some(loudest)
    }

    fn loudest(&self, now: Instant) -> Option<(P, f64)> {
        self.levels
            .keys()
            .map(|participant| (participant, self.current(participant, now)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(participant, loudness)| (participant.clone(), loudness))
    }

    /// Smoothed loudness, decayed toward silence when no level arrived recently (a muted
    /// or discontinuous sender stops sending packets).
    fn current(&self, participant: &P, now: Instant) -> f64 {
        let Some(level) = self.levels.get(participant) else {
            return 0.0;
        };
        let silent_for = now.saturating_duration_since(level.updated).as_secs_f64();
        level.smoothed * (-silent_for / SMOOTHING.as_secs_f64()).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(20);

    /// Feeds 20 ms audio levels for each participant for `duration`, polling after each
    /// tick, and returns every change.
    fn feed(
        detector: &mut SpeakerDetector<&'static str>,
        start: Instant,
        duration: Duration,
        levels: &[(&'static str, u8)],
    ) -> (Instant, Vec<&'static str>) {
        let mut changes = Vec::new();
        let mut now = start;
        while now < start + duration {
            now += TICK;
            for (participant, level) in levels {
                detector.on_level(participant, *level, now);
            }
            changes.extend(detector.poll(now));
        }
        (now, changes)
    }

    #[test]
    fn loud_speaker_becomes_active() {
        let mut detector = SpeakerDetector::default();
        let start = Instant::now();
        let (_, changes) = feed(
            &mut detector,
            start,
            Duration::from_secs(2),
            &[("alice", 30), ("bob", 127)],
        );
        assert_eq!(changes, vec!["alice"]);
        assert_eq!(detector.active(), Some(&"alice"));
    }

    #[test]
    fn short_noise_does_not_switch() {
        let mut detector = SpeakerDetector::default();
        let start = Instant::now();
        let (now, _) = feed(
            &mut detector,
            start,
            Duration::from_secs(2),
            &[("alice", 30), ("bob", 127)],
        );
        let (now, noise) = feed(
            &mut detector,
            now,
            Duration::from_millis(200),
            &[("alice", 127), ("bob", 10)],
        );
        let (_, after) = feed(
            &mut detector,
            now,
            Duration::from_secs(1),
            &[("alice", 30), ("bob", 127)],
        );
        assert!(noise.is_empty());
        assert!(after.is_empty());
        assert_eq!(detector.active(), Some(&"alice"));
    }

    #[test]
    fn sustained_speech_switches_once() {
        let mut detector = SpeakerDetector::default();
        let start = Instant::now();
        let (now, _) = feed(
            &mut detector,
            start,
            Duration::from_secs(2),
            &[("alice", 30), ("bob", 127)],
        );
        let (_, changes) = feed(
            &mut detector,
            now,
            Duration::from_secs(3),
            &[("alice", 127), ("bob", 25)],
        );
        assert_eq!(changes, vec!["bob"]);
    }

    #[test]
    fn silence_keeps_last_speaker() {
        let mut detector = SpeakerDetector::default();
        let start = Instant::now();
        let (now, _) = feed(
            &mut detector,
            start,
            Duration::from_secs(2),
            &[("alice", 30)],
        );
        let (_, changes) = feed(
            &mut detector,
            now,
            Duration::from_secs(5),
            &[("alice", 127), ("bob", 127)],
        );
        assert!(changes.is_empty());
        assert_eq!(detector.active(), Some(&"alice"));
    }
}
