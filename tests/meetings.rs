//! Meetings end to end on the demo province. The tests cover scheduling
//! with the invitation notice and calendar file, edits and cancellation,
//! who may read, subscribe and schedule, and attendance through the
//! live-side functions. They check quorum at its boundaries, secret ballots
//! that no stored row links to a voter, one vote per person under
//! concurrent requests, an election with a tie and an unfilled seat,
//! minutes with version conflicts, and the archive.

mod common;

use std::collections::BTreeSet;

use common::{Backend, Client, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::serve::Server;
use sqlx::Row;

const BRANCH: &str = "东城区机关第一党支部";
const OTHER_DISTRICT_BRANCH: &str = "西城区教育系统党支部";
const HEPING_SECOND: &str = "和平街道第二党支部";
const DAY_MS: i64 = 24 * 3600 * 1000;

struct Running {
    base: String,
    state: server::state::AppState,
    store: Store,
}

async fn start(backend: Backend) -> Running {
    common::install_crypto_provider();
    let store = Store::new(backend).await;
    let mut config = common::config(&store, None);
    config.demo = true;
    let server = Server::bind(config).await.unwrap();
    let (addr, state) = (server.addr, server.state.clone());
    tokio::spawn(server.run(std::future::pending()));
    Running {
        base: format!("http://{addr}"),
        state,
        store,
    }
}

impl Running {
    async fn login(&self, username: &str) -> Client {
        let mut client = Client::new(self.base.clone(), common::http_client());
        let body = client
            .post(
                "/api/auth/login",
                json!({"username": username, "password": server::demo::DEMO_PASSWORD}),
            )
            .await
            .expect(StatusCode::OK);
        client.csrf = body["csrf_token"].as_str().map(str::to_owned);
        client.account = body["account"].clone();
        client
    }

    async fn org_id(&self, name: &str) -> i64 {
        sqlx::query_scalar("SELECT id FROM orgs WHERE name = $1")
            .bind(name)
            .fetch_one(&self.state.db.pool)
            .await
            .unwrap()
    }

    /// Loads the branch's members with their accounts, officers first.
    async fn members_of(&self, org: &str) -> Vec<Person> {
        let rows = sqlx::query(
            "SELECT m.id, m.status, a.id AS account_id, a.username FROM members m \
             JOIN orgs o ON o.id = m.org_id JOIN accounts a ON a.member_id = m.id \
             WHERE o.name = $1 ORDER BY m.id",
        )
        .bind(org)
        .fetch_all(&self.state.db.pool)
        .await
        .unwrap();
        rows.iter()
            .map(|row| Person {
                member_id: row.get("id"),
                account_id: row.get("account_id"),
                username: row.get("username"),
                full: row.get::<String, _>("status") == "full",
            })
            .collect()
    }

    /// Adds a full member with an account (demo password) to a branch.
    async fn add_member(&self, org: &str, number: usize) -> Person {
        let org_id = self.org_id(org).await;
        let hash: String =
            sqlx::query_scalar("SELECT password_hash FROM accounts WHERE username = 'zhibu'")
                .fetch_one(&self.state.db.pool)
                .await
                .unwrap();
        let now = server::db::now_ms();
        let member_id: i64 = sqlx::query_scalar(
            "INSERT INTO members (org_id, name, gender, ethnicity, birth_date, education, joined_on, status, \
             phone, id_number, created_at, updated_at) VALUES ($1, $2, 'male', '汉族', '1980-01-01', '大学本科', \
             '2005-07-01', 'full', '13900000000', $3, $4, $4) RETURNING id",
        )
        .bind(org_id)
        .bind(format!("加会{number}"))
        .bind(format!("TEST{number:014}"))
        .bind(now)
        .fetch_one(&self.state.db.pool)
        .await
        .unwrap();
        let username = format!("extra{number}");
        let mut conn = self.state.db.pool.acquire().await.unwrap();
        let account_id = server::auth::accounts::insert_account(
            &mut conn,
            &username,
            &username,
            &hash,
            Some(member_id),
            None,
            false,
        )
        .await
        .unwrap();
        Person {
            member_id,
            account_id,
            username,
            full: true,
        }
    }

    async fn join(&self, meeting: i64, person: &Person) {
        server::meetings::joined(&self.state, meeting, person.account_id)
            .await
            .unwrap();
    }

    /// Loads the username of the member with `role` in the organization.
    async fn officer(&self, org: &str, role: &str) -> String {
        sqlx::query_scalar(
            "SELECT a.username FROM org_roles r JOIN orgs o ON o.id = r.org_id \
             JOIN accounts a ON a.member_id = r.member_id WHERE o.name = $1 AND r.role = $2",
        )
        .bind(org)
        .bind(role)
        .fetch_one(&self.state.db.pool)
        .await
        .unwrap()
    }
}

#[derive(Clone, Debug)]
struct Person {
    member_id: i64,
    account_id: i64,
    username: String,
    full: bool,
}

fn tomorrow() -> i64 {
    server::db::now_ms() + DAY_MS
}

fn meeting_body(org_id: i64, kind: &str, host: i64, recorder: i64, invitees: Value) -> Value {
    let start = tomorrow();
    json!({
        "org_id": org_id,
        "kind": kind,
        "title": "十二月支部会议",
        "starts_at": start,
        "ends_at": start + 2 * 3600 * 1000,
        "place": "三楼会议室",
        "online": true,
        "agenda": [
            {"title": "学习传达文件精神"},
            {"title": "讨论年度工作总结", "pass_rule": "two_thirds"},
            {"title": "其他事项"}
        ],
        "host_member": host,
        "recorder_member": recorder,
        "invitees": invitees,
    })
}

on_both_backends!(
    demo_branch_has_meeting_records,
    schedule_invites_with_calendar,
    secret_ballot_unlinkable,
    election_reports_tie_and_unfilled_seat,
    minutes_attendance_and_archive,
);

async fn demo_branch_has_meeting_records(backend: Backend) {
    let server = start(backend).await;
    let branch_id = server.org_id("云溪市委机关党支部").await;
    let secretary = server.login("shengwei").await;
    let list = |status: &str| format!("/api/meetings?org_id={branch_id}&status={status}");
    let ended = secretary.get(&list("ended")).await.expect(StatusCode::OK);
    assert_eq!(ended["total"], 3);
    let scheduled = secretary
        .get(&list("scheduled"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(scheduled["total"], 1);

    let general = ended["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "general_meeting")
        .unwrap();
    let view = secretary
        .get(&format!("/api/meetings/{}", general["id"]))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["quorum"]["required"], 6);
    assert_eq!(view["quorum"]["present"], 5);
    let vote = &view["votes"][0];
    assert_eq!(vote["ballot"], "secret");
    assert_eq!(vote["result"]["votes_for"], 4);
    assert_eq!(vote["result"]["against"], 1);
    assert_eq!(vote["result"]["outcome"], "passed");
    assert_eq!(vote["voted"], 5);
    assert!(view["minutes"]["approved_at"].is_i64());
    let on_leave = view["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["final_status"] == "on_leave")
        .count();
    assert_eq!(on_leave, 1);
    assert_eq!(view["leave_requests"][0]["status"], "approved");
}

async fn schedule_invites_with_calendar(backend: Backend) {
    let server = start(backend).await;
    let branch_id = server.org_id(BRANCH).await;
    let branch = server.members_of(BRANCH).await;
    let guest = server.members_of(OTHER_DISTRICT_BRANCH).await[3].clone();
    let secretary = server.login("zhibu").await;
    let member = server.login("dangyuan").await;
    let outsider = server
        .login(&server.members_of("临江市委机关党支部").await[3].username)
        .await;
    let city = server.login("qingchuan").await;
    let (host, recorder) = (branch[0].member_id, branch[1].member_id);

    // A member without an office cannot schedule.
    let body = meeting_body(branch_id, "branch_committee", host, recorder, json!([]));
    member
        .post("/api/meetings", body.clone())
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");

    // The branch secretary cannot name a guest from another district.
    let with_guest = meeting_body(
        branch_id,
        "branch_committee",
        host,
        recorder,
        json!([{"member_id": guest.member_id, "attendance": "optional"}]),
    );
    let reply = secretary.post("/api/meetings", with_guest.clone()).await;
    let error = reply.expect_error(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(error["field"], "invitees[0].member_id");

    // A branch does not hold a 党委会.
    let wrong_kind = meeting_body(branch_id, "party_committee", host, recorder, json!([]));
    let reply = secretary.post("/api/meetings", wrong_kind).await;
    assert_eq!(
        reply.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "kind"
    );

    // The city committee's secretary invites the guest.
    let view = city
        .post("/api/meetings", with_guest)
        .await
        .expect(StatusCode::CREATED);
    let id = view["meeting"]["id"].as_i64().unwrap();
    assert_eq!(view["meeting"]["status"], "scheduled");
    assert_eq!(view["meeting"]["kind_name"], "支委会");
    assert_eq!(view["agenda"].as_array().unwrap().len(), 3);
    assert_eq!(view["agenda"][1]["pass_rule"], "two_thirds");
    let participants = view["participants"].as_array().unwrap();
    let voting: BTreeSet<i64> = participants
        .iter()
        .filter(|p| p["voting"] == true)
        .map(|p| p["member_id"].as_i64().unwrap())
        .collect();
    let officers: BTreeSet<i64> = branch[..3].iter().map(|p| p.member_id).collect();
    assert_eq!(voting, officers, "the committee votes");
    let guest_row = participants
        .iter()
        .find(|p| p["member_id"] == guest.member_id)
        .expect("guest on the roll");
    assert_eq!(guest_row["voting"], false);
    assert_eq!(guest_row["account_id"], guest.account_id);
    assert_eq!(guest_row["attendance"], "optional");
    assert_eq!(guest_row["org_name"], OTHER_DISTRICT_BRANCH);
    assert_eq!(view["quorum"]["required"], 3);
    assert_eq!(view["quorum"]["present"], 0);

    // The invitation reaches the guest as a notice with the calendar file.
    let guest_client = server.login(&guest.username).await;
    let inbox = guest_client
        .get("/api/notices/inbox")
        .await
        .expect(StatusCode::OK);
    let notice = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["title"].as_str().unwrap().starts_with("会议通知"))
        .expect("invitation in the guest's inbox")
        .clone();
    let notice_id = notice["id"].as_i64().unwrap();
    let full = guest_client
        .get(&format!("/api/notices/{notice_id}"))
        .await
        .expect(StatusCode::OK);
    assert!(
        full["body_html"].as_str().unwrap().contains("三楼会议室"),
        "{full}"
    );
    assert_eq!(full["attachments"][0]["name"], format!("meeting-{id}.ics"));
    let response = guest_client
        .request(
            reqwest::Method::GET,
            &format!("/api/notices/{notice_id}/attachments/0"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let attached = response.text().await.unwrap();
    assert!(attached.starts_with("BEGIN:VCALENDAR\r\n"), "{attached}");
    assert!(
        attached.contains(&format!("UID:meeting-{id}@")),
        "{attached}"
    );
    assert!(attached.contains("SUMMARY:十二月支部会议"), "{attached}");
    assert!(attached.contains("SEQUENCE:0"), "{attached}");

    // The guest, the branch's members and the city committee read it; a
    // member elsewhere does not.
    guest_client
        .get(&format!("/api/meetings/{id}"))
        .await
        .expect(StatusCode::OK);
    let seen = member
        .get(&format!("/api/meetings/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(seen["me"]["standing"], "member");
    assert_eq!(seen["can"]["edit"], false);
    outsider
        .get(&format!("/api/meetings/{id}"))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    outsider
        .get(&format!("/api/meetings/{id}/ics"))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    let topic = format!("meeting:{id}");
    assert_eq!(subscribe(&guest_client, &topic).await["type"], "subscribed");
    assert_eq!(subscribe(&member, &topic).await["type"], "subscribed");
    let denied = subscribe(&outsider, &topic).await;
    assert_eq!(denied["type"], "error");
    assert_eq!(denied["code"], "forbidden");
    let access = server::meetings::access(&server.state, id, outsider.account_id())
        .await
        .unwrap();
    assert_eq!(access.standing, server::meetings::Standing::Outsider);
    let access = server::meetings::access(&server.state, id, guest.account_id)
        .await
        .unwrap();
    assert_eq!(access.standing, server::meetings::Standing::Invitee);

    // Mine and the calendar range list it.
    let mine = guest_client
        .get("/api/meetings")
        .await
        .expect(StatusCode::OK);
    assert_eq!(mine["total"], 1);
    let range = format!(
        "/api/meetings?org_id={branch_id}&from={}&to={}",
        tomorrow() - DAY_MS,
        tomorrow() + DAY_MS
    );
    let listed = secretary.get(&range).await.expect(StatusCode::OK);
    let listed_ids: Vec<&Value> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| &item["id"])
        .collect();
    assert!(listed_ids.contains(&&json!(id)), "{listed}");
    // The demo branch also has the live lecture the demo schedules for tomorrow.
    let scheduled = format!("/api/meetings?org_id={branch_id}&status=scheduled");
    assert_eq!(
        secretary.get(&scheduled).await.expect(StatusCode::OK)["total"],
        2
    );
    let ended = format!("/api/meetings?org_id={branch_id}&status=ended");
    assert_eq!(
        secretary.get(&ended).await.expect(StatusCode::OK)["total"],
        0
    );
    let bad = format!("/api/meetings?org_id={branch_id}&status=done");
    let reply = secretary.get(&bad).await;
    assert_eq!(
        reply.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "status"
    );
    let later = format!(
        "/api/meetings?org_id={branch_id}&from={}",
        tomorrow() + DAY_MS
    );
    assert_eq!(
        secretary.get(&later).await.expect(StatusCode::OK)["total"],
        0
    );

    // An edit raises the revision and sends the change with the calendar.
    let mut edited = meeting_body(branch_id, "branch_committee", host, recorder, json!([]));
    edited["title"] = json!("十二月支委会（改期）");
    // The branch secretary cannot name the guest being removed; the city
    // committee's secretary can.
    secretary
        .put(&format!("/api/meetings/{id}"), edited.clone())
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    let view = city
        .put(&format!("/api/meetings/{id}"), edited.clone())
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["meeting"]["revision"], 1);
    assert!(
        view["participants"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["member_id"] != guest.member_id)
    );
    let inbox = guest_client
        .get("/api/notices/inbox")
        .await
        .expect(StatusCode::OK);
    assert!(
        inbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["title"] == "会议变更：十二月支委会（改期）"),
        "the removed guest hears of the change: {inbox}"
    );
    let calendar = secretary.get(&format!("/api/meetings/{id}/ics")).await;
    assert_eq!(calendar.status, StatusCode::OK);
    let text = calendar.body.as_str().unwrap().to_owned();
    assert!(text.contains("SEQUENCE:1"), "{text}");
    assert_eq!(
        calendar.headers["content-type"],
        "text/calendar; charset=utf-8"
    );

    // Cancel, then no more edits.
    secretary
        .post(&format!("/api/meetings/{id}/cancel"), json!({"reason": ""}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let view = secretary
        .post(
            &format!("/api/meetings/{id}/cancel"),
            json!({"reason": "与区委会议冲突"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["meeting"]["status"], "cancelled");
    let text = secretary
        .get(&format!("/api/meetings/{id}/ics"))
        .await
        .body
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("STATUS:CANCELLED"), "{text}");
    assert!(text.contains("METHOD:CANCEL"), "{text}");
    secretary
        .put(&format!("/api/meetings/{id}"), edited)
        .await
        .expect_error(StatusCode::CONFLICT, "meeting_not_scheduled");
    let joined = server::meetings::joined(&server.state, id, branch[0].account_id).await;
    assert_eq!(joined.unwrap_err().code, "meeting_cancelled");

    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM hub_events WHERE topic = $1 ORDER BY seq")
            .bind(format!("meeting:{id}"))
            .fetch_all(&server.state.db.pool)
            .await
            .unwrap();
    assert_eq!(kinds, ["meeting.updated", "meeting.cancelled"]);
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE target_type = 'meeting' AND target_id = $1 ORDER BY seq",
    )
    .bind(id.to_string())
    .fetch_all(&server.state.db.pool)
    .await
    .unwrap();
    assert_eq!(
        actions,
        ["meeting.schedule", "meeting.update", "meeting.cancel"]
    );
}

/// Subscribes to a topic over the hub with the client's bearer token and
/// returns the server's reply (`subscribed` or `error`).
async fn subscribe(client: &Client, topic: &str) -> Value {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let token = client.bearer_client("hub").await.bearer.unwrap();
    let url = client.base_url.replace("http://", "ws://") + "/ws";
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let subscribe = json!({"type": "subscribe", "id": "s1", "topic": topic});
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    loop {
        let frame = tokio::time::timeout(common::PATIENCE, ws.next())
            .await
            .expect("hub reply within the timeout")
            .unwrap()
            .unwrap();
        let Message::Text(text) = frame else { continue };
        let message: Value = serde_json::from_str(&text).unwrap();
        if message["id"] == "s1" {
            return message;
        }
    }
}

const MEETING_TABLES: [&str; 13] = [
    "meetings",
    "meeting_agenda_items",
    "meeting_participants",
    "meeting_attendance",
    "meeting_leave_requests",
    "meeting_excusals",
    "meeting_votes",
    "meeting_vote_candidates",
    "meeting_voters",
    "meeting_open_ballots",
    "meeting_secret_ballots",
    "meeting_minutes",
    "meeting_live_decisions",
];

async fn count_rows(store: &Store, table: &str) -> i64 {
    let mut conn = store.connect().await;
    let sql = format!("SELECT COUNT(*) FROM {table}");
    sqlx::query_scalar(&sql).fetch_one(&mut conn).await.unwrap()
}

/// Runs `dangwu backup` on a live store and `dangwu restore` into a fresh
/// store of `to`; returns the restored store.
async fn backup_and_restore(from: &Store, to: Backend) -> Store {
    let archive = tempfile::tempdir().unwrap();
    let out = archive.path().join("snapshot.tar.gz").display().to_string();
    let mut backup = vec!["backup".to_owned()];
    backup.extend(from.cli_args());
    backup.extend(["--out".to_owned(), out.clone()]);
    let args: Vec<&str> = backup.iter().map(String::as_str).collect();
    let (status, output) = common::run_dangwu(&args);
    assert!(status.success(), "backup: {output}");

    let target = Store::new(to).await;
    let mut restore = vec!["restore".to_owned()];
    restore.extend(target.cli_args());
    restore.extend(["--from".to_owned(), out]);
    let args: Vec<&str> = restore.iter().map(String::as_str).collect();
    let (status, output) = common::run_dangwu(&args);
    assert!(status.success(), "restore: {output}");
    target
}

/// Reads every cell of every table as text (NULL as None).
async fn dump_all(store: &Store) -> Vec<(String, Vec<(String, Option<String>)>)> {
    let mut conn = store.connect().await;
    let tables: Vec<String> = match store.backend {
        Backend::Sqlite => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap(),
        Backend::Postgres => sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap(),
    };
    assert!(tables.len() > 30, "tables found: {tables:?}");
    let mut rows = Vec::new();
    for table in tables {
        // Every column cast to text, so one decoder reads them all.
        let columns: Vec<String> = match store.backend {
            Backend::Sqlite => sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid"),
            Backend::Postgres => sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            ),
        }
        .bind(&table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        if columns.is_empty() {
            continue;
        }
        let select = columns
            .iter()
            .map(|c| match store.backend {
                // Blobs (the migration checksums) as hex, not as UTF-8.
                Backend::Sqlite => format!(
                    "CASE WHEN typeof(\"{c}\") = 'blob' THEN hex(\"{c}\") ELSE CAST(\"{c}\" AS TEXT) END AS \"{c}\""
                ),
                Backend::Postgres => format!("CAST(\"{c}\" AS TEXT) AS \"{c}\""),
            })
            .collect::<Vec<_>>()
            .join(", ");
        for row in sqlx::query(&format!("SELECT {select} FROM \"{table}\""))
            .fetch_all(&mut conn)
            .await
            .unwrap()
        {
            let cells = columns
                .iter()
                .map(|c| {
                    (
                        c.clone(),
                        row.try_get::<Option<String>, _>(c.as_str()).unwrap(),
                    )
                })
                .collect();
            rows.push((table.clone(), cells));
        }
    }
    rows
}

/// Returns whether a JSON value has a `choice` key anywhere.
fn has_choice_key(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| k == "choice" || has_choice_key(v)),
        Value::Array(items) => items.iter().any(has_choice_key),
        _ => false,
    }
}

async fn secret_ballot_unlinkable(backend: Backend) {
    let server = start(backend).await;
    let branch_id = server.org_id(BRANCH).await;
    let mut people = server.members_of(BRANCH).await;
    for number in 0..7 {
        people.push(server.add_member(BRANCH, number).await);
    }
    let voters: Vec<Person> = people.iter().filter(|p| p.full).cloned().collect();
    let probationary = people
        .iter()
        .find(|p| !p.full)
        .expect("a probationary member")
        .clone();
    assert_eq!(voters.len(), 12);
    let guest = server.members_of(OTHER_DISTRICT_BRANCH).await[3].clone();
    let city = server.login("qingchuan").await;
    let host = server.login("zhibu").await;
    let body = meeting_body(
        branch_id,
        "general_meeting",
        voters[0].member_id,
        voters[1].member_id,
        json!([{"member_id": guest.member_id}]),
    );
    let view = city
        .post("/api/meetings", body)
        .await
        .expect(StatusCode::CREATED);
    let id = view["meeting"]["id"].as_i64().unwrap();
    assert_eq!(view["quorum"]["required"], 12);

    // The host's arrival starts the meeting.
    server.join(id, &voters[0]).await;
    let view = host
        .get(&format!("/api/meetings/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["meeting"]["status"], "live");
    assert_eq!(view["can"]["run_votes"], true);

    // Exactly half present: no vote.
    for voter in &voters[1..6] {
        server.join(id, voter).await;
    }
    let motion = json!({"kind": "motion", "title": "表决年度工作总结", "ballot": "secret", "agenda_position": 1});
    let reply = host
        .post(&format!("/api/meetings/{id}/votes"), motion.clone())
        .await;
    reply.expect_error(StatusCode::CONFLICT, "not_quorate");

    // One more than half: the vote opens.
    server.join(id, &voters[6]).await;
    let vote = host
        .post(&format!("/api/meetings/{id}/votes"), motion)
        .await
        .expect(StatusCode::CREATED);
    let vote_id = vote["id"].as_i64().unwrap();
    assert_eq!(vote["pass_rule"], "two_thirds");
    for voter in &voters[7..] {
        server.join(id, voter).await;
    }
    server.join(id, &probationary).await;
    server.join(id, &guest).await;
    let ballot_path = format!("/api/meetings/{id}/votes/{vote_id}/ballot");

    // Neither a probationary member nor a guest votes; a member who is
    // not present cannot either.
    for person in [&probationary, &guest] {
        let client = server.login(&person.username).await;
        client
            .post(&ballot_path, json!({"choice": "for"}))
            .await
            .expect_error(StatusCode::FORBIDDEN, "not_a_voter");
    }

    // One person, several concurrent requests: exactly one ballot counts.
    let first = server.login(&voters[0].username).await;
    let attempts: Vec<_> = (0..6)
        .map(|_| {
            let client = first.clone();
            let path = ballot_path.clone();
            tokio::spawn(async move { client.post(&path, json!({"choice": "for"})).await })
        })
        .collect();
    let mut accepted = 0;
    for attempt in attempts {
        let reply = attempt.await.unwrap();
        if reply.status == StatusCode::OK {
            accepted += 1;
        } else {
            reply.expect_error(StatusCode::CONFLICT, "already_voted");
        }
    }
    assert_eq!(accepted, 1, "one of the concurrent ballots is accepted");

    // The rest vote in a known order: 4 for, 4 against, 4 abstain in all.
    let pattern = [
        "for", "for", "for", "against", "against", "against", "against", "abstain", "abstain",
        "abstain", "abstain",
    ];
    let mut cast_order = vec!["for".to_owned()];
    for (voter, choice) in voters[1..].iter().zip(pattern) {
        let client = server.login(&voter.username).await;
        let cast = client
            .post(&ballot_path, json!({"choice": choice}))
            .await
            .expect(StatusCode::OK);
        assert_eq!(cast["voted"], cast_order.len() as i64 + 1);
        cast_order.push(choice.to_owned());
    }

    // While open, only the number of ballots shows.
    let view = host
        .get(&format!("/api/meetings/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["votes"][0]["voted"], 12);
    assert_eq!(view["votes"][0]["result"], Value::Null);
    assert_eq!(view["votes"][0]["i_voted"], true);

    let closed = host
        .post_empty(&format!("/api/meetings/{id}/votes/{vote_id}/close"))
        .await
        .expect(StatusCode::OK);
    let result = &closed["result"];
    assert_eq!(result["kind"], "motion");
    assert_eq!(result["votes_for"], 4);
    assert_eq!(result["against"], 4);
    assert_eq!(result["abstain"], 4);
    assert_eq!(result["required"], 12);
    assert_eq!(result["outcome"], "failed");
    assert_eq!(closed["named"], json!([]), "a secret ballot names nobody");

    // Every row of every table: the ballots table contains only a key and
    // a choice, no other cell contains a choice, and no JSON carries one.
    // The demo seed's own votes (another branch) are open ballots, public
    // by design, and secret ballots of other votes.
    let rows = dump_all(&server.store).await;
    let choices = ["for", "against", "abstain"];
    let this_vote = Some(vote_id.to_string());
    let mut ballots = Vec::new();
    for (table, cells) in &rows {
        if table == "meeting_secret_ballots" {
            let names: Vec<&str> = cells.iter().map(|(c, _)| c.as_str()).collect();
            assert_eq!(names, ["vote_id", "ballot_key", "choice"], "ballot columns");
            if cells[0].1 == this_vote {
                ballots.push(cells[2].1.clone().unwrap());
            }
            continue;
        }
        if table == "meeting_open_ballots" {
            assert_ne!(
                cells[0].1, this_vote,
                "a secret ballot stored as open: {cells:?}"
            );
            continue;
        }
        for (column, value) in cells {
            let Some(value) = value else { continue };
            assert!(
                !choices.contains(&value.as_str()),
                "{table}.{column} holds a choice: {cells:?}"
            );
            if let Ok(json) = serde_json::from_str::<Value>(value) {
                assert!(
                    !has_choice_key(&json),
                    "{table}.{column} carries a choice: {value}"
                );
            }
        }
    }
    assert_eq!(ballots.len(), 12);
    let mut sorted_cast = cast_order.clone();
    sorted_cast.sort();
    let mut sorted_stored = ballots.clone();
    sorted_stored.sort();
    assert_eq!(sorted_stored, sorted_cast, "every ballot stored once");
    // A shuffle of 4+4+4 choices reproduces the casting order with
    // probability 1 in 34650.
    assert_ne!(ballots, cast_order, "stored order is the casting order");
    if backend == Backend::Postgres {
        let mut conn = server.store.connect().await;
        let xmins: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT xmin::text FROM meeting_secret_ballots WHERE vote_id = $1",
        )
        .bind(vote_id)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(
            xmins.len(),
            1,
            "every ballot rewritten by the closing transaction"
        );
    }

    // The audit trail names each voter once and nothing more; the hub
    // events carry counts only.
    let casts: Vec<(Option<i64>, String)> = sqlx::query_as(
        "SELECT actor_id, detail FROM audit_log WHERE action = 'meeting.vote_cast' ORDER BY seq",
    )
    .fetch_all(&server.state.db.pool)
    .await
    .unwrap();
    let voter_accounts: BTreeSet<i64> = casts.iter().filter_map(|(a, _)| *a).collect();
    assert_eq!(
        voter_accounts,
        voters.iter().map(|v| v.account_id).collect()
    );
    for (_, detail) in &casts {
        assert_eq!(
            serde_json::from_str::<Value>(detail).unwrap(),
            json!({"vote_id": vote_id})
        );
    }
    let cast_events: Vec<String> = sqlx::query_scalar(
        "SELECT data FROM hub_events WHERE topic = $1 AND kind = 'vote.cast' ORDER BY seq",
    )
    .bind(format!("meeting:{id}"))
    .fetch_all(&server.state.db.pool)
    .await
    .unwrap();
    assert_eq!(cast_events.len(), 12);
    for data in cast_events {
        let data: Value = serde_json::from_str(&data).unwrap();
        let keys: Vec<&String> = data.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["vote_id", "voted"]);
    }

    // A backup taken now restores into the other database with every
    // meeting row and every ballot.
    let other = match backend {
        Backend::Sqlite => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    };
    let restored = backup_and_restore(&server.store, other).await;
    for table in MEETING_TABLES {
        let restored_rows = count_rows(&restored, table).await;
        assert_eq!(
            restored_rows,
            count_rows(&server.store, table).await,
            "rows of {table}"
        );
    }
    let mut conn = restored.connect().await;
    let mut restored_ballots: Vec<String> =
        sqlx::query_scalar("SELECT choice FROM meeting_secret_ballots WHERE vote_id = $1")
            .bind(vote_id)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    restored_ballots.sort();
    assert_eq!(restored_ballots, sorted_cast);
}

async fn election_reports_tie_and_unfilled_seat(backend: Backend) {
    let server = start(backend).await;
    let branch_id = server.org_id(HEPING_SECOND).await;
    let people = server.members_of(HEPING_SECOND).await;
    let electors: Vec<Person> = people.iter().filter(|p| p.full).cloned().collect();
    assert_eq!(electors.len(), 5);
    let secretary_name = server.officer(HEPING_SECOND, "secretary").await;
    let host_person = electors
        .iter()
        .find(|p| p.username == secretary_name)
        .unwrap()
        .clone();
    let host = server.login(&secretary_name).await;
    let recorder = electors
        .iter()
        .find(|p| p.member_id != host_person.member_id)
        .unwrap();
    let body = meeting_body(
        branch_id,
        "general_meeting",
        host_person.member_id,
        recorder.member_id,
        json!([]),
    );
    let id = host
        .post("/api/meetings", body)
        .await
        .expect(StatusCode::CREATED)["meeting"]["id"]
        .as_i64()
        .unwrap();
    let candidates: Vec<i64> = electors[..3].iter().map(|p| p.member_id).collect();
    let election = json!({"kind": "election", "title": "选举支部委员", "ballot": "secret", "seats": 2,
        "candidates": candidates.iter().map(|m| json!({"member_id": m})).collect::<Vec<_>>()});

    // Exactly four fifths present: no election.
    server.join(id, &host_person).await;
    for person in electors
        .iter()
        .filter(|p| p.member_id != host_person.member_id)
        .take(3)
    {
        server.join(id, person).await;
    }
    let reply = host
        .post(&format!("/api/meetings/{id}/votes"), election.clone())
        .await;
    reply.expect_error(StatusCode::CONFLICT, "not_quorate");
    for person in &electors {
        server.join(id, person).await;
    }
    let vote = host
        .post(&format!("/api/meetings/{id}/votes"), election)
        .await
        .expect(StatusCode::CREATED);
    let vote_id = vote["id"].as_i64().unwrap();
    assert_eq!(vote["candidates"].as_array().unwrap().len(), 3);
    let path = format!("/api/meetings/{id}/votes/{vote_id}/ballot");

    // A ballot marking more names than seats is invalid.
    let first = server.login(&electors[0].username).await;
    let reply = first.post(&path, json!({"candidates": [0, 1, 2]})).await;
    assert_eq!(
        reply.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "candidates"
    );

    // Candidate 0 gets 4 votes, candidates 1 and 2 get 3 each.
    let marks = [
        json!([0, 1]),
        json!([0, 1]),
        json!([0, 2]),
        json!([0, 2]),
        json!([1, 2]),
    ];
    for (person, marked) in electors.iter().zip(marks) {
        let client = server.login(&person.username).await;
        client
            .post(&path, json!({"candidates": marked}))
            .await
            .expect(StatusCode::OK);
    }
    let closed = host
        .post_empty(&format!("/api/meetings/{id}/votes/{vote_id}/close"))
        .await
        .expect(StatusCode::OK);
    let result = &closed["result"];
    assert_eq!(result["kind"], "election");
    assert_eq!(result["electors"], 5);
    assert_eq!(result["outcome"], "elected");
    assert_eq!(result["unfilled_seats"], 1);
    let tally = result["candidates"].as_array().unwrap();
    assert_eq!(tally[0]["votes"], 4);
    assert_eq!(tally[0]["elected"], true);
    for tied in &tally[1..] {
        assert_eq!(tied["votes"], 3);
        assert_eq!(tied["elected"], false);
        assert_eq!(tied["tied"], true);
    }
}

async fn minutes_attendance_and_archive(backend: Backend) {
    let server = start(backend).await;
    let branch_id = server.org_id(BRANCH).await;
    let people = server.members_of(BRANCH).await;
    let (host_person, recorder_person) = (people[0].clone(), people[1].clone());
    let host = server.login(&host_person.username).await;
    let recorder = server.login(&recorder_person.username).await;
    let dangyuan = people
        .iter()
        .find(|p| p.username == "dangyuan")
        .unwrap()
        .clone();
    let member = server.login("dangyuan").await;
    let excused = people
        .iter()
        .rev()
        .find(|p| p.full && p.username != "dangyuan")
        .unwrap()
        .clone();
    let body = meeting_body(
        branch_id,
        "general_meeting",
        host_person.member_id,
        recorder_person.member_id,
        json!([]),
    );
    let id = host
        .post("/api/meetings", body)
        .await
        .expect(StatusCode::CREATED)["meeting"]["id"]
        .as_i64()
        .unwrap();

    // An excusal covering the meeting's date takes one member out of the
    // count; a plain member cannot record one.
    let today = chrono::Utc::now().date_naive();
    let excusal = json!({"member_id": excused.member_id, "reason": "长期病假",
        "starts_on": today.to_string(), "ends_on": (today + chrono::Days::new(30)).to_string()});
    member
        .post("/api/meeting-excusals", excusal.clone())
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    let mut backwards = excusal.clone();
    backwards["ends_on"] = json!((today - chrono::Days::new(1)).to_string());
    let reply = host.post("/api/meeting-excusals", backwards).await;
    let error = reply.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(error["field"], "ends_on");
    let full_count = people.iter().filter(|p| p.full).count() as i64;

    // A revoked excusal counts no more; a new one takes the member out.
    let first = host
        .post("/api/meeting-excusals", excusal.clone())
        .await
        .expect(StatusCode::CREATED);
    host.post_empty(&format!("/api/meeting-excusals/{}/revoke", first["id"]))
        .await
        .expect(StatusCode::NO_CONTENT);
    let view = host
        .get(&format!("/api/meetings/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["quorum"]["required"], full_count);
    host.post("/api/meeting-excusals", excusal)
        .await
        .expect(StatusCode::CREATED);
    let listed = host
        .get(&format!(
            "/api/meeting-excusals?member_id={}",
            excused.member_id
        ))
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(listed[0]["revoked_at"].is_null());
    assert!(listed[1]["revoked_at"].is_i64());
    let view = host
        .get(&format!("/api/meetings/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["quorum"]["required"], full_count - 1);
    let row = view["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["member_id"] == excused.member_id)
        .unwrap()
        .clone();
    assert_eq!(row["excused"], true);

    // A leave request, decided by the host.
    member
        .post(
            &format!("/api/meetings/{id}/leave"),
            json!({"reason": "出差"}),
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    let view = recorder
        .get(&format!("/api/meetings/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["leave_requests"][0]["reason"], "出差");
    let view = server
        .login(&excused.username)
        .await
        .get(&format!("/api/meetings/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        view["leave_requests"][0]["reason"],
        Value::Null,
        "reasons stay with those who decide"
    );
    for decider in [&host, &recorder] {
        let todo = decider.get("/api/todo").await.expect(StatusCode::OK);
        assert_eq!(todo["meeting_leave_pending"], 1, "{todo}");
    }
    member
        .post(
            &format!("/api/meetings/{id}/leave/{}/decision", dangyuan.member_id),
            json!({"approve": true}),
        )
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    host.post(
        &format!("/api/meetings/{id}/leave/{}/decision", dangyuan.member_id),
        json!({"approve": true}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let todo = recorder.get("/api/todo").await.expect(StatusCode::OK);
    assert_eq!(todo["meeting_leave_pending"], 0, "{todo}");
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM hub_events WHERE topic = $1 AND kind LIKE 'meeting.leave_%' ORDER BY seq",
    )
    .bind(format!("user:{}", recorder_person.account_id))
    .fetch_all(&server.state.db.pool)
    .await
    .unwrap();
    assert_eq!(kinds, ["meeting.leave_pending", "meeting.leave_settled"]);

    // Minutes wait for the start.
    let save = |text: &str, version: i64| json!({"body_html": format!("<p>{text}</p>"), "expected_version": version});
    recorder
        .put(&format!("/api/meetings/{id}/minutes"), save("草稿", 0))
        .await
        .expect_error(StatusCode::CONFLICT, "meeting_not_started");
    // The host opens a second tab and closes one: still in the room, one
    // attendance interval.
    server.join(id, &host_person).await;
    server.join(id, &host_person).await;
    server::meetings::left(&server.state, id, host_person.account_id)
        .await
        .unwrap();
    server.join(id, &recorder_person).await;
    let third = people
        .iter()
        .find(|p| {
            p.full
                && p.member_id != host_person.member_id
                && p.member_id != recorder_person.member_id
                && p.member_id != dangyuan.member_id
                && p.member_id != excused.member_id
        })
        .unwrap()
        .clone();
    // The third member is in the room in person; the recorder marks them.
    recorder
        .put(
            &format!("/api/meetings/{id}/attendance/{}", third.member_id),
            json!({"present": true}),
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    let view = host
        .get(&format!("/api/meetings/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["quorum"]["present"], 3);

    // A stale save is rejected and loses nothing.
    let saved = recorder
        .put(&format!("/api/meetings/{id}/minutes"), save("第一版", 0))
        .await
        .expect(StatusCode::OK);
    assert_eq!(saved["version"], 1);
    recorder
        .put(
            &format!("/api/meetings/{id}/minutes"),
            save("另一窗口的旧稿", 0),
        )
        .await
        .expect_error(StatusCode::CONFLICT, "minutes_conflict");
    member
        .put(&format!("/api/meetings/{id}/minutes"), save("冒名", 1))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    let view = member
        .get(&format!("/api/meetings/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["minutes"]["body_html"], "<p>第一版</p>");
    assert_eq!(view["minutes"]["version"], 1);
    recorder
        .put(&format!("/api/meetings/{id}/minutes"), save("第二版", 1))
        .await
        .expect(StatusCode::OK);

    // An open ballot that is still open when the meeting ends closes with
    // it; the recorder has left by then, so it closes without quorum.
    let motion = json!({"kind": "motion", "title": "通过学习计划", "ballot": "open"});
    let vote = host
        .post(&format!("/api/meetings/{id}/votes"), motion)
        .await
        .expect(StatusCode::CREATED);
    let ballot_path = format!("/api/meetings/{id}/votes/{}/ballot", vote["id"]);
    let third_client = server.login(&third.username).await;
    for client in [&host, &recorder, &third_client] {
        client
            .post(&ballot_path, json!({"choice": "for"}))
            .await
            .expect(StatusCode::OK);
    }

    // Only the host ends the meeting; then the final statuses are fixed.
    let ended = server::meetings::end(&server.state, id, recorder_person.account_id).await;
    assert_eq!(ended.unwrap_err().code, "forbidden");
    server::meetings::left(&server.state, id, recorder_person.account_id)
        .await
        .unwrap();
    server::meetings::end(&server.state, id, host_person.account_id)
        .await
        .unwrap();
    let view = host
        .get(&format!("/api/meetings/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["meeting"]["status"], "ended");
    let status_of = |member_id: i64| {
        view["participants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["member_id"] == member_id)
            .unwrap()["final_status"]
            .clone()
    };
    assert_eq!(status_of(host_person.member_id), "present");
    assert_eq!(status_of(recorder_person.member_id), "present");
    assert_eq!(status_of(third.member_id), "present");
    assert_eq!(status_of(dangyuan.member_id), "on_leave");
    assert_eq!(status_of(excused.member_id), "absent");
    let vote = &view["votes"][0];
    assert_eq!(vote["status"], "closed");
    assert_eq!(vote["result"]["votes_for"], 3);
    assert_eq!(vote["result"]["present"], 2);
    assert_eq!(vote["result"]["outcome"], "no_quorum");
    let named: BTreeSet<i64> = vote["named"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["member_id"].as_i64().unwrap())
        .collect();
    let voted: BTreeSet<i64> = [&host_person, &recorder_person, &third]
        .iter()
        .map(|p| p.member_id)
        .collect();
    assert_eq!(named, voted, "an open ballot names its voters");
    assert!(
        vote["named"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["choice"] == "for")
    );

    // The host approves the version read; approved minutes are frozen.
    host.post(
        &format!("/api/meetings/{id}/minutes/approve"),
        json!({"version": 1}),
    )
    .await
    .expect_error(StatusCode::CONFLICT, "minutes_conflict");
    let approved = host
        .post(
            &format!("/api/meetings/{id}/minutes/approve"),
            json!({"version": 2}),
        )
        .await
        .expect(StatusCode::OK);
    assert!(approved["approved_at"].is_i64());
    recorder
        .put(&format!("/api/meetings/{id}/minutes"), save("第三版", 2))
        .await
        .expect_error(StatusCode::CONFLICT, "minutes_approved");

    // The archive counts the meeting under its kind; the record exports.
    let year = chrono::Utc::now().format("%Y").to_string();
    let archive = member
        .get(&format!(
            "/api/orgs/{branch_id}/meeting-archive?year={year}"
        ))
        .await
        .expect(StatusCode::OK);
    let general = archive["counts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "general_meeting")
        .unwrap();
    // The meeting starts tomorrow, which may fall in the next year.
    let held_this_year =
        chrono::DateTime::from_timestamp_millis(view["meeting"]["starts_at"].as_i64().unwrap())
            .unwrap()
            .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
            .format("%Y")
            .to_string()
            == year;
    assert_eq!(general["held"], i64::from(held_this_year));
    let record = member
        .get(&format!("/api/meetings/{id}/record"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(record["meeting"]["id"], id);
    assert_eq!(record["minutes"]["version"], 2);
    let intervals = record["intervals"].as_array().unwrap();
    let host_intervals = intervals
        .iter()
        .filter(|i| i["member_id"] == host_person.member_id)
        .count();
    assert_eq!(host_intervals, 1, "{intervals:?}");
    let recorder_intervals = intervals
        .iter()
        .filter(|i| i["member_id"] == recorder_person.member_id)
        .count();
    assert_eq!(recorder_intervals, 1, "{intervals:?}");
    assert!(
        intervals.iter().all(|i| i["left_at"].is_i64()),
        "closed at the end"
    );
    assert_eq!(record["leave_requests"][0]["status"], "approved");
}
