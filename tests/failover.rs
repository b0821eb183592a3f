//! Failover of a live meeting: three `dangwu serve` processes on loopback
//! share one PostgreSQL schema and one NATS server, a meeting runs on them
//! with real WebRTC peers, and a node with some of its participants is
//! killed with SIGKILL. The clients report the lost node, are sent to a
//! survivor, join there again and exchange media. What was acknowledged
//! before the kill holds after it: a cast ballot is counted, a host mute
//! still silences the person, and attendance keeps one interval with the
//! first arrival time. When the meeting spans several nodes, the survivors
//! close their relays from the dead node, relay the moved people's new
//! tracks, and the people on them keep receiving each other throughout. A
//! node that replies to the liveness request keeps its meeting.
//!
//! Needs PostgreSQL (see tests/common) and NATS with JetStream on
//! 127.0.0.1:4222, or the URL in `DANGWU_TEST_NATS`; `scripts/services`
//! starts both.

#[path = "server_process/cluster.rs"]
mod cluster;
mod common;
#[path = "meeting_media/peer.rs"]
mod peer;
#[path = "meeting_media/signal.rs"]
mod signal;

use std::sync::Arc;
use std::time::Duration;

use cluster::{Cluster, Session, Settings, gauge_reaches, login};
use common::{PATIENCE, Store};
use peer::Peer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use signal::{Signal, assert_stays, wait_until};
use tokio::time::Instant;

impl signal::Credentials for Session {
    fn auth_header(&self) -> (&'static str, String) {
        ("cookie", self.cookie.clone())
    }
}

/// Starts three nodes with the given media regions.
async fn start_cluster(regions: [Option<&'static str>; 3]) -> Cluster {
    Cluster::start(Settings {
        label: "failover",
        nats_url: cluster::nats_url(),
        regions,
    })
    .await
}

async fn send(
    method: reqwest::Method,
    url: String,
    session: &Session,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut builder = common::http_client()
        .request(method.clone(), &url)
        .header("cookie", &session.cookie)
        .header("x-csrf-token", &session.csrf);
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let response = builder
        .send()
        .await
        .unwrap_or_else(|error| panic!("{method} {url}: {error}"));
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(base: &str, session: &Session, path: &str) -> Value {
    let url = format!("{base}{path}");
    let (status, body) = send(reqwest::Method::GET, url, session, None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

async fn post(base: &str, session: &Session, path: &str, body: Value) -> Value {
    let url = format!("{base}{path}");
    let (status, body) = send(reqwest::Method::POST, url, session, Some(body)).await;
    assert!(status.is_success(), "POST {path}: {status} {body}");
    body
}

/// Waits until `peer` has received `more` video packets from `account`
/// beyond those it had at the call.
async fn wait_for_video(peer: &Arc<Peer>, account: i64, more: usize) {
    let from = peer.from(account).video;
    wait_until(
        &format!("{more} more video packets from account {account}"),
        || peer.from(account).video >= from + more,
    )
    .await;
}

/// Returns the node the server at `base` chooses for the meeting, after the
/// page reported `unreachable` when given.
async fn node_choice(
    base: &str,
    session: &Session,
    meeting_id: i64,
    unreachable: Option<&str>,
) -> Value {
    let query = unreachable.map_or(String::new(), |node| format!("?unreachable={node}"));
    get(
        base,
        session,
        &format!("/api/meetings/{meeting_id}/node{query}"),
    )
    .await
}

/// Finds a scheduled online demo meeting, its host's username and the
/// username of a voting participant other than the host.
async fn demo_meeting(store: &Store) -> (i64, String, String) {
    let mut conn = store.connect().await;
    let (meeting_id, host): (i64, String) = sqlx::query_as(
        "SELECT mt.id, a.username FROM meetings mt JOIN accounts a ON a.member_id = mt.host_member \
         WHERE mt.status = 'scheduled' AND mt.online = 1 ORDER BY mt.id LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .expect("a scheduled demo meeting");
    let voter: String = sqlx::query_scalar(
        "SELECT a.username FROM meeting_participants p JOIN accounts a ON a.member_id = p.member_id \
         JOIN meetings mt ON mt.id = p.meeting_id \
         WHERE p.meeting_id = $1 AND p.voting = 1 AND p.member_id <> mt.host_member \
         AND p.member_id <> mt.recorder_member ORDER BY p.member_id LIMIT 1",
    )
    .bind(meeting_id)
    .fetch_one(&mut conn)
    .await
    .expect("a voting participant with an account");
    (meeting_id, host, voter)
}

/// Reads the attendance intervals of an account: `(joined_at, left_at)`.
async fn attendance(store: &Store, meeting_id: i64, account_id: i64) -> Vec<(i64, Option<i64>)> {
    let mut conn = store.connect().await;
    sqlx::query_as(
        "SELECT at.joined_at, at.left_at FROM meeting_attendance at \
         JOIN accounts a ON a.member_id = at.member_id \
         WHERE at.meeting_id = $1 AND a.id = $2 ORDER BY at.id",
    )
    .bind(meeting_id)
    .bind(account_id)
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// Counts the media connection rows that a node holds.
async fn connections_of(store: &Store, node_id: &str) -> i64 {
    let mut conn = store.connect().await;
    sqlx::query_scalar("SELECT COUNT(*) FROM meeting_live_connections WHERE node_id = $1")
        .bind(node_id)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// Marks every voting participant present, so the meeting is quorate, and
/// opens an open-ballot motion; returns the vote id.
async fn open_vote(base: &str, host: &Session, store: &Store, meeting_id: i64) -> i64 {
    let mut conn = store.connect().await;
    let voters: Vec<i64> = sqlx::query_scalar(
        "SELECT member_id FROM meeting_participants WHERE meeting_id = $1 AND voting = 1",
    )
    .bind(meeting_id)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for member_id in voters {
        let url = format!("{base}/api/meetings/{meeting_id}/attendance/{member_id}");
        let (status, body) = send(
            reqwest::Method::PUT,
            url,
            host,
            Some(json!({"present": true})),
        )
        .await;
        assert!(
            status.is_success(),
            "mark {member_id} present: {status} {body}"
        );
    }
    let motion = json!({"kind": "motion", "title": "表决故障切换", "ballot": "open",
        "pass_rule": "majority"});
    let vote = post(
        base,
        host,
        &format!("/api/meetings/{meeting_id}/votes"),
        motion,
    )
    .await;
    vote["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_survives_node_kill() {
    let mut cluster = start_cluster([None; 3]).await;
    let (meeting_id, host_name, voter_name) = demo_meeting(&cluster.store).await;
    let host = login(cluster.base(0), &host_name).await;
    let voter = login(cluster.base(0), &voter_name).await;

    // Both go to the node that node 0 names, and meet there.
    let first = node_choice(cluster.base(0), &host, meeting_id, None).await;
    let lost_base = first["url"].as_str().unwrap().to_owned();
    let lost_id = first["node_id"].as_str().unwrap().to_owned();
    let lost = cluster.index_of(&lost_base);
    let host_signal = Signal::connect_to(&lost_base, &host).await;
    let host_peer = host_signal.enter(meeting_id, "join").await;
    let voter_signal = Signal::connect_to(&lost_base, &voter).await;
    let voter_peer = voter_signal.enter(meeting_id, "join").await;
    wait_for_video(&host_peer, voter.account_id, 30).await;
    wait_for_video(&voter_peer, host.account_id, 30).await;
    let arrival = attendance(&cluster.store, meeting_id, voter.account_id).await;
    assert_eq!(
        arrival.len(),
        1,
        "one interval before the kill: {arrival:?}"
    );
    assert_eq!(arrival[0].1, None, "{arrival:?}");

    // Acknowledged before the kill: a ballot and a host mute.
    let vote_id = open_vote(&lost_base, &host, &cluster.store, meeting_id).await;
    let ballot = json!({"choice": "for"});
    post(
        &lost_base,
        &voter,
        &format!("/api/meetings/{meeting_id}/votes/{vote_id}/ballot"),
        ballot,
    )
    .await;
    let mute = json!({"account_id": voter.account_id, "muted": true});
    post(
        &lost_base,
        &host,
        &format!("/api/meetings/{meeting_id}/live/mute"),
        mute,
    )
    .await;
    let audio_before = host_peer.from(voter.account_id).audio;
    wait_for_video(&host_peer, voter.account_id, 60).await;
    let muted_audio = host_peer.from(voter.account_id).audio - audio_before;
    // Packets on their way when the mute landed may still arrive.
    assert!(
        muted_audio < 10,
        "muted audio still flows: {muted_audio} packets"
    );

    let killed_at = Instant::now();
    cluster.kill(lost);
    wait_until("the hub sockets to close", || {
        host_signal.is_closed() && voter_signal.is_closed()
    })
    .await;
    host_peer.close().await;
    voter_peer.close().await;

    // Each page asks a different survivor, naming the node it lost. Both are
    // sent to one survivor at once, without waiting for the lease.
    let survivors: Vec<usize> = (0..3).filter(|index| *index != lost).collect();
    let host_choice = node_choice(
        cluster.base(survivors[0]),
        &host,
        meeting_id,
        Some(&lost_id),
    )
    .await;
    let voter_choice = node_choice(
        cluster.base(survivors[1]),
        &voter,
        meeting_id,
        Some(&lost_id),
    )
    .await;
    assert_ne!(host_choice["node_id"], lost_id.as_str(), "{host_choice}");
    assert_eq!(host_choice["node_id"], voter_choice["node_id"]);
    let next_base = host_choice["url"].as_str().unwrap().to_owned();

    let host_signal = Signal::connect_to(&next_base, &host).await;
    let host_peer = host_signal.enter(meeting_id, "join").await;
    let voter_signal = Signal::connect_to(&next_base, &voter).await;
    let voter_peer = voter_signal.enter(meeting_id, "join").await;
    wait_for_video(&host_peer, voter.account_id, 1).await;
    wait_for_video(&voter_peer, host.account_id, 1).await;
    eprintln!(
        "media flowed again {:?} after the kill",
        killed_at.elapsed()
    );

    // The host's mute still holds on the new node: the voter's video
    // arrives, its audio does not.
    wait_for_video(&host_peer, voter.account_id, 60).await;
    assert_eq!(
        host_peer.from(voter.account_id).audio,
        0,
        "the host's mute was lost in the move"
    );
    assert!(
        voter_peer.from(host.account_id).audio > 0,
        "the host's own audio still flows"
    );

    // The ballot cast before the kill is counted.
    let view = get(&next_base, &voter, &format!("/api/meetings/{meeting_id}")).await;
    let vote = view["votes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|vote| vote["id"] == vote_id)
        .unwrap_or_else(|| panic!("vote {vote_id} missing: {view}"));
    assert_eq!(vote["voted"], 1, "{vote}");
    assert_eq!(vote["i_voted"], true, "{vote}");
    let closed = post(
        &next_base,
        &host,
        &format!("/api/meetings/{meeting_id}/votes/{vote_id}/close"),
        json!({}),
    )
    .await;
    assert_eq!(closed["result"]["votes_for"], 1, "{closed}");

    // A survivor removes the dead node's connection rows once it is gone
    // past the grace period. The voter, back on a survivor, stays present
    // in one interval with the first arrival time.
    let deadline = Instant::now() + PATIENCE * 2;
    while connections_of(&cluster.store, &lost_id).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the connections of {lost_id} were never removed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let after = attendance(&cluster.store, meeting_id, voter.account_id).await;
    assert_eq!(after, arrival, "the move changed the voter's attendance");
    cluster.finish().await;
}

/// Finds a scheduled online demo meeting that people enter without the
/// lobby, its host and three other members of its branch, as (username,
/// account id). The host comes first, then a voting participant who is not
/// the recorder.
async fn meeting_with_people(store: &Store) -> (i64, Vec<(String, i64)>) {
    let mut conn = store.connect().await;
    let (meeting_id, org_id, host_member, recorder_member): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT id, org_id, host_member, recorder_member FROM meetings \
             WHERE status = 'scheduled' AND online = 1 AND locked = 0 ORDER BY id LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .expect("a scheduled online demo meeting");
    let people: Vec<(String, i64)> = sqlx::query_as(
        "SELECT a.username, a.id FROM accounts a JOIN members m ON m.id = a.member_id \
         WHERE m.org_id = $1 AND a.disabled = 0 AND a.must_change_password = 0 \
         ORDER BY CASE WHEN a.member_id = $2 THEN 0 \
         WHEN a.member_id <> $3 AND EXISTS (SELECT 1 FROM meeting_participants p \
         WHERE p.meeting_id = $4 AND p.member_id = a.member_id AND p.voting = 1) THEN 1 \
         ELSE 2 END, a.id LIMIT 4",
    )
    .bind(org_id)
    .bind(host_member)
    .bind(recorder_member)
    .bind(meeting_id)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(people.len(), 4, "the branch has a host and three members");
    (meeting_id, people)
}

/// One person in the meeting: the hub connection and the media peer.
struct Attendee {
    account_id: i64,
    signal: Arc<Signal>,
    peer: Arc<Peer>,
}

impl Attendee {
    /// Opens a hub connection to `base`, joins the meeting's media there
    /// and waits until the peer is connected.
    async fn join(base: &str, session: &Session, meeting_id: i64) -> Attendee {
        let signal = Signal::connect_to(base, session).await;
        let peer = signal.enter(meeting_id, "join").await;
        Attendee {
            account_id: session.account_id,
            signal,
            peer,
        }
    }

    /// Waits until the peer has received `more` video and `more` audio
    /// packets from each of the accounts beyond those it had at the call.
    async fn receives_from(&self, accounts: &[i64], more: usize) {
        let start: Vec<peer::Counts> = accounts.iter().map(|a| self.peer.from(*a)).collect();
        for (account, start) in accounts.iter().zip(start) {
            let what = format!(
                "{more} more video and audio packets from account {account} at account {}",
                self.account_id
            );
            wait_until(&what, || {
                let now = self.peer.from(*account);
                now.video >= start.video + more && now.audio >= start.audio + more
            })
            .await;
        }
    }

    /// Checks that the hub connection is open and the server never sent
    /// this person out of the meeting or reported another account as gone.
    fn assert_never_cut_off(&self, others: &[i64]) {
        assert!(
            !self.signal.is_closed(),
            "the hub connection of account {} closed",
            self.account_id
        );
        let left = self.signal.has(|message| message["type"] == "meeting_left");
        assert!(!left, "account {} was sent out", self.account_id);
        for other in others {
            let gone = self.signal.has(|message| {
                message["type"] == "meeting_participant_left" && message["account_id"] == *other
            });
            assert!(!gone, "account {} saw {other} leave", self.account_id);
        }
    }
}

/// Reads the accounts in a node's participant list of the meeting, sorted.
async fn listed_accounts(base: &str, session: &Session, meeting_id: i64) -> Vec<i64> {
    let snapshot = get(base, session, &format!("/api/meetings/{meeting_id}/live")).await;
    let mut listed: Vec<i64> = snapshot["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["account_id"].as_i64().unwrap())
        .collect();
    listed.sort();
    listed
}

/// Four people on three nodes: the host on node 0 in the north, two
/// members on node 1 and one on node 2, both in the south. Node 1 is
/// killed. Its two people are sent to node 2, where the host's mute
/// reaches them, and receive everyone again. The survivors relay their new
/// tracks and close the relays from node 1. The host and the person on
/// node 2 are never cut off, and the ballot and attendance hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_meeting_survives_node_kill() {
    let mut cluster = start_cluster([Some("north"), Some("south"), Some("south")]).await;
    let (meeting_id, people) = meeting_with_people(&cluster.store).await;
    let mut sessions = Vec::new();
    for (username, _) in &people {
        sessions.push(login(cluster.base(0), username).await);
    }
    let accounts: Vec<i64> = people.iter().map(|(_, id)| *id).collect();
    let others_of = |account: i64| -> Vec<i64> {
        accounts
            .iter()
            .copied()
            .filter(|other| *other != account)
            .collect()
    };
    let lost = 1;
    let lost_id = "node-1";
    let node_of = [0, lost, lost, 2];

    let mut attendees = Vec::new();
    for (index, session) in sessions.iter().enumerate() {
        let base = cluster.base(node_of[index]);
        attendees.push(Attendee::join(base, session, meeting_id).await);
    }
    for attendee in &attendees {
        attendee
            .receives_from(&others_of(attendee.account_id), 20)
            .await;
    }
    // Each node relays in the tracks of the two other nodes.
    for index in 0..3 {
        gauge_reaches(cluster.base(index), "dangwu_media_relays_in", 2.0).await;
    }

    // Acknowledged before the kill: a ballot cast through the node that dies.
    let vote_id = open_vote(cluster.base(0), &sessions[0], &cluster.store, meeting_id).await;
    post(
        cluster.base(lost),
        &sessions[1],
        &format!("/api/meetings/{meeting_id}/votes/{vote_id}/ballot"),
        json!({"choice": "for"}),
    )
    .await;
    let mut arrivals = Vec::new();
    for account in &accounts {
        let arrival = attendance(&cluster.store, meeting_id, *account).await;
        assert_eq!(arrival.len(), 1, "account {account}: {arrival:?}");
        assert_eq!(arrival[0].1, None, "account {account}: {arrival:?}");
        arrivals.push(arrival);
    }

    let killed_at = Instant::now();
    cluster.kill(lost);
    let lost_attendees: Vec<Attendee> = attendees.drain(1..3).collect();
    wait_until("the hub sockets on node 1 to close", || {
        lost_attendees
            .iter()
            .all(|attendee| attendee.signal.is_closed())
    })
    .await;
    for attendee in &lost_attendees {
        attendee.peer.close().await;
    }
    // The host and the person on node 2 keep receiving each other while the
    // others move.
    let (host, steady) = (accounts[0], accounts[3]);
    attendees[0].receives_from(&[steady], 20).await;
    attendees[1].receives_from(&[host], 20).await;

    // Node 0 still lists node 1's people, but a host control for one of them
    // finds nobody taking requests there: the person is not present, which
    // is no server error.
    let mute = json!({"account_id": accounts[1], "muted": true});
    let url = format!("{}/api/meetings/{meeting_id}/live/mute", cluster.base(0));
    let (status, body) = send(reqwest::Method::POST, url, &sessions[0], Some(mute)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "mute on the lost node: {body}"
    );

    // The moved pages ask node 2, the survivor in their region, naming the
    // node they lost. Node 0 is not asked, so until node 1's entries expire
    // it still lists them on node 1 as well.
    for session in &sessions[1..3] {
        let choice = node_choice(cluster.base(2), session, meeting_id, Some(lost_id)).await;
        assert_eq!(choice["node_id"], "node-2", "{choice}");
        assert_eq!(choice["hosts_meeting"], true, "{choice}");
        attendees.push(Attendee::join(cluster.base(2), session, meeting_id).await);
    }
    let moved = [accounts[1], accounts[2]];

    // The host's page shows the moved people with their new participant
    // ids, and a host mute reaches them on node 2 at once.
    for attendee in &attendees[2..] {
        let joined = attendee.signal.reply("join").await;
        let participant = joined["participant"].as_str().unwrap().to_owned();
        let account = attendee.account_id;
        attendees[0]
            .signal
            .wait(&format!("account {account} on node 2"), |message| {
                message["type"] == "meeting_participant"
                    && message["participant"]["account_id"] == account
                    && message["participant"]["participant"] == participant.as_str()
            })
            .await;
    }
    eprintln!(
        "moved people listed {:?} after the kill",
        killed_at.elapsed()
    );
    for account in &moved {
        let mute = json!({"account_id": account, "muted": true});
        let url = format!("{}/api/meetings/{meeting_id}/live/mute", cluster.base(0));
        let (status, body) = send(reqwest::Method::POST, url, &sessions[0], Some(mute)).await;
        assert!(
            status.is_success(),
            "mute account {account}: {status} {body}"
        );
    }
    // The listing and the mutes above cover node 1's stale entry only if
    // it still listed the moved people when they ran.
    let placement = cluster
        .jetstream()
        .await
        .get_key_value(server::meetings::live::placement::bucket_name(
            &cluster.prefix,
        ))
        .await
        .unwrap();
    let stale_key = format!("meeting.{meeting_id}.{lost_id}");
    assert!(
        placement.get(&stale_key).await.unwrap().is_some(),
        "{stale_key} expired {:?} after the kill, before the moved people were \
         listed and muted: node 1's stale entries hid the new ones, or the test \
         ran too slowly",
        killed_at.elapsed()
    );
    for account in &moved {
        assert_stays(
            &attendees[0].peer,
            steady,
            *account,
            |before, after| before.audio == after.audio,
            "muted audio reached the host",
        )
        .await;
    }
    for account in &moved {
        let unmute = json!({"account_id": account, "muted": false});
        post(
            cluster.base(0),
            &sessions[0],
            &format!("/api/meetings/{meeting_id}/live/mute"),
            unmute,
        )
        .await;
    }

    // Everyone receives everyone again.
    for attendee in &attendees {
        attendee
            .receives_from(&others_of(attendee.account_id), 20)
            .await;
    }
    attendees[0].assert_never_cut_off(&[steady]);
    attendees[1].assert_never_cut_off(&[host]);

    // The survivors closed their relays from node 1 and dropped the relay
    // peers that sent to it. Node 0 relays in the three people's tracks
    // from node 2, node 2 the host's from node 0, and each has one relay
    // peer, for the other survivor.
    for (index, tracks) in [(0, 6.0), (2, 2.0)] {
        let base = cluster.base(index);
        gauge_reaches(base, "dangwu_media_relays_in", 1.0).await;
        gauge_reaches(base, "dangwu_media_relayed_tracks_in", tracks).await;
        gauge_reaches(base, "dangwu_media_relay_peers", 1.0).await;
    }
    let mut expected = accounts.clone();
    expected.sort();
    for index in [0, 2] {
        let listed = listed_accounts(cluster.base(index), &sessions[0], meeting_id).await;
        assert_eq!(listed, expected, "participant list of node {index}");
    }

    // The ballot cast through node 1 is counted.
    let closed = post(
        cluster.base(0),
        &sessions[0],
        &format!("/api/meetings/{meeting_id}/votes/{vote_id}/close"),
        json!({}),
    )
    .await;
    assert_eq!(closed["result"]["votes_for"], 1, "{closed}");

    // Once a survivor removed node 1's connection rows, everyone is still
    // present in one interval with the first arrival time.
    let deadline = Instant::now() + PATIENCE * 2;
    while connections_of(&cluster.store, lost_id).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the connections of {lost_id} were never removed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (account, arrival) in accounts.iter().zip(&arrivals) {
        let after = attendance(&cluster.store, meeting_id, *account).await;
        assert_eq!(&after, arrival, "attendance of account {account} changed");
    }
    for attendee in &attendees {
        attendee
            .receives_from(&others_of(attendee.account_id), 20)
            .await;
    }
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_node_is_not_evicted() {
    let cluster = start_cluster([None; 3]).await;
    let (meeting_id, host_name, _) = demo_meeting(&cluster.store).await;
    let host = login(cluster.base(0), &host_name).await;
    let first = node_choice(cluster.base(0), &host, meeting_id, None).await;
    let hosting_base = first["url"].as_str().unwrap().to_owned();
    let hosting_id = first["node_id"].as_str().unwrap().to_owned();
    let signal = Signal::connect_to(&hosting_base, &host).await;
    let _peer = signal.enter(meeting_id, "join").await;
    let other = (0..3)
        .find(|index| cluster.base(*index) != hosting_base)
        .unwrap();
    // Wait until the other node has read the hosting node's placement entry.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let choice = node_choice(cluster.base(other), &host, meeting_id, None).await;
        if choice["hosts_meeting"] == true {
            assert_eq!(choice["node_id"], hosting_id.as_str());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the meeting never showed as hosted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A page claims the hosting node is unreachable. It replies to the
    // liveness request, so it keeps the meeting.
    let choice = node_choice(cluster.base(other), &host, meeting_id, Some(&hosting_id)).await;
    assert_eq!(choice["node_id"], hosting_id.as_str(), "{choice}");
    assert_eq!(choice["hosts_meeting"], true, "{choice}");

    // A malformed node id is rejected.
    let url = format!(
        "{}/api/meetings/{meeting_id}/node?unreachable=a%20b",
        cluster.base(other)
    );
    let (status, body) = send(reqwest::Method::GET, url, &host, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "unreachable", "{body}");
    cluster.finish().await;
}
