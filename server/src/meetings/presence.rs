//! Standing in a meeting and attendance as the live side reports it: a
//! person's media connections join and leave, and each change is stored,
//! audited and published with the live quorum numbers.
//!
//! A person may hold several connections (two tabs, a phone); the
//! attendance interval opens with the first and closes with the last.
//! Connections are counted per node in `meeting_live_connections`, because
//! a node that dies cannot report its people leaving. A person is on two
//! nodes while moving off a node that died, so the move neither splits the
//! person in two nor loses the arrival time. The rows of a node that died
//! are removed by a surviving node (`live::liveness`) or by the node itself
//! when it starts again.

use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use super::store::{self, MeetingRow, MeetingStatus};
use crate::audit::{self, Actor};
use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::hub::protocol::Event;
use crate::state::AppState;

/// A person's relation to a meeting, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Host,
    Recorder,
    /// Invited, or a member of the meeting's body.
    Invitee,
    /// A member of the meeting's organization itself.
    Member,
    /// Anyone else: may only wait in the lobby.
    Outsider,
}

/// A person's access to a meeting, as the live side needs it.
#[derive(Debug, Clone, Serialize)]
pub struct Access {
    pub meeting_id: i64,
    pub org_id: i64,
    pub title: String,
    pub standing: Standing,
    pub status: MeetingStatus,
    pub locked: bool,
}

/// Works out a member's standing from the meeting, their participant row
/// (its `source`) and the path of their own organization.
pub fn standing_of(
    meeting: &MeetingRow,
    member_id: Option<i64>,
    participant_source: Option<&str>,
    own_org_path: Option<&str>,
) -> Standing {
    let Some(member_id) = member_id else {
        return Standing::Outsider;
    };
    if member_id == meeting.host_member {
        Standing::Host
    } else if member_id == meeting.recorder_member {
        Standing::Recorder
    } else if matches!(participant_source, Some("body" | "invited")) {
        Standing::Invitee
    } else if own_org_path == Some(meeting.org_path.as_str()) {
        Standing::Member
    } else {
        Standing::Outsider
    }
}

/// Loads the member's standing in a loaded meeting.
pub async fn standing(
    conn: &mut AnyConnection,
    meeting: &MeetingRow,
    member_id: Option<i64>,
) -> AppResult<Standing> {
    let Some(id) = member_id else {
        return Ok(Standing::Outsider);
    };
    let source: Option<String> = sqlx::query_scalar(
        "SELECT source FROM meeting_participants WHERE meeting_id = $1 AND member_id = $2",
    )
    .bind(meeting.id)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let path: Option<String> = sqlx::query_scalar(
        "SELECT o.path FROM members m JOIN orgs o ON o.id = m.org_id WHERE m.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(standing_of(
        meeting,
        member_id,
        source.as_deref(),
        path.as_deref(),
    ))
}

/// Loads the account's standing in the meeting. Fails with not_found when
/// the meeting does not exist, never for an outsider.
pub async fn access(state: &AppState, meeting_id: i64, account_id: i64) -> AppResult<Access> {
    let mut conn = state.db.pool.acquire().await?;
    let meeting = store::load(&mut conn, meeting_id).await?;
    let member_id: Option<i64> = sqlx::query_scalar("SELECT member_id FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_optional(&mut *conn)
        .await?
        .flatten();
    let standing = standing(&mut conn, &meeting, member_id).await?;
    Ok(Access {
        meeting_id,
        org_id: meeting.org_id,
        title: meeting.title,
        standing,
        status: meeting.status,
        locked: meeting.locked,
    })
}

fn closed(meeting: &MeetingRow) -> AppError {
    match meeting.status {
        MeetingStatus::Cancelled => AppError::conflict(
            "meeting_cancelled",
            "会议已取消",
            "the meeting has been cancelled",
        ),
        _ => AppError::conflict("meeting_ended", "会议已结束", "the meeting has ended"),
    }
}

/// Records that one of the person's media connections on this node joined.
/// The first connection on any node opens an attendance interval; the host
/// or recorder joining a scheduled meeting starts it.
pub async fn joined(state: &AppState, meeting_id: i64, account_id: i64) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    let meeting = store::lock(&mut tx, meeting_id).await?;
    if matches!(
        meeting.status,
        MeetingStatus::Ended | MeetingStatus::Cancelled
    ) {
        return Err(closed(&meeting));
    }
    let (member_id, actor) = store::account_actor(&mut tx, account_id).await?;
    let Some(member_id) = member_id else {
        // An account without a member record attends nobody's roll.
        return Ok(());
    };
    ensure_participant(&mut tx, meeting_id, member_id).await?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO meeting_live_connections \
         (meeting_id, member_id, node_id, account_id, connections, joined_at) \
         VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (meeting_id, member_id, node_id) \
         DO UPDATE SET connections = meeting_live_connections.connections + 1",
    )
    .bind(meeting_id)
    .bind(member_id)
    .bind(&state.config.node_id)
    .bind(account_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let connections: i64 = sqlx::query_scalar(
        "UPDATE meeting_participants SET live_connections = live_connections + 1 \
         WHERE meeting_id = $1 AND member_id = $2 RETURNING live_connections",
    )
    .bind(meeting_id)
    .bind(member_id)
    .fetch_one(&mut *tx)
    .await?;

    let mut events = Vec::new();
    if meeting.status == MeetingStatus::Scheduled && meeting.runs(Some(member_id)) {
        events.push(start(&mut tx, state, &meeting, &actor).await?);
    }
    if connections == 1 {
        sqlx::query(
            "INSERT INTO meeting_attendance (meeting_id, member_id, joined_at) VALUES ($1, $2, $3)",
        )
        .bind(meeting_id)
        .bind(member_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let change = Change::Joined { member_id, at: now };
        events.push(attendance_changed(&mut tx, state, &meeting, &actor, change).await?);
    }

    tx.commit().await?;
    state.hub.publish(events);
    if connections == 1 {
        tracing::info!(meeting_id, member_id, "meeting joined");
    }
    Ok(())
}

/// Records that one of the person's media connections on this node left;
/// the last connection on any node closes the attendance interval. Leaving
/// a meeting that has ended, or that the person never joined here, changes
/// nothing.
pub async fn left(state: &AppState, meeting_id: i64, account_id: i64) -> AppResult<()> {
    left_node(
        state,
        meeting_id,
        account_id,
        &state.config.node_id,
        Leaving::One,
    )
    .await
}

/// How many of a person's connections on a node leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaving {
    One,
    /// All of them, because the node is gone.
    All,
}

/// Takes connections of the person off a node's row and, when none is left
/// on any node, closes the attendance interval.
async fn left_node(
    state: &AppState,
    meeting_id: i64,
    account_id: i64,
    node_id: &str,
    leaving: Leaving,
) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    let meeting = store::lock(&mut tx, meeting_id).await?;
    let (member_id, actor) = store::account_actor(&mut tx, account_id).await?;
    let Some(member_id) = member_id else {
        return Ok(());
    };
    let removed = match leaving {
        Leaving::One => {
            let remaining: Option<i64> = sqlx::query_scalar(
                "UPDATE meeting_live_connections SET connections = connections - 1 \
                 WHERE meeting_id = $1 AND member_id = $2 AND node_id = $3 AND connections > 0 \
                 RETURNING connections",
            )
            .bind(meeting_id)
            .bind(member_id)
            .bind(node_id)
            .fetch_optional(&mut *tx)
            .await?;
            remaining.map(|_| 1)
        }
        Leaving::All => {
            sqlx::query_scalar(
                "DELETE FROM meeting_live_connections \
                 WHERE meeting_id = $1 AND member_id = $2 AND node_id = $3 RETURNING connections",
            )
            .bind(meeting_id)
            .bind(member_id)
            .bind(node_id)
            .fetch_optional(&mut *tx)
            .await?
        }
    };
    let Some(removed) = removed else {
        tx.commit().await?;
        return Ok(());
    };
    sqlx::query(
        "DELETE FROM meeting_live_connections \
         WHERE meeting_id = $1 AND member_id = $2 AND node_id = $3 AND connections <= 0",
    )
    .bind(meeting_id)
    .bind(member_id)
    .bind(node_id)
    .execute(&mut *tx)
    .await?;
    let connections: Option<i64> = sqlx::query_scalar(
        "UPDATE meeting_participants SET live_connections = \
         CASE WHEN live_connections > $3 THEN live_connections - $3 ELSE 0 END \
         WHERE meeting_id = $1 AND member_id = $2 AND live_connections > 0 \
         RETURNING live_connections",
    )
    .bind(meeting_id)
    .bind(member_id)
    .bind(removed)
    .fetch_optional(&mut *tx)
    .await?;
    if connections != Some(0) {
        tx.commit().await?;
        return Ok(());
    }
    let now = now_ms();
    sqlx::query(
        "UPDATE meeting_attendance SET left_at = $1 \
         WHERE meeting_id = $2 AND member_id = $3 AND left_at IS NULL",
    )
    .bind(now)
    .bind(meeting_id)
    .bind(member_id)
    .execute(&mut *tx)
    .await?;
    let change = Change::Left { member_id, at: now };

    let event = attendance_changed(&mut tx, state, &meeting, &actor, change).await?;

    tx.commit().await?;
    state.hub.publish([event]);
    tracing::info!(meeting_id, member_id, node_id, "meeting left");
    Ok(())
}

/// Media connection rows that a starting node removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// Its own, left by an earlier run under the same node id.
    ThisNode,
    /// Every row, when this node is the only one (no NATS).
    AllNodes,
}

/// Removes media connection rows that no running node holds, when the node
/// starts, closing the attendance of their people.
pub async fn purge_at_start(state: &AppState, stale: Stale) -> AppResult<()> {
    let nodes = match stale {
        Stale::ThisNode => vec![state.config.node_id.clone()],
        Stale::AllNodes => connection_nodes(state).await?,
    };
    for node_id in nodes {
        purge_node(state, &node_id).await;
    }
    Ok(())
}

/// Returns the nodes that have media connection rows.
pub async fn connection_nodes(state: &AppState) -> AppResult<Vec<String>> {
    let nodes = sqlx::query_scalar("SELECT DISTINCT node_id FROM meeting_live_connections")
        .fetch_all(&state.db.pool)
        .await?;
    Ok(nodes)
}

/// Removes the media connection rows of a node that is gone, as if each of
/// its people had left there. People who moved to another node stay
/// present, with the arrival time of their first interval. A failure is
/// logged, and the sweep of gone nodes (with NATS) or the next start tries
/// again.
pub async fn purge_node(state: &AppState, node_id: &str) {
    let rows: Result<Vec<(i64, i64)>, sqlx::Error> = sqlx::query_as(
        "SELECT meeting_id, account_id FROM meeting_live_connections WHERE node_id = $1",
    )
    .bind(node_id)
    .fetch_all(&state.db.pool)
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            tracing::error!(node_id, %error, "reading the media connections of a gone node failed");
            return;
        }
    };
    if !rows.is_empty() {
        tracing::info!(
            node_id,
            connections = rows.len(),
            "removing the media connections of a gone node"
        );
    }
    for (meeting_id, account_id) in rows {
        if let Err(error) = left_node(state, meeting_id, account_id, node_id, Leaving::All).await {
            tracing::error!(node_id, meeting_id, account_id, %error, "removing a media connection of a gone node failed");
        }
    }
}

/// Adds a participant row for someone who joins without one: a member of
/// the organization or a guest admitted from the lobby. They attend
/// without a vote.
pub(super) async fn ensure_participant(
    conn: &mut AnyConnection,
    meeting_id: i64,
    member_id: i64,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO meeting_participants (meeting_id, member_id, org_id, attendance, voting, source) \
         SELECT $1, id, org_id, 'optional', 0, 'walk_in' FROM members WHERE id = $2 \
         ON CONFLICT (meeting_id, member_id) DO NOTHING",
    )
    .bind(meeting_id)
    .bind(member_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn start(
    conn: &mut AnyConnection,
    state: &AppState,
    meeting: &MeetingRow,
    actor: &Actor,
) -> AppResult<Event> {
    let now = now_ms();
    sqlx::query(
        "UPDATE meetings SET status = 'live', started_at = $1, updated_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(meeting.id)
    .execute(&mut *conn)
    .await?;

    audit::append(
        conn,
        &state.audit_key,
        actor,
        "meeting.start",
        ("meeting", meeting.id.to_string()),
        json!({}),
    )
    .await?;
    tracing::info!(meeting_id = meeting.id, "meeting started");
    store::event(
        conn,
        meeting.id,
        "meeting.started",
        json!({"id": meeting.id, "started_at": now}),
    )
    .await
}

/// One change to who is in the room.
pub enum Change {
    Joined {
        member_id: i64,
        at: i64,
    },
    Left {
        member_id: i64,
        at: i64,
    },
    Marked {
        member_id: i64,
        present: bool,
        at: i64,
    },
}

/// Audits an attendance change and appends `attendance.changed` with the
/// person, whether they are present now and the live quorum numbers.
pub async fn attendance_changed(
    conn: &mut AnyConnection,
    state: &AppState,
    meeting: &MeetingRow,
    actor: &Actor,
    change: Change,
) -> AppResult<Event> {
    let (action, member_id, at) = match change {
        Change::Joined { member_id, at } => ("meeting.join", member_id, at),
        Change::Left { member_id, at } => ("meeting.leave", member_id, at),
        Change::Marked {
            member_id,
            present: true,
            at,
        } => ("meeting.mark_present", member_id, at),
        Change::Marked {
            member_id,
            present: false,
            at,
        } => ("meeting.unmark_present", member_id, at),
    };

    audit::append(
        conn,
        &state.audit_key,
        actor,
        action,
        ("meeting", meeting.id.to_string()),
        json!({"member_id": member_id}),
    )
    .await?;
    let row = sqlx::query(&format!(
        "SELECT m.name, CASE WHEN {} THEN 1 ELSE 0 END AS present \
         FROM meeting_participants p JOIN members m ON m.id = p.member_id \
         WHERE p.meeting_id = $1 AND p.member_id = $2",
        store::PRESENT
    ))
    .bind(meeting.id)
    .bind(member_id)
    .fetch_one(&mut *conn)
    .await?;
    let name: String = row.try_get("name")?;
    let present = row.try_get::<i64, _>("present")? != 0;
    let quorum = store::quorum(conn, meeting).await?;
    store::event(
        conn,
        meeting.id,
        "attendance.changed",
        json!({"member_id": member_id, "name": name, "present": present, "at": at,
            "change": action.trim_start_matches("meeting."), "quorum": quorum}),
    )
    .await
}

/// Whether the principal may read the meeting: whoever may read the
/// organization (its members and the officers above it), anyone on the
/// roll, and holders of a grant on the meeting.
pub async fn can_read(
    state: &AppState,
    principal: &crate::perm::Principal,
    meeting: &MeetingRow,
) -> AppResult<bool> {
    use crate::perm::Access as Perm;
    if principal.can_org(&meeting.org_path, Perm::Read) {
        return Ok(true);
    }
    let mut conn = state.db.pool.acquire().await?;
    let on_roll: Option<i64> = match principal.member_id {
        Some(member_id) => sqlx::query_scalar(
            "SELECT member_id FROM meeting_participants WHERE meeting_id = $1 AND member_id = $2",
        )
        .bind(meeting.id)
        .bind(member_id)
        .fetch_optional(&mut *conn)
        .await?,
        None => None,
    };
    if on_roll.is_some() {
        return Ok(true);
    }
    principal
        .has_grant(&state.db, ("meeting", meeting.id), Perm::Read)
        .await
}
