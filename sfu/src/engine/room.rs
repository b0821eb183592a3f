//! A room: its members, who subscribes to which track, and its active speaker.

use std::collections::{HashMap, HashSet};

use crate::forward::speaker::SpeakerDetector;
use crate::ids::{ParticipantId, RoomId, TrackId};
use crate::tap::{AudioPacket, AudioTap};

/// Options of a room.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoomOptions {
    /// Subscribe every member to every other member's tracks without explicit calls.
    pub auto_subscribe: bool,
}

/// State of one room.
pub struct Room {
    pub id: RoomId,
    pub options: RoomOptions,
    pub members: HashSet<ParticipantId>,
    pub subscribers: HashMap<TrackId, HashSet<ParticipantId>>,
    pub speaker: SpeakerDetector<ParticipantId>,
    /// Receivers of a copy of every participant's audio packet and of local audio
    /// tracks published with `tap_audio`.
    pub(crate) audio_taps: Vec<AudioTap>,
}

impl Room {
    pub fn new(id: RoomId, options: RoomOptions) -> Self {
        Self {
            id,
            options,
            members: HashSet::new(),
            subscribers: HashMap::new(),
            speaker: SpeakerDetector::default(),
            audio_taps: Vec::new(),
        }
    }

    /// Subscribers of a track, copied so the caller can borrow participants mutably.
    pub fn subscribers_of(&self, track: &TrackId) -> Vec<ParticipantId> {
        self.subscribers
            .get(track)
            .map(|subscribers| subscribers.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Passes a copy of one audio packet to every tap and drops the taps whose
    /// receivers are gone.
    pub(crate) fn send_to_taps(&mut self, packet: AudioPacket) {
        let before = self.audio_taps.len();
        self.audio_taps.retain_mut(|tap| tap.send(packet.clone()));
        if self.audio_taps.len() < before {
            tracing::info!(room = %self.id, "audio tap closed");
        }
    }
}
