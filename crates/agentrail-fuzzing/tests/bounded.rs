//! Every fuzz target in `cargo test`: each committed seed under
//! `fuzz/seeds/<target>/`, then a fixed, seeded budget of mutations of them
//! (bit flips, byte changes, insertions of JSON's and headers' own
//! punctuation, deletions, duplicated ranges, splices of two seeds,
//! truncations). Not coverage-guided: that is `fuzz/run.sh`. It checks in
//! CI that no target panics on its seeds or on inputs near them.
//!
//! - `AGENTRAIL_FUZZ_INPUTS=N` sets the mutations per target (default
//!   20,000; `channel_state` signs per step and gets a tenth).
//! - `AGENTRAIL_FUZZ_SEED=S` changes the mutation stream.
//!
//! It prints one summary line: `fuzz: targets=… rounds=… (inputs)
//! invariant_violations=0 panics=0`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use agentrail_fuzzing::TARGETS;
use agentrail_sim::Rng;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}"))
    })
}

/// A number below `bound` from the seeded stream: the same inputs on
/// every run.
fn below(rng: &mut Rng, bound: usize) -> usize {
    rng.below(bound.max(1) as u64) as usize
}

/// Bytes that matter to the decoders: JSON's structure, numbers at their
/// limits, structured-field punctuation, base64 and did:key alphabets.
const TOKENS: [&[u8]; 16] = [
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"-1",
    b"1e999",
    b"340282366920938463463374607431768211456",
    b"null",
    b";",
    b"=",
    b"sig1=",
    b"z6Mk",
    b"\\u0000",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut input = seeds[below(rng, seeds.len())].clone();
    for _ in 0..1 + below(rng, 4) {
        let at = below(rng, input.len() + 1);
        match below(rng, 7) {
            0 if !input.is_empty() => {
                let i = below(rng, input.len());
                input[i] ^= 1 << below(rng, 8);
            }
            1 if !input.is_empty() => {
                let i = below(rng, input.len());
                input[i] = below(rng, 256) as u8;
            }
            2 => {
                let token = TOKENS[below(rng, TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            3 if !input.is_empty() => {
                let end = (at + 1 + below(rng, 16)).min(input.len());
                input.drain(at.min(end)..end);
            }
            4 if !input.is_empty() => {
                let start = below(rng, input.len());
                let end = (start + 1 + below(rng, 32)).min(input.len());
                let copy = input[start..end].to_vec();
                input.splice(at..at, copy);
            }
            5 => {
                let other = &seeds[below(rng, seeds.len())];
                let from = below(rng, other.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            _ => input.truncate(at),
        }
    }
    input
}

fn seeds_of(target: &str) -> Vec<Vec<u8>> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&directory)
        .unwrap_or_else(|e| panic!("{}: {e}", directory.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    let seeds: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds for {target}");
    seeds
}

#[test]
fn no_fuzz_target_panics_on_its_seeds_or_near_them() {
    let budget = env_u64("AGENTRAIL_FUZZ_INPUTS").unwrap_or(20_000) as usize;
    let stream = env_u64("AGENTRAIL_FUZZ_SEED").unwrap_or(1);
    // A panic is reported below with its input; the default hook would
    // print each one first.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut inputs = 0;
    let mut panics = Vec::new();
    for (target, run) in TARGETS {
        let seeds = seeds_of(target);
        let mut rng = Rng::new(stream);
        let budget = if target == "channel_state" {
            budget / 10
        } else {
            budget
        };
        let generated = (0..budget).map(|_| mutate(&mut rng, &seeds));
        for input in seeds.clone().into_iter().chain(generated) {
            inputs += 1;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(&input))) {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                panics.push(format!(
                    "{target}: {message}; input (hex) {}",
                    input.iter().map(|b| format!("{b:02x}")).collect::<String>()
                ));
            }
        }
    }
    std::panic::set_hook(hook);
    // The targets assert their invariants: a violation is a panic too.
    let violations = panics.iter().filter(|p| p.contains("invariant")).count();
    println!(
        "fuzz: targets={} rounds={inputs} invariant_violations={violations} panics={}",
        TARGETS.len(),
        panics.len() - violations
    );
    assert!(
        panics.is_empty(),
        "fuzz targets panicked:\n{}",
        panics.join("\n")
    );
}
