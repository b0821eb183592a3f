//! Database access: one `sqlx` Any pool over SQLite (the embedded default) or
//! PostgreSQL, with the migrations of the matching dialect applied at start.
//!
//! Queries are written once with `$1`-style placeholders, which both SQLite
//! and PostgreSQL accept. Times are stored as Unix milliseconds (`BIGINT`),
//! calendar dates as `YYYY-MM-DD` text.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Executor};

use crate::config::StoreConfig;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// The SQL dialect behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection pool and the dialect it speaks.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub dialect: Dialect,
}

/// A failure to open or migrate the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("failed to create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("failed to connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("no Dangwu store at {0}: check --data-dir and --database-url")]
    Missing(String),
    #[error("failed to apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Dialect {
    /// Picks the dialect from a database URL's scheme.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Self::Sqlite => &SQLITE_MIGRATIONS,
            Self::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

impl Db {
    /// Begins a transaction that writes. On SQLite it takes the write lock
    /// at once (`BEGIN IMMEDIATE`): a deferred transaction that reads first
    /// fails with "database is locked" when it tries to write while another
    /// connection writes, instead of waiting for the busy timeout.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.pool.begin().await,
        }
    }

    /// Opens the store, creating the data directory and the SQLite file on
    /// first start, and applies pending migrations.
    pub async fn open(store: &StoreConfig) -> Result<Self, DbError> {
        let db = Self::connect(store).await?;
        db.dialect.migrator().run(&db.pool).await?;
        Ok(db)
    }

    /// Opens a store that must exist already, for commands that read it
    /// (backup, audit verify): a mistyped path is an error, not a new store.
    pub async fn open_existing(store: &StoreConfig) -> Result<Self, DbError> {
        if !store.data_dir.is_dir() {
            return Err(DbError::Missing(store.data_dir.display().to_string()));
        }
        if let Some(path) = sqlite_path(&store.database_url)
            && !std::path::Path::new(&path).is_file()
        {
            return Err(DbError::Missing(path));
        }
        Self::connect(store).await
    }

    /// Opens the store without applying migrations.
    pub async fn connect(store: &StoreConfig) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let url = &store.database_url;
        let dialect =
            Dialect::from_url(url).ok_or_else(|| DbError::UnsupportedUrl(url.to_owned()))?;
        std::fs::create_dir_all(&store.data_dir).map_err(|source| DbError::DataDir {
            path: store.data_dir.display().to_string(),
            source,
        })?;
        let options = AnyConnectOptions::from_str(url)
            .map_err(DbError::Connect)?
            .disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(match dialect {
                Dialect::Sqlite => 4,
                Dialect::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(DbError::Connect)?;
        Ok(Self { pool, dialect })
    }

    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Closes every pooled connection; used at shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The file behind an SQLite URL such as `sqlite:///var/lib/dangwu/dangwu.db?mode=rwc`.
fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

/// Current time in Unix milliseconds, the unit of every stored timestamp.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Whether an error is a unique-constraint violation in either dialect.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

/// Escapes `%`, `_` and `\` in user text for a `LIKE ... ESCAPE '\'` pattern, so
/// that they match themselves.
pub fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod like_tests {
    #[test]
    fn escape_like_marks_wildcards() {
        assert_eq!(super::escape_like("a%b_c\\d"), "a\\%b\\_c\\\\d");
        assert_eq!(super::escape_like("党支部"), "党支部");
    }
}
