//! A recording cut off by SIGKILL gets its length back. The server process records a
//! meeting with a real WebRTC peer speaking and is killed. After the restart the
//! recording is listed as ended, with the length read from its file.

#[path = "meeting_media/peer.rs"]
mod peer;
mod server_process;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use peer::{Peer, spawn_media};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server_process::{free_port, login, spawn, wait_ready};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Generous limit for what must happen; not a speed check.
const PATIENCE: Duration = Duration::from_secs(60);

async fn recordings(http: &reqwest::Client, base: &str, meeting_id: i64) -> Vec<Value> {
    let listed: Value = http
        .get(format!("{base}/api/meetings/{meeting_id}/recordings"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    listed.as_array().expect("recordings list").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_recording_gets_its_length() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn(dir.path(), port);
    wait_ready(&reqwest::Client::new(), &base).await;

    let (host, csrf) = login(&base, "shengwei").await;
    let meetings: Value = host
        .get(format!("{base}/api/meetings"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let meeting_id = meetings["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["title"] == "十二月支委会")
        .expect("demo meeting")["id"]
        .as_i64()
        .unwrap();
    let token: Value = host
        .post(format!("{base}/api/auth/tokens"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"label": "meeting"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().expect("bearer token").to_owned();

    // The host enters the media with a peer that speaks a tone. A reader task answers
    // the server's offers as they come.
    let mut request = format!("ws://127.0.0.1:{port}/ws?v=1")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    let peer = Peer::new().await;
    let offer = peer.offer().await;
    let join = json!({"type": "meeting_join", "id": "j1", "meeting_id": meeting_id, "sdp": offer});
    sink.send(Message::Text(join.to_string().into()))
        .await
        .unwrap();
    let (joined_tx, joined_rx) = tokio::sync::oneshot::channel::<Value>();
    let answering = std::sync::Arc::clone(&peer);
    tokio::spawn(async move {
        let mut joined_tx = Some(joined_tx);
        while let Some(Ok(Message::Text(text))) = stream.next().await {
            let message: Value = serde_json::from_str(&text).unwrap();
            if message["type"] == "meeting_joined" {
                if let Some(sender) = joined_tx.take() {
                    let _ = sender.send(message);
                }
            } else if message["type"] == "meeting_offer" {
                let sdp = answering.answer(message["sdp"].as_str().unwrap()).await;
                let answer = json!({"type": "meeting_answer", "meeting_id": message["meeting_id"], "sdp": sdp});
                if sink
                    .send(Message::Text(answer.to_string().into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    let joined = tokio::time::timeout(PATIENCE, joined_rx)
        .await
        .expect("meeting_joined in time")
        .unwrap();
    peer.apply_answer(joined["sdp"].as_str().unwrap()).await;
    let deadline = Instant::now() + PATIENCE;
    while !peer.is_connected() {
        assert!(Instant::now() < deadline, "the media did not connect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let media = spawn_media(std::sync::Arc::clone(&peer));

    let started = host
        .post(format!("{base}/api/meetings/{meeting_id}/recording/start"))
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::CREATED);
    // The file grows by one Ogg page a second; let a few seconds reach the disk.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let listed = recordings(&host, &base, meeting_id).await;
        assert_eq!(listed.len(), 1, "one recording: {listed:?}");
        if listed[0]["size"].as_i64().unwrap() >= 12_000 {
            break;
        }
        assert!(Instant::now() < deadline, "the recording does not grow");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    child.kill().expect("SIGKILL the server");
    child.wait().unwrap();
    media.abort();
    let file = std::fs::read_dir(dir.path().join("files").join("recordings"))
        .expect("recordings folder")
        .next()
        .expect("one recording file")
        .unwrap();
    let file_size = file.metadata().unwrap().len() as i64;

    let mut child = spawn(dir.path(), port);
    wait_ready(&reqwest::Client::new(), &base).await;
    let (reader, _) = login(&base, "shengwei").await;
    let deadline = Instant::now() + PATIENCE;
    let recording = loop {
        let listed = recordings(&reader, &base, meeting_id).await;
        assert_eq!(listed.len(), 1, "one recording: {listed:?}");
        if listed[0]["ended_at"].is_i64() {
            break listed[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the cut recording was never measured: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(recording["recording"], false, "{recording}");
    assert_eq!(recording["size"], file_size, "{recording}");
    let duration = recording["duration_ms"].as_i64().unwrap();
    assert!(duration >= 2000, "length of the cut recording: {recording}");
    let started_at = recording["started_at"].as_i64().unwrap();
    assert_eq!(
        recording["ended_at"].as_i64().unwrap(),
        started_at + duration,
        "{recording}"
    );
}
