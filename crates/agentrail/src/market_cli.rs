//! `agentrail market …`: listings, discovery, requests for quotes,
//! negotiation, escrowed tasks, disputes and licences from the command
//! line. Every change is a signed command; every read is the node's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentrail_client::Client;
use agentrail_core::command::Split;
use agentrail_core::market::{
    AcceptQuote, ApproveTask, CounterQuote, DeliverTask, Discovery, DisputeTask, LicenseDataset,
    ListingKind, ListingRef, Pricing, PublishListing, RequestQuotes, ResolveDispute, RfqQuery,
    SubmitQuote,
};
use agentrail_core::{Amount, Command, Did};
use agentrail_sim::kit::sha256_hex;
use anyhow::Context;
use clap::Subcommand;

use crate::cli_support::{
    did_of, fresh_key, parse_duration_s, read_key, report, spending_account, summarize,
};

#[derive(Debug, Subcommand)]
pub enum MarketCommand {
    /// Discovery: live listings, ranked by reputation, then price.
    Listings {
        #[arg(long)]
        capability: Option<String>,
        /// Leave out listings priced above this (or on quote).
        #[arg(long)]
        max_price: Option<Amount>,
        #[arg(long)]
        min_reputation: Option<u16>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// Publish a listing (agent card); a stake is reserved from the provider.
    Publish {
        #[arg(long)]
        key: PathBuf,
        /// The listing's id (default: random).
        #[arg(long)]
        id: Option<String>,
        /// The providing account (default: the signer's own, or its agent's for a session).
        #[arg(long)]
        provider: Option<Did>,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// A capability tag; repeat for more.
        #[arg(long = "capability", required = true)]
        capabilities: Vec<String>,
        /// per-call, per-task or on-quote.
        #[arg(long, default_value = "per-task")]
        pricing: String,
        /// The price (not for on-quote).
        #[arg(long)]
        price: Option<Amount>,
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long)]
        stake: Option<Amount>,
        /// A dataset: the file whose SHA-256 the listing names.
        #[arg(long)]
        dataset: Option<PathBuf>,
        /// Revenue share as DID=BPS; repeat (the shares sum to 10000).
        #[arg(long = "share")]
        shares: Vec<String>,
    },
    /// Withdraw a listing; its stake returns.
    Withdraw {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        listing: String,
    },
    /// Ask for quotes.
    Rfq {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        id: Option<String>,
        /// The paying account (default: the signer's own, or its agent's for a session).
        #[arg(long)]
        from: Option<Did>,
        #[arg(long)]
        capability: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        budget: Amount,
        /// Delivery deadline after acceptance: 2h, 1d, 3600s.
        #[arg(long, default_value = "1d")]
        deadline: String,
        #[arg(long, default_value = "1d")]
        review_window: String,
        #[arg(long)]
        arbiter: Option<Did>,
        #[arg(long)]
        validator: Option<Did>,
    },
    /// Open requests for quotes (for providers looking for work).
    Rfqs {
        #[arg(long)]
        capability: Option<String>,
        /// Only those this provider may quote on.
        #[arg(long)]
        provider: Option<Did>,
    },
    /// A request for quotes and its quotes.
    ShowRfq { id: String },
    /// Quote on a request.
    Quote {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        rfq: String,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        provider: Option<Did>,
        #[arg(long)]
        listing: Option<String>,
        #[arg(long)]
        price: Amount,
    },
    /// A counter-offer, by either side in turn.
    Counter {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        quote: String,
        #[arg(long)]
        price: Amount,
    },
    /// Buyer: accept the provider's latest offer; the price goes into escrow.
    Accept {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        quote: String,
        #[arg(long)]
        task: Option<String>,
    },
    /// Provider: deliver a result file with a contribution manifest.
    Deliver {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        task: String,
        #[arg(long)]
        result: PathBuf,
        #[arg(long)]
        uri: Option<String>,
        /// A contributor as DID=BPS; repeat (the shares sum to 10000).
        #[arg(long = "share")]
        shares: Vec<String>,
    },
    /// Buyer or validator: approve a delivery, naming the result received.
    Approve {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        task: String,
        #[arg(long)]
        result: PathBuf,
    },
    /// Buyer: dispute a delivery before the arbiter named in the terms.
    Dispute {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        task: String,
        #[arg(long)]
        reason: String,
    },
    /// Arbiter: rule on a disputed task (the provider's share in bps).
    Resolve {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        task: String,
        #[arg(long)]
        provider_bps: u16,
    },
    /// Buy one licensed use of a dataset listing.
    License {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        listing: String,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        from: Option<Did>,
    },
    /// Where a task stands.
    Task { id: String },
    /// An identity's listings as an A2A Agent Card (JSON).
    Card { did: Did },
    #[command(flatten)]
    Economy(crate::economy_cli::EconomyCommand),
}

/// `DID=BPS` pairs into splits.
pub(crate) fn parse_shares(shares: &[String]) -> anyhow::Result<Vec<Split>> {
    shares
        .iter()
        .map(|share| {
            let (did, bps) = share
                .split_once('=')
                .with_context(|| format!("{share:?} is not DID=BPS"))?;
            Ok(Split {
                to: did
                    .parse()
                    .with_context(|| format!("{did:?} is not a did:key"))?,
                bps: bps
                    .parse()
                    .with_context(|| format!("{bps:?} is not a number of basis points"))?,
            })
        })
        .collect()
}

pub(crate) fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn pricing(model: &str, price: Option<Amount>) -> anyhow::Result<Pricing> {
    let priced = |price: Option<Amount>| price.context("--price is needed for this pricing");
    Ok(match model {
        "per-call" => Pricing::PerCall {
            price: priced(price)?,
        },
        "per-task" => Pricing::PerTask {
            price: priced(price)?,
        },
        "on-quote" => Pricing::OnQuote,
        other => anyhow::bail!("--pricing is per-call, per-task or on-quote, not {other:?}"),
    })
}

/// Signs and submits the command built for the signer's account (its own,
/// or its agent's for a session) and reports the answer.
pub(crate) async fn submit(
    client: &Client,
    key: &Path,
    json: bool,
    command: impl FnOnce(Did) -> anyhow::Result<Command>,
) -> anyhow::Result<ExitCode> {
    let key = read_key(key)?;
    let account = spending_account(client, did_of(&key)).await?;
    let command = command(account)?;
    report(json, client.submit(&key, &command).await, summarize)
}

pub(crate) fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

pub async fn run(command: MarketCommand, client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        MarketCommand::Listings {
            capability,
            max_price,
            min_reputation,
            limit,
            offset,
        } => {
            let query = Discovery {
                capability,
                kind: None,
                max_price,
                min_reputation,
                offset,
                limit,
            };
            report(json, client.listings(&query).await, |page| {
                let mut lines = vec![format!("{} listing(s)", page.total)];
                for found in &page.listings {
                    let listing = &found.listing.listing;
                    lines.push(format!(
                        "{:<24} reputation {:>4}  {:<10} {} [{}] by {}",
                        listing.listing_id,
                        found.reputation,
                        listing
                            .pricing
                            .price()
                            .map_or("on quote".into(), |p| format!(
                                "{} USD",
                                p.to_decimal_string()
                            )),
                        listing.name,
                        listing.capabilities.join(", "),
                        listing.provider
                    ));
                }
                lines.join("\n")
            })
        }
        MarketCommand::Publish {
            key,
            id,
            provider,
            name,
            description,
            capabilities,
            pricing: model,
            price,
            endpoint,
            stake,
            dataset,
            shares,
        } => {
            submit(client, &key, json, |signer| {
                let content_hash = match &dataset {
                    Some(path) => Some(sha256_hex(&read_file(path)?)),
                    None => None,
                };
                Ok(Command::PublishListing(PublishListing {
                    listing_id: id.unwrap_or_else(fresh_key),
                    provider: provider.unwrap_or(signer),
                    kind: if dataset.is_some() {
                        ListingKind::Dataset
                    } else {
                        ListingKind::Service
                    },
                    name,
                    description,
                    capabilities,
                    pricing: pricing(&model, price)?,
                    endpoint,
                    revenue_share: parse_shares(&shares)?,
                    stake,
                    content_hash,
                }))
            })
            .await
        }
        MarketCommand::Withdraw { key, listing } => {
            submit(client, &key, json, |_| {
                Ok(Command::WithdrawListing(ListingRef {
                    listing_id: listing,
                }))
            })
            .await
        }
        MarketCommand::Rfq {
            key,
            id,
            from,
            capability,
            description,
            budget,
            deadline,
            review_window,
            arbiter,
            validator,
        } => {
            submit(client, &key, json, |signer| {
                Ok(Command::RequestQuotes(RequestQuotes {
                    rfq_id: id.unwrap_or_else(fresh_key),
                    from: from.unwrap_or(signer),
                    capability,
                    description,
                    budget_max: budget,
                    deadline_s: parse_duration_s(&deadline)?,
                    review_window_s: Some(parse_duration_s(&review_window)?),
                    arbiter,
                    validator,
                    invited: Vec::new(),
                    expires_at: None,
                }))
            })
            .await
        }
        MarketCommand::Rfqs {
            capability,
            provider,
        } => {
            let query = RfqQuery {
                capability,
                provider,
                offset: 0,
                limit: 0,
            };
            report(json, client.rfqs(&query).await, |page| {
                let mut lines = vec![format!("{} open request(s)", page.total)];
                for rfq in &page.rfqs {
                    lines.push(format!(
                        "{:<24} {:<12} budget {} USD, {} quote(s), by {}",
                        rfq.request.rfq_id,
                        rfq.request.capability,
                        rfq.request.budget_max.to_decimal_string(),
                        rfq.quotes.len(),
                        rfq.request.from
                    ));
                }
                lines.join("\n")
            })
        }
        MarketCommand::ShowRfq { id } => report(json, client.rfq(&id).await, pretty),
        MarketCommand::Quote {
            key,
            rfq,
            id,
            provider,
            listing,
            price,
        } => {
            submit(client, &key, json, |signer| {
                Ok(Command::SubmitQuote(SubmitQuote {
                    quote_id: id.unwrap_or_else(fresh_key),
                    rfq_id: rfq,
                    provider: provider.unwrap_or(signer),
                    listing_id: listing,
                    price,
                    note: None,
                }))
            })
            .await
        }
        MarketCommand::Counter { key, quote, price } => {
            submit(client, &key, json, |_| {
                Ok(Command::CounterQuote(CounterQuote {
                    quote_id: quote,
                    price,
                }))
            })
            .await
        }
        MarketCommand::Accept { key, quote, task } => {
            submit(client, &key, json, |_| {
                Ok(Command::AcceptQuote(AcceptQuote {
                    quote_id: quote,
                    task_id: task.unwrap_or_else(fresh_key),
                }))
            })
            .await
        }
        MarketCommand::Deliver {
            key,
            task,
            result,
            uri,
            shares,
        } => {
            submit(client, &key, json, |_| {
                Ok(Command::DeliverTask(DeliverTask {
                    task_id: task,
                    result_hash: sha256_hex(&read_file(&result)?),
                    uri,
                    manifest: parse_shares(&shares)?,
                }))
            })
            .await
        }
        MarketCommand::Approve { key, task, result } => {
            submit(client, &key, json, |_| {
                Ok(Command::ApproveTask(ApproveTask {
                    task_id: task,
                    result_hash: sha256_hex(&read_file(&result)?),
                }))
            })
            .await
        }
        MarketCommand::Dispute { key, task, reason } => {
            submit(client, &key, json, |_| {
                Ok(Command::DisputeTask(DisputeTask {
                    task_id: task,
                    reason,
                }))
            })
            .await
        }
        MarketCommand::Resolve {
            key,
            task,
            provider_bps,
        } => {
            submit(client, &key, json, |_| {
                Ok(Command::ResolveDispute(ResolveDispute {
                    task_id: task,
                    provider_bps,
                }))
            })
            .await
        }
        MarketCommand::License {
            key,
            listing,
            id,
            from,
        } => {
            submit(client, &key, json, |signer| {
                Ok(Command::LicenseDataset(LicenseDataset {
                    license_id: id.unwrap_or_else(fresh_key),
                    listing_id: listing,
                    from: from.unwrap_or(signer),
                }))
            })
            .await
        }
        MarketCommand::Task { id } => report(json, client.task(&id).await, pretty),
        MarketCommand::Card { did } => report(json, client.agent_card(&did).await, pretty),
        MarketCommand::Economy(command) => crate::economy_cli::run(command, client, json).await,
    }
}
