//! Membership work end to end on the demo province: a full development
//! pipeline from application to full member with steps rejected too early,
//! reminders of due steps and their escalation, and dues with arrears.

mod common;

use chrono::{Days, NaiveDate};
use common::{Backend, Client, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::serve::Server;

const BRANCH: &str = "东城区机关第一党支部";
const PARENT: &str = "青川市东城区委";

struct Running {
    base: String,
    state: server::state::AppState,
    _store: Store,
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
        _store: store,
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

    async fn scalar(&self, sql: &str, bind: &str) -> i64 {
        sqlx::query_scalar(sql)
            .bind(bind)
            .fetch_one(&self.state.db.pool)
            .await
            .unwrap()
    }

    async fn org_id(&self, name: &str) -> i64 {
        self.scalar("SELECT id FROM orgs WHERE name = $1", name)
            .await
    }

    async fn officer(&self, org: &str, role: &str) -> i64 {
        let org_id = self.org_id(org).await;
        sqlx::query_scalar("SELECT member_id FROM org_roles WHERE org_id = $1 AND role = $2")
            .bind(org_id)
            .bind(role)
            .fetch_one(&self.state.db.pool)
            .await
            .unwrap()
    }

    /// Stores a past 党员大会 of the organization with one closed motion
    /// and returns the vote's id.
    async fn past_vote(&self, org_id: i64, day: &str, outcome: &str) -> i64 {
        let host = self.officer(BRANCH, "secretary").await;
        let starts_at = NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .unwrap()
            .and_hms_opt(2, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        let pool = &self.state.db.pool;
        let meeting: i64 = sqlx::query_scalar(
            "INSERT INTO meetings (org_id, kind, title, starts_at, ends_at, place, online, host_member, \
             recorder_member, status, created_by, created_at, updated_at) \
             VALUES ($1, 'general_meeting', '支部党员大会', $2, $3, '', 0, $4, $4, 'ended', 1, $2, $2) RETURNING id",
        )
        .bind(org_id)
        .bind(starts_at)
        .bind(starts_at + 3_600_000)
        .bind(host)
        .fetch_one(pool)
        .await
        .unwrap();
        let result = json!({"kind": "motion", "votes_for": 5, "against": 0, "abstain": 0,
            "required": 5, "present": 5, "outcome": outcome});
        sqlx::query_scalar(
            "INSERT INTO meeting_votes (meeting_id, kind, title, ballot, pass_rule, seats, status, \
             opened_by, opened_at, closed_by, closed_at, result) \
             VALUES ($1, 'motion', '接收预备党员', 'open', 'majority', 1, 'closed', 1, $2, 1, $2, $3) \
             RETURNING id",
        )
        .bind(meeting)
        .bind(starts_at)
        .bind(result.to_string())
        .fetch_one(pool)
        .await
        .unwrap()
    }
}

fn today() -> NaiveDate {
    server::membership::today()
}

fn applicant(org_id: i64, applied_on: &str) -> Value {
    json!({
        "org_id": org_id, "name": "林晓雨", "gender": "female", "ethnicity": "汉族",
        "birth_date": "2000-05-01", "education": "大学本科", "phone": "13800001111",
        "id_number": common::next_id_number(), "applied_on": applied_on,
    })
}

async fn step(client: &Client, person: i64, body: Value) -> common::Reply {
    client
        .post(&format!("/api/membership/people/{person}/steps"), body)
        .await
}

fn message(reply: &common::Reply) -> String {
    reply.body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn full_pipeline(backend: Backend) {
    let running = start(backend).await;
    let zhibu = running.login("zhibu").await;
    let branch = running.org_id(BRANCH).await;
    let contact = running.officer(BRANCH, "propaganda_member").await;

    let person = zhibu
        .post("/api/membership/people", applicant(branch, "2022-01-10"))
        .await
        .expect(StatusCode::CREATED);
    let id = person["id"].as_i64().unwrap();
    assert_eq!(person["stage"], "applicant");
    assert_eq!(person["due"][0]["step"], "talk");
    assert_eq!(person["due"][0]["due_on"], "2022-02-10");

    for body in [
        json!({"step": "talk", "taken_on": "2022-02-05"}),
        json!({"step": "activist", "taken_on": "2022-03-01", "note": "党员推荐"}),
        json!({"step": "contacts", "taken_on": "2022-03-05", "contact_ids": [contact]}),
        json!({"step": "thought_report", "taken_on": "2022-06-01"}),
        json!({"step": "assessment", "taken_on": "2022-09-01"}),
    ] {
        step(&zhibu, id, body).await.expect(StatusCode::CREATED);
    }

    let early = step(
        &zhibu,
        id,
        json!({"step": "candidate", "taken_on": "2023-02-28"}),
    )
    .await;
    early.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert!(
        message(&early).contains("2023-03-01"),
        "{}",
        message(&early)
    );
    step(
        &zhibu,
        id,
        json!({"step": "candidate", "taken_on": "2023-03-01"}),
    )
    .await
    .expect(StatusCode::CREATED);

    step(
        &zhibu,
        id,
        json!({"step": "political_review", "taken_on": "2023-04-01"}),
    )
    .await
    .expect(StatusCode::CREATED);
    let short = step(
        &zhibu,
        id,
        json!({"step": "training", "taken_on": "2023-04-10", "training_days": 2, "training_hours": 16}),
    )
    .await;
    short.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    step(
        &zhibu,
        id,
        json!({"step": "training", "taken_on": "2023-04-10", "training_days": 3}),
    )
    .await
    .expect(StatusCode::CREATED);

    let failed_vote = running.past_vote(branch, "2023-05-10", "failed").await;
    let failed = step(
        &zhibu,
        id,
        json!({"step": "branch_meeting", "taken_on": "2023-05-10", "vote_id": failed_vote}),
    )
    .await;
    failed.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let vote = running.past_vote(branch, "2023-05-10", "passed").await;
    step(
        &zhibu,
        id,
        json!({"step": "branch_meeting", "taken_on": "2023-05-10", "vote_id": vote}),
    )
    .await
    .expect(StatusCode::CREATED);
    step(
        &zhibu,
        id,
        json!({"step": "reported", "taken_on": "2023-06-01"}),
    )
    .await
    .expect(StatusCode::CREATED);

    let late = step(
        &zhibu,
        id,
        json!({"step": "approval", "taken_on": "2023-10-01"}),
    )
    .await;
    late.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(late.body["error"]["field"], "reason");
    assert!(message(&late).contains("2023-09-01"), "{}", message(&late));
    let approved = step(
        &zhibu,
        id,
        json!({"step": "approval", "taken_on": "2023-10-01", "reason": "党委换届，审批会议推迟"}),
    )
    .await
    .expect(StatusCode::CREATED);
    assert_eq!(approved["stage"], "probationary");
    let member_id = approved["member_id"].as_i64().unwrap();
    let member = zhibu
        .get(&format!("/api/members/{member_id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(member["status"], "probationary");
    assert_eq!(member["joined_on"], "2023-05-10");
    let exception = approved["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|record| record["step"] == "approval")
        .unwrap()
        .clone();
    assert_eq!(exception["late_since"], "2023-09-01");
    assert_eq!(exception["exception_reason"], "党委换届，审批会议推迟");

    step(
        &zhibu,
        id,
        json!({"step": "oath", "taken_on": "2023-10-08"}),
    )
    .await
    .expect(StatusCode::CREATED);
    let early = step(
        &zhibu,
        id,
        json!({"step": "confirmation", "taken_on": "2024-05-09"}),
    )
    .await;
    early.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert!(
        message(&early).contains("2024-05-10"),
        "{}",
        message(&early)
    );
    let full = step(
        &zhibu,
        id,
        json!({"step": "confirmation", "taken_on": "2024-05-10"}),
    )
    .await
    .expect(StatusCode::CREATED);
    assert_eq!(full["stage"], "full");
    let member = zhibu
        .get(&format!("/api/members/{member_id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(member["status"], "full");

    let board = zhibu
        .get(&format!("/api/membership/orgs/{branch}/board"))
        .await
        .expect(StatusCode::OK);
    let full_column = board["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|column| column["stage"] == "full")
        .unwrap();
    assert_eq!(full_column["people"][0]["id"], id);

    let member_client = running.login("dangyuan").await;
    member_client
        .get(&format!("/api/membership/orgs/{branch}/board"))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
}

async fn under_age_applicant(backend: Backend) {
    let running = start(backend).await;
    let zhibu = running.login("zhibu").await;
    let branch = running.org_id(BRANCH).await;
    let mut body = applicant(branch, "2018-04-30");
    let reply = zhibu.post("/api/membership/people", body.clone()).await;
    reply.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(reply.body["error"]["field"], "applied_on");
    assert!(
        message(&reply).contains("2018-05-01"),
        "{}",
        message(&reply)
    );
    body["applied_on"] = json!("2018-05-01");
    zhibu
        .post("/api/membership/people", body)
        .await
        .expect(StatusCode::CREATED);
}

async fn reminders_escalate_to_parent(backend: Backend) {
    let running = start(backend).await;
    let zhibu = running.login("zhibu").await;
    let branch = running.org_id(BRANCH).await;
    let applied = today() - Days::new(40);
    let person = zhibu
        .post(
            "/api/membership/people",
            applicant(branch, &applied.to_string()),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = person["id"].as_i64().unwrap();

    let swept = server::membership::reminders::sweep(&running.state, today())
        .await
        .unwrap();
    assert_eq!(swept.reminded, 1);
    assert_eq!(swept.escalated, 1);
    let again = server::membership::reminders::sweep(&running.state, today())
        .await
        .unwrap();
    assert_eq!(again, Default::default());

    let organizer = running.officer(BRANCH, "organization_member").await;
    let parent_secretary = running.officer(PARENT, "secretary").await;
    for (member, prefix) in [(organizer, "发展党员提醒"), (parent_secretary, "逾期提醒")]
    {
        let titles: Vec<String> = sqlx::query_scalar(
            "SELECT n.title FROM notices n JOIN notice_recipients r ON r.notice_id = n.id \
             WHERE r.member_id = $1",
        )
        .bind(member)
        .fetch_all(&running.state.db.pool)
        .await
        .unwrap();
        assert!(
            titles.iter().any(|title| title.starts_with(prefix)),
            "member {member}: {titles:?}"
        );
    }

    let late = step(
        &zhibu,
        id,
        json!({"step": "talk", "taken_on": today().to_string()}),
    )
    .await;
    late.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    step(
        &zhibu,
        id,
        json!({"step": "talk", "taken_on": today().to_string(), "reason": "申请人外出培训"}),
    )
    .await
    .expect(StatusCode::CREATED);
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM membership_reminders WHERE person_id = $1 AND done_at IS NULL",
    )
    .bind(id)
    .fetch_one(&running.state.db.pool)
    .await
    .unwrap();
    assert_eq!(open, 0);
}

async fn dues_arrears_and_reminder(backend: Backend) {
    let running = start(backend).await;
    let zhibu = running.login("zhibu").await;
    let branch = running.org_id(BRANCH).await;
    let dangyuan = running.login("dangyuan").await;
    let member: i64 = dangyuan.account["member_id"].as_i64().unwrap();
    let current = server::membership::dues_rules::Month::of(today());
    let mut since = current;
    for _ in 0..5 {
        since = since.previous();
    }

    let dues = zhibu
        .put(
            &format!("/api/membership/dues/members/{member}"),
            json!({"kind": "salaried", "income_fen": 500_001, "since_month": since.to_string()}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(dues["monthly_fen"], 7_500);
    assert_eq!(dues["unpaid_months"].as_array().unwrap().len(), 5);
    assert_eq!(dues["arrears_fen"], 37_500);

    let reminded = server::membership::dues::sweep_dues(&running.state, today())
        .await
        .unwrap();
    assert_eq!(reminded, 1);
    let again = server::membership::dues::sweep_dues(&running.state, today())
        .await
        .unwrap();
    assert_eq!(again, 0);

    let payment =
        json!({"month": since.to_string(), "amount_fen": 7_500, "paid_on": today().to_string()});
    let path = format!("/api/membership/dues/members/{member}/payments");
    let paid = zhibu
        .post(&path, payment.clone())
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(paid["arrears_fen"], 30_000);
    zhibu
        .post(&path, payment)
        .await
        .expect_error(StatusCode::CONFLICT, "month_paid");

    let own = dangyuan
        .get(&format!("/api/membership/dues/members/{member}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(own["arrears_fen"], 30_000);
    dangyuan
        .post(
            &path,
            json!({"month": current.to_string(), "amount_fen": 7_500, "paid_on": today().to_string()}),
        )
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");

    let org = zhibu
        .get(&format!("/api/membership/dues/orgs/{branch}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(org["arrears_fen"], 30_000);
    assert_eq!(org["members_in_arrears"], 1);
}

on_both_backends!(
    full_pipeline,
    under_age_applicant,
    reminders_escalate_to_parent,
    dues_arrears_and_reminder,
);
