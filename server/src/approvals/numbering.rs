//! Document numbers (文号) such as `青川市委〔2026〕12号`: consecutive per
//! issuing organization, prefix and year, assigned at sign-off inside the
//! signing-off transaction.
//!
//! The counter row is updated first, which takes its row lock, so
//! concurrent sign-offs in one organization queue and never share a
//! number. A number once assigned stays in the register: a signed-off
//! document can only be voided (作废), which marks its number void.

use chrono::Datelike;
use sqlx::AnyConnection;

use super::store::DocumentRow;
use crate::db::now_ms;
use crate::error::AppResult;

/// Formats a number as printed on the document.
pub fn format_number(prefix: &str, year: i64, seq: i64) -> String {
    format!("{prefix}〔{year}〕{seq}号")
}

/// Assigns the next number to a signed-off document and records it.
pub async fn assign(conn: &mut AnyConnection, document: &DocumentRow) -> AppResult<String> {
    let year = i64::from(chrono::Local::now().year());
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO number_counters (org_id, prefix, year, last_seq) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (org_id, prefix, year) DO UPDATE SET last_seq = number_counters.last_seq + 1 \
         RETURNING last_seq",
    )
    .bind(document.org_id)
    .bind(&document.number_prefix)
    .bind(year)
    .fetch_one(&mut *conn)
    .await?;
    let text = format_number(&document.number_prefix, year, seq);
    sqlx::query(
        "INSERT INTO number_register (org_id, prefix, year, seq, document_id, number_text, status, assigned_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'used', $7)",
    )
    .bind(document.org_id)
    .bind(&document.number_prefix)
    .bind(year)
    .bind(seq)
    .bind(document.id)
    .bind(&text)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE documents SET number_text = $1 WHERE id = $2")
        .bind(&text)
        .bind(document.id)
        .execute(&mut *conn)
        .await?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn number_format() {
        assert_eq!(
            super::format_number("青川市委", 2026, 12),
            "青川市委〔2026〕12号"
        );
    }
}
