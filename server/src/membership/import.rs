//! `POST /api/membership/orgs/{id}/import`: people of the development
//! pipeline (入党申请人, 积极分子, 发展对象) with the dates of their steps
//! so far, from an XLSX or CSV sheet, into one organization.
//!
//! Each row is one person. The steps in a row are checked in procedure order
//! by the same time rules as the single-record API, so an activist
//! confirmation dated before the application, or a candidate confirmed
//! within a year of becoming an activist, is rejected. The import is one
//! transaction: a single rejected row rejects the whole file, and the
//! report lists every rejected row with its row number, column and reason.
//! `GET /api/membership/import-template` returns the sheet to fill in.

use std::collections::{HashMap, HashSet};

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::AnyConnection;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::rules::{self, Facts, History, Step};
use super::{TemporaryBranchLimit, check_date, officer_org, refusal_error};
use crate::audit;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::hub::store as events;
use crate::i18n::current_lang;
use crate::import::{Columns, map_columns, parse_gender, read_table};
use crate::members::{check_id_number, check_person_name, check_phone};
use crate::org::OrgKind;
use crate::perm::{Access, Caller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_people))
        .routes(routes!(template))
        .layer(DefaultBodyLimit::max(crate::import::MAX_SPREADSHEET))
}

/// The columns, each with the header names accepted for it; the first name
/// is the one the template uses and the report names.
const COLUMNS: Columns = &[
    ("name", &["姓名", "name"]),
    ("gender", &["性别", "gender"]),
    ("ethnicity", &["民族", "ethnicity"]),
    ("birth_date", &["出生日期", "birth_date"]),
    ("education", &["学历", "education"]),
    ("phone", &["联系电话", "手机号", "电话", "phone"]),
    (
        "id_number",
        &["身份证号", "公民身份号码", "身份证号码", "id_number"],
    ),
    (
        "applied_on",
        &["申请入党日期", "入党申请日期", "申请日期", "applied_on"],
    ),
    ("talk_on", &["谈话日期", "talk_on"]),
    (
        "activist_on",
        &["确定积极分子日期", "确定为入党积极分子日期", "activist_on"],
    ),
    ("contacts", &["培养联系人", "contacts"]),
    ("contacts_on", &["指定培养联系人日期", "contacts_on"]),
    (
        "candidate_on",
        &["确定发展对象日期", "确定为发展对象日期", "candidate_on"],
    ),
    ("reason", &["逾期说明", "reason"]),
];

/// Columns a sheet may leave out: everything after the application.
const OPTIONAL: &[&str] = &[
    "talk_on",
    "activist_on",
    "contacts",
    "contacts_on",
    "candidate_on",
    "reason",
];

/// The steps a row may carry after the application, with their date column.
const ROW_STEPS: [(Step, &str); 4] = [
    (Step::Talk, "talk_on"),
    (Step::Activist, "activist_on"),
    (Step::Contacts, "contacts_on"),
    (Step::Candidate, "candidate_on"),
];

/// Note stored on every imported step, shown on the person's timeline.
const IMPORT_NOTE: &str = "批量导入";

#[derive(Deserialize, utoipa::IntoParams)]
pub struct PeopleImportQuery {
    /// `xlsx` or `csv` (UTF-8).
    format: String,
    /// Check every row and report, but store nothing.
    #[serde(default)]
    dry_run: bool,
}

/// One rejected row.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RejectedPerson {
    /// Row number as the spreadsheet shows it (the header is row 1).
    pub row: usize,
    pub field: String,
    /// The column's Chinese header, e.g. 确定积极分子日期.
    pub column: String,
    pub message: String,
}

/// The outcome of an import: `imported` is 0 whenever a row is rejected.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PeopleImportReport {
    pub dry_run: bool,
    pub rows: usize,
    pub imported: usize,
    /// Imported people by stage reached, e.g. `{"activist": 3}`.
    pub stages: HashMap<String, usize>,
    pub rejected: Vec<RejectedPerson>,
}

/// Imports pipeline people into an organization (its officers). With any
/// rejected row nothing is stored.
#[utoipa::path(post, path = "/api/membership/orgs/{id}/import", tag = "membership",
    params(("id" = i64, Path, description = "Organization id"), PeopleImportQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = PeopleImportReport), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn import_people(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<i64>,
    Query(query): Query<PeopleImportQuery>,
    body: Bytes,
) -> AppResult<ApiJson<PeopleImportReport>> {
    let table = read_table(&query.format, &body)?;
    let rows = map_columns(table, COLUMNS, OPTIONAL)?;

    let mut tx = state.db.begin().await?;
    let org = officer_org(&state, &caller, &mut tx, org_id, "id", Access::Write).await?;
    if org.kind == OrgKind::TemporaryBranch {
        return Err(super::temporary_branch_error(TemporaryBranchLimit::Admit));
    }
    let mut importer = Importer {
        org_path: org.path.clone(),
        account_id: caller.session.account.id,
        id_numbers: HashSet::new(),
        stages: HashMap::new(),
    };

    let mut rejected = Vec::new();
    for (line, row) in &rows {
        if let Err((field, error)) = importer.import_row(&mut tx, org.id, row).await {
            rejected.push(RejectedPerson {
                row: *line,
                column: header_of(field).to_owned(),
                field: field.to_owned(),
                message: error.message(current_lang()).to_owned(),
            });
        }
    }

    let imported = if rejected.is_empty() { rows.len() } else { 0 };
    let report = PeopleImportReport {
        dry_run: query.dry_run,
        rows: rows.len(),
        imported,
        stages: if imported > 0 {
            importer.stages
        } else {
            HashMap::new()
        },
        rejected,
    };
    if query.dry_run || !report.rejected.is_empty() || rows.is_empty() {
        tx.rollback().await?;
        return Ok(ApiJson(report));
    }

    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "membership.people.import",
        ("org", org.id.to_string()),
        json!({"rows": report.rows, "imported": report.imported, "stages": report.stages}),
    )
    .await?;
    let event = events::append(
        &mut tx,
        &format!("org:{}", org.id),
        "membership.import",
        json!({"org_id": org.id, "imported": report.imported}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish(vec![event]);
    tracing::info!(
        org_id = org.id,
        imported = report.imported,
        "pipeline people imported"
    );
    Ok(ApiJson(report))
}

fn header_of(field: &str) -> &'static str {
    COLUMNS
        .iter()
        .find(|(name, _)| *name == field)
        .map_or("", |(_, headers)| headers[0])
}

/// A row's failure: the field at fault and the error.
type RowError = (&'static str, AppError);

fn at(field: &'static str) -> impl Fn(AppError) -> RowError {
    move |error| (field, error)
}

/// One step of a row, checked and ready to store.
struct RowStep {
    step: Step,
    taken_on: NaiveDate,
    late_since: Option<NaiveDate>,
    contact_ids: Vec<i64>,
}

struct Importer {
    org_path: String,
    account_id: i64,
    /// Identity numbers seen earlier in the file.
    id_numbers: HashSet<String>,
    stages: HashMap<String, usize>,
}

impl Importer {
    /// Checks one row and stores it inside the import's transaction.
    async fn import_row(
        &mut self,
        conn: &mut AnyConnection,
        org_id: i64,
        row: &HashMap<&'static str, String>,
    ) -> Result<(), RowError> {
        let get = |field: &str| row.get(field).cloned().unwrap_or_default();
        let name = check_person_name(&get("name")).map_err(at("name"))?;
        let gender = parse_gender(&get("gender")).map_err(at("gender"))?;
        let ethnicity = text("ethnicity", &get("ethnicity"), 20)?;
        let birth = check_date("birth_date", &get("birth_date")).map_err(at("birth_date"))?;
        let education = text("education", &get("education"), 40)?;
        let phone = check_phone(&get("phone")).map_err(at("phone"))?;
        let id_number = check_id_number(&get("id_number")).map_err(at("id_number"))?;
        let reason = get("reason");
        if reason.chars().count() > 500 {
            return Err(at("reason")(AppError::invalid(
                "reason",
                "逾期说明最多 500 个字符",
                "reason must be at most 500 characters",
            )));
        }
        let steps = self
            .check_steps(conn, row, birth, !reason.is_empty())
            .await?;
        self.check_unique(conn, &id_number).await?;

        let stage = History {
            steps: steps.iter().map(|s| (s.step, s.taken_on)).collect(),
        }
        .stage()
        .unwrap_or(rules::Stage::Applicant);
        let now = now_ms();
        let person_id: i64 = sqlx::query_scalar(
            "INSERT INTO membership_people (org_id, name, gender, ethnicity, birth_date, education, \
             phone, id_number, stage, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
        )
        .bind(org_id)
        .bind(&name)
        .bind(gender)
        .bind(&ethnicity)
        .bind(birth.to_string())
        .bind(&education)
        .bind(&phone)
        .bind(&id_number)
        .bind(stage.as_str())
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| at("id_number")(e.into()))?;
        for step in &steps {
            let detail = json!({"note": IMPORT_NOTE, "contact_ids": step.contact_ids,
                "training_days": 0, "training_hours": 0});
            let late_since = step.late_since.map(|date| date.to_string());
            sqlx::query(
                "INSERT INTO membership_steps (person_id, step, taken_on, detail, late_since, \
                 exception_reason, recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(person_id)
            .bind(step.step.as_str())
            .bind(step.taken_on.to_string())
            .bind(detail.to_string())
            .bind(&late_since)
            .bind(late_since.as_ref().map(|_| reason.clone()))
            .bind(self.account_id)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(|e| at("applied_on")(e.into()))?;
        }
        *self.stages.entry(stage.as_str().to_owned()).or_default() += 1;
        Ok(())
    }

    /// Checks the row's steps in procedure order against the time rules,
    /// each against the steps before it.
    async fn check_steps(
        &self,
        conn: &mut AnyConnection,
        row: &HashMap<&'static str, String>,
        birth: NaiveDate,
        has_reason: bool,
    ) -> Result<Vec<RowStep>, RowError> {
        let get = |field: &str| row.get(field).cloned().unwrap_or_default();
        let mut history = History::default();
        let mut steps = Vec::new();
        let applied = check_date("applied_on", &get("applied_on")).map_err(at("applied_on"))?;
        let facts = Facts {
            birth: Some(birth),
            ..Facts::default()
        };
        rules::check(Step::Application, applied, &history, facts)
            .map_err(|refusal| at("applied_on")(refusal_error(Step::Application, refusal)))?;
        history.steps.push((Step::Application, applied));
        steps.push(RowStep {
            step: Step::Application,
            taken_on: applied,
            late_since: None,
            contact_ids: Vec::new(),
        });

        let contacts = get("contacts");
        if !contacts.is_empty() && get("contacts_on").is_empty() {
            return Err(at("contacts_on")(AppError::invalid(
                "contacts_on",
                "填写了培养联系人，须同时填写指定培养联系人日期",
                "contacts need the date they were named",
            )));
        }
        for (step, field) in ROW_STEPS {
            let value = get(field);
            if value.is_empty() {
                continue;
            }
            let taken_on = check_date(field, &value).map_err(at(field))?;
            let facts = Facts {
                has_reason,
                ..Facts::default()
            };
            let accepted = rules::check(step, taken_on, &history, facts)
                .map_err(|refusal| at(field)(refusal_error(step, refusal)))?;
            let contact_ids = if step == Step::Contacts {
                self.resolve_contacts(conn, &contacts).await?
            } else {
                Vec::new()
            };
            history.steps.push((step, taken_on));
            steps.push(RowStep {
                step,
                taken_on,
                late_since: accepted.late_since,
                contact_ids,
            });
        }
        Ok(steps)
    }

    /// Finds each named contact among the full members of the organization
    /// and its subtree: one or two names, each naming exactly one member.
    async fn resolve_contacts(
        &self,
        conn: &mut AnyConnection,
        names: &str,
    ) -> Result<Vec<i64>, RowError> {
        let names: Vec<&str> = names
            .split(['、', ',', '，', ';', '；', ' '])
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .collect();
        if names.is_empty() || names.len() > 2 {
            return Err(at("contacts")(AppError::invalid(
                "contacts",
                "须填写一至两名培养联系人，多人用顿号分隔",
                "name one or two contacts, separated by 、",
            )));
        }
        let mut ids = Vec::new();
        for name in names {
            let found: Vec<i64> = sqlx::query_scalar(
                "SELECT m.id FROM members m JOIN orgs o ON o.id = m.org_id \
                 WHERE m.name = $1 AND m.status = 'full' AND o.path LIKE $2 ORDER BY m.id",
            )
            .bind(name)
            .bind(format!("{}%", self.org_path))
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| at("contacts")(e.into()))?;
            match found.as_slice() {
                [id] => ids.push(*id),
                [] => {
                    return Err(at("contacts")(AppError::invalid(
                        "contacts",
                        format!("培养联系人“{name}”不是本组织的正式党员"),
                        format!("contact {name:?} is not a full member of this organization"),
                    )));
                }
                _ => {
                    return Err(at("contacts")(AppError::invalid(
                        "contacts",
                        format!("本组织有多名正式党员名为“{name}”，请逐个登记培养联系人"),
                        format!(
                            "several full members are named {name:?}; record the contacts one by one"
                        ),
                    )));
                }
            }
        }
        Ok(ids)
    }

    /// Rejects an identity number seen earlier in the file or already in
    /// the pipeline.
    async fn check_unique(
        &mut self,
        conn: &mut AnyConnection,
        id_number: &str,
    ) -> Result<(), RowError> {
        let in_pipeline: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM membership_people WHERE id_number = $1")
                .bind(id_number)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| at("id_number")(e.into()))?;
        if !self.id_numbers.insert(id_number.to_owned()) || in_pipeline > 0 {
            return Err(at("id_number")(AppError::conflict(
                "duplicate_id_number",
                "该身份证号码已在发展党员名单或本表前面的行中",
                "this identity card number is already in the pipeline or in an earlier row",
            )));
        }
        Ok(())
    }
}

/// Checks a required text cell of at most `max` characters.
fn text(field: &'static str, value: &str, max: usize) -> Result<String, RowError> {
    if value.is_empty() || value.chars().count() > max {
        return Err(at(field)(AppError::invalid(
            field,
            format!("{}须为 1 到 {max} 个字符", header_of(field)),
            format!("{field} must be 1 to {max} characters"),
        )));
    }
    Ok(value.to_owned())
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct TemplateQuery {
    /// `xlsx` or `csv`.
    format: String,
}

/// An example row of the template: an activist with contacts.
const EXAMPLE: [&str; 14] = [
    "林晓雨",
    "女",
    "汉族",
    "2000-05-01",
    "大学本科",
    "13800001111",
    "110101200005010026",
    "2024-03-01",
    "2024-03-20",
    "2024-09-10",
    "",
    "",
    "",
    "",
];

/// The import template with every column and one example row.
#[utoipa::path(get, path = "/api/membership/import-template", tag = "membership",
    params(TemplateQuery),
    responses((status = 200, description = "The template file", content_type = "application/octet-stream"),
        (status = 422, body = ErrorBody)))]
async fn template(_caller: Caller, Query(query): Query<TemplateQuery>) -> AppResult<Response> {
    let headers: Vec<&str> = COLUMNS.iter().map(|(_, names)| names[0]).collect();
    let (bytes, mime) = match query.format.as_str() {
        "csv" => {
            let mut writer = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
            writer.write_record(&headers).map_err(AppError::internal)?;
            writer.write_record(EXAMPLE).map_err(AppError::internal)?;
            let bytes = writer.into_inner().map_err(AppError::internal)?;
            (bytes, "text/csv; charset=utf-8")
        }
        "xlsx" => (
            template_xlsx(&headers)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        other => {
            return Err(AppError::invalid(
                "format",
                format!("不支持的格式 {other}，可用 xlsx 或 csv"),
                format!("unsupported format {other:?}: use xlsx or csv"),
            ));
        }
    };
    let disposition = format!(
        "attachment; filename=\"membership-import-template.{}\"",
        query.format
    );
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// Writes the template as XLSX, every cell as text so that dates and
/// identity numbers keep their form.
fn template_xlsx(headers: &[&str]) -> AppResult<Vec<u8>> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (column, (heading, example)) in headers.iter().zip(EXAMPLE).enumerate() {
        sheet
            .write_string(0, column as u16, *heading)
            .map_err(AppError::internal)?;
        sheet
            .write_string(1, column as u16, example)
            .map_err(AppError::internal)?;
    }
    workbook.save_to_buffer().map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_fills_every_column() {
        assert_eq!(EXAMPLE.len(), COLUMNS.len());
    }

    #[test]
    fn example_identity_number_is_valid() {
        assert!(check_id_number(EXAMPLE[6]).is_ok());
    }

    #[test]
    fn optional_columns_exist() {
        for field in OPTIONAL {
            assert!(!header_of(field).is_empty(), "{field}");
        }
    }
}
