//! Step deadlines. A task whose step has a deadline gets a due time from the
//! working-day calendar when it opens. A periodic sweep reminds the assignee
//! on the day the task is due and, once it is overdue, notifies the
//! assignee's superior, who may then read the document.
//!
//! The superior is the secretary (书记) of the assignee's organization, or of
//! the nearest ancestor organization with a secretary who is not the
//! assignee. Each reminder and escalation happens once per task: one node
//! at a time sweeps (it holds a lease), and the sweep claims a task with a
//! conditional update, so a node that takes over does not repeat them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{AnyConnection, Row};

use super::engine::MemberId;
use super::store;
use crate::audit::{self, Actor};
use crate::calendar::Calendar;
use crate::error::AppResult;
use crate::hub::protocol::Event;
use crate::hub::store as events;
use crate::state::AppState;

/// How often the server looks for tasks to remind or escalate.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// How long before the due time the assignee is reminded: the due day.
const REMIND_BEFORE_MS: i64 = 24 * 3600 * 1000;

/// Sets the due time of a task that just opened with a deadline.
pub async fn set_due(
    conn: &mut AnyConnection,
    document_id: i64,
    task: u64,
    working_days: u32,
    opened: DateTime<Utc>,
) -> AppResult<i64> {
    let calendar = Calendar::load(conn).await?;
    let due_at = calendar.due_at(opened, working_days);
    sqlx::query("UPDATE document_tasks SET due_at = $1 WHERE document_id = $2 AND task_id = $3")
        .bind(due_at)
        .bind(document_id)
        .bind(task as i64)
        .execute(&mut *conn)
        .await?;
    Ok(due_at)
}

/// Counts of the reminders and escalations of one sweep.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub reminded: usize,
    pub escalated: usize,
}

/// Runs [`sweep`] every [`SWEEP_INTERVAL`] until the task is aborted, on
/// the node that holds the `approval-deadlines` lease.
pub async fn run(state: AppState) {
    let db = state.db.clone();
    let holder = state.config.node_id.clone();
    crate::lease::run_periodically(
        db,
        "approval-deadlines",
        holder,
        SWEEP_INTERVAL,
        move || {
            let state = state.clone();
            async move { sweep_and_log(&state).await }
        },
    )
    .await
}

async fn sweep_and_log(state: &AppState) {
    match sweep(state, Utc::now()).await {
        Ok(swept) if swept != Swept::default() => {
            tracing::info!(
                reminded = swept.reminded,
                escalated = swept.escalated,
                "approval deadlines swept"
            );
        }
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "approval deadline sweep failed"),
    }
}

/// Reminds assignees whose tasks are due by the end of today and escalates
/// tasks overdue at `now`, each once.
pub async fn sweep(state: &AppState, now: DateTime<Utc>) -> AppResult<Swept> {
    let now_ms = now.timestamp_millis();
    let mut swept = Swept::default();

    let overdue = tasks_due(state, i64::MIN, now_ms, "escalated_at").await?;
    for (document_id, task_id, member_id, due_at) in overdue {
        let mut tx = state.db.begin().await?;
        let claimed = sqlx::query(
            "UPDATE document_tasks SET escalated_at = $1, reminded_at = COALESCE(reminded_at, $1) \
             WHERE document_id = $2 AND task_id = $3 AND escalated_at IS NULL",
        )
        .bind(now_ms)
        .bind(document_id)
        .bind(task_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            continue;
        }
        let outgoing = escalate(state, &mut tx, document_id, MemberId(member_id), due_at).await?;
        tx.commit().await?;
        state.hub.publish(outgoing);
        swept.escalated += 1;
    }

    let due_today = tasks_due(state, now_ms, now_ms + REMIND_BEFORE_MS, "reminded_at").await?;
    for (document_id, task_id, member_id, due_at) in due_today {
        let mut tx = state.db.begin().await?;
        let claimed = sqlx::query(
            "UPDATE document_tasks SET reminded_at = $1 \
             WHERE document_id = $2 AND task_id = $3 AND reminded_at IS NULL",
        )
        .bind(now_ms)
        .bind(document_id)
        .bind(task_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            continue;
        }
        let title = document_title(&mut tx, document_id).await?;
        let mut outgoing = Vec::new();
        if let Some(account) = store::account_of(&mut tx, MemberId(member_id)).await? {
            outgoing.push(
                events::append(
                    &mut tx,
                    &format!("user:{account}"),
                    "todo.due",
                    json!({"document_id": document_id, "title": title, "due_at": due_at}),
                )
                .await?,
            );
        }
        tx.commit().await?;
        state.hub.publish(outgoing);
        swept.reminded += 1;
    }
    Ok(swept)
}

/// Lists open tasks, as (document, task, member, due time), due after
/// `after` and at or before `until` whose `unclaimed` column is still empty.
async fn tasks_due(
    state: &AppState,
    after: i64,
    until: i64,
    unclaimed: &'static str,
) -> AppResult<Vec<(i64, i64, i64, i64)>> {
    let rows = sqlx::query(&format!(
        "SELECT document_id, task_id, member_id, due_at FROM document_tasks \
         WHERE due_at IS NOT NULL AND due_at > $1 AND due_at <= $2 AND {unclaimed} IS NULL"
    ))
    .bind(after)
    .bind(until)
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("document_id")?,
                row.try_get("task_id")?,
                row.try_get("member_id")?,
                row.try_get("due_at")?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Notifies the superior and the document's viewers that a task is overdue,
/// lets the superior read the document, and records it in the audit trail.
async fn escalate(
    state: &AppState,
    conn: &mut AnyConnection,
    document_id: i64,
    assignee: MemberId,
    due_at: i64,
) -> AppResult<Vec<Event>> {
    let title = document_title(conn, document_id).await?;
    let assignee_name = store::member_name(conn, assignee).await?;
    let superior = superior_of(conn, assignee).await?;
    let superior_name = match superior {
        Some(member) => Some(store::member_name(conn, member).await?),
        None => None,
    };
    let data = json!({
        "document_id": document_id,
        "title": title,
        "member": assignee.0,
        "member_name": assignee_name,
        "due_at": due_at,
        "superior": superior.map(|m| m.0),
        "superior_name": superior_name,
    });

    let mut outgoing = vec![
        events::append(
            conn,
            &format!("document:{document_id}"),
            "document.overdue",
            data.clone(),
        )
        .await?,
    ];
    if let Some(account) = store::account_of(conn, assignee).await? {
        outgoing.push(
            events::append(
                conn,
                &format!("user:{account}"),
                "todo.overdue",
                data.clone(),
            )
            .await?,
        );
    }
    if let Some(member) = superior {
        store::add_participants(conn, document_id, [member]).await?;
        if let Some(account) = store::account_of(conn, member).await? {
            outgoing.push(
                events::append(
                    conn,
                    &format!("user:{account}"),
                    "todo.escalated",
                    data.clone(),
                )
                .await?,
            );
        }
    }
    audit::append(
        conn,
        &state.audit_key,
        &Actor::system(),
        "approval.task.escalate",
        ("document", document_id.to_string()),
        json!({"member": assignee.0, "due_at": due_at, "superior": superior.map(|m| m.0)}),
    )
    .await?;
    Ok(outgoing)
}

async fn document_title(conn: &mut AnyConnection, document_id: i64) -> AppResult<String> {
    Ok(
        sqlx::query_scalar("SELECT title FROM documents WHERE id = $1")
            .bind(document_id)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// The secretary of the member's organization, or of the nearest ancestor
/// with a secretary other than the member.
pub async fn superior_of(
    conn: &mut AnyConnection,
    member: MemberId,
) -> AppResult<Option<MemberId>> {
    let mut org: Option<i64> = sqlx::query_scalar("SELECT org_id FROM members WHERE id = $1")
        .bind(member.0)
        .fetch_optional(&mut *conn)
        .await?;
    while let Some(org_id) = org {
        let secretary: Option<i64> = sqlx::query_scalar(
            "SELECT member_id FROM org_roles WHERE org_id = $1 AND role = 'secretary' \
             AND member_id <> $2 ORDER BY member_id LIMIT 1",
        )
        .bind(org_id)
        .bind(member.0)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(secretary) = secretary {
            return Ok(Some(MemberId(secretary)));
        }
        org = sqlx::query_scalar::<_, Option<i64>>("SELECT parent_id FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_optional(&mut *conn)
            .await?
            .flatten();
    }
    Ok(None)
}
