//! Connection state and track events of a peer: connects, failures, and the SSRC and rid
//! of each incoming stream.

use std::time::Instant;

use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::sansio::Protocol;

use super::participant::{Connection, Negotiation};
use super::shard::Shard;
use crate::event::SfuEvent;
use crate::ids::ParticipantId;

impl Shard {
    /// Handles connection state and track events of one peer.
    pub(crate) fn drain_peer_events(&mut self, now: Instant, id: &ParticipantId) {
        let mut failed = false;
        let mut offer_now = false;
        let Some(entry) = self.participants.get_mut(id) else {
            return;
        };
        while let Some(event) = entry.peer.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                    tracing::debug!(participant = %id, %state, "connection state");
                    match state {
                        RTCPeerConnectionState::Connected
                            if entry.connection == Connection::Connecting =>
                        {
                            entry.connection = Connection::Connected;
                            tracing::info!(room = %entry.room, participant = %id, "participant connected");
                            self.events.push_back(SfuEvent::ParticipantConnected {
                                room: entry.room.clone(),
                                participant: id.clone(),
                            });
                            offer_now = entry.negotiation == Negotiation::OfferWhenConnected;
                        }
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                            failed = true;
                        }
                        _ => {}
                    }
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let transceivers: Vec<_> = entry.peer.pc.get_transceivers().collect();
                    let mid = transceivers.into_iter().find_map(|transceiver_id| {
                        let transceiver = entry.peer.pc.rtp_transceiver(transceiver_id)?;
                        (transceiver.receiver() == Some(init.receiver_id))
                            .then(|| transceiver.mid().clone())
                            .flatten()
                    });
                    let Some(mid) = mid else { continue };
                    tracing::debug!(participant = %id, %mid, ssrc = init.ssrc, rid = ?init.rid, "incoming stream opened");
                    if let Some(track) = entry.published.get_mut(&mid) {
                        track.receiver = Some(init.receiver_id);
                        let layer = track.layer_of_rid(init.rid.as_deref());
                        track.layers.insert(init.ssrc, layer);
                        track.layer_ssrcs.insert(layer, init.ssrc);
                    }
                    entry.receiver_tracks.insert(init.track_id.clone(), mid);
                }
                _ => {}
            }
        }
        if failed {
            tracing::info!(participant = %id, "connection failed or closed");
            self.remove_participant(now, id);
        } else if offer_now {
            if let Some(entry) = self.participants.get_mut(id) {
                entry.negotiation = Negotiation::Stable;
            }
            self.send_offer(now, id);
        }
    }
}
