//! Tracks whose media the caller supplies instead of a participant's connection: audio
//! the server produces (a mixed stream for one listener) or tracks relayed from another
//! engine ([`crate::RelayReceiver`]).
//!
//! [`crate::Sfu::publish_local`] publishes such a track in a room. The engine fans its
//! packets out to the track's subscribers exactly like a participant's track: each
//! subscriber gets its own SSRC, sequence numbers and SRTP, NACKs are served from the
//! subscription's packet cache, simulcast layers are chosen per subscriber, and
//! [`crate::SfuEvent::TrackPublished`] and [`crate::SfuEvent::TrackUnpublished`] announce
//! the track. Keyframe requests from subscribers arrive on [`LocalTrack::keyframe_requests`].

use bytes::Bytes;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, TYPE_RTCP_FB_CCM, TYPE_RTCP_FB_GOOG_REMB, TYPE_RTCP_FB_NACK,
};
use rtc::shared::marshal::Unmarshal;
use tokio::sync::mpsc;

use crate::engine::driver::Command;
use crate::error::SfuError;
use crate::ids::{MediaKind, Rid, RoomId, TrackId};

/// Codec of a local track, as it appears in the subscribers' SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCodec {
    /// MIME type, such as `audio/opus` or `video/VP8`.
    pub mime_type: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels; 0 for video.
    pub channels: u16,
    /// Format parameters (`a=fmtp`), empty when there are none.
    pub fmtp: String,
}

impl LocalCodec {
    /// Opus with the parameters the engine offers to every peer.
    pub fn opus() -> Self {
        Self {
            mime_type: "audio/opus".to_owned(),
            clock_rate: 48_000,
            channels: 2,
            fmtp: "minptime=10;useinbandfec=1".to_owned(),
        }
    }

    /// VP8.
    pub fn vp8() -> Self {
        Self {
            mime_type: "video/VP8".to_owned(),
            clock_rate: 90_000,
            channels: 0,
            fmtp: String::new(),
        }
    }

    pub(crate) fn to_rtc(&self, kind: MediaKind) -> RTCRtpCodec {
        let feedback = |typ: &str, parameter: &str| RTCPFeedback {
            typ: typ.to_owned(),
            parameter: parameter.to_owned(),
        };
        let rtcp_feedback = match kind {
            MediaKind::Audio => Vec::new(),
            MediaKind::Video => vec![
                feedback(TYPE_RTCP_FB_NACK, ""),
                feedback(TYPE_RTCP_FB_NACK, "pli"),
                feedback(TYPE_RTCP_FB_CCM, "fir"),
                feedback(TYPE_RTCP_FB_GOOG_REMB, ""),
            ],
        };
        RTCRtpCodec {
            mime_type: self.mime_type.clone(),
            clock_rate: self.clock_rate,
            channels: self.channels,
            sdp_fmtp_line: self.fmtp.clone(),
            rtcp_feedback,
        }
    }
}

/// Description of a local track.
#[derive(Debug, Clone)]
pub struct LocalTrackOptions {
    /// Audio or video.
    pub kind: MediaKind,
    /// Codec of every packet the caller writes.
    pub codec: LocalCodec,
    /// Simulcast layers from lowest to highest, empty without simulcast.
    pub rids: Vec<Rid>,
    /// Subscribe every member of an automatically subscribing room to the track. When
    /// false, only [`crate::Sfu::subscribe`] adds subscribers, for example the one
    /// listener a mixed stream is made for.
    pub auto_subscribe: bool,
    /// Whether the engine copies this audio track's packets to the room's audio taps, as
    /// it copies a participant's audio. Set it for speech relayed from another engine, so
    /// that a recording or a mix hears it. Leave it off for a mix the caller made.
    pub tap_audio: bool,
}

/// One RTP payload the caller publishes on a local track.
#[derive(Debug, Clone)]
pub struct LocalPacket {
    /// Simulcast layer index, 0 for the lowest or for a track without simulcast.
    pub layer: usize,
    /// Sequence number in the layer's own numbering; `None` lets the engine number the
    /// packets of the layer consecutively in the order they are written.
    pub sequence_number: Option<u16>,
    /// RTP timestamp in the codec's clock rate.
    pub timestamp: u32,
    /// RTP marker bit, set on the last packet of a video frame.
    pub marker: bool,
    /// The codec payload.
    pub payload: Bytes,
    /// Audio level of an audio packet, as the `ssrc-audio-level` header extension
    /// carries it (RFC 6464: the voice activity bit and the level in -dBov). The engine
    /// detects the active speaker from it and passes it on to subscribers.
    pub audio_level: Option<u8>,
}

impl LocalPacket {
    /// Parses a whole RTP packet (header and payload, no SRTP) received for `layer`, for
    /// example from another engine. The header's SSRC, payload type and extensions are
    /// dropped, since every subscriber gets its own.
    pub fn from_rtp(layer: usize, mut datagram: &[u8]) -> Result<Self, SfuError> {
        let packet = rtp::Packet::unmarshal(&mut datagram)?;
        Ok(Self {
            layer,
            sequence_number: Some(packet.header.sequence_number),
            timestamp: packet.header.timestamp,
            marker: packet.header.marker,
            payload: packet.payload,
            audio_level: None,
        })
    }
}

/// A subscriber of a local video track waits for a keyframe: it joined, lost packets it
/// could not repair, or switched layer. The engine repeats a request every 300 ms until a
/// keyframe of that layer is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyframeRequest {
    /// The track.
    pub track: TrackId,
    /// Layer index, 0 for the lowest.
    pub layer: usize,
}

/// Handle of a published local track. Dropping it unpublishes the track.
pub struct LocalTrack {
    pub(crate) id: TrackId,
    pub(crate) room: RoomId,
    pub(crate) shard: mpsc::UnboundedSender<Command>,
    pub(crate) keyframe_requests: mpsc::UnboundedReceiver<KeyframeRequest>,
}

impl LocalTrack {
    /// Track id, as announced in [`crate::SfuEvent::TrackPublished`].
    pub fn id(&self) -> &TrackId {
        &self.id
    }

    /// Hands one packet to the engine without waiting. Packets are forwarded in the order
    /// they are written. Fails only when the engine has stopped. A packet written after the
    /// room closed is dropped.
    pub fn write(&self, packet: LocalPacket) -> Result<(), SfuError> {
        let track = self.id.clone();
        let command: Command = Box::new(move |shard, now| shard.write_local(now, &track, packet));
        self.shard.send(command).map_err(|_| SfuError::Stopped)
    }

    /// Returns a handle that writes packets to this track from another task. Writes
    /// through it after the track was unpublished are dropped.
    pub fn writer(&self) -> LocalTrackWriter {
        LocalTrackWriter {
            id: self.id.clone(),
            shard: self.shard.clone(),
        }
    }

    /// Keyframe requests from the track's subscribers; only video tracks get any.
    pub fn keyframe_requests(&mut self) -> &mut mpsc::UnboundedReceiver<KeyframeRequest> {
        &mut self.keyframe_requests
    }
}

/// A second handle for writing packets to a [`LocalTrack`], for example one per simulcast
/// layer that arrives on its own task. It does not keep the track published.
#[derive(Clone)]
pub struct LocalTrackWriter {
    id: TrackId,
    shard: mpsc::UnboundedSender<Command>,
}

impl LocalTrackWriter {
    /// Hands one packet to the engine without waiting, like [`LocalTrack::write`].
    pub fn write(&self, packet: LocalPacket) -> Result<(), SfuError> {
        let track = self.id.clone();
        let command: Command = Box::new(move |shard, now| shard.write_local(now, &track, packet));
        self.shard.send(command).map_err(|_| SfuError::Stopped)
    }
}

impl Drop for LocalTrack {
    fn drop(&mut self) {
        let track = self.id.clone();
        let room = self.room.clone();
        let command: Command = Box::new(move |shard, now| {
            shard.unpublish_local(now, &room, &track);
        });
        // The engine may already have stopped, and then the track is gone with it.
        let _ = self.shard.send(command);
    }
}

#[cfg(test)]
mod tests {
    use rtc::shared::marshal::Marshal;

    use super::*;

    #[test]
    fn packet_from_whole_rtp() {
        let packet = rtp::Packet {
            header: rtp::Header {
                version: 2,
                marker: true,
                payload_type: 96,
                sequence_number: 65_535,
                timestamp: 123_456,
                ssrc: 0x1234_5678,
                ..Default::default()
            },
            payload: Bytes::from_static(&[1, 2, 3, 4]),
        };
        let datagram = packet.marshal().unwrap();

        let local = LocalPacket::from_rtp(2, &datagram).unwrap();
        assert_eq!(local.layer, 2);
        assert_eq!(local.sequence_number, Some(65_535));
        assert_eq!(local.timestamp, 123_456);
        assert!(local.marker);
        assert_eq!(&local.payload[..], &[1, 2, 3, 4]);
        assert!(
            LocalPacket::from_rtp(0, &datagram[..5]).is_err(),
            "truncated header"
        );
    }
}
