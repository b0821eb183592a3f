//! Demo meetings for one branch: three held meetings for the archive (a
//! committee meeting with an open vote, a members' meeting with a secret
//! ballot and a leave request, a lecture) and a committee meeting next
//! week. Part of the demo seed's transaction; no notices are sent.

use rand::seq::SliceRandom;
use sqlx::AnyConnection;

use super::rules::{self, Choice, PassRule};
use super::votes::VoteResult;

const DAY_MS: i64 = 24 * 3600 * 1000;
const HOUR_MS: i64 = 3600 * 1000;

/// One demo meeting.
struct Plan<'a> {
    kind: &'a str,
    title: &'a str,
    /// Days from now; negative for a held meeting.
    day: i64,
    agenda: &'a [&'a str],
    /// Members' meeting (every member) or committee (officers only).
    everyone: bool,
}

/// Seeds the demo meetings of the named branch, hosted by its secretary
/// and recorded by its next officer.
pub async fn seed(conn: &mut AnyConnection, branch: &str) -> Result<(), sqlx::Error> {
    let org_id: i64 = sqlx::query_scalar("SELECT id FROM orgs WHERE name = $1")
        .bind(branch)
        .fetch_one(&mut *conn)
        .await?;
    // Officers first (the secretary before the others), then by id.
    let members: Vec<i64> = sqlx::query_scalar(
        "SELECT m.id FROM members m LEFT JOIN org_roles r ON r.member_id = m.id AND r.org_id = m.org_id \
         WHERE m.org_id = $1 AND m.status = 'full' \
         ORDER BY CASE WHEN r.role = 'secretary' THEN 0 WHEN r.role IS NOT NULL THEN 1 ELSE 2 END, m.id",
    )
    .bind(org_id)
    .fetch_all(&mut *conn)
    .await?;
    let committee: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM org_roles WHERE org_id = $1")
        .bind(org_id)
        .fetch_one(&mut *conn)
        .await?;
    let created_by: i64 = sqlx::query_scalar("SELECT id FROM accounts WHERE member_id = $1")
        .bind(members[0])
        .fetch_one(&mut *conn)
        .await?;
    let committee = (committee as usize).clamp(2, members.len());
    let now = crate::db::now_ms();
    let plans = [
        Plan {
            kind: "branch_committee",
            title: "十一月支委会",
            day: -30,
            agenda: &["研究本月学习计划", "讨论发展党员工作"],
            everyone: false,
        },
        Plan {
            kind: "general_meeting",
            title: "第四季度党员大会",
            day: -20,
            agenda: &["传达上级会议精神", "表决支部年度工作总结"],
            everyone: true,
        },
        Plan {
            kind: "party_lecture",
            title: "学习党章专题党课",
            day: -10,
            agenda: &["书记讲党课"],
            everyone: true,
        },
        Plan {
            kind: "branch_committee",
            title: "十二月支委会",
            day: 7,
            agenda: &["总结全年工作", "研究明年计划", "其他事项"],
            everyone: false,
        },
    ];
    for plan in plans {
        let roll = if plan.everyone {
            &members[..]
        } else {
            &members[..committee]
        };
        let id = insert_meeting(conn, org_id, &plan, &members, created_by, now).await?;
        for (position, title) in plan.agenda.iter().enumerate() {
            sqlx::query(
                "INSERT INTO meeting_agenda_items (meeting_id, position, title, description, pass_rule) \
                 VALUES ($1, $2, $3, '', 'majority')",
            )
            .bind(id)
            .bind(position as i64)
            .bind(*title)
            .execute(&mut *conn)
            .await?;
        }
        if plan.day > 0 {
            insert_roll(conn, id, org_id, roll, false, None).await?;
            continue;
        }

        // In the members' meeting the last member is on leave.
        let start = now + plan.day * DAY_MS;
        let absent = if plan.kind == "general_meeting" {
            roll.last().copied()
        } else {
            None
        };
        insert_roll(conn, id, org_id, roll, true, absent).await?;
        insert_attendance(conn, id, roll, absent, start).await?;
        if let Some(member_id) = absent {
            sqlx::query(
                "INSERT INTO meeting_leave_requests (meeting_id, member_id, reason, filed_at, status, \
                 decided_by, decided_at, decision_note) VALUES ($1, $2, '外出学习', $3, 'approved', $4, $3, '')",
            )
            .bind(id)
            .bind(member_id)
            .bind(start - DAY_MS)
            .bind(created_by)
            .execute(&mut *conn)
            .await?;
        }
        if plan.kind != "party_lecture" {
            let secret = plan.kind == "general_meeting";
            let voters: Vec<i64> = roll
                .iter()
                .copied()
                .filter(|m| Some(*m) != absent)
                .collect();
            insert_vote(
                conn,
                id,
                plan.agenda[1],
                secret,
                &voters,
                roll.len() as i64,
                start,
                created_by,
            )
            .await?;
        }
        sqlx::query(
            "INSERT INTO meeting_minutes (meeting_id, body_html, version, saved_by, saved_by_name, saved_at, \
             approved_by, approved_by_name, approved_at) VALUES ($1, $2, 1, $3, '记录人', $4, $3, '主持人', $4)",
        )
        .bind(id)
        .bind(format!("<p>{}：会议按议程进行，形成决议。</p>", plan.title))
        .bind(created_by)
        .bind(start + 2 * HOUR_MS)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn insert_meeting(
    conn: &mut AnyConnection,
    org_id: i64,
    plan: &Plan<'_>,
    members: &[i64],
    created_by: i64,
    now: i64,
) -> Result<i64, sqlx::Error> {
    // Start at 09:00 China time on the planned day.
    let day = (now + plan.day * DAY_MS + 8 * HOUR_MS) / DAY_MS;
    let start = day * DAY_MS + 9 * HOUR_MS - 8 * HOUR_MS;
    let held = plan.day < 0;
    sqlx::query_scalar(
        "INSERT INTO meetings (org_id, kind, title, starts_at, ends_at, place, online, host_member, \
         recorder_member, status, created_by, created_at, updated_at, started_at, ended_at) \
         VALUES ($1, $2, $3, $4, $5, '机关三楼会议室', 1, $6, $7, $8, $9, $10, $10, $11, $12) RETURNING id",
    )
    .bind(org_id)
    .bind(plan.kind)
    .bind(plan.title)
    .bind(start)
    .bind(start + 2 * HOUR_MS)
    .bind(members[0])
    .bind(members[1])
    .bind(if held { "ended" } else { "scheduled" })
    .bind(created_by)
    .bind(start - 7 * DAY_MS)
    .bind(held.then_some(start))
    .bind(held.then_some(start + 2 * HOUR_MS))
    .fetch_one(&mut *conn)
    .await
}

async fn insert_roll(
    conn: &mut AnyConnection,
    id: i64,
    org_id: i64,
    roll: &[i64],
    held: bool,
    absent: Option<i64>,
) -> Result<(), sqlx::Error> {
    for member_id in roll {
        let final_status = match (held, Some(*member_id) == absent) {
            (false, _) => None,
            (true, true) => Some("on_leave"),
            (true, false) => Some("present"),
        };
        sqlx::query(
            "INSERT INTO meeting_participants (meeting_id, member_id, org_id, attendance, voting, source, final_status) \
             VALUES ($1, $2, $3, 'required', 1, 'body', $4)",
        )
        .bind(id)
        .bind(member_id)
        .bind(org_id)
        .bind(final_status)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn insert_attendance(
    conn: &mut AnyConnection,
    id: i64,
    roll: &[i64],
    absent: Option<i64>,
    start: i64,
) -> Result<(), sqlx::Error> {
    for (index, member_id) in roll.iter().enumerate() {
        if Some(*member_id) == absent {
            continue;
        }
        sqlx::query(
            "INSERT INTO meeting_attendance (meeting_id, member_id, joined_at, left_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(member_id)
        .bind(start - 5 * 60 * 1000 + index as i64 * 30 * 1000)
        .bind(start + 2 * HOUR_MS)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Inserts a closed motion on the second agenda item: everyone present
/// votes for, except one against in a secret ballot.
#[allow(clippy::too_many_arguments)]
async fn insert_vote(
    conn: &mut AnyConnection,
    id: i64,
    title: &str,
    secret: bool,
    voters: &[i64],
    required: i64,
    start: i64,
    created_by: i64,
) -> Result<(), sqlx::Error> {
    let choices: Vec<Choice> = (0..voters.len())
        .map(|i| {
            if secret && i == 0 {
                Choice::Against
            } else {
                Choice::For
            }
        })
        .collect();
    let tally = rules::tally_motion(PassRule::Majority, required, voters.len() as i64, &choices);
    let result = serde_json::to_string(&VoteResult::Motion(tally)).unwrap_or_default();
    let vote_id: i64 = sqlx::query_scalar(
        "INSERT INTO meeting_votes (meeting_id, agenda_position, kind, title, ballot, pass_rule, seats, status, \
         opened_by, opened_at, closed_by, closed_at, result) \
         VALUES ($1, 1, 'motion', $2, $3, 'majority', 0, 'closed', $4, $5, $4, $6, $7) RETURNING id",
    )
    .bind(id)
    .bind(title)
    .bind(if secret { "secret" } else { "open" })
    .bind(created_by)
    .bind(start + HOUR_MS)
    .bind(start + HOUR_MS + 10 * 60 * 1000)
    .bind(result)
    .fetch_one(&mut *conn)
    .await?;
    for (member_id, choice) in voters.iter().zip(&choices) {
        sqlx::query("INSERT INTO meeting_voters (vote_id, member_id) VALUES ($1, $2)")
            .bind(vote_id)
            .bind(member_id)
            .execute(&mut *conn)
            .await?;
        if !secret {
            sqlx::query(
                "INSERT INTO meeting_open_ballots (vote_id, member_id, choice) VALUES ($1, $2, $3)",
            )
            .bind(vote_id)
            .bind(member_id)
            .bind(choice.as_str())
            .execute(&mut *conn)
            .await?;
        }
    }
    if !secret {
        return Ok(());
    }

    // Secret ballots go in shuffled order, as a closed ballot stores them.
    let mut shuffled = choices;
    shuffled.shuffle(&mut rand::thread_rng());
    for choice in shuffled {
        sqlx::query(
            "INSERT INTO meeting_secret_ballots (vote_id, ballot_key, choice) VALUES ($1, $2, $3)",
        )
        .bind(vote_id)
        .bind(format!("{:032x}", rand::random::<u128>()))
        .bind(choice.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
