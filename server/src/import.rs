//! `POST /api/import/members`: the organization tree and members from the
//! spreadsheet that an organization department already keeps (XLSX or CSV).
//!
//! Each row is one member with the path of their organization, e.g.
//! `江南省委/青川市委/东城区机关第一党支部`. Organizations along the path
//! are created when missing, their kind taken from the name's ending (党委,
//! 党总支, 党支部, 党小组, 党组). Valid rows are imported; every rejected row
//! is reported with its row number, column and reason, and changes nothing.
//! With `dry_run=true` nothing is stored and the report shows what would
//! happen.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;

use axum::extract::{DefaultBodyLimit, Query, State};
use bytes::Bytes;
use calamine::{Data, Reader};

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Connection};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit;
use crate::auth::SystemRole;
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::i18n::current_lang;
use crate::members::{check_date, check_id_number, check_person_name, check_phone};
use crate::org::OrgKind;
use crate::perm::Caller;
use crate::state::AppState;

/// Largest accepted spreadsheet, in bytes (20 MiB).
pub(crate) const MAX_SPREADSHEET: usize = 20 * 1024 * 1024;
/// Most rows one import takes.
const MAX_ROWS: usize = 50_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_members))
        .layer(DefaultBodyLimit::max(MAX_SPREADSHEET))
}

/// The columns, each with the header names accepted for it.
const COLUMNS: Columns = &[
    (
        "org_path",
        &["所在组织", "组织", "党组织", "org_path", "organization"],
    ),
    ("name", &["姓名", "name"]),
    ("gender", &["性别", "gender"]),
    ("ethnicity", &["民族", "ethnicity"]),
    ("birth_date", &["出生日期", "birth_date"]),
    ("education", &["学历", "education"]),
    ("joined_on", &["入党日期", "入党时间", "joined_on"]),
    ("status", &["党员状态", "人员类别", "status"]),
    ("phone", &["联系电话", "手机号", "电话", "phone"]),
    (
        "id_number",
        &["身份证号", "公民身份号码", "身份证号码", "id_number"],
    ),
];

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ImportQuery {
    /// `xlsx` or `csv` (UTF-8).
    format: String,
    /// Check every row and report, but store nothing.
    #[serde(default)]
    dry_run: bool,
}

/// One rejected row.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RejectedRow {
    /// Row number as the spreadsheet shows it (the header is row 1).
    pub row: usize,
    pub field: String,
    pub message: String,
}

/// The outcome of an import.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    pub rows: usize,
    pub imported: usize,
    pub created_orgs: usize,
    pub rejected: Vec<RejectedRow>,
}

/// Imports organizations and members (system administrator).
#[utoipa::path(post, path = "/api/import/members", tag = "orgs", params(ImportQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = ImportReport), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn import_members(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ImportQuery>,
    body: Bytes,
) -> AppResult<ApiJson<ImportReport>> {
    caller.require(SystemRole::SystemAdmin)?;
    let table = read_table(&query.format, &body)?;
    let rows = map_columns(table, COLUMNS, &["joined_on"])?;
    let mut tx = state.db.begin().await?;
    let mut importer = Importer::default();
    for (line, row) in &rows {
        let line = *line;
        if let Err((field, error)) = importer.import_row(&mut tx, row).await {
            importer.rejected.push(RejectedRow {
                row: line,
                field,
                message: error.message(current_lang()).to_owned(),
            });
        }
    }
    let report = ImportReport {
        dry_run: query.dry_run,
        rows: rows.len(),
        imported: importer.imported,
        created_orgs: importer.created_orgs,
        rejected: importer.rejected,
    };
    if query.dry_run {
        tx.rollback().await?;
    } else {
        audit::append(
            &mut tx,
            &state.audit_key,
            &caller.session.actor(),
            "import.members",
            ("store", "members".to_owned()),
            serde_json::json!({"rows": report.rows, "imported": report.imported,
                "created_orgs": report.created_orgs, "rejected": report.rejected.len()}),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            imported = report.imported,
            rejected = report.rejected.len(),
            "members imported"
        );
    }
    Ok(ApiJson(report))
}

pub(crate) type Table = Vec<Vec<String>>;

/// Spreadsheet columns: each field with the header names accepted for it,
/// the first being the Chinese name that reports use.
pub(crate) type Columns = &'static [(&'static str, &'static [&'static str])];

/// Reads an uploaded sheet in `format` (`xlsx`, or `csv` in UTF-8).
pub(crate) fn read_table(format: &str, body: &[u8]) -> AppResult<Table> {
    match format {
        "xlsx" => read_xlsx(body),
        "csv" => read_csv(body),
        other => Err(AppError::invalid(
            "format",
            format!("不支持的格式 {other}，可用 xlsx 或 csv"),
            format!("unsupported format {other:?}: use xlsx or csv"),
        )),
    }
}

fn unreadable(error: impl std::fmt::Display) -> AppError {
    AppError::invalid(
        "file",
        format!("无法读取表格：{error}"),
        format!("failed to read the spreadsheet: {error}"),
    )
}

/// Widest sheet read, in columns; the roll has about a dozen.
const MAX_COLUMNS: u32 = 64;

/// Reads the first sheet cell by cell; dates become `YYYY-MM-DD`.
///
/// Cells are streamed, never laid out as one grid first: a sheet whose used
/// range spans millions of empty cells (one cell in A1 and one far away) is
/// rejected by its cells' positions instead of exhausting memory.
fn read_xlsx(bytes: &[u8]) -> AppResult<Table> {
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(unreadable)?;
    let first = workbook
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| unreadable("no worksheet"))?;
    let mut cells = workbook
        .worksheet_cells_reader(&first)
        .map_err(unreadable)?;
    let mut table: Table = Vec::new();
    while let Some(cell) = cells.next_cell().map_err(unreadable)? {
        let (row, column) = cell.get_position();
        if row as usize > MAX_ROWS || column >= MAX_COLUMNS {
            return Err(too_large());
        }
        let text = cell_text(&Data::from(cell.get_value().clone()));
        if text.is_empty() {
            continue;
        }
        if table.len() <= row as usize {
            table.resize(row as usize + 1, Vec::new());
        }
        let line = &mut table[row as usize];
        if line.len() <= column as usize {
            line.resize(column as usize + 1, String::new());
        }
        line[column as usize] = text;
    }
    Ok(table)
}

fn too_large() -> AppError {
    AppError::invalid(
        "file",
        format!("表格过大：最多 {MAX_ROWS} 行、{MAX_COLUMNS} 列"),
        format!("the sheet is too large: at most {MAX_ROWS} rows and {MAX_COLUMNS} columns"),
    )
}

fn cell_text(cell: &Data) -> String {
    match cell {
        Data::DateTime(value) => value
            .as_datetime()
            .map(|dt| dt.date().to_string())
            .unwrap_or_default(),
        Data::DateTimeIso(text) => text.chars().take(10).collect(),
        Data::Float(value) if value.fract() == 0.0 => format!("{value:.0}"),
        Data::Empty => String::new(),
        other => other.to_string(),
    }
}

fn read_csv(bytes: &[u8]) -> AppResult<Table> {
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
        .map_err(|_| unreadable("CSV must be UTF-8"))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|record| {
            record
                .map(|r| r.iter().map(str::to_owned).collect())
                .map_err(unreadable)
        })
        .collect()
}

/// A data row with its row number as the spreadsheet shows it.
pub(crate) type NumberedRow = (usize, HashMap<&'static str, String>);

/// Finds each of `columns` by its header and returns the data rows as maps
/// from field name to cell text; blank rows are dropped. Only the fields in
/// `optional` may be missing from the header.
pub(crate) fn map_columns(
    table: Table,
    columns: Columns,
    optional: &[&str],
) -> AppResult<Vec<NumberedRow>> {
    let mut lines = table.into_iter();
    let header = lines
        .next()
        .ok_or_else(|| unreadable("the sheet is empty"))?;
    let mut positions = Vec::new();
    for (field, names) in columns {
        let position = header.iter().position(|cell| names.contains(&cell.trim()));
        match position {
            Some(position) => positions.push((*field, position)),
            None if optional.contains(field) => {}
            None => {
                return Err(AppError::invalid(
                    "file",
                    format!("缺少列：{}", names[0]),
                    format!("missing column {:?}", names[names.len() - 1]),
                ));
            }
        }
    }
    // Row numbers count blank rows too, so they match the sheet; the header
    // is row 1.
    let rows: Vec<_> = lines
        .enumerate()
        .filter(|(_, line)| line.iter().any(|cell| !cell.trim().is_empty()))
        .map(|(index, line)| {
            let cells = positions
                .iter()
                .map(|(field, position)| {
                    (
                        *field,
                        line.get(*position)
                            .map(|c| c.trim().to_owned())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            (index + 2, cells)
        })
        .collect();
    if rows.len() > MAX_ROWS {
        return Err(AppError::invalid(
            "file",
            format!("一次最多导入 {MAX_ROWS} 行"),
            format!("at most {MAX_ROWS} rows per import"),
        ));
    }
    Ok(rows)
}

/// A row's failure: the field at fault and the error.
type RowError = (String, AppError);

/// One row's validated member fields.
struct MemberFields {
    name: String,
    gender: &'static str,
    status: &'static str,
    birth: chrono::NaiveDate,
    joined_on: Option<String>,
    phone: String,
    id_number: String,
    ethnicity: String,
    education: String,
}

#[derive(Default)]
struct Importer {
    imported: usize,
    created_orgs: usize,
    rejected: Vec<RejectedRow>,
    /// Organization path text to (id, materialized path), created or found.
    orgs: HashMap<String, (i64, String, OrgKind)>,
    id_numbers: HashSet<String>,
}

fn at(field: &str) -> impl Fn(AppError) -> RowError + '_ {
    move |error| (field.to_owned(), error)
}

fn kind_from_name(name: &str) -> Option<OrgKind> {
    // 党总支 and 党小组 end in the same characters as longer names, so the
    // longest endings are tried first.
    [
        ("党总支", OrgKind::GeneralBranch),
        ("党小组", OrgKind::Group),
        ("党支部", OrgKind::Branch),
        ("支部", OrgKind::Branch),
        ("党组", OrgKind::LeadingGroup),
        ("党委", OrgKind::Committee),
        ("工委", OrgKind::Committee),
        ("委", OrgKind::Committee),
    ]
    .into_iter()
    .find(|(ending, _)| name.ends_with(ending))
    .map(|(_, kind)| kind)
}

impl Importer {
    async fn import_row(
        &mut self,
        conn: &mut AnyConnection,
        row: &HashMap<&'static str, String>,
    ) -> Result<(), RowError> {
        let get = |field: &str| row.get(field).cloned().unwrap_or_default();
        let name = check_person_name(&get("name")).map_err(at("name"))?;
        let gender = parse_gender(&get("gender")).map_err(at("gender"))?;
        let status = match get("status").as_str() {
            "正式党员" | "正式" | "full" => "full",
            "预备党员" | "预备" | "probationary" => "probationary",
            other => {
                return Err(at("status")(AppError::invalid(
                    "status",
                    format!("党员状态应为正式党员或预备党员：{other}"),
                    format!("status must be 正式党员 or 预备党员: {other:?}"),
                )));
            }
        };
        let birth = check_date("birth_date", &get("birth_date")).map_err(at("birth_date"))?;
        let joined = get("joined_on");
        let joined_on = if joined.is_empty() {
            None
        } else {
            Some(
                check_date("joined_on", &joined)
                    .map_err(at("joined_on"))?
                    .to_string(),
            )
        };
        let phone = check_phone(&get("phone")).map_err(at("phone"))?;
        let id_number = check_id_number(&get("id_number")).map_err(at("id_number"))?;
        let ethnicity = non_empty("ethnicity", &get("ethnicity"))?;
        let education = non_empty("education", &get("education"))?;
        if !self.id_numbers.insert(id_number.clone())
            || self.id_number_taken(conn, &id_number).await?
        {
            return Err(at("id_number")(AppError::conflict(
                "duplicate_id_number",
                "身份证号码重复",
                "duplicate identity card number",
            )));
        }
        let fields = MemberFields {
            name,
            gender,
            status,
            birth,
            joined_on,
            phone,
            id_number,
            ethnicity,
            education,
        };
        // One savepoint per row: a failure rolls back only this row's
        // organizations and member, and forgets the organizations it cached.
        let cached: HashSet<String> = self.orgs.keys().cloned().collect();
        let created_before = self.created_orgs;
        let mut savepoint = conn.begin().await.map_err(|e| at("")(e.into()))?;
        let inserted = self.insert_row(&mut savepoint, row, fields).await;
        if inserted.is_err() {
            self.orgs.retain(|key, _| cached.contains(key));
            self.created_orgs = created_before;
            return inserted;
        }
        savepoint.commit().await.map_err(|e| at("")(e.into()))?;
        self.imported += 1;
        Ok(())
    }

    async fn insert_row(
        &mut self,
        conn: &mut AnyConnection,
        row: &HashMap<&'static str, String>,
        fields: MemberFields,
    ) -> Result<(), RowError> {
        let MemberFields {
            name,
            gender,
            status,
            birth,
            joined_on,
            phone,
            id_number,
            ethnicity,
            education,
        } = fields;
        let org_id = self
            .org_for_path(conn, row.get("org_path").map_or("", String::as_str))
            .await?;
        sqlx::query(
            "INSERT INTO members (org_id, name, gender, ethnicity, birth_date, education, joined_on, \
             status, phone, id_number, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind(org_id)
        .bind(&name)
        .bind(gender)
        .bind(&ethnicity)
        .bind(birth.to_string())
        .bind(&education)
        .bind(joined_on)
        .bind(status)
        .bind(&phone)
        .bind(&id_number)
        .bind(now_ms())
        .execute(&mut *conn)
        .await
        .map_err(|e| at("")(e.into()))?;
        Ok(())
    }

    async fn id_number_taken(
        &self,
        conn: &mut AnyConnection,
        id_number: &str,
    ) -> Result<bool, RowError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE id_number = $1")
            .bind(id_number)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| at("id_number")(e.into()))?;
        Ok(count > 0)
    }

    /// Finds or creates every organization along the path; returns the last.
    async fn org_for_path(
        &mut self,
        conn: &mut AnyConnection,
        path: &str,
    ) -> Result<i64, RowError> {
        let parts: Vec<&str> = path
            .split(['/', '／', '>', '＞'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() {
            return Err(at("org_path")(AppError::invalid(
                "org_path",
                "缺少所在组织",
                "missing organization path",
            )));
        }
        let mut parent: Option<(i64, String, OrgKind)> = None;
        for depth in 0..parts.len() {
            let key = parts[..=depth].join("/");
            if let Some(found) = self.orgs.get(&key) {
                parent = Some(found.clone());
                continue;
            }
            let name = parts[depth];
            let found = self.find_or_create(conn, name, parent.as_ref()).await?;
            self.orgs.insert(key, found.clone());
            parent = Some(found);
        }
        Ok(parent.expect("path has parts").0)
    }

    async fn find_or_create(
        &mut self,
        conn: &mut AnyConnection,
        name: &str,
        parent: Option<&(i64, String, OrgKind)>,
    ) -> Result<(i64, String, OrgKind), RowError> {
        let existing: Option<(i64, String, String)> = sqlx::query_as(
            "SELECT id, path, kind FROM orgs WHERE name = $1 AND COALESCE(parent_id, 0) = $2",
        )
        .bind(name)
        .bind(parent.map_or(0, |p| p.0))
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| at("org_path")(e.into()))?;
        if let Some((id, path, kind)) = existing {
            return Ok((id, path, OrgKind::parse(&kind).unwrap_or(OrgKind::Branch)));
        }
        let kind = kind_from_name(name).ok_or_else(|| {
            at("org_path")(AppError::invalid(
                "org_path",
                format!("无法从名称判断组织类型：{name}（名称应以党委、党总支、党支部、党小组或党组结尾）"),
                format!("cannot tell the kind of {name:?}: names end in 党委, 党总支, 党支部, 党小组 or 党组"),
            ))
        })?;
        crate::org::check_nesting(kind, parent.map(|p| p.2)).map_err(at("org_path"))?;
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO orgs (parent_id, name, kind, path, sort_order, created_at, updated_at) \
             VALUES ($1, $2, $3, '', 0, $4, $4) RETURNING id",
        )
        .bind(parent.map(|p| p.0))
        .bind(name)
        .bind(kind.as_str())
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| at("org_path")(e.into()))?;
        let path = format!("{}{id}/", parent.map_or("/", |p| p.1.as_str()));
        sqlx::query("UPDATE orgs SET path = $1 WHERE id = $2")
            .bind(&path)
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(|e| at("org_path")(e.into()))?;
        self.created_orgs += 1;
        Ok((id, path, kind))
    }
}

/// Reads a gender cell: 男 or 女, or the API's `male` or `female`.
pub(crate) fn parse_gender(value: &str) -> AppResult<&'static str> {
    match value {
        "男" | "male" => Ok("male"),
        "女" | "female" => Ok("female"),
        other => Err(AppError::invalid(
            "gender",
            format!("性别应为男或女：{other}"),
            format!("gender must be 男 or 女: {other:?}"),
        )),
    }
}

fn non_empty(field: &str, value: &str) -> Result<String, RowError> {
    if value.is_empty() || value.chars().count() > 40 {
        let header = COLUMNS
            .iter()
            .find(|(name, _)| *name == field)
            .map_or(field, |(_, headers)| headers[0]);
        return Err(at(field)(AppError::invalid(
            field,
            format!("{header}须为 1 到 40 个字符"),
            format!("{field} must be 1 to 40 characters"),
        )));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_names() {
        assert_eq!(kind_from_name("江南省委"), Some(OrgKind::Committee));
        assert_eq!(
            kind_from_name("和平街道党总支"),
            Some(OrgKind::GeneralBranch)
        );
        assert_eq!(kind_from_name("第一党小组"), Some(OrgKind::Group));
        assert_eq!(kind_from_name("机关第一党支部"), Some(OrgKind::Branch));
        assert_eq!(kind_from_name("省政府党组"), Some(OrgKind::LeadingGroup));
        assert_eq!(kind_from_name("办公室"), None);
    }

    #[test]
    fn missing_column_is_named() {
        let table = vec![vec!["姓名".to_owned(), "性别".to_owned()]];
        let error = map_columns(table, COLUMNS, &["joined_on"]).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("file"));
    }
}
