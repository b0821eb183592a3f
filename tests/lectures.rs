//! Live lectures end to end on SQLite and PostgreSQL: real WebRTC peers on loopback in
//! a meeting in lecture mode. Checks who may watch and present, that viewers stay
//! receive-only on the media path, the floor, questions and polls, and attendance
//! counted as study time and credited when the lecture ends.

mod common;
#[path = "meeting_media/peer.rs"]
mod peer;
#[path = "meeting_media/signal.rs"]
mod signal;

use std::sync::Arc;
use std::time::Duration;

use common::{Backend, MEMBER_PASSWORD, TestServer};
use peer::{Peer, spawn_media};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::learning::StudyRules;
use signal::{Signal, assert_stays, connect_media, wait_for_media};

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

async fn person(server: &TestServer, org_id: i64, name: &str) -> Person {
    let admin = server.sysadmin().await;
    let member_id = admin.create_member(org_id, name).await;
    let username = common::unique_name("u");
    admin.create_account(&username, Some(member_id)).await;
    let api = server.login(&username, MEMBER_PASSWORD).await;
    let account_id = api.account_id();
    let token = api
        .bearer_client("lecture")
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

/// A branch with a course, its secretary (the organizer), a lecturer, a co-presenter and
/// two viewers, and an officer of a sibling branch who may not see the course.
struct Fixture {
    server: TestServer,
    course_id: i64,
    organizer: Person,
    lecturer: Person,
    co_presenter: Person,
    viewers: Vec<Person>,
    outsider: Person,
}

async fn fixture(backend: Backend) -> Fixture {
    let server = TestServer::start(backend).await;
    let admin = server.sysadmin().await;
    let root = admin.create_org(None, "党委", "committee").await;
    let branch = admin.create_org(Some(root), "第一支部", "branch").await;
    let sibling = admin.create_org(Some(root), "第二支部", "branch").await;
    let organizer = person(&server, branch, "组织者").await;
    let lecturer = person(&server, branch, "主讲人").await;
    let co_presenter = person(&server, branch, "共同主讲").await;
    let mut viewers = Vec::new();
    for name in ["听众甲", "听众乙"] {
        viewers.push(person(&server, branch, name).await);
    }
    let outsider = person(&server, sibling, "外支部书记").await;
    let security = server.secadmin().await;
    security
        .assign_role(branch, organizer.member_id, "secretary")
        .await;
    security
        .assign_role(sibling, outsider.member_id, "secretary")
        .await;
    let course = organizer
        .api
        .post(
            "/api/learning/courses",
            json!({"org_id": branch, "title": "直播党课", "summary": "", "category": "required"}),
        )
        .await
        .expect(StatusCode::CREATED);
    Fixture {
        server,
        course_id: course["id"].as_i64().unwrap(),
        organizer,
        lecturer,
        co_presenter,
        viewers,
        outsider,
    }
}

/// Adds a live lecture starting now as the organizer; returns (lesson, meeting).
async fn add_lecture(fx: &Fixture) -> (i64, i64) {
    let now = chrono::Utc::now().timestamp_millis();
    let view = fx
        .organizer
        .api
        .post(
            &format!("/api/learning/courses/{}/lectures", fx.course_id),
            json!({"title": "学习党章", "starts_at": now + 60_000, "duration_s": 3600,
                "lecturer_member": fx.lecturer.member_id,
                "co_presenters": [fx.co_presenter.member_id]}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(view["role"], "organizer", "{view}");
    (
        view["lesson_id"].as_i64().unwrap(),
        view["meeting_id"].as_i64().unwrap(),
    )
}

/// Joins receive-only and connects the media; returns the peer and the join reply.
async fn watch(signal: &Signal, meeting_id: i64, id: &str) -> (Arc<Peer>, Value) {
    let peer = Peer::receive_only().await;
    *signal.peer.lock().unwrap() = Some(Arc::clone(&peer));
    let sdp = peer.offer().await;
    signal
        .send(json!({"type": "meeting_join", "id": id, "meeting_id": meeting_id, "sdp": sdp}))
        .await;
    let reply = signal.reply(id).await;
    assert_eq!(reply["type"], "meeting_joined", "{reply}");
    connect_media(&peer, &reply).await;
    (peer, reply)
}

/// Sends the peer's new offer and applies the answer; returns the reply.
async fn renegotiate(signal: &Signal, peer: &Peer, meeting_id: i64, id: &str) -> Value {
    let sdp = peer.offer().await;
    signal
        .send(json!({"type": "meeting_offer", "id": id, "meeting_id": meeting_id, "sdp": sdp}))
        .await;
    let reply = signal.reply(id).await;
    if reply["type"] == "meeting_answer" {
        peer.apply_answer(reply["sdp"].as_str().unwrap()).await;
    }
    reply
}

on_both_backends!(
    lecture_access_by_role,
    viewers_receive_only_and_floor,
    questions_and_polls,
    attendance_credited_at_end,
);

async fn lecture_access_by_role(backend: Backend) {
    let fx = fixture(backend).await;
    let path = format!("/api/learning/courses/{}/lectures", fx.course_id);
    let body = json!({"title": "学习党章", "starts_at": chrono::Utc::now().timestamp_millis() + 60_000,
        "duration_s": 3600, "lecturer_member": fx.lecturer.member_id});
    let outsider = fx.outsider.api.post(&path, body.clone()).await;
    assert_eq!(
        outsider.status,
        StatusCode::NOT_FOUND,
        "{:?}",
        outsider.body
    );
    let viewer = fx.viewers[0].api.post(&path, body.clone()).await;
    assert_eq!(viewer.status, StatusCode::FORBIDDEN, "{:?}", viewer.body);
    let mut doubled = body.clone();
    doubled["co_presenters"] = json!([fx.lecturer.member_id]);
    let doubled = fx.organizer.api.post(&path, doubled).await;
    assert_eq!(
        doubled.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        doubled.body
    );

    let (lesson_id, meeting_id) = add_lecture(&fx).await;
    let course = fx.viewers[0]
        .api
        .get(&format!("/api/learning/courses/{}", fx.course_id))
        .await
        .expect(StatusCode::OK);
    let lesson = &course["lessons"][0];
    assert_eq!(lesson["id"], lesson_id);
    assert_eq!(lesson["kind"], "live");

    let lecture_path = format!("/api/learning/lectures/{lesson_id}");
    let as_viewer = fx.viewers[0]
        .api
        .get(&lecture_path)
        .await
        .expect(StatusCode::OK);
    assert_eq!(as_viewer["role"], "viewer");
    assert_eq!(as_viewer["meeting_id"], meeting_id);
    let as_lecturer = fx
        .lecturer
        .api
        .get(&lecture_path)
        .await
        .expect(StatusCode::OK);
    assert_eq!(as_lecturer["role"], "presenter");
    let as_co = fx
        .co_presenter
        .api
        .get(&lecture_path)
        .await
        .expect(StatusCode::OK);
    assert_eq!(as_co["role"], "presenter");
    let hidden = fx.outsider.api.get(&lecture_path).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);

    // The outsider cannot enter the lecture's media either, not even to a lobby.
    let signal = Signal::connect(&fx.server, &fx.outsider).await;
    let (_, reply) = signal.join(meeting_id, "j-out").await;
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "not_found", "{reply}");

    // A linked meeting must be the lecturer's own and not already linked.
    let mut linked = body.clone();
    linked["meeting_id"] = json!(meeting_id);
    let taken = fx.organizer.api.post(&path, linked).await;
    assert_eq!(taken.code(), "meeting_already_linked", "{:?}", taken.body);
}

async fn viewers_receive_only_and_floor(backend: Backend) {
    let fx = fixture(backend).await;
    let (lesson_id, meeting_id) = add_lecture(&fx).await;
    let lecturer = Signal::connect(&fx.server, &fx.lecturer).await;
    let lecturer_peer = lecturer.enter(meeting_id, "j-lecturer").await;
    let co = Signal::connect(&fx.server, &fx.co_presenter).await;
    co.enter(meeting_id, "j-co").await;

    // A viewer whose offer sends media is rejected before the engine sees it.
    let first = Signal::connect(&fx.server, &fx.viewers[0]).await;
    let (_, rejected) = first.join(meeting_id, "j-send").await;
    assert_eq!(rejected["type"], "error", "{rejected}");
    assert_eq!(rejected["code"], "lecture_receive_only", "{rejected}");

    // Receive-only, the viewers enter at once and decode the lecturer's media.
    let (first_peer, joined) = watch(&first, meeting_id, "j-first").await;
    assert_eq!(joined["snapshot"]["lecture"]["role"], "viewer", "{joined}");
    assert_eq!(joined["snapshot"]["lecture"]["lesson_id"], lesson_id);
    wait_for_media(&first_peer, fx.lecturer.account_id, 20, 20).await;
    let second = Signal::connect(&fx.server, &fx.viewers[1]).await;
    let (second_peer, joined) = watch(&second, meeting_id, "j-second").await;
    let listed: Vec<i64> = joined["snapshot"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["account_id"].as_i64().unwrap())
        .collect();
    assert!(listed.contains(&fx.lecturer.account_id), "{listed:?}");
    assert!(!listed.contains(&fx.viewers[0].account_id), "{listed:?}");
    wait_for_media(&second_peer, fx.lecturer.account_id, 20, 20).await;

    // Presenters see the second viewer arrive; the first viewer gets counts only.
    let second_account = fx.viewers[1].account_id;
    lecturer
        .wait("the second viewer in the roster", |m| {
            m["type"] == "meeting_participant" && m["participant"]["account_id"] == second_account
        })
        .await;
    first
        .wait("counts with two viewers", |m| {
            m["type"] == "lecture_stats" && m["stats"]["viewers"] == 2
        })
        .await;
    assert!(!first.has(|m| {
        m["type"] == "meeting_participant" && m["participant"]["account_id"] == second_account
    }));
    lecturer
        .wait("the dashboard", |m| {
            m["type"] == "lecture_dashboard" && m["dashboard"]["viewers"] == 2
        })
        .await;

    // Without the floor, adding a microphone is rejected.
    first_peer.add_audio().await;
    let refused = renegotiate(&first, &first_peer, meeting_id, "o-refused").await;
    assert_eq!(refused["code"], "lecture_receive_only", "{refused}");

    // A viewer may not give the floor; the lecturer may.
    let floor = format!("/api/learning/lectures/{lesson_id}/floor");
    let by_viewer = fx.viewers[1]
        .api
        .post(&floor, json!({"account_id": fx.viewers[0].account_id}))
        .await;
    assert_eq!(by_viewer.status, StatusCode::FORBIDDEN);
    fx.lecturer
        .api
        .post(&floor, json!({"account_id": fx.viewers[0].account_id}))
        .await
        .expect(StatusCode::NO_CONTENT);
    first
        .wait("the floor", |m| {
            m["type"] == "lecture_floor" && m["account_id"] == fx.viewers[0].account_id
        })
        .await;
    let accepted = renegotiate(&first, &first_peer, meeting_id, "o-floor").await;
    assert_eq!(accepted["type"], "meeting_answer", "{accepted}");
    let sender = spawn_media(Arc::clone(&first_peer));
    let first_account = fx.viewers[0].account_id;
    lecturer
        .wait("the viewer's microphone track", |m| {
            m["type"] == "meeting_participant"
                && m["participant"]["account_id"] == first_account
                && m["participant"]["tracks"]
                    .as_array()
                    .is_some_and(|t| !t.is_empty())
        })
        .await;
    wait_for_media(&lecturer_peer, fx.viewers[0].account_id, 0, 20).await;

    // Taking the floor back blocks the viewer's audio in the engine at once, while the
    // page still sends it.
    fx.lecturer
        .api
        .post(&floor, json!({"account_id": null}))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_stays(
        &lecturer_peer,
        fx.co_presenter.account_id,
        fx.viewers[0].account_id,
        |before, after| after.audio == before.audio,
        "the viewer's audio after the floor was taken back",
    )
    .await;
    sender.abort();
}

async fn questions_and_polls(backend: Backend) {
    let fx = fixture(backend).await;
    let (lesson_id, meeting_id) = add_lecture(&fx).await;
    let lecturer = Signal::connect(&fx.server, &fx.lecturer).await;
    lecturer.enter(meeting_id, "j-lecturer").await;
    let second = Signal::connect(&fx.server, &fx.viewers[1]).await;
    watch(&second, meeting_id, "j-second").await;
    let base = format!("/api/learning/lectures/{lesson_id}");

    let asked = fx.viewers[0]
        .api
        .post(
            &format!("{base}/questions"),
            json!({"text": "如何学好党章？"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let question_id = asked["id"].as_i64().unwrap();
    lecturer
        .wait("the question", |m| {
            m["type"] == "lecture_question" && m["question"]["id"] == question_id
        })
        .await;
    let empty = fx.viewers[0]
        .api
        .post(&format!("{base}/questions"), json!({"text": "  "}))
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    let other = fx.viewers[1].api.get(&base).await.expect(StatusCode::OK);
    assert_eq!(other["questions"].as_array().unwrap().len(), 0, "{other}");
    let staff = fx.lecturer.api.get(&base).await.expect(StatusCode::OK);
    assert_eq!(staff["questions"][0]["text"], "如何学好党章？");

    let answered = format!("{base}/questions/{question_id}/answered");
    let by_viewer = fx.viewers[1].api.post(&answered, json!({})).await;
    assert_eq!(by_viewer.status, StatusCode::FORBIDDEN);
    let marked = fx
        .lecturer
        .api
        .post(&answered, json!({}))
        .await
        .expect(StatusCode::OK);
    assert!(marked["answered_at"].is_i64(), "{marked}");

    let polls = format!("{base}/polls");
    let poll = json!({"question": "本次党课是否清楚？", "options": ["清楚", "基本清楚", "不清楚"]});
    let by_viewer = fx.viewers[0].api.post(&polls, poll.clone()).await;
    assert_eq!(by_viewer.status, StatusCode::FORBIDDEN);
    let single = fx
        .lecturer
        .api
        .post(&polls, json!({"question": "是否？", "options": ["是"]}))
        .await;
    assert_eq!(single.status, StatusCode::UNPROCESSABLE_ENTITY);
    let opened = fx
        .lecturer
        .api
        .post(&polls, poll)
        .await
        .expect(StatusCode::CREATED);
    let poll_id = opened["id"].as_i64().unwrap();
    second
        .wait("the poll", |m| {
            m["type"] == "lecture_poll" && m["poll"]["id"] == poll_id
        })
        .await;

    let answer = format!("{polls}/{poll_id}/answer");
    let out_of_range = fx.viewers[0].api.post(&answer, json!({"choice": 3})).await;
    assert_eq!(out_of_range.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mine = fx.viewers[0]
        .api
        .post(&answer, json!({"choice": 1}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(mine["counts"], json!([0, 1, 0]));
    assert_eq!(mine["my_choice"], 1);
    let again = fx.viewers[0].api.post(&answer, json!({"choice": 0})).await;
    assert_eq!(again.code(), "poll_already_answered", "{:?}", again.body);
    // Presenters get the result at once, viewers with the next counts tick.
    lecturer
        .wait("live results", |m| {
            m["type"] == "lecture_poll" && m["poll"]["total"] == 1
        })
        .await;
    second
        .wait("results for viewers", |m| {
            m["type"] == "lecture_poll" && m["poll"]["total"] == 1
        })
        .await;

    fx.viewers[1]
        .api
        .post(&answer, json!({"choice": 0}))
        .await
        .expect(StatusCode::OK);
    fx.lecturer
        .api
        .post(&format!("{polls}/{poll_id}/close"), json!({}))
        .await
        .expect(StatusCode::OK);
    let late = fx.organizer.api.post(&answer, json!({"choice": 2})).await;
    assert_eq!(late.code(), "poll_closed", "{:?}", late.body);
    let view = fx.viewers[1].api.get(&base).await.expect(StatusCode::OK);
    assert_eq!(view["polls"][0]["counts"], json!([1, 1, 0]));
    assert_eq!(view["polls"][0]["my_choice"], 0);
    assert_eq!(view["polls"][0]["closed"], true);
}

/// Sends `study_*` messages on a viewer's media connection, one report every half
/// second for `seconds`; answers attention checks when `attentive`. Returns the
/// statuses of the acknowledgements.
async fn study(
    signal: &Signal,
    lesson_id: i64,
    seconds: f64,
    attentive: bool,
    tag: &str,
) -> Vec<String> {
    let start_id = format!("{tag}-start");
    signal
        .send(json!({"type": "study_start", "id": start_id, "lesson_id": lesson_id, "position": 0, "visible": true}))
        .await;
    let started = signal.reply(&start_id).await;
    assert_eq!(started["type"], "study_started", "{started}");
    let nonce = started["nonce"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    let mut answered = std::collections::HashSet::new();
    let reports = (seconds * 2.0) as u64;
    for seq in 1..=reports {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let id = format!("{tag}-{seq}");
        signal
            .send(
                json!({"type": "study_progress", "id": id, "lesson_id": lesson_id, "nonce": nonce,
                "seq": seq, "position": seq as f64 / 2.0, "playing": true, "visible": true}),
            )
            .await;
        let ack = signal.reply(&id).await;
        assert_eq!(ack["type"], "study_ack", "{ack}");
        statuses.push(ack["status"].as_str().unwrap().to_owned());
        if !attentive {
            continue;
        }
        let checks: Vec<Value> = signal
            .inbox
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m["type"] == "study_check")
            .cloned()
            .collect();
        for check in checks {
            let check_id = check["check_id"].as_str().unwrap().to_owned();
            if !answered.insert(check_id.clone()) {
                continue;
            }
            let answer_id = format!("{tag}-answer-{check_id}");
            signal
                .send(
                    json!({"type": "study_check_answer", "id": answer_id, "lesson_id": lesson_id,
                    "nonce": nonce, "check_id": check_id, "code": check["code"]}),
                )
                .await;
            let passed = signal.reply(&answer_id).await;
            assert_eq!(passed["type"], "study_check_passed", "{passed}");
        }
    }
    statuses
}

async fn attendance_credited_at_end(backend: Backend) {
    let fx = fixture(backend).await;
    fx.server.state.study.set_rules(StudyRules {
        slack_ms: 2_000,
        check_after_ms: (1_000, 1_000),
        check_window_ms: 1_000,
    });
    let (lesson_id, meeting_id) = add_lecture(&fx).await;
    let lecturer = Signal::connect(&fx.server, &fx.lecturer).await;

    // Waiting in the media before any presenter arrives counts nothing.
    let attentive = Signal::connect(&fx.server, &fx.viewers[0]).await;
    watch(&attentive, meeting_id, "j-attentive").await;
    let waiting = study(&attentive, lesson_id, 1.0, true, "w").await;
    assert!(waiting.iter().all(|s| s == "no_media"), "{waiting:?}");

    lecturer.enter(meeting_id, "j-lecturer").await;
    fx.lecturer
        .api
        .post(
            &format!("/api/meetings/{meeting_id}/recording/start"),
            json!({}),
        )
        .await
        .expect(StatusCode::CREATED);
    let careless = Signal::connect(&fx.server, &fx.viewers[1]).await;
    watch(&careless, meeting_id, "j-careless").await;

    // Time counts only on a connection whose media is in the lecture.
    let elsewhere = Signal::connect(&fx.server, &fx.organizer).await;
    let without_media = study(&elsewhere, lesson_id, 1.0, true, "org").await;
    assert!(
        without_media.iter().all(|s| s == "no_media"),
        "{without_media:?}"
    );

    let (attentive_statuses, careless_statuses) = tokio::join!(
        study(&attentive, lesson_id, 10.0, true, "a"),
        study(&careless, lesson_id, 10.0, false, "c"),
    );
    assert!(
        attentive_statuses.iter().all(|s| s == "counted"),
        "{attentive_statuses:?}"
    );
    assert!(
        careless_statuses.iter().any(|s| s == "check_missed"),
        "{careless_statuses:?}"
    );
    assert_eq!(careless_statuses.last().unwrap(), "check_missed");
    lecturer
        .wait("missed checks on the dashboard", |m| {
            m["type"] == "lecture_dashboard"
                && m["dashboard"]["checks_missed"].as_u64() >= Some(1)
                && m["dashboard"]["checks_passed"].as_u64() >= Some(1)
        })
        .await;

    // No hours before the end.
    let before = fx.viewers[0]
        .api
        .get(&format!("/api/learning/lectures/{lesson_id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(before["credited"], false);
    fx.lecturer
        .api
        .post(
            &format!("/api/meetings/{meeting_id}/recording/stop"),
            json!({}),
        )
        .await
        .expect(StatusCode::OK);
    fx.lecturer
        .api
        .post(&format!("/api/meetings/{meeting_id}/live/end"), json!({}))
        .await
        .expect(StatusCode::NO_CONTENT);
    attentive
        .wait("the study session to stop", |m| {
            m["type"] == "study_stopped"
        })
        .await;

    let hours = |me: Value| me["totals"]["required_hours"].as_f64().unwrap();
    let credited = fx.viewers[0]
        .api
        .get("/api/learning/me")
        .await
        .expect(StatusCode::OK);
    assert_eq!(hours(credited), 0.25);
    let missed = fx.viewers[1]
        .api
        .get("/api/learning/me")
        .await
        .expect(StatusCode::OK);
    assert_eq!(hours(missed), 0.0);
    let after = fx.viewers[0]
        .api
        .get(&format!("/api/learning/lectures/{lesson_id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(after["credited"], true);
    assert!(after["ended_at"].is_i64());

    // Ending again credits nothing twice, and a study session no longer starts.
    server::learning::lectures::meeting_ended(&fx.server.state, meeting_id)
        .await
        .unwrap();
    let once = fx.viewers[0]
        .api
        .get("/api/learning/me")
        .await
        .expect(StatusCode::OK);
    assert_eq!(hours(once), 0.25);
    attentive
        .send(json!({"type": "study_start", "id": "late", "lesson_id": lesson_id, "position": 0, "visible": true}))
        .await;
    assert_eq!(attentive.reply("late").await["code"], "lecture_ended");

    // The recording becomes an audio lesson of the course, served with ranges.
    let viewer_try = fx.viewers[0]
        .api
        .post(
            &format!("/api/learning/lectures/{lesson_id}/recording-lesson"),
            json!({}),
        )
        .await;
    assert_eq!(viewer_try.status, StatusCode::FORBIDDEN);
    let lesson = fx
        .organizer
        .api
        .post(
            &format!("/api/learning/lectures/{lesson_id}/recording-lesson"),
            json!({}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(lesson["mime"], "audio/ogg");
    let recording_lesson = lesson["lesson_id"].as_i64().unwrap();
    let url = format!("/api/learning/lessons/{recording_lesson}/video");
    let part = fx.viewers[0]
        .api
        .request(reqwest::Method::GET, &url)
        .header("Range", "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-type"], "audio/ogg");
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"OggS");
    let twice = fx
        .organizer
        .api
        .post(
            &format!("/api/learning/lectures/{lesson_id}/recording-lesson"),
            json!({}),
        )
        .await;
    assert_eq!(twice.code(), "recording_lesson_exists");
}
