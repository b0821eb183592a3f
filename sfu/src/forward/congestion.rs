//! A subscriber's downlink bandwidth estimate from transport-wide congestion control
//! feedback (TWCC, draft-holmer-rmcat-transport-wide-cc-extensions-01).
//!
//! The engine numbers every RTP packet it sends a subscriber with a transport-wide sequence
//! number and records when it left and how big it was. The subscriber reports which numbers
//! arrived and when, and [`TwccEstimator`] turns those reports into a bit rate:
//! - the Google Congestion Control estimator of `rtc` 0.21 (`rtc::interceptor::Gcc`). Its
//!   delay-based half backs off to 85 % of the received rate when queueing delay grows.
//!   Its loss-based half backs off from its own target in proportion to loss above 10 %.
//! - a loss limit of the engine's own ([`LossLimit`]), which backs off from the received
//!   rate instead. The estimate starts high (see below). In the simulation of the tests,
//!   1 Mbit/s into a 500 kbit/s path with a 200 ms queue, the queue dropped packets before
//!   GCC saw the delay grow, and GCC alone took 3 s to come down from 20 Mbit/s to
//!   790 kbit/s. With the limit the estimate is below 600 kbit/s within 1 s
//!   (`estimate_falls_fast_behind_short_queue`).
//!
//! The lowest of these is the estimate. Only the estimator, the send history (`History`),
//! the rate meter (`RateCalculator`) and the feedback parser (`convert_twcc`) of `rtc` are
//! used. Its `configure_congestion_control` would also put a pacer in front of every
//! forwarded packet, which the engine does not want: it forwards at the publisher's pace
//! and adapts by choosing simulcast layers instead.
//!
//! The estimate starts at [`MAX_BPS`], so a subscriber gets the layers it got without an
//! estimate until its feedback shows congestion. The engine sends no probe packets. So
//! after a back-off, the estimate rises only by the controllers' own increase while the
//! subscriber receives a lower layer. The loss limit, and GCC far from the rate that last
//! caused a back-off, grow 8 % per second. Near that rate GCC adds 60 kbit/s per second.

use std::time::{Duration, Instant};

use rtc::interceptor::{
    Acknowledgement, BandwidthEstimator, Gcc, History, RateCalculator, convert_twcc,
};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;

/// Upper bound of the estimate and its starting value, in bit/s.
///
/// NOTE: a subscriber whose video layers add up to more than this is limited by it even on
/// an uncongested path.
pub const MAX_BPS: u64 = 20_000_000;

/// Lower bound of the estimate, in bit/s. The layer choice falls back to the lowest active
/// layer below it.
pub const MIN_BPS: u64 = 50_000;

/// A sent packet without feedback for this long is forgotten, which bounds the send history
/// to the packets of this period.
pub const HISTORY_HORIZON: Duration = Duration::from_secs(2);

/// How often the send history is pruned.
const PRUNE_INTERVAL: Duration = Duration::from_millis(250);

/// Smoothed loss above which [`LossLimit`] backs off, as GCC's loss-based half does.
const HIGH_LOSS: f64 = 0.10;

/// Smoothed loss below which [`LossLimit`] rises.
const LOW_LOSS: f64 = 0.02;

/// Minimum time between two changes of [`LossLimit`], so each is seen in the feedback
/// before the next.
const LOSS_LIMIT_INTERVAL: Duration = Duration::from_millis(200);

/// Growth of [`LossLimit`] per second while loss stays low.
const LOSS_LIMIT_GROWTH_PER_SECOND: f64 = 1.08;

/// A limit from loss that backs off from the rate the subscriber receives.
///
/// GCC's loss-based half multiplies its own target by `1 - loss / 2`, which is right for a
/// sender whose target follows what it sends. The engine's estimate starts at [`MAX_BPS`]
/// and keeps rising while the subscriber receives less than it, so that rule needed many
/// steps to reach the rate a lossy path carries. This limit starts there: the received
/// rate times `1 - loss / 2`. It rises while loss stays below [`LOW_LOSS`] and is removed
/// once it reaches GCC's target.
#[derive(Debug, Default, Clone, Copy)]
struct LossLimit {
    limit_bps: Option<f64>,
    last_change: Option<Instant>,
}

impl LossLimit {
    /// Updates the limit with the smoothed `loss` and the `latest_loss` of one feedback
    /// packet. Both must be high to back off, so the limit stops falling as soon as a
    /// lower layer stops the loss, before the average catches up.
    fn update(
        &mut self,
        now: Instant,
        loss: f64,
        latest_loss: f64,
        received_bps: Option<f64>,
        gcc_bps: f64,
    ) {
        let elapsed = self
            .last_change
            .map(|last| now.saturating_duration_since(last));
        if elapsed.is_some_and(|elapsed| elapsed < LOSS_LIMIT_INTERVAL) {
            return;
        }
        if loss.min(latest_loss) > HIGH_LOSS
            && let Some(received) = received_bps
        {
            let backed_off = received * (1.0 - loss / 2.0);
            self.limit_bps = Some(
                self.limit_bps
                    .map_or(backed_off, |limit| limit.min(backed_off)),
            );
            self.last_change = Some(now);
        } else if loss.max(latest_loss) < LOW_LOSS
            && let Some(limit) = self.limit_bps
        {
            let seconds = elapsed
                .unwrap_or(LOSS_LIMIT_INTERVAL)
                .as_secs_f64()
                .min(1.0);
            let raised = limit * LOSS_LIMIT_GROWTH_PER_SECOND.powf(seconds);
            self.limit_bps = (raised < gcc_bps).then_some(raised);
            self.last_change = Some(now);
        }
    }
}

/// Transport-wide sequence numbers, send history and bandwidth estimate of one subscriber's
/// connection.
pub struct TwccEstimator {
    gcc: Gcc,
    loss_limit: LossLimit,
    /// Bytes the subscriber acknowledged, by the time their feedback arrived.
    received: RateCalculator,
    history: History,
    next_sequence: u16,
    last_prune: Option<Instant>,
    feedback_packets: u64,
    last_feedback: Option<Instant>,
}

impl Default for TwccEstimator {
    fn default() -> Self {
        Self {
            gcc: Gcc::new(MAX_BPS as f64, MIN_BPS as f64, MAX_BPS as f64),
            loss_limit: LossLimit::default(),
            received: RateCalculator::default(),
            history: History::new(),
            next_sequence: 0,
            last_prune: None,
            feedback_packets: 0,
            last_feedback: None,
        }
    }
}

impl TwccEstimator {
    /// Records a packet of `size` bytes that leaves now on the stream `ssrc`, and returns the
    /// transport-wide sequence number to write into its header extension.
    pub fn on_sent(&mut self, ssrc: u32, rtp_sequence: u16, size: usize, now: Instant) -> u16 {
        let sequence = self.next_sequence;
        self.next_sequence = sequence.wrapping_add(1);
        self.history
            .add_outgoing(ssrc, rtp_sequence, true, sequence, size, now);

        let prune_due = self
            .last_prune
            .is_none_or(|last| now.saturating_duration_since(last) >= PRUNE_INTERVAL);
        if prune_due {
            self.last_prune = Some(now);
            if let Some(cutoff) = now.checked_sub(HISTORY_HORIZON) {
                self.history.prune_before(cutoff);
            }
        }
        sequence
    }

    /// Updates the estimate with one TWCC feedback packet received now.
    pub fn on_feedback(&mut self, feedback: &TransportLayerCc, now: Instant) {
        self.feedback_packets += 1;
        self.on_acknowledgements(convert_twcc(feedback), now);
    }

    /// Updates the estimate with the fate of sent packets, as one feedback packet reports
    /// it. Arrival times are on the subscriber's clock.
    pub fn on_acknowledgements(
        &mut self,
        acknowledgements: impl IntoIterator<Item = Acknowledgement>,
        now: Instant,
    ) {
        self.last_feedback = Some(now);
        for acknowledgement in acknowledgements {
            self.history.on_twcc_feedback(now, acknowledgement);
        }
        let reports = self.history.take_reports();
        if reports.is_empty() {
            return;
        }
        for report in reports.iter().filter(|report| report.arrived) {
            self.received.add(now, report.size);
        }
        self.gcc.on_reports(now, &reports);

        let lost = reports.iter().filter(|report| !report.arrived).count();
        let latest_loss = lost as f64 / reports.len() as f64;
        let loss = self.gcc.stats().packet_loss.unwrap_or(latest_loss);
        let received = self.received.rate_bits_per_second(now);
        let gcc = self.gcc.target_bitrate();
        self.loss_limit
            .update(now, loss, latest_loss, received, gcc);
    }

    /// Current estimate in bit/s, or `None` when no feedback arrived within `lifetime`.
    pub fn estimate(&self, now: Instant, lifetime: Duration) -> Option<u64> {
        let last = self.last_feedback?;
        if now.saturating_duration_since(last) >= lifetime {
            return None;
        }
        let gcc = self.gcc.target_bitrate();
        let estimate = self
            .loss_limit
            .limit_bps
            .map_or(gcc, |limit| limit.min(gcc));
        Some(estimate.max(MIN_BPS as f64) as u64)
    }

    /// Number of TWCC feedback packets received.
    pub fn feedback_packets(&self) -> u64 {
        self.feedback_packets
    }

    /// Number of sent packets still waiting for feedback.
    pub fn outstanding(&self) -> usize {
        self.history.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rtc::interceptor::{
        Interceptor, Packet, RTPHeaderExtension, StreamInfo, TaggedPacket, TwccReceiverBuilder,
        TwccReceiverInterceptor,
    };
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;
    use rtc::rtp;
    use rtc::rtp::extension::transport_cc_extension::TransportCcExtension;
    use rtc::sansio::Protocol;
    use rtc::shared::TransportContext;
    use rtc::shared::marshal::Marshal;

    const LIFETIME: Duration = Duration::from_secs(5);
    const PACKET_BYTES: usize = 1_200;
    const TWCC_EXTENSION_ID: u8 = 3;
    const SSRC: u32 = 1234;
    const TWCC_URI: &str =
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

    /// A bottleneck in front of the subscriber: packets queue behind each other at
    /// `capacity_bps`, a packet that would wait longer than `queue_limit` is dropped, and
    /// every `drop_every`th packet is lost regardless (0: none).
    struct Link {
        capacity_bps: u64,
        queue_limit: Duration,
        drop_every: u64,
        propagation: Duration,
        busy_until: Option<Instant>,
        sent: u64,
    }

    impl Link {
        fn new(capacity_bps: u64, queue_limit: Duration) -> Self {
            Self {
                capacity_bps,
                queue_limit,
                drop_every: 0,
                propagation: Duration::from_millis(20),
                busy_until: None,
                sent: 0,
            }
        }

        /// Returns when a packet sent at `at` reaches the subscriber, or `None` when lost.
        fn arrival(&mut self, at: Instant, bytes: usize) -> Option<Instant> {
            self.sent += 1;
            if self.drop_every > 0 && self.sent.is_multiple_of(self.drop_every) {
                return None;
            }
            let start = self.busy_until.map_or(at, |busy| busy.max(at));
            if start.saturating_duration_since(at) > self.queue_limit {
                return None;
            }
            let transmission =
                Duration::from_nanos(bytes as u64 * 8 * 1_000_000_000 / self.capacity_bps);
            let done = start + transmission;
            self.busy_until = Some(done);
            Some(done + self.propagation)
        }
    }

    /// A subscriber's TWCC receiver from `rtc` with a simulated clock: it stamps arrivals
    /// and writes the feedback packets the engine reads.
    struct Subscriber {
        receiver: TwccReceiverInterceptor,
        /// Packets on the way, by arrival time.
        in_flight: Vec<(Instant, u16)>,
    }

    impl Subscriber {
        fn new() -> Self {
            let mut receiver = TwccReceiverBuilder::new().build();
            receiver.bind_remote_stream(&StreamInfo {
                ssrc: SSRC,
                rtp_header_extensions: vec![RTPHeaderExtension {
                    uri: TWCC_URI.to_owned(),
                    id: TWCC_EXTENSION_ID as u16,
                }],
                ..Default::default()
            });
            Self {
                receiver,
                in_flight: Vec::new(),
            }
        }

        /// Delivers the packets that arrived by `now` and returns the feedback due by then.
        fn poll(&mut self, now: Instant) -> Vec<TransportLayerCc> {
            self.in_flight.sort_by_key(|(arrival, _)| *arrival);
            let due = self
                .in_flight
                .partition_point(|(arrival, _)| *arrival <= now);
            let arrived: Vec<_> = self.in_flight.drain(..due).collect();
            let mut feedback = Vec::new();
            for (arrival, sequence) in arrived {
                self.feedback_due(arrival, &mut feedback);
                let mut header = rtp::Header {
                    version: 2,
                    ssrc: SSRC,
                    ..Default::default()
                };
                let extension = TransportCcExtension {
                    transport_sequence: sequence,
                }
                .marshal()
                .unwrap();
                header
                    .set_extension(TWCC_EXTENSION_ID, Bytes::from(extension))
                    .unwrap();
                let packet = rtp::Packet {
                    header,
                    payload: Bytes::new(),
                };
                self.receiver
                    .handle_read(TaggedPacket {
                        now: arrival,
                        transport: TransportContext::default(),
                        message: Packet::Rtp(packet).into(),
                    })
                    .unwrap();
                while self.receiver.poll_read().is_some() {}
            }
            self.feedback_due(now, &mut feedback);
            feedback
        }

        fn feedback_due(&mut self, now: Instant, feedback: &mut Vec<TransportLayerCc>) {
            while self.receiver.poll_timeout().is_some_and(|due| due <= now) {
                self.receiver.handle_timeout(now).unwrap();
                while let Some(packet) = self.receiver.poll_write() {
                    let Packet::Rtcp(packets) = packet.message.packet else {
                        continue;
                    };
                    for packet in packets {
                        if let Some(twcc) = packet.as_any().downcast_ref::<TransportLayerCc>() {
                            feedback.push(twcc.clone());
                        }
                    }
                }
            }
        }
    }

    /// Sends `bitrate_bps` over `link` for `duration` from `start`, as 30 frames a second
    /// sent in bursts of packets of up to [`PACKET_BYTES`], the way the engine forwards
    /// video. Feedback returns 20 ms after the subscriber writes it. Returns the estimate
    /// every 100 ms.
    fn run(
        estimator: &mut TwccEstimator,
        subscriber: &mut Subscriber,
        link: &mut Link,
        start: Instant,
        duration: Duration,
        bitrate_bps: u64,
    ) -> Vec<Option<u64>> {
        let frame_interval = Duration::from_micros(33_333);
        let frame_bytes = (bitrate_bps / 8 / 30) as usize;
        let mut next_frame = start;
        let mut returning: Vec<(Instant, TransportLayerCc)> = Vec::new();
        let mut estimates = Vec::new();
        let mut now = start;
        let mut rtp_sequence = 0u16;
        while now < start + duration {
            while next_frame <= now {
                let mut remaining = frame_bytes;
                while remaining > 0 {
                    let bytes = remaining.min(PACKET_BYTES);
                    remaining -= bytes;
                    let sequence = estimator.on_sent(SSRC, rtp_sequence, bytes, next_frame);
                    rtp_sequence = rtp_sequence.wrapping_add(1);
                    if let Some(arrival) = link.arrival(next_frame, bytes) {
                        subscriber.in_flight.push((arrival, sequence));
                    }
                }
                next_frame += frame_interval;
            }
            for feedback in subscriber.poll(now) {
                returning.push((now + Duration::from_millis(20), feedback));
            }
            let (due, later): (Vec<_>, Vec<_>) =
                returning.into_iter().partition(|(at, _)| *at <= now);
            returning = later;
            for (_, feedback) in due {
                estimator.on_feedback(&feedback, now);
            }
            if (now - start).as_millis().is_multiple_of(100) {
                estimates.push(estimator.estimate(now, LIFETIME));
            }
            now += Duration::from_millis(5);
        }
        estimates
    }

    fn last(estimates: &[Option<u64>]) -> u64 {
        estimates
            .last()
            .copied()
            .flatten()
            .expect("an estimate after feedback")
    }

    #[test]
    fn no_estimate_without_feedback() {
        let now = Instant::now();
        let mut estimator = TwccEstimator::default();
        estimator.on_sent(SSRC, 1, PACKET_BYTES, now);
        assert_eq!(estimator.estimate(now, LIFETIME), None);
        assert_eq!(estimator.feedback_packets(), 0);
    }

    #[test]
    fn steady_path_keeps_estimate_high() {
        let start = Instant::now();
        let mut estimator = TwccEstimator::default();
        let mut subscriber = Subscriber::new();
        let mut link = Link::new(10_000_000, Duration::from_millis(200));

        let estimates = run(
            &mut estimator,
            &mut subscriber,
            &mut link,
            start,
            Duration::from_secs(10),
            1_000_000,
        );

        assert!(estimator.feedback_packets() > 50);
        assert!(
            estimates.iter().flatten().all(|bps| *bps >= 5_000_000),
            "estimate fell on an uncongested path: {estimates:?}"
        );
    }

    #[test]
    fn queueing_delay_lowers_estimate() {
        let start = Instant::now();
        let mut estimator = TwccEstimator::default();
        let mut subscriber = Subscriber::new();
        // A deep buffer: the path queues for up to 5 s before it drops anything.
        let mut link = Link::new(500_000, Duration::from_secs(5));

        let estimates = run(
            &mut estimator,
            &mut subscriber,
            &mut link,
            start,
            Duration::from_secs(3),
            1_000_000,
        );

        // From 20 Mbit/s to about the 500 kbit/s the bottleneck carries.
        let estimate = last(&estimates);
        assert!(
            estimate < 600_000,
            "estimate {estimate} far above the 500 kbit/s bottleneck: {estimates:?}"
        );
        assert!(estimate >= MIN_BPS);
    }

    #[test]
    fn loss_lowers_estimate() {
        let start = Instant::now();
        let mut estimator = TwccEstimator::default();
        let mut subscriber = Subscriber::new();
        // No queue builds up, but every third packet is lost.
        let mut link = Link::new(100_000_000, Duration::from_millis(200));
        link.drop_every = 3;

        let estimates = run(
            &mut estimator,
            &mut subscriber,
            &mut link,
            start,
            Duration::from_secs(10),
            1_000_000,
        );

        let estimate = last(&estimates);
        assert!(
            estimate < 1_000_000,
            "estimate {estimate} did not fall with a third of the packets lost: {estimates:?}"
        );
    }

    #[test]
    fn estimate_falls_fast_behind_short_queue() {
        let start = Instant::now();
        let mut estimator = TwccEstimator::default();
        let mut subscriber = Subscriber::new();
        // A queue of 200 ms fills and drops before the delay trend shows.
        let mut link = Link::new(500_000, Duration::from_millis(200));

        let estimates = run(
            &mut estimator,
            &mut subscriber,
            &mut link,
            start,
            Duration::from_secs(1),
            1_000_000,
        );

        let estimate = last(&estimates);
        assert!(
            estimate < 600_000,
            "estimate {estimate} still far above the 500 kbit/s bottleneck after 1 s: \
             {estimates:?}"
        );
    }

    #[test]
    fn estimate_rises_after_congestion_ends() {
        let start = Instant::now();
        let mut estimator = TwccEstimator::default();
        let mut subscriber = Subscriber::new();
        let mut link = Link::new(500_000, Duration::from_millis(200));

        let congested = run(
            &mut estimator,
            &mut subscriber,
            &mut link,
            start,
            Duration::from_secs(3),
            1_000_000,
        );
        let low = last(&congested);
        assert!(low < 600_000, "no back-off: {congested:?}");

        // The sender drops to a rate the path carries, as a lower layer would.
        let recovered = run(
            &mut estimator,
            &mut subscriber,
            &mut link,
            start + Duration::from_secs(3),
            Duration::from_secs(10),
            300_000,
        );
        let high = last(&recovered);
        assert!(
            high > low * 3 / 2,
            "estimate did not rise from {low} on a quiet path: {recovered:?}"
        );
    }

    #[test]
    fn loss_limit_holds_once_loss_stops() {
        let now = Instant::now();
        let mut limit = LossLimit::default();
        limit.update(now, 0.5, 0.5, Some(1_000_000.0), MAX_BPS as f64);
        assert_eq!(limit.limit_bps, Some(750_000.0));

        // The average is still high, but the latest feedback lost nothing: no further
        // back-off from the lower rate now received.
        let later = now + LOSS_LIMIT_INTERVAL;
        limit.update(later, 0.4, 0.0, Some(300_000.0), MAX_BPS as f64);
        assert_eq!(limit.limit_bps, Some(750_000.0));

        // Low loss raises it by the growth rate, and it goes once it reaches GCC's target.
        let later = later + Duration::from_secs(1);
        limit.update(later, 0.01, 0.0, Some(300_000.0), MAX_BPS as f64);
        let raised = limit.limit_bps.unwrap();
        assert!((raised - 750_000.0 * LOSS_LIMIT_GROWTH_PER_SECOND).abs() < 1.0);
        limit.update(later + Duration::from_secs(1), 0.0, 0.0, None, 800_000.0);
        assert_eq!(limit.limit_bps, None);
    }

    #[test]
    fn unanswered_packets_are_forgotten() {
        let start = Instant::now();
        let mut estimator = TwccEstimator::default();
        let mut now = start;
        for sequence in 0..10_000u16 {
            estimator.on_sent(SSRC, sequence, PACKET_BYTES, now);
            now += Duration::from_millis(1);
        }
        // 1,000 packets a second, kept for at most the horizon plus one prune interval.
        let bound = (HISTORY_HORIZON + PRUNE_INTERVAL).as_millis() as usize;
        assert!(
            estimator.outstanding() <= bound,
            "{} packets kept",
            estimator.outstanding()
        );
    }

    #[test]
    fn acknowledgements_of_unknown_packets_are_ignored() {
        let now = Instant::now();
        let mut estimator = TwccEstimator::default();
        estimator.on_acknowledgements(
            [Acknowledgement::received(
                77,
                Some(Duration::from_millis(5)),
                Ecn::NotEct,
            )],
            now,
        );
        assert_eq!(estimator.estimate(now, LIFETIME), Some(MAX_BPS));
    }
}
