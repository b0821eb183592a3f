//! HTTP resource `/api/notices`: compose, inbox, sent list, one notice,
//! attachments, progress, remind and withdraw.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Priority, REMIND_INTERVAL_MS, receipts, sanitize_html};
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::files;
use crate::http::{ApiJson, Page, PageQuery};
use crate::hub::protocol::Event;
use crate::hub::store;
use crate::org::load_org;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_notice))
        .routes(routes!(inbox))
        .routes(routes!(sent))
        .routes(routes!(get_notice))
        .routes(routes!(attachment))
        .routes(routes!(progress))
        .routes(routes!(remind))
        .routes(routes!(withdraw))
        .merge(receipts::router())
}

/// Who receives a notice: whole organization subtrees and single members.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default)]
    pub org_ids: Vec<i64>,
    #[serde(default)]
    pub member_ids: Vec<i64>,
}

/// An attachment to include: a stored file's hash and the name to show.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRef {
    pub sha256: String,
    pub name: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNotice {
    pub title: String,
    /// Rich text; sanitized on the server.
    pub body_html: String,
    #[serde(default = "normal")]
    pub priority: Priority,
    /// Whether recipients must confirm with a short reply (回执).
    #[serde(default)]
    pub require_confirm: bool,
    pub targets: Targets,
    #[serde(default)]
    pub attachments: Vec<AttachmentRef>,
}

fn normal() -> Priority {
    Priority::Normal
}

/// A notice as its sender or a recipient sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Notice {
    pub id: i64,
    pub title: String,
    /// Empty for recipients once the notice is withdrawn.
    pub body_html: String,
    pub priority: Priority,
    pub require_confirm: bool,
    pub status: String,
    pub sender_id: i64,
    pub sender_name: String,
    pub created_at: i64,
    pub attachments: Vec<files::AttachmentInfo>,
    /// The caller's own receipt, when the caller is a recipient.
    pub receipt: Option<Receipt>,
    pub is_sender: bool,
}

#[derive(Serialize, utoipa::ToSchema, Clone)]
pub struct Receipt {
    pub read_at: Option<i64>,
    pub confirmed_at: Option<i64>,
    pub reply: Option<String>,
}

fn check_title(title: &str) -> AppResult<String> {
    let title = title.trim();
    let length = title.chars().count();
    if length == 0 || length > 200 {
        return Err(AppError::invalid(
            "title",
            "标题须为 1 到 200 个字符",
            "title must be 1 to 200 characters",
        ));
    }
    Ok(title.to_owned())
}

/// Sends a notice. The caller must manage every targeted organization and
/// be allowed to read every named member.
#[utoipa::path(post, path = "/api/notices", tag = "notices", request_body = NewNotice,
    responses((status = 201, body = Notice), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn send_notice(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewNotice>,
) -> AppResult<(StatusCode, ApiJson<Notice>)> {
    let notice = create_notice(&state, &caller, input).await?;
    Ok((StatusCode::CREATED, ApiJson(notice)))
}

/// Sends a notice as the caller: checks, stores, notifies recipients and
/// publishes. Issuing a signed-off document uses it too.
pub async fn create_notice(
    state: &AppState,
    caller: &Caller,
    input: NewNotice,
) -> AppResult<Notice> {
    let mut tx = state.db.begin().await?;
    let (id, events) = insert_notice(state, caller, &mut tx, input).await?;
    tx.commit().await?;
    tracing::info!(notice_id = id, "notice sent");
    state.hub.publish(events);
    load_notice(state, caller, id).await
}

/// Checks and stores a notice inside the caller's transaction, for changes
/// that must commit together with their notice (meeting invitations).
/// Returns the notice id and the recipients' events, which the caller
/// publishes after committing.
pub async fn insert_notice(
    state: &AppState,
    caller: &Caller,
    tx: &mut AnyConnection,
    input: NewNotice,
) -> AppResult<(i64, Vec<Event>)> {
    let title = check_title(&input.title)?;
    let body_html = sanitize_html(&input.body_html);
    if input.targets.org_ids.is_empty() && input.targets.member_ids.is_empty() {
        return Err(AppError::invalid(
            "targets",
            "请至少选择一个组织或党员",
            "choose at least one organization or member",
        ));
    }
    if input.attachments.len() > 20 {
        return Err(AppError::invalid(
            "attachments",
            "附件最多 20 个",
            "at most 20 attachments",
        ));
    }
    let org_paths = check_targets(state, caller, &mut *tx, &input.targets).await?;
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO notices (sender_id, sender_name, title, body_html, priority, require_confirm, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'active', $7) RETURNING id",
    )
    .bind(caller.session.account.id)
    .bind(&caller.session.account.display_name)
    .bind(&title)
    .bind(&body_html)
    .bind(input.priority.as_str())
    .bind(i64::from(input.require_confirm))
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    insert_attachments(&mut *tx, id, &input.attachments).await?;
    resolve_recipients(&mut *tx, id, &input.targets, &org_paths).await?;
    let recipients: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM notice_recipients WHERE notice_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if recipients == 0 {
        return Err(AppError::invalid(
            "targets",
            "所选范围内没有党员",
            "the chosen targets contain no members",
        ));
    }
    let summary = json!({"id": id, "title": title, "priority": input.priority, "sender_name": caller.session.account.display_name,
        "require_confirm": input.require_confirm, "created_at": now});
    let events = notify_recipients(&mut *tx, id, "notice.new", &summary, false).await?;
    audit::append(
        &mut *tx,
        &state.audit_key,
        &caller.session.actor(),
        "notice.send",
        ("notice", id.to_string()),
        json!({"title": title, "targets": input.targets, "recipients": recipients}),
    )
    .await?;
    tracing::debug!(notice_id = id, recipients, "notice stored");
    Ok((id, events))
}

async fn check_targets(
    state: &AppState,
    caller: &Caller,
    conn: &mut AnyConnection,
    targets: &Targets,
) -> AppResult<Vec<String>> {
    let mut paths = Vec::new();
    for (index, org_id) in targets.org_ids.iter().enumerate() {
        let org = load_org(conn, *org_id)
            .await
            .map_err(|e| e.field(format!("targets.org_ids[{index}]")))?;
        if !caller.principal.can_org(&org.path, Access::Write) {
            return Err(AppError::forbidden().field(format!("targets.org_ids[{index}]")));
        }
        paths.push(org.path);
    }
    for (index, member_id) in targets.member_ids.iter().enumerate() {
        let path: Option<String> = sqlx::query_scalar(
            "SELECT o.path FROM members m JOIN orgs o ON o.id = m.org_id WHERE m.id = $1",
        )
        .bind(member_id)
        .fetch_optional(&mut *conn)
        .await?;
        let field = format!("targets.member_ids[{index}]");
        let path = path.ok_or_else(|| {
            AppError::not_found(("党员", "member"), member_id).field(field.clone())
        })?;
        let allowed = caller.principal.can_member(*member_id, &path, Access::Read)
            || caller
                .principal
                .has_grant(&state.db, ("member", *member_id), Access::Read)
                .await?;
        if !allowed {
            return Err(AppError::forbidden().field(field));
        }
    }
    Ok(paths)
}

async fn insert_attachments(
    conn: &mut AnyConnection,
    id: i64,
    attachments: &[AttachmentRef],
) -> AppResult<()> {
    for (position, attachment) in attachments.iter().enumerate() {
        let field = format!("attachments[{position}]");
        let name =
            files::check_attachment(conn, &field, &attachment.sha256, &attachment.name).await?;
        sqlx::query("INSERT INTO notice_attachments (notice_id, sha256, name, position) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(&attachment.sha256)
            .bind(name)
            .bind(position as i64)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn resolve_recipients(
    conn: &mut AnyConnection,
    id: i64,
    targets: &Targets,
    org_paths: &[String],
) -> AppResult<()> {
    for (org_id, path) in targets.org_ids.iter().zip(org_paths) {
        sqlx::query("INSERT INTO notice_targets (notice_id, org_id) VALUES ($1, $2)")
            .bind(id)
            .bind(org_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO notice_recipients (notice_id, member_id, org_id) \
             SELECT $1, m.id, m.org_id FROM members m JOIN orgs o ON o.id = m.org_id \
             WHERE o.path LIKE $2 AND m.status <> 'moved_out' \
             ON CONFLICT (notice_id, member_id) DO NOTHING",
        )
        .bind(id)
        .bind(format!("{path}%"))
        .execute(&mut *conn)
        .await?;
    }
    for member_id in &targets.member_ids {
        sqlx::query("INSERT INTO notice_targets (notice_id, member_id) VALUES ($1, $2)")
            .bind(id)
            .bind(member_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO notice_recipients (notice_id, member_id, org_id) SELECT $1, id, org_id FROM members WHERE id = $2 \
             ON CONFLICT (notice_id, member_id) DO NOTHING",
        )
        .bind(id)
        .bind(member_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Appends one event per recipient account (only unread ones with
/// `unread_only`) and returns them for publishing after commit.
pub(super) async fn notify_recipients(
    conn: &mut AnyConnection,
    id: i64,
    kind: &str,
    data: &serde_json::Value,
    unread_only: bool,
) -> AppResult<Vec<Event>> {
    let accounts: Vec<i64> = sqlx::query_scalar(
        "SELECT a.id FROM notice_recipients r JOIN accounts a ON a.member_id = r.member_id \
         WHERE r.notice_id = $1 AND ($2 = 0 OR r.read_at IS NULL) ORDER BY a.id",
    )
    .bind(id)
    .bind(i64::from(unread_only))
    .fetch_all(&mut *conn)
    .await?;
    let mut events = Vec::with_capacity(accounts.len());
    for account in accounts {
        events.push(store::append(conn, &format!("user:{account}"), kind, data.clone()).await?);
    }
    Ok(events)
}

/// Loads a notice for a caller who is its sender or one of its recipients.
pub(super) async fn load_notice(state: &AppState, caller: &Caller, id: i64) -> AppResult<Notice> {
    let row = sqlx::query(
        "SELECT id, title, body_html, priority, require_confirm, status, sender_id, sender_name, created_at \
         FROM notices WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| AppError::not_found(("通知", "notice"), id))?;
    let sender_id: i64 = row.try_get("sender_id")?;
    let is_sender = sender_id == caller.session.account.id;
    let receipt = own_receipt(state, caller, id).await?;
    if !is_sender && receipt.is_none() {
        return Err(AppError::not_found(("通知", "notice"), id));
    }
    let status: String = row.try_get("status")?;
    let withdrawn = status == "withdrawn";
    let priority: String = row.try_get("priority")?;
    let attachments = if withdrawn && !is_sender {
        Vec::new()
    } else {
        files::attachments_of(&state.db, "notice_attachments", "notice_id", id).await?
    };
    Ok(Notice {
        id,
        title: row.try_get("title")?,
        body_html: if withdrawn && !is_sender {
            String::new()
        } else {
            row.try_get("body_html")?
        },
        priority: if priority == "urgent" {
            Priority::Urgent
        } else {
            Priority::Normal
        },
        require_confirm: row.try_get::<i64, _>("require_confirm")? != 0,
        status,
        sender_id,
        sender_name: row.try_get("sender_name")?,
        created_at: row.try_get("created_at")?,
        attachments,
        receipt,
        is_sender,
    })
}

/// The caller's own receipt, if the caller is a recipient.
pub(super) async fn own_receipt(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> AppResult<Option<Receipt>> {
    let Some(member_id) = caller.session.account.member_id else {
        return Ok(None);
    };
    let row = sqlx::query("SELECT read_at, confirmed_at, reply FROM notice_recipients WHERE notice_id = $1 AND member_id = $2")
        .bind(id)
        .bind(member_id)
        .fetch_optional(&state.db.pool)
        .await?;
    Ok(match row {
        Some(row) => Some(Receipt {
            read_at: row.try_get("read_at")?,
            confirmed_at: row.try_get("confirmed_at")?,
            reply: row.try_get("reply")?,
        }),
        None => None,
    })
}

/// Reads one notice (its sender or a recipient).
#[utoipa::path(get, path = "/api/notices/{id}", tag = "notices",
    params(("id" = i64, Path, description = "Notice id")),
    responses((status = 200, body = Notice), (status = 404, body = ErrorBody)))]
async fn get_notice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<Notice>> {
    Ok(ApiJson(load_notice(&state, &caller, id).await?))
}

/// One line of the inbox.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InboxItem {
    pub id: i64,
    pub title: String,
    pub priority: Priority,
    pub require_confirm: bool,
    pub status: String,
    pub sender_name: String,
    pub created_at: i64,
    pub read_at: Option<i64>,
    pub confirmed_at: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct InboxQuery {
    /// Only notices not read yet.
    #[serde(default)]
    pub unread: bool,
    /// Only notices of this priority.
    pub priority: Option<Priority>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// The inbox page, with the total number of unread notices.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Inbox {
    #[serde(flatten)]
    pub page: Page<InboxItem>,
    pub unread: i64,
}

/// Lists the caller's received notices, newest first.
#[utoipa::path(get, path = "/api/notices/inbox", tag = "notices", params(InboxQuery),
    responses((status = 200, body = Inbox), (status = 401, body = ErrorBody)))]
async fn inbox(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<InboxQuery>,
) -> AppResult<ApiJson<Inbox>> {
    let page = PageQuery {
        limit: query.limit,
        offset: query.offset,
    };
    let member_id = caller.session.account.member_id.unwrap_or(0);
    let unread_filter = i64::from(query.unread);
    let priority_filter = query.priority.map_or("", Priority::as_str);
    let condition =
        "r.member_id = $1 AND ($2 = 0 OR r.read_at IS NULL) AND ($3 = '' OR n.priority = $3)";
    let rows = sqlx::query(&format!(
        "SELECT n.id, n.title, n.priority, n.require_confirm, n.status, n.sender_name, n.created_at, r.read_at, r.confirmed_at \
         FROM notice_recipients r JOIN notices n ON n.id = r.notice_id \
         WHERE {condition} ORDER BY n.id DESC LIMIT $4 OFFSET $5"
    ))
    .bind(member_id)
    .bind(unread_filter)
    .bind(priority_filter)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&state.db.pool)
    .await?;
    let items = rows
        .iter()
        .map(|row| {
            let priority: String = row.try_get("priority")?;
            Ok(InboxItem {
                id: row.try_get("id")?,
                title: row.try_get("title")?,
                priority: if priority == "urgent" {
                    Priority::Urgent
                } else {
                    Priority::Normal
                },
                require_confirm: row.try_get::<i64, _>("require_confirm")? != 0,
                status: row.try_get("status")?,
                sender_name: row.try_get("sender_name")?,
                created_at: row.try_get("created_at")?,
                read_at: row.try_get("read_at")?,
                confirmed_at: row.try_get("confirmed_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM notice_recipients r JOIN notices n ON n.id = r.notice_id WHERE {condition}"
    ))
    .bind(member_id)
    .bind(unread_filter)
    .bind(priority_filter)
    .fetch_one(&state.db.pool)
    .await?;
    let unread: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM notice_recipients r JOIN notices n ON n.id = r.notice_id \
         WHERE r.member_id = $1 AND r.read_at IS NULL AND n.status = 'active'",
    )
    .bind(member_id)
    .fetch_one(&state.db.pool)
    .await?;
    Ok(ApiJson(Inbox {
        page: Page::new(items, total, &page),
        unread,
    }))
}

/// One sent notice with its receipt counts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SentItem {
    pub id: i64,
    pub title: String,
    pub status: String,
    pub require_confirm: bool,
    pub created_at: i64,
    pub recipients: i64,
    pub read: i64,
    pub confirmed: i64,
    /// The `notice:ID` topic's sequence number these counts include.
    pub seq: i64,
}

/// Lists the notices the caller sent, newest first.
#[utoipa::path(get, path = "/api/notices/sent", tag = "notices", params(PageQuery),
    responses((status = 200, body = Page<SentItem>), (status = 401, body = ErrorBody)))]
async fn sent(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> AppResult<ApiJson<Page<SentItem>>> {
    let rows = sqlx::query(
        "SELECT n.id, n.title, n.status, n.require_confirm, n.created_at, \
         (SELECT COUNT(*) FROM notice_recipients r WHERE r.notice_id = n.id) AS recipients, \
         (SELECT COUNT(*) FROM notice_recipients r WHERE r.notice_id = n.id AND r.read_at IS NOT NULL) AS read_count, \
         (SELECT COUNT(*) FROM notice_recipients r WHERE r.notice_id = n.id AND r.confirmed_at IS NOT NULL) AS confirmed_count, \
         COALESCE((SELECT t.last_seq FROM hub_topics t WHERE t.topic = 'notice:' || CAST(n.id AS TEXT)), 0) AS seq \
         FROM notices n WHERE n.sender_id = $1 ORDER BY n.id DESC LIMIT $2 OFFSET $3",
    )
    .bind(caller.session.account.id)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&state.db.pool)
    .await?;
    let items = rows
        .iter()
        .map(|row| {
            Ok(SentItem {
                id: row.try_get("id")?,
                title: row.try_get("title")?,
                status: row.try_get("status")?,
                require_confirm: row.try_get::<i64, _>("require_confirm")? != 0,
                created_at: row.try_get("created_at")?,
                recipients: row.try_get("recipients")?,
                read: row.try_get("read_count")?,
                confirmed: row.try_get("confirmed_count")?,
                seq: row.try_get("seq")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notices WHERE sender_id = $1")
        .bind(caller.session.account.id)
        .fetch_one(&state.db.pool)
        .await?;
    Ok(ApiJson(Page::new(items, total, &page)))
}

/// Downloads an attachment (sender or recipient of an active notice).
#[utoipa::path(get, path = "/api/notices/{id}/attachments/{position}", tag = "notices",
    params(("id" = i64, Path, description = "Notice id"), ("position" = i64, Path, description = "Attachment position, from 0")),
    responses((status = 200, content_type = "application/octet-stream"), (status = 404, body = ErrorBody)))]
async fn attachment(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, position)): Path<(i64, i64)>,
) -> AppResult<Response> {
    let notice = load_notice(&state, &caller, id).await?;
    let info = notice
        .attachments
        .iter()
        .find(|a| a.position == position)
        .ok_or_else(|| AppError::not_found(("附件", "attachment"), position))?;
    let sha256: String = sqlx::query_scalar(
        "SELECT sha256 FROM notice_attachments WHERE notice_id = $1 AND position = $2",
    )
    .bind(id)
    .bind(position)
    .fetch_one(&state.db.pool)
    .await?;
    let bytes = files::read_blob(&state.config.store.files_dir(), &sha256).await?;
    Ok(files::download(&info.name, info.mime.clone(), bytes))
}

/// Receipt counts for one organization.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OrgProgress {
    pub org_id: i64,
    pub org_name: String,
    pub total: i64,
    pub read: i64,
    pub confirmed: i64,
}

/// A recipient who has not read the notice yet.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Unread {
    pub member_id: i64,
    pub name: String,
    pub org_name: String,
}

/// The sender's view of a notice's receipts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub notice_id: i64,
    pub total: i64,
    pub read: i64,
    pub confirmed: i64,
    pub by_org: Vec<OrgProgress>,
    pub unread: Vec<Unread>,
    /// Confirmations with their replies, oldest first.
    pub replies: Vec<Reply>,
    pub last_reminded_at: Option<i64>,
    /// The `notice:ID` topic's sequence number this snapshot includes;
    /// subscribe with `since` set to it for live changes.
    pub seq: i64,
}

async fn sender_only(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> AppResult<(String, Option<i64>)> {
    let row = sqlx::query("SELECT sender_id, status, last_reminded_at FROM notices WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| AppError::not_found(("通知", "notice"), id))?;
    if row.try_get::<i64, _>("sender_id")? != caller.session.account.id {
        return Err(AppError::forbidden());
    }
    Ok((row.try_get("status")?, row.try_get("last_reminded_at")?))
}

/// Receipt progress per organization and the list of who has not read.
#[utoipa::path(get, path = "/api/notices/{id}/progress", tag = "notices",
    params(("id" = i64, Path, description = "Notice id")),
    responses((status = 200, body = Progress), (status = 403, body = ErrorBody)))]
async fn progress(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<Progress>> {
    let (_, last_reminded_at) = sender_only(&state, &caller, id).await?;
    // Read the topic head first: events after it arrive over the hub.
    let seq = store::head(&state.db, &format!("notice:{id}")).await?;
    let rows = sqlx::query(
        "SELECT r.org_id, o.name, COUNT(*) AS total, COUNT(r.read_at) AS read_count, COUNT(r.confirmed_at) AS confirmed_count \
         FROM notice_recipients r JOIN orgs o ON o.id = r.org_id WHERE r.notice_id = $1 GROUP BY r.org_id, o.name, o.path ORDER BY o.path",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    let by_org = rows
        .iter()
        .map(|row| {
            Ok(OrgProgress {
                org_id: row.try_get("org_id")?,
                org_name: row.try_get("name")?,
                total: row.try_get("total")?,
                read: row.try_get("read_count")?,
                confirmed: row.try_get("confirmed_count")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let unread = sqlx::query(
        "SELECT r.member_id, m.name, o.name AS org_name FROM notice_recipients r JOIN members m ON m.id = r.member_id \
         JOIN orgs o ON o.id = r.org_id WHERE r.notice_id = $1 AND r.read_at IS NULL ORDER BY o.path, m.id",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?
    .iter()
    .map(|row| Ok(Unread { member_id: row.try_get("member_id")?, name: row.try_get("name")?, org_name: row.try_get("org_name")? }))
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let replies = replies_of(&state, id).await?;
    Ok(ApiJson(Progress {
        notice_id: id,
        replies,
        total: by_org.iter().map(|o| o.total).sum(),
        read: by_org.iter().map(|o| o.read).sum(),
        confirmed: by_org.iter().map(|o| o.confirmed).sum(),
        by_org,
        unread,
        last_reminded_at,
        seq,
    }))
}

/// One confirmation (回执) and its reply.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Reply {
    pub member_id: i64,
    pub name: String,
    pub org_id: i64,
    pub org_name: String,
    pub reply: String,
    pub confirmed_at: i64,
}

async fn replies_of(state: &AppState, id: i64) -> AppResult<Vec<Reply>> {
    let rows = sqlx::query(
        "SELECT r.member_id, m.name, r.org_id, o.name AS org_name, COALESCE(r.reply, '') AS reply, r.confirmed_at \
         FROM notice_recipients r JOIN members m ON m.id = r.member_id JOIN orgs o ON o.id = r.org_id \
         WHERE r.notice_id = $1 AND r.confirmed_at IS NOT NULL ORDER BY r.confirmed_at, r.member_id",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok(Reply {
                member_id: row.try_get("member_id")?,
                name: row.try_get("name")?,
                org_id: row.try_get("org_id")?,
                org_name: row.try_get("org_name")?,
                reply: row.try_get("reply")?,
                confirmed_at: row.try_get("confirmed_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}

/// How many unread recipients were reminded.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Reminded {
    pub reminded: usize,
}

/// Reminds every recipient who has not read the notice; at most once every
/// five minutes.
#[utoipa::path(post, path = "/api/notices/{id}/remind", tag = "notices",
    params(("id" = i64, Path, description = "Notice id")),
    responses((status = 200, body = Reminded), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn remind(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<Reminded>> {
    let (status, _) = sender_only(&state, &caller, id).await?;
    if status != "active" {
        return Err(AppError::conflict(
            "notice_withdrawn",
            "通知已撤回",
            "the notice has been withdrawn",
        ));
    }
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    // The conditional update is the rate limit: two reminders racing each
    // other cannot both pass it.
    let claimed = sqlx::query(
        "UPDATE notices SET last_reminded_at = $1 WHERE id = $2 AND (last_reminded_at IS NULL OR last_reminded_at <= $3)",
    )
    .bind(now)
    .bind(id)
    .bind(now - REMIND_INTERVAL_MS)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        let last: i64 = sqlx::query_scalar("SELECT last_reminded_at FROM notices WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let minutes = ((last + REMIND_INTERVAL_MS - now) / 60_000).max(0) + 1;
        return Err(AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "remind_too_soon",
            format!("每 5 分钟最多提醒一次，请 {minutes} 分钟后再试"),
            format!("reminders are limited to one every 5 minutes; try again in {minutes} minutes"),
        ));
    }
    let title: String = sqlx::query_scalar("SELECT title FROM notices WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let events = notify_recipients(
        &mut tx,
        id,
        "notice.remind",
        &json!({"id": id, "title": title}),
        true,
    )
    .await?;
    let reminded = events.len();
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "notice.remind",
        ("notice", id.to_string()),
        json!({"reminded": reminded}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish(events);
    Ok(ApiJson(Reminded { reminded }))
}

/// Withdraws a notice: recipients keep its title but lose its body and
/// attachments.
#[utoipa::path(post, path = "/api/notices/{id}/withdraw", tag = "notices",
    params(("id" = i64, Path, description = "Notice id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<StatusCode> {
    let (status, _) = sender_only(&state, &caller, id).await?;
    if status != "active" {
        return Err(AppError::conflict(
            "notice_withdrawn",
            "通知已撤回",
            "the notice has been withdrawn",
        ));
    }
    let mut tx = state.db.begin().await?;
    sqlx::query("UPDATE notices SET status = 'withdrawn', withdrawn_at = $1 WHERE id = $2 AND status = 'active'")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let data = json!({"id": id});
    let mut events = notify_recipients(&mut tx, id, "notice.withdrawn", &data, false).await?;
    events.push(store::append(&mut tx, &format!("notice:{id}"), "notice.withdrawn", data).await?);
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "notice.withdraw",
        ("notice", id.to_string()),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish(events);
    Ok(StatusCode::NO_CONTENT)
}
