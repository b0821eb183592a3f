//! Live meetings end to end on SQLite: real WebRTC peers on loopback, signaling through
//! the hub WebSocket, host controls over HTTP, and checks that the controls act on the
//! media itself. Host decisions that must outlast a restart are checked on PostgreSQL
//! too. Waits are generous and never assert how long something took.

#[path = "meeting_media/audio.rs"]
mod audio;
mod common;
#[path = "meeting_media/coturn.rs"]
mod coturn;
#[path = "meeting_media/peer.rs"]
mod peer;
#[path = "meeting_media/signal.rs"]
mod signal;

use std::sync::Arc;
use std::time::{Duration, Instant};

use audio::{decode_all, opus_packets, tone_power};
use common::{Backend, MEMBER_PASSWORD, PATIENCE, TestServer};
use peer::{Counts, Peer, spawn_tone};
use reqwest::StatusCode;
use rtc::peer_connection::configuration::{
    RTCConfigurationBuilder, RTCIceServer, RTCIceTransportPolicy,
};
use serde_json::{Value, json};
use signal::{Signal, assert_stays, connect_media, let_video_pass, wait_for_media, wait_until};

/// A person with an HTTP session and a bearer token for the WebSocket.
struct Person {
    api: common::Client,
    token: String,
    account_id: i64,
    member_id: i64,
}

impl signal::Credentials for Person {
    fn auth_header(&self) -> (&'static str, String) {
        ("authorization", format!("Bearer {}", self.token))
    }
}

/// A server with one branch, a scheduled online meeting and the people around it.
struct Fixture {
    server: TestServer,
    meeting_id: i64,
    host: Person,
    recorder: Person,
    members: Vec<Person>,
    outsider: Person,
}

async fn person(server: &TestServer, org_id: i64, name: &str) -> Person {
    let admin = server.sysadmin().await;
    let member_id = admin.create_member(org_id, name).await;
    let username = common::unique_name("u");
    admin.create_account(&username, Some(member_id)).await;
    let api = server.login(&username, MEMBER_PASSWORD).await;
    let account_id = api.account_id();
    let token = api
        .bearer_client("meeting")
        .await
        .bearer
        .expect("bearer token");
    Person {
        api,
        token,
        account_id,
        member_id,
    }
}

async fn fixture() -> Fixture {
    fixture_on(Backend::Sqlite).await
}

async fn fixture_on(backend: Backend) -> Fixture {
    fixture_with(TestServer::start(backend).await).await
}

async fn fixture_with(server: TestServer) -> Fixture {
    let admin = server.sysadmin().await;
    let root = admin.create_org(None, "省委", "committee").await;
    let branch = admin.create_org(Some(root), "第一支部", "branch").await;
    let elsewhere = admin.create_org(Some(root), "第二支部", "branch").await;

    let host = person(&server, branch, "主持人").await;
    let recorder = person(&server, branch, "记录人").await;
    let mut members = Vec::new();
    for name in ["党员甲", "党员乙"] {
        members.push(person(&server, branch, name).await);
    }
    let outsider = person(&server, elsewhere, "外单位").await;
    server
        .secadmin()
        .await
        .assign_role(branch, host.member_id, "secretary")
        .await;

    let meeting_id = schedule(branch, &host, &recorder).await;
    Fixture {
        server,
        meeting_id,
        host,
        recorder,
        members,
        outsider,
    }
}

/// Schedules an online meeting of the branch, as its secretary, that starts in a minute.
async fn schedule(org_id: i64, host: &Person, recorder: &Person) -> i64 {
    let now = chrono::Utc::now().timestamp_millis();
    let view = host
        .api
        .post(
            "/api/meetings",
            json!({
                "org_id": org_id,
                "kind": "other",
                "title": "线上会议",
                "starts_at": now + 60_000,
                "ends_at": now + 2 * 3600 * 1000,
                "online": true,
                "host_member": host.member_id,
                "recorder_member": recorder.member_id,
            }),
        )
        .await
        .expect(StatusCode::CREATED);
    view["meeting"]["id"].as_i64().expect("meeting id")
}

/// Reads from the meeting's record whether a member is present now.
async fn present(viewer: &Person, meeting_id: i64, member_id: i64) -> bool {
    let view = viewer
        .api
        .get(&format!("/api/meetings/{meeting_id}"))
        .await
        .expect(StatusCode::OK);
    view["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["member_id"] == member_id)
        .is_some_and(|p| p["present"] == true)
}

async fn live(person: &Person, meeting_id: i64, action: &str, body: Value) -> common::Reply {
    person
        .api
        .post(&format!("/api/meetings/{meeting_id}/live/{action}"), body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_participants_mute_and_end() {
    let fx = fixture().await;
    let id = fx.meeting_id;
    let (a, b) = (&fx.members[0], &fx.members[1]);
    let host_signal = Signal::connect(&fx.server, &fx.host).await;
    let a_signal = Signal::connect(&fx.server, a).await;
    let b_signal = Signal::connect(&fx.server, b).await;
    let host_peer = host_signal.enter(id, "j-host").await;
    let a_peer = a_signal.enter(id, "j-a").await;
    let b_peer = b_signal.enter(id, "j-b").await;

    let everyone = [
        (&host_peer, fx.host.account_id),
        (&a_peer, a.account_id),
        (&b_peer, b.account_id),
    ];
    for (receiver, own) in everyone {
        for (_, sender) in everyone {
            if sender != own {
                wait_for_media(receiver, sender, 20, 20).await;
            }
        }
        assert_eq!(receiver.from(own), Counts::default(), "own media came back");
    }

    let record = fx
        .host
        .api
        .get(&format!("/api/meetings/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        record["meeting"]["status"], "live",
        "the host's join starts the meeting"
    );
    for person in [&fx.host, a, b] {
        assert!(
            present(&fx.host, id, person.member_id).await,
            "member {} absent",
            person.member_id
        );
    }

    let metrics = fx
        .server
        .anonymous()
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line == "dangwu_media_participants 3"),
        "{metrics}"
    );

    let snapshot = a
        .api
        .get(&format!("/api/meetings/{id}/live"))
        .await
        .expect(StatusCode::OK);
    let participants = snapshot["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 3, "{snapshot}");
    assert!(snapshot["lobby"].as_array().unwrap().is_empty());
    for participant in participants {
        assert_eq!(
            participant["tracks"].as_array().unwrap().len(),
            2,
            "{participant}"
        );
        assert_eq!(participant["connected"], true, "{participant}");
    }

    for (action, body) in [
        ("mute", json!({"account_id": b.account_id, "muted": true})),
        ("remove", json!({"account_id": b.account_id})),
        ("lock", json!({})),
        ("end", json!({})),
    ] {
        live(a, id, action, body)
            .await
            .expect_error(StatusCode::FORBIDDEN, "forbidden");
    }

    live(
        &fx.host,
        id,
        "mute",
        json!({"account_id": a.account_id, "muted": true}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    b_signal
        .wait("a's entry muted by the host", |m| {
            m["type"] == "meeting_participant"
                && m["participant"]["account_id"] == a.account_id
                && m["participant"]["muted_by_host"] == true
        })
        .await;
    // The muted page claiming its microphone is on changes nothing on the media path.
    a_signal
        .send(
            json!({"type": "meeting_media", "id": "m1", "meeting_id": id,
            "microphone": true, "camera": true, "screen": false,
            "sources": {"0": "camera", "1": "microphone"}}),
        )
        .await;
    assert_eq!(a_signal.reply("m1").await["type"], "meeting_ok");
    // Each receiver times its check by the video of the third person.
    for (receiver, clock) in [(&host_peer, b.account_id), (&b_peer, fx.host.account_id)] {
        assert_stays(
            receiver,
            clock,
            a.account_id,
            |before, after| after.audio == before.audio,
            "audio of the muted participant arrived",
        )
        .await;
        assert_stays(
            receiver,
            clock,
            a.account_id,
            |before, after| after.video > before.video,
            "video of the muted participant stopped",
        )
        .await;
    }

    live(
        &fx.host,
        id,
        "mute",
        json!({"account_id": a.account_id, "muted": false}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let resumed = b_peer.from(a.account_id).audio;
    wait_for_media(&b_peer, a.account_id, 0, resumed + 20).await;

    live(&fx.host, id, "end", json!({}))
        .await
        .expect(StatusCode::NO_CONTENT);
    for signal in [&host_signal, &a_signal, &b_signal] {
        signal
            .wait("meeting_left ended", |m| {
                m["type"] == "meeting_left" && m["reason"] == "ended"
            })
            .await;
    }
    let state = fx.server.state.clone();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = state.live.media_stats().await.unwrap();
        if stats.participants == 0 && stats.rooms == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "engine still holds {stats:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, refused) = a_signal.join(id, "j-after-end").await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "meeting_ended", "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsider_admitted_then_removed() {
    let fx = fixture().await;
    let id = fx.meeting_id;
    let member = &fx.members[0];
    let outsider = &fx.outsider;
    let host_signal = Signal::connect(&fx.server, &fx.host).await;
    let member_signal = Signal::connect(&fx.server, member).await;
    let outsider_signal = Signal::connect(&fx.server, outsider).await;
    let host_peer = host_signal.enter(id, "j-host").await;
    let member_peer = member_signal.enter(id, "j-member").await;
    wait_for_media(&host_peer, member.account_id, 20, 20).await;

    let (outsider_peer, waiting) = outsider_signal.join(id, "j-out").await;
    assert_eq!(waiting["type"], "meeting_waiting", "{waiting}");
    host_signal
        .wait("the outsider in the host's lobby", |m| {
            m["type"] == "meeting_lobby"
                && m["waiting"]
                    .as_array()
                    .is_some_and(|w| w.iter().any(|p| p["account_id"] == outsider.account_id))
        })
        .await;
    outsider
        .api
        .get(&format!("/api/meetings/{id}/live"))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    live(
        member,
        id,
        "admit",
        json!({"account_id": outsider.account_id}),
    )
    .await
    .expect_error(StatusCode::FORBIDDEN, "forbidden");
    let_video_pass(&host_peer, member.account_id, 30).await;
    assert!(
        !outsider_peer.is_connected(),
        "media connected from the lobby"
    );
    assert_eq!(outsider_peer.total(), Counts::default());

    live(
        &fx.host,
        id,
        "admit",
        json!({"account_id": outsider.account_id}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let joined = outsider_signal
        .wait("admission", |m| m["type"] == "meeting_joined")
        .await;
    assert_eq!(joined["id"], "j-out");
    connect_media(&outsider_peer, &joined).await;
    wait_for_media(&outsider_peer, fx.host.account_id, 20, 20).await;
    wait_for_media(&outsider_peer, member.account_id, 20, 20).await;
    wait_for_media(&host_peer, outsider.account_id, 20, 20).await;
    wait_for_media(&member_peer, outsider.account_id, 20, 20).await;

    live(
        &fx.host,
        id,
        "remove",
        json!({"account_id": outsider.account_id}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    outsider_signal
        .wait("meeting_left removed", |m| {
            m["type"] == "meeting_left" && m["reason"] == "removed"
        })
        .await;
    host_signal
        .wait("the outsider leaving", |m| {
            m["type"] == "meeting_participant_left" && m["account_id"] == outsider.account_id
        })
        .await;
    assert_stays(
        &host_peer,
        member.account_id,
        outsider.account_id,
        |before, after| before == after,
        "media of the removed outsider reached the host",
    )
    .await;
    assert_stays(
        &member_peer,
        fx.host.account_id,
        outsider.account_id,
        |before, after| before == after,
        "media of the removed outsider reached the member",
    )
    .await;

    let (_, rejoin) = outsider_signal.join(id, "j-out-again").await;
    assert_eq!(rejoin["type"], "meeting_waiting", "{rejoin}");
    live(
        &fx.host,
        id,
        "deny",
        json!({"account_id": outsider.account_id}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    outsider_signal
        .wait("meeting_left denied", |m| {
            m["type"] == "meeting_left" && m["reason"] == "denied"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_sends_newcomers_to_lobby() {
    let fx = fixture().await;
    let id = fx.meeting_id;
    let host_signal = Signal::connect(&fx.server, &fx.host).await;
    host_signal.enter(id, "j-host").await;

    live(&fx.host, id, "lock", json!({}))
        .await
        .expect(StatusCode::NO_CONTENT);
    host_signal
        .wait("meeting_locked", |m| {
            m["type"] == "meeting_locked" && m["locked"] == true
        })
        .await;

    let member_signal = Signal::connect(&fx.server, &fx.members[0]).await;
    let (_, waiting) = member_signal.join(id, "j-member").await;
    assert_eq!(waiting["type"], "meeting_waiting", "{waiting}");
    let recorder_signal = Signal::connect(&fx.server, &fx.recorder).await;
    let (_, recorder) = recorder_signal.join(id, "j-recorder").await;
    assert_eq!(recorder["type"], "meeting_joined", "{recorder}");

    live(&fx.host, id, "unlock", json!({}))
        .await
        .expect(StatusCode::NO_CONTENT);
    let other_signal = Signal::connect(&fx.server, &fx.members[1]).await;
    let (_, joined) = other_signal.join(id, "j-other").await;
    assert_eq!(joined["type"], "meeting_joined", "{joined}");

    // Stopping the server closes the attendance of everyone still in the media.
    let store = fx.server.stop().await;
    let mut conn = store.connect().await;
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM meeting_attendance WHERE meeting_id = $1 AND left_at IS NULL",
    )
    .bind(id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(open, 0, "attendance left open at shutdown");
    let attended: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM meeting_attendance WHERE meeting_id = $1")
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(attended, 3, "host, recorder and member attended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_resumes_after_reconnect() {
    let fx = fixture().await;
    let id = fx.meeting_id;
    let topic = format!("meeting:{id}");
    let host_signal = Signal::connect(&fx.server, &fx.host).await;
    host_signal.enter(id, "j-host").await;
    let member = &fx.members[0];
    let member_signal = Signal::connect(&fx.server, member).await;
    let (_, member_joined) = member_signal.join(id, "j-member").await;
    let since = member_joined["snapshot"]["seq"].as_i64().unwrap();
    member_signal
        .send(json!({"type": "subscribe", "id": "s1", "topic": topic, "since": since}))
        .await;
    assert_eq!(member_signal.reply("s1").await["type"], "subscribed");

    host_signal
        .send(json!({"type": "meeting_chat", "id": "c1", "meeting_id": id, "text": "第一条"}))
        .await;
    let sent = host_signal.reply("c1").await;
    assert_eq!(sent["type"], "meeting_ok", "{sent}");
    let first = member_signal
        .wait("the first chat message", |m| {
            m["type"] == "event" && m["kind"] == "chat.message"
        })
        .await;
    assert_eq!(first["data"]["text"], "第一条");
    assert_eq!(first["data"]["account_id"], fx.host.account_id);
    let last_seen = first["seq"].as_i64().unwrap();

    member_signal.close().await;
    host_signal
        .wait("the member leaving with the closed connection", |m| {
            m["type"] == "meeting_participant_left" && m["account_id"] == member.account_id
        })
        .await;
    host_signal
        .send(json!({"type": "meeting_chat", "id": "c2", "meeting_id": id,
            "text": "  第二条\u{0007}\u{202e}  "}))
        .await;
    assert_eq!(host_signal.reply("c2").await["type"], "meeting_ok");
    host_signal
        .send(json!({"type": "meeting_chat", "id": "c3", "meeting_id": id, "text": "第三条"}))
        .await;
    assert_eq!(host_signal.reply("c3").await["type"], "meeting_ok");
    let too_long = "长".repeat(2001);
    host_signal
        .send(json!({"type": "meeting_chat", "id": "c4", "meeting_id": id, "text": too_long}))
        .await;
    let rejected = host_signal.reply("c4").await;
    assert_eq!(rejected["type"], "error", "{rejected}");
    assert_eq!(rejected["code"], "invalid_field", "{rejected}");

    let again = Signal::connect(&fx.server, member).await;
    again
        .send(json!({"type": "subscribe", "id": "s2", "topic": topic, "since": last_seen}))
        .await;
    assert_eq!(again.reply("s2").await["type"], "subscribed");
    again
        .wait("the third chat message", |m| {
            m["type"] == "event" && m["data"]["text"] == "第三条"
        })
        .await;
    let texts: Vec<Value> = again
        .inbox
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "event" && m["kind"] == "chat.message")
        .map(|m| m["data"]["text"].clone())
        .collect();
    assert_eq!(texts, vec![json!("第二条"), json!("第三条")]);

    let outsider_signal = Signal::connect(&fx.server, &fx.outsider).await;
    outsider_signal
        .send(json!({"type": "meeting_chat", "id": "c5", "meeting_id": id, "text": "你好"}))
        .await;
    let refused = outsider_signal.reply("c5").await;
    assert_eq!(refused["code"], "not_in_meeting", "{refused}");
    assert!(!again.has(|m| m["data"]["text"] == "你好"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hands_speaker_and_second_tab() {
    let fx = fixture().await;
    let id = fx.meeting_id;
    let member = &fx.members[0];
    let host_signal = Signal::connect(&fx.server, &fx.host).await;
    let member_signal = Signal::connect(&fx.server, member).await;
    let host_peer = host_signal.enter(id, "j-host").await;
    let member_peer = member_signal.enter(id, "j-member").await;
    wait_for_media(&member_peer, fx.host.account_id, 20, 20).await;

    host_peer.set_audio_level(10);
    member_signal
        .wait("the host as active speaker", |m| {
            m["type"] == "meeting_speaker" && m["account_id"] == fx.host.account_id
        })
        .await;

    member_signal
        .send(json!({"type": "meeting_hand", "id": "h1", "meeting_id": id, "raised": true}))
        .await;
    assert_eq!(member_signal.reply("h1").await["type"], "meeting_ok");
    host_signal
        .wait("the member's raised hand", |m| {
            m["type"] == "meeting_participant"
                && m["participant"]["account_id"] == member.account_id
                && m["participant"]["hand_raised_at"].is_i64()
        })
        .await;
    let snapshot = fx
        .host
        .api
        .get(&format!("/api/meetings/{id}/live"))
        .await
        .expect(StatusCode::OK);
    let entry = snapshot["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["account_id"] == member.account_id)
        .cloned()
        .expect("the member in the snapshot");
    assert!(entry["hand_raised_at"].is_i64(), "{entry}");
    let host_entry = snapshot["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["account_id"] == fx.host.account_id)
        .cloned()
        .expect("the host in the snapshot");
    assert_eq!(host_entry["speaking"], true, "{host_entry}");

    live(&fx.host, id, "hands/lower", json!({}))
        .await
        .expect(StatusCode::NO_CONTENT);
    member_signal
        .wait("the lowered hand", |m| {
            m["type"] == "meeting_participant"
                && m["participant"]["account_id"] == member.account_id
                && m["participant"]["hand_raised_at"].is_null()
        })
        .await;

    // The same person from a second connection replaces the first participant, and a
    // host's mute holds for the new one.
    live(
        &fx.host,
        id,
        "mute",
        json!({"account_id": member.account_id, "muted": true}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let second_tab = Signal::connect(&fx.server, member).await;
    let second_peer = second_tab.enter(id, "j-second").await;
    member_signal
        .wait("meeting_left replaced", |m| {
            m["type"] == "meeting_left" && m["reason"] == "replaced"
        })
        .await;
    wait_for_media(&second_peer, fx.host.account_id, 20, 20).await;
    let_video_pass(&host_peer, member.account_id, 30).await;
    assert_stays(
        &host_peer,
        member.account_id,
        member.account_id,
        |before, after| after.audio == before.audio,
        "audio of the muted person arrived from the second tab",
    )
    .await;
    let snapshot = fx
        .host
        .api
        .get(&format!("/api/meetings/{id}/live"))
        .await
        .expect(StatusCode::OK);
    let members: Vec<&Value> = snapshot["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["account_id"] == member.account_id)
        .collect();
    assert_eq!(members.len(), 1, "{snapshot}");
    assert_eq!(members[0]["muted_by_host"], true, "{snapshot}");
    assert_eq!(
        members[0]["participant"],
        second_tab.reply("j-second").await["participant"]
    );
    let stats = fx.server.state.live.media_stats().await.unwrap();
    assert_eq!(stats.participants, 2, "{stats:?}");
    assert!(
        present(&fx.host, id, member.member_id).await,
        "the replacement ended the attendance"
    );

    second_tab
        .send(json!({"type": "meeting_leave", "id": "l1", "meeting_id": id}))
        .await;
    let left = second_tab.reply("l1").await;
    assert_eq!(left["type"], "meeting_left", "{left}");
    assert_eq!(left["reason"], "left", "{left}");
    host_signal
        .wait("the member leaving", |m| {
            m["type"] == "meeting_participant_left" && m["participant"] == members[0]["participant"]
        })
        .await;
    assert!(
        !present(&fx.host, id, member.member_id).await,
        "the attendance stayed open after leaving"
    );
}

/// Waits until `signal` sees the participant entry of `account` with `tracks` tracks and
/// returns it.
async fn wait_for_tracks(signal: &Signal, account: i64, tracks: usize) -> Value {
    let message = signal
        .wait(&format!("{tracks} tracks of account {account}"), |m| {
            m["type"] == "meeting_participant"
                && m["participant"]["account_id"] == account
                && m["participant"]["tracks"]
                    .as_array()
                    .is_some_and(|t| t.len() == tracks)
        })
        .await;
    message["participant"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_offer_screen_and_disconnect() {
    let fx = fixture().await;
    let id = fx.meeting_id;
    let member = &fx.members[0];
    let host_signal = Signal::connect(&fx.server, &fx.host).await;
    let member_signal = Signal::connect(&fx.server, member).await;
    host_signal.enter(id, "j-host").await;
    let member_peer = member_signal.enter(id, "j-member").await;
    wait_for_tracks(&host_signal, member.account_id, 2).await;
    // Media from the host means the server's offer to the member was answered, so the
    // member's own offer cannot cross it.
    wait_for_media(&member_peer, fx.host.account_id, 5, 5).await;

    // The server's offers name each sent track's publisher and media id in `a=msid`.
    let member_participant = member_signal.reply("j-member").await["participant"]
        .as_str()
        .unwrap()
        .to_owned();
    let msid = format!("a=msid:{member_participant} {member_participant}-");
    host_signal
        .wait("an offer with the member's tracks", |m| {
            m["type"] == "meeting_offer" && m["sdp"].as_str().is_some_and(|sdp| sdp.contains(&msid))
        })
        .await;

    let screen = member_peer.add_screen().await;
    let sdp = member_peer.offer().await;
    member_signal
        .send(json!({"type": "meeting_offer", "id": "o1", "meeting_id": id, "sdp": sdp}))
        .await;
    let answer = member_signal.reply("o1").await;
    assert_eq!(answer["type"], "meeting_answer", "{answer}");
    member_peer
        .apply_answer(answer["sdp"].as_str().unwrap())
        .await;
    let entry = wait_for_tracks(&host_signal, member.account_id, 3).await;
    let screen_mid = entry["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["mid"].as_str().unwrap().to_owned())
        .find(|mid| mid != "0" && mid != "1")
        .expect("a third track");

    member_signal
        .send(
            json!({"type": "meeting_media", "id": "m1", "meeting_id": id,
            "microphone": true, "camera": true, "screen": true,
            "sources": {"0": "camera", "1": "microphone", screen_mid.clone(): "screen"}}),
        )
        .await;
    assert_eq!(member_signal.reply("m1").await["type"], "meeting_ok");
    host_signal
        .wait("the screen share in the participant list", |m| {
            m["type"] == "meeting_participant"
                && m["participant"]["account_id"] == member.account_id
                && m["participant"]["screen"] == true
                && m["participant"]["tracks"].as_array().is_some_and(|t| {
                    t.iter()
                        .any(|t| t["mid"] == screen_mid && t["source"] == "screen")
                })
        })
        .await;

    member_peer.remove(&screen).await;
    let sdp = member_peer.offer().await;
    member_signal
        .send(json!({"type": "meeting_offer", "id": "o2", "meeting_id": id, "sdp": sdp}))
        .await;
    let answer = member_signal.reply("o2").await;
    assert_eq!(answer["type"], "meeting_answer", "{answer}");
    member_peer
        .apply_answer(answer["sdp"].as_str().unwrap())
        .await;
    wait_for_tracks(&host_signal, member.account_id, 2).await;

    // A media connection that closes while the WebSocket stays takes the person out,
    // at the latest when the engine notices the silence (IDLE_TIMEOUT, 15 s).
    member_peer.close().await;
    member_signal
        .wait_within(4 * PATIENCE, "meeting_left disconnected", |m| {
            m["type"] == "meeting_left" && m["reason"] == "disconnected"
        })
        .await;
    host_signal
        .wait("the member leaving", |m| {
            m["type"] == "meeting_participant_left" && m["account_id"] == member.account_id
        })
        .await;
    let deadline = Instant::now() + PATIENCE;
    while present(&fx.host, id, member.member_id).await {
        assert!(
            Instant::now() < deadline,
            "attendance stayed open after the media closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (_, unknown) = member_signal.join(id + 1000, "j-unknown").await;
    assert_eq!(unknown["code"], "not_found", "{unknown}");
    member_signal
        .send(json!({"type": "meeting_offer", "id": "o3", "meeting_id": id + 1000, "sdp": "v=0"}))
        .await;
    assert_eq!(member_signal.reply("o3").await["code"], "not_in_meeting");
}

async fn recording(person: &Person, meeting_id: i64, action: &str) -> common::Reply {
    person
        .api
        .post(
            &format!("/api/meetings/{meeting_id}/recording/{action}"),
            json!({}),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_mixes_speakers() {
    let fx = fixture().await;
    let id = fx.meeting_id;
    let a = &fx.members[0];
    recording(&fx.host, id, "start")
        .await
        .expect_error(StatusCode::CONFLICT, "meeting_not_live");

    let host_signal = Signal::connect(&fx.server, &fx.host).await;
    let a_signal = Signal::connect(&fx.server, a).await;
    let host_peer = host_signal.enter(id, "j-host").await;
    let _a_peer = a_signal.enter(id, "j-a").await;
    wait_for_media(&host_peer, a.account_id, 10, 10).await;

    recording(a, id, "start")
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    // Three starts at once: exactly one recording begins.
    let (first, second, third) = tokio::join!(
        recording(&fx.host, id, "start"),
        recording(&fx.host, id, "start"),
        recording(&fx.host, id, "start")
    );
    let mut replies = vec![first, second, third];
    replies.sort_by_key(|reply| reply.status.as_u16());
    let mut replies = replies.into_iter();
    let started = replies.next().unwrap().expect(StatusCode::CREATED);
    assert_eq!(started["recording"], true, "{started}");
    for refused in replies {
        refused.expect_error(StatusCode::CONFLICT, "recording_running");
    }

    // The file grows by one Ogg page a second; wait for a few seconds of audio.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let listed = a
            .api
            .get(&format!("/api/meetings/{id}/recordings"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(
            listed.as_array().unwrap().len(),
            1,
            "one recording: {listed}"
        );
        if listed[0]["size"].as_i64().unwrap() >= 12_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the recording does not grow: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    recording(a, id, "stop")
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    let stopped = recording(&fx.host, id, "stop").await.expect(StatusCode::OK);
    assert_eq!(stopped["recording"], false, "{stopped}");
    assert!(stopped["ended_at"].is_i64(), "{stopped}");
    assert!(
        stopped["duration_ms"].as_i64().unwrap() >= 2000,
        "{stopped}"
    );
    recording(&fx.host, id, "stop")
        .await
        .expect_error(StatusCode::CONFLICT, "not_recording");

    let recording_id = stopped["id"].as_i64().unwrap();
    let response = a
        .api
        .request(
            reqwest::Method::GET,
            &format!("/api/meetings/{id}/recordings/{recording_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "audio/ogg");
    let file = response.bytes().await.unwrap();
    assert_eq!(file.len() as i64, stopped["size"].as_i64().unwrap());
    let packets = opus_packets(&file);
    assert!(packets.len() >= 100, "{} packets", packets.len());
    let pcm = decode_all(&packets);
    // Both peers send a 440 Hz tone; the mix carries it, and far more of it than of a
    // frequency nobody sends.
    let tone = tone_power(&pcm, peer::TONE_HZ);
    let elsewhere = tone_power(&pcm, 3000.0);
    assert!(tone > 1e5, "tone power {tone}");
    assert!(tone > 100.0 * elsewhere, "tone {tone} against {elsewhere}");
}

/// Frequencies of the two speakers in the mixed audio test, far apart and neither a
/// harmonic of the other.
const OWN_HZ: f32 = 440.0;
const OTHER_HZ: f32 = 1_130.0;

/// Joins with a peer that sends only a tone at `hz`, and returns the peer.
async fn enter_with_tone(signal: &Signal, meeting_id: i64, id: &str, hz: f32) -> Arc<Peer> {
    let (peer, reply) = signal.join(meeting_id, id).await;
    assert_eq!(reply["type"], "meeting_joined", "{reply}");
    peer.apply_answer(reply["sdp"].as_str().unwrap()).await;
    let connected = Arc::clone(&peer);
    wait_until("the media to connect", move || connected.is_connected()).await;
    spawn_tone(Arc::clone(&peer), hz);
    peer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_audio_leaves_out_own_voice() {
    let fx = fixture().await;
    let id = fx.meeting_id;
    let a = &fx.members[0];
    let b = &fx.members[1];
    let a_signal = Signal::connect(&fx.server, a).await;
    let b_signal = Signal::connect(&fx.server, b).await;
    let a_peer = enter_with_tone(&a_signal, id, "j-a", OWN_HZ).await;
    let _b_peer = enter_with_tone(&b_signal, id, "j-b", OTHER_HZ).await;
    wait_for_media(&a_peer, b.account_id, 0, 20).await;

    a_signal
        .send(json!({"type": "meeting_mix", "id": "mix-on", "meeting_id": id, "mixed": true}))
        .await;
    let reply = a_signal.reply("mix-on").await;
    assert_eq!(reply["type"], "meeting_ok", "{reply}");
    let mixing = Arc::clone(&a_peer);
    wait_until("150 mixed audio packets", move || {
        mixing.mixed.lock().unwrap().len() >= 150
    })
    .await;

    // B's own stream to A is paused: while 100 more mixed packets arrive, at most the
    // packets already on their way when the switch happened come from it.
    let direct_before = a_peer.from(b.account_id).audio;
    let mixed_before = a_peer.mixed.lock().unwrap().len();
    let mixing = Arc::clone(&a_peer);
    wait_until("100 more mixed audio packets", move || {
        mixing.mixed.lock().unwrap().len() >= mixed_before + 100
    })
    .await;
    let direct_after = a_peer.from(b.account_id).audio;
    assert!(
        direct_after <= direct_before + 5,
        "B's own stream kept coming while mixed: {direct_before} then {direct_after}"
    );

    // Skip the first second, in which the speakers' buffers fill.
    let packets = a_peer.mixed.lock().unwrap().clone();
    let pcm = decode_all(&packets[50..]);
    let other = tone_power(&pcm, OTHER_HZ);
    let own = tone_power(&pcm, OWN_HZ);
    assert!(other > 1e5, "B's tone in A's mix has power {other}");
    assert!(
        other > 100.0 * own,
        "A hears its own voice in its mix: B's tone {other}, A's tone {own}"
    );

    // Back to one stream per speaker: B's stream resumes and the mix stops.
    a_signal
        .send(json!({"type": "meeting_mix", "id": "mix-off", "meeting_id": id, "mixed": false}))
        .await;
    let reply = a_signal.reply("mix-off").await;
    assert_eq!(reply["type"], "meeting_ok", "{reply}");
    wait_for_media(&a_peer, b.account_id, 0, direct_after + 50).await;
    let mixed_stopped = a_peer.mixed.lock().unwrap().len();
    wait_for_media(&a_peer, b.account_id, 0, direct_after + 100).await;
    assert!(
        a_peer.mixed.lock().unwrap().len() <= mixed_stopped + 5,
        "the mix kept coming after switching back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_video_reaches_the_page() {
    let fx = fixture().await;
    let id = fx.meeting_id;
    let a = &fx.members[0];
    let b = &fx.members[1];
    let a_signal = Signal::connect(&fx.server, a).await;
    let b_signal = Signal::connect(&fx.server, b).await;
    // A publishes VP8 before B joins, so the track keeps VP8.
    let a_peer = a_signal.enter(id, "j-a").await;
    let joined = a_signal
        .wait("A's video track in the list", |message| {
            message["type"] == "meeting_participant"
                && message["participant"]["account_id"] == a.account_id
                && message["participant"]["tracks"]
                    .as_array()
                    .is_some_and(|tracks| tracks.iter().any(|track| track["kind"] == "video"))
        })
        .await;
    let publisher = joined["participant"]["participant"].clone();
    let video_mid = joined["participant"]["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|track| track["kind"] == "video")
        .unwrap()["mid"]
        .clone();

    let (b_peer, reply) = b_signal.join_with(Peer::h264_only().await, id, "j-b").await;
    assert_eq!(reply["type"], "meeting_joined", "{reply}");
    connect_media(&b_peer, &reply).await;

    let notice = b_signal
        .wait("meeting_undecodable for A's video", |message| {
            message["type"] == "meeting_undecodable"
        })
        .await;
    assert_eq!(notice["meeting_id"], id, "{notice}");
    assert_eq!(notice["publisher"], publisher, "{notice}");
    assert_eq!(notice["mid"], video_mid, "{notice}");
    assert_eq!(notice["codec"], "VP8", "{notice}");
    // B still gets A's audio, and A still gets B's.
    wait_for_media(&b_peer, a.account_id, 0, 20).await;
    wait_for_media(&a_peer, b.account_id, 0, 20).await;
    assert_eq!(
        b_peer.from(a.account_id).video,
        0,
        "B received video it cannot decode"
    );
}

/// Writes a mono Ogg Opus stream of `packets` 20 ms packets, a page per 50 packets,
/// and cuts its last `cut` bytes off, as a killed writer leaves it.
fn cut_ogg_opus(packets: u64, cut: usize) -> Vec<u8> {
    use ogg::writing::{PacketWriteEndInfo, PacketWriter};
    let pre_skip: u16 = 312;
    let mut writer = PacketWriter::new(Vec::new());
    let mut head = b"OpusHead".to_vec();
    head.extend_from_slice(&[1, 1]);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&[0, 0, 0]);
    writer
        .write_packet(head, 1, PacketWriteEndInfo::EndPage, 0)
        .unwrap();
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&[0; 8]);
    writer
        .write_packet(tags, 1, PacketWriteEndInfo::EndPage, 0)
        .unwrap();
    for packet in 1..=packets {
        let end = if packet % 50 == 0 {
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        let granule = u64::from(pre_skip) + packet * 960;
        writer
            .write_packet(vec![0xf8, 0xff, 0xfe], 1, end, granule)
            .unwrap();
    }
    writer
        .write_packet(vec![0xf8, 0xff, 0xfe], 1, PacketWriteEndInfo::EndStream, 0)
        .unwrap();
    let mut file = writer.into_inner();
    file.truncate(file.len() - cut);
    file
}

on_both_backends!(unfinished_recording_measured_on_restart);

async fn unfinished_recording_measured_on_restart(backend: Backend) {
    let Fixture {
        server,
        meeting_id: id,
        host,
        ..
    } = fixture_on(backend).await;
    // A recording row without an end and its file, cut in the third page, as a
    // server killed while recording leaves them.
    let started_at = chrono::Utc::now().timestamp_millis() - 60_000;
    let file_name = format!("meeting-{id}-{started_at}.ogg");
    let dir = server.state.config.store.files_dir().join("recordings");
    std::fs::create_dir_all(&dir).unwrap();
    let contents = cut_ogg_opus(120, 10);
    let path = dir.join(&file_name);
    std::fs::write(&path, &contents).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    sqlx::query(
        "INSERT INTO meeting_recordings (meeting_id, file_name, started_by, started_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(&file_name)
    .bind(host.account_id)
    .bind(started_at)
    .execute(&server.state.db.pool)
    .await
    .unwrap();

    let store = server.stop().await;
    let server = TestServer::start_on(store, None).await;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + PATIENCE;
    let recording = loop {
        let listed: Value = http
            .get(server.url(&format!("/api/meetings/{id}/recordings")))
            .bearer_auth(&host.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if listed[0]["ended_at"].is_i64() {
            break listed[0].clone();
        }
        assert!(Instant::now() < deadline, "never measured: {listed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Two complete pages of 50 packets of 20 ms.
    assert_eq!(recording["duration_ms"], 2000, "{recording}");
    assert_eq!(recording["size"], contents.len(), "{recording}");
    assert_eq!(recording["ended_at"], started_at + 2000, "{recording}");
    assert_eq!(recording["recording"], false, "{recording}");
}

/// Returns a person's entry in a live snapshot's participant list.
fn entry_of(snapshot: &Value, account_id: i64) -> Value {
    snapshot["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["account_id"] == account_id)
        .cloned()
        .unwrap_or_else(|| panic!("account {account_id} in {snapshot}"))
}

on_both_backends!(host_decisions_survive_restart);

async fn host_decisions_survive_restart(backend: Backend) {
    let Fixture {
        server,
        meeting_id: id,
        host,
        members,
        outsider,
        ..
    } = fixture_on(backend).await;
    let (removed, muted) = (&members[0], &members[1]);
    let host_signal = Signal::connect(&server, &host).await;
    let removed_signal = Signal::connect(&server, removed).await;
    let muted_signal = Signal::connect(&server, muted).await;
    let outsider_signal = Signal::connect(&server, &outsider).await;
    host_signal.enter(id, "j-host").await;
    removed_signal.enter(id, "j-removed").await;
    muted_signal.enter(id, "j-muted").await;
    muted_signal
        .send(json!({"type": "meeting_hand", "id": "h1", "meeting_id": id, "raised": true}))
        .await;
    assert_eq!(muted_signal.reply("h1").await["type"], "meeting_ok");

    let (_, waiting) = outsider_signal.join(id, "j-out").await;
    assert_eq!(waiting["type"], "meeting_waiting", "{waiting}");
    live(
        &host,
        id,
        "admit",
        json!({"account_id": outsider.account_id}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    outsider_signal
        .wait("admission", |m| m["type"] == "meeting_joined")
        .await;
    live(
        &host,
        id,
        "remove",
        json!({"account_id": removed.account_id}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    live(
        &host,
        id,
        "mute",
        json!({"account_id": muted.account_id, "muted": true}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let before = host
        .api
        .get(&format!("/api/meetings/{id}/live"))
        .await
        .expect(StatusCode::OK);
    let raised_at = entry_of(&before, muted.account_id)["hand_raised_at"].clone();
    assert!(
        raised_at.is_i64(),
        "hand raised before the restart: {before}"
    );

    // A graceful stop closes every hub connection and records everyone as gone.
    let store = server.stop().await;
    let server = TestServer::start_on(store, None).await;

    // The removed member waits in the lobby, and the admitted outsider enters directly.
    let removed_signal = Signal::connect(&server, removed).await;
    let (_, rejoin) = removed_signal.join(id, "j-removed-again").await;
    assert_eq!(rejoin["type"], "meeting_waiting", "{rejoin}");
    let outsider_signal = Signal::connect(&server, &outsider).await;
    let (_, back) = outsider_signal.join(id, "j-out-again").await;
    assert_eq!(back["type"], "meeting_joined", "{back}");

    // The muted member comes back muted, with the hand still raised.
    let muted_signal = Signal::connect(&server, muted).await;
    let (_, back) = muted_signal.join(id, "j-muted-again").await;
    assert_eq!(back["type"], "meeting_joined", "{back}");
    let entry = entry_of(&back["snapshot"], muted.account_id);
    assert_eq!(entry["muted_by_host"], true, "{entry}");
    assert_eq!(entry["hand_raised_at"], raised_at, "{entry}");
}

/// Secret the test's coturn and server share for TURN REST API credentials.
const TURN_SECRET: &str = "test-turn-secret";

/// A member whose peer may use only TURN relay candidates joins through a coturn on
/// loopback, with the credential the server gave that member, and exchanges media with
/// a host on a direct path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_member_joins_through_turn() {
    let Some(coturn) = coturn::Coturn::start(TURN_SECRET) else {
        eprintln!(
            "skipped: coturn's turnserver is not installed; `scripts/setup-deps --test` installs it"
        );
        return;
    };
    wait_until("coturn to listen", || coturn.is_listening()).await;
    let url = format!("turn:127.0.0.1:{}?transport=udp", coturn.port);
    let turn_url = url.clone();
    let store = common::Store::new(Backend::Sqlite).await;
    let server = TestServer::start_configured(store, None, move |config| {
        config.media.turn = Some(server::config::TurnConfig {
            urls: vec![turn_url],
            secret: TURN_SECRET.to_owned(),
            credential_ttl: Duration::from_secs(3600),
        });
    })
    .await;
    let f = fixture_with(server).await;
    let member = &f.members[0];

    let servers = member
        .api
        .get(&format!("/api/meetings/{}/live/ice-servers", f.meeting_id))
        .await
        .expect(StatusCode::OK);
    let entry = &servers["ice_servers"][0];
    assert_eq!(entry["urls"], json!([url]), "{servers}");
    let username = entry["username"].as_str().unwrap().to_owned();
    assert!(
        username.ends_with(&format!(":{}", member.account_id)),
        "{username}"
    );
    let now = chrono::Utc::now().timestamp();
    assert!(servers["expires_at"].as_i64().unwrap() > now, "{servers}");

    let host_signal = Signal::connect(&f.server, &f.host).await;
    let host_peer = host_signal.enter(f.meeting_id, "j-host").await;

    let configuration = RTCConfigurationBuilder::new()
        .with_ice_servers(vec![RTCIceServer {
            urls: vec![url],
            username: username.clone(),
            credential: entry["credential"].as_str().unwrap().to_owned(),
        }])
        .with_ice_transport_policy(RTCIceTransportPolicy::Relay)
        .build();
    let member_signal = Signal::connect(&f.server, member).await;
    let (member_peer, reply) = member_signal
        .join_with(
            Peer::with_configuration(configuration).await,
            f.meeting_id,
            "j-relay",
        )
        .await;
    assert_eq!(reply["type"], "meeting_joined", "{reply}");
    connect_media(&member_peer, &reply).await;

    wait_for_media(&host_peer, member.account_id, 30, 30).await;
    wait_for_media(&member_peer, f.host.account_id, 30, 30).await;
    let log = coturn.log();
    assert!(
        log.contains(&format!(
            "user <{username}>: incoming packet ALLOCATE processed, success"
        )),
        "coturn did not allocate a relay for {username}:\n{log}"
    );
    assert!(
        log.contains("incoming packet CREATE_PERMISSION processed, success"),
        "coturn did not permit a peer:\n{log}"
    );
}
