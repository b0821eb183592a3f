//! Online learning end to end: courses and permissions, video ranges, the
//! credit rules of study time counted over the hub, exams and reports, on
//! SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use common::{Backend, Client, MEMBER_PASSWORD, PATIENCE, TestServer};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::learning::StudyRules;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Two sibling branches under one committee, an officer and two members in
/// the first, an officer in the second.
struct World {
    server: TestServer,
    committee: i64,
    branch: i64,
    sibling: i64,
    organizer: Client,
    member: Client,
    member_id: i64,
    other_member_id: i64,
    outsider: Client,
}

async fn world(backend: Backend) -> World {
    let server = TestServer::start(backend).await;
    let admin = server.sysadmin().await;
    let committee = admin.create_org(None, "学习测试党委", "committee").await;
    let branch = admin
        .create_org(Some(committee), "第一党支部", "branch")
        .await;
    let sibling = admin
        .create_org(Some(committee), "第二党支部", "branch")
        .await;
    let organizer_id = admin.create_member(branch, "王书记").await;
    let member_id = admin.create_member(branch, "李学员").await;
    let other_member_id = admin.create_member(branch, "赵学员").await;
    let outsider_id = admin.create_member(sibling, "陈书记").await;
    let security = server.secadmin().await;
    security
        .assign_role(branch, organizer_id, "secretary")
        .await;
    security
        .assign_role(sibling, outsider_id, "secretary")
        .await;
    admin.create_account("organizer", Some(organizer_id)).await;
    admin.create_account("learner", Some(member_id)).await;
    admin.create_account("outsider", Some(outsider_id)).await;
    World {
        organizer: server.login("organizer", MEMBER_PASSWORD).await,
        member: server.login("learner", MEMBER_PASSWORD).await,
        outsider: server.login("outsider", MEMBER_PASSWORD).await,
        server,
        committee,
        branch,
        sibling,
        member_id,
        other_member_id,
    }
}

/// Creates a required course in the branch with one video lesson of
/// `duration_s` seconds played at most at `max_rate`; returns (course, lesson).
async fn course_with_lesson(world: &World, duration_s: i64, max_rate: f64) -> (i64, i64) {
    let course = world
        .organizer
        .post(
            "/api/learning/courses",
            json!({"org_id": world.branch, "title": "新思想学习", "summary": "必修课", "category": "required"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let course_id = course["id"].as_i64().unwrap();
    let lesson = world
        .organizer
        .post(
            &format!("/api/learning/courses/{course_id}/lessons"),
            json!({"title": "第一讲", "kind": "video", "duration_s": duration_s, "max_rate": max_rate}),
        )
        .await
        .expect(StatusCode::CREATED);
    (course_id, lesson["id"].as_i64().unwrap())
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One hub connection used for study messages.
struct Hub {
    ws: Ws,
    /// Messages pushed by the server without a request id, in order.
    pushed: Vec<Value>,
    next: u64,
}

impl Hub {
    async fn open(client: &Client) -> Self {
        let token = client.bearer_client("hub").await.bearer.unwrap();
        let url = client.base_url.replace("http://", "ws://") + "/ws";
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        Self {
            ws,
            pushed: Vec::new(),
            next: 0,
        }
    }

    /// Sends a message with a fresh id and returns the reply carrying it.
    async fn request(&mut self, mut message: Value) -> Value {
        self.next += 1;
        let id = format!("r{}", self.next);
        message["id"] = json!(id);
        self.ws
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
        loop {
            let reply = self.receive().await;
            if reply["id"] == id {
                return reply;
            }
            self.pushed.push(reply);
        }
    }

    async fn receive(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("hub message within the timeout")
                .unwrap()
                .unwrap();
            if let Message::Text(text) = frame {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// Waits for a pushed message of a type.
    async fn pushed_of(&mut self, kind: &str) -> Value {
        if let Some(index) = self.pushed.iter().position(|m| m["type"] == kind) {
            return self.pushed.remove(index);
        }
        loop {
            let message = self.receive().await;
            if message["type"] == kind {
                return message;
            }
            self.pushed.push(message);
        }
    }

    async fn start(&mut self, lesson_id: i64) -> String {
        let reply = self
            .request(json!({"type": "study_start", "lesson_id": lesson_id, "position": 0, "visible": true}))
            .await;
        assert_eq!(reply["type"], "study_started", "{reply}");
        reply["nonce"].as_str().unwrap().to_owned()
    }

    async fn progress(&mut self, lesson_id: i64, nonce: &str, seq: u64, position: f64) -> Value {
        self.report(lesson_id, nonce, seq, position, true).await
    }

    async fn report(
        &mut self,
        lesson_id: i64,
        nonce: &str,
        seq: u64,
        position: f64,
        visible: bool,
    ) -> Value {
        self.request(
            json!({"type": "study_progress", "lesson_id": lesson_id, "nonce": nonce,
            "seq": seq, "position": position, "playing": true, "visible": visible}),
        )
        .await
    }
}

async fn required_hours(client: &Client) -> f64 {
    let me = client.get("/api/learning/me").await.expect(StatusCode::OK);
    me["totals"]["required_hours"].as_f64().unwrap()
}

async fn rejections(world: &World, reason: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM learning_rejections WHERE member_id = $1 AND reason = $2",
    )
    .bind(world.member_id)
    .bind(reason)
    .fetch_one(&world.server.state.db.pool)
    .await
    .unwrap()
}

/// Plays `seconds` of the lesson in real time from `from`, one report every
/// half second; returns the last acknowledgement and the next sequence number.
async fn play(
    hub: &mut Hub,
    lesson_id: i64,
    nonce: &str,
    mut seq: u64,
    from: f64,
    seconds: f64,
) -> (Value, u64) {
    let mut position = from;
    let mut last = Value::Null;
    while position < from + seconds - 1e-9 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        position += 0.5;
        last = hub.progress(lesson_id, nonce, seq, position).await;
        seq += 1;
    }
    (last, seq)
}

on_both_backends!(
    course_scoped_to_organizers,
    video_served_with_ranges,
    real_time_viewing_earns_credit,
    skipping_and_speeding_not_counted,
    hidden_page_not_counted,
    forged_and_replayed_rejected,
    second_tab_pauses_first,
    missed_check_stops_counting,
    offline_training_in_ledger,
    exam_grading_retries_and_time,
    report_figures_and_exports,
    lesson_edit_and_delete,
    pdf_lesson_served_and_counted,
);

async fn course_scoped_to_organizers(backend: Backend) {
    let world = world(backend).await;
    let (course_id, _) = course_with_lesson(&world, 60, 1.5).await;

    // An officer of the sibling branch neither creates courses here nor sees this one.
    world
        .outsider
        .post(
            "/api/learning/courses",
            json!({"org_id": world.branch, "title": "越权", "category": "elective"}),
        )
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    world
        .outsider
        .get(&format!("/api/learning/courses/{course_id}"))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");

    // A plain member sees it but cannot change it.
    let course = world
        .member
        .get(&format!("/api/learning/courses/{course_id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(course["can_manage"], false);
    assert_eq!(course["lessons"].as_array().unwrap().len(), 1);
    assert_eq!(course["credit_hours"], 0.25);
    world
        .member
        .patch(
            &format!("/api/learning/courses/{course_id}"),
            json!({"title": "改名"}),
        )
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");

    // Assigning to the sibling's member is outside the organizer's subtree.
    let outsider_member: i64 = world.outsider.account["member_id"].as_i64().unwrap();
    world
        .organizer
        .post(
            &format!("/api/learning/courses/{course_id}/assignments"),
            json!({"member_ids": [outsider_member]}),
        )
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    let far = world
        .organizer
        .post(
            &format!("/api/learning/courses/{course_id}/assignments"),
            json!({"member_ids": [world.member_id], "deadline_at": i64::MAX}),
        )
        .await;
    assert_eq!(
        far.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "deadline_at"
    );
    for year in ["99999999999", "-5", "1999"] {
        let reply = world
            .member
            .get(&format!("/api/learning/me?year={year}"))
            .await;
        assert_eq!(
            reply.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
            "year",
            "year {year}"
        );
    }
    let deadline = server::db::now_ms() + 86_400_000;
    world
        .organizer
        .post(
            &format!("/api/learning/courses/{course_id}/assignments"),
            json!({"member_ids": [world.member_id], "deadline_at": deadline}),
        )
        .await
        .expect(StatusCode::CREATED);
    let catalogue = world
        .member
        .get("/api/learning/courses")
        .await
        .expect(StatusCode::OK);
    let listed = catalogue
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == course_id)
        .expect("course in the member's catalogue");
    assert_eq!(listed["assigned"], true);
    assert_eq!(listed["deadline_at"], deadline);
    let outsider_catalogue = world
        .outsider
        .get("/api/learning/courses")
        .await
        .expect(StatusCode::OK);
    assert!(
        !outsider_catalogue
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == course_id)
    );

    // Reading lessons are sanitized; bad input names its field.
    let reading = world
        .organizer
        .post(
            &format!("/api/learning/courses/{course_id}/lessons"),
            json!({"title": "原文", "kind": "reading", "duration_s": 1200,
                   "body_html": "<p>学习<script>alert(1)</script></p>"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert!(!reading["body_html"].as_str().unwrap().contains("script"));
    assert_eq!(reading["credit_hours"], 0.5);
    let bad = world
        .organizer
        .post(
            &format!("/api/learning/courses/{course_id}/lessons"),
            json!({"title": "太快", "kind": "video", "duration_s": 60, "max_rate": 4}),
        )
        .await;
    let error = bad.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(error["field"], "max_rate");

    // The hub topic follows the same rule.
    let mut hub = Hub::open(&world.outsider).await;
    let denied = hub
        .request(json!({"type": "subscribe", "topic": format!("course:{course_id}")}))
        .await;
    assert_eq!(denied["code"], "not_found", "{denied}");
    let mut hub = Hub::open(&world.member).await;
    let allowed = hub
        .request(json!({"type": "subscribe", "topic": format!("course:{course_id}")}))
        .await;
    assert_eq!(allowed["type"], "subscribed", "{allowed}");
}

/// Builds a minimal WebM header (EBML magic and the `webm` doc type) followed by
/// filler, enough for the type check and for range requests.
fn webm_bytes() -> Vec<u8> {
    let mut bytes = vec![
        0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0x42, 0xf7, 0x81, 0x01, 0x42, 0xf2,
        0x81, 0x04, 0x42, 0xf3, 0x81, 0x08, 0x42, 0x82, 0x84, b'w', b'e', b'b', b'm',
    ];
    bytes.extend((0..10_000u32).map(|i| (i % 251) as u8));
    bytes
}

async fn video_served_with_ranges(backend: Backend) {
    let world = world(backend).await;
    let (_, lesson_id) = course_with_lesson(&world, 60, 1.0).await;
    let video = webm_bytes();
    let path = format!("/api/learning/lessons/{lesson_id}/video?name=lesson.webm&duration_s=61.5");
    let upload = world
        .organizer
        .request(reqwest::Method::POST, &path)
        .body(video.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::OK);
    let wrong = world
        .organizer
        .request(
            reqwest::Method::POST,
            &format!("/api/learning/lessons/{lesson_id}/video?name=lesson.mp4"),
        )
        .body(video.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let denied = world
        .member
        .request(reqwest::Method::POST, &path)
        .body(video.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);

    let url = format!("/api/learning/lessons/{lesson_id}/video");
    let whole = world
        .member
        .request(reqwest::Method::GET, &url)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.headers()["content-type"], "video/webm");
    assert_eq!(whole.bytes().await.unwrap().as_ref(), video.as_slice());

    let part = world
        .member
        .request(reqwest::Method::GET, &url)
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    let expected_range = format!("bytes 100-199/{}", video.len());
    assert_eq!(part.headers()["content-range"], expected_range.as_str());
    assert_eq!(part.bytes().await.unwrap().as_ref(), &video[100..200]);

    let tail = world
        .member
        .request(reqwest::Method::GET, &url)
        .header("Range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        tail.bytes().await.unwrap().as_ref(),
        &video[video.len() - 10..]
    );

    let past = world
        .member
        .request(reqwest::Method::GET, &url)
        .header("Range", format!("bytes={}-", video.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let outsider = world
        .outsider
        .request(reqwest::Method::GET, &url)
        .send()
        .await
        .unwrap();
    assert_eq!(outsider.status(), StatusCode::NOT_FOUND);

    let lesson = world
        .member
        .get(&format!("/api/learning/lessons/{lesson_id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(lesson["duration_s"], 61.5);
    assert_eq!(lesson["has_video"], true);
}

async fn real_time_viewing_earns_credit(backend: Backend) {
    let world = world(backend).await;
    let (course_id, lesson_id) = course_with_lesson(&world, 3, 1.0).await;
    assert_eq!(required_hours(&world.member).await, 0.0);
    let mut hub = Hub::open(&world.member).await;
    let subscribed = hub
        .request(
            json!({"type": "subscribe", "topic": format!("user:{}", world.member.account_id())}),
        )
        .await;
    assert_eq!(subscribed["type"], "subscribed");
    let nonce = hub.start(lesson_id).await;
    let (last, _) = play(&mut hub, lesson_id, &nonce, 1, 0.0, 3.0).await;
    assert_eq!(last["type"], "study_ack", "{last}");
    assert_eq!(last["status"], "counted", "{last}");
    assert_eq!(last["completed"], true, "{last}");
    assert_eq!(last["credited_hours"], 0.25, "{last}");
    assert_eq!(last["watched_until"], 3.0);

    let credited = hub.pushed_of("event").await;
    assert_eq!(credited["data"]["hours"], 0.25, "{credited}");
    assert_eq!(required_hours(&world.member).await, 0.25);

    // Watching again credits nothing more.
    let nonce = hub.start(lesson_id).await;
    let (again, _) = play(&mut hub, lesson_id, &nonce, 1, 0.0, 1.0).await;
    assert_eq!(again["credited_hours"], Value::Null);
    assert_eq!(required_hours(&world.member).await, 0.25);

    let course = world
        .member
        .get(&format!("/api/learning/courses/{course_id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(course["completed_lessons"], 1);
    assert_eq!(course["lessons"][0]["completed"], true);
}

async fn skipping_and_speeding_not_counted(backend: Backend) {
    let world = world(backend).await;
    let (_, lesson_id) = course_with_lesson(&world, 600, 1.5).await;
    let mut hub = Hub::open(&world.member).await;
    let nonce = hub.start(lesson_id).await;
    let (ack, seq) = play(&mut hub, lesson_id, &nonce, 1, 0.0, 1.0).await;
    assert_eq!(ack["status"], "counted");

    // Twenty seconds claimed half a second later: faster than 1.5x allows.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fast = hub.progress(lesson_id, &nonce, seq, 21.0).await;
    assert_eq!(fast["status"], "too_fast", "{fast}");
    assert_eq!(fast["watched_until"], 1.0);
    assert_eq!(rejections(&world, "too_fast").await, 1);

    // Playing on from the skipped-to position is not counted either.
    let (skipped, seq) = play(&mut hub, lesson_id, &nonce, seq + 1, 21.0, 1.0).await;
    assert_eq!(skipped["status"], "skipped", "{skipped}");
    assert_eq!(skipped["watched_until"], 1.0);

    // Back at the watched range, counting resumes.
    let rewound = hub.progress(lesson_id, &nonce, seq, 1.0).await;
    assert_eq!(rewound["status"], "rewound");
    let (resumed, _) = play(&mut hub, lesson_id, &nonce, seq + 1, 1.0, 1.0).await;
    assert_eq!(resumed["status"], "counted", "{resumed}");
    assert_eq!(resumed["watched_until"], 2.0);

    // Sustained playback at 3x is capped by the allowed rate.
    let mut position = 2.0;
    let mut statuses = Vec::new();
    for step in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        position += 1.5;
        let ack = hub
            .progress(lesson_id, &nonce, seq + 10 + step, position)
            .await;
        statuses.push(ack["status"].as_str().unwrap().to_owned());
    }
    assert!(statuses.iter().any(|s| s == "too_fast"), "{statuses:?}");
    let progress: i64 = sqlx::query_scalar(
        "SELECT watched_until_ms FROM learning_progress WHERE member_id = $1 AND lesson_id = $2",
    )
    .bind(world.member_id)
    .bind(lesson_id)
    .fetch_one(&world.server.state.db.pool)
    .await
    .unwrap();
    // Four seconds at 1.5x plus the two-second bucket, above the two already watched.
    assert!(
        progress <= 2_000 + 6_000 + 2_000,
        "watched until {progress} ms"
    );
}

async fn hidden_page_not_counted(backend: Backend) {
    let world = world(backend).await;
    let (_, lesson_id) = course_with_lesson(&world, 600, 1.0).await;
    let mut hub = Hub::open(&world.member).await;
    let nonce = hub.start(lesson_id).await;
    let (_, seq) = play(&mut hub, lesson_id, &nonce, 1, 0.0, 1.0).await;
    let mut seq = seq;
    let mut position = 1.0;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        position += 0.5;
        let ack = hub.report(lesson_id, &nonce, seq, position, false).await;
        assert_eq!(ack["status"], "hidden", "{ack}");
        assert_eq!(ack["counted"], 1.0);
        seq += 1;
    }
    // What played while hidden lies beyond the watched range.
    let (after, _) = play(&mut hub, lesson_id, &nonce, seq, position, 1.0).await;
    assert_eq!(after["status"], "skipped", "{after}");
    assert_eq!(after["watched_until"], 1.0);
}

async fn forged_and_replayed_rejected(backend: Backend) {
    let world = world(backend).await;
    let (_, lesson_id) = course_with_lesson(&world, 600, 1.0).await;
    let mut hub = Hub::open(&world.member).await;
    let nonce = hub.start(lesson_id).await;
    let (_, seq) = play(&mut hub, lesson_id, &nonce, 1, 0.0, 1.0).await;

    let forged = hub
        .progress(lesson_id, "00112233445566778899aabbccddeeff", seq, 1.5)
        .await;
    assert_eq!(forged["code"], "study_forged", "{forged}");
    assert_eq!(rejections(&world, "wrong_nonce").await, 1);

    let replayed = hub.progress(lesson_id, &nonce, seq - 1, 1.5).await;
    assert_eq!(replayed["code"], "study_replayed", "{replayed}");
    let out_of_order = hub.progress(lesson_id, &nonce, 1, 1.5).await;
    assert_eq!(out_of_order["code"], "study_replayed");
    assert_eq!(rejections(&world, "replayed_or_out_of_order").await, 2);

    // The nonce is bound to its connection.
    let mut other = Hub::open(&world.member).await;
    let stolen = other.progress(lesson_id, &nonce, seq + 5, 1.5).await;
    assert_eq!(stolen["code"], "study_forged", "{stolen}");
    assert_eq!(rejections(&world, "nonce_of_other_connection").await, 1);

    // Nothing of it counted, and the session goes on.
    let (ack, _) = play(&mut hub, lesson_id, &nonce, seq, 1.0, 0.5).await;
    assert_eq!(ack["status"], "counted", "{ack}");
    assert_eq!(ack["counted"], 1.5);

    // Organizers see the rejected reports in the report.
    let report = world
        .organizer
        .get(&format!("/api/learning/reports/orgs/{}", world.branch))
        .await
        .expect(StatusCode::OK);
    let line = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["member_id"] == world.member_id)
        .unwrap();
    assert_eq!(line["rejected_reports"], 4);
}

async fn second_tab_pauses_first(backend: Backend) {
    let world = world(backend).await;
    let (_, lesson_id) = course_with_lesson(&world, 600, 1.0).await;
    let (_, other_lesson) = course_with_lesson(&world, 600, 1.0).await;
    let mut first = Hub::open(&world.member).await;
    let first_nonce = first.start(lesson_id).await;
    let (_, seq) = play(&mut first, lesson_id, &first_nonce, 1, 0.0, 0.5).await;

    let mut second = Hub::open(&world.member).await;
    let second_nonce = second.start(other_lesson).await;
    let paused = first.pushed_of("study_paused").await;
    assert_eq!(paused["lesson_id"], lesson_id);
    assert_eq!(paused["reason"], "other_session");

    let refused = first.progress(lesson_id, &first_nonce, seq, 1.0).await;
    assert_eq!(refused["code"], "study_not_active", "{refused}");
    let (ack, _) = play(&mut second, other_lesson, &second_nonce, 1, 0.0, 0.5).await;
    assert_eq!(ack["status"], "counted");
}

async fn missed_check_stops_counting(backend: Backend) {
    let world = world(backend).await;
    world.server.state.study.set_rules(StudyRules {
        slack_ms: 2_000,
        check_after_ms: (1_000, 1_000),
        check_window_ms: 1_000,
    });
    let (_, lesson_id) = course_with_lesson(&world, 600, 1.0).await;
    let mut hub = Hub::open(&world.member).await;
    let nonce = hub.start(lesson_id).await;
    let (_, seq) = play(&mut hub, lesson_id, &nonce, 1, 0.0, 1.0).await;
    let check = hub.pushed_of("study_check").await;
    assert_eq!(check["expires_in_ms"], 1_000);

    // Not answered: once the window has passed nothing counts.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let missed = hub.progress(lesson_id, &nonce, seq, 1.0).await;
    let counted_before = missed["counted"].clone();
    assert_eq!(missed["status"], "check_missed", "{missed}");
    let (still, seq) = play(&mut hub, lesson_id, &nonce, seq + 1, 1.0, 1.0).await;
    assert_eq!(still["status"], "check_missed");
    assert_eq!(still["counted"], counted_before);

    let wrong = hub
        .request(
            json!({"type": "study_check_answer", "lesson_id": lesson_id, "nonce": nonce,
            "check_id": check["check_id"], "code": "wrong"}),
        )
        .await;
    assert_eq!(wrong["code"], "invalid_field", "{wrong}");
    let answered = hub
        .request(
            json!({"type": "study_check_answer", "lesson_id": lesson_id, "nonce": nonce,
            "check_id": check["check_id"], "code": check["code"]}),
        )
        .await;
    assert_eq!(answered["type"], "study_check_passed", "{answered}");

    // Counting resumes from the watched range after the answer.
    let rewound = hub.progress(lesson_id, &nonce, seq, 1.0).await;
    assert_eq!(rewound["status"], "rewound");
    let (resumed, _) = play(&mut hub, lesson_id, &nonce, seq + 1, 1.0, 0.5).await;
    assert_eq!(resumed["status"], "counted", "{resumed}");
}

async fn offline_training_in_ledger(backend: Backend) {
    let world = world(backend).await;
    let entered = world
        .organizer
        .post(
            "/api/learning/credits",
            json!({"member_ids": [world.member_id], "category": "required", "hours": 8, "note": "党校春季轮训班"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(entered["members"], 1);
    assert_eq!(required_hours(&world.member).await, 8.0);
    let me = world
        .member
        .get("/api/learning/me")
        .await
        .expect(StatusCode::OK);
    assert_eq!(me["entries"][0]["source"], "offline");
    assert_eq!(me["entries"][0]["note"], "党校春季轮训班");

    // Organizers never credit themselves or people outside their subtree.
    let own: i64 = world.organizer.account["member_id"].as_i64().unwrap();
    for member in [own, world.outsider.account["member_id"].as_i64().unwrap()] {
        world
            .organizer
            .post(
                "/api/learning/credits",
                json!({"member_ids": [member], "category": "required", "hours": 8, "note": "x"}),
            )
            .await
            .expect_error(StatusCode::FORBIDDEN, "forbidden");
    }
    let bad = world
        .organizer
        .post(
            "/api/learning/credits",
            json!({"member_ids": [world.member_id], "category": "required", "hours": 0.125, "note": "x"}),
        )
        .await;
    assert_eq!(
        bad.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "hours"
    );
    // A member named twice would be credited twice: the whole entry is refused.
    let twice = world
        .organizer
        .post(
            "/api/learning/credits",
            json!({"member_ids": [world.member_id, world.member_id], "category": "required", "hours": 2, "note": "x"}),
        )
        .await;
    assert_eq!(
        twice.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "member_ids[1]"
    );
    assert_eq!(required_hours(&world.member).await, 8.0);
}

async fn exam_grading_retries_and_time(backend: Backend) {
    let world = world(backend).await;
    let (course_id, _) = course_with_lesson(&world, 60, 1.0).await;
    let questions = [
        json!({"kind": "single", "stem": "党的根本宗旨是？", "options": ["全心全意为人民服务", "发展经济"], "answer": 0}),
        json!({"kind": "multiple", "stem": "四个意识包括？", "options": ["政治意识", "大局意识", "市场意识"], "answer": [0, 1]}),
        json!({"kind": "true_false", "stem": "党员应按期交纳党费。", "answer": true}),
        json!({"kind": "fill", "stem": "党的思想路线的核心是____。", "answer": ["实事求是"]}),
    ];
    let mut answers = std::collections::HashMap::new();
    for question in &questions {
        let created = world
            .organizer
            .post(
                &format!("/api/learning/courses/{course_id}/questions"),
                question.clone(),
            )
            .await
            .expect(StatusCode::CREATED);
        answers.insert(created["id"].as_i64().unwrap(), question["answer"].clone());
    }
    let bad = world
        .organizer
        .post(
            &format!("/api/learning/courses/{course_id}/questions"),
            json!({"kind": "single", "stem": "?", "options": ["a", "b"], "answer": 5}),
        )
        .await;
    assert_eq!(
        bad.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "answer"
    );
    let exam = world
        .organizer
        .post(
            &format!("/api/learning/courses/{course_id}/exams"),
            json!({"title": "结业考试", "question_count": 4, "duration_s": 600, "pass_pct": 75, "max_attempts": 3}),
        )
        .await
        .expect(StatusCode::CREATED);
    let exam_id = exam["id"].as_i64().unwrap();

    // First attempt: everything wrong fails; the paper shows no answers.
    let attempt = world
        .member
        .post_empty(&format!("/api/learning/exams/{exam_id}/attempts"))
        .await
        .expect(StatusCode::CREATED);
    let paper = attempt["questions"].as_array().unwrap();
    assert_eq!(paper.len(), 4);
    assert!(paper.iter().all(|q| q.get("answer").is_none()));
    let attempt_id = attempt["id"].as_i64().unwrap();
    let wrong: Vec<Value> = paper
        .iter()
        .map(|q| json!({"question_id": q["id"], "answer": "不知道"}))
        .collect();
    let graded = world
        .member
        .post(
            &format!("/api/learning/attempts/{attempt_id}/submit"),
            json!({"answers": wrong}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(graded["score"], 0);
    assert_eq!(graded["passed"], false);
    world
        .member
        .post(
            &format!("/api/learning/attempts/{attempt_id}/submit"),
            json!({"answers": []}),
        )
        .await
        .expect_error(StatusCode::CONFLICT, "attempt_submitted");

    // Second attempt runs out of time: the server scores it zero.
    let attempt = world
        .member
        .post_empty(&format!("/api/learning/exams/{exam_id}/attempts"))
        .await
        .expect(StatusCode::CREATED);
    let late_id = attempt["id"].as_i64().unwrap();
    sqlx::query("UPDATE learning_attempts SET deadline_at = $1 WHERE id = $2")
        .bind(server::db::now_ms() - 60_000)
        .bind(late_id)
        .execute(&world.server.state.db.pool)
        .await
        .unwrap();
    let right: Vec<Value> = answers
        .iter()
        .map(|(id, answer)| {
            let given = match answer {
                Value::Array(list) if list.iter().all(Value::is_string) => list[0].clone(),
                other => other.clone(),
            };
            json!({"question_id": id, "answer": given})
        })
        .collect();
    world
        .member
        .post(
            &format!("/api/learning/attempts/{late_id}/submit"),
            json!({"answers": right.clone()}),
        )
        .await
        .expect_error(StatusCode::CONFLICT, "attempt_expired");
    let late = world
        .member
        .get(&format!("/api/learning/attempts/{late_id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(late["score"], 0);
    assert_eq!(late["passed"], false);

    // Third attempt passes and adds the exam's half hour once.
    let before = required_hours(&world.member).await;
    let attempt = world
        .member
        .post_empty(&format!("/api/learning/exams/{exam_id}/attempts"))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(attempt["number"], 3);
    let running = world
        .member
        .post_empty(&format!("/api/learning/exams/{exam_id}/attempts"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        running["id"], attempt["id"],
        "starting again returns the running attempt"
    );
    let passed = world
        .member
        .post(
            &format!("/api/learning/attempts/{}/submit", attempt["id"]),
            json!({"answers": right}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(passed["score"], 4);
    assert_eq!(passed["total"], 4);
    assert_eq!(passed["passed"], true);
    assert_eq!(required_hours(&world.member).await, before + 0.5);
    world
        .member
        .post_empty(&format!("/api/learning/exams/{exam_id}/attempts"))
        .await
        .expect_error(StatusCode::CONFLICT, "exam_passed");

    // Another member's attempt is private; the organizer may read it.
    world
        .outsider
        .get(&format!("/api/learning/attempts/{attempt_id}"))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    world
        .organizer
        .get(&format!("/api/learning/attempts/{attempt_id}"))
        .await
        .expect(StatusCode::OK);
}

async fn report_figures_and_exports(backend: Backend) {
    let world = world(backend).await;
    let admin = world.server.sysadmin().await;
    let year = server::learning::china_year(server::db::now_ms());
    admin
        .put(
            &format!("/api/learning/targets/{year}"),
            json!([{"role": "member", "required_hours": 10, "elective_hours": 2},
                   {"role": "secretary", "required_hours": 20, "elective_hours": 0}]),
        )
        .await
        .expect(StatusCode::OK);
    world
        .member
        .put(&format!("/api/learning/targets/{year}"), json!([]))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    for (member, category, hours) in [
        (world.member_id, "required", 10.0),
        (world.member_id, "elective", 2.5),
        (world.other_member_id, "required", 4.0),
    ] {
        world
            .organizer
            .post(
                "/api/learning/credits",
                json!({"member_ids": [member], "category": category, "hours": hours, "note": "集中培训"}),
            )
            .await
            .expect(StatusCode::CREATED);
    }

    let report = world
        .organizer
        .get(&format!("/api/learning/reports/orgs/{}", world.branch))
        .await
        .expect(StatusCode::OK);
    // Three members: the organizer (0 of 20), 李学员 (met), 赵学员 (4 of 10).
    assert_eq!(report["members"], 3);
    assert_eq!(report["completed"], 1);
    assert_eq!(report["completion_rate"], 0.3333);
    assert_eq!(report["average_hours"], 5.5);
    assert_eq!(report["lines"][0]["name"], "李学员");
    let behind: Vec<&str> = report["behind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["name"].as_str().unwrap())
        .collect();
    assert_eq!(behind, ["王书记", "赵学员"]);
    let organizer_line = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["name"] == "王书记")
        .unwrap();
    assert_eq!(organizer_line["required_target"], 20.0);
    assert_eq!(organizer_line["rejected_reports"], 0);

    world
        .outsider
        .get(&format!("/api/learning/reports/orgs/{}", world.branch))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    let committee = admin
        .get(&format!("/api/learning/reports/orgs/{}", world.committee))
        .await
        .expect(StatusCode::OK);
    let ranking: Vec<i64> = committee["ranking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rank| rank["org_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ranking, [world.branch, world.sibling]);
    assert_eq!(committee["ranking"][0]["average_hours"], 5.5);

    let csv = world
        .organizer
        .request(
            reqwest::Method::GET,
            &format!(
                "/api/learning/reports/orgs/{}/export?format=csv",
                world.branch
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let text = csv.text().await.unwrap();
    assert!(
        text.starts_with('\u{feff}'),
        "CSV starts with a byte order mark"
    );
    assert!(
        text.contains("李学员,第一党支部,10,2.5,12.5,10,2,是"),
        "{text}"
    );
    let xlsx = world
        .organizer
        .request(
            reqwest::Method::GET,
            &format!(
                "/api/learning/reports/orgs/{}/export?format=xlsx",
                world.branch
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(xlsx.status(), StatusCode::OK);
    assert!(xlsx.bytes().await.unwrap().starts_with(b"PK"));
    world
        .organizer
        .get(&format!(
            "/api/learning/reports/orgs/{}/export?format=pdf",
            world.branch
        ))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");

    let person = world
        .organizer
        .get(&format!(
            "/api/learning/reports/members/{}",
            world.member_id
        ))
        .await
        .expect(StatusCode::OK);
    assert_eq!(person["totals"]["total_hours"], 12.5);
    assert_eq!(person["totals"]["met"], true);
}

/// Adds a lesson to a course and returns its id.
async fn add_lesson(world: &World, course_id: i64, body: Value) -> i64 {
    let lesson = world
        .organizer
        .post(&format!("/api/learning/courses/{course_id}/lessons"), body)
        .await
        .expect(StatusCode::CREATED);
    lesson["id"].as_i64().unwrap()
}

async fn lesson_titles(client: &Client, course_id: i64) -> Vec<String> {
    let course = client
        .get(&format!("/api/learning/courses/{course_id}"))
        .await
        .expect(StatusCode::OK);
    course["lessons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|lesson| lesson["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn lesson_edit_and_delete(backend: Backend) {
    let world = world(backend).await;
    let (course_id, first) = course_with_lesson(&world, 2, 1.0).await;
    let second = add_lesson(
        &world,
        course_id,
        json!({"title": "第二讲", "kind": "reading", "duration_s": 600, "body_html": "<p>旧</p>"}),
    )
    .await;
    let third = add_lesson(
        &world,
        course_id,
        json!({"title": "第三讲", "kind": "video", "duration_s": 60}),
    )
    .await;

    let path = format!("/api/learning/lessons/{second}");
    let edited = world
        .organizer
        .patch(
            &path,
            json!({"title": "第二讲（修订）", "position": 1, "credit_hours": 0.75,
                "body_html": "<p>新的正文</p><script>alert(1)</script>", "duration_s": 900}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(edited["title"], "第二讲（修订）");
    assert_eq!(edited["position"], 1);
    assert_eq!(edited["credit_hours"], 0.75);
    assert_eq!(edited["duration_s"], 900.0);
    assert_eq!(edited["body_html"], "<p>新的正文</p>");
    assert_eq!(
        lesson_titles(&world.member, course_id).await,
        ["第二讲（修订）", "第一讲", "第三讲"]
    );

    let by_length = world
        .organizer
        .patch(&path, json!({"credit_by_length": true}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(by_length["credit_hours"], 0.5, "15 minutes earn 0.5 hours");

    let past_end = world.organizer.patch(&path, json!({"position": 4})).await;
    let error = past_end.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(error["field"], "position");
    assert_eq!(error["message"], "位置须在 1 到 3 之间");
    let member_edit = world.member.patch(&path, json!({"title": "改"})).await;
    member_edit.expect_error(StatusCode::FORBIDDEN, "forbidden");
    let outsider_edit = world.outsider.patch(&path, json!({"title": "改"})).await;
    outsider_edit.expect_error(StatusCode::NOT_FOUND, "not_found");

    // The member completes the first lesson, which is then deleted.
    let mut hub = Hub::open(&world.member).await;
    let nonce = hub.start(first).await;
    let (last, _) = play(&mut hub, first, &nonce, 1, 0.0, 2.0).await;
    assert_eq!(last["credited_hours"], 0.25, "{last}");
    assert_eq!(required_hours(&world.member).await, 0.25);

    let member_delete = world
        .member
        .delete(&format!("/api/learning/lessons/{first}"))
        .await;
    member_delete.expect_error(StatusCode::FORBIDDEN, "forbidden");
    world
        .organizer
        .delete(&format!("/api/learning/lessons/{first}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(
        lesson_titles(&world.member, course_id).await,
        ["第二讲（修订）", "第三讲"]
    );
    let course = world
        .member
        .get(&format!("/api/learning/courses/{course_id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(course["lesson_count"], 2);
    assert_eq!(course["lessons"][1]["id"], third);
    assert_eq!(course["lessons"][1]["position"], 2);
    assert_eq!(course["completed_lessons"], 0);
    assert_eq!(
        required_hours(&world.member).await,
        0.25,
        "earned hours stay after the lesson is deleted"
    );
    let entries: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM learning_credits WHERE member_id = $1 AND source = 'lesson' AND ref_id = $2",
    )
    .bind(world.member_id)
    .bind(first)
    .fetch_one(&world.server.state.db.pool)
    .await
    .unwrap();
    assert_eq!(entries, 1, "the ledger entry stays");

    let deleted_lesson = world
        .member
        .get(&format!("/api/learning/lessons/{first}"))
        .await;
    deleted_lesson.expect_error(StatusCode::NOT_FOUND, "not_found");
    let restart = hub
        .request(json!({"type": "study_start", "lesson_id": first, "position": 0, "visible": true}))
        .await;
    assert_eq!(restart["code"], "not_found", "{restart}");
    let again = world
        .organizer
        .delete(&format!("/api/learning/lessons/{first}"))
        .await;
    again.expect_error(StatusCode::NOT_FOUND, "not_found");

    // A session running on a lesson when it is deleted stops counting.
    let nonce = hub.start(third).await;
    let (ack, seq) = play(&mut hub, third, &nonce, 1, 0.0, 0.5).await;
    assert_eq!(ack["status"], "counted", "{ack}");
    world
        .organizer
        .delete(&format!("/api/learning/lessons/{third}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    let stopped = hub.progress(third, &nonce, seq, 1.0).await;
    assert_eq!(stopped["code"], "study_not_active", "{stopped}");
    let counted: i64 = sqlx::query_scalar(
        "SELECT counted_ms FROM learning_progress WHERE member_id = $1 AND lesson_id = $2",
    )
    .bind(world.member_id)
    .bind(third)
    .fetch_one(&world.server.state.db.pool)
    .await
    .unwrap();
    assert_eq!(counted, 500, "nothing counts after the delete");

    let both = world
        .organizer
        .patch(
            &path,
            json!({"credit_hours": 1.0, "credit_by_length": true}),
        )
        .await;
    let error = both.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(error["field"], "credit_hours");

    let auditor = world.server.auditor().await;
    let actions: Vec<String> = auditor
        .audit_entries(Some("lesson"))
        .await
        .iter()
        .map(|entry| entry["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "learning.lesson.update")
            .count(),
        2,
        "{actions:?}"
    );
    assert!(
        actions.contains(&"learning.lesson.delete".to_owned()),
        "{actions:?}"
    );
}

/// Builds a small PDF file with one empty page.
fn pdf_bytes() -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
        2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
        3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >> endobj\n\
        trailer << /Root 1 0 R >>\n"
        .to_vec();
    bytes.extend(std::iter::repeat_n(b'%', 4_000));
    bytes.extend(b"\n%%EOF\n");
    bytes
}

async fn pdf_lesson_served_and_counted(backend: Backend) {
    let world = world(backend).await;
    let (course_id, video_lesson) = course_with_lesson(&world, 60, 1.0).await;
    let lesson_id = add_lesson(
        &world,
        course_id,
        json!({"title": "党章原文", "kind": "reading", "duration_s": 2}),
    )
    .await;
    let pdf = pdf_bytes();
    let upload = |client: &Client, lesson: i64, name: &str, body: Vec<u8>| {
        let request = client
            .request(
                reqwest::Method::POST,
                &format!("/api/learning/lessons/{lesson}/pdf?name={name}"),
            )
            .body(body);
        async move { common::Reply::read(request.send().await.unwrap()).await }
    };

    let stored = upload(&world.organizer, lesson_id, "dangzhang.pdf", pdf.clone()).await;
    assert_eq!(stored.expect(StatusCode::OK)["mime"], "application/pdf");
    let html = upload(
        &world.organizer,
        lesson_id,
        "fake.pdf",
        b"<html>x</html>".to_vec(),
    )
    .await;
    html.expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "file_type_mismatch");
    let docx = upload(&world.organizer, lesson_id, "a.docx", pdf.clone()).await;
    docx.expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_file_type");
    let to_video = upload(&world.organizer, video_lesson, "a.pdf", pdf.clone()).await;
    to_video.expect_error(StatusCode::CONFLICT, "wrong_lesson_kind");
    let by_member = upload(&world.member, lesson_id, "a.pdf", pdf.clone()).await;
    by_member.expect_error(StatusCode::FORBIDDEN, "forbidden");

    let mut oversized = pdf.clone();
    oversized.resize(50 * 1024 * 1024 + 1, b' ');
    let too_large = upload(&world.organizer, lesson_id, "big.pdf", oversized).await;
    let error = too_large.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(
        error["message"],
        "请求体或上传的文件超过了大小上限，请缩小后重试"
    );
    let detail = error["detail"].as_str().unwrap();
    assert!(detail.contains("length limit exceeded"), "{detail}");

    let lesson = world
        .member
        .get(&format!("/api/learning/lessons/{lesson_id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(lesson["has_pdf"], true);
    assert_eq!(lesson["has_video"], false);

    let url = format!("/api/learning/lessons/{lesson_id}/pdf");
    let whole = world
        .member
        .request(reqwest::Method::GET, &url)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["content-type"], "application/pdf");
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.headers()["x-frame-options"], "SAMEORIGIN");
    assert_eq!(whole.bytes().await.unwrap().as_ref(), pdf.as_slice());
    let part = world
        .member
        .request(reqwest::Method::GET, &url)
        .header("Range", "bytes=0-7")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"%PDF-1.4");
    let outsider = world.outsider.get(&url).await;
    outsider.expect_error(StatusCode::NOT_FOUND, "not_found");
    let no_pdf = world
        .member
        .get(&format!("/api/learning/lessons/{video_lesson}/pdf"))
        .await;
    no_pdf.expect_error(StatusCode::NOT_FOUND, "not_found");

    // Reading the PDF counts the time the page is visible.
    let mut hub = Hub::open(&world.member).await;
    let nonce = hub.start(lesson_id).await;
    let (last, _) = play(&mut hub, lesson_id, &nonce, 1, 0.0, 2.0).await;
    assert_eq!(last["status"], "counted", "{last}");
    assert_eq!(last["credited_hours"], 0.25, "{last}");
}
