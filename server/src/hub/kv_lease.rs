//! JetStream key-value buckets whose entries are leases: each node rewrites
//! its own keys every [`HEARTBEAT`], and an entry not rewritten for
//! [`LEASE`] belongs to a node that stopped.
//!
//! The bucket's `max_age` is the lease, so NATS removes a dead node's
//! entries by itself. NATS 2.9 sends watchers nothing when `max_age`
//! removes an entry (delete markers for expiry came with 2.11), so every
//! reader also keeps the time it last saw each key and drops keys older
//! than the lease itself ([`Leased::expire`]).

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use tokio::time::{Instant, Interval, MissedTickBehavior};

/// How often a node rewrites its entries.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long an entry lives without being rewritten: three heartbeats, so one
/// late or lost write does not drop a live node.
pub const LEASE: Duration = Duration::from_secs(15);
/// How often readers drop expired entries.
pub const SWEEP: Duration = Duration::from_secs(1);
/// Pause before opening a bucket or its watcher again after a failure.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Returns the bucket name for a NATS prefix and a purpose, e.g.
/// `DANGWU_PRESENCE`.
pub fn bucket_name(prefix: &str, purpose: &str) -> String {
    format!(
        "{}_{purpose}",
        prefix.replace('.', "_").to_ascii_uppercase()
    )
}

/// Creates the bucket, or opens it when another node created it. The bucket
/// lives in memory, as the hub stream does: after a NATS restart every node
/// writes its entries again within one heartbeat.
///
/// The bucket's stream is created here with the settings that async-nats
/// 0.52 gives a key-value bucket, because its `create_key_value` first reads
/// the account info, whose reply from NATS 2.9 it fails to parse.
pub async fn open(context: &jetstream::Context, bucket: &str) -> Result<kv::Store, String> {
    let config = stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age: LEASE,
        storage: stream::StorageType::Memory,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    context
        .get_or_create_stream(config)
        .await
        .map_err(|error| format!("failed to create the stream of bucket {bucket}: {error}"))?;
    context
        .get_key_value(bucket)
        .await
        .map_err(|error| format!("failed to open bucket {bucket}: {error}"))
}

/// An open bucket with a watcher over all its keys and the writer's and
/// reader's timers, for one cycle of a task that shares state through it.
pub struct Link {
    pub store: kv::Store,
    pub watch: kv::Watch,
    /// Ticks every [`HEARTBEAT`], first at once.
    pub heartbeat: Interval,
    /// Ticks every [`SWEEP`].
    pub sweep: Interval,
}

/// Opens the bucket and its watcher for a task that shares the state named
/// `what` through it, and logs the recovery when the previous cycle failed.
pub async fn link(
    context: &jetstream::Context,
    bucket: &str,
    what: &str,
    failing: &mut bool,
) -> Result<Link, String> {
    let store = open(context, bucket).await?;
    let watch = store.watch_all().await.map_err(|error| error.to_string())?;
    if *failing {
        tracing::info!(%bucket, "sharing {what} through NATS works again");
        *failing = false;
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sweep = tokio::time::interval(SWEEP);
    sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
    Ok(Link {
        store,
        watch,
        heartbeat,
        sweep,
    })
}

/// Logs a failed cycle once per outage, not once per retry, then waits
/// [`RETRY_DELAY`] before the next cycle.
pub async fn retry_after(bucket: &str, what: &str, error: &str, failing: &mut bool) {
    if !*failing {
        tracing::warn!(%bucket, %error, "sharing {what} through NATS failed, retrying");
        *failing = true;
    }
    tokio::time::sleep(RETRY_DELAY).await;
}

/// Escapes text into one key token: letters, digits, '-' and '_' stay, and
/// every other byte becomes `=HH`, so the token contains no '.'.
pub fn key_token(text: &str) -> String {
    let mut token = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            token.push(char::from(byte));
        } else {
            token.push_str(&format!("={byte:02X}"));
        }
    }
    token
}

/// Reverses [`key_token`]; returns `None` for a token it did not make.
pub fn parse_key_token(token: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(token.len());
    let mut rest = token.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'=' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Returns when the entry was written, on this node's clock. The age comes
/// from the NATS server's clock and is capped at [`LEASE`], so clock skew
/// between a node and NATS shortens or stretches a lease by at most the skew.
pub fn written_at(entry: &kv::Entry) -> Instant {
    let age = time::OffsetDateTime::now_utc() - entry.created;
    let age = Duration::try_from(age).unwrap_or_default().min(LEASE);
    Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
}

/// Values read from a lease bucket, with the time each was written.
#[derive(Debug)]
pub struct Leased<T> {
    entries: HashMap<String, (T, Instant)>,
}

impl<T> Default for Leased<T> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<T> Leased<T> {
    /// Stores a value read at `written`.
    pub fn insert(&mut self, key: String, value: T, written: Instant) {
        self.entries.insert(key, (value, written));
    }

    /// Removes a deleted key.
    pub fn remove(&mut self, key: &str) -> Option<T> {
        self.entries.remove(key).map(|(value, _)| value)
    }

    /// Removes a key and returns its value with the time it was written.
    pub fn take(&mut self, key: &str) -> Option<(T, Instant)> {
        self.entries.remove(key)
    }

    /// Returns the value of a key.
    pub fn get(&self, key: &str) -> Option<&T> {
        self.entries.get(key).map(|(value, _)| value)
    }

    /// Drops the entries older than [`LEASE`] at `now` and returns their keys.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, (_, written))| now.saturating_duration_since(*written) > LEASE)
            .map(|(key, _)| key.clone())
            .collect();
        for key in &expired {
            self.entries.remove(key);
        }
        expired
    }

    /// Iterates over the live keys and values.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &T)> {
        self.entries.iter().map(|(key, (value, _))| (key, value))
    }

    /// Iterates over the entries with the time each was written.
    pub fn iter_written(&self) -> impl Iterator<Item = (&String, &T, Instant)> {
        self.entries
            .iter()
            .map(|(key, (value, written))| (key, value, *written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_token_round_trips() {
        for text in ["meeting:9", "document:12", "node-1", "a.b", "会议:1", "=x"] {
            let token = key_token(text);
            assert!(!token.contains('.'), "{token}");
            assert!(!token.contains(':'), "{token}");
            assert_eq!(parse_key_token(&token).as_deref(), Some(text));
        }
        assert_eq!(key_token("meeting:9"), "meeting=3A9");
    }

    #[test]
    fn bad_key_token_is_rejected() {
        assert_eq!(parse_key_token("a=4"), None);
        assert_eq!(parse_key_token("a=ZZ"), None);
    }

    #[test]
    fn bucket_name_from_prefix() {
        assert_eq!(bucket_name("prov.a-1", "PRESENCE"), "PROV_A-1_PRESENCE");
    }

    #[test]
    fn leased_entries_expire() {
        let mut leased = Leased::default();
        let start = Instant::now();
        leased.insert("old".to_owned(), 1, start);
        leased.insert("new".to_owned(), 2, start + LEASE);
        assert!(leased.expire(start + LEASE).is_empty());
        assert_eq!(
            leased.expire(start + LEASE + Duration::from_millis(1)),
            ["old"]
        );
        assert_eq!(leased.iter().count(), 1);
        assert_eq!(leased.remove("new"), Some(2));
    }
}
