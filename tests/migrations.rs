//! The SQLite and PostgreSQL migrations must build the same schema: the same
//! migration versions, tables and columns, with matching type classes and
//! nullability.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Backend, Store};
use sqlx::Connection;
use sqlx::migrate::Migrator;

/// Column name to (type class, nullable), per table.
type Schema = BTreeMap<String, BTreeMap<String, (String, bool)>>;

fn migrations_dir(dialect: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect)
}

/// Maps a declared column type of either dialect to a class that both
/// dialects share.
fn type_class(declared: &str) -> String {
    let declared = declared.to_ascii_lowercase();
    let class = match declared.as_str() {
        "integer" | "bigint" | "int" | "int8" | "int4" | "smallint" => "integer",
        "text" | "character varying" | "varchar" => "text",
        "real" | "double precision" | "float8" => "real",
        "blob" | "bytea" => "blob",
        "boolean" | "bool" => "boolean",
        other => return format!("unknown type {other}"),
    };
    class.to_owned()
}

async fn sqlite_schema() -> Schema {
    let store = Store::new(Backend::Sqlite).await;
    let mut conn = sqlx::SqliteConnection::connect(&store.database_url)
        .await
        .expect("open SQLite");
    let migrator = Migrator::new(migrations_dir("sqlite").as_path())
        .await
        .expect("read SQLite migrations");
    migrator
        .run(&mut conn)
        .await
        .expect("apply SQLite migrations");

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for table in tables {
        let columns: Vec<(String, String, i64, i64)> =
            sqlx::query_as("SELECT name, type, \"notnull\", pk FROM pragma_table_info($1)")
                .bind(&table)
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let columns = columns
            .into_iter()
            .map(|(name, declared, not_null, pk)| {
                // Primary key columns count as NOT NULL, as they are in PostgreSQL.
                let nullable = not_null == 0 && pk == 0;
                (name, (type_class(&declared), nullable))
            })
            .collect();
        schema.insert(table, columns);
    }
    schema
}

async fn postgres_schema() -> Schema {
    let store = Store::new(Backend::Postgres).await;
    let mut conn = sqlx::PgConnection::connect(&store.database_url)
        .await
        .expect("connect to PostgreSQL");
    let migrator = Migrator::new(migrations_dir("postgres").as_path())
        .await
        .expect("read PostgreSQL migrations");
    migrator
        .run(&mut conn)
        .await
        .expect("apply PostgreSQL migrations");

    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for (table, column, declared, nullable) in rows {
        let class = type_class(&declared);
        schema
            .entry(table)
            .or_default()
            .insert(column, (class, nullable == "YES"));
    }
    schema
}

#[test]
fn migration_files_pair_up() {
    let names = |dialect: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(migrations_dir(dialect))
            .expect("migrations directory")
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty(), "no SQLite migrations");
    assert_eq!(
        sqlite,
        names("postgres"),
        "one file per change in each dialect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialects_build_same_schema() {
    let sqlite = sqlite_schema().await;
    let postgres = postgres_schema().await;
    assert!(
        sqlite.contains_key("orgs"),
        "tables found: {:?}",
        sqlite.keys()
    );

    let sqlite_tables: Vec<&String> = sqlite.keys().collect();
    let postgres_tables: Vec<&String> = postgres.keys().collect();
    assert_eq!(sqlite_tables, postgres_tables, "table names");
    for (table, columns) in &sqlite {
        assert_eq!(
            columns, &postgres[table],
            "columns of {table}: (type class, nullable)"
        );
    }
    for columns in sqlite.values().chain(postgres.values()) {
        for (column, (class, _)) in columns {
            assert!(!class.starts_with("unknown"), "{column}: {class}");
        }
    }
}
