//! HTTP resource `/api/documents`: drafts, the document page, lists and
//! body versions.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::engine::{Instance, MemberId, OpenTask, TemplateRef, Turn, open_tasks, whose_turn};
use super::store::{self, DocumentRow, SECURITY_LEVELS, member_of};
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::files;
use crate::http::{ApiJson, Page, PageQuery};
use crate::hub::store as events;
use crate::notices::{AttachmentRef, sanitize_html};
use crate::org::load_org;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_documents, create_document))
        .routes(routes!(get_document))
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
        .routes(routes!(edit_body))
        .routes(routes!(put_cc))
        .routes(routes!(download_attachment))
}

/// Document types (公文种类) a draft may have.
pub const DOC_TYPES: &[&str] = &[
    "请示", "报告", "通知", "通报", "函", "纪要", "意见", "决定", "批复", "方案",
];
/// Urgency levels: 普通, 加急, 特急.
pub const URGENCIES: &[&str] = &["normal", "urgent", "very_urgent"];

fn one_of(field: &str, value: &str, allowed: &[&str]) -> AppResult<String> {
    if allowed.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(AppError::invalid(
            field,
            format!("{field} 取值无效：{value}（可选：{}）", allowed.join("、")),
            format!(
                "invalid {field} {value:?}: use one of {}",
                allowed.join(", ")
            ),
        ))
    }
}

fn body_hash(body_html: &str) -> String {
    hex::encode(Sha256::digest(body_html.as_bytes()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDocument {
    /// The issuing organization.
    pub org_id: i64,
    pub title: String,
    /// One of 请示, 报告, 通知, 通报, 函, 纪要, 意见, 决定, 批复, 方案.
    pub doc_type: String,
    /// public (公开), internal (内部) or confidential (秘密).
    pub security_level: String,
    /// normal, urgent or very_urgent.
    #[serde(default = "normal")]
    pub urgency: String,
    /// A template version usable in the issuing organization.
    pub template_id: i64,
    /// Rich text; sanitized on the server.
    #[serde(default)]
    pub body_html: String,
    /// Prefix of the document number, e.g. `青委`; defaults to the issuing
    /// organization's name.
    pub number_prefix: Option<String>,
    /// Organizations the document is copied to (抄送机关), in order.
    #[serde(default)]
    pub cc_org_ids: Vec<i64>,
    /// Uploaded files (`POST /api/files`) attached to the document, in order.
    #[serde(default)]
    pub attachments: Vec<AttachmentRef>,
}

/// Maximum number of files attached to one document.
const MAX_ATTACHMENTS: usize = 20;

async fn store_attachments(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    attachments: &[AttachmentRef],
) -> AppResult<()> {
    if attachments.len() > MAX_ATTACHMENTS {
        return Err(AppError::invalid(
            "attachments",
            format!("附件最多 {MAX_ATTACHMENTS} 个"),
            format!("at most {MAX_ATTACHMENTS} attachments"),
        ));
    }
    for (position, attachment) in attachments.iter().enumerate() {
        let field = format!("attachments[{position}]");
        let name =
            files::check_attachment(conn, &field, &attachment.sha256, &attachment.name).await?;
        sqlx::query(
            "INSERT INTO document_attachments (document_id, position, sha256, name) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(position as i64)
        .bind(&attachment.sha256)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Downloads a document's attachment, for anyone who may read the document.
#[utoipa::path(get, path = "/api/documents/{id}/attachments/{position}", tag = "approvals",
    params(("id" = i64, Path, description = "Document id"), ("position" = i64, Path, description = "Attachment position, from 0")),
    responses((status = 200, content_type = "application/octet-stream"), (status = 404, body = ErrorBody)))]
async fn download_attachment(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, position)): Path<(i64, i64)>,
) -> AppResult<axum::response::Response> {
    store::visible(&state, &caller, id).await?;
    let row = sqlx::query(
        "SELECT a.sha256, a.name, f.mime FROM document_attachments a \
         JOIN stored_files f ON f.sha256 = a.sha256 WHERE a.document_id = $1 AND a.position = $2",
    )
    .bind(id)
    .bind(position)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| AppError::not_found(("附件", "attachment"), position))?;
    let sha256: String = row.try_get("sha256")?;
    let name: String = row.try_get("name")?;
    let mime: String = row.try_get("mime")?;
    let bytes = files::read_blob(&state.config.store.files_dir(), &sha256).await?;
    Ok(files::download(&name, mime, bytes))
}

/// Maximum number of organizations one document is copied to.
const MAX_CC_ORGS: usize = 30;

/// Checks and stores the organizations a document is copied to.
async fn store_cc(conn: &mut sqlx::AnyConnection, id: i64, org_ids: &[i64]) -> AppResult<()> {
    if org_ids.len() > MAX_CC_ORGS {
        return Err(AppError::invalid(
            "cc_org_ids",
            format!("抄送机关最多 {MAX_CC_ORGS} 个"),
            format!("at most {MAX_CC_ORGS} organizations can be copied"),
        ));
    }
    for (index, org_id) in org_ids.iter().enumerate() {
        let field = format!("cc_org_ids[{index}]");
        if org_ids[..index].contains(org_id) {
            return Err(AppError::invalid(
                &field,
                "抄送机关重复",
                "the organization is listed twice",
            ));
        }
        load_org(conn, *org_id).await.map_err(|e| e.field(&field))?;
    }
    sqlx::query("DELETE FROM document_cc WHERE document_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for (position, org_id) in org_ids.iter().enumerate() {
        sqlx::query("INSERT INTO document_cc (document_id, org_id, position) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(org_id)
            .bind(position as i64)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The request body that replaces a document's copied organizations.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CcUpdate {
    pub cc_org_ids: Vec<i64>,
}

/// Replaces the organizations the document is copied to (抄送机关): the
/// drafter, while the document is a draft or back with the drafter.
#[utoipa::path(put, path = "/api/documents/{id}/cc", tag = "approvals", request_body = CcUpdate,
    params(("id" = i64, Path, description = "Document id")),
    responses((status = 200, body = DocumentView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_cc(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(update): ApiJson<CcUpdate>,
) -> AppResult<ApiJson<DocumentView>> {
    let member = member_of(&caller)?;
    let document = store::visible(&state, &caller, id).await?;
    let instance = document.instance()?;
    if instance.drafter != member || !instance.status().waits_for_drafter() {
        return Err(AppError::conflict(
            "not_editable",
            "只有起草人在公文未提交或被退回时可以修改抄送机关",
            "only the drafter can change the copied organizations, while the document is with them",
        ));
    }
    let mut tx = state.db.begin().await?;
    store_cc(&mut tx, id, &update.cc_org_ids).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "document.cc",
        ("document", id.to_string()),
        json!({"cc_org_ids": update.cc_org_ids}),
    )
    .await?;
    tx.commit().await?;
    Ok(ApiJson(view(&state, &caller, id).await?))
}

/// An organization a document is copied to.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CcOrg {
    pub id: i64,
    pub name: String,
}

async fn cc_orgs(state: &AppState, id: i64) -> AppResult<Vec<CcOrg>> {
    let rows = sqlx::query(
        "SELECT o.id, o.name FROM document_cc c JOIN orgs o ON o.id = c.org_id \
         WHERE c.document_id = $1 ORDER BY c.position",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(CcOrg {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AppError::from)
}

fn normal() -> String {
    "normal".to_owned()
}

/// Creates a draft in an organization the caller belongs to or manages.
#[utoipa::path(post, path = "/api/documents", tag = "approvals", request_body = NewDocument,
    responses((status = 201, body = DocumentView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_document(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewDocument>,
) -> AppResult<(StatusCode, ApiJson<DocumentView>)> {
    let drafter = member_of(&caller)?;
    let title = input.title.trim().to_owned();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(AppError::invalid(
            "title",
            "标题须为 1 到 200 个字符",
            "title must be 1 to 200 characters",
        ));
    }
    let doc_type = one_of("doc_type", &input.doc_type, DOC_TYPES)?;
    let security_level = one_of("security_level", &input.security_level, &SECURITY_LEVELS)?;
    let urgency = one_of("urgency", &input.urgency, URGENCIES)?;
    if !store::cleared(&caller.session.account.clearance, &security_level) {
        return Err(AppError::invalid(
            "security_level",
            "密级高于您的涉密等级",
            "the security level is above your clearance",
        ));
    }
    let mut tx = state.db.begin().await?;
    let org = load_org(&mut tx, input.org_id)
        .await
        .map_err(|e| e.field("org_id"))?;
    if !caller.principal.can_org(&org.path, Access::Read) {
        return Err(AppError::forbidden().field("org_id"));
    }
    let (template, _) = super::templates::load(&mut tx, input.template_id)
        .await
        .map_err(|e| e.field("template_id"))?;
    let template_org = load_org(&mut tx, template.org_id).await?;
    if !org.path.starts_with(&template_org.path) {
        return Err(AppError::invalid(
            "template_id",
            "该模板不适用于此组织",
            "the template does not belong to this organization or its ancestors",
        ));
    }
    let prefix = input
        .number_prefix
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or(&org.name)
        .to_owned();
    let instance = Instance::new(
        drafter,
        TemplateRef {
            id: template.id,
            version: template.version as u32,
        },
    );
    let body_html = sanitize_html(&input.body_html);
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO documents (org_id, drafter_account, drafter_member, title, doc_type, security_level, urgency, \
         template_id, workflow, workflow_version, status, body_version, number_prefix, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 'draft', 1, $10, $11, $11) RETURNING id",
    )
    .bind(org.id)
    .bind(caller.session.account.id)
    .bind(drafter.0)
    .bind(&title)
    .bind(&doc_type)
    .bind(&security_level)
    .bind(&urgency)
    .bind(template.id)
    .bind(serde_json::to_string(&instance).map_err(AppError::internal)?)
    .bind(&prefix)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    insert_version(
        &mut tx,
        id,
        1,
        &body_html,
        caller.session.account.id,
        "起草",
    )
    .await?;
    store::add_participants(&mut tx, id, [drafter]).await?;
    store_cc(&mut tx, id, &input.cc_org_ids).await?;
    store_attachments(&mut tx, id, &input.attachments).await?;
    audit::append(&mut tx, &state.audit_key, &caller.session.actor(), "document.create", ("document", id.to_string()),
        json!({"title": title, "org_id": org.id, "security_level": security_level, "template_id": template.id,
               "cc_org_ids": input.cc_org_ids})).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(view(&state, &caller, id).await?),
    ))
}

async fn insert_version(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    version: i64,
    body_html: &str,
    author: i64,
    reason: &str,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO document_versions (document_id, version, body_html, sha256, author, reason, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(version)
    .bind(body_html)
    .bind(body_hash(body_html))
    .bind(author)
    .bind(reason)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One entry of the document's timeline: a signed workflow action.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    pub version: i64,
    pub actor_member: i64,
    pub actor_name: String,
    /// The action as the workflow stores it (`action` names its kind).
    #[schema(value_type = Object)]
    pub action: serde_json::Value,
    pub body_version: i64,
    pub body_sha256: String,
    /// Server signature (Ed25519, hex) over the action and body hash.
    pub signature: String,
    pub at: i64,
}

/// Everything the document page shows.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DocumentView {
    pub document: DocumentRow,
    pub body_html: String,
    #[schema(value_type = Object)]
    pub workflow: serde_json::Value,
    #[schema(value_type = Object)]
    pub turn: serde_json::Value,
    /// The caller's open tasks on this document.
    #[schema(value_type = Vec<Object>)]
    pub my_tasks: Vec<OpenTask>,
    pub timeline: Vec<TimelineEntry>,
    /// Names of everyone the view mentions, by member id.
    pub members: std::collections::BTreeMap<i64, String>,
    /// What the caller may do now, for showing the right buttons.
    pub can: Permissions,
    /// Why the document was voided, when it was.
    pub void_reason: Option<String>,
    /// Open tasks with a deadline, earliest first.
    pub deadlines: Vec<TaskDeadline>,
    /// Organizations the document is copied to (抄送机关), in order.
    pub cc_orgs: Vec<CcOrg>,
    pub attachments: Vec<files::AttachmentInfo>,
    /// The `document:ID` topic position this view includes.
    pub seq: i64,
}

/// The due time of one open task, and whether the assignee's superior was notified.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TaskDeadline {
    pub member: i64,
    pub member_name: String,
    /// End of the last working day of the deadline (Unix ms).
    pub due_at: i64,
    /// When the task was escalated as overdue (Unix ms).
    pub escalated_at: Option<i64>,
}

async fn deadlines(state: &AppState, id: i64) -> AppResult<Vec<TaskDeadline>> {
    let rows = sqlx::query(
        "SELECT t.member_id, m.name, t.due_at, t.escalated_at FROM document_tasks t \
         JOIN members m ON m.id = t.member_id \
         WHERE t.document_id = $1 AND t.due_at IS NOT NULL ORDER BY t.due_at, t.task_id",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(TaskDeadline {
                member: row.try_get("member_id")?,
                member_name: row.try_get("name")?,
                due_at: row.try_get("due_at")?,
                escalated_at: row.try_get("escalated_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AppError::from)
}

/// The caller's possible actions on the document as it stands.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Permissions {
    /// Submit (again): the drafter of a draft, returned or withdrawn document.
    pub submit: bool,
    /// Withdraw: the actor of the last workflow action while it may be undone.
    pub withdraw: bool,
    /// Save a new body version.
    pub edit_body: bool,
    /// Decide (approve, reject, return, delegate, add signer): an open task
    /// at a step.
    pub decide: bool,
}

/// Every member the document's route, seats and actions mention.
fn mentioned_members(instance: &Instance) -> std::collections::BTreeSet<i64> {
    let mut ids = std::collections::BTreeSet::from([instance.drafter.0]);
    if let Some(route) = &instance.progress.route {
        for step in &route.steps {
            ids.extend(
                step.assignees
                    .iter()
                    .chain(&step.cc_on_start)
                    .chain(&step.cc_on_finish)
                    .map(|m| m.0),
            );
        }
        ids.extend(route.circulation.iter().map(|m| m.0));
    }
    for step in &instance.progress.steps {
        for seat in step.seats() {
            ids.insert(seat.member.0);
            ids.extend(seat.delegated_from.iter().map(|m| m.0));
        }
    }
    for entry in &instance.history {
        ids.insert(entry.actor.0);
    }
    ids
}

async fn member_names(
    state: &AppState,
    ids: std::collections::BTreeSet<i64>,
) -> AppResult<std::collections::BTreeMap<i64, String>> {
    let mut names = std::collections::BTreeMap::new();
    if ids.is_empty() {
        return Ok(names);
    }
    let list = ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let rows: Vec<(i64, String)> = sqlx::query_as(&format!(
        "SELECT id, name FROM members WHERE id IN ({list})"
    ))
    .fetch_all(&state.db.pool)
    .await?;
    names.extend(rows);
    Ok(names)
}

fn permissions(instance: &Instance, me: Option<MemberId>, open: &[OpenTask]) -> Permissions {
    use super::engine::Status;
    let drafter = me == Some(instance.drafter);
    let waits_for_drafter = matches!(instance.progress.status, Status::Draft | Status::Withdrawn)
        || instance.progress.status.waits_for_drafter();
    let deciding = open
        .iter()
        .any(|task| matches!(task.work, super::engine::Work::Step { .. }));
    Permissions {
        submit: drafter && waits_for_drafter,
        withdraw: instance
            .undo
            .as_ref()
            .is_some_and(|undo| Some(undo.actor) == me),
        edit_body: (drafter && waits_for_drafter) || deciding,
        decide: deciding,
    }
}

/// Builds the document page for a caller who may see it.
pub async fn view(state: &AppState, caller: &Caller, id: i64) -> AppResult<DocumentView> {
    let seq = events::head(&state.db, &format!("document:{id}")).await?;
    let document = store::visible(state, caller, id).await?;
    let instance = document.instance()?;
    let body_html: String = sqlx::query_scalar(
        "SELECT body_html FROM document_versions WHERE document_id = $1 AND version = $2",
    )
    .bind(id)
    .bind(document.body_version)
    .fetch_one(&state.db.pool)
    .await?;
    let me = caller.session.account.member_id.map(MemberId);
    let my_tasks: Vec<OpenTask> = open_tasks(&instance)
        .into_iter()
        .filter(|task| Some(task.member) == me)
        .collect();
    let turn: Turn = whose_turn(&instance);
    let members = member_names(state, mentioned_members(&instance)).await?;
    let can = permissions(&instance, me, &my_tasks);
    let void_reason: Option<String> = sqlx::query_scalar(
        "SELECT void_reason FROM number_register WHERE document_id = $1 AND status = 'void'",
    )
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?
    .flatten();
    Ok(DocumentView {
        deadlines: deadlines(state, id).await?,
        cc_orgs: cc_orgs(state, id).await?,
        attachments: files::attachments_of(&state.db, "document_attachments", "document_id", id)
            .await?,
        void_reason,
        members,
        can,
        body_html,
        workflow: serde_json::to_value(&instance.progress).map_err(AppError::internal)?,
        turn: serde_json::to_value(turn).map_err(AppError::internal)?,
        my_tasks,
        timeline: timeline(state, id).await?,
        seq,
        document,
    })
}

async fn timeline(state: &AppState, id: i64) -> AppResult<Vec<TimelineEntry>> {
    let rows = sqlx::query(
        "SELECT workflow_version, actor_member, actor_name, action, body_version, body_sha256, signature, at \
         FROM document_actions WHERE document_id = $1 ORDER BY workflow_version",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            let action: String = row.try_get("action")?;
            Ok(TimelineEntry {
                version: row.try_get("workflow_version")?,
                actor_member: row.try_get("actor_member")?,
                actor_name: row.try_get("actor_name")?,
                action: serde_json::from_str(&action).map_err(AppError::internal)?,
                body_version: row.try_get("body_version")?,
                body_sha256: row.try_get("body_sha256")?,
                signature: row.try_get("signature")?,
                at: row.try_get("at")?,
            })
        })
        .collect()
}

/// Reads a document with its workflow, timeline and the caller's tasks.
#[utoipa::path(get, path = "/api/documents/{id}", tag = "approvals",
    params(("id" = i64, Path, description = "Document id")),
    responses((status = 200, body = DocumentView), (status = 404, body = ErrorBody)))]
async fn get_document(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<DocumentView>> {
    Ok(ApiJson(view(&state, &caller, id).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// `todo` (waiting for the caller), `drafts` (drafted by the caller) or
    /// `involved` (every document the caller is on). [default: todo]
    #[serde(rename = "box")]
    pub mailbox: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Lists the caller's documents: to do, drafted, or involved.
#[utoipa::path(get, path = "/api/documents", tag = "approvals", params(ListQuery),
    responses((status = 200, body = Page<DocumentRow>), (status = 422, body = ErrorBody)))]
async fn list_documents(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> AppResult<ApiJson<Page<DocumentRow>>> {
    let member = member_of(&caller)?;
    let page = PageQuery {
        limit: query.limit,
        offset: query.offset,
    };
    let condition = match query.mailbox.as_deref().unwrap_or("todo") {
        "todo" => "d.id IN (SELECT t.document_id FROM document_tasks t WHERE t.member_id = $1)",
        "drafts" => "d.drafter_member = $1",
        "involved" => {
            "d.id IN (SELECT p.document_id FROM document_participants p WHERE p.member_id = $1)"
        }
        other => {
            return Err(AppError::invalid(
                "box",
                format!("未知的列表：{other}"),
                format!("unknown box {other:?}: use todo, drafts or involved"),
            ));
        }
    };
    let (documents, total) =
        store::list_where(&state, condition, member.0, page.limit(), page.offset()).await?;
    // Clearance can be lowered after a document reached someone.
    let clearance = &caller.session.account.clearance;
    let documents = documents
        .into_iter()
        .filter(|d| store::cleared(clearance, &d.security_level))
        .collect();
    Ok(ApiJson(Page::new(documents, total, &page)))
}

/// One body version, without its text.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    pub version: i64,
    pub author: i64,
    pub author_name: String,
    pub reason: String,
    pub sha256: String,
    pub created_at: i64,
}

/// Lists the body versions, oldest first.
#[utoipa::path(get, path = "/api/documents/{id}/versions", tag = "approvals",
    params(("id" = i64, Path, description = "Document id")),
    responses((status = 200, body = Vec<VersionInfo>), (status = 404, body = ErrorBody)))]
async fn list_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<Vec<VersionInfo>>> {
    store::visible(&state, &caller, id).await?;
    let rows = sqlx::query(
        "SELECT v.version, v.author, a.display_name, v.reason, v.sha256, v.created_at FROM document_versions v \
         JOIN accounts a ON a.id = v.author WHERE v.document_id = $1 ORDER BY v.version",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    let versions = rows
        .iter()
        .map(|row| {
            Ok(VersionInfo {
                version: row.try_get("version")?,
                author: row.try_get("author")?,
                author_name: row.try_get("display_name")?,
                reason: row.try_get("reason")?,
                sha256: row.try_get("sha256")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(ApiJson(versions))
}

/// One body version's text.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VersionBody {
    pub version: i64,
    pub body_html: String,
    pub sha256: String,
}

/// Reads one body version, for viewing differences between versions.
#[utoipa::path(get, path = "/api/documents/{id}/versions/{version}", tag = "approvals",
    params(("id" = i64, Path, description = "Document id"), ("version" = i64, Path, description = "Body version")),
    responses((status = 200, body = VersionBody), (status = 404, body = ErrorBody)))]
async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(i64, i64)>,
) -> AppResult<ApiJson<VersionBody>> {
    store::visible(&state, &caller, id).await?;
    let row = sqlx::query(
        "SELECT body_html, sha256 FROM document_versions WHERE document_id = $1 AND version = $2",
    )
    .bind(id)
    .bind(version)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| AppError::not_found(("正文版本", "body version"), version))?;
    Ok(ApiJson(VersionBody {
        version,
        body_html: row.try_get("body_html")?,
        sha256: row.try_get("sha256")?,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BodyEdit {
    pub body_html: String,
    /// Why the body changed; shown in the version list.
    pub reason: String,
    /// The body version the edit was made on.
    pub based_on_body_version: i64,
}

/// Saves an edit as a new body version: by the drafter while the document
/// is a draft or returned, or by an approver with an open task.
#[utoipa::path(put, path = "/api/documents/{id}/body", tag = "approvals", request_body = BodyEdit,
    params(("id" = i64, Path, description = "Document id")),
    responses((status = 200, body = VersionInfo), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn edit_body(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<BodyEdit>,
) -> AppResult<ApiJson<VersionInfo>> {
    let member = member_of(&caller)?;
    let reason = input.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(AppError::invalid(
            "reason",
            "请填写修改原因（最多 200 字）",
            "give a reason for the change (at most 200 characters)",
        ));
    }
    let document = store::visible(&state, &caller, id).await?;
    let instance = document.instance()?;
    let editing_allowed = if member.0 == document.drafter_member {
        instance.progress.status.waits_for_drafter()
            || matches!(instance.progress.status, super::engine::Status::Draft)
    } else {
        open_tasks(&instance)
            .iter()
            .any(|task| task.member == member)
    };
    if !editing_allowed {
        return Err(AppError::forbidden());
    }
    let body_html = sanitize_html(&input.body_html);
    let new_version = input.based_on_body_version + 1;
    let mut tx = state.db.begin().await?;
    let claimed = sqlx::query("UPDATE documents SET body_version = $1, updated_at = $2 WHERE id = $3 AND body_version = $4")
        .bind(new_version)
        .bind(now_ms())
        .bind(id)
        .bind(input.based_on_body_version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if claimed == 0 {
        return Err(AppError::conflict(
            "stale_body",
            format!(
                "正文已被他人修改（当前为第 {} 版），请刷新后再改",
                document.body_version
            ),
            format!(
                "the body changed meanwhile (now version {}); reload and edit again",
                document.body_version
            ),
        )
        .field("based_on_body_version"));
    }
    insert_version(
        &mut tx,
        id,
        new_version,
        &body_html,
        caller.session.account.id,
        &reason,
    )
    .await?;
    let event = events::append(&mut tx, &format!("document:{id}"), "document.edited",
        json!({"body_version": new_version, "author": caller.session.account.display_name, "reason": reason})).await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "document.edit",
        ("document", id.to_string()),
        json!({"body_version": new_version, "reason": reason, "sha256": body_hash(&body_html)}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish([event]);
    Ok(ApiJson(VersionInfo {
        version: new_version,
        author: caller.session.account.id,
        author_name: caller.session.account.display_name.clone(),
        reason,
        sha256: body_hash(&body_html),
        created_at: now_ms(),
    }))
}
