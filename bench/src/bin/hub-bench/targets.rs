//! The servers under test: starting and stopping them, their trigger
//! sockets, and their memory and CPU time from /proc.

use std::ffi::OsString;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

/// Maximum wait for a server to accept trigger connections after start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Hub,
    SocketIo,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Hub => "Dangwu hub",
            Self::SocketIo => "Socket.IO",
        }
    }
}

/// Programs, paths and CPU placement for starting the servers.
pub struct Launch {
    pub bench_server: PathBuf,
    pub node: String,
    pub socketio_dir: PathBuf,
    pub server_cpu: Option<usize>,
    pub work_dir: PathBuf,
}

/// A running server process that this benchmark started.
pub struct Target {
    pub kind: Kind,
    pub trigger_addr: SocketAddr,
    child: Child,
    pub log: PathBuf,
}

impl Target {
    /// Starts a server and waits until its trigger socket accepts.
    pub async fn start(
        kind: Kind,
        launch: &Launch,
        addr: SocketAddr,
        trigger_addr: SocketAddr,
        run: &str,
    ) -> anyhow::Result<Self> {
        let log = launch.work_dir.join(format!("{run}.log"));
        let (program, args): (OsString, Vec<OsString>) = match kind {
            Kind::Hub => (
                launch.bench_server.clone().into(),
                vec![
                    "--data-dir".into(),
                    launch.work_dir.join(format!("{run}-data")).into(),
                    "--listen".into(),
                    addr.to_string().into(),
                    "--trigger".into(),
                    trigger_addr.to_string().into(),
                ],
            ),
            Kind::SocketIo => (
                launch.node.clone().into(),
                vec![
                    launch.socketio_dir.join("server.js").into(),
                    "--port".into(),
                    addr.port().to_string().into(),
                    "--trigger-port".into(),
                    trigger_addr.port().to_string().into(),
                ],
            ),
        };
        let mut command = match launch.server_cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg(program);
                command
            }
            None => Command::new(program),
        };
        command.args(args);
        let output =
            File::create(&log).with_context(|| format!("failed to create {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output);
        let child = command
            .spawn()
            .with_context(|| format!("failed to start {}", kind.label()))?;
        let mut target = Self {
            kind,
            trigger_addr,
            child,
            log,
        };
        target.wait_ready().await?;
        Ok(target)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited during start with {status}; see {}",
                    self.kind.label(),
                    self.log.display()
                );
            }
            if TcpStream::connect(self.trigger_addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not open {} within {START_TIMEOUT:?}; see {}",
                    self.kind.label(),
                    self.trigger_addr,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server with SIGTERM, and SIGKILL if it is still running
    /// after five seconds.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = Pid::from_raw(self.child.id() as i32);
        kill(pid, Signal::SIGTERM).context("failed to send SIGTERM to the server")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

/// Resident set size of a process, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS line in {path}"))
}

/// User plus system CPU time of a process (`self` for this one).
pub fn cpu_time(pid: &str) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
    // Fields after the command name, which is in parentheses and may
    // contain spaces: utime and stime are fields 14 and 15 of the line.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("invalid {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..13)
        .with_context(|| format!("too few fields in {path}"))?
        .iter()
        .map(|field| field.parse::<u64>().unwrap_or(0))
        .sum();
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100) as u64;
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / per_second))
}

/// A connection to a server's trigger socket.
pub struct Trigger {
    lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
}

impl Trigger {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("failed to connect to the trigger socket {addr}"))?;
        stream.set_nodelay(true)?;
        let (reader, writer) = stream.into_split();
        Ok(Self {
            lines: BufReader::new(reader).lines(),
            writer,
        })
    }

    /// Asks the server to publish `count` events on `topic` and waits for
    /// its reply, which comes after the last one was handed to the
    /// connections.
    pub async fn publish(&mut self, topic: &str, round: u64, count: u64) -> anyhow::Result<()> {
        self.writer
            .write_all(format!("publish {topic} {round} {count}\n").as_bytes())
            .await?;
        let reply = self
            .lines
            .next_line()
            .await?
            .context("trigger socket closed")?;
        if !reply.starts_with("ok ") {
            bail!("publish failed: {reply}");
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct LoginReply {
    csrf_token: String,
}

#[derive(Deserialize)]
struct TokenReply {
    token: String,
}

/// Logs in to the hub's HTTP API and creates a bearer token.
pub async fn hub_token(addr: SocketAddr, username: &str, password: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let login: LoginReply = client
        .post(format!("http://{addr}/api/auth/login"))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("login as {username} failed"))?
        .json()
        .await?;
    let created: TokenReply = client
        .post(format!("http://{addr}/api/auth/tokens"))
        .header("x-csrf-token", login.csrf_token)
        .json(&serde_json::json!({"label": "hub benchmark"}))
        .send()
        .await?
        .error_for_status()
        .context("creating a bearer token failed")?
        .json()
        .await?;
    Ok(created.token)
}

/// Returns the path of the named binary in this executable's folder.
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} not found; build it with `cargo build --release -p dangwu-bench`",
            path.display()
        );
    }
    Ok(path)
}
