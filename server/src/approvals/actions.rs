//! `POST /api/documents/{id}/actions`: one workflow action, applied by the
//! engine, stored with optimistic concurrency, signed, audited and
//! announced on the hub.
//!
//! The row update names the workflow version the action was computed on,
//! so of two actions racing on one version only the first commits; the
//! other is answered with 409. Everything an action changes (state, task
//! list, participants, document number, signed record, audit entry, hub
//! events) commits in one transaction before the answer is sent.

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use ed25519_dalek::Signer;
use serde::Deserialize;
use serde_json::json;
use sqlx::AnyConnection;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::documents::{DocumentView, view};
use super::engine::{
    self, Action, ActionError, Context, Decision, DocumentFields, Effect, Instance, MemberId,
    OrgRelative, Placement, ReturnTarget, Route, Work,
};
use super::messages::{self, Names};
use super::store::{self, DocumentRow, member_of};
use super::{deadlines, numbering};
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::hub::protocol::Event;
use crate::hub::store as events;
use crate::org::OrgRole;
use crate::perm::Caller;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(act))
}

/// An action as a client requests it; the server plans the route itself.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum RequestedAction {
    Submit {
        based_on_version: u64,
    },
    Approve {
        based_on_version: u64,
        opinion: String,
        body_version: Option<i64>,
    },
    Reject {
        based_on_version: u64,
        opinion: String,
        body_version: Option<i64>,
    },
    Return {
        based_on_version: u64,
        #[schema(value_type = Object)]
        target: ReturnTarget,
        #[serde(default)]
        opinion: String,
    },
    Withdraw {
        based_on_version: u64,
    },
    Delegate {
        based_on_version: u64,
        to: i64,
    },
    AddSigner {
        based_on_version: u64,
        member: i64,
        #[schema(value_type = String)]
        placement: Placement,
    },
    Urge {
        based_on_version: u64,
        member: Option<i64>,
    },
    Comment {
        based_on_version: u64,
        text: String,
    },
    MarkRead {
        based_on_version: u64,
    },
}

impl RequestedAction {
    fn based_on(&self) -> u64 {
        match self {
            Self::Submit { based_on_version }
            | Self::Approve {
                based_on_version, ..
            }
            | Self::Reject {
                based_on_version, ..
            }
            | Self::Return {
                based_on_version, ..
            }
            | Self::Withdraw { based_on_version }
            | Self::Delegate {
                based_on_version, ..
            }
            | Self::AddSigner {
                based_on_version, ..
            }
            | Self::Urge {
                based_on_version, ..
            }
            | Self::Comment {
                based_on_version, ..
            }
            | Self::MarkRead { based_on_version } => *based_on_version,
        }
    }
}

fn check_text(field: &str, text: &str, max: usize) -> AppResult<String> {
    let text = text.trim();
    if text.chars().count() > max {
        return Err(AppError::invalid(
            field,
            format!("最多 {max} 个字符"),
            format!("at most {max} characters"),
        ));
    }
    Ok(text.to_owned())
}

/// Applies one workflow action and returns the updated document page.
#[utoipa::path(post, path = "/api/documents/{id}/actions", tag = "approvals", request_body = RequestedAction,
    params(("id" = i64, Path, description = "Document id")),
    responses((status = 200, body = DocumentView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(request): ApiJson<RequestedAction>,
) -> AppResult<ApiJson<DocumentView>> {
    let actor = member_of(&caller)?;
    let mut attempt = 1;
    loop {
        let document = store::visible(&state, &caller, id).await?;
        if document.status == "voided" {
            return Err(AppError::conflict(
                "document_voided",
                "公文已作废",
                "the document has been voided",
            ));
        }
        let instance = document.instance()?;
        let context = Context {
            actor,
            based_on_version: request.based_on(),
            at: Utc::now(),
        };
        let mut tx = state.db.begin().await?;
        let action = to_engine_action(&mut tx, &document, request.clone()).await?;
        let transition = match engine::apply(&instance, context, action) {
            Ok(transition) => transition,
            Err(error) => return Err(action_error(&mut tx, &instance, error).await?),
        };
        let stored = store_transition(
            &state, &caller, &mut tx, &document, &instance, transition, context.at,
        )
        .await?;
        let Some(outcome) = stored else {
            // Another action committed between reading and storing. The
            // engine judges the request again against the new state: a
            // countersigner's decision still applies, anything else is stale.
            drop(tx);
            if attempt == MAX_ATTEMPTS {
                return Err(lost_race());
            }
            attempt += 1;
            continue;
        };
        tx.commit().await?;
        state.hub.publish(outcome);
        return Ok(ApiJson(view(&state, &caller, id).await?));
    }
}

/// How often an action is judged again after losing a race with another
/// action on the same document.
const MAX_ATTEMPTS: u32 = 3;

fn lost_race() -> AppError {
    AppError::conflict(
        "stale_version",
        "公文刚被他人办理，请刷新后再试",
        "someone acted on the document at the same moment; reload and try again",
    )
}

async fn to_engine_action(
    conn: &mut AnyConnection,
    document: &DocumentRow,
    request: RequestedAction,
) -> AppResult<Action> {
    let body_version = |requested: Option<i64>| -> AppResult<Option<u64>> {
        match requested {
            Some(version) if version != document.body_version => Err(AppError::conflict(
                "stale_body",
                format!("您审阅的是第 {version} 版正文，当前为第 {} 版，请刷新后再办理", document.body_version),
                format!("you reviewed body version {version}, but the current one is {}; reload and act again", document.body_version),
            )
            .field("body_version")),
            _ => Ok(Some(document.body_version as u64)),
        }
    };
    Ok(match request {
        RequestedAction::Submit { .. } => Action::Submit {
            route: plan(conn, document).await?,
        },
        RequestedAction::Approve {
            opinion,
            body_version: v,
            ..
        } => Action::Approve(Decision {
            opinion: check_text("opinion", &opinion, 1000)?,
            body_version: body_version(v)?,
        }),
        RequestedAction::Reject {
            opinion,
            body_version: v,
            ..
        } => Action::Reject(Decision {
            opinion: check_text("opinion", &opinion, 1000)?,
            body_version: body_version(v)?,
        }),
        RequestedAction::Return {
            target, opinion, ..
        } => Action::Return {
            target,
            opinion: check_text("opinion", &opinion, 1000)?,
        },
        RequestedAction::Withdraw { .. } => Action::Withdraw,
        RequestedAction::Delegate { to, .. } => Action::Delegate {
            to: existing_member(conn, "to", to).await?,
        },
        RequestedAction::AddSigner {
            member, placement, ..
        } => Action::AddSigner {
            member: existing_member(conn, "member", member).await?,
            placement,
        },
        RequestedAction::Urge { member, .. } => Action::Urge {
            member: member.map(MemberId),
        },
        RequestedAction::Comment { text, .. } => {
            let text = check_text("text", &text, 1000)?;
            if text.is_empty() {
                return Err(AppError::invalid(
                    "text",
                    "评论不能为空",
                    "comment is empty",
                ));
            }
            Action::Comment { text }
        }
        RequestedAction::MarkRead { .. } => Action::MarkRead,
    })
}

async fn existing_member(conn: &mut AnyConnection, field: &str, id: i64) -> AppResult<MemberId> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    if count == 0 {
        return Err(AppError::not_found(("党员", "member"), id).field(field));
    }
    Ok(MemberId(id))
}

/// Plans the route from the template version the document keeps, resolving
/// roles against the issuing organization and its ancestors.
async fn plan(conn: &mut AnyConnection, document: &DocumentRow) -> AppResult<Route> {
    let (_, template) = super::templates::load(conn, document.template_id).await?;
    let path: String = sqlx::query_scalar("SELECT path FROM orgs WHERE id = $1")
        .bind(document.org_id)
        .fetch_one(&mut *conn)
        .await?;
    // Ids from the issuing organization upwards: index 0 is the issuing
    // organization, 1 its parent, and so on.
    let lineage: Vec<i64> = path
        .split('/')
        .filter_map(|p| p.parse().ok())
        .rev()
        .collect();
    let rows: Vec<(i64, i64, String)> = sqlx::query_as(&format!(
        "SELECT org_id, member_id, role FROM org_roles WHERE org_id IN ({}) ORDER BY assigned_at, member_id",
        lineage.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
    ))
    .fetch_all(&mut *conn)
    .await?;
    let resolver = move |role: OrgRole, relative: OrgRelative| -> Vec<MemberId> {
        let levels = match relative {
            OrgRelative::Issuing => 0,
            OrgRelative::Parent => 1,
            OrgRelative::Ancestor { levels } => usize::from(levels),
        };
        let Some(org) = lineage.get(levels) else {
            return Vec::new();
        };
        rows.iter()
            .filter(|(org_id, _, held)| org_id == org && held == role.as_str())
            .map(|(_, member, _)| MemberId(*member))
            .collect()
    };
    let fields: DocumentFields = [
        ("doc_type".to_owned(), document.doc_type.clone()),
        ("security_level".to_owned(), document.security_level.clone()),
        ("urgency".to_owned(), document.urgency.clone()),
    ]
    .into_iter()
    .collect();
    match engine::plan_route(&template, &fields, &resolver) {
        Ok(route) => Ok(route),
        Err(error) => {
            let names = Names::of_route_error(conn, &error).await?;
            Err(AppError::invalid(
                "route",
                messages::route_error(&error, &names),
                error.to_string(),
            ))
        }
    }
}

/// Turns a rejected action into a 409 that names the people and steps
/// involved.
async fn action_error(
    conn: &mut AnyConnection,
    instance: &Instance,
    error: ActionError,
) -> AppResult<AppError> {
    let code = match &error {
        ActionError::Stale { .. } | ActionError::UnknownVersion { .. } => "stale_version",
        _ => "action_not_allowed",
    };
    let names = Names::of_action_error(conn, instance, &error).await?;
    Ok(AppError::conflict(
        code,
        messages::action_error(&error, &names),
        error.to_string(),
    ))
}

/// Stores the new state and carries out the effects; returns the hub
/// events to publish after commit.
#[allow(clippy::too_many_arguments)]
async fn store_transition(
    state: &AppState,
    caller: &Caller,
    conn: &mut AnyConnection,
    document: &DocumentRow,
    before: &Instance,
    transition: engine::Transition,
    at: DateTime<Utc>,
) -> AppResult<Option<Vec<Event>>> {
    let after = transition.instance;
    let status = status_name(&after);
    let now = now_ms();
    let claimed = sqlx::query(
        "UPDATE documents SET workflow = $1, workflow_version = $2, status = $3, updated_at = $4 \
         WHERE id = $5 AND workflow_version = $6",
    )
    .bind(serde_json::to_string(&after).map_err(AppError::internal)?)
    .bind(after.version as i64)
    .bind(&status)
    .bind(now)
    .bind(document.id)
    .bind(before.version as i64)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(None);
    }
    let entry = after
        .history
        .last()
        .expect("an applied action is in the history");
    let action_json = serde_json::to_value(&entry.action).map_err(AppError::internal)?;
    record_signed(
        state,
        conn,
        document,
        entry.version,
        entry.actor,
        &action_json,
        at,
    )
    .await?;
    let mut outgoing = Vec::new();
    for effect in &transition.effects {
        outgoing.extend(apply_effect(conn, document, effect).await?);
    }
    let actor_name = store::member_name(conn, entry.actor).await?;
    let turn = serde_json::to_value(engine::whose_turn(&after)).map_err(AppError::internal)?;
    outgoing.push(
        events::append(
            conn,
            &format!("document:{}", document.id),
            "document.action",
            json!({"version": after.version, "actor": entry.actor.0, "actor_name": actor_name,
                   "action": action_json, "status": status, "turn": turn}),
        )
        .await?,
    );
    audit::append(
        conn,
        &state.audit_key,
        &caller.session.actor(),
        &format!(
            "document.{}",
            entry.action.kind().as_str().replace(' ', "_")
        ),
        ("document", document.id.to_string()),
        json!({"version": after.version, "status": status}),
    )
    .await?;
    Ok(Some(outgoing))
}

/// Signs and stores the action over the hash of the current body version.
async fn record_signed(
    state: &AppState,
    conn: &mut AnyConnection,
    document: &DocumentRow,
    version: u64,
    actor: MemberId,
    action: &serde_json::Value,
    at: DateTime<Utc>,
) -> AppResult<()> {
    let body_sha256: String = sqlx::query_scalar(
        "SELECT sha256 FROM document_versions WHERE document_id = $1 AND version = $2",
    )
    .bind(document.id)
    .bind(document.body_version)
    .fetch_one(&mut *conn)
    .await?;
    let at_ms = at.timestamp_millis();
    let message = signed_message(
        document.id,
        version as i64,
        actor.0,
        &action.to_string(),
        document.body_version,
        &body_sha256,
        at_ms,
    );
    let signature = hex::encode(state.audit_key.sign(message.as_bytes()).to_bytes());
    let actor_name = store::member_name(conn, actor).await?;
    sqlx::query(
        "INSERT INTO document_actions (document_id, workflow_version, actor_member, actor_name, action, body_version, \
         body_sha256, signature, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(document.id)
    .bind(version as i64)
    .bind(actor.0)
    .bind(actor_name)
    .bind(action.to_string())
    .bind(document.body_version)
    .bind(body_sha256)
    .bind(signature)
    .bind(at_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The exact bytes an action signature covers.
pub fn signed_message(
    document_id: i64,
    version: i64,
    actor: i64,
    action: &str,
    body_version: i64,
    body_sha256: &str,
    at_ms: i64,
) -> String {
    format!(
        "dangwu-approval-action\n{document_id}\n{version}\n{actor}\n{action}\n{body_version}\n{body_sha256}\n{at_ms}"
    )
}

async fn user_event(
    conn: &mut AnyConnection,
    member: MemberId,
    kind: &str,
    data: serde_json::Value,
) -> AppResult<Option<Event>> {
    match store::account_of(conn, member).await? {
        Some(account) => Ok(Some(
            events::append(conn, &format!("user:{account}"), kind, data).await?,
        )),
        None => Ok(None),
    }
}

async fn apply_effect(
    conn: &mut AnyConnection,
    document: &DocumentRow,
    effect: &Effect,
) -> AppResult<Vec<Event>> {
    let summary = json!({"document_id": document.id, "title": document.title});
    let mut out = Vec::new();
    match effect {
        Effect::TaskOpened {
            task,
            member,
            work,
            deadline_working_days,
        } => {
            sqlx::query("INSERT INTO document_tasks (document_id, task_id, member_id, work, opened_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(document.id)
                .bind(task.0 as i64)
                .bind(member.0)
                .bind(serde_json::to_string(work).map_err(AppError::internal)?)
                .bind(now_ms())
                .execute(&mut *conn)
                .await?;
            store::add_participants(conn, document.id, [*member]).await?;
            let due_at = match deadline_working_days {
                Some(days) => {
                    Some(deadlines::set_due(conn, document.id, task.0, *days, Utc::now()).await?)
                }
                None => None,
            };
            let reading = matches!(work, Work::Reading);
            out.extend(user_event(conn, *member, "todo.added", json!({"document_id": document.id, "title": document.title, "reading": reading, "due_at": due_at})).await?);
        }
        Effect::TaskClosed { task, member, .. } => {
            sqlx::query("DELETE FROM document_tasks WHERE document_id = $1 AND task_id = $2")
                .bind(document.id)
                .bind(task.0 as i64)
                .execute(&mut *conn)
                .await?;
            out.extend(user_event(conn, *member, "todo.removed", summary.clone()).await?);
        }
        Effect::CarbonCopy { members, .. } | Effect::CirculationStarted { readers: members } => {
            store::add_participants(conn, document.id, members.iter().copied()).await?;
            for member in members {
                out.extend(user_event(conn, *member, "document.copied", summary.clone()).await?);
            }
        }
        Effect::NotifyDrafter { drafter, reason } => {
            out.extend(
                user_event(
                    conn,
                    *drafter,
                    "document.drafter",
                    json!({"document_id": document.id, "title": document.title, "reason": reason}),
                )
                .await?,
            );
        }
        Effect::Urged { members, .. } => {
            for member in members {
                out.extend(user_event(conn, *member, "todo.urged", summary.clone()).await?);
            }
        }
        Effect::SignedOff => {
            numbering::assign(conn, document).await?;
        }
        Effect::SignerAdded { member, .. } | Effect::Delegated { to: member, .. } => {
            store::add_participants(conn, document.id, [*member]).await?;
        }
        Effect::StepStarted { .. }
        | Effect::StepApproved { .. }
        | Effect::CirculationFinished
        | Effect::Commented { .. } => {}
    }
    Ok(out)
}

/// A short status name for lists and filters.
pub fn status_name(instance: &Instance) -> String {
    serde_json::to_value(instance.status())
        .ok()
        .and_then(|value| {
            value
                .get("status")
                .and_then(|s| s.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
