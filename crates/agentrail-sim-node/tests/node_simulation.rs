//! The whole node under the seeded simulation, over a disk that fails.
//!
//! - `cargo test -p agentrail-sim-node --test node_simulation` runs seeds
//!   1..=40 with 25,000 commands each (1,000,000 in all), on every core.
//! - `AGENTRAIL_NODE_SIM_SEEDS=N` runs seeds 1..=N (long runs).
//! - `AGENTRAIL_NODE_SIM_SEED=S` runs only seed `S` (reproduces a failure).
//! - `AGENTRAIL_NODE_SIM_COMMANDS=C` sets the commands per seed.
//!
//! It prints one summary line: `node-sim: rounds=… acknowledged=… lost=0
//! invariant_violations=0 panics=0` (rounds are restarts of the node).

use agentrail_sim::parallel::on_every_core;
use agentrail_sim_node::{NodeSimConfig, NodeSimFailure, NodeSimReport, run};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}"))
    })
}

/// Runs `seeds` on every core, a seed at a time each.
fn run_all(seeds: &[u64], commands: u64) -> Vec<Result<NodeSimReport, NodeSimFailure>> {
    on_every_core(seeds, |seed| run(NodeSimConfig::new(seed, commands)))
}

#[test]
fn the_node_loses_nothing_acknowledged_through_crashes_and_disk_faults() {
    let commands = env_u64("AGENTRAIL_NODE_SIM_COMMANDS").unwrap_or(25_000);
    let seeds: Vec<u64> = match env_u64("AGENTRAIL_NODE_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (1..=env_u64("AGENTRAIL_NODE_SIM_SEEDS").unwrap_or(40)).collect(),
    };
    let results = run_all(&seeds, commands);
    let mut failures = Vec::new();
    let mut reports = Vec::new();
    for result in results {
        match result {
            Ok(report) => reports.push(report),
            Err(failure) => failures.push(failure),
        }
    }
    let sum = |field: fn(&NodeSimReport) -> u64| reports.iter().map(field).sum::<u64>();
    let mut faults = std::collections::BTreeMap::<String, u64>::new();
    for report in &reports {
        for (kind, count) in &report.faults {
            *faults.entry(kind.clone()).or_default() += count;
        }
    }
    let panics = failures
        .iter()
        .filter(|f| f.message.starts_with("panic"))
        .count();
    let lost = failures
        .iter()
        .filter(|f| f.message.starts_with("lost"))
        .count();
    println!(
        "node-sim: seeds={} commands={} rounds={} acknowledged={} refused={} retried={} landed_unanswered={} corruption_refused={} corruption_harmless={} comparisons={} archive_reads={} signed_requests={} replays_refused={} replays_too_old={} faults={faults:?} lost={lost} invariant_violations={} panics={panics}",
        seeds.len(),
        sum(|r| r.commands),
        sum(|r| r.restarts),
        sum(|r| r.acknowledged),
        sum(|r| r.refused),
        sum(|r| r.retried),
        sum(|r| r.landed_unanswered),
        sum(|r| r.corruption_refused),
        sum(|r| r.corruption_harmless),
        sum(|r| r.comparisons),
        sum(|r| r.archive_reads),
        sum(|r| r.signed_requests),
        sum(|r| r.replays_refused),
        sum(|r| r.replays_too_old),
        failures.len() - panics - lost,
    );
    if let Some(failure) = failures.first() {
        panic!("{failure}");
    }
    if seeds.len() < 10 {
        return;
    }
    // Every fault was injected, and every path taken, somewhere.
    for kind in [
        "power_cut",
        "kill",
        "transient_io",
        "disk_full",
        "corrupt_journal",
        "corrupt_snapshot",
    ] {
        assert!(
            faults.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} fault"
        );
    }
    assert!(sum(|r| r.retried) > 0, "no command was ever retried");
    assert!(
        sum(|r| r.landed_unanswered) > 0,
        "no unanswered command ever landed"
    );
    assert!(sum(|r| r.restarts) > sum(|r| r.commands) / 10_000);
}

#[test]
fn a_seed_reproduces_its_run() {
    let first = run_all(&[3, 3], 3_000);
    let (Ok(a), Ok(b)) = (&first[0], &first[1]) else {
        panic!("seed 3 failed: {first:?}");
    };
    assert_eq!(a, b);
    assert!(a.restarts > 0 && a.acknowledged > 0);
}
