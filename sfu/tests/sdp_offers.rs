//! Every captured browser and library offer is accepted with the right tracks, simulcast
//! layers and header extension ids.

use std::net::SocketAddr;
use std::time::Instant;

use sfu::engine::shard::Shard;
use sfu::sdp::{self, AUDIO_LEVEL_URI, Direction};
use sfu::{MediaKind, ParticipantId, RoomId, RoomOptions, SfuEvent, TrackInfo};

const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/sdp/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("reading {path}: {err}"))
}

/// Joins a room with the offer and returns the answer and the published tracks.
fn join(offer: &str) -> (String, Vec<TrackInfo>) {
    let addr: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut shard = Shard::new(addr, addr);
    let room = RoomId::from("room");
    shard
        .create_room(room.clone(), RoomOptions::default())
        .unwrap();
    let answer = shard
        .join(
            Instant::now(),
            &room,
            ParticipantId::from("alice"),
            offer.to_owned(),
            false,
        )
        .expect("offer accepted");
    let mut tracks = Vec::new();
    while let Some(event) = shard.poll_event() {
        if let SfuEvent::TrackPublished { track, .. } = event {
            tracks.push(track);
        }
    }
    tracks.sort_by(|a, b| a.id.mid.cmp(&b.id.mid));
    (answer, tracks)
}

fn rids(track: &TrackInfo) -> Vec<&str> {
    track.rids.iter().map(|rid| rid.0.as_str()).collect()
}

fn answer_section<'a>(answer: &'a str, mid: &str) -> &'a str {
    let start = answer
        .find(&format!("a=mid:{mid}\r\n"))
        .unwrap_or_else(|| panic!("mid {mid} missing from answer:\n{answer}"));
    let section_start = answer[..start].rfind("m=").unwrap();
    let end = answer[start..]
        .find("m=")
        .map_or(answer.len(), |end| start + end);
    &answer[section_start..end]
}

#[test]
fn chromium_simulcast_offer() {
    let offer = fixture("chromium-simulcast-offer.sdp");
    let (answer, tracks) = join(&offer);
    assert_eq!(tracks.len(), 2);
    assert_eq!(tracks[0].kind, MediaKind::Audio);
    assert_eq!(tracks[1].kind, MediaKind::Video);
    assert_eq!(rids(&tracks[1]), ["q", "h", "f"]);

    let sections = sdp::summarize(&offer).unwrap();
    assert_eq!(sections[0].extension_id(AUDIO_LEVEL_URI), Some(1));
    assert_eq!(sections[1].extension_id(RID_URI), Some(10));

    let video = answer_section(&answer, "1");
    assert!(video.contains("a=simulcast:recv q;h;f"), "{video}");
    assert!(video.contains(&format!("a=extmap:10 {RID_URI}")), "{video}");
    assert!(video.contains("a=rtpmap:96 VP8/90000"), "{video}");
    let audio = answer_section(&answer, "0");
    assert!(
        audio.contains(&format!("a=extmap:1 {AUDIO_LEVEL_URI}")),
        "{audio}"
    );
}

#[test]
fn chromium_simulcast_sendonly_offer() {
    let offer = fixture("chromium-simulcast-sendonly-offer.sdp");
    let (answer, tracks) = join(&offer);
    assert_eq!(tracks.len(), 2);
    assert_eq!(rids(&tracks[1]), ["q", "h", "f"]);
    assert!(answer_section(&answer, "1").contains("a=recvonly"));
    let sections = sdp::summarize(&offer).unwrap();
    assert!(sections.iter().all(|s| s.direction == Direction::SendOnly));
}

#[test]
fn firefox_simulcast_offer() {
    let offer = fixture("firefox-simulcast-offer.sdp");
    let (answer, tracks) = join(&offer);
    assert_eq!(tracks.len(), 2);
    assert_eq!(tracks[1].kind, MediaKind::Video);
    let sections = sdp::summarize(&offer).unwrap();
    let video = &sections[1];
    assert_eq!(
        rids(&tracks[1]),
        video
            .send_rids
            .iter()
            .map(|r| r.0.as_str())
            .collect::<Vec<_>>()
    );
    assert_eq!(tracks[1].rids.len(), 3);
    // Firefox writes extmap ids with a direction suffix only where it differs; the id is
    // read either way.
    assert!(video.extension_id(RID_URI).is_some());
    assert!(sections[0].extension_id(AUDIO_LEVEL_URI).is_some());
    assert!(answer_section(&answer, &video.mid).contains("a=simulcast:recv"));
}

#[test]
fn chromium_h264_only_offer() {
    let offer = fixture("chromium-h264-only-offer.sdp");
    let (answer, tracks) = join(&offer);
    assert_eq!(tracks.len(), 2);
    let video_mid = &tracks[1].id.mid;
    let video = answer_section(&answer, video_mid);
    assert!(video.contains("H264/90000"), "{video}");
    assert!(!video.contains("VP8/90000"), "{video}");
}

#[test]
fn chromium_plain_offer() {
    let offer = fixture("chromium-plain-offer.sdp");
    let (_, tracks) = join(&offer);
    assert_eq!(tracks.len(), 2);
    assert!(tracks.iter().all(|track| track.rids.is_empty()));
}

#[test]
fn firefox_gathered_offer() {
    let offer = fixture("firefox-plain-offer-gathered.sdp");
    let (_, tracks) = join(&offer);
    assert_eq!(tracks.len(), 2);
    assert_eq!(tracks[0].kind, MediaKind::Audio);
    assert_eq!(tracks[1].kind, MediaKind::Video);
}

#[test]
fn aiortc_offer_with_per_section_ufrags() {
    let offer = fixture("aiortc-offer.sdp");
    let (_, tracks) = join(&offer);
    assert_eq!(tracks.len(), 2);
    let sections = sdp::summarize(&offer).unwrap();
    assert!(sections.iter().all(|section| section.ice_ufrag.is_some()));
}

#[test]
fn malformed_offer_is_rejected() {
    let addr: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut shard = Shard::new(addr, addr);
    let room = RoomId::from("room");
    shard
        .create_room(room.clone(), RoomOptions::default())
        .unwrap();
    let offer = fixture("chromium-plain-offer.sdp");
    for cut in [0, 10, offer.len() / 3, offer.len() / 2] {
        let truncated = offer[..cut].to_owned();
        let result = shard.join(
            Instant::now(),
            &room,
            ParticipantId::from(format!("p{cut}")),
            truncated,
            false,
        );
        assert!(result.is_err(), "truncated offer at {cut} accepted");
    }
    assert_eq!(shard.stats().participants, 0);
}
