//! Notices (通知公告) sent to organization subtrees and named members, with
//! read and confirmation receipts that the sender watches arrive live.
//!
//! Recipients are resolved when the notice is sent, so a member who moves
//! later keeps the notices they received. Every receipt is committed before
//! the request returns, so a receipt acknowledged to the client is never
//! lost. Hub events: `notice.new`, `notice.read`, `notice.remind` and
//! `notice.withdrawn` on each recipient's `user:ID` topic; `receipt.read`,
//! `receipt.confirmed` and `notice.withdrawn` on the sender's `notice:ID`.

mod receipts;
mod routes;

pub use routes::{AttachmentRef, NewNotice, Notice, Targets, create_notice, insert_notice, router};

use serde::{Deserialize, Serialize};

/// How urgent a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Normal,
    Urgent,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Urgent => "urgent",
        }
    }
}

/// Shortest time between two reminders of one notice, in milliseconds.
pub const REMIND_INTERVAL_MS: i64 = 5 * 60 * 1000;

/// Sanitizes rich text from the composer: the allowed tags and attributes
/// of `ammonia`'s defaults (no scripts, styles or event handlers), with
/// links opened safely.
pub fn sanitize_html(html: &str) -> String {
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer"))
        .clean(html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_script_and_handlers() {
        let clean = sanitize_html(
            r#"<p onclick="x()">会议<script>alert(1)</script><a href="javascript:x">a</a></p>"#,
        );
        assert!(!clean.contains("script"), "{clean}");
        assert!(!clean.contains("onclick"), "{clean}");
        assert!(!clean.contains("javascript"), "{clean}");
        assert!(clean.contains("会议"), "{clean}");
    }
}
