//! The seeded ledger simulation, run as a test.
//!
//! - `cargo test -p agentrail-sim --test simulation` runs seeds 1..=10
//!   with 100,000 commands each (1,000,000 in all), on every core. The
//!   whole-node simulation (`agentrail-sim-node`) runs this simulator for
//!   another 1,000,000 commands, with a node on faulty disks following.
//! - `AGENTRAIL_SIM_SEEDS=N` runs seeds 1..=N (long runs).
//! - `AGENTRAIL_SIM_SEED=S` runs only seed `S` (reproduces a failure).
//! - `AGENTRAIL_SIM_COMMANDS=C` sets the commands per seed.

use agentrail_sim::parallel::on_every_core;
use agentrail_sim::{SimConfig, run};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}"))
    })
}

#[test]
fn seeded_runs_keep_every_invariant() {
    let commands = env_u64("AGENTRAIL_SIM_COMMANDS").unwrap_or(100_000);
    let seeds: Vec<u64> = match env_u64("AGENTRAIL_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (1..=env_u64("AGENTRAIL_SIM_SEEDS").unwrap_or(10)).collect(),
    };
    // Seeds are independent: run them on every core, a seed at a time each.
    let reports: Vec<_> = on_every_core(&seeds, |seed| {
        let report =
            run(SimConfig::new(seed, commands)).unwrap_or_else(|failure| panic!("{failure}"));
        (seed, report)
    });
    let simulated: u64 = reports.iter().map(|(_, report)| report.commands).sum();
    let accepted: u64 = reports.iter().map(|(_, report)| report.accepted).sum();
    // A lost command, a broken invariant or a panic fails its seed, which
    // panicked above with the seed and the step: here they are all 0.
    println!(
        "simulation: seeds={} commands={simulated} rounds={} acknowledged={accepted} lost=0 invariant_violations=0 panics=0",
        reports.len(),
        reports.len()
    );
    for (seed, report) in reports {
        eprintln!("seed {seed}: {}", serde_json::to_string(&report).unwrap());
        assert!(
            report.identities >= 50,
            "too few identities: {}",
            report.identities
        );
        assert_eq!(
            report.in_ledger_atomic + report.withdrawn_atomic,
            report.deposited_atomic,
            "money was created or lost"
        );
        assert!(report.withdrawn_atomic > 0, "no withdrawal ever succeeded");
        if commands >= 100_000 {
            // The run must really exercise the hostile paths, not only the
            // happy one: every one of these refusals must have happened.
            for code in [
                "invalid_signature",
                "not_operator",
                "not_authorized",
                "unknown_identity",
                "grant_widens",
                "grant_revoked",
                "grant_expired",
                "idempotency_conflict",
                "per_payment_limit_exceeded",
                "budget_exceeded",
                "payee_not_allowed",
                "payee_denied",
                "category_not_allowed",
                "invalid_split",
                "hold_not_active",
                "approval_not_pending",
            ] {
                assert!(
                    report.rejected.contains_key(code),
                    "seed {seed} never produced {code}: {:?}",
                    report.rejected
                );
            }
            // Ended records leave the state a retention later, every kind.
            for kind in ["hold", "approval", "task", "rfq", "license"] {
                assert!(
                    report.forgotten_by_kind.contains_key(kind),
                    "seed {seed} never forgot a {kind}: {:?}",
                    report.forgotten_by_kind
                );
            }
            // Markets and channels are in the mix: every transition of a
            // task and a channel happened, by command or by the clock.
            for kind in [
                "publish_listing",
                "request_quotes",
                "submit_quote",
                "counter_quote",
                "accept_quote",
                "deliver_task",
                "approve_task",
                "dispute_task",
                "resolve_dispute",
                "license_dataset",
                "withdraw_listing",
                "open_channel",
                "collect_channel",
                "close_channel",
                "start_channel_close",
            ] {
                assert!(
                    report.accepted_by_type.get(kind).is_some_and(|n| *n > 0),
                    "seed {seed} never accepted {kind}: {:?}",
                    report.accepted_by_type
                );
            }
            for kind in [
                "task_approved_by_default",
                "task_refunded",
                "channel_closed",
            ] {
                assert!(
                    report.expired_by_type.contains_key(kind),
                    "seed {seed}: the clock never produced {kind}: {:?}",
                    report.expired_by_type
                );
            }
            for code in [
                "not_arbiter",
                "rfq_closed",
                "offer_out_of_turn",
                "task_wrong_state",
                "voucher_stale",
                "channel_exhausted",
                "channel_closed",
            ] {
                assert!(
                    report.rejected.contains_key(code),
                    "seed {seed} never produced {code}: {:?}",
                    report.rejected
                );
            }
            assert!(
                report.duplicates > 100,
                "too few duplicates: {}",
                report.duplicates
            );
            assert!(
                report.expirations > 100,
                "too few expirations: {}",
                report.expirations
            );
            assert!(
                report.accepted > commands / 3,
                "too few accepted: {}",
                report.accepted
            );
        }
    }
}

#[test]
fn a_seed_reproduces_its_run() {
    let first = run(SimConfig::new(7, 3_000)).unwrap();
    let second = run(SimConfig::new(7, 3_000)).unwrap();
    assert_eq!(first, second);
    let other = run(SimConfig::new(8, 3_000)).unwrap();
    assert_ne!(first.digest, other.digest);
}
