//! The engine core: shards of rooms and peers on the `rtc` stack, and the tokio driver.

pub mod codecs;
pub mod deliver_rtcp;
pub mod driver;
pub mod io;
pub mod local;
pub mod media;
pub mod negotiate;
pub mod participant;
pub mod peer;
pub mod peer_events;
pub mod room;
pub mod shard;
pub mod stun;

use std::fmt::Display;
use std::time::{Duration, Instant};

/// Warn-level log of dropped input, at most once per [`RateLimitedLog::INTERVAL`] with a
/// count of what was suppressed, so a peer sending garbage cannot flood the log.
#[derive(Debug, Default)]
pub struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    /// Minimum time between two log lines.
    pub const INTERVAL: Duration = Duration::from_secs(5);

    /// Logs `message` with `detail` unless a line was logged within the interval.
    pub fn warn(&mut self, message: &str, detail: impl Display) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Self::INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(suppressed = self.suppressed, %detail, "{message}");
        self.last = Some(now);
        self.suppressed = 0;
    }
}
