//! Votes on agenda items and elections: open, cast, close.
//!
//! - Only the host opens and closes, only in a live meeting of a kind that
//!   decides, and only one ballot at a time.
//! - Quorum is checked when the ballot opens (more than half present, more
//!   than four fifths for an election) and again when it closes: a ballot
//!   closed without quorum decides nothing, and its counts are still shown.
//! - Voting members who are present cast one ballot each; guests and
//!   probationary members do not vote.
//! - Counts stay hidden until the ballot closes, in the API and on the hub.
//!   While it is open, only the number of ballots cast is shown.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ballots;
use super::rules::{self, Choice, ElectionTally, MotionTally, PassRule};
use super::store::{self, MeetingRow, MeetingStatus};
use crate::audit::{self, Actor};
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::hub::protocol::Event;
use crate::perm::Caller;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_vote))
        .routes(routes!(cast_ballot))
        .routes(routes!(close_vote))
}

/// A motion or an election.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoteKind {
    Motion,
    Election,
}

/// Open (举手表决, named) or secret (无记名投票).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BallotKind {
    Open,
    Secret,
}

/// A candidate to put on an election ballot.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CandidateInput {
    /// The member standing; their name is taken from the record.
    pub member_id: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenVote {
    pub kind: VoteKind,
    pub title: String,
    pub ballot: BallotKind,
    /// The agenda item voted on; its rule decides a motion.
    pub agenda_position: Option<i64>,
    /// The rule of a motion without an agenda item. [default: majority]
    pub pass_rule: Option<PassRule>,
    /// Seats to fill in an election.
    #[serde(default)]
    pub seats: i64,
    /// An election's candidates, at least as many as seats.
    #[serde(default)]
    pub candidates: Vec<CandidateInput>,
}

/// One name on an election ballot.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Candidate {
    pub position: i64,
    pub member_id: Option<i64>,
    pub name: String,
}

/// A named choice of an open ballot, shown once it closes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NamedChoice {
    pub member_id: i64,
    pub name: String,
    /// `for`, `against` or `abstain`; for an election, the marked positions.
    #[schema(value_type = Object)]
    pub choice: serde_json::Value,
}

/// The counted result.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VoteResult {
    Motion(MotionTally),
    Election(ElectionTally),
}

/// A vote as the page shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VoteView {
    pub id: i64,
    pub kind: VoteKind,
    pub title: String,
    pub ballot: BallotKind,
    pub agenda_position: Option<i64>,
    pub pass_rule: PassRule,
    pub seats: i64,
    pub candidates: Vec<Candidate>,
    /// `open` or `closed`.
    pub status: String,
    pub opened_at: i64,
    pub closed_at: Option<i64>,
    /// How many have voted; never what.
    pub voted: i64,
    /// Whether the caller has voted.
    pub i_voted: bool,
    /// Present only once the ballot is closed.
    pub result: Option<VoteResult>,
    /// An open ballot's choices by name, once closed; empty for a secret one.
    pub named: Vec<NamedChoice>,
}

fn title(value: &str) -> AppResult<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 200 {
        return Err(AppError::invalid(
            "title",
            "标题须为 1 到 200 个字符",
            "title must be 1 to 200 characters",
        ));
    }
    Ok(value.to_owned())
}

fn not_quorate(election: bool) -> AppError {
    if election {
        AppError::conflict(
            "not_quorate",
            "到会有表决权的人数未超过应到人数的五分之四，不能进行选举",
            "an election needs more than four fifths of those required to attend present",
        )
    } else {
        AppError::conflict(
            "not_quorate",
            "到会有表决权的人数未超过应到人数的半数，不能表决",
            "a vote needs more than half of those required to attend present",
        )
    }
}

/// Locks a live meeting for a host action on its votes.
async fn lock_for_host(
    conn: &mut AnyConnection,
    caller: &Caller,
    id: i64,
) -> AppResult<MeetingRow> {
    let meeting = store::lock(conn, id).await?;
    if caller.session.account.member_id != Some(meeting.host_member) {
        return Err(AppError::forbidden());
    }
    if meeting.status != MeetingStatus::Live {
        return Err(AppError::conflict(
            "meeting_not_live",
            "会议未在进行中",
            "the meeting is not live",
        ));
    }
    if !meeting.kind.decides() {
        return Err(AppError::conflict(
            "meeting_does_not_decide",
            format!("{}不进行表决", meeting.kind.zh()),
            format!("a {} meeting takes no votes", meeting.kind.as_str()),
        ));
    }
    Ok(meeting)
}

/// Picks the rule for a motion: its agenda item's, else the request's.
async fn pass_rule(
    conn: &mut AnyConnection,
    meeting_id: i64,
    input: &OpenVote,
) -> AppResult<PassRule> {
    let Some(position) = input.agenda_position else {
        return Ok(input.pass_rule.unwrap_or(PassRule::Majority));
    };
    let rule: Option<String> = sqlx::query_scalar(
        "SELECT pass_rule FROM meeting_agenda_items WHERE meeting_id = $1 AND position = $2",
    )
    .bind(meeting_id)
    .bind(position)
    .fetch_optional(&mut *conn)
    .await?;
    let rule = rule.ok_or_else(|| {
        AppError::not_found(("议程", "agenda item"), position).field("agenda_position")
    })?;
    Ok(PassRule::parse(&rule).unwrap_or(PassRule::Majority))
}

async fn insert_candidates(
    conn: &mut AnyConnection,
    vote_id: i64,
    input: &OpenVote,
) -> AppResult<()> {
    if input.kind == VoteKind::Motion {
        return Ok(());
    }
    let count = input.candidates.len() as i64;
    if input.seats < 1 || count < input.seats || count > 100 {
        return Err(AppError::invalid(
            "candidates",
            "候选人须不少于应选名额，且不超过 100 人；应选名额至少为 1",
            "give at least one seat and at least as many candidates as seats, at most 100",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (position, candidate) in input.candidates.iter().enumerate() {
        let field = format!("candidates[{position}].member_id");
        if !seen.insert(candidate.member_id) {
            return Err(AppError::invalid(
                &field,
                "候选人重复",
                "candidate listed twice",
            ));
        }
        let name: Option<String> = sqlx::query_scalar("SELECT name FROM members WHERE id = $1")
            .bind(candidate.member_id)
            .fetch_optional(&mut *conn)
            .await?;
        let name = name.ok_or_else(|| {
            AppError::not_found(("党员", "member"), candidate.member_id).field(&field)
        })?;
        sqlx::query(
            "INSERT INTO meeting_vote_candidates (vote_id, position, member_id, name) VALUES ($1, $2, $3, $4)",
        )
        .bind(vote_id)
        .bind(position as i64)
        .bind(candidate.member_id)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Checks that no other ballot is open and that the meeting is quorate for
/// a motion or an election; returns the quorum numbers.
async fn check_can_open(
    conn: &mut AnyConnection,
    meeting: &MeetingRow,
    election: bool,
) -> AppResult<store::Quorum> {
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM meeting_votes WHERE meeting_id = $1 AND status = 'open'",
    )
    .bind(meeting.id)
    .fetch_one(&mut *conn)
    .await?;
    if open > 0 {
        return Err(AppError::conflict(
            "vote_already_open",
            "已有表决正在进行，请先结束",
            "another vote is open; close it first",
        ));
    }

    let quorum = store::quorum(conn, meeting).await?;
    let quorate = if election {
        quorum.election_quorate
    } else {
        quorum.quorate
    };
    if !quorate {
        return Err(not_quorate(election));
    }
    Ok(quorum)
}

/// Opens a vote (host only), when the meeting is quorate.
#[utoipa::path(post, path = "/api/meetings/{id}/votes", tag = "meetings", request_body = OpenVote,
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 201, body = VoteView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn open_vote(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<OpenVote>,
) -> AppResult<(StatusCode, ApiJson<VoteView>)> {
    let title = title(&input.title)?;

    let mut tx = state.db.begin().await?;
    let meeting = lock_for_host(&mut tx, &caller, id).await?;
    let election = input.kind == VoteKind::Election;
    if election {
        crate::membership::reject_in_temporary_branch(
            &mut tx,
            meeting.org_id,
            crate::membership::TemporaryBranchLimit::Election,
        )
        .await?;
    }
    let quorum = check_can_open(&mut tx, &meeting, election).await?;

    let rule = pass_rule(&mut tx, id, &input).await?;
    let seats = if election { input.seats } else { 0 };
    let vote_id: i64 = sqlx::query_scalar(
        "INSERT INTO meeting_votes (meeting_id, agenda_position, kind, title, ballot, pass_rule, seats, status, \
         opened_by, opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9) RETURNING id",
    )
    .bind(id)
    .bind(input.agenda_position)
    .bind(if election { "election" } else { "motion" })
    .bind(&title)
    .bind(if input.ballot == BallotKind::Secret { "secret" } else { "open" })
    .bind(rule.as_str())
    .bind(seats)
    .bind(caller.session.account.id)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    insert_candidates(&mut tx, vote_id, &input).await?;

    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "meeting.vote_open",
        ("meeting", id.to_string()),
        json!({"vote_id": vote_id, "title": title, "kind": input.kind, "ballot": input.ballot,
            "required": quorum.required, "present": quorum.present}),
    )
    .await?;
    let view = load(&mut tx, &meeting, vote_id, None).await?;

    let event = store::event(
        &mut tx,
        id,
        "vote.opened",
        serde_json::to_value(&view).map_err(AppError::internal)?,
    )
    .await?;

    tx.commit().await?;
    state.hub.publish([event]);
    tracing::info!(meeting_id = id, vote_id, "vote opened");
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// A ballot: a choice on a motion, or the marked candidate positions in an
/// election (at most as many as seats; none is a blank ballot).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BallotInput {
    pub choice: Option<Choice>,
    #[serde(default)]
    pub candidates: Vec<i64>,
}

/// How many have voted after this ballot.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cast {
    pub vote_id: i64,
    pub voted: i64,
}

/// Turns a ballot into the stored choice text, checked against the vote.
async fn ballot_text(
    conn: &mut AnyConnection,
    vote_id: i64,
    kind: &str,
    seats: i64,
    input: &BallotInput,
) -> AppResult<String> {
    if kind == "motion" {
        let choice = input.choice.ok_or_else(|| {
            AppError::invalid(
                "choice",
                "请选择赞成、反对或弃权",
                "choose for, against or abstain",
            )
        })?;
        return Ok(choice.as_str().to_owned());
    }
    let mut marked = input.candidates.clone();
    marked.sort_unstable();
    marked.dedup();
    if marked.len() != input.candidates.len() || marked.len() as i64 > seats {
        return Err(AppError::invalid(
            "candidates",
            format!("每张选票最多选 {seats} 人，且不能重复"),
            format!("mark at most {seats} distinct candidates"),
        ));
    }
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM meeting_vote_candidates WHERE vote_id = $1")
            .bind(vote_id)
            .fetch_one(&mut *conn)
            .await?;
    if marked.iter().any(|p| *p < 0 || *p >= count) {
        return Err(AppError::invalid(
            "candidates",
            "候选人不存在",
            "no such candidate",
        ));
    }
    serde_json::to_string(&marked).map_err(AppError::internal)
}

/// Casts the caller's ballot. Acknowledged ballots are committed.
#[utoipa::path(post, path = "/api/meetings/{id}/votes/{vote_id}/ballot", tag = "meetings", request_body = BallotInput,
    params(("id" = i64, Path, description = "Meeting id"), ("vote_id" = i64, Path, description = "Vote id")),
    responses((status = 200, body = Cast), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn cast_ballot(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, vote_id)): Path<(i64, i64)>,
    ApiJson(input): ApiJson<BallotInput>,
) -> AppResult<ApiJson<Cast>> {
    let member_id = caller
        .session
        .account
        .member_id
        .ok_or_else(AppError::forbidden)?;

    let mut tx = state.db.begin().await?;
    let meeting = store::lock(&mut tx, id).await?;
    let vote = sqlx::query(
        "SELECT kind, ballot, seats, status FROM meeting_votes WHERE id = $1 AND meeting_id = $2",
    )
    .bind(vote_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| AppError::not_found(("表决", "vote"), vote_id))?;
    if vote.try_get::<String, _>("status")? != "open" {
        return Err(AppError::conflict(
            "vote_closed",
            "表决已结束",
            "the vote is closed",
        ));
    }
    check_eligible(&mut tx, &meeting, member_id).await?;
    let kind: String = vote.try_get("kind")?;
    let choice = ballot_text(&mut tx, vote_id, &kind, vote.try_get("seats")?, &input).await?;
    let secret = vote.try_get::<String, _>("ballot")? == "secret";
    ballots::cast(&mut tx, vote_id, member_id, secret, &choice).await?;
    let voted = ballots::voted_count(&mut tx, vote_id).await?;
    // The audit entry records who voted and the event how many have voted.
    // Neither contains the choice.
    audit::append(
        &mut tx,
        &state.audit_key,
        &caller.session.actor(),
        "meeting.vote_cast",
        ("meeting", id.to_string()),
        json!({"vote_id": vote_id}),
    )
    .await?;

    let event = store::event(
        &mut tx,
        id,
        "vote.cast",
        json!({"vote_id": vote_id, "voted": voted}),
    )
    .await?;

    tx.commit().await?;
    state.hub.publish([event]);
    Ok(ApiJson(Cast { vote_id, voted }))
}

/// Checks that the member is a voting member of the body and present.
async fn check_eligible(
    conn: &mut AnyConnection,
    meeting: &MeetingRow,
    member_id: i64,
) -> AppResult<()> {
    let row = sqlx::query(&format!(
        "SELECT p.voting, CASE WHEN {} THEN 1 ELSE 0 END AS present FROM meeting_participants p \
         WHERE p.meeting_id = $1 AND p.member_id = $2",
        store::PRESENT
    ))
    .bind(meeting.id)
    .bind(member_id)
    .fetch_optional(&mut *conn)
    .await?;
    let voting = row
        .as_ref()
        .map(|r| r.try_get::<i64, _>("voting"))
        .transpose()?
        == Some(1);
    if !voting {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "not_a_voter",
            "您在本次会议没有表决权",
            "you have no vote in this meeting",
        ));
    }
    let present = row.map(|r| r.try_get::<i64, _>("present")).transpose()? == Some(1);
    if !present {
        return Err(AppError::conflict(
            "not_present",
            "请先进入会议再投票",
            "join the meeting before voting",
        ));
    }
    Ok(())
}

/// Closes a vote (host only) and reveals the counts.
#[utoipa::path(post, path = "/api/meetings/{id}/votes/{vote_id}/close", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id"), ("vote_id" = i64, Path, description = "Vote id")),
    responses((status = 200, body = VoteView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn close_vote(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, vote_id)): Path<(i64, i64)>,
) -> AppResult<ApiJson<VoteView>> {
    let mut tx = state.db.begin().await?;
    let meeting = lock_for_host(&mut tx, &caller, id).await?;
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM meeting_votes WHERE id = $1 AND meeting_id = $2")
            .bind(vote_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    match status.as_deref() {
        None => return Err(AppError::not_found(("表决", "vote"), vote_id)),
        Some("open") => {}
        Some(_) => {
            return Err(AppError::conflict(
                "vote_closed",
                "表决已结束",
                "the vote is closed",
            ));
        }
    }

    let event = close(&mut tx, &state, &meeting, vote_id, &caller.session.actor()).await?;
    let view = load(&mut tx, &meeting, vote_id, caller.session.account.member_id).await?;

    tx.commit().await?;
    state.hub.publish([event]);
    Ok(ApiJson(view))
}

/// Closes every open vote of a meeting that is ending.
pub async fn close_all_open(
    conn: &mut AnyConnection,
    state: &AppState,
    meeting: &MeetingRow,
    actor: &Actor,
) -> AppResult<Vec<Event>> {
    let open: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM meeting_votes WHERE meeting_id = $1 AND status = 'open' ORDER BY id",
    )
    .bind(meeting.id)
    .fetch_all(&mut *conn)
    .await?;

    let mut events = Vec::new();
    for vote_id in open {
        events.push(close(conn, state, meeting, vote_id, actor).await?);
    }
    Ok(events)
}

/// Counts the ballots, stores the result, audits and appends `vote.closed`.
async fn close(
    conn: &mut AnyConnection,
    state: &AppState,
    meeting: &MeetingRow,
    vote_id: i64,
    actor: &Actor,
) -> AppResult<Event> {
    let row = sqlx::query("SELECT kind, ballot, pass_rule, seats FROM meeting_votes WHERE id = $1")
        .bind(vote_id)
        .fetch_one(&mut *conn)
        .await?;
    let secret = row.try_get::<String, _>("ballot")? == "secret";
    let choices = ballots::take_for_count(conn, state.db.dialect, vote_id, secret).await?;
    let result = count(conn, meeting, vote_id, &row, &choices).await?;

    let result_json = serde_json::to_value(&result).map_err(AppError::internal)?;
    sqlx::query("UPDATE meeting_votes SET status = 'closed', closed_by = $1, closed_at = $2, result = $3 WHERE id = $4")
        .bind(actor.account_id)
        .bind(now_ms())
        .bind(result_json.to_string())
        .bind(vote_id)
        .execute(&mut *conn)
        .await?;

    audit::append(
        conn,
        &state.audit_key,
        actor,
        "meeting.vote_close",
        ("meeting", meeting.id.to_string()),
        json!({"vote_id": vote_id, "ballots": choices.len(), "result": result_json}),
    )
    .await?;
    tracing::info!(
        meeting_id = meeting.id,
        vote_id,
        ballots = choices.len(),
        "vote closed"
    );
    let view = load(conn, meeting, vote_id, None).await?;
    store::event(
        conn,
        meeting.id,
        "vote.closed",
        serde_json::to_value(&view).map_err(AppError::internal)?,
    )
    .await
}

/// Counts the ballots of a motion or an election against the quorum
/// numbers at the close.
async fn count(
    conn: &mut AnyConnection,
    meeting: &MeetingRow,
    vote_id: i64,
    vote: &sqlx::any::AnyRow,
    choices: &[String],
) -> AppResult<VoteResult> {
    let quorum = store::quorum(conn, meeting).await?;
    if vote.try_get::<String, _>("kind")? != "election" {
        let rule: String = vote.try_get("pass_rule")?;
        let rule = PassRule::parse(&rule).unwrap_or(PassRule::Majority);
        let parsed: Vec<Choice> = choices.iter().filter_map(|c| Choice::parse(c)).collect();
        let tally = rules::tally_motion(rule, quorum.required, quorum.present, &parsed);
        return Ok(VoteResult::Motion(tally));
    }

    let candidates: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM meeting_vote_candidates WHERE vote_id = $1 ORDER BY position",
    )
    .bind(vote_id)
    .fetch_all(&mut *conn)
    .await?;
    let marks: Vec<Vec<i64>> = choices
        .iter()
        .map(|c| serde_json::from_str(c).unwrap_or_default())
        .collect();
    let electors = electors(conn, meeting, vote_id).await?;
    let seats: i64 = vote.try_get("seats")?;
    let tally = rules::tally_election(seats, &candidates, quorum.required, electors, &marks);
    Ok(VoteResult::Election(tally))
}

/// Counts the electors, the base of an election: those present with
/// voting rights at the close, and any voter who left after casting.
async fn electors(conn: &mut AnyConnection, meeting: &MeetingRow, vote_id: i64) -> AppResult<i64> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM meeting_participants p WHERE p.meeting_id = $1 AND p.voting = 1 \
         AND ({} OR p.member_id IN (SELECT v.member_id FROM meeting_voters v WHERE v.vote_id = $2))",
        store::PRESENT
    ))
    .bind(meeting.id)
    .bind(vote_id)
    .fetch_one(&mut *conn)
    .await?)
}

/// Loads one vote, with `i_voted` for `member_id`.
pub async fn load(
    conn: &mut AnyConnection,
    meeting: &MeetingRow,
    vote_id: i64,
    member_id: Option<i64>,
) -> AppResult<VoteView> {
    let row = sqlx::query(
        "SELECT id, kind, title, ballot, agenda_position, pass_rule, seats, status, opened_at, closed_at, result \
         FROM meeting_votes WHERE id = $1 AND meeting_id = $2",
    )
    .bind(vote_id)
    .bind(meeting.id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::not_found(("表决", "vote"), vote_id))?;
    from_row(conn, &row, member_id).await
}

/// Loads every vote of the meeting, oldest first.
pub async fn list(
    conn: &mut AnyConnection,
    meeting: &MeetingRow,
    member_id: Option<i64>,
) -> AppResult<Vec<VoteView>> {
    let rows = sqlx::query(
        "SELECT id, kind, title, ballot, agenda_position, pass_rule, seats, status, opened_at, closed_at, result \
         FROM meeting_votes WHERE meeting_id = $1 ORDER BY id",
    )
    .bind(meeting.id)
    .fetch_all(&mut *conn)
    .await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in &rows {
        views.push(from_row(conn, row, member_id).await?);
    }
    Ok(views)
}

async fn from_row(
    conn: &mut AnyConnection,
    row: &sqlx::any::AnyRow,
    member_id: Option<i64>,
) -> AppResult<VoteView> {
    let id: i64 = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    let secret = row.try_get::<String, _>("ballot")? == "secret";
    let closed = status == "closed";
    let result: Option<String> = row.try_get("result")?;
    let result = match result.filter(|_| closed) {
        Some(text) => Some(serde_json::from_str(&text).map_err(AppError::internal)?),
        None => None,
    };
    let i_voted = match member_id {
        Some(member) => {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM meeting_voters WHERE vote_id = $1 AND member_id = $2",
            )
            .bind(id)
            .bind(member)
            .fetch_one(&mut *conn)
            .await?
                > 0
        }
        None => false,
    };
    let named = if closed && !secret {
        named(conn, id).await?
    } else {
        Vec::new()
    };
    let rule: String = row.try_get("pass_rule")?;
    Ok(VoteView {
        id,
        kind: if row.try_get::<String, _>("kind")? == "election" {
            VoteKind::Election
        } else {
            VoteKind::Motion
        },
        title: row.try_get("title")?,
        ballot: if secret {
            BallotKind::Secret
        } else {
            BallotKind::Open
        },
        agenda_position: row.try_get("agenda_position")?,
        pass_rule: PassRule::parse(&rule).unwrap_or(PassRule::Majority),
        seats: row.try_get("seats")?,
        candidates: candidates(conn, id).await?,
        status,
        opened_at: row.try_get("opened_at")?,
        closed_at: row.try_get("closed_at")?,
        voted: ballots::voted_count(conn, id).await?,
        i_voted,
        result,
        named,
    })
}

async fn candidates(conn: &mut AnyConnection, vote_id: i64) -> AppResult<Vec<Candidate>> {
    let rows = sqlx::query("SELECT position, member_id, name FROM meeting_vote_candidates WHERE vote_id = $1 ORDER BY position")
        .bind(vote_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Candidate {
                position: row.try_get("position")?,
                member_id: row.try_get("member_id")?,
                name: row.try_get("name")?,
            })
        })
        .collect()
}

async fn named(conn: &mut AnyConnection, vote_id: i64) -> AppResult<Vec<NamedChoice>> {
    let rows = sqlx::query(
        "SELECT b.member_id, m.name, b.choice FROM meeting_open_ballots b JOIN members m ON m.id = b.member_id \
         WHERE b.vote_id = $1 ORDER BY m.id",
    )
    .bind(vote_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let choice: String = row.try_get("choice")?;
            let choice = serde_json::from_str(&choice).unwrap_or(serde_json::Value::String(choice));
            Ok(NamedChoice {
                member_id: row.try_get("member_id")?,
                name: row.try_get("name")?,
                choice,
            })
        })
        .collect()
}
