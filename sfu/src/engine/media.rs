//! Media plane of a shard: RTP from publishers to subscribers, RTCP feedback back.

use std::time::Instant;

use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp;
use rtc::rtp::extension::transport_cc_extension::TransportCcExtension;
use rtc::sansio::Protocol;
use rtc::sdp::extmap::TRANSPORT_CC_URI;
use rtc::shared::marshal::{Marshal, MarshalSize};

use super::participant::Subscription;
use super::shard::Shard;
use crate::forward::bandwidth::ESTIMATE_LIFETIME;
use crate::forward::cache::RtxStream;
use crate::forward::congestion::TwccEstimator;
use crate::forward::forwarder::{Action, SourcePacket, State};
use crate::forward::keyframe::Request;
use crate::ids::{MediaKind, ParticipantId, RoomId, TrackId};
use crate::sdp::AUDIO_LEVEL_URI;
use crate::tap::AudioPacket;

/// Layers [`Shard::layer_choice`] found for one subscriber of a video track.
struct LayerChoice {
    /// Choice within the subscriber's bandwidth estimate.
    chosen: Option<usize>,
    /// Choice within the subscription's maximum layer alone.
    unlimited: Option<usize>,
    /// Active layer being forwarded.
    current: Option<usize>,
}

/// A received packet with what forwarding needs to know about it.
struct Received {
    track: TrackId,
    source: SourcePacket,
    packet: rtp::Packet,
    /// Audio level from the publisher's header extension.
    audio_level: Option<u8>,
}

impl Shard {
    /// Handles RTP and RTCP that one peer's connection decrypted.
    pub(crate) fn drain_peer_media(&mut self, now: Instant, id: &ParticipantId) {
        self.read_twcc_feedback(id);
        loop {
            let Some(entry) = self.participants.get_mut(id) else {
                return;
            };
            let Some(TaggedRTCMessage { message, .. }) = entry.peer.pc.poll_read() else {
                return;
            };
            match message {
                RTCMessage::RtpPacket(rtc_track, packet) => {
                    tracing::trace!(participant = %id, track = rtc_track, ssrc = packet.header.ssrc, seq = packet.header.sequence_number, "rtp received");
                    if let Some(received) = self.classify(now, id, &rtc_track, packet) {
                        self.forward(now, received);
                    }
                }
                RTCMessage::RtcpPacket(rtc_track, packets) => {
                    self.on_rtcp(now, id, &rtc_track, packets);
                }
                _ => {}
            }
        }
    }

    /// Updates a subscriber's bandwidth estimate with the TWCC feedback its connection
    /// received.
    fn read_twcc_feedback(&mut self, id: &ParticipantId) {
        let Some(entry) = self.participants.get_mut(id) else {
            return;
        };
        let mut latest = None;
        for (at, feedback) in entry.peer.twcc_feedback.take() {
            entry.twcc.on_feedback(&feedback, at);
            latest = Some(at);
        }
        if let Some(at) = latest
            && let Some(bitrate) = entry.twcc.estimate(at, ESTIMATE_LIFETIME)
        {
            tracing::trace!(participant = %id, bitrate, "transport-wide feedback estimate");
            entry.downlink.on_twcc_estimate(bitrate, at);
        }
    }

    /// Finds the published track and layer of a received packet and updates the track's
    /// layer, keyframe and audio level state.
    fn classify(
        &mut self,
        now: Instant,
        id: &ParticipantId,
        rtc_track: &str,
        packet: rtp::Packet,
    ) -> Option<Received> {
        let entry = self.participants.get_mut(id)?;
        let mid = entry.receiver_tracks.get(rtc_track)?;
        let track = entry.published.get_mut(mid)?;
        if entry.blocked.contains(&track.kind) {
            // Dropped before the audio level is read, so a blocked participant cannot
            // become the active speaker either.
            tracing::trace!(participant = %id, track = %track.id, "blocked packet dropped");
            return None;
        }
        let ssrc = packet.header.ssrc;

        let layer = match track.layers.get(&ssrc) {
            Some(layer) => *layer,
            None => {
                let receiver = track.receiver?;
                let rid = entry
                    .peer
                    .pc
                    .rtp_receiver(receiver)
                    .and_then(|receiver| receiver.track().rid(ssrc).cloned());
                let layer = track.layer_of_rid(rid.as_deref());
                track.layers.insert(ssrc, layer);
                track.layer_ssrcs.insert(layer, ssrc);
                layer
            }
        };

        let keyframe = track.on_media(layer, &packet.payload, now, &mut self.events);

        let audio_level = match track.kind {
            MediaKind::Audio => track
                .audio_level_id
                .and_then(|ext| packet.header.get_extension(ext))
                .and_then(|value| value.first().copied()),
            MediaKind::Video => None,
        };
        if let Some(level) = audio_level
            && let Some(room) = self.rooms.get_mut(&entry.room)
        {
            tracing::trace!(participant = %id, level = level & 0x7f, "audio level");
            room.speaker.on_level(id, level & 0x7f, now);
        }
        if track.kind == MediaKind::Audio
            && let Some(room) = self.rooms.get_mut(&entry.room)
            && !room.audio_taps.is_empty()
        {
            room.send_to_taps(AudioPacket {
                publisher: id.clone(),
                ssrc,
                sequence_number: packet.header.sequence_number,
                timestamp: packet.header.timestamp,
                payload: packet.payload.clone(),
            });
        }

        Some(Received {
            track: track.id.clone(),
            source: SourcePacket {
                layer,
                seq: packet.header.sequence_number,
                timestamp: packet.header.timestamp,
                keyframe,
                arrival: now,
            },
            packet,
            audio_level,
        })
    }

    /// Sends a received packet to every subscriber whose forwarder takes it.
    fn forward(&mut self, now: Instant, received: Received) {
        let Some(room) = self
            .participants
            .get(&received.track.publisher)
            .map(|entry| entry.room.clone())
        else {
            return;
        };
        self.forward_to_subscribers(
            now,
            &received.track,
            &room,
            received.source,
            &received.packet,
            received.audio_level,
        );
    }

    /// Sends a packet of `track`, from a participant or written locally, to every
    /// subscriber whose forwarder takes it, and asks for the keyframes they wait for.
    /// An audio packet's level goes along to subscribers that accepted the extension.
    pub(crate) fn forward_to_subscribers(
        &mut self,
        now: Instant,
        track: &TrackId,
        room: &RoomId,
        source: SourcePacket,
        packet: &rtp::Packet,
        audio_level: Option<u8>,
    ) {
        let subscribers = self
            .rooms
            .get(room)
            .map(|room| room.subscribers_of(track))
            .unwrap_or_default();
        let mut awaited_layers = Vec::new();

        for subscriber in subscribers {
            let choice = self.layer_choice(now, track, &subscriber);
            let Some(entry) = self.participants.get_mut(&subscriber) else {
                continue;
            };
            let Some(subscription) = entry.subscriptions.get_mut(track) else {
                continue;
            };
            // A relay peer's subscription carries layer 0; higher layers have senders
            // of their own.
            let subscription = match subscription.pinned_layer {
                Some(_) if source.layer > 0 => {
                    match subscription.layers.get_mut(source.layer - 1) {
                        Some(layer) => layer,
                        None => continue,
                    }
                }
                _ => subscription,
            };
            if !subscription.negotiated {
                continue;
            }
            let target = match subscription.pinned_layer {
                Some(pinned) => Some(pinned),
                None => choice.and_then(|choice| {
                    subscription.upgrade_gate.admit(
                        choice.chosen,
                        choice.unlimited,
                        choice.current,
                        now,
                    )
                }),
            };
            if let Some(target) = target
                && !subscription.paused
            {
                subscription.forwarder.set_target(target);
            }

            let action = subscription.forwarder.on_packet(&source);
            tracing::trace!(%subscriber, track = %track, layer = source.layer, ?action, "forwarding decision");
            if let Action::Forward { seq, timestamp, .. } = action
                && let Some(packet) = outgoing_packet(
                    &mut entry.peer.pc,
                    subscription,
                    packet,
                    (seq, timestamp),
                    audio_level,
                )
            {
                subscription.cache.insert(seq, packet.clone());
                let write = write_rtp(
                    &mut entry.peer.pc,
                    &mut entry.twcc,
                    subscription,
                    packet,
                    now,
                );
                if let Err(err) = write {
                    self.drops.warn("forwarding failed", err);
                }
                self.dirty.insert(subscriber.clone());
            }
            if let Some(layer) = subscription.forwarder.awaited_keyframe() {
                awaited_layers.push(layer);
            }
        }

        self.want_keyframes(now, track, &awaited_layers);
    }

    /// Layer choice of a subscriber for a video track, or `None` for audio and unknown
    /// tracks: the highest active layer up to the subscription's maximum that fits the
    /// subscriber's share of its bandwidth estimate, and the same without the estimate.
    fn layer_choice(
        &self,
        now: Instant,
        track: &TrackId,
        subscriber: &ParticipantId,
    ) -> Option<LayerChoice> {
        let published = self.published(track)?;
        if published.kind != MediaKind::Video {
            return None;
        }
        let entry = self.participants.get(subscriber)?;
        let subscription = entry.subscriptions.get(track)?;
        let receiving = entry
            .subscriptions
            .values()
            .filter(|subscription| !subscription.paused);
        let (video, audio): (Vec<_>, Vec<_>) =
            receiving.partition(|subscription| subscription.kind == MediaKind::Video);
        let budget = entry.downlink.video_budget(now, audio.len(), video.len());
        let current = match subscription.forwarder.state() {
            State::Forwarding { layer, .. } if published.monitor.is_active(layer, now) => {
                Some(layer)
            }
            _ => None,
        };
        let max_layer = subscription.max_layer;
        Some(LayerChoice {
            chosen: published.monitor.select(max_layer, budget, current, now),
            unlimited: published.monitor.select(max_layer, None, current, now),
            current,
        })
    }

    fn want_keyframes(&mut self, now: Instant, track: &TrackId, layers: &[usize]) {
        let Some(published) = self.published_mut(track) else {
            return;
        };
        for layer in layers {
            if let Some(requester) = published.requesters.get_mut(*layer) {
                requester.want(now);
            }
        }
    }

    /// Sends due PLI or FIR requests to publishers.
    pub(crate) fn send_keyframe_requests(&mut self, now: Instant) {
        self.send_local_keyframe_requests(now);
        for (id, entry) in self.participants.iter_mut() {
            let mut requests = Vec::new();
            for track in entry.published.values_mut() {
                let Some(receiver) = track.receiver else {
                    continue;
                };
                for (layer, requester) in track.requesters.iter_mut().enumerate() {
                    let Some(&media_ssrc) = track.layer_ssrcs.get(&layer) else {
                        continue;
                    };
                    if let Some(request) = requester.poll_request(now) {
                        requests.push((receiver, media_ssrc, request));
                    }
                }
            }
            for (receiver, media_ssrc, request) in requests {
                let packet: Box<dyn rtc::rtcp::Packet> = match request {
                    Request::Pli => Box::new(PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc,
                    }),
                    Request::Fir { seq } => Box::new(FullIntraRequest {
                        sender_ssrc: 0,
                        media_ssrc,
                        fir: vec![FirEntry {
                            ssrc: media_ssrc,
                            sequence_number: seq,
                        }],
                    }),
                };
                tracing::trace!(participant = %id, media_ssrc, ?request, "keyframe request");
                if let Some(mut receiver) = entry.peer.pc.rtp_receiver(receiver)
                    && let Err(err) = receiver.write_rtcp(now, vec![packet])
                {
                    tracing::debug!(participant = %id, error = %err, "keyframe request failed");
                }
                self.dirty.insert(id.clone());
            }
        }
    }

    /// Handles RTCP from a subscriber about one of its senders: keyframe requests go to the
    /// publisher, NACKed packets are resent from the packet cache.
    fn on_rtcp(
        &mut self,
        now: Instant,
        id: &ParticipantId,
        rtc_track: &str,
        packets: Vec<Box<dyn rtc::rtcp::Packet>>,
    ) {
        let Some(entry) = self.participants.get_mut(id) else {
            return;
        };
        // A REMB estimate covers the subscriber's whole downlink, whichever sender it names.
        // TWCC feedback arrives through `Peer::twcc_feedback` instead.
        for packet in &packets {
            let any = packet.as_any();
            if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                tracing::trace!(participant = %id, bitrate = remb.bitrate, "bandwidth estimate");
                entry.downlink.on_report(remb.bitrate as u64, now);
            }
        }
        let Some(track) = entry.sender_tracks.get(rtc_track).cloned() else {
            return;
        };
        let Some(subscription) = entry.subscriptions.get_mut(&track) else {
            return;
        };
        let subscription = if subscription.sender_track == rtc_track {
            subscription
        } else {
            match subscription
                .layers
                .iter_mut()
                .find(|layer| layer.sender_track == rtc_track)
            {
                Some(layer) => layer,
                None => return,
            }
        };

        let estimate = entry.downlink.current(now);
        let mut keyframe_layer = None;
        let mut retransmissions = Vec::new();
        let mut skipped = 0usize;
        for packet in &packets {
            let any = packet.as_any();
            if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
                keyframe_layer = match subscription.forwarder.state() {
                    State::Forwarding { layer, .. } => Some(layer),
                    _ => subscription.pinned_layer,
                };
            } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                for pair in &nack.nacks {
                    for seq in pair.packet_list() {
                        if !entry.retransmissions.allows(estimate, now) {
                            skipped += 1;
                            continue;
                        }
                        if let Some(packet) = subscription.cache.take_for_resend(seq, now) {
                            entry
                                .retransmissions
                                .on_sent(packet.header.marshal_size() + packet.payload.len(), now);
                            retransmissions.push(packet);
                        }
                    }
                }
            }
        }

        tracing::trace!(participant = %id, %track, packets = packets.len(), resent = retransmissions.len(), skipped, "rtcp from subscriber");
        for original in retransmissions {
            if let Some(rtx) = rtx_packet(&mut entry.peer.pc, subscription, original)
                && let Err(err) =
                    write_rtp(&mut entry.peer.pc, &mut entry.twcc, subscription, rtx, now)
            {
                self.drops.warn("retransmission failed", err);
            }
        }
        self.dirty.insert(id.clone());
        if let Some(layer) = keyframe_layer {
            self.want_keyframes(now, &track, &[layer]);
        }
    }
}

/// Sends a packet on a subscription's sender. When the subscriber negotiated transport-wide
/// congestion control, the packet carries the next transport-wide sequence number and its
/// size and send time are recorded for the subscriber's feedback.
fn write_rtp(
    pc: &mut rtc::peer_connection::RTCPeerConnection,
    twcc: &mut TwccEstimator,
    subscription: &Subscription,
    mut packet: rtp::Packet,
    now: Instant,
) -> Result<(), rtc::shared::error::Error> {
    if let Some(id) = subscription.twcc_extension {
        // The size is taken with the extension in place; its value does not change it.
        set_transport_sequence(&mut packet, id, 0)?;
        let sequence = twcc.on_sent(
            packet.header.ssrc,
            packet.header.sequence_number,
            packet.marshal_size(),
            now,
        );
        set_transport_sequence(&mut packet, id, sequence)?;
    }
    pc.handle_write(TaggedRTCMessage {
        now,
        message: RTCMessage::RtpPacket(subscription.sender_track.clone(), packet),
    })
}

fn set_transport_sequence(
    packet: &mut rtp::Packet,
    id: u8,
    sequence: u16,
) -> Result<(), rtc::shared::error::Error> {
    let value = TransportCcExtension {
        transport_sequence: sequence,
    }
    .marshal()?;
    packet.header.set_extension(id, value.freeze())
}

/// Builds the packet a subscriber receives: its SSRC and payload type, the rewritten
/// sequence number and timestamp, and of the source's header extensions only the audio
/// level, under the subscriber's own id for it. [`write_rtp`] adds the transport-wide
/// sequence number.
fn outgoing_packet(
    pc: &mut rtc::peer_connection::RTCPeerConnection,
    subscription: &mut Subscription,
    source: &rtp::Packet,
    (seq, timestamp): (u16, u32),
    audio_level: Option<u8>,
) -> Option<rtp::Packet> {
    if subscription.payload_type.is_none() {
        resolve_payload_types(pc, subscription);
    }
    let mut packet = rtp::Packet {
        header: rtp::Header {
            version: 2,
            marker: source.header.marker,
            payload_type: subscription.payload_type?,
            sequence_number: seq,
            timestamp,
            ssrc: subscription.ssrc,
            ..Default::default()
        },
        payload: source.payload.clone(),
    };
    if let (Some(id), Some(level)) = (subscription.audio_level_extension, audio_level)
        && let Err(error) = packet
            .header
            .set_extension(id, bytes::Bytes::copy_from_slice(&[level]))
    {
        tracing::debug!(%error, "audio level extension not written");
    }
    Some(packet)
}

/// Wraps a cached packet for retransmission on the subscriber's RTX stream (RFC 4588), or
/// resends it as is when the subscriber negotiated no RTX.
fn rtx_packet(
    pc: &mut rtc::peer_connection::RTCPeerConnection,
    subscription: &mut Subscription,
    original: rtp::Packet,
) -> Option<rtp::Packet> {
    if subscription.payload_type.is_none() {
        resolve_payload_types(pc, subscription);
    }
    let Some(rtx) = subscription.rtx.as_mut() else {
        return Some(original);
    };
    let payload = RtxStream::payload(original.header.sequence_number, &original.payload);
    Some(rtp::Packet {
        header: rtp::Header {
            version: 2,
            marker: original.header.marker,
            payload_type: rtx.payload_type,
            sequence_number: rtx.next_seq(),
            timestamp: original.header.timestamp,
            ssrc: rtx.ssrc,
            ..Default::default()
        },
        payload: payload.into(),
    })
}

/// Reads the negotiated media and RTX payload types of a subscription's sender.
fn resolve_payload_types(
    pc: &mut rtc::peer_connection::RTCPeerConnection,
    subscription: &mut Subscription,
) {
    let Some(mut sender) = pc.rtp_sender(subscription.sender) else {
        return;
    };
    let mut extension_id = |uri: &str| {
        sender
            .get_parameters()
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|extension| extension.uri == uri)
            .and_then(|extension| u8::try_from(extension.id).ok())
    };
    subscription.twcc_extension = extension_id(TRANSPORT_CC_URI);
    subscription.audio_level_extension = match subscription.kind {
        MediaKind::Audio => extension_id(AUDIO_LEVEL_URI),
        MediaKind::Video => None,
    };
    let mime = sender
        .track()
        .codings()
        .first()
        .map(|coding| coding.codec.mime_type.clone());
    let codecs = &sender.get_parameters().rtp_parameters.codecs;
    let Some(media) = codecs.iter().find(|codec| {
        Some(&codec.rtp_codec.mime_type).is_some_and(|m| {
            mime.as_ref()
                .is_some_and(|mime| mime.eq_ignore_ascii_case(m))
        })
    }) else {
        return;
    };
    let media_pt = media.payload_type;
    subscription.payload_type = Some(media_pt);

    let apt = format!("apt={media_pt}");
    let rtx_pt = codecs
        .iter()
        .find(|codec| {
            codec
                .rtp_codec
                .mime_type
                .to_ascii_lowercase()
                .ends_with("/rtx")
                && codec
                    .rtp_codec
                    .sdp_fmtp_line
                    .split(';')
                    .any(|p| p.trim() == apt)
        })
        .map(|codec| codec.payload_type);
    if let (Some(ssrc), Some(payload_type)) = (subscription.rtx_ssrc, rtx_pt) {
        subscription.rtx = Some(RtxStream::new(ssrc, payload_type));
    }
}
