//! Reminders of due pipeline steps. A periodic sweep finds the steps due
//! within [`REMIND_DAYS_BEFORE`] days and notifies the organization's
//! 组织委员 (or its 书记 when it has none) with a notice and a to-do event.
//! Once a step is overdue, it notifies the parent organization's 组织委员 or
//! 书记 the same way. Each reminder and escalation happens once per due
//! date, because the sweep claims it with a conditional write first, so
//! several nodes sweeping one database do not repeat it.

use std::time::Duration;

use chrono::NaiveDate;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use super::pipeline::load_history;
use super::rules::{self, Due, REMIND_DAYS_BEFORE};
use crate::audit::{self, Actor};
use crate::db::now_ms;
use crate::error::AppResult;
use crate::hub::protocol::Event;
use crate::hub::store as events;
use crate::state::AppState;

/// How often the server looks for due steps.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Counts of one sweep's reminders and escalations.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub reminded: usize,
    pub escalated: usize,
}

/// Runs [`sweep`], the dues sweep and the dissolution of ended temporary
/// branches every [`SWEEP_INTERVAL`], the first
/// time one interval after start, until the task is aborted.
pub async fn run(state: AppState) {
    let first = tokio::time::Instant::now() + SWEEP_INTERVAL;
    let mut interval = tokio::time::interval_at(first, SWEEP_INTERVAL);
    loop {
        interval.tick().await;
        let today = super::today();
        match sweep(&state, today).await {
            Ok(swept) if swept != Swept::default() => tracing::info!(
                reminded = swept.reminded,
                escalated = swept.escalated,
                "membership deadlines swept"
            ),
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "membership deadline sweep failed"),
        }
        match super::dues::sweep_dues(&state, today).await {
            Ok(0) => {}
            Ok(reminded) => tracing::info!(reminded, "dues arrears swept"),
            Err(error) => tracing::error!(%error, "dues arrears sweep failed"),
        }
        match super::temporary::dissolve_ended(&state, today).await {
            Ok(0) => {}
            Ok(dissolved) => tracing::info!(dissolved, "ended temporary branches dissolved"),
            Err(error) => tracing::error!(%error, "temporary branch sweep failed"),
        }
    }
}

/// Reminds and escalates the steps due as of `today`, each once.
pub async fn sweep(state: &AppState, today: NaiveDate) -> AppResult<Swept> {
    let people = sqlx::query(
        "SELECT id, org_id, name FROM membership_people WHERE stage <> 'full' ORDER BY id",
    )
    .fetch_all(&state.db.pool)
    .await?;
    let mut swept = Swept::default();
    for row in people {
        let person_id: i64 = row.try_get("id")?;
        let org_id: i64 = row.try_get("org_id")?;
        let name: String = row.try_get("name")?;
        let history = load_history(&mut *state.db.pool.acquire().await?, person_id).await?;
        for due in rules::due_steps(&history) {
            let remind_from = due.due_on - chrono::Days::new(REMIND_DAYS_BEFORE);
            if today < remind_from {
                continue;
            }
            let target = Target {
                person_id,
                org_id,
                name: &name,
                due,
            };
            if remind(state, &target, false).await? {
                swept.reminded += 1;
            }
            if today > due.due_on && remind(state, &target, true).await? {
                swept.escalated += 1;
            }
        }
    }
    Ok(swept)
}

struct Target<'a> {
    person_id: i64,
    org_id: i64,
    name: &'a str,
    due: Due,
}

/// Claims and sends one reminder, or one escalation to the parent
/// organization. Returns whether this call sent it.
async fn remind(state: &AppState, target: &Target<'_>, escalate: bool) -> AppResult<bool> {
    let column = if escalate {
        "escalated_at"
    } else {
        "reminded_at"
    };
    let now = now_ms();
    let due_on = target.due.due_on.to_string();
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "INSERT INTO membership_reminders (person_id, step, due_on) VALUES ($1, $2, $3) \
         ON CONFLICT (person_id, step, due_on) DO NOTHING",
    )
    .bind(target.person_id)
    .bind(target.due.step.as_str())
    .bind(&due_on)
    .execute(&mut *tx)
    .await?;
    let claimed = sqlx::query(&format!(
        "UPDATE membership_reminders SET {column} = $1 \
         WHERE person_id = $2 AND step = $3 AND due_on = $4 AND {column} IS NULL AND done_at IS NULL"
    ))
    .bind(now)
    .bind(target.person_id)
    .bind(target.due.step.as_str())
    .bind(&due_on)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(false);
    }

    let org_id = if escalate {
        match parent_of(&mut tx, target.org_id).await? {
            Some(parent) => parent,
            None => target.org_id,
        }
    } else {
        target.org_id
    };
    let recipients = organizers_of(&mut tx, org_id).await?;
    let (title, kind) = if escalate {
        (
            format!(
                "逾期提醒：{}的“{}”已于 {} 到期",
                target.name,
                target.due.step.zh(),
                due_on
            ),
            "todo.membership_overdue",
        )
    } else {
        (
            format!(
                "发展党员提醒：{}的“{}”应在 {} 前完成",
                target.name,
                target.due.step.zh(),
                due_on
            ),
            "todo.membership_due",
        )
    };
    let body = format!("<p>{title}。依据：{}。</p>", target.due.source);
    let data = json!({"person_id": target.person_id, "org_id": target.org_id, "step": target.due.step,
        "due_on": due_on, "name": target.name});
    let outgoing = send_notice(&mut tx, &recipients, &title, &body, kind, &data).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &Actor::system(),
        if escalate {
            "membership.step.escalate"
        } else {
            "membership.step.remind"
        },
        ("membership_person", target.person_id.to_string()),
        json!({"step": target.due.step, "due_on": due_on, "org_id": org_id, "recipients": recipients}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish(outgoing);
    Ok(true)
}

async fn parent_of(conn: &mut AnyConnection, org_id: i64) -> AppResult<Option<i64>> {
    Ok(
        sqlx::query_scalar::<_, Option<i64>>("SELECT parent_id FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_optional(&mut *conn)
            .await?
            .flatten(),
    )
}

/// Counts the reminders and escalations sent to a member whose step is not
/// recorded yet: reminders of organizations where the member is the
/// organizer (组织委员, or 书记 without one), and escalations from their
/// child organizations.
pub async fn open_count(db: &crate::db::Db, member_id: i64) -> AppResult<i64> {
    let organizer_of = "SELECT r.org_id FROM org_roles r WHERE r.member_id = $1 AND (r.role = 'organization_member' \
         OR (r.role = 'secretary' AND NOT EXISTS (SELECT 1 FROM org_roles x \
         WHERE x.org_id = r.org_id AND x.role = 'organization_member')))";
    let count: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM membership_reminders m JOIN membership_people p ON p.id = m.person_id \
         JOIN orgs o ON o.id = p.org_id WHERE m.done_at IS NULL AND \
         ((m.reminded_at IS NOT NULL AND p.org_id IN ({organizer_of})) \
         OR (m.escalated_at IS NOT NULL AND o.parent_id IN ({organizer_of})))"
    ))
    .bind(member_id)
    .fetch_one(&db.pool)
    .await?;
    Ok(count)
}

/// Returns the organization's 组织委员, or its 书记 when it has none.
pub async fn organizers_of(conn: &mut AnyConnection, org_id: i64) -> AppResult<Vec<i64>> {
    for role in ["organization_member", "secretary"] {
        let members: Vec<i64> = sqlx::query_scalar(
            "SELECT member_id FROM org_roles WHERE org_id = $1 AND role = $2 ORDER BY member_id",
        )
        .bind(org_id)
        .bind(role)
        .fetch_all(&mut *conn)
        .await?;
        if !members.is_empty() {
            return Ok(members);
        }
    }
    Ok(Vec::new())
}

/// Stores a notice from the system to the given members and appends a
/// `notice.new` and a to-do event to each one's `user:ID` topic. The
/// sender is the system administrator account, which every deployment has.
pub async fn send_notice(
    conn: &mut AnyConnection,
    member_ids: &[i64],
    title: &str,
    body_html: &str,
    todo_kind: &str,
    data: &serde_json::Value,
) -> AppResult<Vec<Event>> {
    if member_ids.is_empty() {
        tracing::warn!(title, "membership reminder has no recipient");
        return Ok(Vec::new());
    }
    let sender: i64 = sqlx::query_scalar(
        "SELECT id FROM accounts WHERE system_role = 'system_admin' ORDER BY id LIMIT 1",
    )
    .fetch_one(&mut *conn)
    .await?;
    let now = now_ms();
    let notice_id: i64 = sqlx::query_scalar(
        "INSERT INTO notices (sender_id, sender_name, title, body_html, priority, require_confirm, \
         status, created_at) VALUES ($1, '党务系统', $2, $3, 'normal', 0, 'active', $4) RETURNING id",
    )
    .bind(sender)
    .bind(title)
    .bind(body_html)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let mut outgoing = Vec::new();
    for member_id in member_ids {
        sqlx::query("INSERT INTO notice_targets (notice_id, member_id) VALUES ($1, $2)")
            .bind(notice_id)
            .bind(member_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO notice_recipients (notice_id, member_id, org_id) \
             SELECT $1, id, org_id FROM members WHERE id = $2",
        )
        .bind(notice_id)
        .bind(member_id)
        .execute(&mut *conn)
        .await?;
        let account: Option<i64> =
            sqlx::query_scalar("SELECT id FROM accounts WHERE member_id = $1")
                .bind(member_id)
                .fetch_optional(&mut *conn)
                .await?;
        let Some(account) = account else { continue };
        let topic = format!("user:{account}");
        let summary = json!({"id": notice_id, "title": title, "priority": "normal",
            "sender_name": "党务系统", "require_confirm": false, "created_at": now});
        outgoing.push(events::append(conn, &topic, "notice.new", summary).await?);
        outgoing.push(events::append(conn, &topic, todo_kind, data.clone()).await?);
    }
    Ok(outgoing)
}
