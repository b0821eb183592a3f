//! Offer/answer handling: publishing from the participant's offers, subscribing through
//! offers the engine sends.

use std::time::Instant;

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

use super::codecs::decodable_video_codecs;
use super::participant::{Connection, Negotiation, PublishedTrack, Subscription, TrackCodec};
use super::shard::Shard;
use crate::error::SfuError;
use crate::event::{SfuEvent, TrackInfo};
use crate::forward::cache::PacketCache;
use crate::forward::codec::VideoCodec;
use crate::forward::forwarder::Forwarder;
use crate::forward::layer::UpgradeGate;
use crate::ids::{MediaKind, ParticipantId, RoomId, TrackId};
use crate::sdp::{self, AUDIO_LEVEL_URI, MediaSection};

impl Shard {
    /// Applies a new offer from a connected participant and returns the answer.
    pub fn renegotiate(
        &mut self,
        now: Instant,
        participant: &ParticipantId,
        offer: String,
    ) -> Result<String, SfuError> {
        let sections = sdp::summarize(&offer)?;
        let room = self.participant_mut(participant)?.room.clone();
        let allowed = self.room_video_codecs(&room, participant);
        let entry = self.participant_mut(participant)?;
        if let Negotiation::AwaitingAnswer { .. } = entry.negotiation {
            return Err(SfuError::NegotiationInProgress(participant.clone()));
        }
        // Tracks already published keep their codec: subscribers' senders were negotiated
        // for it.
        let new_sections: Vec<MediaSection> = sections
            .iter()
            .filter(|section| !entry.published.contains_key(&section.mid))
            .cloned()
            .collect();
        let answer = entry
            .peer
            .accept_offer(now, offer, &new_sections, allowed.as_ref())?;
        if let Some(decoders) = decodable_video_codecs(&sections) {
            entry.video_decoders = Some(decoders);
        }
        self.update_published(now, participant, &sections)?;
        self.flush(now);
        Ok(answer)
    }

    /// Applies a participant's answer to the last offer the engine sent.
    pub fn accept_answer(
        &mut self,
        now: Instant,
        participant: &ParticipantId,
        answer: String,
    ) -> Result<(), SfuError> {
        let entry = self.participant_mut(participant)?;
        let Negotiation::AwaitingAnswer { again } = entry.negotiation else {
            return Err(SfuError::InvalidSdp(
                "answer received but no engine offer is pending".to_owned(),
            ));
        };
        let sections = sdp::summarize(&answer)?;
        entry.peer.accept_answer(now, answer)?;
        entry.negotiation = Negotiation::Stable;
        let rejected = self.rejected_video_codecs(participant, &sections);
        for (track, codec) in &rejected {
            if let Err(err) = self.remove_subscription(participant, track) {
                tracing::debug!(%participant, %track, error = %err, "removing subscription failed");
            }
            self.report_undecodable(participant, track, *codec);
        }
        if let Some(entry) = self.participants.get_mut(participant) {
            for subscription in entry.subscriptions.values_mut() {
                subscription.negotiated = true;
                for layer in &mut subscription.layers {
                    layer.negotiated = true;
                }
            }
        }
        if again || !rejected.is_empty() {
            self.send_offer(now, participant);
        }
        self.dirty.insert(participant.clone());
        self.flush(now);
        Ok(())
    }

    /// Subscribes a participant to a track of its room.
    pub fn subscribe(
        &mut self,
        now: Instant,
        subscriber: &ParticipantId,
        track: &TrackId,
    ) -> Result<(), SfuError> {
        self.add_subscription(subscriber, track)?;
        self.send_offer(now, subscriber);
        self.flush(now);
        Ok(())
    }

    /// Ends a subscription.
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        subscriber: &ParticipantId,
        track: &TrackId,
    ) -> Result<(), SfuError> {
        self.remove_subscription(subscriber, track)?;
        self.send_offer(now, subscriber);
        self.flush(now);
        Ok(())
    }

    /// Removes a subscription and its sender, without negotiating.
    pub(crate) fn remove_subscription(
        &mut self,
        subscriber: &ParticipantId,
        track: &TrackId,
    ) -> Result<(), SfuError> {
        let entry = self.participant_mut(subscriber)?;
        let subscription = entry
            .subscriptions
            .remove(track)
            .ok_or_else(|| SfuError::TrackNotFound(track.clone()))?;
        remove_senders(entry, &subscription)?;
        let room = entry.room.clone();
        if let Some(subscribers) = self
            .rooms
            .get_mut(&room)
            .and_then(|room| room.subscribers.get_mut(track))
        {
            subscribers.remove(subscriber);
        }
        Ok(())
    }

    /// Limits the simulcast layer a subscriber receives (0 is the lowest).
    pub fn set_max_layer(
        &mut self,
        subscriber: &ParticipantId,
        track: &TrackId,
        max_layer: usize,
    ) -> Result<(), SfuError> {
        let subscription = self.subscription_mut(subscriber, track)?;
        subscription.max_layer = max_layer;
        Ok(())
    }

    /// Pauses or resumes forwarding of one subscribed track.
    pub fn set_paused(
        &mut self,
        subscriber: &ParticipantId,
        track: &TrackId,
        paused: bool,
    ) -> Result<(), SfuError> {
        let subscription = self.subscription_mut(subscriber, track)?;
        subscription.paused = paused;
        if paused {
            subscription.forwarder.pause();
        } else {
            let max_layer = subscription.max_layer;
            subscription.forwarder.resume(max_layer);
        }
        Ok(())
    }

    /// Stops (or resumes) forwarding every track of one kind that a participant publishes,
    /// to every subscriber, including tracks it publishes later.
    pub fn set_blocked(
        &mut self,
        participant: &ParticipantId,
        kind: MediaKind,
        blocked: bool,
    ) -> Result<(), SfuError> {
        let entry = self.participant_mut(participant)?;
        let changed = if blocked {
            entry.blocked.insert(kind)
        } else {
            entry.blocked.remove(&kind)
        };
        let room = entry.room.clone();
        if blocked
            && kind == MediaKind::Audio
            && let Some(room) = self.rooms.get_mut(&room)
        {
            room.speaker.remove(participant);
        }
        if changed {
            tracing::info!(%room, %participant, ?kind, blocked, "publisher forwarding changed");
        }
        Ok(())
    }

    fn participant_mut(
        &mut self,
        participant: &ParticipantId,
    ) -> Result<&mut super::participant::Participant, SfuError> {
        self.participants
            .get_mut(participant)
            .ok_or_else(|| SfuError::ParticipantNotFound(participant.clone()))
    }

    fn subscription_mut(
        &mut self,
        subscriber: &ParticipantId,
        track: &TrackId,
    ) -> Result<&mut Subscription, SfuError> {
        self.participant_mut(subscriber)?
            .subscriptions
            .get_mut(track)
            .ok_or_else(|| SfuError::TrackNotFound(track.clone()))
    }

    /// Publishes the sending sections of an applied offer and unpublishes the ones that
    /// stopped sending. Header extension ids are re-read from every offer.
    pub(crate) fn update_published(
        &mut self,
        now: Instant,
        participant: &ParticipantId,
        sections: &[MediaSection],
    ) -> Result<(), SfuError> {
        let entry = self.participant_mut(participant)?;
        let room = entry.room.clone();
        let mut added = Vec::new();
        let mut removed = Vec::new();

        for section in sections {
            let audio_level_id = section.extension_id(AUDIO_LEVEL_URI);
            match (
                section.direction.sends(),
                entry.published.get_mut(&section.mid),
            ) {
                (true, Some(track)) => track.audio_level_id = audio_level_id,
                (true, None) => {
                    // TODO: rtc 0.21.1 drops RTP on a section that only received in an
                    // earlier offer and sends after renegotiation ("no track id"), so such a
                    // track is announced but never forwarded. New sections work.
                    let id = TrackId {
                        publisher: participant.clone(),
                        mid: section.mid.clone(),
                    };
                    let mut track = PublishedTrack::new(
                        id,
                        section.kind,
                        section.send_rids.clone(),
                        audio_level_id,
                    );
                    track.codec = negotiated_codec(&mut entry.peer.pc, &section.mid);
                    added.push(TrackInfo {
                        id: track.id.clone(),
                        kind: track.kind,
                        rids: track.rids.clone(),
                    });
                    entry.published.insert(section.mid.clone(), track);
                }
                (false, Some(track)) => removed.push(track.id.clone()),
                (false, None) => {}
            }
        }

        for track in &removed {
            entry.published.remove(&track.mid);
        }
        for track in &removed {
            self.unpublish(now, &room, track);
        }
        for track in added {
            tracing::info!(%room, track = %track.id, kind = ?track.kind, "track published");
            let id = track.id.clone();
            self.events.push_back(SfuEvent::TrackPublished {
                room: room.clone(),
                track,
            });
            self.auto_subscribe_track(now, &room, &id);
        }
        Ok(())
    }

    /// Removes a track's subscriptions and announces it is gone.
    pub(crate) fn unpublish(&mut self, now: Instant, room: &RoomId, track: &TrackId) {
        let subscribers = self
            .rooms
            .get_mut(room)
            .and_then(|room| room.subscribers.remove(track))
            .unwrap_or_default();
        for subscriber in subscribers {
            let Some(entry) = self.participants.get_mut(&subscriber) else {
                continue;
            };
            if let Some(subscription) = entry.subscriptions.remove(track) {
                if let Err(err) = remove_senders(entry, &subscription) {
                    tracing::debug!(%subscriber, error = %err, "removing sender failed");
                }
                self.send_offer(now, &subscriber);
            }
        }
        self.events.push_back(SfuEvent::TrackUnpublished {
            room: room.clone(),
            track: track.clone(),
        });
    }

    pub(crate) fn auto_subscribe_track(&mut self, now: Instant, room: &RoomId, track: &TrackId) {
        let Some(room) = self.rooms.get(room) else {
            return;
        };
        if !room.options.auto_subscribe {
            return;
        }
        let members: Vec<ParticipantId> = room
            .members
            .iter()
            .filter(|member| **member != track.publisher)
            .filter(|member| {
                self.participants
                    .get(*member)
                    .is_some_and(|entry| !entry.relay)
            })
            .cloned()
            .collect();
        for member in members {
            if self.auto_subscribe(&member, track) {
                self.send_offer(now, &member);
            }
        }
    }

    pub(crate) fn auto_subscribe_member(&mut self, now: Instant, member: &ParticipantId) {
        let Some(room) = self
            .participants
            .get(member)
            .filter(|entry| !entry.relay)
            .map(|entry| entry.room.clone())
        else {
            return;
        };
        if !self
            .rooms
            .get(&room)
            .is_some_and(|room| room.options.auto_subscribe)
        {
            return;
        }
        let tracks: Vec<TrackId> = self
            .participants
            .values()
            .filter(|other| other.room == room && other.id != *member)
            .flat_map(|other| other.published.values().map(|track| track.id.clone()))
            .chain(
                self.local_tracks
                    .values()
                    .filter(|local| local.room == room && local.auto_subscribe)
                    .map(|local| local.track.id.clone()),
            )
            .collect();
        let mut added = false;
        for track in tracks {
            added |= self.auto_subscribe(member, &track);
        }
        if added {
            self.send_offer(now, member);
        }
    }

    /// Adds a subscription for automatic subscription and returns true when it was added.
    /// A subscriber that cannot decode the track gets [`SfuEvent::TrackUndecodable`] instead.
    fn auto_subscribe(&mut self, subscriber: &ParticipantId, track: &TrackId) -> bool {
        match self.add_subscription(subscriber, track) {
            Ok(()) => true,
            Err(SfuError::CodecNotSupported { codec, .. }) => {
                self.report_undecodable(subscriber, track, codec);
                false
            }
            Err(err) => {
                tracing::debug!(%subscriber, %track, error = %err, "automatic subscription failed");
                false
            }
        }
    }

    /// Adds a sender for `track` to the subscriber's connection, without negotiating.
    fn add_subscription(
        &mut self,
        subscriber: &ParticipantId,
        track: &TrackId,
    ) -> Result<(), SfuError> {
        let (kind, codec, top_layer) = self.published_track(subscriber, track)?;
        self.check_decodable(subscriber, track, codec.video)?;
        let entry = self.participant_mut(subscriber)?;
        if entry.subscriptions.contains_key(track) {
            return Ok(());
        }

        let base_name = format!("{}-{}", track.publisher, track.mid);
        let subscription = if entry.relay && top_layer > 0 {
            // A relay peer gets every layer on a sender of its own, named
            // `{publisher}-{mid}@{layer}/{layers}`, so the other engine can publish
            // them as one simulcast track and choose a layer per subscriber itself.
            let layers = top_layer + 1;
            let name = |layer: usize| format!("{base_name}@{layer}/{layers}");
            let mut first = new_subscription(entry, track, kind, &codec, name(0), Some(0))?;
            for layer in 1..layers {
                let higher =
                    new_subscription(entry, track, kind, &codec, name(layer), Some(layer))?;
                first.layers.push(higher);
            }
            first
        } else {
            let mut subscription = new_subscription(entry, track, kind, &codec, base_name, None)?;
            subscription.forwarder.set_target(top_layer);
            subscription.max_layer = top_layer;
            subscription
        };
        entry
            .sender_tracks
            .insert(subscription.sender_track.clone(), track.clone());
        for layer in &subscription.layers {
            entry
                .sender_tracks
                .insert(layer.sender_track.clone(), track.clone());
        }
        entry.subscriptions.insert(track.clone(), subscription);
        let room = entry.room.clone();
        if let Some(room) = self.rooms.get_mut(&room) {
            room.subscribers
                .entry(track.clone())
                .or_default()
                .insert(subscriber.clone());
        }
        tracing::debug!(%subscriber, %track, "subscribed");
        Ok(())
    }

    /// Kind, codec and top layer of a track published in the subscriber's room.
    fn published_track(
        &self,
        subscriber: &ParticipantId,
        track: &TrackId,
    ) -> Result<(MediaKind, TrackCodec, usize), SfuError> {
        let room = &self
            .participants
            .get(subscriber)
            .ok_or_else(|| SfuError::ParticipantNotFound(subscriber.clone()))?
            .room;
        let not_found = || SfuError::TrackNotFound(track.clone());
        if let Some(local) = self.local_tracks.get(track) {
            if local.room != *room {
                return Err(not_found());
            }
            let codec = local.track.codec.clone().ok_or_else(not_found)?;
            return Ok((local.track.kind, codec, local.track.top_layer()));
        }
        let publisher = self
            .participants
            .get(&track.publisher)
            .ok_or_else(not_found)?;
        if publisher.room != *room || track.publisher == *subscriber {
            return Err(not_found());
        }
        let published = publisher.published.get(&track.mid).ok_or_else(not_found)?;
        let codec = published.codec.clone().ok_or_else(not_found)?;
        Ok((published.kind, codec, published.top_layer()))
    }

    /// Sends an offer for changed senders, or marks that one is needed after the pending
    /// answer.
    pub(crate) fn send_offer(&mut self, now: Instant, participant: &ParticipantId) {
        let Some(entry) = self.participants.get_mut(participant) else {
            return;
        };
        if let Negotiation::AwaitingAnswer { .. } = entry.negotiation {
            entry.negotiation = Negotiation::AwaitingAnswer { again: true };
            return;
        }
        if entry.connection == Connection::Connecting {
            entry.negotiation = Negotiation::OfferWhenConnected;
            return;
        }
        match entry.peer.create_offer(now) {
            Ok(sdp) => {
                entry.negotiation = Negotiation::AwaitingAnswer { again: false };
                self.events.push_back(SfuEvent::Offer {
                    participant: participant.clone(),
                    sdp,
                });
            }
            Err(err) => tracing::warn!(%participant, error = %err, "creating offer failed"),
        }
        self.dirty.insert(participant.clone());
    }
}

/// Adds a send-only transceiver named `sender_track` for `track` to the subscriber's
/// connection and returns its subscription, which forwards `pinned_layer` only when
/// given.
fn new_subscription(
    entry: &mut super::participant::Participant,
    track: &TrackId,
    kind: MediaKind,
    codec: &TrackCodec,
    sender_track: String,
    pinned_layer: Option<usize>,
) -> Result<Subscription, SfuError> {
    let ssrc = rand::random::<u32>();
    let rtx_ssrc = (kind == MediaKind::Video).then(rand::random::<u32>);
    let rtc_kind = match kind {
        MediaKind::Audio => RtpCodecKind::Audio,
        MediaKind::Video => RtpCodecKind::Video,
    };
    let media_track = MediaStreamTrack::new(
        track.publisher.0.clone(),
        sender_track.clone(),
        sender_track.clone(),
        rtc_kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                rtx: rtx_ssrc.map(|ssrc| RTCRtpRtxParameters { ssrc }),
                ..Default::default()
            },
            codec: codec.rtc_codec.clone(),
            ..Default::default()
        }],
    );
    // A new send-only transceiver per subscription, never one of the participant's own
    // publishing transceivers, so publishing and subscribing renegotiate independently.
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendonly,
        streams: vec![track.publisher.0.clone()],
        send_encodings: Vec::new(),
    };
    let transceiver = entry
        .peer
        .pc
        .add_transceiver_from_track(media_track, Some(init))?;
    let sender = entry
        .peer
        .pc
        .rtp_transceiver(transceiver)
        .and_then(|transceiver| transceiver.sender())
        .ok_or_else(|| SfuError::WebRtc("new transceiver has no sender".to_owned()))?;

    let layer = pinned_layer.unwrap_or(0);
    Ok(Subscription {
        track: track.clone(),
        kind,
        video_codec: codec.video,
        sender,
        sender_track,
        ssrc,
        rtx_ssrc,
        payload_type: None,
        twcc_extension: None,
        audio_level_extension: None,
        rtx: None,
        negotiated: false,
        forwarder: Forwarder::new(codec.rtc_codec.clock_rate, codec.video.is_some(), layer),
        cache: PacketCache::default(),
        max_layer: layer,
        upgrade_gate: UpgradeGate::default(),
        paused: false,
        pinned_layer,
        layers: Vec::new(),
    })
}

/// Removes the senders of a subscription, its higher layers' included.
pub(crate) fn remove_senders(
    entry: &mut super::participant::Participant,
    subscription: &Subscription,
) -> Result<(), SfuError> {
    for sender in std::iter::once(subscription).chain(&subscription.layers) {
        entry.sender_tracks.remove(&sender.sender_track);
        entry.peer.pc.remove_track(sender.sender)?;
    }
    Ok(())
}

/// The codec the publisher will send on `mid`: the first media codec negotiated on its
/// receiver.
fn negotiated_codec(
    pc: &mut rtc::peer_connection::RTCPeerConnection,
    mid: &str,
) -> Option<TrackCodec> {
    let transceivers: Vec<_> = pc.get_transceivers().collect();
    let receiver_id = transceivers.into_iter().find_map(|transceiver_id| {
        let transceiver = pc.rtp_transceiver(transceiver_id)?;
        (transceiver.mid().as_deref() == Some(mid))
            .then(|| transceiver.receiver())
            .flatten()
    })?;
    let mut receiver = pc.rtp_receiver(receiver_id)?;
    let codec = receiver
        .get_parameters()
        .rtp_parameters
        .codecs
        .iter()
        .map(|codec| codec.rtp_codec.clone())
        .find(|codec| is_media_codec(&codec.mime_type))?;
    Some(TrackCodec {
        video: VideoCodec::from_mime(&codec.mime_type),
        rtc_codec: codec,
    })
}

fn is_media_codec(mime: &str) -> bool {
    let name = mime
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    !matches!(
        name.as_str(),
        "rtx" | "red" | "ulpfec" | "flexfec-03" | "telephone-event" | "cn"
    )
}
