//! Kinds of meeting and who makes up each one's body.

use serde::{Deserialize, Serialize};

use crate::org::OrgKind;

/// The kind of a meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MeetingKind {
    /// 支部党员大会 (党员大会 of any organization above a group).
    GeneralMeeting,
    /// 支委会: the committee of a branch or general branch.
    BranchCommittee,
    /// 党小组会
    GroupMeeting,
    /// 党课
    PartyLecture,
    /// 党委会: the committee of a party committee or leading party group.
    PartyCommittee,
    /// 组织生活会
    LifeMeeting,
    Other,
}

/// The membership of a meeting's body: those with voting rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// The full members of the organization and its subtree; probationary
    /// members of the subtree attend without a vote.
    Members,
    /// The officers (committee members) of the organization itself.
    Committee,
    /// No body: only the invited attend, and none of them votes.
    InviteesOnly,
}

pub const ALL: [MeetingKind; 7] = [
    MeetingKind::GeneralMeeting,
    MeetingKind::BranchCommittee,
    MeetingKind::GroupMeeting,
    MeetingKind::PartyLecture,
    MeetingKind::PartyCommittee,
    MeetingKind::LifeMeeting,
    MeetingKind::Other,
];

impl MeetingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GeneralMeeting => "general_meeting",
            Self::BranchCommittee => "branch_committee",
            Self::GroupMeeting => "group_meeting",
            Self::PartyLecture => "party_lecture",
            Self::PartyCommittee => "party_committee",
            Self::LifeMeeting => "life_meeting",
            Self::Other => "other",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        ALL.into_iter().find(|kind| kind.as_str() == value)
    }

    pub fn zh(self) -> &'static str {
        match self {
            Self::GeneralMeeting => "党员大会",
            Self::BranchCommittee => "支委会",
            Self::GroupMeeting => "党小组会",
            Self::PartyLecture => "党课",
            Self::PartyCommittee => "党委会",
            Self::LifeMeeting => "组织生活会",
            Self::Other => "其他会议",
        }
    }

    /// Returns the body whose members are required to attend and vote.
    pub fn body(self) -> Body {
        match self {
            Self::GeneralMeeting | Self::GroupMeeting | Self::LifeMeeting | Self::PartyLecture => {
                Body::Members
            }
            Self::BranchCommittee | Self::PartyCommittee => Body::Committee,
            Self::Other => Body::InviteesOnly,
        }
    }

    /// Whether the meeting takes decisions: only these hold votes and
    /// elections. A group meeting, a lecture and a 组织生活会 discuss and
    /// study but decide nothing.
    pub fn decides(self) -> bool {
        matches!(
            self,
            Self::GeneralMeeting | Self::BranchCommittee | Self::PartyCommittee
        )
    }

    /// Whether an organization of `org` kind meets in this kind of meeting.
    pub fn held_by(self, org: OrgKind) -> bool {
        match self {
            Self::GeneralMeeting => org != OrgKind::Group,
            Self::BranchCommittee => matches!(org, OrgKind::Branch | OrgKind::GeneralBranch),
            Self::PartyCommittee => matches!(org, OrgKind::Committee | OrgKind::LeadingGroup),
            Self::GroupMeeting => org == OrgKind::Group,
            Self::PartyLecture | Self::LifeMeeting | Self::Other => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for kind in ALL {
            assert_eq!(MeetingKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MeetingKind::parse("party"), None);
    }

    #[test]
    fn committee_meetings_belong_to_matching_orgs() {
        assert!(MeetingKind::BranchCommittee.held_by(OrgKind::Branch));
        assert!(!MeetingKind::BranchCommittee.held_by(OrgKind::Committee));
        assert!(MeetingKind::PartyCommittee.held_by(OrgKind::Committee));
        assert!(!MeetingKind::GroupMeeting.held_by(OrgKind::Branch));
        assert!(!MeetingKind::GeneralMeeting.held_by(OrgKind::Group));
    }
}
