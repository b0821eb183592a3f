//! The scheduling request and its checks.

use serde::{Deserialize, Serialize};

use super::kind::MeetingKind;
use super::rules::PassRule;
use crate::error::{AppError, AppResult};

/// Whether an invitee is expected to attend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Attendance {
    Required,
    Optional,
}

impl Attendance {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Optional => "optional",
        }
    }
}

fn required() -> Attendance {
    Attendance::Required
}

fn majority() -> PassRule {
    PassRule::Majority
}

/// One agenda item.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgendaInput {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The pass rule of a motion on this item. [default: majority]
    #[serde(default = "majority")]
    pub pass_rule: PassRule,
}

/// Someone invited by name, from the organization or from elsewhere.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteeInput {
    pub member_id: i64,
    /// [default: required]
    #[serde(default = "required")]
    pub attendance: Attendance,
}

/// A meeting to schedule, or its new details on an edit.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeetingInput {
    /// The organization holding the meeting; an edit cannot move it.
    pub org_id: i64,
    pub kind: MeetingKind,
    pub title: String,
    /// Start, Unix milliseconds.
    pub starts_at: i64,
    /// End, Unix milliseconds; after the start, at most 24 hours later.
    pub ends_at: i64,
    /// Room or address; may be empty when the meeting is online.
    #[serde(default)]
    pub place: String,
    /// Whether people join through Dangwu's video meeting.
    #[serde(default)]
    pub online: bool,
    #[serde(default)]
    pub agenda: Vec<AgendaInput>,
    /// The host (主持人).
    pub host_member: i64,
    /// The recorder (记录人), who writes the minutes.
    pub recorder_member: i64,
    /// People invited beyond the meeting's body (members with voting
    /// rights are invited by the kind of meeting).
    #[serde(default)]
    pub invitees: Vec<InviteeInput>,
}

/// Maximum meeting length, in milliseconds (24 hours).
pub const MAX_DURATION_MS: i64 = 24 * 3600 * 1000;
/// How far in the past a new start may lie, in milliseconds (5 minutes),
/// for a meeting scheduled on the spot.
pub const START_GRACE_MS: i64 = 5 * 60 * 1000;
/// How far ahead a meeting may be scheduled, in milliseconds (five years
/// of 366 days), which also keeps times within what calendars can show.
pub const MAX_AHEAD_MS: i64 = 5 * 366 * 24 * 3600 * 1000;
pub const MAX_AGENDA_ITEMS: usize = 50;
pub const MAX_INVITEES: usize = 1000;

fn text(field: &str, value: &str, max: usize, allow_empty: bool) -> AppResult<String> {
    let value = value.trim();
    let length = value.chars().count();
    if (!allow_empty && length == 0) || length > max {
        let min = if allow_empty { 0 } else { 1 };
        return Err(AppError::invalid(
            field,
            format!("须为 {min} 到 {max} 个字符"),
            format!("must be {min} to {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

impl MeetingInput {
    /// Checks the fields that need no database and trims the texts.
    /// `start_changed` is false on an edit that keeps the start time, so a
    /// meeting whose start has passed can still be edited.
    pub fn checked(mut self, now: i64, start_changed: bool) -> AppResult<Self> {
        self.title = text("title", &self.title, 200, false)?;
        self.place = text("place", &self.place, 200, true)?;
        if self.place.is_empty() && !self.online {
            return Err(AppError::invalid(
                "place",
                "请填写会议地点，或选择线上会议",
                "give a place or make the meeting online",
            ));
        }
        if self.host_member == self.recorder_member {
            return Err(AppError::invalid(
                "recorder_member",
                "记录人不能同时担任主持人",
                "the recorder must be someone other than the host",
            ));
        }

        self.check_times(now, start_changed)?;
        self.check_agenda()?;
        self.check_invitees()?;
        Ok(self)
    }

    fn check_times(&self, now: i64, start_changed: bool) -> AppResult<()> {
        if self.starts_at > now + MAX_AHEAD_MS {
            return Err(AppError::invalid(
                "starts_at",
                "开始时间不能晚于五年之后",
                "the start must be within five years from now",
            ));
        }
        if start_changed && self.starts_at < now - START_GRACE_MS {
            return Err(AppError::invalid(
                "starts_at",
                "开始时间不能早于现在",
                "the start must not be in the past",
            ));
        }
        if self.ends_at <= self.starts_at || self.ends_at - self.starts_at > MAX_DURATION_MS {
            return Err(AppError::invalid(
                "ends_at",
                "结束时间须晚于开始时间，且会议不超过 24 小时",
                "the end must follow the start, at most 24 hours later",
            ));
        }
        Ok(())
    }

    fn check_agenda(&mut self) -> AppResult<()> {
        if self.agenda.len() > MAX_AGENDA_ITEMS {
            return Err(AppError::invalid(
                "agenda",
                format!("议程最多 {MAX_AGENDA_ITEMS} 项"),
                format!("at most {MAX_AGENDA_ITEMS} agenda items"),
            ));
        }
        for (index, item) in self.agenda.iter_mut().enumerate() {
            item.title = text(&format!("agenda[{index}].title"), &item.title, 200, false)?;
            item.description = text(
                &format!("agenda[{index}].description"),
                &item.description,
                2000,
                true,
            )?;
        }
        Ok(())
    }

    fn check_invitees(&self) -> AppResult<()> {
        if self.invitees.len() > MAX_INVITEES {
            return Err(AppError::invalid(
                "invitees",
                format!("受邀人最多 {MAX_INVITEES} 人"),
                format!("at most {MAX_INVITEES} invitees"),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, invitee) in self.invitees.iter().enumerate() {
            if !seen.insert(invitee.member_id) {
                return Err(AppError::invalid(
                    &format!("invitees[{index}].member_id"),
                    format!("受邀人 {} 重复", invitee.member_id),
                    format!("invitee {} is listed twice", invitee.member_id),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> MeetingInput {
        MeetingInput {
            org_id: 1,
            kind: MeetingKind::BranchCommittee,
            title: " 十二月支委会 ".to_owned(),
            starts_at: 10_000_000,
            ends_at: 13_600_000,
            place: "三楼会议室".to_owned(),
            online: false,
            agenda: vec![],
            host_member: 1,
            recorder_member: 2,
            invitees: vec![],
        }
    }

    #[test]
    fn checked_trims_title() {
        let checked = input().checked(10_000_000, true).unwrap();
        assert_eq!(checked.title, "十二月支委会");
    }

    type Change = Box<dyn Fn(&mut MeetingInput)>;

    #[test]
    fn checked_rejects_bad_fields() {
        let cases: Vec<(&str, Change)> = vec![
            ("title", Box::new(|i| i.title = "  ".to_owned())),
            ("place", Box::new(|i| i.place = String::new())),
            ("ends_at", Box::new(|i| i.ends_at = i.starts_at)),
            (
                "ends_at",
                Box::new(|i| i.ends_at = i.starts_at + MAX_DURATION_MS + 1),
            ),
            ("starts_at", Box::new(|i| i.starts_at = 0)),
            (
                "starts_at",
                Box::new(|i| {
                    i.starts_at = i64::MAX - 1;
                    i.ends_at = i64::MAX;
                }),
            ),
            (
                "recorder_member",
                Box::new(|i| i.recorder_member = i.host_member),
            ),
            (
                "invitees[1].member_id",
                Box::new(|i| {
                    let invitee = InviteeInput {
                        member_id: 5,
                        attendance: Attendance::Optional,
                    };
                    i.invitees = vec![invitee.clone(), invitee];
                }),
            ),
        ];
        for (field, change) in cases {
            let mut bad = input();
            change(&mut bad);
            let error = bad.checked(10_000_000, true).unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field));
        }
    }

    #[test]
    fn online_meeting_needs_no_place() {
        let mut online = input();
        online.place = String::new();
        online.online = true;
        assert!(online.checked(10_000_000, true).is_ok());
    }
}
