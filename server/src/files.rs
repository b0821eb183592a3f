//! Stored files, content-addressed: the bytes live in the data directory at
//! `files/ab/abcdef...` named by their SHA-256, so identical uploads are
//! stored once and a stored file never changes.
//!
//! `POST /api/files?name=NAME` takes the raw bytes as the body (so browsers
//! can show upload progress) and checks size and type: the content is
//! sniffed and must agree with the name's extension, and executables are
//! rejected whatever their name.

use std::path::{Path, PathBuf};

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::perm::Caller;
use crate::state::AppState;

/// Largest accepted file, in bytes (20 MiB).
pub const MAX_FILE_SIZE: usize = 20 * 1024 * 1024;

/// Accepted extensions and the MIME type served for each.
const ALLOWED: &[(&str, &str)] = &[
    ("pdf", "application/pdf"),
    ("ofd", "application/ofd"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("xls", "application/vnd.ms-excel"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("ppt", "application/vnd.ms-powerpoint"),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("wps", "application/vnd.ms-works"),
    ("et", "application/vnd.ms-excel"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("txt", "text/plain; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("zip", "application/zip"),
    ("ics", "text/calendar; charset=utf-8"),
];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .layer(DefaultBodyLimit::max(MAX_FILE_SIZE))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct UploadQuery {
    /// File name with extension, e.g. `工作方案.docx`.
    name: String,
}

/// A stored file.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredFile {
    pub sha256: String,
    pub size: i64,
    pub mime: String,
    pub name: String,
}

/// Stores an uploaded file (any signed-in user) and returns its hash, which
/// other requests use to attach it.
#[utoipa::path(post, path = "/api/files", tag = "files", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = StoredFile), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<UploadQuery>,
    body: Bytes,
) -> AppResult<(StatusCode, ApiJson<StoredFile>)> {
    let name = check_name(&query.name)?;
    let mime = check_type(&name, &body)?;
    let sha256 = hex::encode(Sha256::digest(&body));
    write_blob(&state.config.store.files_dir(), &sha256, &body).await?;
    sqlx::query(
        "INSERT INTO stored_files (sha256, size, mime, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(&sha256)
    .bind(body.len() as i64)
    .bind(mime)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await?;
    tracing::info!(account_id = caller.session.account.id, sha256 = %sha256, size = body.len(), "file stored");
    Ok((
        StatusCode::CREATED,
        ApiJson(StoredFile {
            sha256,
            size: body.len() as i64,
            mime: mime.to_owned(),
            name,
        }),
    ))
}

/// Checks a file name: 1 to 200 characters, no path separators.
pub fn check_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    let length = name.chars().count();
    // Control characters, and the invisible and direction-changing marks
    // (U+200B to U+200F, U+202A to U+202E, U+2066 to U+2069) that disguise
    // an extension, are refused.
    let disguised = name.chars().any(|c| {
        c.is_control()
            || ('\u{200b}'..='\u{200f}').contains(&c)
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    });
    if length == 0
        || length > 200
        || disguised
        || name.contains(['/', '\\'])
        || name.starts_with('.')
    {
        return Err(AppError::invalid(
            "name",
            format!("文件名无效：{name}"),
            format!("invalid file name {name:?}"),
        ));
    }
    Ok(name.to_owned())
}

fn extension(name: &str) -> String {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The MIME type served for a name's extension, if the extension is
/// accepted.
pub fn mime_for_name(name: &str) -> Option<&'static str> {
    let ext = extension(name);
    ALLOWED.iter().find(|(e, _)| *e == ext).map(|(_, m)| *m)
}

/// Returns the MIME type to serve, or rejects a type that is not allowed or
/// whose content does not match its extension.
pub fn check_type(name: &str, bytes: &[u8]) -> AppResult<&'static str> {
    let ext = extension(name);
    let unsupported = || {
        let list: Vec<&str> = ALLOWED.iter().map(|(e, _)| *e).collect();
        AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_file_type",
            format!("不支持的文件类型 .{ext}，可上传：{}", list.join("、")),
            format!(
                "file type .{ext} is not accepted; accepted: {}",
                list.join(", ")
            ),
        )
        .field("name")
    };
    let mime = ALLOWED
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, m)| *m)
        .ok_or_else(unsupported)?;
    let sniffed = infer::get(bytes).map(|kind| kind.extension());
    let consistent = match (ext.as_str(), sniffed) {
        (_, Some("exe" | "elf" | "dll" | "msi" | "sh" | "mach")) => false,
        ("txt" | "csv" | "ics", None) => !bytes.contains(&0),
        ("txt" | "csv" | "ics", Some(_)) => false,
        ("docx" | "xlsx" | "pptx" | "zip" | "ofd", Some(kind)) => {
            matches!(kind, "zip" | "docx" | "xlsx" | "pptx")
        }
        ("doc" | "xls" | "ppt" | "wps" | "et", Some(kind)) => {
            matches!(kind, "doc" | "xls" | "ppt" | "msi")
        }
        ("jpg" | "jpeg", Some(kind)) => kind == "jpg",
        (ext, Some(kind)) => ext == kind,
        (_, None) => false,
    };
    if !consistent {
        return Err(type_mismatch(&ext));
    }
    Ok(mime)
}

/// The error for content that does not match the extension `ext`.
pub fn type_mismatch(ext: &str) -> AppError {
    AppError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "file_type_mismatch",
        format!("文件内容与扩展名 .{ext} 不符"),
        format!("file content does not match its extension .{ext}"),
    )
    .field("name")
}

/// Stores a file the server produced (a calendar entry, for example)
/// inside the caller's transaction, with the same type check as uploads.
pub async fn store_generated(
    conn: &mut sqlx::AnyConnection,
    files_dir: &Path,
    name: &str,
    bytes: Vec<u8>,
) -> AppResult<StoredFile> {
    let name = check_name(name)?;
    let mime = check_type(&name, &bytes)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let size = bytes.len() as i64;
    write_blob(files_dir, &sha256, &Bytes::from(bytes)).await?;
    sqlx::query(
        "INSERT INTO stored_files (sha256, size, mime, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(&sha256)
    .bind(size)
    .bind(mime)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(StoredFile {
        sha256,
        size,
        mime: mime.to_owned(),
        name,
    })
}

/// Path of a stored file's bytes inside the files directory.
pub fn blob_path(files_dir: &Path, sha256: &str) -> PathBuf {
    files_dir.join(&sha256[..2]).join(sha256)
}

/// Writes the bytes once: to a temporary file, synced, then renamed into
/// place, so a crash never leaves a partial file under a valid hash.
pub async fn write_blob(files_dir: &Path, sha256: &str, bytes: &Bytes) -> AppResult<()> {
    let path = blob_path(files_dir, sha256);
    if tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Ok(());
    }
    let dir = path.parent().expect("blob path has a parent").to_owned();
    let bytes = bytes.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(&dir)?;
        let mut temp = tempfile::NamedTempFile::new_in(&dir)?;
        temp.write_all(&bytes)?;
        temp.as_file().sync_all()?;
        temp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    })
    .await
    .map_err(AppError::internal)?
    .map_err(AppError::internal)
}

/// Reads a stored file's bytes.
pub async fn read_blob(files_dir: &Path, sha256: &str) -> AppResult<Vec<u8>> {
    tokio::fs::read(blob_path(files_dir, sha256))
        .await
        .map_err(AppError::internal)
}

/// A file attached to a notice or a document, as listed to readers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AttachmentInfo {
    pub position: i64,
    pub name: String,
    pub size: i64,
    pub mime: String,
}

/// Lists the attachments of one notice or document, in order. `table` is an
/// attachment table with `position`, `name` and `sha256` columns, and
/// `owner` its column naming the notice or document.
pub async fn attachments_of(
    db: &crate::db::Db,
    table: &'static str,
    owner: &'static str,
    id: i64,
) -> AppResult<Vec<AttachmentInfo>> {
    use sqlx::Row;
    let rows = sqlx::query(&format!(
        "SELECT a.position, a.name, f.size, f.mime FROM {table} a \
         JOIN stored_files f ON f.sha256 = a.sha256 WHERE a.{owner} = $1 ORDER BY a.position"
    ))
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AttachmentInfo {
                position: row.try_get("position")?,
                name: row.try_get("name")?,
                size: row.try_get("size")?,
                mime: row.try_get("mime")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AppError::from)
}

/// Builds the download response for a stored file: its type, `name` as the
/// file name the browser saves, and no content sniffing.
pub fn download(name: &str, mime: String, bytes: Vec<u8>) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    let disposition = format!("attachment; filename*=UTF-8''{encoded}");
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

/// Checks an attachment that names an uploaded file and returns the cleaned
/// name. The name's extension must match the type the upload was checked
/// against, because the name decides how browsers open the download. Errors
/// point at `field`.
pub async fn check_attachment(
    conn: &mut sqlx::AnyConnection,
    field: &str,
    sha256: &str,
    name: &str,
) -> AppResult<String> {
    let name = check_name(name).map_err(|e| e.field(field))?;
    let stored: Option<String> =
        sqlx::query_scalar("SELECT mime FROM stored_files WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(stored_mime) = stored else {
        return Err(AppError::not_found(("文件", "file"), sha256).field(field));
    };
    if mime_for_name(&name) != Some(stored_mime.as_str()) {
        return Err(AppError::invalid(
            field,
            format!("附件名 {name} 与文件类型不符"),
            format!("attachment name {name:?} does not match the stored file's type"),
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_check_cases() {
        let pdf = b"%PDF-1.7\n...";
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0";
        assert!(check_type("a.pdf", pdf).is_ok());
        assert!(check_type("a.PDF", pdf).is_ok());
        assert!(check_type("a.png", png).is_ok());
        assert!(check_type("note.txt", "会议通知".as_bytes()).is_ok());
        assert_eq!(
            check_type("a.png", pdf).unwrap_err().code,
            "file_type_mismatch"
        );
        assert_eq!(
            check_type("a.txt", elf).unwrap_err().code,
            "file_type_mismatch"
        );
        assert_eq!(
            check_type("a.pdf", elf).unwrap_err().code,
            "file_type_mismatch"
        );
        assert_eq!(
            check_type("run.exe", elf).unwrap_err().code,
            "unsupported_file_type"
        );
        assert_eq!(
            check_type("noext", pdf).unwrap_err().code,
            "unsupported_file_type"
        );
    }

    #[test]
    fn name_rejects_paths() {
        assert!(check_name("../etc/passwd").is_err());
        assert!(check_name("a\\b.txt").is_err());
        assert!(check_name(".hidden").is_err());
        assert!(check_name("a\r\nb.exe").is_err());
        assert!(check_name("report\u{202e}fdp.exe").is_err());
        assert!(check_name("工作方案.docx").is_ok());
    }
}
