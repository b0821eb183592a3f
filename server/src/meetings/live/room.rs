//! The live state of one meeting: who is in its media, who waits in the lobby, host
//! decisions that outlast a connection (admitted, removed, muted), raised hands and the
//! active speaker. Plain data; the callers in `signal`, `control` and `events` drive the
//! engine and send the messages.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::decisions::Stored;

use sfu::{MediaKind, ParticipantId};

use super::mixed_audio::MixedAudio;
use super::placement::Placement;
use super::protocol::{LiveMessage, ParticipantEntry, Snapshot, Source, TrackEntry, WaitingEntry};
use super::{Link, message_text};
use crate::meetings::Standing;

/// How a person who asks to join enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Straight into the media.
    Direct,
    /// Into the lobby, until the host admits or denies them.
    Lobby,
}

/// Decides how a person enters. The host always enters. Someone the host removed waits in
/// the lobby. While the meeting is locked, everyone but the host and the recorder waits.
/// Outsiders wait unless the host admitted them. A person already present (a second tab,
/// or a reconnect before the old connection timed out) enters directly.
pub fn entry(standing: Standing, locked: bool, decisions: &Decisions) -> Entry {
    match standing {
        Standing::Host => Entry::Direct,
        _ if decisions.removed => Entry::Lobby,
        _ if decisions.present || decisions.admitted => Entry::Direct,
        Standing::Recorder => Entry::Direct,
        _ if locked => Entry::Lobby,
        Standing::Invitee | Standing::Member => Entry::Direct,
        Standing::Outsider => Entry::Lobby,
    }
}

/// What the room remembers about one account when it asks to join.
#[derive(Debug, Clone, Copy, Default)]
pub struct Decisions {
    pub present: bool,
    pub admitted: bool,
    pub removed: bool,
}

/// Returns the wire name of a standing.
pub fn standing_name(standing: Standing) -> &'static str {
    match standing {
        Standing::Host => "host",
        Standing::Recorder => "recorder",
        Standing::Invitee => "invitee",
        Standing::Member => "member",
        Standing::Outsider => "outsider",
    }
}

/// A person in the media.
pub struct Member {
    pub participant: ParticipantId,
    pub link: Link,
    pub standing: Standing,
    pub connected: bool,
    pub microphone: bool,
    pub camera: bool,
    pub screen: bool,
    /// Published tracks by media id.
    pub tracks: BTreeMap<String, MediaKind>,
    /// Declared source of each published track by media id.
    pub sources: BTreeMap<String, Source>,
    /// Receives one mixed audio stream instead of one per speaker (弱网模式).
    pub mixed: bool,
}

/// A person in the lobby, with the offer to answer once admitted.
pub struct Waiting {
    pub link: Link,
    pub standing: Standing,
    pub offer: String,
    pub request_id: Option<String>,
    pub since: i64,
}

/// One meeting's live state.
pub struct Room {
    pub meeting_id: i64,
    pub locked: bool,
    /// The engine room exists.
    pub engine_room: bool,
    /// Generation of the engine room, new each time it is created.
    pub engine_epoch: u64,
    /// People in the media by account.
    pub members: BTreeMap<i64, Member>,
    /// People waiting by account.
    pub lobby: BTreeMap<i64, Waiting>,
    /// Accounts the host admitted from the lobby; they enter directly until removed.
    pub admitted: HashSet<i64>,
    /// Accounts the host removed; they wait in the lobby until admitted again.
    pub removed: HashSet<i64>,
    /// Accounts whose audio the server does not forward until the host unmutes them.
    pub muted: HashSet<i64>,
    /// Raised hands by account: Unix milliseconds when each went up. A hand stays raised
    /// across a reconnect, until its owner or the host lowers it.
    pub hands: BTreeMap<i64, i64>,
    /// Account of the active speaker.
    pub speaker: Option<i64>,
    /// The host ended the meeting. A request that found this room before it was taken
    /// out of the map must not bring it back to life.
    pub closed: bool,
    /// The mixing task, while any member receives mixed audio.
    pub mixed_audio: Option<MixedAudio>,
    /// Lecture mode, when the meeting is a live lecture.
    pub lecture: Option<super::lecture::LectureMode>,
    /// People in the media on other nodes by account, with the node of each, as those
    /// nodes' placement entries list them.
    pub remote: BTreeMap<i64, (String, ParticipantEntry)>,
    /// People waiting in the lobby on other nodes by account, with the node of each, as
    /// those nodes' placement entries list them. The host admits or denies them through
    /// their node.
    pub remote_lobby: BTreeMap<i64, (String, WaitingEntry)>,
    /// Told when a member's entry changes, so the other nodes see it.
    pub placement: Option<Arc<Placement>>,
}

impl Room {
    pub fn new(meeting_id: i64, locked: bool) -> Self {
        Self {
            meeting_id,
            locked,
            engine_room: false,
            engine_epoch: 0,
            members: BTreeMap::new(),
            lobby: BTreeMap::new(),
            admitted: HashSet::new(),
            removed: HashSet::new(),
            muted: HashSet::new(),
            hands: BTreeMap::new(),
            speaker: None,
            closed: false,
            mixed_audio: None,
            lecture: None,
            remote: BTreeMap::new(),
            remote_lobby: BTreeMap::new(),
            placement: None,
        }
    }

    /// Creates a room with the host decisions and raised hands read from the store.
    pub fn restore(meeting_id: i64, locked: bool, stored: Stored) -> Self {
        Self {
            admitted: stored.admitted,
            removed: stored.removed,
            muted: stored.muted,
            hands: stored.hands,
            ..Self::new(meeting_id, locked)
        }
    }

    /// Replaces the host decisions and raised hands with the stored ones.
    pub fn restore_decisions(&mut self, stored: Stored) {
        self.admitted = stored.admitted;
        self.removed = stored.removed;
        self.muted = stored.muted;
        self.hands = stored.hands;
    }

    /// Replaces one account's host decisions and raised hand with the stored ones.
    pub fn restore_account(&mut self, account_id: i64, stored: &Stored) {
        let flags = [
            (&mut self.admitted, &stored.admitted),
            (&mut self.removed, &stored.removed),
            (&mut self.muted, &stored.muted),
        ];
        for (set, stored) in flags {
            if stored.contains(&account_id) {
                set.insert(account_id);
            } else {
                set.remove(&account_id);
            }
        }
        match stored.hands.get(&account_id) {
            Some(raised_at) => self.hands.insert(account_id, *raised_at),
            None => self.hands.remove(&account_id),
        };
    }

    /// Checks that this node's media and lobby are empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.lobby.is_empty()
    }

    pub fn decisions(&self, account_id: i64) -> Decisions {
        Decisions {
            present: self.members.contains_key(&account_id),
            admitted: self.admitted.contains(&account_id),
            removed: self.removed.contains(&account_id),
        }
    }

    /// Removes a person from the media, ending their mixed audio.
    pub fn take_member(&mut self, account_id: i64) -> Option<Member> {
        let member = self.members.remove(&account_id)?;
        if member.mixed {
            self.end_mixed_audio(&member.participant);
        }
        Some(member)
    }

    /// Stops the mixed audio of one listener, and the mixing task once nobody else
    /// receives mixed audio.
    pub fn end_mixed_audio(&mut self, listener: &ParticipantId) {
        if let Some(mixed_audio) = &self.mixed_audio {
            mixed_audio.remove(listener);
        }
        let others = self
            .members
            .values()
            .any(|member| member.mixed && member.participant != *listener);
        if !others {
            self.mixed_audio = None;
        }
    }

    /// Finds the account whose media connection is `participant`, if it is still current.
    pub fn account_of(&self, participant: &ParticipantId) -> Option<i64> {
        self.members
            .iter()
            .find(|(_, member)| member.participant == *participant)
            .map(|(account, _)| *account)
    }

    /// Returns the account of someone in the media on another node.
    pub fn remote_account_of(&self, participant: &ParticipantId) -> Option<i64> {
        self.remote
            .iter()
            .find(|(_, (_, entry))| entry.participant == participant.0)
            .map(|(account, _)| *account)
    }

    pub fn participant_entry(&self, account_id: i64) -> Option<ParticipantEntry> {
        let member = self.members.get(&account_id)?;
        let tracks = member
            .tracks
            .iter()
            .map(|(mid, kind)| TrackEntry {
                mid: mid.clone(),
                kind: match kind {
                    MediaKind::Audio => "audio".into(),
                    MediaKind::Video => "video".into(),
                },
                source: member.sources.get(mid).copied(),
            })
            .collect();
        Some(ParticipantEntry {
            account_id,
            name: member.link.name.clone(),
            participant: member.participant.0.clone(),
            standing: standing_name(member.standing).into(),
            connected: member.connected,
            microphone: member.microphone,
            camera: member.camera,
            screen: member.screen,
            muted_by_host: self.muted.contains(&account_id),
            hand_raised_at: self.hands.get(&account_id).copied(),
            speaking: self.speaker == Some(account_id),
            tracks,
        })
    }

    /// Returns the entries of the people waiting in this node's lobby.
    pub fn local_lobby_entries(&self) -> Vec<WaitingEntry> {
        self.lobby
            .iter()
            .map(|(account_id, waiting)| WaitingEntry {
                account_id: *account_id,
                name: waiting.link.name.clone(),
                standing: standing_name(waiting.standing).into(),
                since: waiting.since,
            })
            .collect()
    }

    /// Returns the whole lobby as the host gets it: this node's and the other nodes',
    /// in order of arrival. Someone waiting here too, or already in the media here, is
    /// listed once, from this node.
    pub fn lobby_entries(&self) -> Vec<WaitingEntry> {
        let mut entries = self.local_lobby_entries();
        entries.extend(
            self.remote_lobby
                .iter()
                .filter(|(account, _)| {
                    !self.lobby.contains_key(account) && !self.members.contains_key(account)
                })
                .map(|(_, (_, entry))| entry.clone()),
        );
        entries.sort_by_key(|entry| (entry.since, entry.account_id));
        entries
    }

    /// Builds the live state as `account_id` may see it: the lobby only for the host,
    /// and in lecture mode only the presenters and the floor holder for viewers.
    pub fn snapshot(&self, account_id: i64, is_host: bool, seq: i64) -> Snapshot {
        let staff = self.is_staff(account_id);
        let lecture = self
            .lecture_stats()
            .map(|stats| super::lecture::LectureStats {
                role: self
                    .lecture
                    .as_ref()
                    .and_then(|lecture| lecture.roles.get(&account_id).copied()),
                ..stats
            });
        Snapshot {
            meeting_id: self.meeting_id,
            locked: self.locked,
            participants: self
                .members
                .keys()
                .filter(|account| staff || self.is_stage(**account) || **account == account_id)
                .filter_map(|account| self.participant_entry(*account))
                .chain(
                    self.remote_entries()
                        .filter(|entry| staff || self.is_stage(entry.account_id)),
                )
                .collect(),
            lobby: if is_host {
                self.lobby_entries()
            } else {
                Vec::new()
            },
            seq,
            lecture,
        }
    }

    /// Sends a message to every person in the media.
    pub fn broadcast(&self, message: &LiveMessage) {
        let text = message_text(message);
        for member in self.members.values() {
            member.link.send_text(text.clone());
        }
    }

    /// Returns the entries of people on other nodes that are not also in the media here.
    /// Callers apply the lecture's role filter, as for local members.
    pub fn remote_entries(&self) -> impl Iterator<Item = ParticipantEntry> + '_ {
        self.remote
            .iter()
            .filter(|(account, _)| !self.members.contains_key(account))
            .map(|(_, (_, entry))| entry.clone())
    }

    /// Asks the placement writer to share this node's entries again.
    pub fn entries_changed(&self) {
        if let Some(placement) = &self.placement {
            placement.participants_changed();
        }
    }

    /// Sends a participant's current entry to every person in the media who sees them;
    /// in lecture mode a viewer also gets their own entry.
    pub fn broadcast_participant(&self, account_id: i64) {
        self.entries_changed();
        if let Some(participant) = self.participant_entry(account_id) {
            let message = LiveMessage::MeetingParticipant {
                meeting_id: self.meeting_id,
                participant,
            };
            self.broadcast_about(account_id, &message);
            if !self.is_stage(account_id)
                && !self.is_staff(account_id)
                && let Some(member) = self.members.get(&account_id)
            {
                member.link.send(&message);
            }
        }
    }

    /// Sends that a participant left to every person in the media who saw them.
    pub fn broadcast_left(&self, account_id: i64, participant: String) {
        self.entries_changed();
        self.broadcast_about(
            account_id,
            &LiveMessage::MeetingParticipantLeft {
                meeting_id: self.meeting_id,
                account_id,
                participant,
            },
        );
    }

    /// Shares a change of this node's lobby with the other nodes and sends the lobby to
    /// the host's connections in the media.
    pub fn notify_lobby(&self) {
        self.entries_changed();
        self.send_lobby();
    }

    /// Sends the whole lobby to the host's connections in the media.
    pub fn send_lobby(&self) {
        let message = LiveMessage::MeetingLobby {
            meeting_id: self.meeting_id,
            waiting: self.lobby_entries(),
        };
        for member in self.members.values() {
            if member.standing == Standing::Host {
                member.link.send(&message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decisions(present: bool, admitted: bool, removed: bool) -> Decisions {
        Decisions {
            present,
            admitted,
            removed,
        }
    }

    #[test]
    fn entry_by_standing_when_open() {
        let none = Decisions::default();
        assert_eq!(entry(Standing::Host, false, &none), Entry::Direct);
        assert_eq!(entry(Standing::Recorder, false, &none), Entry::Direct);
        assert_eq!(entry(Standing::Invitee, false, &none), Entry::Direct);
        assert_eq!(entry(Standing::Member, false, &none), Entry::Direct);
        assert_eq!(entry(Standing::Outsider, false, &none), Entry::Lobby);
    }

    #[test]
    fn entry_when_locked() {
        let none = Decisions::default();
        assert_eq!(entry(Standing::Host, true, &none), Entry::Direct);
        assert_eq!(entry(Standing::Recorder, true, &none), Entry::Direct);
        assert_eq!(entry(Standing::Invitee, true, &none), Entry::Lobby);
        assert_eq!(entry(Standing::Member, true, &none), Entry::Lobby);
        assert_eq!(entry(Standing::Outsider, true, &none), Entry::Lobby);
    }

    #[test]
    fn lecture_snapshot_filters_remote_viewers() {
        let mut room = Room::new(1, false);
        room.lecture = Some(super::super::lecture::LectureMode::new(
            super::super::lecture::LectureFacts {
                lesson_id: 1,
                course_id: 1,
                presenters: HashSet::from([10]),
            },
        ));
        for account in [10, 20, 30] {
            room.remote.insert(
                account,
                ("node-2".to_owned(), ParticipantEntry::sample(account)),
            );
        }
        let listed = |snapshot: Snapshot| -> Vec<i64> {
            snapshot
                .participants
                .iter()
                .map(|entry| entry.account_id)
                .collect()
        };
        // A viewer, who has no staff role, gets the presenter only.
        assert_eq!(listed(room.snapshot(40, false, 0)), vec![10]);
        // Staff see everyone.
        if let Some(lecture) = room.lecture.as_mut() {
            lecture
                .roles
                .insert(40, super::super::lecture::LectureRole::Organizer);
        }
        assert_eq!(listed(room.snapshot(40, false, 0)), vec![10, 20, 30]);
    }

    #[test]
    fn lobby_merges_remote_entries_by_arrival() {
        let mut room = Room::new(1, true);
        for (account, since) in [(7, 300), (5, 100), (9, 200)] {
            let entry = WaitingEntry {
                account_id: account,
                name: format!("person {account}"),
                standing: "member".into(),
                since,
            };
            room.remote_lobby
                .insert(account, ("node-1".to_owned(), entry));
        }
        let order: Vec<i64> = room
            .lobby_entries()
            .iter()
            .map(|entry| entry.account_id)
            .collect();
        assert_eq!(order, vec![5, 9, 7]);
        assert!(room.local_lobby_entries().is_empty());
        // Only the host gets the lobby.
        assert_eq!(room.snapshot(1, true, 0).lobby.len(), 3);
        assert!(room.snapshot(2, false, 0).lobby.is_empty());
    }

    #[test]
    fn restore_account_replaces_one_row() {
        let mut room = Room::new(1, false);
        room.removed.insert(3);
        room.muted.insert(4);
        room.hands.insert(3, 50);
        let stored = Stored {
            admitted: HashSet::from([3]),
            removed: HashSet::new(),
            muted: HashSet::from([3]),
            hands: BTreeMap::new(),
        };
        room.restore_account(3, &stored);
        assert!(room.admitted.contains(&3));
        assert!(!room.removed.contains(&3));
        assert!(room.muted.contains(&3));
        assert!(!room.hands.contains_key(&3));
        // Other accounts keep their decisions.
        assert!(room.muted.contains(&4));
    }

    #[test]
    fn entry_after_host_decisions() {
        let admitted = decisions(false, true, false);
        assert_eq!(entry(Standing::Outsider, true, &admitted), Entry::Direct);
        let present = decisions(true, false, false);
        assert_eq!(entry(Standing::Member, true, &present), Entry::Direct);
        let removed = decisions(false, false, true);
        assert_eq!(entry(Standing::Member, false, &removed), Entry::Lobby);
        assert_eq!(entry(Standing::Recorder, false, &removed), Entry::Lobby);
        assert_eq!(entry(Standing::Host, false, &removed), Entry::Direct);
    }
}
