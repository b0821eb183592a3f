//! The roster: the meeting's body, resolved from its kind, plus everyone
//! invited by name.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, Row};

use super::input::{Attendance, MeetingInput};
use super::kind::Body;
use crate::error::{AppError, AppResult};
use crate::perm::{Access, Caller};
use crate::state::AppState;

/// One participant to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub member_id: i64,
    pub org_id: i64,
    pub attendance: Attendance,
    pub voting: bool,
    /// `body` or `invited`.
    pub source: &'static str,
}

/// Resolves the body of a meeting of `body` kind held by the organization
/// at `org_path`: full members vote; probationary members of a members'
/// meeting attend without a vote. The members' body of an organization
/// includes the mobile members of the temporary branches in its subtree,
/// and leaves out members whose relation has moved out.
async fn body_seats(
    conn: &mut AnyConnection,
    body: Body,
    org_id: i64,
    org_path: &str,
) -> AppResult<Vec<Seat>> {
    let rows = match body {
        Body::InviteesOnly => return Ok(Vec::new()),
        Body::Members => {
            sqlx::query(
                "SELECT m.id, m.org_id, m.status FROM members m JOIN orgs o ON o.id = m.org_id \
                 WHERE m.status <> 'moved_out' AND (o.path LIKE $1 OR m.id IN \
                 (SELECT g.member_id FROM membership_mobile g JOIN orgs t ON t.id = g.temporary_branch_id \
                 WHERE g.status = 'active' AND t.path LIKE $1)) ORDER BY m.id",
            )
            .bind(format!("{org_path}%"))
            .fetch_all(&mut *conn)
            .await?
        }
        Body::Committee => sqlx::query(
            "SELECT m.id, m.org_id, m.status FROM org_roles r JOIN members m ON m.id = r.member_id \
                 WHERE r.org_id = $1 AND m.status <> 'moved_out' ORDER BY m.id",
        )
        .bind(org_id)
        .fetch_all(&mut *conn)
        .await?,
    };
    rows.iter()
        .map(|row| {
            let status: String = row.try_get("status")?;
            Ok(Seat {
                member_id: row.try_get("id")?,
                org_id: row.try_get("org_id")?,
                attendance: Attendance::Required,
                voting: status == "full",
                source: "body",
            })
        })
        .collect()
}

/// Checks that the caller may name the member (the rule for sending them
/// a notice) and returns the member's organization.
async fn nameable(
    state: &AppState,
    caller: &Caller,
    conn: &mut AnyConnection,
    member_id: i64,
    field: &str,
) -> AppResult<i64> {
    let row = sqlx::query(
        "SELECT m.org_id, o.path FROM members m JOIN orgs o ON o.id = m.org_id WHERE m.id = $1",
    )
    .bind(member_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::not_found(("党员", "member"), member_id).field(field))?;
    let path: String = row.try_get("path")?;
    let allowed = caller.principal.can_member(member_id, &path, Access::Read)
        || caller
            .principal
            .has_grant(&state.db, ("member", member_id), Access::Read)
            .await?;
    if !allowed {
        return Err(AppError::forbidden().field(field));
    }
    Ok(row.try_get("org_id")?)
}

/// Builds the full roster: the body, then the invited, then the host and
/// recorder if neither put them on it. Someone in the body keeps their
/// body seat when also invited by name.
pub async fn resolve(
    state: &AppState,
    caller: &Caller,
    conn: &mut AnyConnection,
    input: &MeetingInput,
    org_path: &str,
) -> AppResult<Vec<Seat>> {
    let body = input.kind.body();
    let mut seats: BTreeMap<i64, Seat> = body_seats(conn, body, input.org_id, org_path)
        .await?
        .into_iter()
        .map(|seat| (seat.member_id, seat))
        .collect();
    for (index, invitee) in input.invitees.iter().enumerate() {
        let field = format!("invitees[{index}].member_id");
        let org_id = nameable(state, caller, conn, invitee.member_id, &field).await?;
        seats.entry(invitee.member_id).or_insert(Seat {
            member_id: invitee.member_id,
            org_id,
            attendance: invitee.attendance,
            voting: false,
            source: "invited",
        });
    }
    for (member_id, field) in [
        (input.host_member, "host_member"),
        (input.recorder_member, "recorder_member"),
    ] {
        let org_id = nameable(state, caller, conn, member_id, field).await?;
        seats.entry(member_id).or_insert(Seat {
            member_id,
            org_id,
            attendance: Attendance::Required,
            voting: false,
            source: "invited",
        });
    }
    Ok(seats.into_values().collect())
}

/// Stores the roster. Rows of people no longer on it go, unless they are
/// connected now, in which case they stay as walk-ins; rows of walk-ins
/// are kept.
pub async fn store(conn: &mut AnyConnection, meeting_id: i64, seats: &[Seat]) -> AppResult<()> {
    let keep: Vec<String> = seats.iter().map(|s| s.member_id.to_string()).collect();
    let keep = if keep.is_empty() {
        "0".to_owned()
    } else {
        keep.join(", ")
    };
    sqlx::query(&format!(
        "DELETE FROM meeting_participants WHERE meeting_id = $1 AND source <> 'walk_in' \
         AND live_connections = 0 AND member_id NOT IN ({keep})"
    ))
    .bind(meeting_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "UPDATE meeting_participants SET source = 'walk_in', voting = 0, attendance = 'optional' \
         WHERE meeting_id = $1 AND member_id NOT IN ({keep})"
    ))
    .bind(meeting_id)
    .execute(&mut *conn)
    .await?;
    for seat in seats {
        sqlx::query(
            "INSERT INTO meeting_participants (meeting_id, member_id, org_id, attendance, voting, source) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (meeting_id, member_id) DO UPDATE SET \
             org_id = excluded.org_id, attendance = excluded.attendance, voting = excluded.voting, \
             source = excluded.source",
        )
        .bind(meeting_id)
        .bind(seat.member_id)
        .bind(seat.org_id)
        .bind(seat.attendance.as_str())
        .bind(i64::from(seat.voting))
        .bind(seat.source)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
