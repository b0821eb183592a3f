//! Interceptor that hands inbound RTCP to the engine.
//!
//! In `rtc` 0.21 inbound RTCP ends inside the interceptor chain unless an interceptor marks
//! it with `Attribute::DeliverToApplication`. The engine needs subscribers' PLI, FIR and
//! NACK packets to request keyframes and resend packets, so every RTCP packet is marked.
//!
//! Transport-wide congestion control feedback is also copied to a [`TwccFeedbackQueue`].
//! `rtc` delivers a marked packet only when the media SSRC of the first packet of its
//! compound names one of the connection's tracks. A TWCC feedback packet names the SSRC of
//! the last packet its sender received, which may be an RTX stream. The `webrtc` 0.21
//! client sends such feedback, and `rtc` dropped it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Position in the chain, on the application side of the stock interceptors.
pub const SLOT: usize = 14_000;

/// Maximum number of feedback packets queued for the engine. Older ones are dropped first.
/// The engine drains the queue after every datagram, so it rarely contains more than one
/// compound packet's worth.
const TWCC_QUEUE_LIMIT: usize = 64;

/// TWCC feedback packets received on one connection, with their arrival time, for the
/// engine to read.
#[derive(Debug, Clone, Default)]
pub struct TwccFeedbackQueue(Arc<Mutex<VecDeque<(Instant, TransportLayerCc)>>>);

impl TwccFeedbackQueue {
    fn push(&self, now: Instant, feedback: TransportLayerCc) {
        let mut queue = self.0.lock().unwrap_or_else(|err| err.into_inner());
        if queue.len() >= TWCC_QUEUE_LIMIT {
            queue.pop_front();
        }
        queue.push_back((now, feedback));
    }

    /// Removes and returns the queued feedback, oldest first.
    pub fn take(&self) -> VecDeque<(Instant, TransportLayerCc)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|err| err.into_inner()))
    }
}

/// Marks every inbound RTCP packet for delivery, copies TWCC feedback to a queue, and
/// passes everything through.
#[derive(Default)]
pub struct DeliverRtcp {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
    twcc: TwccFeedbackQueue,
}

impl DeliverRtcp {
    /// Creates the interceptor, which copies TWCC feedback to `twcc`.
    pub fn new(twcc: TwccFeedbackQueue) -> Self {
        Self {
            twcc,
            ..Self::default()
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for DeliverRtcp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                if let Some(feedback) = packet.as_any().downcast_ref::<TransportLayerCc>() {
                    self.twcc.push(msg.now, feedback.clone());
                }
            }
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Self::Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        None
    }
}

impl Interceptor for DeliverRtcp {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
