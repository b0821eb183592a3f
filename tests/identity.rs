//! Identity over a real server: login and logout, password change and
//! administrator reset ending sessions, disabled accounts, login throttling
//! that does not reveal whether an account exists, and bearer tokens.

mod common;

use common::{Backend, Client, MEMBER_PASSWORD, Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    login_and_logout,
    password_change,
    admin_reset,
    disabled_account,
    login_throttling,
    address_throttling,
    bearer_tokens,
);

/// Starts a server with one member account, `username`, and returns the
/// server, a system administrator session and the account id.
async fn server_with_member(backend: Backend, username: &str) -> (TestServer, Client, i64) {
    let server = TestServer::start(backend).await;
    let admin = server.sysadmin().await;
    let org = admin.create_org(None, "省委", "committee").await;
    let member = admin.create_member(org, "王五").await;
    let account = admin.create_account(username, Some(member)).await;
    (server, admin, account)
}

/// Attempts a login without keeping the session.
async fn try_login(server: &TestServer, username: &str, password: &str) -> Reply {
    server
        .anonymous()
        .post(
            "/api/auth/login",
            json!({"username": username, "password": password}),
        )
        .await
}

/// Returns the session cookie, value and attributes, of a login reply.
fn session_cookie(reply: &Reply) -> String {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("dangwu_session="))
        .expect("session cookie")
        .to_owned()
}

async fn login_and_logout(backend: Backend) {
    let server = TestServer::start(backend).await;

    let reply = try_login(&server, "sysadmin", common::ADMIN_PASSWORD).await;
    let cookie = session_cookie(&reply);
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let body = reply.expect(StatusCode::OK);
    assert_eq!(body["account"]["username"], "sysadmin");
    assert_eq!(body["account"]["system_role"], "system_admin");
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    assert!(csrf.len() >= 32, "CSRF token {csrf}");

    // Requests carry the cookie by hand, so that the same token is replayed
    // after logout instead of a cookie jar's cleared one.
    let session = cookie.split(';').next().unwrap().to_owned();
    let anonymous = server.anonymous();
    let with_cookie = |method: Method, path: &str| {
        anonymous
            .request(method, path)
            .header("Cookie", session.clone())
            .header("X-CSRF-Token", csrf.clone())
    };
    let me = with_cookie(Method::GET, "/api/auth/me")
        .send()
        .await
        .unwrap();
    let me = Reply::read(me).await.expect(StatusCode::OK);
    assert_eq!(me["account"]["username"], "sysadmin");
    assert_eq!(me["csrf_token"], csrf.as_str());

    let logout = with_cookie(Method::POST, "/api/auth/logout")
        .send()
        .await
        .unwrap();
    let logout = Reply::read(logout).await;
    let cleared = logout.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    logout.expect(StatusCode::NO_CONTENT);

    let replayed = with_cookie(Method::GET, "/api/auth/me")
        .send()
        .await
        .unwrap();
    let replayed = Reply::read(replayed).await;
    replayed.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
}

async fn password_change(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.sysadmin().await;
    let org = admin.create_org(None, "省委", "committee").await;
    let member = admin.create_member(org, "王五").await;
    admin.create_account_unchanged("wangwu", Some(member)).await;
    let first = server.login("wangwu", MEMBER_PASSWORD).await;
    let second = server.login("wangwu", MEMBER_PASSWORD).await;
    assert_eq!(
        first.account["must_change_password"], true,
        "new accounts must change"
    );
    // Until then, everything but the password change is refused.
    let blocked = first.get("/api/orgs").await;
    blocked.expect_error(StatusCode::FORBIDDEN, "password_change_required");

    let cases = [
        ("Wrong-Pass-1", "New-Pass-2026", "old_password"),
        (MEMBER_PASSWORD, "short", "new_password"),
        (MEMBER_PASSWORD, MEMBER_PASSWORD, "new_password"),
    ];
    for (old, new, field) in cases {
        let body = json!({"old_password": old, "new_password": new});
        let reply = first.post("/api/auth/password", body).await;
        let error = reply.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(error["field"], field, "rejected change {old} -> {new}");
    }
    second.get("/api/auth/me").await.expect(StatusCode::OK);

    let body = json!({"old_password": MEMBER_PASSWORD, "new_password": "New-Pass-2026"});
    first
        .post("/api/auth/password", body)
        .await
        .expect(StatusCode::NO_CONTENT);

    let me = first.get("/api/auth/me").await.expect(StatusCode::OK);
    assert_eq!(me["account"]["must_change_password"], false);
    first.get("/api/orgs").await.expect(StatusCode::OK);
    let other = second.get("/api/auth/me").await;
    other.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let old = try_login(&server, "wangwu", MEMBER_PASSWORD).await;
    old.expect_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    try_login(&server, "wangwu", "New-Pass-2026")
        .await
        .expect(StatusCode::OK);
}

async fn admin_reset(backend: Backend) {
    let (server, admin, account) = server_with_member(backend, "lisi").await;
    let user = server.login("lisi", MEMBER_PASSWORD).await;
    let body = json!({"old_password": MEMBER_PASSWORD, "new_password": "Own-Pass-2026"});
    user.post("/api/auth/password", body)
        .await
        .expect(StatusCode::NO_CONTENT);
    let bearer = user.bearer_client("script").await;
    bearer.get("/api/auth/me").await.expect(StatusCode::OK);

    let path = format!("/api/accounts/{account}/reset-password");
    let reset = json!({"new_password": "Reset-Pass-2026"});
    let by_secadmin = server.secadmin().await.post(&path, reset.clone()).await;
    by_secadmin.expect_error(StatusCode::FORBIDDEN, "forbidden");
    let weak = admin.post(&path, json!({"new_password": "weak"})).await;
    let error = weak.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(error["field"], "new_password");
    user.get("/api/auth/me").await.expect(StatusCode::OK);

    admin
        .post(&path, reset)
        .await
        .expect(StatusCode::NO_CONTENT);

    let cookie = user.get("/api/auth/me").await;
    cookie.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let token = bearer.get("/api/auth/me").await;
    token.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let old = try_login(&server, "lisi", "Own-Pass-2026").await;
    old.expect_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    let fresh = try_login(&server, "lisi", "Reset-Pass-2026").await;
    let fresh = fresh.expect(StatusCode::OK);
    assert_eq!(fresh["account"]["must_change_password"], true);
}

async fn disabled_account(backend: Backend) {
    let (server, admin, account) = server_with_member(backend, "zhaoliu").await;
    let user = server.login("zhaoliu", MEMBER_PASSWORD).await;
    let path = format!("/api/accounts/{account}");

    admin
        .patch(&path, json!({"disabled": true}))
        .await
        .expect(StatusCode::NO_CONTENT);

    let session = user.get("/api/auth/me").await;
    session.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let login = try_login(&server, "zhaoliu", MEMBER_PASSWORD).await;
    let wrong = try_login(&server, "zhaoliu", "Wrong-Pass-1").await;
    login.expect_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(
        login.body, wrong.body,
        "a disabled account looks like a wrong password"
    );

    admin
        .patch(&path, json!({"disabled": false}))
        .await
        .expect(StatusCode::NO_CONTENT);
    try_login(&server, "zhaoliu", MEMBER_PASSWORD)
        .await
        .expect(StatusCode::OK);

    let sysadmin_id = admin.account_id();
    let builtin = admin
        .patch(
            &format!("/api/accounts/{sysadmin_id}"),
            json!({"disabled": true}),
        )
        .await;
    builtin.expect_error(StatusCode::CONFLICT, "system_account");
}

/// Replaces digits, so that two lock messages compare equal even when the
/// minutes left differ by one.
fn without_digits(reply: &Reply) -> String {
    reply
        .body
        .to_string()
        .replace(|c: char| c.is_ascii_digit(), "#")
}

async fn login_throttling(backend: Backend) {
    let (server, _admin, _) = server_with_member(backend, "sunqi").await;

    // A successful login clears the account's failure count.
    for _ in 0..4 {
        try_login(&server, "sunqi", "Wrong-Pass-1").await;
    }
    try_login(&server, "sunqi", MEMBER_PASSWORD)
        .await
        .expect(StatusCode::OK);

    let mut existing = Vec::new();
    let mut missing = Vec::new();
    for _ in 0..5 {
        existing.push(try_login(&server, "sunqi", "Wrong-Pass-1").await);
        missing.push(try_login(&server, "ghost", "Wrong-Pass-1").await);
    }
    for (attempt, (known, unknown)) in existing.iter().zip(&missing).enumerate() {
        known.expect_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
        assert_eq!(
            known.body, unknown.body,
            "failure {attempt}: same reply for both"
        );
    }

    let locked = try_login(&server, "sunqi", MEMBER_PASSWORD).await;
    locked.expect_error(StatusCode::TOO_MANY_REQUESTS, "login_throttled");
    let locked_other_case = try_login(&server, "SUNQI", MEMBER_PASSWORD).await;
    locked_other_case.expect_error(StatusCode::TOO_MANY_REQUESTS, "login_throttled");
    let ghost = try_login(&server, "ghost", "Wrong-Pass-1").await;
    ghost.expect_error(StatusCode::TOO_MANY_REQUESTS, "login_throttled");
    assert_eq!(
        without_digits(&locked),
        without_digits(&ghost),
        "same lock reply for an existing and a missing account"
    );

    // Other accounts from the same address still log in.
    try_login(&server, "sysadmin", common::ADMIN_PASSWORD)
        .await
        .expect(StatusCode::OK);
}

async fn bearer_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.sysadmin().await;

    let anonymous = server
        .anonymous()
        .post("/api/auth/tokens", json!({"label": "x"}))
        .await;
    anonymous.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let empty = admin.post("/api/auth/tokens", json!({"label": " "})).await;
    let error = empty.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(error["field"], "label");

    let bearer = admin.bearer_client("import script").await;
    assert!(bearer.csrf.is_none());
    let me = bearer.get("/api/auth/me").await.expect(StatusCode::OK);
    assert_eq!(me["account"]["username"], "sysadmin");
    let created = bearer
        .post("/api/orgs", json!({"name": "省委", "kind": "committee"}))
        .await;
    created.expect(StatusCode::CREATED);

    // A bearer token is not a browser session, so it does not work as a cookie.
    let token = bearer.bearer.clone().unwrap();
    let as_cookie = server
        .anonymous()
        .request(Method::GET, "/api/auth/me")
        .header("Cookie", format!("dangwu_session={token}"))
        .send()
        .await
        .unwrap();
    let as_cookie = Reply::read(as_cookie).await;
    as_cookie.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");

    let auditor = server.auditor().await;
    let entries = auditor.audit_entries(Some("org")).await;
    let create = entries
        .iter()
        .find(|e| e["action"] == "org.create")
        .unwrap();
    assert_eq!(
        create["actor_name"], "sysadmin",
        "bearer changes are audited"
    );
}

async fn address_throttling(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.sysadmin().await;

    // Twenty failures from one address, spread over names that each stay
    // under the per-account limit, lock the address for every account.
    for attempt in 0..20 {
        let name = format!("guess{}", attempt % 5);
        let reply = try_login(&server, &name, "Wrong-Pass-1").await;
        reply.expect_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let locked = try_login(&server, "sysadmin", common::ADMIN_PASSWORD).await;
    locked.expect_error(StatusCode::TOO_MANY_REQUESTS, "login_throttled");

    // Sessions that exist already keep working.
    admin.get("/api/auth/me").await.expect(StatusCode::OK);
}
