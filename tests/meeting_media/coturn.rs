//! A coturn TURN server on loopback for one test, with TURN REST API credentials
//! (`use-auth-secret`), started from Debian's `turnserver` binary.

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// A running `turnserver`, killed on drop.
pub struct Coturn {
    child: Child,
    /// UDP and TCP port of its listener on 127.0.0.1.
    pub port: u16,
    output: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Coturn {
    /// Starts coturn with `secret` as its static-auth-secret; `None` when `turnserver` is
    /// not installed.
    pub fn start(secret: &str) -> Option<Coturn> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let spawned = Command::new("turnserver")
            .args([
                "-n",
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
                &format!("--listening-port={port}"),
                "--use-auth-secret",
                &format!("--static-auth-secret={secret}"),
                "--realm=dangwu.test",
                // The engine listens on loopback in the test; coturn denies loopback
                // peers otherwise.
                "--allow-loopback-peers",
                "--no-tcp-relay",
                "--no-cli",
                "--no-tls",
                "--no-dtls",
                "--fingerprint",
                "--verbose",
                "--log-file=stdout",
                &format!("--db={}", dir.path().join("turndb").display()),
                &format!("--pidfile={}", dir.path().join("turnserver.pid").display()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => panic!("failed to start turnserver: {error}"),
        };
        let output = Arc::new(Mutex::new(String::new()));
        let mut stdout = child.stdout.take().unwrap();
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = stdout.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buffer[..read]);
                sink.lock().unwrap().push_str(&text);
            }
        });
        Some(Coturn {
            child,
            port,
            output,
            _dir: dir,
        })
    }

    /// Everything coturn has logged so far.
    pub fn log(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Checks whether coturn has opened its listener.
    pub fn is_listening(&self) -> bool {
        self.log()
            .contains(&format!("UDP listener opened on: 127.0.0.1:{}", self.port))
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns a loopback port that is free for both UDP and TCP at the time of the call.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
}
