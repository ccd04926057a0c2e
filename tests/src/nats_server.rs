//! A private nats-server per test, for tests that stop and restart NATS or need a stream
//! layout of their own. Uses the pinned `nats-server` that `scripts/test.sh` installs.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsServer {
    pub port: u16,
    store: PathBuf,
    child: Option<Child>,
}

fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("CS_NATS_SERVER") {
        return path.into();
    }
    let pinned = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/nats-server");
    if pinned.exists() {
        pinned
    } else {
        "nats-server".into()
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl NatsServer {
    pub fn start() -> Self {
        let store = std::env::temp_dir().join(crate::unique("cs-nats"));
        let mut server = Self {
            port: free_port(),
            store,
            child: None,
        };
        server.restart();
        server
    }

    /// A server that is not running (what is left after moving a real one out).
    pub fn placeholder() -> Self {
        Self {
            port: 0,
            store: PathBuf::new(),
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again), on the same port and store, and waits until it accepts
    /// connections.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(binary())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (install it with scripts/test.sh)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        if !self.store.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.store);
        }
    }
}
