//! A private PostgreSQL primary and its synchronous standby on 127.0.0.1,
//! set up by the repository's `scripts/postgres` (which installs Debian's
//! PostgreSQL 15 when it is missing): for the tests and benchmarks of this
//! source tree, not for production, where the operator runs the database.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// `scripts/postgres` of this source tree.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/postgres");

/// A running primary and synchronous standby; both are stopped and their
/// files removed when it is dropped.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    url: String,
}

impl Cluster {
    /// Starts a primary and its synchronous standby on two free ports, in a
    /// fresh directory under the system's temporary one (reachable by the
    /// `postgres` user, under which the servers run when this runs as root).
    pub fn start() -> Result<Cluster, String> {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "agentrail-pg-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let port = free_port_pair()?;
        let output = Command::new(SCRIPT)
            .arg("start")
            .arg(&dir)
            .arg(port.to_string())
            .output()
            .map_err(|e| format!("{SCRIPT} does not run: {e}"))?;
        let cluster = Cluster {
            dir,
            url: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        };
        if !output.status.success() {
            return Err(format!(
                "scripts/postgres start failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(cluster)
    }

    /// The URL naming both hosts (the writable one is used).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `kill -9` of the primary's postmaster.
    pub fn kill_primary(&self) -> Result<(), String> {
        self.script("kill-primary")
    }

    /// Promotes the standby and lets it commit alone, as a failover
    /// manager does once the old primary is gone.
    pub fn promote(&self) -> Result<(), String> {
        self.script("promote")
    }

    fn script(&self, action: &str) -> Result<(), String> {
        let status = Command::new(SCRIPT)
            .arg(action)
            .arg(&self.dir)
            .status()
            .map_err(|e| format!("{SCRIPT} does not run: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("scripts/postgres {action} failed"))
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.script("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free port whose successor is free too (the standby's).
fn free_port_pair() -> Result<u16, String> {
    for _ in 0..100 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err("no two free ports in a row on 127.0.0.1".into())
}
