//! Video codecs the engine forwards, and keyframe detection from RTP payloads.
//!
//! Only the first bytes of a payload are inspected. A payload too short for its codec's
//! descriptor is reported as not a keyframe, never as an error.

/// Video codec of a published track, from the negotiated payload type's MIME type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// VP8 (RFC 7741).
    Vp8,
    /// VP9 (RFC 9628).
    Vp9,
    /// H.264 (RFC 6184).
    H264,
    /// AV1 (AOMedia RTP payload format).
    Av1,
}

impl VideoCodec {
    /// Returns the codec for a MIME type such as `video/VP8`, ignoring case.
    pub fn from_mime(mime: &str) -> Option<Self> {
        let name = mime.rsplit('/').next()?.to_ascii_uppercase();
        match name.as_str() {
            "VP8" => Some(Self::Vp8),
            "VP9" => Some(Self::Vp9),
            "H264" => Some(Self::H264),
            "AV1" => Some(Self::Av1),
            _ => None,
        }
    }

    /// Returns true when `payload` starts a keyframe.
    pub fn is_keyframe(self, payload: &[u8]) -> bool {
        match self {
            Self::Vp8 => vp8_is_keyframe(payload),
            Self::Vp9 => vp9_is_keyframe(payload),
            Self::H264 => h264_is_keyframe(payload),
            Self::Av1 => av1_is_keyframe(payload),
        }
    }
}

fn vp8_is_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_index = first & 0x07;
    if !start_of_partition || partition_index != 0 {
        return false;
    }

    let mut offset = 1;
    if extended {
        let Some(&flags) = payload.get(1) else {
            return false;
        };
        offset = 2;
        if flags & 0x80 != 0 {
            // PictureID is 15 bits when its first bit (M) is set, otherwise 7 bits.
            let long = payload.get(offset).is_some_and(|byte| byte & 0x80 != 0);
            offset += if long { 2 } else { 1 };
        }
        if flags & 0x40 != 0 {
            offset += 1;
        }
        if flags & 0x30 != 0 {
            offset += 1;
        }
    }

    // The inverse key frame flag (P) is the lowest bit of the VP8 frame header.
    payload.get(offset).is_some_and(|header| header & 0x01 == 0)
}

fn vp9_is_keyframe(payload: &[u8]) -> bool {
    // Inter-picture predicted (P) is clear and this is the beginning (B) of a frame.
    payload
        .first()
        .is_some_and(|&descriptor| descriptor & 0x40 == 0 && descriptor & 0x08 != 0)
}

fn av1_is_keyframe(payload: &[u8]) -> bool {
    // The N bit of the aggregation header marks the first packet of a coded video sequence.
    payload.first().is_some_and(|&header| header & 0x08 != 0)
}

const H264_IDR: u8 = 5;
const H264_SPS: u8 = 7;
const H264_STAP_A: u8 = 24;
const H264_FU_A: u8 = 28;

fn h264_is_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        H264_STAP_A => stap_a_has_keyframe(&payload[1..]),
        H264_FU_A => payload.get(1).is_some_and(|&header| {
            let start = header & 0x80 != 0;
            start && is_h264_keyframe_unit(header & 0x1f)
        }),
        unit => is_h264_keyframe_unit(unit),
    }
}

fn is_h264_keyframe_unit(unit_type: u8) -> bool {
    unit_type == H264_IDR || unit_type == H264_SPS
}

fn stap_a_has_keyframe(mut units: &[u8]) -> bool {
    while units.len() > 2 {
        let size = usize::from(u16::from_be_bytes([units[0], units[1]]));
        let Some(unit) = units.get(2..2 + size) else {
            return false;
        };
        if unit
            .first()
            .is_some_and(|&b| is_h264_keyframe_unit(b & 0x1f))
        {
            return true;
        }
        units = &units[2 + size..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_with_picture_id() {
        // X=1 S=1, I=1, 15-bit picture id, then a frame header with P=0.
        let key = [0x90, 0x80, 0x81, 0x23, 0x10];
        let delta = [0x90, 0x80, 0x81, 0x23, 0x11];
        assert!(VideoCodec::Vp8.is_keyframe(&key));
        assert!(!VideoCodec::Vp8.is_keyframe(&delta));
    }

    #[test]
    fn vp8_continuation_is_not_keyframe() {
        assert!(!VideoCodec::Vp8.is_keyframe(&[0x80, 0x80, 0x01, 0x10]));
        assert!(!VideoCodec::Vp8.is_keyframe(&[0x90]));
        assert!(!VideoCodec::Vp8.is_keyframe(&[]));
    }

    #[test]
    fn h264_stap_a_with_sps() {
        let stap = [0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce];
        assert!(VideoCodec::H264.is_keyframe(&stap));
        assert!(!VideoCodec::H264.is_keyframe(&[0x18, 0x00, 0x09, 0x67]));
    }

    #[test]
    fn h264_fragmented_idr_start() {
        assert!(VideoCodec::H264.is_keyframe(&[0x7c, 0x85, 0x00]));
        assert!(!VideoCodec::H264.is_keyframe(&[0x7c, 0x05, 0x00]));
        assert!(!VideoCodec::H264.is_keyframe(&[0x41, 0x9a]));
    }

    #[test]
    fn mime_names_are_case_insensitive() {
        assert_eq!(VideoCodec::from_mime("video/vp8"), Some(VideoCodec::Vp8));
        assert_eq!(VideoCodec::from_mime("video/H264"), Some(VideoCodec::H264));
        assert_eq!(VideoCodec::from_mime("audio/opus"), None);
    }
}
