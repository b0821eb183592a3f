//! Audio recordings of meetings (会议录音). The host starts and stops a recording of the
//! live meeting. The server taps the room's audio in the media engine, decodes and mixes
//! the speakers with libopus, and writes one mono Ogg Opus file into the `recordings/`
//! folder of the stored files directory. Those who may read the meeting's record list and
//! download its recordings.

pub(crate) mod mixer;
mod ogg_opus;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use opus::{Application, Bitrate, Channels, Encoder};
use serde::Serialize;
use serde_json::json;
use sfu::AudioPacket;
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::mixer::{FRAME_SAMPLES, Mixer};
use self::ogg_opus::OggOpusWriter;
use super::{Standing, store};
use crate::audit::{self, Actor};
use crate::db::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::ApiJson;
use crate::meetings::live::cascade::{MediaReply, MediaRequest, RequestError};
use crate::perm::Caller;
use crate::state::AppState;

/// Bit rate of the mixed recording: speech in mono needs no more.
const BITRATE: i32 = 32_000;

/// Length of one mixed frame.
const FRAME_MS: u64 = 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(list))
        .routes(routes!(download))
}

/// The recordings starting or running on this node, by meeting.
#[derive(Default)]
pub struct Recorders {
    running: Mutex<HashMap<i64, Slot>>,
}

/// A meeting's recording: reserved while it starts, so that a second start is
/// rejected, then running.
enum Slot {
    Starting,
    Running(Running),
}

/// Removes a reserved slot again unless the recording started.
struct Reservation<'a> {
    recorders: &'a Recorders,
    meeting_id: i64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut map = self.recorders.map();
        if matches!(map.get(&self.meeting_id), Some(Slot::Starting)) {
            map.remove(&self.meeting_id);
        }
    }
}

struct Running {
    recording_id: i64,
    /// Sending stops the recorder.
    stop: oneshot::Sender<()>,
    /// Fires once the recorder has closed its file and stored the end.
    done: oneshot::Receiver<()>,
}

/// Totals of a finished recording.
#[derive(Debug, Clone, Copy, Default)]
struct Written {
    frames: u64,
    bytes: u64,
}

impl Recorders {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Slot>> {
        // Each critical section is one insert, remove or lookup, so a panic elsewhere
        // cannot leave the map half changed.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One recording, as listed to readers of the meeting.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecordingView {
    pub id: i64,
    pub started_by_name: String,
    pub started_at: i64,
    /// Empty while recording.
    pub ended_at: Option<i64>,
    pub duration_ms: i64,
    pub size: i64,
    pub recording: bool,
}

/// Recordings live among the stored files, so that every node reaches them and backups
/// carry them.
pub(crate) fn recordings_dir(state: &AppState) -> PathBuf {
    state.config.store.files_dir().join("recordings")
}

/// Rejects everyone but the meeting's host.
async fn host_access(
    state: &AppState,
    caller: &Caller,
    meeting_id: i64,
) -> AppResult<super::Access> {
    let access = super::access(state, meeting_id, caller.session.account.id).await?;
    if access.standing != Standing::Host {
        return Err(AppError::forbidden());
    }
    Ok(access)
}

/// Rejects everyone but the host, and any meeting that is not live.
async fn host_of_live(state: &AppState, caller: &Caller, meeting_id: i64) -> AppResult<()> {
    let access = host_access(state, caller, meeting_id).await?;
    if access.status != super::MeetingStatus::Live {
        return Err(AppError::conflict(
            "meeting_not_live",
            "会议尚未开始或已经结束，无法录音",
            "the meeting is not live, so it cannot be recorded",
        ));
    }
    Ok(())
}

/// Starts recording the meeting's audio. Only the host may, while the meeting is live
/// and someone is in its media.
#[utoipa::path(post, path = "/api/meetings/{id}/recording/start", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 201, body = RecordingView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<(StatusCode, ApiJson<RecordingView>)> {
    host_of_live(&state, &caller, id).await?;
    // The node that records may differ from the one a new start picks, because
    // people joined or left nodes since, so the stored recordings decide.
    if recording_running(&state, id).await? {
        return Err(already_recording());
    }
    let actor = caller.session.actor();
    let recording_id = match recorder_node(&state, id).await {
        Some(RecorderNode::Here) => start_here(&state, &actor, id).await?,
        Some(RecorderNode::Other(subject)) => {
            let request = MediaRequest::RecordingStart {
                meeting_id: id,
                actor,
            };
            forward(&state, &subject, &request).await?
        }
        None => return Err(no_media()),
    };
    let view = load_view(&state, recording_id).await?;
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// The node whose engine records a meeting.
enum RecorderNode {
    Here,
    /// Another node, by the subject of its media requests.
    Other(String),
}

/// Picks the node that records a meeting: of the nodes with people in the meeting's
/// media, the one with the lowest node id, so that starts made at once through
/// different nodes meet at one recorder's check. Its engine receives the other nodes'
/// speech over relays, so its recording hears everyone.
async fn recorder_node(state: &AppState, meeting_id: i64) -> Option<RecorderNode> {
    let here = state.live.has_media(meeting_id).await;
    let this_node = &state.config.node_id;
    let mut chosen = here.then(|| (this_node.clone(), RecorderNode::Here));
    for part in state.live.placement().remote_parts(meeting_id) {
        let Some(subject) = part.media_subject else {
            continue;
        };
        if part.members.is_empty() || part.node_id == *this_node {
            continue;
        }
        if chosen
            .as_ref()
            .is_none_or(|(node_id, _)| part.node_id < *node_id)
        {
            chosen = Some((part.node_id, RecorderNode::Other(subject)));
        }
    }
    chosen.map(|(_, node)| node)
}

/// Sends a recording request to another node and returns the recording's id.
async fn forward(state: &AppState, subject: &str, request: &MediaRequest) -> AppResult<i64> {
    match state.live.cascade.request(subject, request).await {
        Ok(MediaReply::Recording { recording_id }) => Ok(recording_id),
        Ok(MediaReply::Error { code, message }) => Err(match code.as_str() {
            "recording_running" => already_recording(),
            "not_recording" => not_recording(),
            "no_media" => no_media(),
            _ => AppError::internal(format!("recording on another node failed: {message}")),
        }),
        Ok(other) => Err(AppError::internal(format!(
            "recording on another node failed: unexpected reply {other:?}"
        ))),
        Err(RequestError::NoResponders(_)) => Err(AppError::conflict(
            "node_unreachable",
            "负责录音的节点无法访问，请稍后重试",
            "the node that records the meeting is unreachable; try again shortly",
        )),
        Err(error) => Err(AppError::internal(format!(
            "recording on another node failed: {error}"
        ))),
    }
}

fn already_recording() -> AppError {
    AppError::conflict(
        "recording_running",
        "本会议正在录音",
        "the meeting is already being recorded",
    )
}

fn not_recording() -> AppError {
    AppError::conflict(
        "not_recording",
        "本会议没有在录音",
        "the meeting is not being recorded",
    )
}

fn no_media() -> AppError {
    AppError::conflict(
        "no_media",
        "会议室里还没有人，无法录音",
        "nobody is in the meeting's media yet, so there is nothing to record",
    )
}

/// Starts recording the meeting in this node's engine, for a host already checked, and
/// returns the recording's id.
pub(crate) async fn start_here(state: &AppState, actor: &Actor, id: i64) -> AppResult<i64> {
    let recorders = state.live.recorders();
    {
        let mut map = recorders.map();
        if map.contains_key(&id) {
            return Err(already_recording());
        }
        map.insert(id, Slot::Starting);
    }
    let _reservation = Reservation {
        recorders,
        meeting_id: id,
    };
    let tap = state.live.tap_audio(id).await.map_err(|_| no_media())?;

    let started_at = now_ms();
    let file_name = format!("meeting-{id}-{started_at}.ogg");
    let dir = recordings_dir(state);
    std::fs::create_dir_all(&dir).map_err(AppError::internal)?;
    // Never overwrites: a second recording of the same millisecond fails instead.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(&file_name))
        .map_err(AppError::internal)?;
    let mut tx = state.db.begin().await?;
    let recording_id: i64 = sqlx::query_scalar(
        "INSERT INTO meeting_recordings (meeting_id, file_name, started_by, started_at) \
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(id)
    .bind(&file_name)
    .bind(actor.account_id)
    .bind(started_at)
    .fetch_one(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        actor,
        "meeting.recording.start",
        ("meeting", id.to_string()),
        json!({"recording_id": recording_id}),
    )
    .await?;
    let event = store::event(
        &mut tx,
        id,
        "meeting.recording",
        json!({"recording_id": recording_id, "recording": true}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish(vec![event]);

    let (stop_tx, stop_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    // Registered before the recorder runs, so that its end always finds the entry.
    recorders.map().insert(
        id,
        Slot::Running(Running {
            recording_id,
            stop: stop_tx,
            done: done_rx,
        }),
    );
    let task_state = state.clone();
    tokio::spawn(async move {
        let written = match record(tap, file, stop_rx).await {
            Ok(written) => written,
            Err(error) => {
                tracing::error!(meeting_id = id, recording_id, %error, "recording failed");
                Written::default()
            }
        };
        if let Err(error) = finish(&task_state, id, recording_id, written).await {
            tracing::error!(meeting_id = id, recording_id, %error, "storing the end of a recording failed");
        }
        let _ = done_tx.send(());
    });
    tracing::info!(meeting_id = id, recording_id, "recording started");
    Ok(recording_id)
}

/// Stops the meeting's recording and returns it with its length and size. Only the
/// host may. A recording also ends by itself when the meeting's media room closes.
#[utoipa::path(post, path = "/api/meetings/{id}/recording/stop", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 200, body = RecordingView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn stop(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<RecordingView>> {
    host_access(&state, &caller, id).await?;
    let actor = caller.session.actor();
    let recording_id = match stop_here(&state, &actor, id).await {
        Err(error) if error.code == "not_recording" => stop_elsewhere(&state, actor, id).await?,
        other => other?,
    };
    Ok(ApiJson(load_view(&state, recording_id).await?))
}

/// Stops the meeting's recording on whichever other node runs it.
async fn stop_elsewhere(state: &AppState, actor: Actor, id: i64) -> AppResult<i64> {
    let request = MediaRequest::RecordingStop {
        meeting_id: id,
        actor,
    };
    for part in state.live.placement().remote_parts(id) {
        let Some(subject) = part.media_subject else {
            continue;
        };
        match forward(state, &subject, &request).await {
            Err(error) if matches!(error.code, "not_recording" | "node_unreachable") => continue,
            other => return other,
        }
    }
    Err(not_recording())
}

/// Stops the meeting's recording in this node's engine, for a host already checked, and
/// returns the recording's id once its end is stored.
pub(crate) async fn stop_here(state: &AppState, actor: &Actor, id: i64) -> AppResult<i64> {
    let running = {
        let mut map = state.live.recorders().map();
        match map.remove(&id) {
            Some(Slot::Running(running)) => running,
            other => {
                // A recording still starting stays reserved.
                if let Some(slot) = other {
                    map.insert(id, slot);
                }
                return Err(not_recording());
            }
        }
    };
    let _ = running.stop.send(());
    // An error means the recorder task is gone; its row then keeps no end time.
    let _ = running.done.await;
    let mut tx = state.db.begin().await?;
    audit::append(
        &mut tx,
        &state.audit_key,
        actor,
        "meeting.recording.stop",
        ("meeting", id.to_string()),
        json!({"recording_id": running.recording_id}),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        meeting_id = id,
        recording_id = running.recording_id,
        "recording stopped"
    );
    Ok(running.recording_id)
}

/// A recording file written to within this time may belong to a recording running on
/// another node, which appends a page every second.
const UNFINISHED_QUIET: Duration = Duration::from_secs(5);

/// Stores the length, size and end of recordings that were cut off when a server stopped
/// without finishing them (killed, or lost power), measured from their files. Runs at
/// startup and once more twice [`UNFINISHED_QUIET`] later, because a file written just
/// before a quick restart counts only once it has been quiet that long.
pub fn spawn_repair(state: AppState) {
    tokio::spawn(async move {
        for round in 0..2 {
            if round > 0 {
                tokio::time::sleep(UNFINISHED_QUIET * 2).await;
            }
            if let Err(error) = repair_unfinished(&state).await {
                tracing::error!(%error, "repairing unfinished recordings failed");
            }
        }
    });
}

async fn repair_unfinished(state: &AppState) -> AppResult<()> {
    let rows = sqlx::query(
        "SELECT id, meeting_id, file_name, started_at FROM meeting_recordings \
         WHERE ended_at IS NULL",
    )
    .fetch_all(&state.db.pool)
    .await?;
    for row in rows {
        let recording_id: i64 = row.try_get("id")?;
        let meeting_id: i64 = row.try_get("meeting_id")?;
        let file_name: String = row.try_get("file_name")?;
        let started_at: i64 = row.try_get("started_at")?;
        let running_here = matches!(
            state.live.recorders().map().get(&meeting_id),
            Some(Slot::Running(running)) if running.recording_id == recording_id
        );
        if running_here {
            continue;
        }
        let path = recordings_dir(state).join(&file_name);
        let measured = tokio::task::spawn_blocking(move || measure_file(&path))
            .await
            .map_err(AppError::internal)?;
        let (duration_ms, size) = match measured {
            Ok(Some(measured)) => measured,
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(meeting_id, recording_id, %file_name, %error, "reading an unfinished recording failed");
                continue;
            }
        };
        sqlx::query(
            "UPDATE meeting_recordings SET ended_at = $1, duration_ms = $2, size = $3 \
             WHERE id = $4 AND ended_at IS NULL",
        )
        .bind(started_at + duration_ms)
        .bind(duration_ms)
        .bind(size)
        .bind(recording_id)
        .execute(&state.db.pool)
        .await?;
        tracing::info!(
            meeting_id,
            recording_id,
            duration_ms,
            size,
            "unfinished recording measured"
        );
    }
    Ok(())
}

/// Measures a recording file that no writer touched within [`UNFINISHED_QUIET`]: its
/// length in milliseconds and size in bytes. `None` while it is still being written.
fn measure_file(path: &std::path::Path) -> std::io::Result<Option<(i64, i64)>> {
    let file = std::fs::File::open(path)?;
    let metadata = file.metadata()?;
    let quiet = metadata
        .modified()?
        .elapsed()
        .is_ok_and(|elapsed| elapsed >= UNFINISHED_QUIET);
    if !quiet {
        return Ok(None);
    }
    let size = metadata.len() as i64;
    // A file without even the header contains no audio, so it is stored as empty.
    let duration_ms = ogg_opus::measure(std::io::BufReader::new(file)).unwrap_or(0) as i64;
    Ok(Some((duration_ms, size)))
}

/// Stores the end of a recording, whichever way it ended, and publishes it on the
/// meeting's topic.
async fn finish(
    state: &AppState,
    meeting_id: i64,
    recording_id: i64,
    written: Written,
) -> AppResult<()> {
    {
        let mut running = state.live.recorders().map();
        if matches!(running.get(&meeting_id), Some(Slot::Running(entry)) if entry.recording_id == recording_id)
        {
            running.remove(&meeting_id);
        }
    }
    let duration_ms = (written.frames * FRAME_MS) as i64;
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "UPDATE meeting_recordings SET ended_at = $1, duration_ms = $2, size = $3 WHERE id = $4",
    )
    .bind(now_ms())
    .bind(duration_ms)
    .bind(written.bytes as i64)
    .bind(recording_id)
    .execute(&mut *tx)
    .await?;
    let event = store::event(
        &mut tx,
        meeting_id,
        "meeting.recording",
        json!({"recording_id": recording_id, "recording": false, "duration_ms": duration_ms}),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish(vec![event]);
    tracing::info!(meeting_id, recording_id, duration_ms, "recording ended");
    Ok(())
}

async fn check_reader(state: &AppState, caller: &Caller, meeting_id: i64) -> AppResult<()> {
    let meeting = store::load_db(&state.db, meeting_id).await?;
    if !super::can_read(state, &caller.principal, &meeting).await? {
        return Err(store::not_found(meeting_id));
    }
    Ok(())
}

const VIEW_SELECT: &str = "SELECT r.id, r.meeting_id, r.file_name, r.started_at, r.ended_at, \
     r.duration_ms, r.size, COALESCE(m.name, a.username) AS started_by_name \
     FROM meeting_recordings r JOIN accounts a ON a.id = r.started_by \
     LEFT JOIN members m ON m.id = a.member_id";

fn view_of(state: &AppState, row: &sqlx::any::AnyRow) -> Result<RecordingView, sqlx::Error> {
    use sqlx::Row;
    let id: i64 = row.try_get("id")?;
    let meeting_id: i64 = row.try_get("meeting_id")?;
    let mut recording =
        state.live.recorders().map().get(&meeting_id).is_some_and(
            |slot| matches!(slot, Slot::Running(running) if running.recording_id == id),
        );
    let mut size: i64 = row.try_get("size")?;
    let ended_at: Option<i64> = row.try_get("ended_at")?;
    if ended_at.is_none() {
        // Still running, or cut off by a server stop: the file's size shows how far it got.
        let file_name: String = row.try_get("file_name")?;
        let metadata = std::fs::metadata(recordings_dir(state).join(file_name)).ok();
        size = metadata.as_ref().map_or(0, |meta| meta.len() as i64);
        // A recorder on another node appends a page every second, so a file written
        // to lately belongs to a running recording.
        let written_lately = metadata
            .and_then(|meta| meta.modified().ok())
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|elapsed| elapsed < UNFINISHED_QUIET);
        recording = recording || written_lately;
    }
    Ok(RecordingView {
        id,
        started_by_name: row.try_get("started_by_name")?,
        started_at: row.try_get("started_at")?,
        ended_at,
        duration_ms: row.try_get("duration_ms")?,
        size,
        recording,
    })
}

/// Returns whether a recording of the meeting runs on any node: on this one, or with a
/// file that another node's recorder wrote to lately.
async fn recording_running(state: &AppState, meeting_id: i64) -> AppResult<bool> {
    let rows = sqlx::query(&format!(
        "{VIEW_SELECT} WHERE r.meeting_id = $1 AND r.ended_at IS NULL"
    ))
    .bind(meeting_id)
    .fetch_all(&state.db.pool)
    .await?;
    for row in &rows {
        if view_of(state, row)?.recording {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn load_view(state: &AppState, recording_id: i64) -> AppResult<RecordingView> {
    let row = sqlx::query(&format!("{VIEW_SELECT} WHERE r.id = $1"))
        .bind(recording_id)
        .fetch_one(&state.db.pool)
        .await?;
    Ok(view_of(state, &row)?)
}

/// Lists the meeting's recordings, oldest first, for those who may read its record.
#[utoipa::path(get, path = "/api/meetings/{id}/recordings", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id")),
    responses((status = 200, body = Vec<RecordingView>), (status = 404, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<ApiJson<Vec<RecordingView>>> {
    check_reader(&state, &caller, id).await?;
    let rows = sqlx::query(&format!(
        "{VIEW_SELECT} WHERE r.meeting_id = $1 ORDER BY r.started_at, r.id"
    ))
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    let views = rows
        .iter()
        .map(|row| view_of(&state, row))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(ApiJson(views))
}

/// Downloads one recording as an Ogg Opus file, for those who may read the meeting's
/// record.
#[utoipa::path(get, path = "/api/meetings/{id}/recordings/{recording_id}", tag = "meetings",
    params(("id" = i64, Path, description = "Meeting id"),
        ("recording_id" = i64, Path, description = "Recording id")),
    responses((status = 200, content_type = "audio/ogg"), (status = 404, body = ErrorBody)))]
async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, recording_id)): Path<(i64, i64)>,
) -> AppResult<Response> {
    check_reader(&state, &caller, id).await?;
    let file_name: String = sqlx::query_scalar(
        "SELECT file_name FROM meeting_recordings WHERE id = $1 AND meeting_id = $2",
    )
    .bind(recording_id)
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| AppError::not_found(("录音", "recording"), recording_id))?;
    let bytes = tokio::fs::read(recordings_dir(&state).join(&file_name))
        .await
        .map_err(AppError::internal)?;
    let disposition = format!("attachment; filename=\"{file_name}\"");
    Ok((
        [
            (header::CONTENT_TYPE, "audio/ogg".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// Mixes the tapped audio every 20 ms of real time and writes it to `file` until `stop`
/// fires or the tap closes (the media room closed).
async fn record(
    mut tap: mpsc::Receiver<AudioPacket>,
    file: std::fs::File,
    mut stop: oneshot::Receiver<()>,
) -> Result<Written, RecordError> {
    let mut encoder = Encoder::new(48_000, Channels::Mono, Application::Voip)?;
    encoder.set_bitrate(Bitrate::Bits(BITRATE))?;
    let pre_skip = u16::try_from(encoder.get_lookahead()?).unwrap_or(0);
    let counted = CountingWriter {
        inner: file,
        bytes: 0,
    };
    let serial = rand::random::<u32>();
    let mut writer = OggOpusWriter::new(counted, serial, pre_skip, "Dangwu")?;
    let mut mixer = Mixer::default();
    let mut ticks = tokio::time::interval(Duration::from_millis(FRAME_MS));
    // Missed ticks are caught up, so the file keeps real time on a busy machine.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut encoded = [0u8; 1500];
    let mut frames: u64 = 0;
    let mut decode_errors: u64 = 0;
    loop {
        tokio::select! {
            packet = tap.recv() => match packet {
                Some(packet) => {
                    if let Err(error) = mixer.push(packet.ssrc, packet.sequence_number, &packet.payload) {
                        decode_errors += 1;
                        if decode_errors.is_power_of_two() {
                            tracing::warn!(publisher = %packet.publisher, %error, decode_errors, "undecodable audio packet skipped");
                        }
                    }
                }
                None => break,
            },
            _ = ticks.tick() => {
                let frame = mixer.mix();
                let len = encoder.encode(&frame, &mut encoded)?;
                writer.write(&encoded[..len], FRAME_SAMPLES as u32)?;
                frames += 1;
            }
            _ = &mut stop => break,
        }
    }
    let silence = [0i16; FRAME_SAMPLES];
    let len = encoder.encode(&silence, &mut encoded)?;
    let counted = writer.finish(&encoded[..len], FRAME_SAMPLES as u32)?;
    counted.inner.sync_all()?;
    Ok(Written {
        frames: frames + 1,
        bytes: counted.bytes,
    })
}

#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    #[error("writing the recording failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A file writer that counts the bytes written.
struct CountingWriter {
    inner: std::fs::File,
    bytes: u64,
}

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
