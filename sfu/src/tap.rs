//! Copies of the audio a room receives, for processing in the server such as a
//! recording of the meeting.

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::ids::ParticipantId;

/// One Opus packet as a publisher sent it, before forwarding.
#[derive(Debug, Clone)]
pub struct AudioPacket {
    /// Participant that sent the packet.
    pub publisher: ParticipantId,
    /// Synchronization source of the publisher's audio track.
    pub ssrc: u32,
    /// RTP sequence number.
    pub sequence_number: u16,
    /// RTP timestamp, in 48 kHz samples for Opus.
    pub timestamp: u32,
    /// The Opus packet.
    pub payload: Bytes,
}

/// Packets a tap buffers before it drops new ones: about two seconds of 20 ms packets
/// from 25 speakers.
pub const TAP_CAPACITY: usize = 2500;

/// The sending end of a room's audio tap.
pub(crate) struct AudioTap {
    sender: mpsc::Sender<AudioPacket>,
    dropped: u64,
}

impl AudioTap {
    pub(crate) fn new() -> (Self, mpsc::Receiver<AudioPacket>) {
        let (sender, receiver) = mpsc::channel(TAP_CAPACITY);
        (Self { sender, dropped: 0 }, receiver)
    }

    /// Passes a copy on without waiting. Returns false once the receiver is gone, so
    /// that the room can remove the tap.
    pub(crate) fn send(&mut self, packet: AudioPacket) -> bool {
        match self.sender.try_send(packet) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped = self.dropped,
                        "audio tap receiver is behind; packets dropped"
                    );
                }
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}
