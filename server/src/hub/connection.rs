//! One WebSocket connection: authentication at upgrade, the message loop,
//! ordered delivery with gap filling, heartbeats and cleanup.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::protocol::{
    ClientMessage, Event, MAX_CLIENT_MESSAGE, PROTOCOL_VERSION, ServerMessage, close, message_text,
};
use super::registry::{ConnId, Kick, Outbound, Subscriber};
use super::store;
use super::topic::{Topic, authorize};
use crate::auth::Session;
use crate::error::{AppError, ErrorBody};
use crate::i18n::{Lang, lang_of};
use crate::meetings::live::{self, Link, Request};
use crate::perm::Principal;
use crate::state::AppState;

/// Events fetched per database round trip during a replay.
const REPLAY_PAGE: i64 = 500;
/// Heartbeats between checks that the session still exists.
const SESSION_CHECK_EVERY: u32 = 4;
/// Read buffer per connection, in bytes. The codec's default (128 KiB,
/// zero-filled up front in tungstenite 0.26) dominated the memory of idle
/// connections; client messages are small.
const READ_BUFFER: usize = 4 * 1024;
/// Frames larger than this fail inside the WebSocket codec itself, without
/// a close frame; frames up to it get a proper 1009.
const CODEC_LIMIT: usize = 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upgrade))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct UpgradeQuery {
    /// Protocol version; 1 is the only one. [default: 1]
    v: Option<u32>,
}

/// Opens the hub WebSocket (protocol in docs/protocol.md). Authenticated by
/// the session cookie or a bearer token, like the HTTP API.
#[utoipa::path(get, path = "/ws", tag = "hub", params(UpgradeQuery),
    responses((status = 101, description = "Switching to the WebSocket protocol"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn upgrade(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Query(query): Query<UpgradeQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    check_origin(&headers, &state.config.public_url)?;
    let principal = Principal::load(&state.db, &session).await?;
    let lang = lang_of(&headers);
    let version = query.v.unwrap_or(PROTOCOL_VERSION);
    Ok(ws
        .max_message_size(CODEC_LIMIT)
        .max_frame_size(CODEC_LIMIT)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| async move {
            let connection = Connection::new(state, session, principal, lang);
            connection.run(socket, version).await;
        })
        .into_response())
}

/// Rejects cross-site WebSocket requests: a browser always sends `Origin`,
/// and it must name the host the request went to or the public URL's host.
/// The second case is a room page served at the public URL that connects to
/// the node hosting its meeting (see `meetings::live::placement`).
fn check_origin(headers: &HeaderMap, public_url: &str) -> Result<(), AppError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split("://").nth(1).unwrap_or("");
    if origin_host == host || origin == crate::meetings::live::placement::url_origin(public_url) {
        Ok(())
    } else {
        tracing::warn!(origin, host, "cross-site websocket rejected");
        Err(AppError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "不允许跨站连接",
            "cross-site connections are not allowed",
        ))
    }
}

struct Connection {
    id: ConnId,
    state: AppState,
    session: Session,
    principal: Principal,
    lang: Lang,
    queue_tx: mpsc::Sender<Outbound>,
    queue_rx: mpsc::Receiver<Outbound>,
    kick: Arc<Kick>,
    /// Subscribed topics and the newest sequence number sent on each.
    topics: HashMap<String, i64>,
    /// Meetings this connection asked to join, to leave their media when it closes.
    meetings: HashSet<i64>,
}

/// Why the loop ended, and what close frame to send.
struct Ending {
    code: u16,
    reason: String,
}

type Sink = SplitSink<WebSocket, Message>;

impl Connection {
    fn new(state: AppState, session: Session, principal: Principal, lang: Lang) -> Self {
        let (queue_tx, queue_rx) = mpsc::channel(state.hub.config.queue_capacity);
        Self {
            id: state.hub.registry.next_conn_id(),
            state,
            session,
            principal,
            lang,
            queue_tx,
            queue_rx,
            kick: Arc::new(Kick::default()),
            topics: HashMap::new(),
            meetings: HashSet::new(),
        }
    }

    async fn run(mut self, socket: WebSocket, version: u32) {
        let account_id = self.session.account.id;
        metrics::gauge!("dangwu_ws_connections").increment(1.0);
        tracing::info!(conn_id = self.id, account_id, "hub connection opened");
        let (mut sink, mut stream) = socket.split();
        let ending = if version != PROTOCOL_VERSION {
            Ending {
                code: close::UNSUPPORTED_VERSION,
                reason: format!(
                    "unsupported protocol version {version}, this server speaks {PROTOCOL_VERSION}"
                ),
            }
        } else {
            self.serve(&mut sink, &mut stream).await
        };
        for topic in self.topics.keys() {
            self.state.hub.registry.unsubscribe(topic, self.id);
        }
        self.state
            .live
            .connection_closed(&self.state, self.id, self.meetings.iter().copied())
            .await;
        self.state.study.connection_closed(self.id);
        let frame = CloseFrame {
            code: ending.code,
            reason: Utf8Bytes::from(ending.reason.clone()),
        };
        let _ = timeout(
            Duration::from_secs(1),
            sink.send(Message::Close(Some(frame))),
        )
        .await;
        metrics::gauge!("dangwu_ws_connections").decrement(1.0);
        tracing::info!(conn_id = self.id, account_id, code = ending.code, reason = %ending.reason, "hub connection closed");
    }

    async fn serve(&mut self, sink: &mut Sink, stream: &mut SplitStream<WebSocket>) -> Ending {
        let welcome = ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            account_id: self.session.account.id,
            heartbeat_ms: self.state.hub.config.heartbeat.as_millis() as u64,
        };
        if let Err(ending) = self.send(sink, &welcome).await {
            return ending;
        }
        let mut last_seen = Instant::now();
        let heartbeat = self.state.hub.config.heartbeat;
        let mut ticker = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        let mut ticks = 0u32;
        let kick = self.kick.clone();
        loop {
            let step = tokio::select! {
                biased;
                code = kick.kicked() => Err(kicked_ending(code)),
                frame = stream.next() => {
                    last_seen = Instant::now();
                    self.on_frame(sink, frame).await
                }
                Some(item) = self.queue_rx.recv() => self.on_outbound(sink, item).await,
                _ = ticker.tick() => {
                    ticks += 1;
                    self.on_tick(sink, last_seen, ticks).await
                }
            };
            if let Err(ending) = step {
                return ending;
            }
        }
    }

    async fn on_frame(
        &mut self,
        sink: &mut Sink,
        frame: Option<Result<Message, axum::Error>>,
    ) -> Result<(), Ending> {
        let message = match frame {
            None => {
                return Err(Ending {
                    code: close::NORMAL,
                    reason: "client went away".into(),
                });
            }
            Some(Err(error)) => {
                tracing::debug!(conn_id = self.id, %error, "websocket read failed");
                return Err(Ending {
                    code: close::PROTOCOL_ERROR,
                    reason: "invalid frame".into(),
                });
            }
            Some(Ok(message)) => message,
        };
        match message {
            Message::Text(text) if text.len() > MAX_CLIENT_MESSAGE => Err(Ending {
                code: close::TOO_BIG,
                reason: format!(
                    "message of {} bytes exceeds the limit of {MAX_CLIENT_MESSAGE} bytes",
                    text.len()
                ),
            }),
            Message::Text(text) => match serde_json::from_str::<ClientMessage>(&text) {
                Ok(message) => self.on_message(sink, message).await,
                Err(error) => {
                    // The Chinese message leaves out serde's English text,
                    // which the English message keeps.
                    let reply = self.error(
                        None,
                        AppError::bad_request(
                            "invalid_message",
                            "消息格式错误：不是有效的 JSON，或不是可识别的消息",
                            format!("invalid message: {error}"),
                        ),
                    );
                    self.send(sink, &reply).await
                }
            },
            Message::Binary(bytes) if bytes.len() > MAX_CLIENT_MESSAGE => Err(Ending {
                code: close::TOO_BIG,
                reason: format!(
                    "message of {} bytes exceeds the limit of {MAX_CLIENT_MESSAGE} bytes",
                    bytes.len()
                ),
            }),
            Message::Binary(_) => {
                let reply = self.error(
                    None,
                    AppError::bad_request(
                        "invalid_message",
                        "只接受 JSON 文本消息",
                        "only JSON text messages are accepted",
                    ),
                );
                self.send(sink, &reply).await
            }
            Message::Close(_) => Err(Ending {
                code: close::NORMAL,
                reason: "closed by client".into(),
            }),
            Message::Ping(_) | Message::Pong(_) => Ok(()),
        }
    }

    async fn on_message(&mut self, sink: &mut Sink, message: ClientMessage) -> Result<(), Ending> {
        match message {
            ClientMessage::Ping { id } => self.send(sink, &ServerMessage::Pong { id }).await,
            ClientMessage::Subscribe { id, topic, since } => {
                self.subscribe(sink, id, topic, since).await
            }
            ClientMessage::Unsubscribe { id, topic } => {
                if self.topics.remove(&topic).is_some() {
                    self.state.hub.registry.unsubscribe(&topic, self.id);
                }
                self.send(sink, &ServerMessage::Unsubscribed { id, topic })
                    .await
            }
            other => match other.into_study_request() {
                Ok(request) => self.on_study(sink, request).await,
                Err(other) => match other.into_meeting_request() {
                    Ok(request) => self.on_meeting(sink, request).await,
                    Err(_) => unreachable!("every other client message is a meeting request"),
                },
            },
        }
    }

    /// Applies a study-time request and sends its replies.
    async fn on_study(
        &mut self,
        sink: &mut Sink,
        request: crate::learning::study::Request,
    ) -> Result<(), Ending> {
        let id = request.id();
        let link = crate::learning::study::Link {
            conn: self.id,
            queue: self.queue_tx.clone(),
            kick: self.kick.clone(),
        };
        match crate::learning::study::handle(&self.state, &link, &self.principal, request).await {
            Ok(replies) => {
                for reply in replies {
                    self.send_text(sink, reply.text()).await?;
                }
                Ok(())
            }
            Err(error) => self.send(sink, &self.error(id, error)).await,
        }
    }

    /// Applies a live meeting request and sends its reply.
    async fn on_meeting(&mut self, sink: &mut Sink, request: Request) -> Result<(), Ending> {
        let id = request.id();
        let meeting_id = request.meeting_id();
        if let Request::Join(join) = &request {
            self.meetings.insert(join.meeting_id);
        }
        let link = Link::new(
            self.id,
            self.session.account.id,
            self.session.account.display_name.clone(),
            self.principal.clone(),
            self.queue_tx.clone(),
            self.kick.clone(),
        );
        match live::handle(&self.state, &link, request).await {
            Ok(reply) => self.send_text(sink, live::message_text(&reply)).await,
            Err(error) => {
                tracing::debug!(
                    conn_id = self.id,
                    meeting_id,
                    code = error.code,
                    "meeting request failed"
                );
                self.send(sink, &self.error(id, error)).await
            }
        }
    }

    /// Subscribes: register for live events first, then replay stored ones,
    /// so that nothing committed in between is missed; duplicates are
    /// dropped by sequence number when the live copies arrive.
    async fn subscribe(
        &mut self,
        sink: &mut Sink,
        id: Option<String>,
        name: String,
        since: Option<i64>,
    ) -> Result<(), Ending> {
        let Some(topic) = Topic::parse(&name) else {
            let error = AppError::invalid(
                "topic",
                format!("未知主题：{name}"),
                format!("unknown topic {name:?}"),
            );
            return self.send(sink, &self.error(id, error)).await;
        };
        // Roles may have changed since the connection opened.
        let authorized = match Principal::load(&self.state.db, &self.session).await {
            Ok(principal) => {
                self.principal = principal;
                authorize(&self.state, &self.session.account, &self.principal, topic).await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = authorized {
            return self.send(sink, &self.error(id, error)).await;
        }
        if !self.topics.contains_key(&name) {
            let subscriber = Subscriber {
                account_id: self.session.account.id,
                name: self.session.account.display_name.clone(),
                queue: self.queue_tx.clone(),
                kick: self.kick.clone(),
            };
            self.state
                .hub
                .registry
                .subscribe(&name, self.id, subscriber);
        }
        let head = match store::head(&self.state.db, &name).await {
            Ok(head) => head,
            Err(error) => {
                return self
                    .send(sink, &self.error(id, AppError::from(error)))
                    .await;
            }
        };
        self.topics
            .insert(name.clone(), since.unwrap_or(head).min(head));
        self.send(
            sink,
            &ServerMessage::Subscribed {
                id,
                topic: name.clone(),
                seq: head,
            },
        )
        .await?;
        if let Some(since) = since {
            self.replay(sink, &name, since, head).await?;
        }
        Ok(())
    }

    /// Sends stored events after `since` up to `until`, or a reset when the
    /// history no longer reaches back that far.
    async fn replay(
        &mut self,
        sink: &mut Sink,
        topic: &str,
        since: i64,
        until: i64,
    ) -> Result<(), Ending> {
        let oldest = store::oldest(&self.state.db, topic)
            .await
            .map_err(db_ending)?;
        let history_gone =
            since > until || (since < until && oldest.is_none_or(|oldest| oldest > since + 1));
        if history_gone {
            self.topics.insert(topic.to_owned(), until);
            let reason = if since > until {
                "ahead_of_server"
            } else {
                "history_truncated"
            };
            return self
                .send(
                    sink,
                    &ServerMessage::Reset {
                        topic: topic.to_owned(),
                        reason: reason.into(),
                        seq: until,
                    },
                )
                .await;
        }
        self.send_stored(sink, topic, since, until).await
    }

    /// Sends stored events with `since < seq <= until` in order.
    async fn send_stored(
        &mut self,
        sink: &mut Sink,
        topic: &str,
        mut since: i64,
        until: i64,
    ) -> Result<(), Ending> {
        while since < until {
            let page = store::since(&self.state.db, topic, since, REPLAY_PAGE.min(until - since))
                .await
                .map_err(db_ending)?;
            if page.is_empty() {
                break;
            }
            for event in page {
                since = event.seq;
                self.topics.insert(topic.to_owned(), event.seq);
                self.send(sink, &ServerMessage::Event(event)).await?;
            }
        }
        Ok(())
    }

    async fn on_outbound(&mut self, sink: &mut Sink, item: Outbound) -> Result<(), Ending> {
        match item {
            Outbound::Text(text) => self.send_text(sink, text).await,
            Outbound::Event(event, text) => self.deliver(sink, &event, text).await,
        }
    }

    /// Sends a live event in sequence order: older or repeated ones are
    /// dropped, and a gap (another node's event not yet seen here) is filled
    /// from the database first.
    async fn deliver(
        &mut self,
        sink: &mut Sink,
        event: &Event,
        text: Utf8Bytes,
    ) -> Result<(), Ending> {
        let Some(&last) = self.topics.get(&event.topic) else {
            return Ok(());
        };
        if event.seq <= last {
            return Ok(());
        }
        if event.seq > last + 1 {
            self.send_stored(sink, &event.topic, last, event.seq - 1)
                .await?;
        }
        self.topics.insert(event.topic.clone(), event.seq);
        self.send_text(sink, text).await
    }

    async fn on_tick(
        &mut self,
        sink: &mut Sink,
        last_seen: Instant,
        ticks: u32,
    ) -> Result<(), Ending> {
        if last_seen.elapsed() > self.state.hub.config.heartbeat_timeout {
            return Err(Ending {
                code: close::HEARTBEAT_TIMEOUT,
                reason: "heartbeat timed out".into(),
            });
        }
        if ticks.is_multiple_of(SESSION_CHECK_EVERY) && !self.session_alive().await {
            return Err(Ending {
                code: close::POLICY,
                reason: "session ended".into(),
            });
        }
        match timeout(
            self.state.hub.config.send_timeout,
            sink.send(Message::Ping(Default::default())),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            _ => Err(slow_ending()),
        }
    }

    async fn session_alive(&self) -> bool {
        let count: Result<i64, _> = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions s JOIN accounts a ON a.id = s.account_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND a.disabled = 0",
        )
        .bind(&self.session.token_hash)
        .bind(crate::db::now_ms())
        .fetch_one(&self.state.db.pool)
        .await;
        // A database outage is not the client's fault: keep the connection.
        count.map(|count| count > 0).unwrap_or(true)
    }

    async fn send(&self, sink: &mut Sink, message: &ServerMessage) -> Result<(), Ending> {
        self.send_text(sink, message_text(message).into()).await
    }

    async fn send_text(&self, sink: &mut Sink, text: Utf8Bytes) -> Result<(), Ending> {
        match timeout(
            self.state.hub.config.send_timeout,
            sink.send(Message::Text(text)),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Ending {
                code: close::NORMAL,
                reason: "client went away".into(),
            }),
            Err(_) => Err(slow_ending()),
        }
    }

    fn error(&self, id: Option<String>, error: AppError) -> ServerMessage {
        ServerMessage::Error {
            id,
            code: error.code.to_owned(),
            message: error.message(self.lang).to_owned(),
        }
    }
}

fn slow_ending() -> Ending {
    Ending {
        code: close::SLOW_CONSUMER,
        reason: "client is not reading its messages".into(),
    }
}

fn kicked_ending(code: u16) -> Ending {
    let reason = match code {
        close::SLOW_CONSUMER => "client is not reading its messages",
        _ => "closed by server",
    };
    Ending {
        code,
        reason: reason.into(),
    }
}

fn db_ending(error: sqlx::Error) -> Ending {
    tracing::error!(%error, "hub replay failed");
    Ending {
        code: close::INTERNAL,
        reason: "internal error, reconnect later".into(),
    }
}
