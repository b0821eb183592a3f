//! The media engine (`sfu` crate) alone in its own process, with a small JSON signaling
//! API over HTTP, so `sfu-compare` can load it the way it loads Janus and read its CPU
//! time and memory from `/proc/PID`. One room, `bench`, subscribes every member to every
//! track automatically.
//!
//! The API, all bodies JSON:
//!
//! - `POST /join` `{"participant", "offer", "max_layer"?}` returns `{"answer"}`.
//!   `max_layer` caps the simulcast layer (0 is the lowest) of every video track the
//!   participant is subscribed to when it joins.
//! - `GET /offer?participant=ID` waits up to 20 s for the engine's next offer to that
//!   participant and returns `{"offer"}`, or 204 when none came.
//! - `POST /answer` `{"participant", "answer"}` applies the answer to such an offer.
//!
//! The engine runs with one shard on a one-thread runtime, so `taskset -c N` pins all of
//! its work (and the HTTP server's) to one CPU.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use serde::Deserialize;
use serde_json::json;
use sfu::{MediaKind, ParticipantId, RoomId, RoomOptions, Sfu, SfuConfig, SfuEvent, TrackId};
use tokio::sync::mpsc;

/// How long `GET /offer` waits for an offer before it returns 204.
const OFFER_WAIT: Duration = Duration::from_secs(20);

#[derive(Parser)]
#[command(about = "The Dangwu media engine alone, with HTTP signaling for sfu-compare")]
struct Args {
    /// Address and port of the HTTP signaling API.
    #[arg(long, default_value = "127.0.0.1:8188")]
    listen: SocketAddr,
    /// Address the engine's UDP media socket binds to and advertises in its candidates.
    #[arg(long, default_value = "127.0.0.1")]
    media_ip: IpAddr,
}

/// Offers of the engine not yet fetched, by participant.
type Offers = HashMap<ParticipantId, mpsc::UnboundedSender<String>>;

#[derive(Clone)]
struct AppState {
    sfu: Sfu,
    room: RoomId,
    /// Sending side of each participant's offer queue.
    offer_senders: Arc<Mutex<Offers>>,
    /// Receiving side of each participant's offer queue, taken by one `GET /offer` at a time.
    offer_receivers: Arc<Mutex<HashMap<ParticipantId, mpsc::UnboundedReceiver<String>>>>,
    /// Published video tracks, for `max_layer`.
    video_tracks: Arc<Mutex<Vec<TrackId>>>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let config = SfuConfig {
        bind_ip: args.media_ip,
        shards: 1,
        ..SfuConfig::default()
    };
    let (sfu, mut events) = Sfu::start(config).await?;
    let room = RoomId::from("bench");
    sfu.create_room(
        room.clone(),
        RoomOptions {
            auto_subscribe: true,
        },
    )
    .await?;
    let state = AppState {
        sfu,
        room,
        offer_senders: Arc::default(),
        offer_receivers: Arc::default(),
        video_tracks: Arc::default(),
    };

    let events_state = state.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                SfuEvent::Offer { participant, sdp } => {
                    let sender = events_state.offer_senders().get(&participant).cloned();
                    match sender {
                        Some(sender) => {
                            let _ = sender.send(sdp);
                        }
                        None => tracing::warn!(%participant, "offer for an unknown participant"),
                    }
                }
                SfuEvent::TrackPublished { track, .. } if track.kind == MediaKind::Video => {
                    events_state.video_tracks().push(track.id);
                }
                SfuEvent::ParticipantDisconnected { participant, .. } => {
                    tracing::warn!(%participant, "participant disconnected");
                }
                _ => {}
            }
        }
    });

    let app = Router::new()
        .route("/join", post(join))
        .route("/offer", get(next_offer))
        .route("/answer", post(answer))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::warn!(listen = %args.listen, media = %args.media_ip, "sfu-server started");
    axum::serve(listener, app).await?;
    Ok(())
}

impl AppState {
    fn offer_senders(&self) -> std::sync::MutexGuard<'_, Offers> {
        self.offer_senders.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn video_tracks(&self) -> std::sync::MutexGuard<'_, Vec<TrackId>> {
        self.video_tracks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Deserialize)]
struct JoinRequest {
    participant: String,
    offer: String,
    max_layer: Option<usize>,
}

async fn join(State(state): State<AppState>, Json(request): Json<JoinRequest>) -> Response {
    let participant = ParticipantId::from(request.participant.as_str());
    let (sender, receiver) = mpsc::unbounded_channel();
    state.offer_senders().insert(participant.clone(), sender);
    state
        .offer_receivers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(participant.clone(), receiver);
    let answer = match state
        .sfu
        .join(&state.room, participant.clone(), request.offer)
        .await
    {
        Ok(answer) => answer,
        Err(error) => return failure(StatusCode::BAD_REQUEST, format!("join failed: {error}")),
    };
    if let Some(max_layer) = request.max_layer {
        let tracks = state.video_tracks().clone();
        for track in tracks {
            if let Err(error) = state
                .sfu
                .set_max_layer(&state.room, participant.clone(), track.clone(), max_layer)
                .await
            {
                return failure(
                    StatusCode::BAD_REQUEST,
                    format!("setting max layer {max_layer} of track {track} failed: {error}"),
                );
            }
        }
    }
    Json(json!({ "answer": answer })).into_response()
}

#[derive(Deserialize)]
struct OfferQuery {
    participant: String,
}

async fn next_offer(State(state): State<AppState>, Query(query): Query<OfferQuery>) -> Response {
    let participant = ParticipantId::from(query.participant.as_str());
    let receiver = state
        .offer_receivers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&participant);
    let Some(mut receiver) = receiver else {
        return failure(
            StatusCode::NOT_FOUND,
            format!("participant {participant} has not joined or is already waiting for an offer"),
        );
    };
    let offer = tokio::time::timeout(OFFER_WAIT, receiver.recv()).await;
    state
        .offer_receivers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(participant, receiver);
    match offer {
        Ok(Some(sdp)) => Json(json!({ "offer": sdp })).into_response(),
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

#[derive(Deserialize)]
struct AnswerRequest {
    participant: String,
    answer: String,
}

async fn answer(State(state): State<AppState>, Json(request): Json<AnswerRequest>) -> Response {
    let participant = ParticipantId::from(request.participant.as_str());
    match state
        .sfu
        .accept_answer(&state.room, participant, request.answer)
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => failure(StatusCode::BAD_REQUEST, format!("answer rejected: {error}")),
    }
}

fn failure(status: StatusCode, message: String) -> Response {
    tracing::warn!(%message, "request failed");
    (status, Json(json!({ "error": message }))).into_response()
}
