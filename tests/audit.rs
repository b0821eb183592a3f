//! The audit trail: every state change is recorded with actor, action,
//! target and client address, only the security auditor reads it, and
//! `dangwu audit verify` catches an edited, a deleted and a cut-off entry in
//! the stopped server's database.

mod common;

use common::{Backend, Client, MEMBER_PASSWORD, TestServer, run_dangwu};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Row;

on_both_backends!(every_change_recorded, auditor_only, verify_command);

/// One expected entry: actor name, action, target type and target id.
type Expected = (String, String, String, i64);

fn entry(actor: &str, action: &str, target: &str, id: i64) -> Expected {
    (actor.to_owned(), action.to_owned(), target.to_owned(), id)
}

async fn every_change_recorded(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut expected: Vec<Expected> = Vec::new();

    let admin = server.sysadmin().await;
    let secadmin = server.secadmin().await;
    let auditor = server.auditor().await;
    for client in [&admin, &secadmin, &auditor] {
        let name = client.account["username"].as_str().unwrap().to_owned();
        expected.push(entry(&name, "auth.login", "account", client.account_id()));
    }

    let root = admin.create_org(None, "省委", "committee").await;
    let city = admin.create_org(Some(root), "市委", "committee").await;
    let rename = json!({"name": "市委（新）"});
    admin
        .patch(&format!("/api/orgs/{city}"), rename)
        .await
        .expect(StatusCode::OK);
    let other = admin.create_org(Some(root), "另一市委", "committee").await;
    let branch = admin.create_org(Some(city), "支部", "branch").await;
    let move_to = json!({"parent_id": other});
    let moved = admin
        .post(&format!("/api/orgs/{branch}/move"), move_to)
        .await;
    moved.expect(StatusCode::OK);
    let empty = admin.create_org(Some(root), "待撤销", "committee").await;
    admin
        .delete(&format!("/api/orgs/{empty}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    expected.extend([
        entry("sysadmin", "org.create", "org", root),
        entry("sysadmin", "org.create", "org", city),
        entry("sysadmin", "org.update", "org", city),
        entry("sysadmin", "org.create", "org", other),
        entry("sysadmin", "org.create", "org", branch),
        entry("sysadmin", "org.move", "org", branch),
        entry("sysadmin", "org.create", "org", empty),
        entry("sysadmin", "org.dissolve", "org", empty),
    ]);

    let member = admin.create_member(branch, "周八").await;
    let phone = json!({"phone": "13911112222"});
    admin
        .patch(&format!("/api/members/{member}"), phone)
        .await
        .expect(StatusCode::OK);
    let account = admin.create_account_unchanged("zhouba", Some(member)).await;
    expected.extend([
        entry("sysadmin", "member.create", "member", member),
        entry("sysadmin", "member.update", "member", member),
        entry("sysadmin", "account.create", "account", account),
    ]);

    secadmin
        .assign_role(branch, member, "committee_member")
        .await;
    let role = format!("/api/orgs/{branch}/roles/{member}");
    secadmin.delete(&role).await.expect(StatusCode::NO_CONTENT);
    let clearance = json!({"clearance": "confidential"});
    let path = format!("/api/accounts/{account}/clearance");
    secadmin
        .put(&path, clearance)
        .await
        .expect(StatusCode::NO_CONTENT);
    let reveal = format!("/api/members/{member}/reveal-id");
    secadmin.post_empty(&reveal).await.expect(StatusCode::OK);
    expected.extend([
        entry("secadmin", "org.role.assign", "org", branch),
        entry("secadmin", "org.role.remove", "org", branch),
        entry("secadmin", "account.clearance", "account", account),
        entry("secadmin", "member.reveal_id_number", "member", member),
    ]);

    let user = server.login("zhouba", MEMBER_PASSWORD).await;
    let change = json!({"old_password": MEMBER_PASSWORD, "new_password": "Zhou-Pass-2026"});
    user.post("/api/auth/password", change)
        .await
        .expect(StatusCode::NO_CONTENT);
    user.bearer_client("calendar").await;
    user.post_empty("/api/auth/logout")
        .await
        .expect(StatusCode::NO_CONTENT);
    expected.extend([
        entry("zhouba", "auth.login", "account", account),
        entry("zhouba", "auth.password_change", "account", account),
        entry("zhouba", "auth.token_create", "account", account),
        entry("zhouba", "auth.logout", "account", account),
    ]);

    let path = format!("/api/accounts/{account}");
    for disabled in [true, false] {
        let body = json!({"disabled": disabled});
        admin
            .patch(&path, body)
            .await
            .expect(StatusCode::NO_CONTENT);
    }
    let reset = json!({"new_password": "Reset-Pass-2026"});
    let path = format!("/api/accounts/{account}/reset-password");
    admin
        .post(&path, reset)
        .await
        .expect(StatusCode::NO_CONTENT);
    expected.extend([
        entry("sysadmin", "account.update", "account", account),
        entry("sysadmin", "account.update", "account", account),
        entry("sysadmin", "account.reset_password", "account", account),
    ]);

    // Rejected requests leave no entry.
    let denied = user
        .patch(&format!("/api/orgs/{root}"), json!({"name": "x"}))
        .await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    let cycle = json!({"parent_id": other});
    let conflict = admin.post(&format!("/api/orgs/{root}/move"), cycle).await;
    conflict.expect_error(StatusCode::CONFLICT, "org_cycle");

    check_trail(&auditor, &expected).await;
}

/// Compares the whole trail after the first start's three built-in
/// accounts with `expected`, in order, and checks every entry's fields.
async fn check_trail(auditor: &Client, expected: &[Expected]) {
    let mut entries = auditor.audit_entries(None).await;
    entries.reverse();
    let (bootstrap, recorded) = entries.split_at(3);
    for entry in bootstrap {
        assert_eq!(entry["actor_name"], "system");
        assert_eq!(entry["action"], "account.create");
        assert_eq!(entry["client_addr"], "local");
    }

    let actual: Vec<Expected> = recorded
        .iter()
        .map(|e| {
            let text = |key: &str| e[key].as_str().unwrap_or("").to_owned();
            let id = text("target_id").parse().unwrap_or(-1);
            (text("actor_name"), text("action"), text("target_type"), id)
        })
        .collect();
    assert_eq!(actual, expected, "the trail lists every change in order");

    for (index, entry) in entries.iter().enumerate() {
        assert_eq!(
            entry["seq"],
            index as i64 + 1,
            "sequence numbers have no gaps"
        );
        assert!(
            entry["at"].as_i64().unwrap() > 0,
            "entry {index} has a time"
        );
        assert_eq!(
            entry["hash"].as_str().unwrap().len(),
            64,
            "entry {index} hash"
        );
        if index > 0 {
            assert_eq!(
                entry["prev_hash"],
                entries[index - 1]["hash"],
                "chain link {index}"
            );
        }
    }
    for entry in recorded {
        assert_eq!(
            entry["client_addr"], "127.0.0.1",
            "client address of {entry}"
        );
        assert!(entry["actor_id"].as_i64().is_some(), "actor id of {entry}");
    }
}

async fn auditor_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.sysadmin().await;
    let org = admin.create_org(None, "省委", "committee").await;
    let member = admin.create_member(org, "吴九").await;
    admin.create_account("wujiu", Some(member)).await;
    let secretary = server.login("wujiu", MEMBER_PASSWORD).await;
    server
        .secadmin()
        .await
        .assign_role(org, member, "secretary")
        .await;

    for (name, client) in [
        ("system administrator", admin),
        ("security administrator", server.secadmin().await),
        ("secretary", secretary),
    ] {
        for path in ["/api/audit", "/api/audit/verify"] {
            let reply = client.get(path).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{name} reads {path}");
            reply.expect_error(StatusCode::FORBIDDEN, "forbidden");
        }
    }
    let anonymous = server.anonymous().get("/api/audit").await;
    anonymous.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");

    let auditor = server.auditor().await;
    let page = auditor
        .get("/api/audit?limit=2")
        .await
        .expect(StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["limit"], 2);
    let total = page["total"].as_i64().unwrap();
    let verified = auditor
        .get("/api/audit/verify")
        .await
        .expect(StatusCode::OK);
    assert_eq!(verified["intact"], true);
    assert_eq!(verified["entries"], total);

    // The auditor reads the trail and nothing else.
    let orgs = auditor.get("/api/orgs").await.expect(StatusCode::OK);
    assert_eq!(orgs, json!([]), "the auditor sees no organization");
    let create = auditor
        .post("/api/orgs", json!({"name": "x", "kind": "committee"}))
        .await;
    create.expect_error(StatusCode::FORBIDDEN, "forbidden");
}

/// Runs `dangwu audit verify` on the store; returns success and output.
fn verify(store: &common::Store) -> (bool, String) {
    let mut args = vec!["audit".to_owned(), "verify".to_owned()];
    args.extend(store.cli_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, output) = run_dangwu(&args);
    (status.success(), output)
}

#[track_caller]
fn assert_intact(store: &common::Store, case: &str) {
    let (ok, output) = verify(store);
    assert!(ok, "{case}: verify should pass, output: {output}");
    assert!(output.contains("intact"), "{case}: {output}");
}

#[track_caller]
fn assert_broken(store: &common::Store, case: &str, names: &str) {
    let (ok, output) = verify(store);
    assert!(!ok, "{case}: verify should fail, output: {output}");
    assert!(
        output.contains(names),
        "{case}: output names {names:?}: {output}"
    );
}

async fn verify_command(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.sysadmin().await;
    let root = admin.create_org(None, "省委", "committee").await;
    for n in 0..6 {
        admin
            .create_org(Some(root), &format!("市委{n}"), "committee")
            .await;
    }
    let store = server.stop().await;
    let mut db = store.connect().await;
    let last: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM audit_log")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(last, 11, "3 built-in accounts, 1 login and 7 organizations");
    assert_intact(&store, "untouched trail");

    // An edited detail breaks that entry's hash.
    let detail: String = sqlx::query_scalar("SELECT detail FROM audit_log WHERE seq = 6")
        .fetch_one(&mut db)
        .await
        .unwrap();
    set_detail(&mut db, 6, r#"{"name":"伪造"}"#).await;
    assert_broken(&store, "edited detail", "entry 6:");
    set_detail(&mut db, 6, &detail).await;
    assert_intact(&store, "restored detail");

    // A deleted middle entry leaves a gap.
    let row = take_row(&mut db, 7).await;
    assert_broken(&store, "deleted middle entry", "entry 7 is missing");
    put_row(&mut db, &row).await;
    assert_intact(&store, "restored middle entry");

    // Cutting off the newest entries leaves an intact but shorter chain,
    // which the signed head still names.
    for seq in [last, last - 1] {
        take_row(&mut db, seq).await;
    }
    assert_broken(
        &store,
        "cut-off entries",
        &format!("head names entry {last}"),
    );

    // Moving the head back to the new newest entry breaks its signature.
    let new_last = last - 2;
    let hash: String = sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
        .bind(new_last)
        .fetch_one(&mut db)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(new_last)
        .bind(hash)
        .execute(&mut db)
        .await
        .unwrap();
    assert_broken(&store, "rewritten head", "head signature is invalid");
}

async fn set_detail(db: &mut sqlx::AnyConnection, seq: i64, detail: &str) {
    sqlx::query("UPDATE audit_log SET detail = $1 WHERE seq = $2")
        .bind(detail)
        .bind(seq)
        .execute(db)
        .await
        .unwrap();
}

/// One stored audit row, every column as text or integer.
struct AuditRow {
    integers: [Option<i64>; 3],
    texts: [String; 8],
}

const INTEGER_COLUMNS: [&str; 3] = ["seq", "at", "actor_id"];
const TEXT_COLUMNS: [&str; 8] = [
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "detail",
    "client_addr",
    "prev_hash",
    "hash",
];

/// Deletes one audit row and returns it.
async fn take_row(db: &mut sqlx::AnyConnection, seq: i64) -> AuditRow {
    let row = sqlx::query("SELECT * FROM audit_log WHERE seq = $1")
        .bind(seq)
        .fetch_one(&mut *db)
        .await
        .unwrap();
    let integers = INTEGER_COLUMNS.map(|column| row.try_get(column).unwrap());
    let texts = TEXT_COLUMNS.map(|column| row.try_get(column).unwrap());
    sqlx::query("DELETE FROM audit_log WHERE seq = $1")
        .bind(seq)
        .execute(&mut *db)
        .await
        .unwrap();
    AuditRow { integers, texts }
}

async fn put_row(db: &mut sqlx::AnyConnection, row: &AuditRow) {
    let columns = [INTEGER_COLUMNS.as_slice(), TEXT_COLUMNS.as_slice()].concat();
    let placeholders: Vec<String> = (1..=columns.len()).map(|n| format!("${n}")).collect();
    let insert = format!(
        "INSERT INTO audit_log ({}) VALUES ({})",
        columns.join(", "),
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&insert);
    for value in row.integers {
        query = query.bind(value);
    }
    for value in &row.texts {
        query = query.bind(value.as_str());
    }
    query.execute(db).await.unwrap();
}
