//! Janus VideoRoom driven over Janus's HTTP transport: REST requests for the session,
//! handles and plugin messages, and one long poll (`GET /janus/SESSION`) that receives
//! the asynchronous events and hands each to the request with its transaction id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// How long a plugin request may take to produce its event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// One Janus session with its long poll running.
pub struct Janus {
    http: reqwest::Client,
    session_url: String,
    waiters: Waiters,
    next_transaction: AtomicU64,
    poller: tokio::task::JoinHandle<()>,
}

/// A handle attached to the VideoRoom plugin.
pub struct Handle {
    url: String,
}

impl Janus {
    /// Creates a session at `base` (for example `http://127.0.0.1:8088/janus`) and starts
    /// its long poll.
    pub async fn connect(base: &str) -> anyhow::Result<Janus> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?;
        let reply = post(
            &http,
            base,
            json!({"janus": "create", "transaction": "create"}),
        )
        .await?;
        let session = reply["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("Janus create returned no session id: {reply}"))?;
        let session_url = format!("{base}/{session}");
        let waiters = Waiters::default();
        let poller = tokio::spawn(long_poll(
            http.clone(),
            session_url.clone(),
            Arc::clone(&waiters),
        ));
        Ok(Janus {
            http,
            session_url,
            waiters,
            next_transaction: AtomicU64::new(1),
            poller,
        })
    }

    fn transaction(&self) -> String {
        format!("t{}", self.next_transaction.fetch_add(1, Ordering::Relaxed))
    }

    /// Attaches a new handle to `janus.plugin.videoroom`.
    pub async fn attach(&self) -> anyhow::Result<Handle> {
        let body = json!({
            "janus": "attach",
            "plugin": "janus.plugin.videoroom",
            "transaction": self.transaction(),
        });
        let reply = post(&self.http, &self.session_url, body).await?;
        let handle = reply["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("Janus attach returned no handle id: {reply}"))?;
        Ok(Handle {
            url: format!("{}/{handle}", self.session_url),
        })
    }

    /// Sends a synchronous plugin request (such as `create`) and returns its plugin data.
    pub async fn request(&self, handle: &Handle, body: Value) -> anyhow::Result<Value> {
        let message = json!({"janus": "message", "transaction": self.transaction(), "body": body});
        let reply = post(&self.http, &handle.url, message).await?;
        plugin_data(&reply)
    }

    /// Sends an asynchronous plugin request, optionally with a JSEP, and waits for its
    /// event. Returns the plugin data and the event's JSEP SDP, if any.
    pub async fn message(
        &self,
        handle: &Handle,
        body: Value,
        jsep: Option<(&str, String)>,
    ) -> anyhow::Result<(Value, Option<String>)> {
        let transaction = self.transaction();
        let mut message = json!({"janus": "message", "transaction": transaction, "body": body});
        if let Some((kind, sdp)) = jsep {
            // Janus takes the rids of an offer as highest first unless `rid_order` is
            // "lmh", and the publisher lists them lowest first.
            message["jsep"] = json!({"type": kind, "sdp": sdp, "rid_order": "lmh"});
        }
        let (sender, receiver) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap()
            .insert(transaction.clone(), sender);
        let with_jsep = message.get("jsep").is_some();
        let reply = post(&self.http, &handle.url, message).await?;
        if reply["janus"] != "ack" {
            self.waiters.lock().unwrap().remove(&transaction);
            bail!("Janus did not acknowledge {transaction}: {reply}");
        }
        if with_jsep {
            // The SDP already lists every candidate of the client. Without an
            // end-of-candidates signal Janus keeps waiting for trickled ones and
            // ignores a failed connectivity check as possibly premature.
            let completed = json!({
                "janus": "trickle",
                "transaction": self.transaction(),
                "candidate": {"completed": true},
            });
            post(&self.http, &handle.url, completed).await?;
        }
        let event = tokio::time::timeout(EVENT_TIMEOUT, receiver)
            .await
            .with_context(|| format!("no Janus event for {transaction} within 30 s"))?
            .map_err(|_| anyhow!("Janus long poll stopped"))?;
        let data = plugin_data(&event)?;
        let sdp = event["jsep"]["sdp"].as_str().map(str::to_owned);
        Ok((data, sdp))
    }

    /// Destroys the session, which detaches its handles and hangs up their peers.
    pub async fn destroy(self) {
        let body = json!({"janus": "destroy", "transaction": self.transaction()});
        if let Err(error) = post(&self.http, &self.session_url, body).await {
            eprintln!("destroying the Janus session failed: {error:#}");
        }
        self.poller.abort();
    }
}

/// Returns the VideoRoom data of a reply or event, or its error.
fn plugin_data(reply: &Value) -> anyhow::Result<Value> {
    if reply["janus"] == "error" {
        bail!("Janus error: {}", reply["error"]);
    }
    let data = &reply["plugindata"]["data"];
    if data.is_null() {
        bail!("Janus reply has no plugin data: {reply}");
    }
    if data["videoroom"] == "event" && data.get("error").is_some() {
        bail!("VideoRoom error {}: {}", data["error_code"], data["error"]);
    }
    Ok(data.clone())
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<Value> {
    let response = http
        .post(url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let reply: Value = response
        .json()
        .await
        .with_context(|| format!("reading the reply of POST {url}"))?;
    if !status.is_success() || reply["janus"] == "error" {
        bail!("POST {url} failed ({status}): {reply}");
    }
    Ok(reply)
}

/// Receives the session's events, up to 50 per request, and hands each event that names
/// a waiting transaction to its waiter. The other events (`webrtcup`, `media`,
/// `keepalive`, `trickle`) are dropped.
async fn long_poll(http: reqwest::Client, session_url: String, waiters: Waiters) {
    let url = format!("{session_url}?maxev=50");
    loop {
        let events = match http.get(&url).send().await {
            Ok(response) => response.json::<Value>().await,
            Err(error) => Err(error),
        };
        let events = match events {
            Ok(Value::Array(events)) => events,
            Ok(event) => vec![event],
            Err(error) => {
                eprintln!("Janus long poll failed: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        for event in events {
            if event["janus"] == "hangup" || event["janus"] == "detached" {
                eprintln!("Janus event: {event}");
            }
            let Some(transaction) = event["transaction"].as_str() else {
                continue;
            };
            if event["janus"] == "ack" {
                continue;
            }
            if let Some(waiter) = waiters.lock().unwrap().remove(transaction) {
                let _ = waiter.send(event);
            }
        }
    }
}
