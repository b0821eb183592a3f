//! Membership work end to end on the demo province: a full development
//! pipeline from application to full member with steps rejected too early,
//! reminders of due steps and their escalation, dues with arrears, bulk
//! import of pipeline people, temporary branches of mobile members and
//! members whose relation moved out.

mod common;

use chrono::{Days, NaiveDate};
use common::{Backend, Client, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::serve::Server;

const BRANCH: &str = "东城区机关第一党支部";
const PARENT: &str = "青川市东城区委";
const RECEIVING: &str = "和平街道第二党支部";
const OTHER_DISTRICT: &str = "西城区教育系统党支部";

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

    /// Logs in as the account of an officer of the organization.
    async fn login_officer(&self, org: &str, role: &str) -> Client {
        let member = self.officer(org, role).await;
        self.login_member(member).await
    }

    /// Logs in as the demo account of a member.
    async fn login_member(&self, member: i64) -> Client {
        let username: String =
            sqlx::query_scalar("SELECT username FROM accounts WHERE member_id = $1")
                .bind(member)
                .fetch_one(&self.state.db.pool)
                .await
                .unwrap();
        self.login(&username).await
    }

    /// Lists the branch members who have no officer role.
    async fn plain_members(&self, org: &str) -> Vec<i64> {
        let org_id = self.org_id(org).await;
        sqlx::query_scalar(
            "SELECT id FROM members WHERE org_id = $1 \
             AND id NOT IN (SELECT member_id FROM org_roles) ORDER BY id",
        )
        .bind(org_id)
        .fetch_all(&self.state.db.pool)
        .await
        .unwrap()
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
    // The demo pipeline has overdue steps of its own.
    assert!(swept.reminded >= 1, "{swept:?}");
    assert!(swept.escalated >= 1, "{swept:?}");
    let claimed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM membership_reminders WHERE person_id = $1 AND step = 'talk' \
         AND reminded_at IS NOT NULL AND escalated_at IS NOT NULL",
    )
    .bind(id)
    .fetch_one(&running.state.db.pool)
    .await
    .unwrap();
    assert_eq!(claimed, 1);
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

    let organizer_client = running.login_officer(BRANCH, "organization_member").await;
    let todo_before = organizer_client
        .get("/api/todo")
        .await
        .expect(StatusCode::OK);
    let due_before = todo_before["membership_due"].as_i64().unwrap();
    assert!(due_before >= 1, "{todo_before}");
    let parent_client = running.login_officer(PARENT, "secretary").await;
    let parent_todo = parent_client.get("/api/todo").await.expect(StatusCode::OK);
    assert!(
        parent_todo["membership_due"].as_i64().unwrap() >= 1,
        "{parent_todo}"
    );

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
    let todo_after = organizer_client
        .get("/api/todo")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        todo_after["membership_due"].as_i64().unwrap(),
        due_before - 1
    );
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

async fn member_org(running: &Running, member: i64) -> i64 {
    sqlx::query_scalar("SELECT org_id FROM members WHERE id = $1")
        .bind(member)
        .fetch_one(&running.state.db.pool)
        .await
        .unwrap()
}

async fn transfer_accepted_and_expired(backend: Backend) {
    let running = start(backend).await;
    let zhibu = running.login("zhibu").await;
    let receiver = running.login_officer(RECEIVING, "secretary").await;
    let branch = running.org_id(BRANCH).await;
    let receiving = running.org_id(RECEIVING).await;
    let members = running.plain_members(BRANCH).await;
    let (moving, staying) = (members[0], members[1]);
    let paid = server::membership::dues_rules::Month::of(today()).to_string();
    let letter = |member: i64| {
        json!({"member_id": member, "to_org_id": receiving, "valid_days": 30,
            "dues_paid_until": paid, "reason": "工作调动"})
    };

    let destinations = zhibu
        .get("/api/membership/transfers/destinations")
        .await
        .expect(StatusCode::OK);
    assert!(
        destinations
            .as_array()
            .unwrap()
            .iter()
            .any(|org| org["id"] == receiving),
        "{destinations}"
    );
    running
        .login("dangyuan")
        .await
        .get("/api/membership/transfers/destinations")
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");

    let transfer = zhibu
        .post("/api/membership/transfers", letter(moving))
        .await
        .expect(StatusCode::CREATED);
    let id = transfer["id"].as_i64().unwrap();
    assert_eq!(transfer["status"], "pending");
    assert_eq!(transfer["dues_paid_until"], paid.as_str());
    zhibu
        .post("/api/membership/transfers", letter(moving))
        .await
        .expect_error(StatusCode::CONFLICT, "transfer_open");
    let outbox = zhibu
        .get("/api/membership/transfers?box=outbox")
        .await
        .expect(StatusCode::OK);
    assert_eq!(outbox[0]["id"], id);
    let inbox = receiver
        .get("/api/membership/transfers?box=inbox")
        .await
        .expect(StatusCode::OK);
    assert_eq!(inbox[0]["id"], id);
    assert_eq!(member_org(&running, moving).await, branch);

    zhibu
        .post_empty(&format!("/api/membership/transfers/{id}/accept"))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    let accepted = receiver
        .post_empty(&format!("/api/membership/transfers/{id}/accept"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["receipt_on"], today().to_string());
    assert_eq!(member_org(&running, moving).await, receiving);
    let seen = zhibu
        .get(&format!("/api/membership/transfers/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(seen["status"], "accepted");

    let lapsing = zhibu
        .post("/api/membership/transfers", letter(staying))
        .await
        .expect(StatusCode::CREATED);
    let lapsing = lapsing["id"].as_i64().unwrap();
    let yesterday = (today() - Days::new(1)).to_string();
    sqlx::query("UPDATE membership_transfers SET valid_until = $1 WHERE id = $2")
        .bind(&yesterday)
        .bind(lapsing)
        .execute(&running.state.db.pool)
        .await
        .unwrap();
    let late = receiver
        .post_empty(&format!("/api/membership/transfers/{lapsing}/accept"))
        .await;
    late.expect_error(StatusCode::CONFLICT, "transfer_expired");
    assert!(message(&late).contains(&yesterday), "{}", message(&late));
    let expired = zhibu
        .get(&format!("/api/membership/transfers/{lapsing}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(expired["status"], "expired");
    assert_eq!(member_org(&running, staying).await, branch);
    zhibu
        .post("/api/membership/transfers", letter(staying))
        .await
        .expect(StatusCode::CREATED);
}

/// Returns the branch's member total and the year's 转出 count.
async fn rolls(client: &Client, org_id: i64) -> (i64, i64) {
    let year = today().format("%Y");
    let stats = client
        .get(&format!("/api/membership/orgs/{org_id}/stats?year={year}"))
        .await
        .expect(StatusCode::OK);
    (
        count(&stats, "total", "党员总数"),
        count(&stats, "year", "转出"),
    )
}

async fn letter_file_between_deployments(backend: Backend) {
    let running = start(backend).await;
    let zhibu = running.login("zhibu").await;
    let branch = running.org_id(BRANCH).await;
    let member = running.plain_members(BRANCH).await[0];
    let paid = server::membership::dues_rules::Month::of(today()).to_string();
    // A year of unpaid dues, which the arrears stop counting once the
    // relation has moved out.
    let since = add_months_back(today(), 12);
    zhibu
        .put(
            &format!("/api/membership/dues/members/{member}"),
            json!({"kind": "fixed", "fixed_fen": 100, "since_month": since}),
        )
        .await
        .expect(StatusCode::OK);
    let (total_before, out_before) = rolls(&zhibu, branch).await;
    let arrears_before = zhibu
        .get(&format!("/api/membership/dues/orgs/{branch}"))
        .await
        .expect(StatusCode::OK);
    let transfer = zhibu
        .post(
            "/api/membership/transfers",
            json!({"member_id": member, "to_org_name": "北岭省机关党支部", "valid_days": 60,
                "dues_paid_until": paid, "reason": "调往外省工作"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = transfer["id"].as_i64().unwrap();
    let file = zhibu
        .get(&format!("/api/membership/transfers/{id}/letter"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(file["format"], "dangwu-transfer-letter/1");

    let other = common::TestServer::start(backend).await;
    let admin = other.sysadmin().await;
    let root = admin.create_org(None, "北岭省委", "committee").await;
    let target = admin
        .create_org(Some(root), "北岭省机关党支部", "branch")
        .await;
    let mut tampered = file.clone();
    tampered["content"] = json!(
        file["content"]
            .as_str()
            .unwrap()
            .replace("调往外省工作", "调往外省学习")
    );
    admin
        .post(
            "/api/membership/transfers/import",
            json!({"org_id": target, "file": tampered}),
        )
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let imported = admin
        .post(
            "/api/membership/transfers/import",
            json!({"org_id": target, "file": file}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(imported["transfer"]["status"], "accepted");
    let new_member = imported["transfer"]["member_id"].as_i64().unwrap();
    let record = admin
        .get(&format!("/api/members/{new_member}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(record["org_id"], target);
    admin
        .post(
            "/api/membership/transfers/import",
            json!({"org_id": target, "file": file}),
        )
        .await
        .expect_error(StatusCode::CONFLICT, "duplicate_id_number");

    let closed = zhibu
        .post(
            &format!("/api/membership/transfers/{id}/receipt"),
            imported["receipt"].clone(),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(closed["status"], "accepted");
    assert_eq!(closed["receipt_on"], today().to_string());
    other.stop().await;

    let record = zhibu
        .get(&format!("/api/members/{member}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(record["status"], "moved_out");
    zhibu
        .post(
            "/api/membership/transfers",
            json!({"member_id": member, "to_org_name": "北岭省机关党支部", "valid_days": 60,
                "dues_paid_until": paid, "reason": "再次转出"}),
        )
        .await
        .expect_error(StatusCode::CONFLICT, "member_moved_out");
    let payment = json!({"month": paid, "amount_fen": 100, "paid_on": today().to_string()});
    zhibu
        .post(
            &format!("/api/membership/dues/members/{member}/payments"),
            payment,
        )
        .await
        .expect_error(StatusCode::CONFLICT, "member_moved_out");
    assert_eq!(
        rolls(&zhibu, branch).await,
        (total_before - 1, out_before + 1)
    );
    let arrears = zhibu
        .get(&format!("/api/membership/dues/orgs/{branch}"))
        .await
        .expect(StatusCode::OK);
    let listed = |dues: &Value| {
        dues["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|line| line["member_id"] == member)
    };
    assert!(listed(&arrears_before));
    let own_arrears = arrears_before["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["member_id"] == member)
        .map(|line| line["arrears_fen"].as_i64().unwrap())
        .unwrap();
    assert!(own_arrears > 0);
    assert!(!listed(&arrears));
    assert_eq!(
        arrears["arrears_fen"].as_i64().unwrap(),
        arrears_before["arrears_fen"].as_i64().unwrap() - own_arrears
    );
    let timeline = zhibu
        .get(&format!("/api/membership/members/{member}/timeline"))
        .await
        .expect(StatusCode::OK);
    let kinds: Vec<&str> = timeline["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.last(), Some(&"moved_out"), "{timeline}");
    assert_eq!(timeline["status"], "moved_out");
    let study = zhibu
        .get(&format!("/api/learning/reports/orgs/{branch}"))
        .await
        .expect(StatusCode::OK);
    let studying = study["lines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|line| line["member_id"] == member);
    assert!(!studying, "a moved-out member has no learning target");
}

/// Returns the month `months` before the month of `day`, as `YYYY-MM`.
fn add_months_back(day: NaiveDate, months: u32) -> String {
    let mut month = server::membership::dues_rules::Month::of(day);
    for _ in 0..months {
        month = month.previous();
    }
    month.to_string()
}

fn person_body(org_id: i64, gender: &str, ethnicity: &str, birth: &str, status: &str) -> Value {
    json!({
        "org_id": org_id, "name": "统计样本", "gender": gender, "ethnicity": ethnicity,
        "birth_date": birth, "education": "大学本科", "joined_on": null, "status": status,
        "phone": "13800000000", "id_number": common::next_id_number(),
    })
}

fn count(stats: &Value, table: &str, label: &str) -> i64 {
    stats["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["table"] == table && row["label"] == label)
        .map(|row| row["count"].as_i64().unwrap())
        .unwrap_or(0)
}

async fn statistics_of_known_dataset(backend: Backend) {
    use chrono::Datelike;
    let server = common::TestServer::start(backend).await;
    let admin = server.sysadmin().await;
    let root = admin.create_org(None, "统计市委", "committee").await;
    let first = admin
        .create_org(Some(root), "统计第一党支部", "branch")
        .await;
    let second = admin
        .create_org(Some(root), "统计第二党支部", "branch")
        .await;
    let year = today().year();
    let dataset = [
        (
            first,
            "female",
            "汉族",
            format!("{}-06-01", year - 36),
            "full",
        ),
        (
            first,
            "male",
            "回族",
            format!("{}-12-31", year - 30),
            "full",
        ),
        (
            first,
            "male",
            "汉族",
            format!("{}-12-31", year - 31),
            "probationary",
        ),
        (
            second,
            "female",
            "汉族",
            format!("{}-01-01", year - 61),
            "full",
        ),
    ];
    let mut ids = Vec::new();
    for (org, gender, ethnicity, birth, status) in &dataset {
        let member = admin
            .post(
                "/api/members",
                person_body(*org, gender, ethnicity, birth, status),
            )
            .await
            .expect(StatusCode::CREATED);
        ids.push(member["id"].as_i64().unwrap());
    }
    let month = server::membership::dues_rules::Month::of(today()).to_string();
    let transfer = admin
        .post(
            "/api/membership/transfers",
            json!({"member_id": ids[0], "to_org_id": second, "valid_days": 10,
                "dues_paid_until": month, "reason": "岗位调整"}),
        )
        .await
        .expect(StatusCode::CREATED);
    admin
        .post_empty(&format!(
            "/api/membership/transfers/{}/accept",
            transfer["id"]
        ))
        .await
        .expect(StatusCode::OK);

    let stats = admin
        .get(&format!("/api/membership/orgs/{root}/stats?year={year}"))
        .await
        .expect(StatusCode::OK);
    let expected = [
        ("total", "党员总数", 4),
        ("status", "full", 3),
        ("status", "probationary", 1),
        ("gender", "female", 2),
        ("gender", "male", 2),
        ("ethnicity", "汉族", 3),
        ("ethnicity", "回族", 1),
        ("age", "30岁及以下", 1),
        ("age", "31至35岁", 1),
        ("age", "36至40岁", 1),
        ("age", "61岁及以上", 1),
        ("education", "大学本科", 4),
        ("year", "发展党员", 0),
        ("year", "转入", 0),
        ("year", "转出", 0),
    ];
    for (table, label, value) in expected {
        assert_eq!(count(&stats, table, label), value, "{table} {label}");
    }
    let first_stats = admin
        .get(&format!("/api/membership/orgs/{first}/stats?year={year}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(count(&first_stats, "total", "党员总数"), 2);
    assert_eq!(count(&first_stats, "year", "转出"), 1);
    let second_stats = admin
        .get(&format!("/api/membership/orgs/{second}/stats?year={year}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(count(&second_stats, "year", "转入"), 1);

    let csv = admin
        .get(&format!(
            "/api/membership/orgs/{root}/stats?year={year}&format=csv"
        ))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    let text = csv.body.as_str().unwrap().to_owned();
    assert!(text.starts_with("table,label,count"), "{text}");
    assert!(text.contains("gender,female,2"), "{text}");
    let xlsx = admin
        .request(
            reqwest::Method::GET,
            &format!("/api/membership/orgs/{root}/stats?year={year}&format=xlsx"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(xlsx.status(), StatusCode::OK);
    let bytes = xlsx.bytes().await.unwrap();
    assert_eq!(&bytes[..2], b"PK");
    admin
        .get(&format!(
            "/api/membership/orgs/{root}/stats?year={}",
            year + 1
        ))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    server.stop().await;
}

async fn cadence_lists_laggards(backend: Backend) {
    use chrono::Datelike;
    let running = start(backend).await;
    let shengwei = running.login("shengwei").await;
    let branch = running.org_id(BRANCH).await;
    let root = running.org_id("江南省委").await;
    let year = today().year();
    let report = shengwei
        .get(&format!("/api/membership/orgs/{root}/cadence?year={year}"))
        .await
        .expect(StatusCode::OK);
    let line = |report: &Value, kind: &str| {
        report["orgs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|org| org["org_id"] == branch)
            .unwrap()["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|line| line["kind"] == kind)
            .unwrap()
            .clone()
    };
    let before = line(&report, "general_meeting");
    let elapsed = before["elapsed"].as_u64().unwrap() as usize;
    assert_eq!(before["missed"].as_array().unwrap().len(), elapsed);
    if elapsed > 0 {
        assert!(
            report["behind"]
                .as_array()
                .unwrap()
                .contains(&json!(branch))
        );
    }

    running
        .past_vote(branch, &format!("{year}-01-15"), "passed")
        .await;
    let report = shengwei
        .get(&format!("/api/membership/orgs/{root}/cadence?year={year}"))
        .await
        .expect(StatusCode::OK);
    let after = line(&report, "general_meeting");
    let missed = after["missed"].as_array().unwrap();
    assert!(!missed.contains(&json!(format!("{year}-Q1"))));
    assert_eq!(missed.len(), elapsed.saturating_sub(1));

    let member = running.login("dangyuan").await;
    member
        .get(&format!("/api/membership/orgs/{root}/cadence"))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
}

async fn mobile_member_pays_dues_at_host(backend: Backend) {
    let running = start(backend).await;
    let zhibu = running.login("zhibu").await;
    // The secretary of a branch in another district, who has no role above
    // the member's branch.
    let host = running.login_officer(OTHER_DISTRICT, "secretary").await;
    let receiving = running.org_id(OTHER_DISTRICT).await;
    let member = running.plain_members(BRANCH).await[0];
    let month = server::membership::dues_rules::Month::of(today()).to_string();
    let payment = json!({"month": month, "amount_fen": 100, "paid_on": today().to_string()});
    let path = format!("/api/membership/dues/members/{member}/payments");
    host.post(&path, payment.clone())
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");

    let registration = zhibu
        .post(
            "/api/membership/mobile",
            json!({"member_id": member, "host_org_id": receiving,
                "starts_on": today().to_string(), "reason": "外派驻点工作"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(registration["status"], "active");
    zhibu
        .post(
            "/api/membership/mobile",
            json!({"member_id": member, "host_org_id": receiving,
                "starts_on": today().to_string(), "reason": "重复登记"}),
        )
        .await
        .expect_error(StatusCode::CONFLICT, "mobile_registered");
    let listed = host
        .get("/api/membership/mobile")
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed[0]["member_id"], member);
    host.post(&path, payment.clone())
        .await
        .expect(StatusCode::CREATED);

    let id = registration["id"].as_i64().unwrap();
    let ended = zhibu
        .post_empty(&format!("/api/membership/mobile/{id}/end"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ended["status"], "ended");
    let next = json!({"month": "2020-01", "amount_fen": 100, "paid_on": today().to_string()});
    host.post(&path, next)
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
}

const IMPORT_HEADER: &str = "姓名,性别,民族,出生日期,学历,联系电话,身份证号,申请入党日期,谈话日期,\
确定积极分子日期,培养联系人,指定培养联系人日期,确定发展对象日期";

/// Formats one CSV row of the pipeline import.
fn import_row(name: &str, gender: &str, id_number: &str, dates: [&str; 6]) -> String {
    let [applied, talk, activist, contacts, contacts_on, candidate] = dates;
    format!(
        "{name},{gender},汉族,2000-05-01,大学本科,13800001111,{id_number},{applied},{talk},\
         {activist},{contacts},{contacts_on},{candidate}"
    )
}

async fn import_people(
    client: &Client,
    org_id: i64,
    format: &str,
    bytes: Vec<u8>,
) -> common::Reply {
    let path = format!("/api/membership/orgs/{org_id}/import?format={format}");
    client.send_raw(reqwest::Method::POST, &path, bytes).await
}

/// Returns a full member's name that no other member of the branch shares.
async fn unique_full_member(running: &Running, org: &str) -> String {
    let org_id = running.org_id(org).await;
    sqlx::query_scalar(
        "SELECT name FROM members WHERE org_id = $1 AND status = 'full' \
         AND name IN (SELECT name FROM members GROUP BY name HAVING COUNT(*) = 1) ORDER BY id",
    )
    .bind(org_id)
    .fetch_all(&running.state.db.pool)
    .await
    .unwrap()
    .remove(0)
}

async fn count_steps(running: &Running) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM membership_steps")
        .fetch_one(&running.state.db.pool)
        .await
        .unwrap()
}

async fn people_import_rejects_whole_file(backend: Backend) {
    let running = start(backend).await;
    let zhibu = running.login("zhibu").await;
    let branch = running.org_id(BRANCH).await;
    let contact = unique_full_member(&running, BRANCH).await;
    let before = count_steps(&running).await;
    let good = common::next_id_number();
    let no_steps = ["", "", "", "", "", ""];
    let rows = [
        import_row("林晓雨", "女", &good, ["2023-01-10", "", "", "", "", ""]),
        // The activist confirmation comes before the application and talk.
        import_row(
            "王立新",
            "男",
            &common::next_id_number(),
            ["2023-02-01", "2023-02-10", "2023-01-05", "", "", ""],
        ),
        import_row("周敏", "未知", &common::next_id_number(), no_steps),
        import_row("陈浩", "男", &good, ["2023-01-10", "", "", "", "", ""]),
        // Development candidate four months after becoming an activist.
        import_row(
            "刘洋",
            "男",
            &common::next_id_number(),
            [
                "2023-01-10",
                "2023-01-20",
                "2023-03-01",
                &contact,
                "2023-03-05",
                "2023-07-01",
            ],
        ),
    ];
    let sheet = format!("{IMPORT_HEADER}\n{}\n", rows.join("\n"));
    let report = import_people(&zhibu, branch, "csv", sheet.into_bytes())
        .await
        .expect(StatusCode::OK);
    assert_eq!(report["rows"], 5);
    assert_eq!(report["imported"], 0, "{report}");
    let rejected = report["rejected"].as_array().unwrap();
    let by_row = |row: i64| {
        rejected
            .iter()
            .find(|entry| entry["row"] == row)
            .unwrap_or_else(|| panic!("row {row} is reported: {report}"))
    };
    assert_eq!(rejected.len(), 4, "{report}");
    assert_eq!(by_row(3)["column"], "确定积极分子日期");
    assert!(
        by_row(3)["message"]
            .as_str()
            .unwrap()
            .contains("2023-02-10")
    );
    assert_eq!(by_row(4)["column"], "性别");
    assert_eq!(by_row(5)["column"], "身份证号");
    assert_eq!(by_row(6)["column"], "确定发展对象日期");
    assert!(
        by_row(6)["message"]
            .as_str()
            .unwrap()
            .contains("2024-03-01"),
        "{report}"
    );
    let people = running
        .scalar(
            "SELECT COUNT(*) FROM membership_people WHERE id_number = $1",
            &good,
        )
        .await;
    assert_eq!(people, 0, "the valid first row is not stored either");
    assert_eq!(count_steps(&running).await, before);

    let missing = "姓名,性别\n林晓雨,女\n".as_bytes().to_vec();
    let error = import_people(&zhibu, branch, "csv", missing).await;
    assert!(message(&error).contains("缺少列"), "{}", error.body);
    let member = running.login("dangyuan").await;
    let header = format!("{IMPORT_HEADER}\n").into_bytes();
    import_people(&member, branch, "csv", header)
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
}

async fn people_import_lands_every_stage(backend: Backend) {
    let running = start(backend).await;
    let zhibu = running.login("zhibu").await;
    let branch = running.org_id(BRANCH).await;
    let contact = unique_full_member(&running, BRANCH).await;

    let template = zhibu
        .request(
            reqwest::Method::GET,
            "/api/membership/import-template?format=xlsx",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(template.status(), StatusCode::OK);
    let template = template.bytes().await.unwrap().to_vec();
    let report = import_people(&zhibu, branch, "xlsx", template)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        report["imported"], 1,
        "the template's example row: {report}"
    );
    assert_eq!(report["stages"]["activist"], 1);

    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let rows = [
        import_row(
            "申请人甲",
            "女",
            &common::next_id_number(),
            ["2024-05-06", "", "", "", "", ""],
        ),
        import_row(
            "积极分子乙",
            "男",
            &common::next_id_number(),
            ["2023-04-01", "2023-04-20", "2023-06-01", "", "", ""],
        ),
        import_row(
            "发展对象丙",
            "女",
            &common::next_id_number(),
            [
                "2023-01-10",
                "2023-01-20",
                "2023-03-01",
                &contact,
                "2023-03-05",
                "2024-04-01",
            ],
        ),
    ];
    for (line, text) in std::iter::once(IMPORT_HEADER.to_owned())
        .chain(rows)
        .enumerate()
    {
        for (column, cell) in text.split(',').enumerate() {
            sheet
                .write_string(line as u32, column as u16, cell)
                .unwrap();
        }
    }
    let bytes = workbook.save_to_buffer().unwrap();
    let report = import_people(&zhibu, branch, "xlsx", bytes)
        .await
        .expect(StatusCode::OK);
    assert_eq!(report["imported"], 3, "{report}");
    assert_eq!(report["rejected"], json!([]));
    for stage in ["applicant", "activist", "candidate"] {
        assert_eq!(report["stages"][stage], 1, "{stage}: {report}");
    }

    let board = zhibu
        .get(&format!("/api/membership/orgs/{branch}/board"))
        .await
        .expect(StatusCode::OK);
    let find = |stage: &str, name: &str| {
        board["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|column| column["stage"] == stage)
            .and_then(|column| {
                column["people"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|person| person["name"] == name)
                    .cloned()
            })
            .unwrap_or_else(|| panic!("{name} is on the board as {stage}"))
    };
    find("applicant", "申请人甲");
    find("activist", "积极分子乙");
    let candidate = find("candidate", "发展对象丙");
    let detail = zhibu
        .get(&format!("/api/membership/people/{}", candidate["id"]))
        .await
        .expect(StatusCode::OK);
    let steps: Vec<&str> = detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["application", "talk", "activist", "contacts", "candidate"]
    );
    let contacts = &detail["steps"][3]["detail"]["contact_ids"];
    assert_eq!(contacts.as_array().unwrap().len(), 1);
    assert_eq!(detail["steps"][0]["detail"]["note"], "批量导入");
}

/// Registers the member with the host organization as a mobile member.
async fn register_mobile(client: &Client, member: i64, host: i64) -> Value {
    client
        .post(
            "/api/membership/mobile",
            json!({"member_id": member, "host_org_id": host,
                "starts_on": today().to_string(), "reason": "外派驻点工作"}),
        )
        .await
        .expect(StatusCode::CREATED)
}

async fn temporary_branch_limits_and_dissolution(backend: Backend) {
    let running = start(backend).await;
    let zhibu = running.login("zhibu").await;
    let host = running.login_officer(OTHER_DISTRICT, "secretary").await;
    let host_org = running.org_id(OTHER_DISTRICT).await;
    let mobile: Vec<i64> = running.plain_members(BRANCH).await[..3].to_vec();
    for member in &mobile[..2] {
        register_mobile(&zhibu, *member, host_org).await;
    }
    let ends_on = today() + Days::new(90);
    let form = |members: &[i64]| {
        json!({"host_org_id": host_org, "name": "西城区流动党员临时党支部",
            "member_ids": members, "leader_member_id": members[0],
            "ends_on": ends_on.to_string()})
    };
    let error = host
        .post("/api/membership/temporary-branches", form(&mobile[..2]))
        .await;
    assert_eq!(
        error.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "member_ids"
    );
    // The third member is not registered yet.
    host.post("/api/membership/temporary-branches", form(&mobile))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    register_mobile(&zhibu, mobile[2], host_org).await;
    zhibu
        .post("/api/membership/temporary-branches", form(&mobile))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    let branch = host
        .post("/api/membership/temporary-branches", form(&mobile))
        .await
        .expect(StatusCode::CREATED);
    let temporary = branch["org_id"].as_i64().unwrap();
    assert_eq!(branch["status"], "active");
    assert_eq!(branch["members"].as_array().unwrap().len(), 3);
    let org = host
        .get(&format!("/api/orgs/{temporary}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(org["kind"], "temporary_branch");
    assert_eq!(org["parent_id"], host_org);
    host.delete(&format!("/api/orgs/{temporary}"))
        .await
        .expect_error(StatusCode::CONFLICT, "temporary_branch");
    let reply = host
        .patch(&format!("/api/orgs/{temporary}"), json!({"kind": "group"}))
        .await;
    assert_eq!(
        reply.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "kind"
    );

    // No pipeline, dues or elections inside the temporary branch.
    let reply = host
        .post("/api/membership/people", applicant(temporary, "2024-01-10"))
        .await;
    reply.expect_error(StatusCode::CONFLICT, "temporary_branch_limit");
    assert!(message(&reply).contains("临时党支部不能发展党员"));
    let header = format!("{IMPORT_HEADER}\n").into_bytes();
    import_people(&host, temporary, "csv", header)
        .await
        .expect_error(StatusCode::CONFLICT, "temporary_branch_limit");
    host.get(&format!("/api/membership/dues/orgs/{temporary}"))
        .await
        .expect_error(StatusCode::CONFLICT, "temporary_branch_limit");
    let leader = running.login_member(mobile[0]).await;
    leader
        .get(&format!("/api/members/{}", mobile[1]))
        .await
        .expect(StatusCode::OK);
    let month = server::membership::dues_rules::Month::of(today()).to_string();
    let payment = json!({"month": month, "amount_fen": 100, "paid_on": today().to_string()});
    let reply = leader
        .post(
            &format!("/api/membership/dues/members/{}/payments", mobile[1]),
            payment,
        )
        .await;
    reply.expect_error(StatusCode::CONFLICT, "temporary_branch_limit");
    assert!(message(&reply).contains("临时党支部不收缴党费"));

    // The branch's members' meeting seats its mobile members as its body.
    let starts_at = chrono::Utc::now().timestamp_millis() + 86_400_000;
    let meeting = leader
        .post(
            "/api/meetings",
            json!({"org_id": temporary, "kind": "general_meeting", "title": "临时党支部党员大会",
                "starts_at": starts_at, "ends_at": starts_at + 3_600_000, "place": "驻点会议室",
                "online": false, "agenda": [{"title": "学习"}], "host_member": mobile[0],
                "recorder_member": mobile[1], "invitees": []}),
        )
        .await
        .expect(StatusCode::CREATED);
    let mut body: Vec<i64> = meeting["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|seat| seat["source"] == "body")
        .map(|seat| seat["member_id"].as_i64().unwrap())
        .collect();
    body.sort_unstable();
    assert_eq!(body, mobile);
    let study = leader
        .get(&format!("/api/learning/reports/orgs/{temporary}"))
        .await
        .expect(StatusCode::OK);
    let mut studying: Vec<i64> = study["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["member_id"].as_i64().unwrap())
        .collect();
    studying.sort_unstable();
    assert_eq!(studying, mobile);
    let meeting_id = meeting["meeting"]["id"].as_i64().unwrap();
    sqlx::query("UPDATE meetings SET status = 'live' WHERE id = $1")
        .bind(meeting_id)
        .execute(&running.state.db.pool)
        .await
        .unwrap();
    let reply = leader
        .post(
            &format!("/api/meetings/{meeting_id}/votes"),
            json!({"kind": "election", "title": "选举负责人", "ballot": "secret", "seats": 1,
                "candidates": [{"member_id": mobile[0]}, {"member_id": mobile[1]}]}),
        )
        .await;
    reply.expect_error(StatusCode::CONFLICT, "temporary_branch_limit");
    assert!(message(&reply).contains("临时党支部不能进行选举"));

    // The sweep dissolves it on its end date, not the day before.
    let dissolved =
        server::membership::temporary::dissolve_ended(&running.state, ends_on - Days::new(1))
            .await
            .unwrap();
    assert_eq!(dissolved, 0);
    let dissolved = server::membership::temporary::dissolve_ended(&running.state, ends_on)
        .await
        .unwrap();
    assert_eq!(dissolved, 1);
    let listed = host
        .get("/api/membership/temporary-branches")
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed[0]["status"], "dissolved");
    assert_eq!(listed[0]["members"], json!([]));
    leader
        .get(&format!("/api/members/{}", mobile[1]))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");

    // Formed again, and dissolved by hand.
    let again = host
        .post("/api/membership/temporary-branches", form(&mobile))
        .await
        .expect(StatusCode::CREATED);
    let path = format!(
        "/api/membership/temporary-branches/{}/dissolve",
        again["org_id"]
    );
    let dissolved = host.post_empty(&path).await.expect(StatusCode::OK);
    assert_eq!(dissolved["status"], "dissolved");
    host.post_empty(&path)
        .await
        .expect_error(StatusCode::CONFLICT, "temporary_branch_dissolved");
}

async fn host_officer_appointed_later_gets_access(backend: Backend) {
    let running = start(backend).await;
    let zhibu = running.login("zhibu").await;
    let host_org = running.org_id(OTHER_DISTRICT).await;
    let member = running.plain_members(BRANCH).await[0];
    let registration = register_mobile(&zhibu, member, host_org).await;

    let newcomer = running.plain_members(OTHER_DISTRICT).await[0];
    let officer = running.login_member(newcomer).await;
    let month = server::membership::dues_rules::Month::of(today()).to_string();
    let payment = json!({"month": month, "amount_fen": 100, "paid_on": today().to_string()});
    let path = format!("/api/membership/dues/members/{member}/payments");
    officer
        .post(&path, payment.clone())
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");

    let secadmin = running.login("secadmin").await;
    secadmin
        .assign_role(host_org, newcomer, "organization_member")
        .await;
    officer
        .post(&path, payment)
        .await
        .expect(StatusCode::CREATED);
    officer
        .get(&format!("/api/members/{member}"))
        .await
        .expect(StatusCode::OK);

    let id = registration["id"].as_i64().unwrap();
    zhibu
        .post_empty(&format!("/api/membership/mobile/{id}/end"))
        .await
        .expect(StatusCode::OK);
    let next = json!({"month": "2020-01", "amount_fen": 100, "paid_on": today().to_string()});
    officer
        .post(&path, next)
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
}

async fn plain_member_sees_only_own_records(backend: Backend) {
    let running = start(backend).await;
    let member = running.login("dangyuan").await;
    let own = member.account["member_id"].as_i64().unwrap();
    let branch = running.org_id(BRANCH).await;
    for path in [
        format!("/api/membership/orgs/{branch}/board"),
        format!("/api/membership/dues/orgs/{branch}"),
        format!("/api/membership/orgs/{branch}/stats"),
    ] {
        member
            .get(&path)
            .await
            .expect_error(StatusCode::FORBIDDEN, "forbidden");
    }
    member
        .post("/api/membership/people", applicant(branch, "2024-01-10"))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    member
        .get(&format!("/api/membership/dues/members/{own}"))
        .await
        .expect(StatusCode::OK);
    let timeline = member
        .get(&format!("/api/membership/members/{own}/timeline"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(timeline["member_id"], own);
    let other = running
        .plain_members(BRANCH)
        .await
        .into_iter()
        .find(|id| *id != own)
        .unwrap();
    member
        .get(&format!("/api/membership/members/{other}/timeline"))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
}

on_both_backends!(
    full_pipeline,
    under_age_applicant,
    reminders_escalate_to_parent,
    dues_arrears_and_reminder,
    transfer_accepted_and_expired,
    letter_file_between_deployments,
    statistics_of_known_dataset,
    cadence_lists_laggards,
    mobile_member_pays_dues_at_host,
    people_import_rejects_whole_file,
    people_import_lands_every_stage,
    temporary_branch_limits_and_dissolution,
    host_officer_appointed_later_gets_access,
    plain_member_sees_only_own_records,
);
