//! Party members: personal record, status and their one formal organization.
//!
//! The identity-card number is stored in full but leaves the server masked
//! (first and last character) in every listing and response. Officers of the
//! member's own organization and the security administrator may reveal it,
//! and each reveal is written to the audit trail.

pub mod idcard;
mod routes;

pub use routes::router;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::AppError;

/// Probationary (预备党员) or full (正式党员) member, or a record kept for
/// history after the relation moved out of the deployment (关系已转出).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Probationary,
    Full,
    /// Set only when a transfer out of the deployment is closed by its
    /// signed receipt; the record then leaves the active rolls.
    MovedOut,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Probationary => "probationary",
            Self::Full => "full",
            Self::MovedOut => "moved_out",
        }
    }

    pub fn parse(value: &str) -> Self {
        match value {
            "full" => Self::Full,
            "moved_out" => Self::MovedOut,
            _ => Self::Probationary,
        }
    }

    /// Rejects `moved_out` in a member record sent by a client.
    pub fn check_input(self) -> Result<Self, AppError> {
        if self == Self::MovedOut {
            return Err(AppError::invalid(
                "status",
                "“关系已转出”在组织关系转出办结时自动设置，不能直接填写",
                "moved_out is set when a transfer out is closed; it cannot be set directly",
            ));
        }
        Ok(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Male => "male",
            Self::Female => "female",
        }
    }
}

/// A member record as returned by the API (identity number masked).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Member {
    pub id: i64,
    pub org_id: i64,
    pub org_name: String,
    pub name: String,
    pub gender: Gender,
    pub ethnicity: String,
    pub birth_date: String,
    pub education: String,
    pub joined_on: Option<String>,
    pub status: MemberStatus,
    pub phone: String,
    /// First and last character only, e.g. `1****************X`.
    pub id_number_masked: String,
    /// The member's login account, if any.
    pub account_id: Option<i64>,
    /// Officer roles held, as `(org_id, role)`.
    pub roles: Vec<MemberRole>,
}

/// One officer role held by a member.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberRole {
    pub org_id: i64,
    pub org_name: String,
    pub role: crate::org::OrgRole,
}

pub(crate) const MEMBER_COLUMNS: &str = "m.id, m.org_id, o.name AS org_name, o.path AS org_path, \
     m.name, m.gender, m.ethnicity, m.birth_date, m.education, m.joined_on, m.status, m.phone, m.id_number, \
     (SELECT a.id FROM accounts a WHERE a.member_id = m.id) AS account_id";

impl Member {
    pub(crate) fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        let gender: String = row.try_get("gender")?;
        let status: String = row.try_get("status")?;
        let id_number: String = row.try_get("id_number")?;
        Ok(Self {
            id: row.try_get("id")?,
            org_id: row.try_get("org_id")?,
            org_name: row.try_get("org_name")?,
            name: row.try_get("name")?,
            gender: if gender == "female" {
                Gender::Female
            } else {
                Gender::Male
            },
            ethnicity: row.try_get("ethnicity")?,
            birth_date: row.try_get("birth_date")?,
            education: row.try_get("education")?,
            joined_on: row.try_get("joined_on")?,
            status: MemberStatus::parse(&status),
            phone: row.try_get("phone")?,
            id_number_masked: idcard::mask(&id_number),
            account_id: row.try_get("account_id")?,
            roles: Vec::new(),
        })
    }
}

impl Member {
    /// Blanks the personal fields for callers who see only the roster.
    pub fn hide_personal_details(&mut self) {
        self.ethnicity.clear();
        self.birth_date.clear();
        self.education.clear();
        self.joined_on = None;
        self.phone.clear();
        self.id_number_masked.clear();
    }
}

/// Validates a `YYYY-MM-DD` date not in the future.
pub fn check_date(field: &str, value: &str) -> Result<NaiveDate, AppError> {
    let date = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| {
        AppError::invalid(
            field,
            format!("日期格式应为 YYYY-MM-DD：{value}"),
            format!("date must be YYYY-MM-DD: {value}"),
        )
    })?;
    if date > chrono::Local::now().date_naive() {
        return Err(AppError::invalid(
            field,
            "日期不能晚于今天",
            "date cannot be in the future",
        ));
    }
    Ok(date)
}

/// Validates a person's name: 1 to 50 characters, no spaces inside.
pub fn check_person_name(value: &str) -> Result<String, AppError> {
    let name = value.trim();
    let length = name.chars().count();
    if length == 0 || length > 50 {
        return Err(AppError::invalid(
            "name",
            "姓名须为 1 到 50 个字符",
            "name must be 1 to 50 characters",
        ));
    }
    Ok(name.to_owned())
}

/// Validates a phone number: digits with an optional leading `+` and
/// hyphens, 5 to 20 characters.
pub fn check_phone(value: &str) -> Result<String, AppError> {
    let phone = value.trim();
    let digits = phone.trim_start_matches('+');
    let valid =
        (5..=20).contains(&phone.len()) && digits.chars().all(|c| c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(AppError::invalid(
            "phone",
            format!("电话号码无效：{phone}"),
            format!("invalid phone number: {phone}"),
        ));
    }
    Ok(phone.to_owned())
}

/// Validates and normalizes an identity-card number.
pub fn check_id_number(value: &str) -> Result<String, AppError> {
    idcard::normalize(value).ok_or_else(|| {
        AppError::invalid(
            "id_number",
            "身份证号码无效（18 位，末位校验码须正确）",
            "invalid identity card number (18 characters with a valid check character)",
        )
    })
}
