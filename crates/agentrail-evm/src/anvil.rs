//! A local anvil dev chain, for the demo, the benchmark and the tests:
//! found where `scripts/evm-tools` installs it, started on a free port,
//! stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::wallet::EvmKey;

/// The environment variable naming the folder that holds `anvil`
/// (`scripts/evm-tools` prints it).
pub const EVM_TOOLS_ENV: &str = "AGENTRAIL_EVM_TOOLS";

/// What to run when anvil is missing.
pub const INSTALL_HINT: &str = "anvil is not installed: run scripts/evm-tools (it installs pinned anvil, forge and solc into .tools/evm), or point AGENTRAIL_EVM_TOOLS at a folder holding anvil";

/// A running anvil.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    url: String,
    /// Its funded dev accounts' keys, as it printed them.
    keys: Vec<EvmKey>,
}

/// Where anvil is: `AGENTRAIL_EVM_TOOLS`, then `.tools/evm/bin` in the
/// current folder or above it or above the running program, then `PATH`.
pub fn find() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os(EVM_TOOLS_ENV) {
        let path = Path::new(&dir).join("anvil");
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{} has no anvil. {INSTALL_HINT}",
                Path::new(&dir).display()
            ))
        };
    }
    let mut starts = Vec::new();
    if let Ok(dir) = std::env::current_dir() {
        starts.push(dir);
    }
    if let Ok(exe) = std::env::current_exe() {
        starts.push(exe);
    }
    for start in starts {
        for dir in start.ancestors() {
            let path = dir.join(".tools/evm/bin/anvil");
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let path = dir.join("anvil");
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    Err(INSTALL_HINT.to_owned())
}

impl Anvil {
    /// Starts anvil on a free loopback port with `accounts` funded
    /// accounts; `block_time` mines on a timer instead of per transaction.
    pub fn start(accounts: u32, block_time: Option<u64>) -> Result<Anvil, String> {
        let program = find()?;
        let mut command = Command::new(&program);
        command
            .args(["--port", "0", "--host", "127.0.0.1", "--accounts"])
            .arg(accounts.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(seconds) = block_time {
            command.arg("--block-time").arg(seconds.to_string());
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (found, lines) = std::sync::mpsc::channel();
        // Reads anvil's banner for its keys and port, then drains its
        // output so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut keys = Vec::new();
            let mut in_keys = false;
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sent {
                    continue;
                }
                let line = line.trim().to_owned();
                if line == "Private Keys" {
                    in_keys = true;
                } else if line.starts_with("Wallet") {
                    in_keys = false;
                } else if in_keys && line.starts_with('(') {
                    if let Some(key) = line.split_whitespace().nth(1) {
                        keys.push(key.to_owned());
                    }
                } else if let Some(address) = line.strip_prefix("Listening on ") {
                    let _ = found.send((address.to_owned(), std::mem::take(&mut keys)));
                    sent = true;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (address, keys) = loop {
            match lines.recv_timeout(Duration::from_millis(100)) {
                Ok(found) => break found,
                Err(_) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!("anvil exited at start: {status}"));
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    return Err("anvil did not start within 30 s".into());
                }
            }
        };
        let keys = keys
            .iter()
            .map(|text| EvmKey::parse(text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("anvil printed a key that does not parse: {e}"))?;
        Ok(Anvil {
            child,
            url: format!("http://{address}"),
            keys,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Dev account `index`'s key.
    pub fn key(&self, index: usize) -> &EvmKey {
        &self.keys[index]
    }

    pub fn keys(&self) -> &[EvmKey] {
        &self.keys
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
