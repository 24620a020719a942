//! Processor time by thread, from `/proc/self/task`: which stage of the
//! ledger spent what, when clients and node share the machine's cores.
//!
//! Times are the scheduler's nanoseconds on a processor
//! (`/proc/…/schedstat`), or clock ticks of 10 ms where it says nothing.
//! Threads are told apart by the names the node gives them (Linux keeps
//! the first 15 bytes); a thread that ended between two samples is not
//! counted, so samples are taken while the stages' threads run.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// Processor seconds of each live thread, by thread id, with its name.
#[derive(Clone, Debug, Default)]
pub struct Sample(HashMap<u32, (String, f64)>);

impl Sample {
    /// Every thread of this process now; empty where `/proc` says nothing.
    pub fn now() -> Sample {
        let mut threads = HashMap::new();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Sample(threads);
        };
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            let Some((name, ticks)) = std::fs::read_to_string(task.path().join("stat"))
                .ok()
                .and_then(|stat| parse_stat(&stat))
            else {
                continue;
            };
            // Nanoseconds on a processor where the kernel tells them;
            // clock ticks of 10 ms otherwise.
            let seconds = std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|line| line.split(' ').next()?.parse::<u64>().ok())
                .map_or(ticks, |ns| ns as f64 / 1e9);
            threads.insert(tid, (name, seconds));
        }
        Sample(threads)
    }

    /// Processor seconds spent since `earlier`, by role (see [`role`]).
    pub fn since(&self, earlier: &Sample) -> BTreeMap<&'static str, f64> {
        let mut roles = BTreeMap::new();
        for (tid, (name, seconds)) in &self.0 {
            let before = earlier
                .0
                .get(tid)
                .filter(|(earlier_name, _)| earlier_name == name)
                .map_or(0.0, |(_, seconds)| *seconds);
            *roles.entry(role(name)).or_insert(0.0) += seconds - before;
        }
        roles
    }
}

/// The name and user plus system seconds of one `/proc/…/stat` line.
fn parse_stat(stat: &str) -> Option<(String, f64)> {
    let name = stat.get(stat.find('(')? + 1..stat.rfind(')')?)?.to_owned();
    // Fields after the parenthesised name; utime and stime are the 12th
    // and 13th of them, in clock ticks of 1/100 s (Linux's USER_HZ).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split(' ').skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((name, (user + system) as f64 / 100.0))
}

/// The stage a thread of the given name works for.
pub fn role(name: &str) -> &'static str {
    if name.starts_with("agentrail-verif") {
        "verifier"
    } else if name.starts_with("agentrail-write") || name == "bench-writer" {
        "writer"
    } else if name.starts_with("agentrail-commi") {
        "committer"
    } else if name.starts_with("agentrail-snaps") {
        "snapshot"
    } else if name.starts_with(NODE_THREADS) {
        "http"
    } else if name.starts_with(PROVIDER_THREADS) || name.starts_with("agentrail-pay-") {
        "provider"
    } else {
        "clients"
    }
}

/// The name of the threads of the runtime a benchmark runs the node's
/// HTTP server on, apart from its clients'.
pub const NODE_THREADS: &str = "agentrail-node";

/// The name of the threads of the runtime a benchmark runs a paid
/// provider on (its paywall and payee), apart from its clients'.
pub const PROVIDER_THREADS: &str = "bench-provider";

/// Processor time per command (µs) of each stage, and of the node's
/// stages together (everything but the clients).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CpuByStage {
    pub verifier: f64,
    pub writer: f64,
    pub committer: f64,
    pub snapshot: f64,
    /// The node's HTTP server (its own runtime), where it ran.
    pub http: f64,
    /// The benchmark's clients, and everything else in the process.
    pub clients: f64,
    /// Every stage but the clients.
    pub node: f64,
}

impl CpuByStage {
    /// `roles` (seconds, from [`Sample::since`]) per one of `commands`.
    pub fn per_command(roles: &BTreeMap<&'static str, f64>, commands: usize) -> CpuByStage {
        let us = |role: &str| roles.get(role).copied().unwrap_or(0.0) * 1e6 / commands as f64;
        let mut stages = CpuByStage {
            verifier: us("verifier"),
            writer: us("writer"),
            committer: us("committer"),
            snapshot: us("snapshot"),
            http: us("http"),
            clients: us("clients"),
            node: 0.0,
        };
        stages.node =
            stages.verifier + stages.writer + stages.committer + stages.snapshot + stages.http;
        stages
    }

    /// Each figure's median over the stages of `rounds` (not empty).
    pub fn median<T>(rounds: &[T], stages: impl Fn(&T) -> &CpuByStage) -> CpuByStage {
        let median = |figure: fn(&CpuByStage) -> f64| median_by(rounds, |r| figure(stages(r)));
        CpuByStage {
            verifier: median(|r| r.verifier),
            writer: median(|r| r.writer),
            committer: median(|r| r.committer),
            snapshot: median(|r| r.snapshot),
            http: median(|r| r.http),
            clients: median(|r| r.clients),
            node: median(|r| r.node),
        }
    }
}

/// The median of `figure` over `rounds` (not empty): the upper one of an
/// even count.
pub fn median_by<T>(rounds: &[T], figure: impl Fn(&T) -> f64) -> f64 {
    let mut values: Vec<f64> = rounds.iter().map(figure).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_name_and_seconds() {
        let line = "42 (agentrail-commi) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(parse_stat(line), Some(("agentrail-commi".to_owned(), 3.0)));
        // A name holding a parenthesis and spaces.
        let line = "7 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 1 2 0 0";
        assert_eq!(parse_stat(line), Some(("a (b) c".to_owned(), 0.03)));
    }

    #[test]
    fn a_named_thread_is_counted_under_its_stage() {
        let before = Sample::now();
        let spun = std::thread::Builder::new()
            .name("agentrail-commit".into())
            .spawn(move || {
                // Spins until the sampler sees 50 ms of this thread's time
                // as the committer's, or gives up after 20 s of wall time.
                let started = std::time::Instant::now();
                while started.elapsed() < std::time::Duration::from_secs(20) {
                    let mut x = 0u64;
                    for i in 0..100_000u64 {
                        x = x.wrapping_add(std::hint::black_box(i));
                    }
                    std::hint::black_box(x);
                    let seen = Sample::now().since(&before);
                    if seen.get("committer").copied().unwrap_or(0.0) >= 0.05 {
                        return true;
                    }
                }
                false
            })
            .expect("a thread");
        assert!(
            spun.join().expect("the thread ends"),
            "its time was never seen"
        );
    }
}
