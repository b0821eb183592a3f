//! Inspection of a peer's SDP offer: which media sections it sends, with which simulcast
//! layers and header extension ids.
//!
//! The WebRTC stack applies the offer itself. This summary adds what the engine needs on
//! top of it, read the same way whatever order the attributes come in. Browsers differ here:
//! Firefox sorts attributes and puts `a=fingerprint` at session level, and aiortc gives
//! every media section its own ICE credentials.

use std::io::Cursor;

use rtc::sdp::description::session::SessionDescription;

use crate::error::SfuError;
use crate::ids::{MediaKind, Rid};

/// RFC 6464 client-to-mixer audio level extension.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Direction of a media section, from the offerer's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv`.
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`, or a rejected section (port 0).
    Inactive,
}

impl Direction {
    /// True when the offerer sends media in this section.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }
}

/// One audio or video media section of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// `a=mid` value.
    pub mid: String,
    /// Audio or video.
    pub kind: MediaKind,
    /// Offerer's direction.
    pub direction: Direction,
    /// Encoding names of the offered codecs in preference order, such as `VP8` or `opus`.
    pub codecs: Vec<String>,
    /// Send simulcast layers in `a=simulcast:send` order (empty without simulcast).
    pub send_rids: Vec<Rid>,
    /// Header extensions as `(id, uri)`, with any direction suffix removed.
    pub extensions: Vec<(u8, String)>,
    /// ICE username fragment for this section (the session-level one when absent).
    pub ice_ufrag: Option<String>,
}

impl MediaSection {
    /// Id of the header extension with this URI, if offered.
    pub fn extension_id(&self, uri: &str) -> Option<u8> {
        self.extensions
            .iter()
            .find(|(_, offered)| offered == uri)
            .map(|(id, _)| *id)
    }
}

/// Parses an SDP offer into its audio and video sections; data channel sections are left
/// out.
pub fn summarize(sdp: &str) -> Result<Vec<MediaSection>, SfuError> {
    let description = SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .map_err(|err| SfuError::InvalidSdp(err.to_string()))?;
    let session_ufrag = description
        .attribute("ice-ufrag")
        .map(|value| value.to_owned());

    let mut sections = Vec::new();
    for media in &description.media_descriptions {
        let kind = match media.media_name.media.as_str() {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            _ => continue,
        };
        let mid = media
            .attribute("mid")
            .flatten()
            .ok_or_else(|| SfuError::InvalidSdp(format!("{kind:?} section without a=mid")))?;

        let mut codecs: Vec<(usize, String)> = media
            .codecs()
            .into_values()
            .map(|codec| (format_position(media, codec.payload_type), codec.name))
            .collect();
        codecs.sort();

        sections.push(MediaSection {
            mid: mid.to_owned(),
            kind,
            direction: direction(media),
            codecs: codecs.into_iter().map(|(_, name)| name).collect(),
            send_rids: send_rids(media),
            extensions: extensions(media),
            ice_ufrag: media
                .attribute("ice-ufrag")
                .flatten()
                .map(str::to_owned)
                .or_else(|| session_ufrag.clone()),
        });
    }
    Ok(sections)
}

type Media = rtc::sdp::description::media::MediaDescription;

/// Gives every section of the offer's BUNDLE group the ICE credentials of its first
/// section, and returns the offer unchanged when there is nothing to rewrite.
///
/// With BUNDLE only the first section's transport is used (RFC 8843, section 7.3.1), but
/// aiortc 1.4 still writes different `a=ice-ufrag`/`a=ice-pwd` lines per section, and
/// `rtc` 0.21 rejects such an offer ("multiple conflicting ice-ufrag values").
pub fn unify_bundle_credentials(sdp: &str) -> String {
    let lines: Vec<&str> = sdp.split("\r\n").collect();
    let mut credentials: Option<(&str, &str)> = None;
    let mut ufrag = None;
    let mut in_media = false;
    for line in &lines {
        if line.starts_with("m=") {
            if in_media {
                break;
            }
            in_media = true;
        }
        if in_media {
            if let Some(value) = line.strip_prefix("a=ice-ufrag:") {
                ufrag = Some(value);
            }
            if let (Some(ufrag), Some(password)) = (ufrag, line.strip_prefix("a=ice-pwd:")) {
                credentials = Some((ufrag, password));
            }
        }
    }
    let bundled = lines.iter().any(|line| line.starts_with("a=group:BUNDLE"));
    let Some((ufrag, password)) = credentials.filter(|_| bundled) else {
        return sdp.to_owned();
    };

    let rewritten: Vec<String> = lines
        .iter()
        .map(|line| {
            if line.starts_with("a=ice-ufrag:") {
                format!("a=ice-ufrag:{ufrag}")
            } else if line.starts_with("a=ice-pwd:") {
                format!("a=ice-pwd:{password}")
            } else {
                (*line).to_owned()
            }
        })
        .collect();
    rewritten.join("\r\n")
}

fn format_position(media: &Media, payload_type: u8) -> usize {
    let payload_type = payload_type.to_string();
    media
        .media_name
        .formats
        .iter()
        .position(|format| *format == payload_type)
        .unwrap_or(usize::MAX)
}

fn direction(media: &Media) -> Direction {
    if media.media_name.port.value == 0 {
        return Direction::Inactive;
    }
    if media.has_attribute("sendonly") {
        Direction::SendOnly
    } else if media.has_attribute("recvonly") {
        Direction::RecvOnly
    } else if media.has_attribute("inactive") {
        Direction::Inactive
    } else {
        Direction::SendRecv
    }
}

/// Reads `a=simulcast:send q;h;f` (RFC 8853), keeping only rids that an `a=rid:<id> send`
/// line declares. Alternatives (`q,h`) count as their first choice, and paused rids
/// (`~q`) are kept since they may resume.
fn send_rids(media: &Media) -> Vec<Rid> {
    let declared: Vec<&str> = media
        .attributes
        .iter()
        .filter(|attribute| attribute.key == "rid")
        .filter_map(|attribute| attribute.value.as_deref())
        .filter_map(|value| {
            let mut parts = value.split_whitespace();
            let id = parts.next()?;
            (parts.next() == Some("send")).then_some(id)
        })
        .collect();

    let Some(Some(simulcast)) = media.attribute("simulcast") else {
        return Vec::new();
    };
    let mut parts = simulcast.split_whitespace();
    let mut rids = Vec::new();
    while let (Some(direction), Some(list)) = (parts.next(), parts.next()) {
        if direction != "send" {
            continue;
        }
        for stream in list.split(';') {
            let first = stream.split(',').next().unwrap_or_default();
            let id = first.trim_start_matches('~');
            if declared.contains(&id) {
                rids.push(Rid::from(id));
            }
        }
    }
    rids
}

fn extensions(media: &Media) -> Vec<(u8, String)> {
    media
        .attributes
        .iter()
        .filter(|attribute| attribute.key == "extmap")
        .filter_map(|attribute| {
            let mut parts = attribute.value.as_deref()?.split_whitespace();
            // The id may carry a direction, as in `a=extmap:3/sendrecv <uri>`.
            let id = parts.next()?.split('/').next()?.parse().ok()?;
            Some((id, parts.next()?.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_rejected_without_panic() {
        for input in ["", "v=0", "not sdp at all\r\n", "v=0\r\nm=video\r\n"] {
            assert!(summarize(input).is_err() || summarize(input).unwrap().is_empty());
        }
    }
}
