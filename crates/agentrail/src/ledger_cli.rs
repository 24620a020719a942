//! The CLI commands that talk to a node through `agentrail-client`.
//! People type decimals (`--amount 2.5`); `--json` prints what the node
//! answered. A refused command exits with status 1 and prints its code.

use std::path::PathBuf;
use std::process::ExitCode;

use agentrail_client::{Client, generate_key};
use agentrail_core::command::{
    ClaimDeposits, Decision, Deposit, RegisterGrant, RegisterPrincipal, Revoke, Transfer, Withdraw,
};
use agentrail_core::grant::{GRANT_VERSION, Grant, Limits, Role};
use agentrail_core::{Amount, Command, Did, Timestamp};
use agentrail_wire::keyfile;
use anyhow::Context;
use clap::{Args, Subcommand};
use ed25519_dalek::SigningKey;

use crate::cli_support::{
    did_of, fresh_key, now, parse_duration_s, read_key, report, spending_account, summarize,
};

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Manage keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Principals (people and organisations).
    Principal {
        #[command(subcommand)]
        command: PrincipalCommand,
    },
    /// Agents acting under a principal's mandate.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Short-lived session keys under an agent's mandate.
    Session {
        #[command(subcommand)]
        command: SessionCommand,
    },
    /// Revoke a grant (and every grant below it).
    Revoke {
        /// Key of the issuer or of the principal above.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        subject: Did,
    },
    /// Dev mode: fund an account from the node's faucet.
    Faucet {
        #[arg(long)]
        to: Did,
        #[arg(long)]
        amount: Amount,
    },
    /// Operator: deposit money into an account.
    Deposit {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        to: Did,
        #[arg(long)]
        amount: Amount,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Principal: take money out of the ledger.
    Withdraw {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        from: Option<Did>,
        #[arg(long)]
        amount: Amount,
        #[arg(long)]
        idempotency_key: Option<String>,
        /// The EVM address the vault pays, on a ledger bound to a chain
        /// (required there; refused elsewhere).
        #[arg(long)]
        to: Option<agentrail_chain::alloy_primitives::Address>,
    },
    /// Take what vault deposits kept for this key into its account (an
    /// agent's key, whose deposits wait for its own signature).
    ClaimDeposits {
        /// The key the deposits name.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Pay another account.
    Transfer {
        /// Key of the payer: a principal, an agent or a session.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        to: Did,
        #[arg(long)]
        amount: Amount,
        /// The account to pay from (default: the signer's own, or its agent's for a session).
        #[arg(long)]
        from: Option<Did>,
        #[arg(long)]
        memo: Option<String>,
        #[arg(long)]
        category: Option<String>,
        /// Retrying with the same key never pays twice (default: random).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Principal: approve a payment waiting above a threshold.
    Approve {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        id: u64,
    },
    /// Principal: decline a payment waiting above a threshold.
    Decline {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        id: u64,
    },
    /// Available and held money of an account.
    Balance { did: Did },
    /// Journal entries that concern an identity, newest first.
    History {
        did: Did,
        #[arg(long)]
        before: Option<u64>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Owner chain, rights, remaining budgets and history of an identity.
    Passport { did: Did },
    /// Payment channels: open, top-up, pay (sign a voucher), collect, close, show.
    Channel {
        #[command(subcommand)]
        command: crate::channel_cli::ChannelCommand,
    },
    /// Markets: listings, discovery, requests for quotes, offers, escrowed
    /// tasks, disputes, licences, agent cards.
    Market {
        #[command(subcommand)]
        command: crate::market_cli::MarketCommand,
    },
    /// Fetch a URL, paying through a channel if it answers 402 (x402), or
    /// with x402's `exact` scheme from --evm-key when it offers no channel
    /// on this ledger.
    PayUrl {
        url: String,
        /// Key of the payer: a principal, an agent or a session.
        #[arg(long)]
        key: PathBuf,
        #[arg(long, default_value = "GET")]
        method: String,
        /// The request body.
        #[arg(long, default_value = "")]
        data: String,
        /// The account to pay from (default: the signer's own, or its agent's for a session).
        #[arg(long)]
        from: Option<Did>,
        /// Leave the channel open (default: start closing it when done).
        #[arg(long)]
        keep_open: bool,
        /// An EVM key file that pays `exact` (EIP-3009) requirements, within
        /// the mandate of --key (each payment is charged to it first).
        #[arg(long, requires = "exact_asset")]
        evm_key: Option<PathBuf>,
        /// A token --evm-key pays in, as `eip155:<chain id>:<address>` (a
        /// USD stablecoin of 6 decimals); repeatable.
        #[arg(long, value_name = "CAIP-19")]
        exact_asset: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new Ed25519 key and print its did:key.
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum PrincipalCommand {
    Register {
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Grant an agent a mandate.
    Register {
        #[arg(long)]
        principal_key: PathBuf,
        #[arg(long)]
        agent_key: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Grant a session key a mandate narrower than its agent's (limits not
    /// given are the agent's).
    Issue {
        #[arg(long)]
        agent_key: PathBuf,
        #[arg(long)]
        session_key: PathBuf,
        #[command(flatten)]
        limits: SessionLimitArgs,
    },
}

#[derive(Debug, Args)]
pub struct LimitArgs {
    #[arg(long)]
    max_per_payment: Amount,
    #[arg(long)]
    daily_budget: Amount,
    #[arg(long)]
    total_budget: Option<Amount>,
    #[arg(long = "allow-payee")]
    allow_payees: Vec<Did>,
    #[arg(long = "deny-payee")]
    deny_payees: Vec<Did>,
    #[arg(long = "category")]
    categories: Vec<String>,
    #[arg(long)]
    approval_threshold: Option<Amount>,
    /// Payments that take a UTC day's spending above this wait for approval.
    #[arg(long)]
    daily_approval_threshold: Option<Amount>,
    /// How long the grant lasts: 30d, 12h, 45m or 3600s.
    #[arg(long, default_value = "30d")]
    expires_in: String,
}

#[derive(Debug, Args)]
pub struct SessionLimitArgs {
    #[arg(long)]
    max_per_payment: Option<Amount>,
    #[arg(long)]
    daily_budget: Option<Amount>,
    #[arg(long)]
    total_budget: Option<Amount>,
    #[arg(long = "allow-payee")]
    allow_payees: Vec<Did>,
    #[arg(long = "category")]
    categories: Vec<String>,
    #[arg(long)]
    approval_threshold: Option<Amount>,
    #[arg(long)]
    daily_approval_threshold: Option<Amount>,
    #[arg(long, default_value = "1d")]
    expires_in: String,
}

fn grant(
    issuer: &SigningKey,
    subject: Did,
    role: Role,
    limits: Limits,
    expires_in: &str,
) -> anyhow::Result<Command> {
    let not_before = now();
    let expires_at = Timestamp(not_before.0 + parse_duration_s(expires_in)?);
    let signed = Grant {
        version: GRANT_VERSION,
        issuer: did_of(issuer),
        subject,
        role,
        limits,
        not_before,
        expires_at,
        nonce: agentrail_client::random_nonce(),
    }
    .sign(issuer)?;
    let register = RegisterGrant { grant: signed };
    Ok(match role {
        Role::Agent => Command::RegisterAgent(register),
        Role::Session => Command::IssueSession(register),
    })
}

pub async fn run(command: LedgerCommand, client: Client, json: bool) -> anyhow::Result<ExitCode> {
    let submit = |key: SigningKey, command: Command| {
        let client = client.clone();
        async move { client.submit(&key, &command).await }
    };
    match command {
        LedgerCommand::Channel { command } => crate::channel_cli::run(command, &client, json).await,
        LedgerCommand::Market { command } => crate::market_cli::run(command, &client, json).await,
        LedgerCommand::PayUrl {
            url,
            key,
            method,
            data,
            from,
            keep_open,
            evm_key,
            exact_asset,
        } => {
            let request = crate::channel_cli::PayUrl {
                url,
                method,
                data,
                from,
                keep_open,
                evm_key,
                exact_assets: exact_asset,
            };
            crate::channel_cli::pay_url(&client, &key, request, json).await
        }
        LedgerCommand::Key {
            command: KeyCommand::Generate { out },
        } => {
            let key = generate_key();
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&out)
                .with_context(|| {
                    format!("cannot create {} (it must not exist yet)", out.display())
                })?;
            file.write_all(keyfile::encode(&key).as_bytes())?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "did": did_of(&key), "file": out })
                );
            } else {
                println!("{}", did_of(&key));
            }
            Ok(ExitCode::SUCCESS)
        }
        LedgerCommand::Principal {
            command: PrincipalCommand::Register { key },
        } => {
            let key = read_key(&key)?;
            let command = Command::RegisterPrincipal(RegisterPrincipal {
                principal: did_of(&key),
            });
            report(json, submit(key, command).await, summarize)
        }
        LedgerCommand::Agent {
            command:
                AgentCommand::Register {
                    principal_key,
                    agent_key,
                    limits,
                },
        } => {
            let principal = read_key(&principal_key)?;
            let agent = did_of(&read_key(&agent_key)?);
            let grant_limits = Limits {
                max_per_payment: limits.max_per_payment,
                daily_budget: limits.daily_budget,
                total_budget: limits.total_budget,
                allowed_payees: (!limits.allow_payees.is_empty()).then_some(limits.allow_payees),
                denied_payees: limits.deny_payees,
                allowed_categories: (!limits.categories.is_empty()).then_some(limits.categories),
                approval_threshold: limits.approval_threshold,
                daily_approval_threshold: limits.daily_approval_threshold,
            };
            let command = grant(
                &principal,
                agent,
                Role::Agent,
                grant_limits,
                &limits.expires_in,
            )?;
            report(json, submit(principal, command).await, summarize)
        }
        LedgerCommand::Session {
            command:
                SessionCommand::Issue {
                    agent_key,
                    session_key,
                    limits,
                },
        } => {
            let agent = read_key(&agent_key)?;
            let session = did_of(&read_key(&session_key)?);
            let parent = client
                .grant(&did_of(&agent))
                .await?
                .grant
                .grant()
                .limits
                .clone();
            let grant_limits = Limits {
                max_per_payment: limits.max_per_payment.unwrap_or(parent.max_per_payment),
                daily_budget: limits.daily_budget.unwrap_or(parent.daily_budget),
                total_budget: limits.total_budget.or(parent.total_budget),
                allowed_payees: if limits.allow_payees.is_empty() {
                    parent.allowed_payees
                } else {
                    Some(limits.allow_payees)
                },
                denied_payees: parent.denied_payees,
                allowed_categories: if limits.categories.is_empty() {
                    parent.allowed_categories
                } else {
                    Some(limits.categories)
                },
                approval_threshold: limits.approval_threshold.or(parent.approval_threshold),
                daily_approval_threshold: limits
                    .daily_approval_threshold
                    .or(parent.daily_approval_threshold),
            };
            let command = grant(
                &agent,
                session,
                Role::Session,
                grant_limits,
                &limits.expires_in,
            )?;
            report(json, submit(agent, command).await, summarize)
        }
        LedgerCommand::Revoke { key, subject } => report(
            json,
            submit(read_key(&key)?, Command::Revoke(Revoke { subject })).await,
            summarize,
        ),
        LedgerCommand::Faucet { to, amount } => {
            report(json, client.faucet(to, amount).await, summarize)
        }
        LedgerCommand::Deposit {
            key,
            to,
            amount,
            idempotency_key,
        } => {
            let command = Command::Deposit(Deposit {
                to,
                amount,
                idempotency_key: idempotency_key.unwrap_or_else(fresh_key),
                chain: None,
            });
            report(json, submit(read_key(&key)?, command).await, summarize)
        }
        LedgerCommand::Withdraw {
            key,
            from,
            amount,
            idempotency_key,
            to,
        } => {
            let key = read_key(&key)?;
            let from = from.unwrap_or_else(|| did_of(&key));
            let command = Command::Withdraw(Withdraw {
                from,
                amount,
                idempotency_key: idempotency_key.unwrap_or_else(fresh_key),
                to: to.map(agentrail_chain::evm_address),
            });
            report(json, submit(key, command).await, summarize)
        }
        LedgerCommand::ClaimDeposits {
            key,
            idempotency_key,
        } => {
            let command = Command::ClaimDeposits(ClaimDeposits {
                idempotency_key: idempotency_key.unwrap_or_else(fresh_key),
            });
            report(json, submit(read_key(&key)?, command).await, summarize)
        }
        LedgerCommand::Transfer {
            key,
            to,
            amount,
            from,
            memo,
            category,
            idempotency_key,
        } => {
            let key = read_key(&key)?;
            let from = match from {
                Some(from) => from,
                None => spending_account(&client, did_of(&key)).await?,
            };
            let command = Command::Transfer(Transfer {
                from,
                to,
                amount,
                memo,
                category,
                idempotency_key: idempotency_key.unwrap_or_else(fresh_key),
            });
            report(json, submit(key, command).await, summarize)
        }
        LedgerCommand::Approve { key, id } => report(
            json,
            submit(
                read_key(&key)?,
                Command::Approve(Decision { approval_id: id }),
            )
            .await,
            summarize,
        ),
        LedgerCommand::Decline { key, id } => report(
            json,
            submit(
                read_key(&key)?,
                Command::Decline(Decision { approval_id: id }),
            )
            .await,
            summarize,
        ),
        LedgerCommand::Balance { did } => report(json, client.balance(&did).await, |b| {
            format!("{}: available {}, held {}", b.did, b.available, b.held)
        }),
        LedgerCommand::History { did, before, limit } => {
            report(json, client.history(&did, before, limit).await, |page| {
                let mut lines: Vec<String> = page
                    .items
                    .iter()
                    .map(|item| {
                        format!(
                            "#{} t={} by {}: {}",
                            item.index,
                            item.time.0,
                            item.signer,
                            serde_json::to_string(&item.events).unwrap_or_default()
                        )
                    })
                    .collect();
                if let Some(next) = page.next_before {
                    lines.push(format!("(more: --before {next})"));
                }
                lines.join("\n")
            })
        }
        LedgerCommand::Passport { did } => {
            report(json, client.passport(&did).await, |passport| {
                let mut lines = vec![format!("{} ({:?})", passport.did, passport.kind)];
                lines.push(format!(
                    "owner chain: {}",
                    passport
                        .owner_chain
                        .iter()
                        .map(Did::to_string)
                        .collect::<Vec<_>>()
                        .join(" <- ")
                ));
                if let Some(grant) = &passport.grant {
                    let limits = &grant.grant.grant().limits;
                    lines.push(format!(
                    "mandate: {} per payment, {} a day, total {}; spent today {}, in all {}; {}",
                    limits.max_per_payment,
                    limits.daily_budget,
                    limits.total_budget.map_or("unlimited".to_owned(), |t| t.to_string()),
                    grant.spent_today,
                    grant.spent_total,
                    if grant.active { "active" } else { "not active" }
                ));
                    lines.push(format!(
                        "remaining: {} today, {} in total",
                        grant.remaining_today,
                        grant
                            .remaining_total
                            .map_or("unlimited".to_owned(), |t| t.to_string())
                    ));
                    lines.push(format!(
                        "worst-case exposure: {} ({:?})",
                        grant.exposure.amount, grant.exposure.bound
                    ));
                }
                if let Some(balance) = &passport.balance {
                    lines.push(format!(
                        "balance: available {}, held {}",
                        balance.available, balance.held
                    ));
                }
                for view in &passport.listings {
                    let listing = &view.listing;
                    lines.push(format!(
                        "listing {} ({:?}, {:?}): {} [{}] {}, stake held {}, {} open task(s)",
                        listing.listing_id,
                        listing.kind,
                        view.status,
                        listing.name,
                        listing.capabilities.join(", "),
                        listing
                            .pricing
                            .price()
                            .map_or("on quote".to_owned(), |price| format!(
                                "{} USD",
                                price.to_decimal_string()
                            )),
                        view.stake_held.to_decimal_string(),
                        view.open_tasks
                    ));
                }
                if let Some(reputation) = &passport.reputation {
                    lines.push(format!(
                        "reputation: {} / 1000 (v{}): quality {}, counterparties {}, volume {}, age {}, penalty -{}; {} paid task(s), {} licence(s), disputes won {} lost {}, {} refund(s), {} distinct counterparties, {} USD received",
                        reputation.score,
                        reputation.version,
                        reputation.quality_points,
                        reputation.counterparty_points,
                        reputation.volume_points,
                        reputation.age_points,
                        reputation.penalty_points,
                        reputation.tasks_paid,
                        reputation.licences_sold,
                        reputation.disputes_won,
                        reputation.disputes_lost,
                        reputation.refunds,
                        reputation.distinct_counterparties,
                        reputation.volume.to_decimal_string()
                    ));
                }
                lines.push(format!(
                    "recent journal entries (receipts: agentrail receipt N): {}",
                    passport
                        .recent
                        .iter()
                        .map(|i| format!("#{}", i.index))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
                lines.join("\n")
            })
        }
    }
}
