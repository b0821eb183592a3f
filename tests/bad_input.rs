//! Bad input gets a clear 4xx in the documented shape
//! `{"error": {"code", "message", "field"}}` and changes nothing: the
//! organization tree, the members, the accounts and the audit trail read the
//! same before and after every rejected request.

mod common;

use common::{Backend, Client, TestServer, member_body, next_id_number};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    rejected_requests,
    english_messages,
    chinese_messages_keep_detail
);

/// The worked example of GB 11643-1999, whose check character is X.
const NUMBER_ENDING_IN_X: &str = "11010519491231002X";

/// The tree used by the cases: R (committee) > X (committee) > B (branch),
/// one member in B with [`NUMBER_ENDING_IN_X`], and one account.
struct Fixture {
    server: TestServer,
    admin: Client,
    secadmin: Client,
    auditor: Client,
    root: i64,
    committee: i64,
    branch: i64,
    member: i64,
}

impl Fixture {
    async fn build(backend: Backend) -> Self {
        let server = TestServer::start(backend).await;
        let admin = server.sysadmin().await;
        let secadmin = server.secadmin().await;
        let auditor = server.auditor().await;
        let root = admin.create_org(None, "省委", "committee").await;
        let committee = admin.create_org(Some(root), "市委", "committee").await;
        let branch = admin.create_org(Some(committee), "支部", "branch").await;
        let body = member_body(branch, "张三", NUMBER_ENDING_IN_X);
        let member = admin.post("/api/members", body).await;
        let member = member.expect(StatusCode::CREATED)["id"].as_i64().unwrap();
        admin.create_account("zhangsan", Some(member)).await;
        Self {
            server,
            admin,
            secadmin,
            auditor,
            root,
            committee,
            branch,
            member,
        }
    }

    /// Reads everything that a rejected request could have changed.
    async fn snapshot(&self) -> Vec<Value> {
        let members = format!("/api/orgs/{}/members?subtree=true&limit=200", self.root);
        vec![
            self.admin.get("/api/orgs").await.expect(StatusCode::OK),
            self.admin.get(&members).await.expect(StatusCode::OK),
            self.admin.get("/api/accounts").await.expect(StatusCode::OK),
            self.auditor
                .get("/api/audit?limit=1")
                .await
                .expect(StatusCode::OK)["total"]
                .clone(),
        ]
    }
}

/// The reply to one rejected request and the error expected in it.
struct Case {
    name: &'static str,
    reply: common::Reply,
    status: StatusCode,
    code: &'static str,
    field: Option<&'static str>,
}

fn case(
    name: &'static str,
    reply: common::Reply,
    status: StatusCode,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        name,
        reply,
        status,
        code,
        field,
    }
}

async fn rejected_requests(backend: Backend) {
    let fx = Fixture::build(backend).await;
    let before = fx.snapshot().await;
    let mut cases = Vec::new();
    cases.extend(syntax_cases(&fx).await);
    cases.extend(unknown_id_cases(&fx).await);
    cases.extend(rule_cases(&fx).await);
    cases.extend(session_cases(&fx).await);

    for case in &cases {
        let name = case.name;
        assert_eq!(
            case.reply.status, case.status,
            "{name}: status, body {}",
            case.reply.body
        );
        let error = case.reply.expect_error(case.status, case.code);
        match case.field {
            Some(field) => assert_eq!(error["field"], field, "{name}: field"),
            None => assert!(error.get("field").is_none(), "{name}: no field"),
        }
    }

    let after = fx.snapshot().await;
    assert_eq!(before, after, "rejected requests change nothing");
}

async fn syntax_cases(fx: &Fixture) -> Vec<Case> {
    let admin = &fx.admin;
    let valid_org = json!({"parent_id": fx.root, "name": "新市委", "kind": "committee"});
    let oversized_name = "党".repeat(400 * 1024);
    let oversized = json!({"parent_id": fx.root, "name": oversized_name, "kind": "committee"});
    let mut wrong_gender = member_body(fx.branch, "李四", &next_id_number());
    wrong_gender["gender"] = json!("robot");
    let mut missing_number = member_body(fx.branch, "李四", &next_id_number());
    missing_number.as_object_mut().unwrap().remove("id_number");
    let trailing = format!("{valid_org} x").into_bytes();
    let mut unknown_field = valid_org.clone();
    unknown_field["colour"] = json!("red");
    let text = admin
        .request(Method::POST, "/api/orgs")
        .header("Content-Type", "text/plain")
        .body(valid_org.to_string())
        .send()
        .await
        .unwrap();

    vec![
        case(
            "malformed JSON",
            admin
                .send_raw(Method::POST, "/api/orgs", b"{\"name\": ".to_vec())
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_json",
            None,
        ),
        case(
            "trailing garbage",
            admin.send_raw(Method::POST, "/api/orgs", trailing).await,
            StatusCode::BAD_REQUEST,
            "invalid_json",
            None,
        ),
        case(
            "string for an id",
            admin
                .post(
                    "/api/orgs",
                    json!({"parent_id": "seven", "name": "x", "kind": "committee"}),
                )
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("parent_id"),
        ),
        case(
            "number for a name",
            admin
                .patch(&format!("/api/orgs/{}", fx.committee), json!({"name": 5}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("name"),
        ),
        case(
            "unknown enum value",
            admin.post("/api/members", wrong_gender).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("gender"),
        ),
        case(
            "missing field",
            admin.post("/api/members", missing_number).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("id_number"),
        ),
        case(
            "missing kind",
            admin
                .post("/api/orgs", json!({"parent_id": fx.root, "name": "x"}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("kind"),
        ),
        case(
            "unknown field",
            admin.post("/api/orgs", unknown_field).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("colour"),
        ),
        case(
            "empty name",
            admin
                .post(
                    "/api/orgs",
                    json!({"parent_id": fx.root, "name": "  ", "kind": "committee"}),
                )
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("name"),
        ),
        case(
            "body over 1 MiB",
            admin.post("/api/orgs", oversized).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            None,
        ),
        case(
            "not JSON content type",
            common::Reply::read(text).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
        ),
    ]
}

async fn unknown_id_cases(fx: &Fixture) -> Vec<Case> {
    let admin = &fx.admin;
    let missing = 987_654;
    let committee = fx.committee;
    vec![
        case(
            "unknown organization",
            admin.get(&format!("/api/orgs/{missing}")).await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        case(
            "rename unknown organization",
            admin.patch(&format!("/api/orgs/{missing}"), json!({"name": "x"})).await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        case(
            "unknown parent",
            admin
                .post(
                    "/api/orgs",
                    json!({"parent_id": missing, "name": "x", "kind": "committee"}),
                )
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
            Some("parent_id"),
        ),
        case(
            "move under unknown parent",
            admin
                .post(&format!("/api/orgs/{committee}/move"), json!({"parent_id": missing}))
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
            Some("parent_id"),
        ),
        case(
            "unknown member",
            admin.get(&format!("/api/members/{missing}")).await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        case(
            "reveal unknown member",
            fx.secadmin.post_empty(&format!("/api/members/{missing}/reveal-id")).await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        case(
            "member in unknown organization",
            admin
                .post("/api/members", member_body(missing, "李四", &next_id_number()))
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
            Some("org_id"),
        ),
        case(
            "role for unknown member",
            fx.secadmin
                .put(
                    &format!("/api/orgs/{committee}/roles/{missing}"),
                    json!({"role": "committee_member"}),
                )
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
            Some("member_id"),
        ),
        case(
            "unknown account",
            admin.patch(&format!("/api/accounts/{missing}"), json!({"disabled": true})).await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        case(
            "account for unknown member",
            admin
                .post(
                    "/api/accounts",
                    json!({"username": "nobody", "display_name": "无名", "password": "Pass-2026x", "member_id": missing}),
                )
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
            Some("member_id"),
        ),
        case(
            "id that is not a number",
            admin.get("/api/orgs/abc").await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            None,
        ),
        case(
            "query value of the wrong type",
            admin
                .get(&format!("/api/orgs/{committee}/members?limit=many"))
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("limit"),
        ),
        case(
            "method the endpoint lacks",
            admin.delete("/api/auth/me").await,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            None,
        ),
        case(
            "unknown endpoint",
            admin.get("/api/no-such-thing").await,
            StatusCode::NOT_FOUND,
            "no_such_endpoint",
            None,
        ),
    ]
}

async fn rule_cases(fx: &Fixture) -> Vec<Case> {
    let admin = &fx.admin;
    let (root, committee, branch) = (fx.root, fx.committee, fx.branch);
    let mut bad_checksum = member_body(branch, "李四", "110105194912310021");
    bad_checksum["name"] = json!("李四");
    let duplicate_number = member_body(branch, "李四", &NUMBER_ENDING_IN_X.to_lowercase());
    let duplicate_username = json!({
        "username": "zhangsan", "display_name": "张三", "password": "Pass-2026x", "member_id": null,
    });
    let second_account = json!({
        "username": "zhangsan2", "display_name": "张三", "password": "Pass-2026x", "member_id": fx.member,
    });
    vec![
        case(
            "move under a descendant",
            admin
                .post(
                    &format!("/api/orgs/{committee}/move"),
                    json!({"parent_id": branch}),
                )
                .await,
            StatusCode::CONFLICT,
            "org_cycle",
            Some("parent_id"),
        ),
        case(
            "move under itself",
            admin
                .post(
                    &format!("/api/orgs/{committee}/move"),
                    json!({"parent_id": committee}),
                )
                .await,
            StatusCode::CONFLICT,
            "org_cycle",
            Some("parent_id"),
        ),
        case(
            "duplicate username",
            admin.post("/api/accounts", duplicate_username).await,
            StatusCode::CONFLICT,
            "duplicate_account",
            Some("username"),
        ),
        case(
            "second account for a member",
            admin.post("/api/accounts", second_account).await,
            StatusCode::CONFLICT,
            "duplicate_account",
            Some("member_id"),
        ),
        case(
            "duplicate identity number",
            admin.post("/api/members", duplicate_number).await,
            StatusCode::CONFLICT,
            "duplicate_id_number",
            Some("id_number"),
        ),
        case(
            "identity number with a wrong check digit",
            admin.post("/api/members", bad_checksum).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("id_number"),
        ),
        case(
            "party group under a committee",
            admin
                .post(
                    "/api/orgs",
                    json!({"parent_id": committee, "name": "小组", "kind": "group"}),
                )
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("kind"),
        ),
        case(
            "branch as a root",
            admin
                .post("/api/orgs", json!({"name": "支部", "kind": "branch"}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("kind"),
        ),
        case(
            "committee turned into a group under a committee",
            admin
                .patch(&format!("/api/orgs/{committee}"), json!({"kind": "group"}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("kind"),
        ),
        case(
            "dissolve organization with a child",
            admin.delete(&format!("/api/orgs/{committee}")).await,
            StatusCode::CONFLICT,
            "org_not_empty",
            None,
        ),
        case(
            "dissolve organization with a member",
            admin.delete(&format!("/api/orgs/{branch}")).await,
            StatusCode::CONFLICT,
            "org_not_empty",
            None,
        ),
        case(
            "dissolve root with children",
            admin.delete(&format!("/api/orgs/{root}")).await,
            StatusCode::CONFLICT,
            "org_not_empty",
            None,
        ),
    ]
}

async fn session_cases(fx: &Fixture) -> Vec<Case> {
    let valid_org = json!({"parent_id": fx.root, "name": "新市委", "kind": "committee"});
    let mut wrong_csrf = fx.admin.clone();
    wrong_csrf.csrf = Some("not-the-token".to_owned());
    let anonymous = fx.server.anonymous();
    vec![
        case(
            "missing CSRF token",
            fx.admin
                .without_csrf()
                .post("/api/orgs", valid_org.clone())
                .await,
            StatusCode::FORBIDDEN,
            "csrf_failed",
            None,
        ),
        case(
            "wrong CSRF token",
            wrong_csrf.post("/api/orgs", valid_org.clone()).await,
            StatusCode::FORBIDDEN,
            "csrf_failed",
            None,
        ),
        case(
            "anonymous read",
            anonymous.get("/api/orgs").await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            None,
        ),
        case(
            "anonymous write",
            anonymous.post("/api/orgs", valid_org).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            None,
        ),
        case(
            "unknown bearer token",
            anonymous
                .request(Method::GET, "/api/orgs")
                .bearer_auth("no-such-token")
                .send()
                .await
                .map(common::Reply::read)
                .unwrap()
                .await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            None,
        ),
    ]
}

async fn english_messages(backend: Backend) {
    let fx = Fixture::build(backend).await;
    let path = format!("/api/orgs/{}/move", fx.committee);
    let body = json!({"parent_id": fx.branch});

    let chinese = fx.admin.post(&path, body.clone()).await;
    let message = chinese.expect_error(StatusCode::CONFLICT, "org_cycle")["message"].clone();
    assert_eq!(
        message, "不能把组织移到它自身或它的下级组织之下",
        "Chinese by default"
    );

    let mut english = fx.admin.clone();
    english.language = Some("en-US,en;q=0.9".to_owned());
    let reply = english.post(&path, body).await;
    let message = reply.expect_error(StatusCode::CONFLICT, "org_cycle")["message"].clone();
    assert_eq!(
        message,
        "an organization cannot move under itself or one of its descendants"
    );

    let unknown = english.get("/api/orgs/987654").await;
    let message = unknown.expect_error(StatusCode::NOT_FOUND, "not_found")["message"].clone();
    assert_eq!(message, "organization 987654 not found");

    let anonymous = fx.server.anonymous();
    let reply = anonymous
        .request(Method::GET, "/api/orgs")
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap();
    let reply = common::Reply::read(reply).await;
    let message =
        reply.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")["message"].clone();
    assert_eq!(message, "log in first");
}

/// Sends raw bytes to an upload route.
async fn upload(client: &Client, path: &str, body: Vec<u8>) -> common::Reply {
    let request = client.request(Method::POST, path).body(body);
    common::Reply::read(request.send().await.expect("request reaches the server")).await
}

/// Parser and framework rejections get a Chinese message of the API's own,
/// and their English text moves to `detail`.
async fn chinese_messages_keep_detail(backend: Backend) {
    let fx = Fixture::build(backend).await;
    let admin = &fx.admin;
    let course = json!({"org_id": fx.branch, "title": "课程", "category": "required"});
    let mut unknown_field = course.clone();
    unknown_field["colour"] = json!("red");
    let mut wrong_variant = course.clone();
    wrong_variant["category"] = json!("mandatory");
    let oversized = vec![b'%'; 20 * 1024 * 1024 + 1];

    // (name, reply, status, code, field, message, text expected in detail)
    let cases = [
        (
            "malformed JSON",
            admin
                .send_raw(Method::POST, "/api/orgs", b"{\n\"name\": ".to_vec())
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_json",
            None,
            "请求体不是有效的 JSON，请检查第 2 行第 8 列附近",
            "EOF while parsing",
        ),
        (
            "string for an id",
            admin
                .post(
                    "/api/orgs",
                    json!({"parent_id": "seven", "name": "x", "kind": "committee"}),
                )
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("parent_id"),
            "取值类型不正确，应为整数",
            "invalid type: string \"seven\"",
        ),
        (
            "missing field",
            admin
                .post("/api/orgs", json!({"parent_id": fx.root, "name": "x"}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("kind"),
            "缺少必填项",
            "missing field `kind`",
        ),
        (
            "unknown field",
            admin.post("/api/learning/courses", unknown_field).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("colour"),
            "此接口不接受这一项，请删去",
            "unknown field `colour`",
        ),
        (
            "unknown enum value",
            admin.post("/api/learning/courses", wrong_variant).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("category"),
            "取值不在可选范围内",
            "unknown variant `mandatory`",
        ),
        (
            "id not a number",
            admin.get("/api/orgs/abc").await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            None,
            "请求地址或参数无效，请检查后重试",
            "abc",
        ),
        (
            "missing query parameter",
            upload(admin, "/api/files", b"%PDF-1.4\n".to_vec()).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("name"),
            "缺少必填的查询参数",
            "missing field `name`",
        ),
        (
            "query parameter not a number",
            admin
                .get(&format!("/api/learning/reports/orgs/{}?year=abc", fx.root))
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("year"),
            "查询参数无效，请检查后重试",
            "invalid digit",
        ),
        (
            "upload over the limit",
            upload(admin, "/api/files?name=big.pdf", oversized).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            None,
            "请求体或上传的文件超过了大小上限，请缩小后重试",
            "length limit exceeded",
        ),
    ];
    for (name, reply, status, code, field, message, detail) in &cases {
        let error = reply.expect_error(*status, code);
        assert_eq!(error["message"], *message, "{name}: message");
        let detail_text = error["detail"].as_str().unwrap_or_default();
        assert!(
            detail_text.contains(detail),
            "{name}: detail {detail_text:?}"
        );
        match field {
            Some(field) => assert_eq!(error["field"], *field, "{name}: field"),
            None => assert!(error.get("field").is_none(), "{name}: no field"),
        }
    }
}
