//! iCalendar (RFC 5545) entries for meetings, attached to invitations and
//! served at `GET /api/meetings/{id}/ics`.

use super::store::{MeetingRow, MeetingStatus};

/// An agenda line for the calendar description.
pub struct AgendaLine<'a> {
    pub position: i64,
    pub title: &'a str,
}

/// Builds a one-event calendar. `UID` is stable per meeting and host, and
/// `SEQUENCE` is the meeting's revision, so calendar programs replace the
/// entry on an update and remove it on a cancellation.
pub fn calendar(
    meeting: &MeetingRow,
    agenda: &[AgendaLine<'_>],
    host: &str,
    public_url: &str,
    now_ms: i64,
) -> String {
    let cancelled = meeting.status == MeetingStatus::Cancelled;
    let mut description = format!("{}：{}", meeting.kind.zh(), meeting.org_name);
    for item in agenda {
        description.push_str(&format!("\n{}. {}", item.position + 1, item.title));
    }
    let url = format!(
        "{}/meetings/{}",
        public_url.trim_end_matches('/'),
        meeting.id
    );
    let mut location = meeting.place.clone();
    if meeting.online {
        if !location.is_empty() {
            location.push_str(" / ");
        }
        location.push_str(&url);
    }
    let method = if cancelled { "CANCEL" } else { "PUBLISH" };
    let status = if cancelled { "CANCELLED" } else { "CONFIRMED" };
    let lines = [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Dangwu//Meetings//ZH".to_owned(),
        format!("METHOD:{method}"),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:meeting-{}@{}", meeting.id, host_of(public_url)),
        format!("SEQUENCE:{}", meeting.revision),
        format!("DTSTAMP:{}", utc(now_ms)),
        format!("DTSTART:{}", utc(meeting.starts_at)),
        format!("DTEND:{}", utc(meeting.ends_at)),
        format!("SUMMARY:{}", escape(&meeting.title)),
        format!("DESCRIPTION:{}", escape(&description)),
        format!("LOCATION:{}", escape(&location)),
        format!("ORGANIZER;CN={}:{}", param(host), url),
        format!("URL:{url}"),
        format!("STATUS:{status}"),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ];
    lines.iter().map(|line| fold(line)).collect()
}

/// The host part of a URL, for a globally unique `UID`.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', ':']).next().unwrap_or("dangwu")
}

/// A UTC date-time in the basic format, `20261208T013000Z`.
fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// Escapes a TEXT value (RFC 5545 section 3.3.11).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Quotes a parameter value, which may not contain a double quote
/// (RFC 5545 section 3.1).
fn param(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| *c != '"' && !c.is_control())
        .collect();
    format!("\"{clean}\"")
}

/// Folds a content line at 75 octets without splitting a UTF-8 character
/// and ends it with CRLF (RFC 5545 section 3.1).
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_keeps_lines_within_75_octets() {
        let line = format!("SUMMARY:{}", "党支部委员会会议".repeat(10));
        let folded = fold(&line);
        for part in folded.split("\r\n").filter(|p| !p.is_empty()) {
            assert!(part.len() <= 75, "{} octets: {part}", part.len());
        }
        let unfolded = folded.replace("\r\n ", "").replace("\r\n", "");
        assert_eq!(unfolded, line);
    }

    #[test]
    fn escape_text_specials() {
        assert_eq!(escape("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
    }

    #[test]
    fn host_of_url() {
        assert_eq!(host_of("https://dangwu.intranet:8443/x"), "dangwu.intranet");
        assert_eq!(host_of("http://127.0.0.1"), "127.0.0.1");
    }
}
