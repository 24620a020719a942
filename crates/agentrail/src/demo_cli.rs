//! `agentrail demo`: runs the scenarios of `agentrail-demo` and prints
//! progress on stderr and the summary (or one JSON line) on stdout.

use std::io::Write;
use std::process::ExitCode;

use agentrail_demo::{DemoOptions, DemoReport, Progress};

pub fn run(calls: usize, chain: bool, json: bool) -> anyhow::Result<ExitCode> {
    let progress = |event: Progress| {
        let mut err = std::io::stderr().lock();
        let _ = match event {
            Progress::NodeStarted { url } => writeln!(
                err,
                "node started on {url} (temporary data directory, dev mode)"
            ),
            Progress::ScenarioStarted { index, count, name } => {
                write!(err, "[{}/{count}] {name} … ", index + 1).and_then(|()| err.flush())
            }
            Progress::ScenarioEnded { report, .. } => match &report.error {
                None => writeln!(err, "ok ({:.2} s)", report.seconds),
                Some(error) => writeln!(err, "FAILED: {error}"),
            },
            Progress::ChainStarted { rpc, vault } => writeln!(
                err,
                "anvil on {rpc}; the node follows vault {vault} ({} confirmations)",
                agentrail_demo::CHAIN_CONFIRMATIONS
            ),
            Progress::Verifying { entries } => {
                writeln!(
                    err,
                    "verifying {entries} receipts offline against the pinned log key …"
                )
            }
        };
    };
    let report = agentrail_demo::run(DemoOptions { calls, chain }, &progress)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_summary(report: &DemoReport) {
    println!();
    for scenario in &report.scenarios {
        let verdict = if scenario.passed { "ok" } else { "FAILED" };
        println!("{} — {verdict} ({:.2} s)", scenario.name, scenario.seconds);
        for figure in &scenario.figures {
            println!("    {:<44} {}", figure.label, figure.value);
        }
        if let Some(error) = &scenario.error {
            println!("    error: {error}");
        }
    }
    println!("\nfinal balances");
    for line in &report.balances {
        println!(
            "    {:<16} available {:>14}  held {:>10}",
            line.name,
            line.available.to_decimal_string(),
            line.held.to_decimal_string()
        );
    }
    println!("\nreputations (0-1000, version 1)");
    for line in &report.reputations {
        println!(
            "    {:<16} {:>4}   paid tasks {}, licences {}, disputes lost {}",
            line.name, line.score, line.tasks_paid, line.licences_sold, line.disputes_lost
        );
    }
    println!(
        "\n{} journal entries, {} receipts verified offline; money {} ({} USD deposited, {} USD withdrawn)",
        report.journal_entries,
        report.receipts_verified,
        if report.money_conserved {
            "conserved"
        } else {
            "NOT conserved"
        },
        report.deposited.to_decimal_string(),
        report.withdrawn.to_decimal_string()
    );
    for error in &report.errors {
        println!("error: {error}");
    }
    println!(
        "{} in {:.1} s",
        if report.passed {
            "every expectation held"
        } else {
            "SOME EXPECTATIONS FAILED"
        },
        report.seconds
    );
}
