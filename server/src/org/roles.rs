//! Roles inside an organization. The six officer roles make up the
//! organization's committee; every member is a 党员 without a role row.

use serde::{Deserialize, Serialize};

/// An officer role in one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrgRole {
    /// 书记
    Secretary,
    /// 副书记
    DeputySecretary,
    /// 组织委员
    OrganizationMember,
    /// 宣传委员
    PropagandaMember,
    /// 纪检委员
    DisciplineMember,
    /// 委员
    CommitteeMember,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secretary => "secretary",
            Self::DeputySecretary => "deputy_secretary",
            Self::OrganizationMember => "organization_member",
            Self::PropagandaMember => "propaganda_member",
            Self::DisciplineMember => "discipline_member",
            Self::CommitteeMember => "committee_member",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Secretary,
            Self::DeputySecretary,
            Self::OrganizationMember,
            Self::PropagandaMember,
            Self::DisciplineMember,
            Self::CommitteeMember,
        ]
        .into_iter()
        .find(|role| role.as_str() == value)
    }

    pub fn zh(self) -> &'static str {
        match self {
            Self::Secretary => "书记",
            Self::DeputySecretary => "副书记",
            Self::OrganizationMember => "组织委员",
            Self::PropagandaMember => "宣传委员",
            Self::DisciplineMember => "纪检委员",
            Self::CommitteeMember => "委员",
        }
    }
}
