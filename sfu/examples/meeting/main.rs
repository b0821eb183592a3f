//! A minimal meeting server for trying the engine with browsers on one machine.
//!
//! Serves a test page and a small HTTP signaling endpoint on 127.0.0.1, with one room in
//! which everyone receives everyone else. Usage:
//!
//! ```text
//! cargo run -p sfu --example meeting -- [HTTP_PORT]
//! ```
//!
//! Endpoints (bodies are plain SDP text):
//! - `GET /` returns the page; `?simulcast=1` makes it publish three simulcast layers.
//! - `POST /join?id=NAME` takes the page's offer and returns the answer.
//! - `GET /offer?id=NAME` waits up to two seconds for an engine offer (204 when none).
//! - `POST /answer?id=NAME` takes the answer to that offer.
//! - `POST /report?id=NAME` stores a page's media report (JSON), and `GET /report?id=NAME`
//!   returns the latest one (204 when none). Pages opened with `?post=1` send one every
//!   second, for browsers that no test driver can query.
//! - `GET /downlink?id=NAME` returns the engine's view of that participant's downlink as
//!   JSON: `twcc_feedback_packets`, `twcc_estimate_bps` and `estimate_bps` (null when
//!   there is no recent estimate).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sfu::{DownlinkStats, ParticipantId, RoomId, RoomOptions, Sfu, SfuConfig, SfuEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const PAGE: &str = include_str!("page.html");
const MAX_REQUEST: usize = 64 * 1024;

/// Engine offers waiting to be fetched by each participant's page.
type Offers = Arc<Mutex<HashMap<ParticipantId, Vec<String>>>>;

/// Latest media report posted by each participant's page.
type Reports = Arc<Mutex<HashMap<ParticipantId, String>>>;

struct App {
    sfu: Sfu,
    room: RoomId,
    offers: Offers,
    reports: Reports,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let port: u16 = std::env::args().nth(1).map_or(Ok(0), |p| p.parse())?;

    // ICE-TCP on a free port, for pages whose browser may not use UDP.
    let config = SfuConfig {
        tcp_port: Some(0),
        ..SfuConfig::default()
    };
    let (sfu, events) = Sfu::start(config).await?;
    let room = RoomId::from("meeting");
    sfu.create_room(
        room.clone(),
        RoomOptions {
            auto_subscribe: true,
        },
    )
    .await?;
    let offers = Offers::default();
    tokio::spawn(collect_offers(events, Arc::clone(&offers)));

    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = Arc::new(App {
        sfu,
        room,
        offers,
        reports: Reports::default(),
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            if let Err(err) = serve(&app, stream).await {
                tracing::warn!(error = %err, "request failed");
            }
        });
    }
}

async fn collect_offers(mut events: mpsc::UnboundedReceiver<SfuEvent>, offers: Offers) {
    while let Some(event) = events.recv().await {
        match event {
            SfuEvent::Offer { participant, sdp } => {
                tracing::debug!(%participant, %sdp, "engine offer");
                offers
                    .lock()
                    .unwrap()
                    .entry(participant)
                    .or_default()
                    .push(sdp);
            }
            SfuEvent::ParticipantDisconnected { participant, .. } => {
                offers.lock().unwrap().remove(&participant);
            }
            other => tracing::info!(event = ?other, "engine event"),
        }
    }
}

/// A parsed HTTP request: method, path, `id` query parameter and body.
struct Request {
    method: String,
    path: String,
    id: Option<ParticipantId>,
    body: String,
}

async fn serve(app: &App, mut stream: TcpStream) -> std::io::Result<()> {
    let Some(request) = read_request(&mut stream).await? else {
        return respond(&mut stream, 400, "text/plain", "invalid request").await;
    };
    let (status, kind, body) = route(app, request).await;
    respond(&mut stream, status, kind, &body).await
}

async fn route(app: &App, request: Request) -> (u16, &'static str, String) {
    let text = "text/plain";
    match (request.method.as_str(), request.path.as_str(), request.id) {
        ("GET", "/", _) => (200, "text/html", PAGE.to_owned()),
        ("POST", "/join", Some(id)) => match app.sfu.join(&app.room, id, request.body).await {
            Ok(answer) => (200, text, answer),
            Err(err) => (400, text, err.to_string()),
        },
        ("POST", "/answer", Some(id)) => {
            match app.sfu.accept_answer(&app.room, id, request.body).await {
                Ok(()) => (200, text, String::new()),
                Err(err) => (400, text, err.to_string()),
            }
        }
        ("GET", "/offer", Some(id)) => match next_offer(&app.offers, &id).await {
            Some(offer) => (200, text, offer),
            None => (204, text, String::new()),
        },
        ("POST", "/report", Some(id)) => {
            app.reports.lock().unwrap().insert(id, request.body);
            (200, text, String::new())
        }
        ("GET", "/report", Some(id)) => match app.reports.lock().unwrap().get(&id) {
            Some(report) => (200, "application/json", report.clone()),
            None => (204, text, String::new()),
        },
        ("GET", "/downlink", Some(id)) => match app.sfu.downlink_stats(&app.room, id).await {
            Ok(stats) => (200, "application/json", downlink_json(&stats)),
            Err(err) => (404, text, err.to_string()),
        },
        _ => (404, text, "not found".to_owned()),
    }
}

fn downlink_json(stats: &DownlinkStats) -> String {
    let bps = |value: Option<u64>| value.map_or("null".to_owned(), |value| value.to_string());
    format!(
        r#"{{"twcc_feedback_packets":{},"twcc_estimate_bps":{},"estimate_bps":{}}}"#,
        stats.twcc_feedback_packets,
        bps(stats.twcc_estimate_bps),
        bps(stats.estimate_bps)
    )
}

async fn next_offer(offers: &Offers, id: &ParticipantId) -> Option<String> {
    for _ in 0..40 {
        let offer = offers
            .lock()
            .unwrap()
            .get_mut(id)
            .and_then(|queue| (!queue.is_empty()).then(|| queue.remove(0)));
        if offer.is_some() {
            return offer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end;
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 || buffer.len() > MAX_REQUEST {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..read]);
    };

    let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
    let mut lines = head.lines();
    let mut start = lines.next().unwrap_or_default().split_whitespace();
    let (Some(method), Some(target)) = (start.next(), start.next()) else {
        return Ok(None);
    };
    let length: usize = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    if length > MAX_REQUEST {
        return Ok(None);
    }

    let mut body = buffer[header_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&chunk[..read]);
    }

    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let id = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("id="))
        .filter(|id| !id.is_empty())
        .map(ParticipantId::from);
    Ok(Some(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        id,
        body: String::from_utf8_lossy(&body).into_owned(),
    }))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    kind: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
