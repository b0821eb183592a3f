//! The permission rule as a full matrix over a real server: every role ×
//! {own, ancestor, descendant, sibling, unrelated} × {read, write}, for
//! organizations and for member records, plus identity-number reveal and
//! role assignment.
//!
//! The tree built in each test:
//!
//! ```text
//! R 省委 (committee)            U 另一省委 (committee, unrelated root)
//! ├── X 市委 (committee)        the officer's and the plain member's own org
//! │   └── D 支部 (branch)        descendant
//! └── S 兄弟市委 (committee)     sibling
//! ```

mod common;

use common::{Backend, Client, MEMBER_PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    org_matrix,
    member_matrix,
    member_transfer_scope,
    object_grants,
    reveal_id,
    role_assignment
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Officer,
    Member,
    SystemAdmin,
    SecurityAdmin,
    SecurityAuditor,
}

const ROLES: [Role; 5] = [
    Role::Officer,
    Role::Member,
    Role::SystemAdmin,
    Role::SecurityAdmin,
    Role::SecurityAuditor,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Own,
    Ancestor,
    Descendant,
    Sibling,
    Unrelated,
}

const TARGETS: [Target; 5] = [
    Target::Own,
    Target::Ancestor,
    Target::Descendant,
    Target::Sibling,
    Target::Unrelated,
];

/// Expected access to organizations, in the order of [`TARGETS`]: "rw"
/// read and write, "r" read only, "" neither.
fn org_expectation(role: Role) -> [&'static str; 5] {
    match role {
        // Officers manage their organization and its descendants.
        Role::Officer => ["rw", "", "rw", "", ""],
        // Members read their own organization only.
        Role::Member => ["r", "", "", "", ""],
        // The system administrator manages the whole structure.
        Role::SystemAdmin => ["rw", "rw", "rw", "rw", "rw"],
        // The security administrator reads the whole tree.
        Role::SecurityAdmin => ["r", "r", "r", "r", "r"],
        // The security auditor reads only the audit trail.
        Role::SecurityAuditor => ["", "", "", "", ""],
    }
}

/// Expected access to the record of a member of each target organization,
/// in the order of [`TARGETS`]; the own-organization member is someone else.
fn member_expectation(role: Role) -> [&'static str; 5] {
    match role {
        Role::Officer => ["rw", "", "rw", "", ""],
        Role::Member => ["", "", "", "", ""],
        Role::SystemAdmin => ["rw", "rw", "rw", "rw", "rw"],
        Role::SecurityAdmin => ["r", "r", "r", "r", "r"],
        Role::SecurityAuditor => ["", "", "", "", ""],
    }
}

/// Expected access of the officer and the plain member to their own record.
fn own_record_expectation(role: Role) -> Option<&'static str> {
    match role {
        // The officer's own record lies inside the organization they manage.
        Role::Officer => Some("rw"),
        Role::Member => Some("r"),
        _ => None,
    }
}

/// The tree, one member in each organization, and a session per role.
struct World {
    server: TestServer,
    orgs: [i64; 5],
    members: [i64; 5],
    officer_member: i64,
    plain_member: i64,
    clients: Vec<(Role, Client)>,
}

impl World {
    async fn build(backend: Backend) -> Self {
        let server = TestServer::start(backend).await;
        let admin = server.sysadmin().await;
        let secadmin = server.secadmin().await;

        let root = admin.create_org(None, "省委", "committee").await;
        let own = admin.create_org(Some(root), "市委", "committee").await;
        let descendant = admin.create_org(Some(own), "第一支部", "branch").await;
        let sibling = admin.create_org(Some(root), "兄弟市委", "committee").await;
        let unrelated = admin.create_org(None, "另一省委", "committee").await;
        let orgs = [own, root, descendant, sibling, unrelated];

        let mut members = [0; 5];
        for (slot, org) in members.iter_mut().zip(orgs) {
            *slot = admin.create_member(org, "普通党员").await;
        }
        let officer_member = admin.create_member(own, "王书记").await;
        let plain_member = admin.create_member(own, "李党员").await;
        secadmin.assign_role(own, officer_member, "secretary").await;
        admin.create_account("officer", Some(officer_member)).await;
        admin.create_account("member", Some(plain_member)).await;

        let clients = vec![
            (
                Role::Officer,
                server.login("officer", MEMBER_PASSWORD).await,
            ),
            (Role::Member, server.login("member", MEMBER_PASSWORD).await),
            (Role::SystemAdmin, admin),
            (Role::SecurityAdmin, secadmin),
            (Role::SecurityAuditor, server.auditor().await),
        ];
        Self {
            server,
            orgs,
            members,
            officer_member,
            plain_member,
            clients,
        }
    }

    fn client(&self, role: Role) -> &Client {
        &self.clients.iter().find(|(r, _)| *r == role).unwrap().1
    }

    fn admin(&self) -> &Client {
        self.client(Role::SystemAdmin)
    }
}

async fn org_matrix(backend: Backend) {
    let world = World::build(backend).await;
    for role in ROLES {
        let client = world.client(role);
        let expected = org_expectation(role);
        for ((target, org), access) in TARGETS.into_iter().zip(world.orgs).zip(expected) {
            let case = format!("{role:?} on {target:?} organization");
            let may_read = access.contains('r');
            let may_write = access.contains('w');

            let read = client.get(&format!("/api/orgs/{org}")).await;
            if may_read {
                let body = read.expect(StatusCode::OK);
                assert_eq!(body["id"], org, "{case}: read returns the organization");
                assert_eq!(body["can_write"], may_write, "{case}: can_write flag");
            } else {
                read.expect_error(StatusCode::FORBIDDEN, "forbidden");
            }

            let before = world.admin().get(&format!("/api/orgs/{org}")).await;
            let before_name = before.expect(StatusCode::OK)["name"].clone();
            let new_name = format!("{role:?}-{target:?}");
            let write = client
                .patch(&format!("/api/orgs/{org}"), json!({"name": new_name}))
                .await;
            let after = world.admin().get(&format!("/api/orgs/{org}")).await;
            let after_name = after.expect(StatusCode::OK)["name"].clone();
            if may_write {
                assert_eq!(
                    write.expect(StatusCode::OK)["name"],
                    new_name,
                    "{case}: write"
                );
                assert_eq!(after_name, new_name, "{case}: rename is stored");
            } else {
                write.expect_error(StatusCode::FORBIDDEN, "forbidden");
                assert_eq!(
                    after_name, before_name,
                    "{case}: denied rename changes nothing"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_list_matches_matrix() {
    let world = World::build(Backend::Sqlite).await;
    for role in ROLES {
        let listed = world.client(role).get("/api/orgs").await;
        let listed = listed.expect(StatusCode::OK);
        let listed: Vec<i64> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|org| org["id"].as_i64().unwrap())
            .collect();
        let expected = org_expectation(role);
        for ((target, org), access) in TARGETS.into_iter().zip(world.orgs).zip(expected) {
            assert_eq!(
                listed.contains(&org),
                access.contains('r'),
                "{role:?}: listing of {target:?} organization"
            );
        }
    }
}

async fn member_matrix(backend: Backend) {
    let world = World::build(backend).await;
    for role in ROLES {
        let expected = member_expectation(role);
        let mut cases: Vec<(String, i64, &str)> = TARGETS
            .into_iter()
            .zip(world.members)
            .zip(expected)
            .map(|((target, member), access)| (format!("{target:?} member"), member, access))
            .collect();
        if let Some(access) = own_record_expectation(role) {
            let own = match role {
                Role::Officer => world.officer_member,
                _ => world.plain_member,
            };
            cases.push(("own record".to_owned(), own, access));
        }
        for (target, member, access) in cases {
            check_member_access(&world, role, &target, member, access).await;
        }
    }
}

async fn check_member_access(world: &World, role: Role, target: &str, member: i64, access: &str) {
    let case = format!("{role:?} on {target}");
    let client = world.client(role);
    let path = format!("/api/members/{member}");

    let read = client.get(&path).await;
    if access.contains('r') {
        let body = read.expect(StatusCode::OK);
        assert_eq!(body["id"], member, "{case}: read returns the member");
        let masked = body["id_number_masked"].as_str().unwrap();
        assert_eq!(masked.matches('*').count(), 16, "{case}: number is masked");
        assert!(body.get("id_number").is_none(), "{case}: no full number");
    } else {
        read.expect_error(StatusCode::FORBIDDEN, "forbidden");
    }

    let phone = format!("1390000{:04}", member % 10_000);
    let before = world.admin().get(&path).await.expect(StatusCode::OK);
    let write = client.patch(&path, json!({"phone": phone})).await;
    let after = world.admin().get(&path).await.expect(StatusCode::OK);
    if access.contains('w') {
        write.expect(StatusCode::OK);
        assert_eq!(after["phone"], phone, "{case}: change is stored");
    } else {
        write.expect_error(StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(after["phone"], before["phone"], "{case}: denied change");
    }
}

async fn reveal_id(backend: Backend) {
    let world = World::build(backend).await;
    let [own, ancestor, descendant, sibling, unrelated] = world.members;
    // Officers of the member's own organization (not of an ancestor) and the
    // security administrator may reveal; nobody else.
    let cases = [
        (Role::Officer, own, true),
        (Role::Officer, descendant, false),
        (Role::Officer, ancestor, false),
        (Role::Officer, sibling, false),
        (Role::Officer, unrelated, false),
        (Role::Member, own, false),
        (Role::Member, world.plain_member, false),
        (Role::SystemAdmin, own, false),
        (Role::SecurityAdmin, own, true),
        (Role::SecurityAdmin, unrelated, true),
        (Role::SecurityAuditor, own, false),
    ];
    let mut revealed = Vec::new();
    for (role, member, allowed) in cases {
        let case = format!("{role:?} reveals member {member}");
        let reply = world
            .client(role)
            .post_empty(&format!("/api/members/{member}/reveal-id"))
            .await;
        if allowed {
            let body = reply.expect(StatusCode::OK);
            let number = body["id_number"].as_str().unwrap_or("");
            assert_eq!(number.len(), 18, "{case}: full number");
            assert!(!number.contains('*'), "{case}: unmasked");
            let username = world.client(role).account["username"].clone();
            revealed.push((username, member.to_string()));
        } else {
            reply.expect_error(StatusCode::FORBIDDEN, "forbidden");
        }
    }

    let auditor = world.client(Role::SecurityAuditor);
    let entries = auditor.audit_entries(Some("member")).await;
    let mut logged: Vec<_> = entries
        .iter()
        .filter(|entry| entry["action"] == "member.reveal_id_number")
        .map(|entry| {
            (
                entry["actor_name"].clone(),
                entry["target_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    logged.reverse();
    assert_eq!(
        logged, revealed,
        "each reveal is audited, denied ones are not"
    );
    for entry in entries
        .iter()
        .filter(|e| e["action"] == "member.reveal_id_number")
    {
        let detail = entry["detail"].as_str().unwrap();
        assert!(!detail.contains("110105"), "audit detail holds no number");
    }
}

async fn role_assignment(backend: Backend) {
    let world = World::build(backend).await;
    let [own, _, descendant, sibling, _] = world.orgs;
    let [_, _, descendant_member, sibling_member, _] = world.members;
    let officer = world.client(Role::Officer);
    let role = json!({"role": "committee_member"});
    let put = |org: i64, member: i64| format!("/api/orgs/{org}/roles/{member}");

    // Nobody raises their own rights, not even inside their own subtree.
    let own_role = officer
        .put(&put(own, world.officer_member), role.clone())
        .await;
    own_role.expect_error(StatusCode::FORBIDDEN, "forbidden");
    let own_in_descendant = officer
        .put(&put(descendant, world.officer_member), role.clone())
        .await;
    own_in_descendant.expect_error(StatusCode::FORBIDDEN, "forbidden");

    // Officers assign inside their subtree only.
    let outside = officer
        .put(&put(sibling, sibling_member), role.clone())
        .await;
    outside.expect_error(StatusCode::FORBIDDEN, "forbidden");
    let inside = officer
        .put(&put(descendant, descendant_member), role.clone())
        .await;
    let holders = inside.expect(StatusCode::OK);
    assert_eq!(holders[0]["member_id"], descendant_member);
    let in_own = officer
        .put(&put(own, world.plain_member), role.clone())
        .await;
    in_own.expect(StatusCode::OK);

    // Of the system roles only the security administrator assigns roles.
    for denied in [Role::SystemAdmin, Role::SecurityAuditor, Role::Member] {
        let reply = world
            .client(denied)
            .put(&put(sibling, sibling_member), role.clone())
            .await;
        reply.expect_error(StatusCode::FORBIDDEN, "forbidden");
    }
    let by_secadmin = world
        .client(Role::SecurityAdmin)
        .put(&put(sibling, sibling_member), role.clone())
        .await;
    by_secadmin.expect(StatusCode::OK);

    // A second secretary is rejected until the first is removed.
    let second = world
        .client(Role::SecurityAdmin)
        .put(&put(own, world.plain_member), json!({"role": "secretary"}))
        .await;
    let error = second.expect_error(StatusCode::CONFLICT, "secretary_exists");
    assert_eq!(error["field"], "role");

    let roles = world.admin().get(&format!("/api/orgs/{own}/roles")).await;
    let roles = roles.expect(StatusCode::OK);
    let holders: Vec<(i64, &str)> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["member_id"].as_i64().unwrap(),
                h["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        holders,
        [
            (world.officer_member, "secretary"),
            (world.plain_member, "committee_member")
        ]
    );

    // The officer cannot remove their own role either, but may remove others'.
    let remove_own = officer.delete(&put(own, world.officer_member)).await;
    remove_own.expect_error(StatusCode::FORBIDDEN, "forbidden");
    let remove = officer.delete(&put(own, world.plain_member)).await;
    remove.expect(StatusCode::NO_CONTENT);

    let auditor = world.client(Role::SecurityAuditor);
    let entries = auditor.audit_entries(Some("org")).await;
    let assigned = entries
        .iter()
        .filter(|e| e["action"] == "org.role.assign" && e["actor_name"] == "officer")
        .count();
    assert_eq!(assigned, 2, "the officer's two assignments are audited");
    let removed = entries
        .iter()
        .filter(|e| e["action"] == "org.role.remove" && e["actor_name"] == "officer")
        .count();
    assert_eq!(removed, 1, "the removal is audited");
}

async fn member_transfer_scope(backend: Backend) {
    let world = World::build(backend).await;
    let [own, _, descendant, sibling, _] = world.orgs;
    let [own_member, ..] = world.members;
    let officer = world.client(Role::Officer);
    let path = format!("/api/members/{own_member}");

    // Moving a member out of the subtree needs write access to the target.
    let out = officer.patch(&path, json!({"org_id": sibling})).await;
    out.expect_error(StatusCode::FORBIDDEN, "forbidden");
    let stored = world.admin().get(&path).await.expect(StatusCode::OK);
    assert_eq!(stored["org_id"], own, "denied transfer leaves the member");

    let down = officer.patch(&path, json!({"org_id": descendant})).await;
    assert_eq!(down.expect(StatusCode::OK)["org_id"], descendant);
    let stored = world.admin().get(&path).await.expect(StatusCode::OK);
    assert_eq!(stored["org_id"], descendant, "transfer inside the subtree");
}

/// Stores a grant directly, as the features that create grants (approval
/// routes, meeting invitations, transfers) will.
async fn grant(world: &World, member: i64, object: (&str, i64), access: &str) {
    let mut db = world.server.store().connect().await;
    sqlx::query(
        "INSERT INTO grants (member_id, object_type, object_id, access, granted_by, created_at) \
         VALUES ($1, $2, $3, $4, NULL, 0)",
    )
    .bind(member)
    .bind(object.0)
    .bind(object.1)
    .bind(access)
    .execute(&mut db)
    .await
    .expect("insert grant");
}

async fn object_grants(backend: Backend) {
    let world = World::build(backend).await;
    let [_, _, _, sibling, unrelated] = world.orgs;
    let [.., unrelated_member] = world.members;
    let member = world.client(Role::Member);
    let sibling_path = format!("/api/orgs/{sibling}");
    let rename = json!({"name": "改名"});
    let child = world
        .admin()
        .create_org(Some(sibling), "兄弟支部", "branch")
        .await;

    // A read grant opens that one organization for reading only.
    grant(&world, world.plain_member, ("org", sibling), "read").await;
    let read = member.get(&sibling_path).await.expect(StatusCode::OK);
    assert_eq!(read["id"], sibling);
    let write = member.patch(&sibling_path, rename.clone()).await;
    write.expect_error(StatusCode::FORBIDDEN, "forbidden");
    // Grants cover one object, not its subtree.
    let below = member.get(&format!("/api/orgs/{child}")).await;
    below.expect_error(StatusCode::FORBIDDEN, "forbidden");
    let listed = member.get("/api/orgs").await.expect(StatusCode::OK);
    let ids: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["id"])
        .collect();
    assert!(
        ids.contains(&&json!(sibling)),
        "granted organization is listed"
    );
    assert!(!ids.contains(&&json!(unrelated)), "others stay hidden");

    // A write grant implies read and allows the change.
    grant(&world, world.plain_member, ("org", unrelated), "write").await;
    let path = format!("/api/orgs/{unrelated}");
    member.get(&path).await.expect(StatusCode::OK);
    member.patch(&path, rename).await.expect(StatusCode::OK);

    // Grants on member records work the same way.
    let record = format!("/api/members/{unrelated_member}");
    member
        .get(&record)
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    grant(
        &world,
        world.plain_member,
        ("member", unrelated_member),
        "read",
    )
    .await;
    member.get(&record).await.expect(StatusCode::OK);
}
