//! The organization tree over a real server: moving a subtree rewrites every
//! descendant's path, and the officers' scope follows the move.

mod common;

use common::{Backend, MEMBER_PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(move_subtree);

async fn move_subtree(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.sysadmin().await;
    let root = admin.create_org(None, "省委", "committee").await;
    let moved = admin.create_org(Some(root), "甲市委", "committee").await;
    let branch = admin.create_org(Some(moved), "甲支部", "branch").await;
    let group = admin.create_org(Some(branch), "第一党小组", "group").await;
    let target = admin.create_org(Some(root), "乙市委", "committee").await;
    let secretary = admin.create_member(target, "乙书记").await;
    server
        .secadmin()
        .await
        .assign_role(target, secretary, "secretary")
        .await;
    admin.create_account("yisj", Some(secretary)).await;
    let officer = server.login("yisj", MEMBER_PASSWORD).await;
    let before = officer.get(&format!("/api/orgs/{group}")).await;
    before.expect_error(StatusCode::FORBIDDEN, "forbidden");

    let body = json!({"parent_id": target});
    let reply = admin.post(&format!("/api/orgs/{moved}/move"), body).await;
    let reply = reply.expect(StatusCode::OK);
    assert_eq!(reply["parent_id"], target);

    let expected = [
        (moved, format!("/{root}/{target}/{moved}/")),
        (branch, format!("/{root}/{target}/{moved}/{branch}/")),
        (group, format!("/{root}/{target}/{moved}/{branch}/{group}/")),
    ];
    for (org, path) in expected {
        let body = admin
            .get(&format!("/api/orgs/{org}"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(body["path"], path.as_str(), "path of {org}");
    }
    let untouched = admin.get(&format!("/api/orgs/{target}")).await;
    assert_eq!(
        untouched.expect(StatusCode::OK)["path"],
        format!("/{root}/{target}/")
    );

    // The moved subtree is now inside the officer's scope.
    let after = officer.get(&format!("/api/orgs/{group}")).await;
    assert_eq!(after.expect(StatusCode::OK)["can_write"], true);

    // Once empty, the group can be dissolved, and then it is gone.
    let dissolved = officer.delete(&format!("/api/orgs/{group}")).await;
    dissolved.expect(StatusCode::NO_CONTENT);
    let gone = admin.get(&format!("/api/orgs/{group}")).await;
    gone.expect_error(StatusCode::NOT_FOUND, "not_found");
}
