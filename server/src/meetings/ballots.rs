//! Ballot storage. An open ballot is stored with its voter. A secret
//! ballot is stored as a random key and the choice alone: no voter, no
//! time, no sequence number. The only per-person trace is a row in
//! `meeting_voters`, whose key makes a second ballot by the same person
//! fail in the database.
//!
//! Storage order could still pair the n-th ballot with the n-th voter
//! (PostgreSQL keeps heap rows in arrival order and stamps each with the
//! inserting transaction's id). Closing the ballot therefore reads every
//! secret ballot, deletes them, and writes them back in shuffled order
//! under fresh keys, inside the closing transaction. Choices never reach a
//! log line, an audit entry or a hub event.

use rand::seq::SliceRandom;
use sqlx::AnyConnection;

use crate::db::{Dialect, is_unique_violation};
use crate::error::{AppError, AppResult};

/// Generates a fresh 128-bit random ballot key, in hex.
fn ballot_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn already_voted() -> AppError {
    AppError::conflict("already_voted", "您已投过票", "you have already voted")
}

/// Records that the member voted and stores the ballot. Fails with
/// `already_voted` when the member's row exists, whichever request got
/// there first.
pub async fn cast(
    conn: &mut AnyConnection,
    vote_id: i64,
    member_id: i64,
    secret: bool,
    choice: &str,
) -> AppResult<()> {
    let voted = sqlx::query("INSERT INTO meeting_voters (vote_id, member_id) VALUES ($1, $2)")
        .bind(vote_id)
        .bind(member_id)
        .execute(&mut *conn)
        .await;
    match voted {
        Err(error) if is_unique_violation(&error) => return Err(already_voted()),
        other => other?,
    };
    if secret {
        sqlx::query(
            "INSERT INTO meeting_secret_ballots (vote_id, ballot_key, choice) VALUES ($1, $2, $3)",
        )
        .bind(vote_id)
        .bind(ballot_key())
        .bind(choice)
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query(
            "INSERT INTO meeting_open_ballots (vote_id, member_id, choice) VALUES ($1, $2, $3)",
        )
        .bind(vote_id)
        .bind(member_id)
        .bind(choice)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Counts those who have voted.
pub async fn voted_count(conn: &mut AnyConnection, vote_id: i64) -> AppResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM meeting_voters WHERE vote_id = $1")
            .bind(vote_id)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Reads every choice of a ballot for counting. For a secret ballot it
/// also rewrites the rows in shuffled order under fresh keys, so that
/// nothing stored keeps the order of arrival. Call it only inside the
/// closing transaction.
pub async fn take_for_count(
    conn: &mut AnyConnection,
    dialect: Dialect,
    vote_id: i64,
    secret: bool,
) -> AppResult<Vec<String>> {
    if !secret {
        return Ok(sqlx::query_scalar(
            "SELECT choice FROM meeting_open_ballots WHERE vote_id = $1 ORDER BY member_id",
        )
        .bind(vote_id)
        .fetch_all(&mut *conn)
        .await?);
    }
    let mut choices: Vec<String> =
        sqlx::query_scalar("SELECT choice FROM meeting_secret_ballots WHERE vote_id = $1")
            .bind(vote_id)
            .fetch_all(&mut *conn)
            .await?;
    if dialect == Dialect::Sqlite {
        // Zero the deleted rows in the database file instead of leaving
        // them in freed space. The setting stays on for this pooled
        // connection, which only makes its later deletes slower.
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM meeting_secret_ballots WHERE vote_id = $1")
        .bind(vote_id)
        .execute(&mut *conn)
        .await?;
    choices.shuffle(&mut rand::thread_rng());
    for choice in &choices {
        sqlx::query(
            "INSERT INTO meeting_secret_ballots (vote_id, ballot_key, choice) VALUES ($1, $2, $3)",
        )
        .bind(vote_id)
        .bind(ballot_key())
        .bind(choice)
        .execute(&mut *conn)
        .await?;
    }
    Ok(choices)
}
