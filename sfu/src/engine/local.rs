//! Local tracks in a shard: tracks whose packets the caller writes (see [`crate::local`]).

use std::time::Instant;

use rtc::rtp;
use tokio::sync::mpsc;

use super::participant::{PublishedTrack, TrackCodec};
use super::shard::Shard;
use crate::error::SfuError;
use crate::event::{SfuEvent, TrackInfo};
use crate::forward::codec::VideoCodec;
use crate::forward::forwarder::SourcePacket;
use crate::ids::{MediaKind, RoomId, TrackId};
use crate::local::{KeyframeRequest, LocalPacket, LocalTrackOptions};
use crate::tap::AudioPacket;

/// A track published by the caller.
pub struct LocalTrackState {
    pub room: RoomId,
    pub track: PublishedTrack,
    pub auto_subscribe: bool,
    /// Synchronization source that the room's audio taps see for this track, when
    /// [`LocalTrackOptions::tap_audio`] is set for an audio track.
    tap_ssrc: Option<u32>,
    /// Next sequence number of each layer, for packets written without one.
    next_seq: Vec<u16>,
    keyframe_requests: mpsc::UnboundedSender<KeyframeRequest>,
}

impl Shard {
    /// Publishes a local track and announces it.
    pub(crate) fn publish_local(
        &mut self,
        now: Instant,
        room: &RoomId,
        id: TrackId,
        options: LocalTrackOptions,
        keyframe_requests: mpsc::UnboundedSender<KeyframeRequest>,
    ) -> Result<(), SfuError> {
        if !self.rooms.contains_key(room) {
            return Err(SfuError::RoomNotFound(room.clone()));
        }
        // A local track must not share a publisher id with a participant, because track
        // lookups try participants first.
        if self.participants.contains_key(&id.publisher) || self.local_tracks.contains_key(&id) {
            return Err(SfuError::TrackExists(id));
        }
        let rtc_codec = options.codec.to_rtc(options.kind);
        let mut track = PublishedTrack::new(id.clone(), options.kind, options.rids, None);
        track.codec = Some(TrackCodec {
            video: VideoCodec::from_mime(&rtc_codec.mime_type),
            rtc_codec,
        });
        let info = TrackInfo {
            id: id.clone(),
            kind: track.kind,
            rids: track.rids.clone(),
        };
        let layers = track.rids.len().max(1);
        self.local_tracks.insert(
            id.clone(),
            LocalTrackState {
                room: room.clone(),
                track,
                auto_subscribe: options.auto_subscribe,
                // Random, like a participant's own SSRC, so that it stays apart from the
                // SSRCs of the room's participants in a tap's output.
                tap_ssrc: (options.tap_audio && options.kind == MediaKind::Audio)
                    .then(rand::random::<u32>),
                next_seq: (0..layers).map(|_| rand::random::<u16>()).collect(),
                keyframe_requests,
            },
        );
        tracing::info!(%room, track = %id, kind = ?info.kind, "local track published");
        self.events.push_back(SfuEvent::TrackPublished {
            room: room.clone(),
            track: info,
        });
        if options.auto_subscribe {
            self.auto_subscribe_track(now, room, &id);
        }
        self.flush(now);
        Ok(())
    }

    /// Forwards one packet of a local track to its subscribers.
    pub(crate) fn write_local(&mut self, now: Instant, id: &TrackId, packet: LocalPacket) {
        let Some(local) = self.local_tracks.get_mut(id) else {
            tracing::debug!(track = %id, "packet for an unpublished local track dropped");
            return;
        };
        let Some(next_seq) = local.next_seq.get_mut(packet.layer) else {
            self.drops
                .warn("local packet for an unknown layer dropped", id);
            return;
        };
        let seq = match packet.sequence_number {
            Some(seq) => seq,
            None => {
                let seq = *next_seq;
                *next_seq = seq.wrapping_add(1);
                seq
            }
        };
        let keyframe = local
            .track
            .on_media(packet.layer, &packet.payload, now, &mut self.events);
        let rtp_packet = rtp::Packet {
            header: rtp::Header {
                version: 2,
                marker: packet.marker,
                sequence_number: seq,
                timestamp: packet.timestamp,
                ..Default::default()
            },
            payload: packet.payload,
        };
        let room = local.room.clone();
        if let Some(ssrc) = local.tap_ssrc
            && let Some(room) = self.rooms.get_mut(&room)
            && !room.audio_taps.is_empty()
        {
            room.send_to_taps(AudioPacket {
                publisher: id.publisher.clone(),
                ssrc,
                sequence_number: seq,
                timestamp: packet.timestamp,
                payload: rtp_packet.payload.clone(),
            });
        }
        let source = SourcePacket {
            layer: packet.layer,
            seq,
            timestamp: packet.timestamp,
            keyframe,
            arrival: now,
        };
        if let Some(level) = packet
            .audio_level
            .filter(|_| local.track.kind == MediaKind::Audio)
            && let Some(room) = self.rooms.get_mut(&room)
        {
            room.speaker.on_level(&id.publisher, level & 0x7f, now);
        }
        let audio_level = packet.audio_level;
        self.forward_to_subscribers(now, id, &room, source, &rtp_packet, audio_level);
        self.flush(now);
    }

    /// Removes a local track and its subscriptions, unless it is already gone because its
    /// room closed.
    pub(crate) fn unpublish_local(&mut self, now: Instant, room: &RoomId, id: &TrackId) {
        let Some(local) = self.local_tracks.remove(id) else {
            return;
        };
        if local.track.kind == MediaKind::Audio
            && let Some(room) = self.rooms.get_mut(room)
        {
            room.speaker.remove(&id.publisher);
        }
        tracing::info!(%room, track = %id, "local track unpublished");
        self.unpublish(now, room, id);
        self.flush(now);
    }

    /// Passes due keyframe requests of local video tracks to their callers.
    pub(crate) fn send_local_keyframe_requests(&mut self, now: Instant) {
        for local in self.local_tracks.values_mut() {
            for (layer, requester) in local.track.requesters.iter_mut().enumerate() {
                if requester.poll_request(now).is_some() {
                    tracing::trace!(track = %local.track.id, layer, "local keyframe request");
                    // A caller that dropped the receiver does not produce keyframes on
                    // request; the subscriber then waits for the next regular one.
                    let _ = local.keyframe_requests.send(KeyframeRequest {
                        track: local.track.id.clone(),
                        layer,
                    });
                }
            }
        }
    }
}
