//! Signaling helpers of the live meeting tests: one hub connection per person that
//! answers the server's offers with its current peer, and waits on media counts.

// Shared by several test binaries, each of which uses a part.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::common::{PATIENCE, TestServer};
use super::peer::{Counts, Peer, spawn_media};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A person who can open a hub connection.
pub trait Credentials {
    /// Returns the name and value of the request header that authenticates the connection.
    fn auth_header(&self) -> (&'static str, String);
}

/// One hub connection. A reader task answers the server's offers with the current
/// peer and keeps every other message for the test.
pub struct Signal {
    pub sink: tokio::sync::Mutex<SplitSink<Ws, Message>>,
    pub inbox: Mutex<Vec<Value>>,
    pub peer: Mutex<Option<Arc<Peer>>>,
    pub closed: Mutex<bool>,
}

impl Signal {
    pub async fn connect(server: &TestServer, person: &impl Credentials) -> Arc<Signal> {
        Signal::connect_to(&format!("http://{}", server.addr), person).await
    }

    /// Opens a hub connection to the server at `base` (`http://host:port`).
    pub async fn connect_to(base: &str, person: &impl Credentials) -> Arc<Signal> {
        let url = format!("{}/ws?v=1", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        let (name, value) = person.auth_header();
        request.headers_mut().insert(name, value.parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let (sink, mut stream) = ws.split();
        let signal = Arc::new(Signal {
            sink: tokio::sync::Mutex::new(sink),
            inbox: Mutex::new(Vec::new()),
            peer: Mutex::new(None),
            closed: Mutex::new(false),
        });
        let reader = Arc::clone(&signal);
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                let Message::Text(text) = frame else {
                    continue;
                };
                let message: Value = serde_json::from_str(&text).unwrap();
                if message["type"] == "meeting_offer" {
                    reader.answer_offer(&message).await;
                }
                reader.inbox.lock().unwrap().push(message);
            }
            *reader.closed.lock().unwrap() = true;
        });
        signal
            .wait("welcome", |message| message["type"] == "welcome")
            .await;
        signal
    }

    pub async fn answer_offer(&self, offer: &Value) {
        let peer = self.peer.lock().unwrap().clone();
        let Some(peer) = peer else {
            return;
        };
        let sdp = peer.answer(offer["sdp"].as_str().unwrap()).await;
        let answer = json!({
            "type": "meeting_answer",
            "meeting_id": offer["meeting_id"],
            "sdp": sdp,
        });
        // A failed send means the connection is closing, which the reader sees next.
        let _ = self
            .sink
            .lock()
            .await
            .send(Message::Text(answer.to_string().into()))
            .await;
    }

    pub async fn send(&self, message: Value) {
        self.sink
            .lock()
            .await
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn close(&self) {
        let _ = self.sink.lock().await.send(Message::Close(None)).await;
        let closed = || *self.closed.lock().unwrap();
        wait_until("the connection to close", closed).await;
    }

    /// Waits for a message that matches and returns the first one.
    pub async fn wait(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        self.wait_within(PATIENCE, what, matches).await
    }

    pub async fn wait_within(
        &self,
        patience: Duration,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + patience;
        loop {
            let found = self
                .inbox
                .lock()
                .unwrap()
                .iter()
                .find(|m| matches(m))
                .cloned();
            if let Some(message) = found {
                return message;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the reply to the request with this id.
    pub async fn reply(&self, id: &str) -> Value {
        self.wait(&format!("the reply to {id}"), |m| m["id"] == id)
            .await
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.lock().unwrap()
    }

    pub fn has(&self, matches: impl Fn(&Value) -> bool) -> bool {
        self.inbox.lock().unwrap().iter().any(matches)
    }

    /// Sends `meeting_join` with a new peer's offer and returns the peer and the reply.
    pub async fn join(&self, meeting_id: i64, id: &str) -> (Arc<Peer>, Value) {
        self.join_with(Peer::new().await, meeting_id, id).await
    }

    /// Sends `meeting_join` with the offer of a given new peer.
    pub async fn join_with(
        &self,
        peer: Arc<Peer>,
        meeting_id: i64,
        id: &str,
    ) -> (Arc<Peer>, Value) {
        *self.peer.lock().unwrap() = Some(Arc::clone(&peer));
        let sdp = peer.offer().await;
        self.send(json!({"type": "meeting_join", "id": id, "meeting_id": meeting_id, "sdp": sdp}))
            .await;
        let reply = self.reply(id).await;
        (peer, reply)
    }

    /// Joins, expects to enter directly, connects the media and starts sending.
    pub async fn enter(&self, meeting_id: i64, id: &str) -> Arc<Peer> {
        let (peer, reply) = self.join(meeting_id, id).await;
        assert_eq!(reply["type"], "meeting_joined", "{reply}");
        connect_media(&peer, &reply).await;
        peer
    }
}

/// Applies the answer of a `meeting_joined` message and starts sending media.
pub async fn connect_media(peer: &Arc<Peer>, joined: &Value) {
    peer.apply_answer(joined["sdp"].as_str().unwrap()).await;
    let connected = Arc::clone(peer);
    wait_until("the media to connect", move || connected.is_connected()).await;
    spawn_media(Arc::clone(peer));
}

pub async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `peer` received at least `audio` and `video` packets from `account`.
pub async fn wait_for_media(peer: &Arc<Peer>, account: i64, video: usize, audio: usize) {
    let peer = Arc::clone(peer);
    wait_until(
        &format!("{video} video and {audio} audio packets from account {account}"),
        move || {
            let counts = peer.from(account);
            counts.video >= video && counts.audio >= audio
        },
    )
    .await;
}

/// Waits until `peer` received `more` video packets from `clock` beyond what it has now:
/// the clock account's stream measures how long the check has watched, without timers.
pub async fn let_video_pass(peer: &Arc<Peer>, clock: i64, more: usize) {
    let from = peer.from(clock).video;
    wait_for_media(peer, clock, from + more, 0).await;
}

/// Checks that while `clock`'s video keeps arriving at `peer`, what arrives from
/// `silent` changes in no way that `same` rejects. Packets already on their way when
/// the check starts are let through first.
pub async fn assert_stays(
    peer: &Arc<Peer>,
    clock: i64,
    silent: i64,
    same: impl Fn(Counts, Counts) -> bool,
    what: &str,
) {
    let_video_pass(peer, clock, 30).await;
    let before = peer.from(silent);
    let_video_pass(peer, clock, 60).await;
    let after = peer.from(silent);
    assert!(same(before, after), "{what}: {before:?} then {after:?}");
}
