//! HTTP resource `/api/approvals/templates`: workflow templates per
//! organization. Saving under an existing name adds a new version; a
//! document in flight keeps the version it started with.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::engine::Template;
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::org::load_org;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, save_template))
        .routes(routes!(get_template))
}

/// One stored template version.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TemplateVersion {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub version: i64,
    /// The template definition: steps, kinds, assignees, conditions.
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    pub created_at: i64,
}

fn from_row(row: &sqlx::any::AnyRow) -> AppResult<TemplateVersion> {
    let definition: String = row.try_get("definition")?;
    Ok(TemplateVersion {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        definition: serde_json::from_str(&definition).map_err(AppError::internal)?,
        created_at: row.try_get("created_at")?,
    })
}

/// Loads a template version and parses its definition.
pub async fn load(
    conn: &mut sqlx::AnyConnection,
    id: i64,
) -> AppResult<(TemplateVersion, Template)> {
    let row = sqlx::query("SELECT id, org_id, name, version, definition, created_at FROM approval_templates WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| AppError::not_found(("审批模板", "template"), id))?;
    let version = from_row(&row)?;
    let template =
        serde_json::from_value(version.definition.clone()).map_err(AppError::internal)?;
    Ok((version, template))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct TemplateQuery {
    /// The organization whose templates to list; its ancestors' templates
    /// are included, because a document may use those too.
    org_id: i64,
}

/// Lists the newest version of every template usable in an organization.
#[utoipa::path(get, path = "/api/approvals/templates", tag = "approvals", params(TemplateQuery),
    responses((status = 200, body = Vec<TemplateVersion>), (status = 403, body = ErrorBody)))]
async fn list_templates(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<TemplateQuery>,
) -> AppResult<ApiJson<Vec<TemplateVersion>>> {
    let org = load_org(&mut *state.db.pool.acquire().await?, query.org_id).await?;
    if !caller.principal.can_org(&org.path, Access::Read) {
        return Err(AppError::forbidden());
    }
    let rows = sqlx::query(
        "SELECT t.id, t.org_id, t.name, t.version, t.definition, t.created_at FROM approval_templates t \
         JOIN orgs o ON o.id = t.org_id WHERE $1 LIKE o.path || '%' AND t.version = \
         (SELECT MAX(u.version) FROM approval_templates u WHERE u.org_id = t.org_id AND u.name = t.name) \
         ORDER BY length(o.path) DESC, t.name",
    )
    .bind(&org.path)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(ApiJson(
        rows.iter().map(from_row).collect::<AppResult<_>>()?,
    ))
}

/// Reads one template version.
#[utoipa::path(get, path = "/api/approvals/templates/{id}", tag = "approvals",
    params(("id" = i64, Path, description = "Template version id")),
    responses((status = 200, body = TemplateVersion), (status = 404, body = ErrorBody)))]
async fn get_template(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<TemplateVersion>> {
    Ok(ApiJson(
        load(&mut *state.db.pool.acquire().await?, id).await?.0,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemplate {
    pub org_id: i64,
    /// The definition; its `name` names the template.
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
}

/// Saves a template, as version 1 or as the next version of the same name
/// (officers of the organization).
#[utoipa::path(post, path = "/api/approvals/templates", tag = "approvals", request_body = NewTemplate,
    responses((status = 201, body = TemplateVersion), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn save_template(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewTemplate>,
) -> AppResult<(StatusCode, ApiJson<TemplateVersion>)> {
    let template: Template = crate::http::parse_value(input.definition.clone())
        .map_err(|e| prefix_field(e, "definition"))?;
    template.validate().map_err(|error| {
        AppError::invalid(
            "definition",
            format!("审批模板无效：{error}"),
            format!("invalid template: {error}"),
        )
    })?;
    let mut tx = state.db.begin().await?;
    check_members_exist(&mut tx, &template).await?;
    let org = load_org(&mut tx, input.org_id)
        .await
        .map_err(|e| e.field("org_id"))?;
    if !caller.principal.can_org(&org.path, Access::Write) {
        return Err(AppError::forbidden());
    }
    let version: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM approval_templates WHERE org_id = $1 AND name = $2")
        .bind(org.id)
        .bind(&template.name)
        .fetch_one(&mut *tx)
        .await?;
    let definition = serde_json::to_value(&template).map_err(AppError::internal)?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO approval_templates (org_id, name, version, definition, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(org.id)
    .bind(&template.name)
    .bind(version)
    .bind(definition.to_string())
    .bind(caller.session.account.id)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "approval.template.save",
        ("approval_template", id.to_string()),
        serde_json::json!({"org_id": org.id, "name": template.name, "version": version}),
    )
    .await?;
    let (saved, _) = load(&mut tx, id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, ApiJson(saved)))
}

/// Rejects a template naming a member who does not exist.
async fn check_members_exist(conn: &mut sqlx::AnyConnection, template: &Template) -> AppResult<()> {
    use super::engine::AssigneeSpec;
    let mut ids: Vec<i64> = Vec::new();
    for step in &template.steps {
        for spec in step
            .assignees
            .iter()
            .chain(&step.cc_on_start)
            .chain(&step.cc_on_finish)
        {
            if let AssigneeSpec::Members(members) = spec {
                ids.extend(members.iter().map(|m| m.0));
            }
        }
    }
    for spec in &template.circulation {
        if let AssigneeSpec::Members(members) = spec {
            ids.extend(members.iter().map(|m| m.0));
        }
    }
    for member in ids {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE id = $1")
            .bind(member)
            .fetch_one(&mut *conn)
            .await?;
        if count == 0 {
            return Err(AppError::invalid(
                "definition",
                format!("审批模板无效：党员 {member} 不存在"),
                format!("invalid template: member {member} does not exist"),
            ));
        }
    }
    Ok(())
}

fn prefix_field(error: AppError, prefix: &str) -> AppError {
    let field = match &error.field {
        Some(field) if !field.is_empty() => format!("{prefix}.{field}"),
        _ => prefix.to_owned(),
    };
    error.field(field)
}
