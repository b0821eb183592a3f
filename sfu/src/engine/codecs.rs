//! Room codec policy: publishers send a video codec that every member can decode.
//!
//! The engine never transcodes. When it answers a publisher's offer, it keeps only the video
//! codecs that every other member of the room offered in its own video sections, so the
//! publisher's encoder picks one of those. A member that joins later and cannot decode a
//! track that is already published is not subscribed to it and gets
//! [`SfuEvent::TrackUndecodable`] instead. A member whose offers have no video section has
//! unknown decoders and does not narrow the choice.
//!
//! Such a member is subscribed to every video track. When its answer to the engine's offer
//! does not accept a track's codec, the subscription is removed and the member gets the
//! same event.

use std::collections::HashSet;

use rtc::peer_connection::RTCPeerConnection;

use super::shard::Shard;
use crate::error::SfuError;
use crate::event::SfuEvent;
use crate::forward::codec::VideoCodec;
use crate::ids::{MediaKind, ParticipantId, RoomId, TrackId};
use crate::sdp::MediaSection;

/// Video codecs a participant can decode, from every video section of its offer, or `None`
/// when the offer has no video section.
pub fn decodable_video_codecs(sections: &[MediaSection]) -> Option<HashSet<VideoCodec>> {
    let mut video_sections = sections
        .iter()
        .filter(|section| section.kind == MediaKind::Video)
        .peekable();
    video_sections.peek()?;
    Some(
        video_sections
            .flat_map(|section| section.codecs.iter())
            .filter_map(|name| VideoCodec::from_mime(name))
            .collect(),
    )
}

/// Restricts the codecs of the publishing video sections of an applied remote offer to
/// `allowed`, before the answer is created. A section that offers none of them keeps its
/// codecs, because the engine cannot transcode. Its track is then undecodable for some
/// members, who get [`SfuEvent::TrackUndecodable`] instead of a subscription.
pub fn restrict_publishing_codecs(
    pc: &mut RTCPeerConnection,
    sections: &[MediaSection],
    allowed: &HashSet<VideoCodec>,
) -> Result<(), SfuError> {
    let publishing = sections
        .iter()
        .filter(|section| section.kind == MediaKind::Video && section.direction.sends());
    for section in publishing {
        let transceivers: Vec<_> = pc.get_transceivers().collect();
        let Some(transceiver_id) = transceivers.into_iter().find(|id| {
            pc.rtp_transceiver(*id)
                .is_some_and(|transceiver| transceiver.mid().as_deref() == Some(&section.mid))
        }) else {
            continue;
        };
        let Some(receiver_id) = pc
            .rtp_transceiver(transceiver_id)
            .and_then(|transceiver| transceiver.receiver())
        else {
            continue;
        };
        let Some(mut receiver) = pc.rtp_receiver(receiver_id) else {
            continue;
        };
        // Repair codecs (RTX, RED, FEC) are left out here: `rtc` adds back those that
        // belong to a kept codec.
        let allowed_codecs: Vec<_> = receiver
            .get_parameters()
            .rtp_parameters
            .codecs
            .iter()
            .filter(|codec| {
                VideoCodec::from_mime(&codec.rtp_codec.mime_type)
                    .is_some_and(|video| allowed.contains(&video))
            })
            .cloned()
            .collect();
        if allowed_codecs.is_empty() {
            tracing::debug!(mid = %section.mid, ?allowed, "no offered video codec fits the room");
            continue;
        }
        if let Some(mut transceiver) = pc.rtp_transceiver(transceiver_id) {
            transceiver.set_codec_preferences(allowed_codecs)?;
        }
    }
    Ok(())
}

impl Shard {
    /// Video codecs that every member of `room` except `publisher` can decode, or `None`
    /// when no such member has offered a video section.
    pub(crate) fn room_video_codecs(
        &self,
        room: &RoomId,
        publisher: &ParticipantId,
    ) -> Option<HashSet<VideoCodec>> {
        let room = self.rooms.get(room)?;
        room.members
            .iter()
            .filter(|member| *member != publisher)
            .filter_map(|member| self.participants.get(member)?.video_decoders.clone())
            .reduce(|common, decoders| common.intersection(&decoders).copied().collect())
    }

    /// Checks that `subscriber` can decode the video codec of a track sent with `codec`.
    pub(crate) fn check_decodable(
        &self,
        subscriber: &ParticipantId,
        track: &TrackId,
        codec: Option<VideoCodec>,
    ) -> Result<(), SfuError> {
        let Some(codec) = codec else {
            return Ok(());
        };
        let decoders = self
            .participants
            .get(subscriber)
            .and_then(|entry| entry.video_decoders.as_ref());
        if decoders.is_some_and(|decoders| !decoders.contains(&codec)) {
            return Err(SfuError::CodecNotSupported {
                track: track.clone(),
                codec,
            });
        }
        Ok(())
    }

    /// Video tracks newly offered to `subscriber` whose codec its answer does not accept,
    /// with that codec. A section the answer rejects (port 0) lists none of the offered
    /// codecs.
    pub(crate) fn rejected_video_codecs(
        &mut self,
        subscriber: &ParticipantId,
        answer: &[MediaSection],
    ) -> Vec<(TrackId, VideoCodec)> {
        let Some(entry) = self.participants.get_mut(subscriber) else {
            return Vec::new();
        };
        let pc = &mut entry.peer.pc;
        let transceivers: Vec<_> = pc.get_transceivers().collect();
        let sender_mids: Vec<_> = transceivers
            .into_iter()
            .filter_map(|id| {
                let transceiver = pc.rtp_transceiver(id)?;
                Some((transceiver.sender()?, transceiver.mid().clone()?))
            })
            .collect();

        let mut rejected = Vec::new();
        for subscription in entry.subscriptions.values() {
            let Some(codec) = subscription
                .video_codec
                .filter(|_| !subscription.negotiated)
            else {
                continue;
            };
            let Some((_, mid)) = sender_mids
                .iter()
                .find(|(sender, _)| *sender == subscription.sender)
            else {
                continue;
            };
            let Some(section) = answer.iter().find(|section| section.mid == *mid) else {
                continue;
            };
            let accepted = section
                .codecs
                .iter()
                .any(|name| VideoCodec::from_mime(name) == Some(codec));
            if !accepted {
                rejected.push((subscription.track.clone(), codec));
            }
        }
        rejected
    }

    /// Announces that a subscriber was not subscribed to a track it cannot decode.
    pub(crate) fn report_undecodable(
        &mut self,
        subscriber: &ParticipantId,
        track: &TrackId,
        codec: VideoCodec,
    ) {
        let Some(room) = self
            .participants
            .get(subscriber)
            .map(|entry| entry.room.clone())
        else {
            return;
        };
        tracing::info!(%room, %subscriber, %track, ?codec, "subscriber cannot decode track");
        self.events.push_back(SfuEvent::TrackUndecodable {
            room,
            subscriber: subscriber.clone(),
            track: track.clone(),
            codec,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::Direction;

    fn section(kind: MediaKind, codecs: &[&str]) -> MediaSection {
        MediaSection {
            mid: "0".to_owned(),
            kind,
            direction: Direction::RecvOnly,
            codecs: codecs.iter().map(|name| (*name).to_owned()).collect(),
            send_rids: Vec::new(),
            extensions: Vec::new(),
            ice_ufrag: None,
        }
    }

    #[test]
    fn decoders_come_from_video_sections() {
        let sections = [
            section(MediaKind::Audio, &["opus"]),
            section(MediaKind::Video, &["VP8", "rtx", "VP9"]),
            section(MediaKind::Video, &["AV1", "red"]),
        ];
        let decoders = decodable_video_codecs(&sections).unwrap();
        let expected = HashSet::from([VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::Av1]);
        assert_eq!(decoders, expected);
    }

    #[test]
    fn audio_only_offer_has_unknown_decoders() {
        let sections = [section(MediaKind::Audio, &["opus"])];
        assert_eq!(decodable_video_codecs(&sections), None);
    }
}
