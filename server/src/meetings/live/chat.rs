//! Meeting chat: messages are stored events of kind `chat.message` on the `meeting:ID`
//! topic, so a page that reconnects resumes them with `since`. Only people in the media
//! may write. Text is plain: pages must insert it as text, never as HTML.

use serde_json::json;

use super::Link;
use super::protocol::{Chat, LiveMessage};
use super::signal::require_present;
use crate::error::{AppError, AppResult};
use crate::hub::store;
use crate::hub::topic::Topic;
use crate::state::AppState;

/// Maximum length of a chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 2000;

/// Stores and publishes one chat message.
pub async fn send(state: &AppState, link: &Link, body: Chat) -> AppResult<LiveMessage> {
    let text = clean_text(&body.text)?;
    require_present(state, link, body.meeting_id).await?;
    let topic = Topic::Meeting(body.meeting_id).name();
    let data = json!({
        "account_id": link.account_id,
        "name": link.name,
        "text": text,
    });
    let mut tx = state.db.begin().await?;
    let event = store::append(&mut tx, &topic, "chat.message", data).await?;
    tx.commit().await?;
    let seq = event.seq;
    state.hub.publish([event]);
    Ok(LiveMessage::MeetingOk {
        id: body.id,
        meeting_id: body.meeting_id,
        seq: Some(seq),
    })
}

/// Newest sequence number of a meeting's topic.
pub async fn head(state: &AppState, meeting_id: i64) -> AppResult<i64> {
    Ok(store::head(&state.db, &Topic::Meeting(meeting_id).name()).await?)
}

/// Removes control and bidirectional override characters (line breaks and tabs stay),
/// trims, and checks the length.
pub fn clean_text(text: &str) -> AppResult<String> {
    let cleaned: String = text
        .chars()
        .filter(|c| *c == '\n' || *c == '\t' || !(c.is_control() || is_bidi_control(*c)))
        .collect();
    let cleaned = cleaned.trim();
    let length = cleaned.chars().count();
    if length == 0 {
        return Err(AppError::invalid("text", "消息不能为空", "text is empty"));
    }
    if length > MAX_CHAT_CHARS {
        return Err(AppError::invalid(
            "text",
            format!("消息最多 {MAX_CHAT_CHARS} 个字符，当前 {length} 个"),
            format!("text has {length} characters, the maximum is {MAX_CHAT_CHARS}"),
        ));
    }
    Ok(cleaned.to_owned())
}

/// Unicode bidirectional embedding, override and isolate controls, which can make text
/// display in a different order than it was written.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_strips_controls_and_trims() {
        let text = clean_text("  会议\u{0007}开始\u{202e}了\n第二行\t \r").unwrap();
        assert_eq!(text, "会议开始了\n第二行");
    }

    #[test]
    fn clean_text_rejects_empty_and_long() {
        assert!(clean_text(" \u{0000} ").is_err());
        let long = "党".repeat(MAX_CHAT_CHARS + 1);
        let error = clean_text(&long).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("text"));
        assert!(clean_text(&"党".repeat(MAX_CHAT_CHARS)).is_ok());
    }
}
