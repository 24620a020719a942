//! `agentrail channel …`: payment channels from the command line. The payer
//! opens, tops up, signs vouchers (`pay`, offline but for the channel's
//! facts) and starts a close; the payee collects and closes.

use std::path::PathBuf;
use std::process::ExitCode;

use agentrail_client::Client;
use agentrail_core::channel::{ChannelId, Voucher, VoucherTerms, network_hash};
use agentrail_core::command::{ChannelRef, CollectChannel, OpenChannel, TopUpChannel};
use agentrail_core::{Amount, Command, Did, Timestamp};
use anyhow::Context;
use clap::Subcommand;

use crate::cli_support::{
    did_of, fresh_key, now, parse_duration_s, read_key, report, spending_account, summarize,
};

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Payer: reserve a deposit for a payee; prints the channel id.
    Open {
        /// Key of the payer: a principal, an agent or a session.
        #[arg(long)]
        key: PathBuf,
        /// The payee.
        #[arg(long)]
        to: Did,
        #[arg(long)]
        deposit: Amount,
        /// The account to pay from (default: the signer's own, or its agent's for a session).
        #[arg(long)]
        from: Option<Did>,
        /// The key that will sign vouchers (default: the signer).
        #[arg(long)]
        voucher_key: Option<Did>,
        /// How long the channel stays open: 30d, 12h, 45m or 3600s.
        #[arg(long, default_value = "30d")]
        expires_in: String,
        /// How long the payee keeps to collect after the payer starts a close.
        #[arg(long, default_value = "1d")]
        dispute_window: String,
        #[arg(long)]
        category: Option<String>,
        /// Names the channel with the payer and payee (default: random);
        /// opening again with it never reserves twice.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Payer: add to a channel's deposit.
    TopUp {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        channel: ChannelId,
        #[arg(long)]
        amount: Amount,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Payer: sign a voucher for the running total of one sub-channel and
    /// print it (JSON), for the payee. No ledger command.
    Pay {
        /// The channel's voucher key.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        channel: ChannelId,
        /// Total paid so far on this sub-channel (not the increment).
        #[arg(long)]
        total: Amount,
        /// Must rise with every voucher of the sub-channel.
        #[arg(long)]
        nonce: u64,
        #[arg(long, default_value = "cli")]
        sub_channel: String,
        /// Write the voucher to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Payee: redeem vouchers (files written by `pay`); the channel stays open.
    Collect {
        #[arg(long)]
        key: PathBuf,
        #[arg(long = "voucher", required = true)]
        vouchers: Vec<PathBuf>,
        /// Redeem a sub-channel only up to this total (what was charged),
        /// not its voucher's whole total: `SUB_CHANNEL=USD`, repeatable.
        #[arg(long = "up-to", value_name = "SUB_CHANNEL=USD", value_parser = parse_up_to)]
        up_to: Vec<(String, Amount)>,
        /// Split what is collected by this listing's revenue share (one of
        /// the payee's listings), in the same command.
        #[arg(long)]
        listing: Option<String>,
    },
    /// The payee closes at once (redeeming any vouchers given); the payer
    /// starts a close, which ends after the dispute window.
    Close {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        channel: ChannelId,
        #[arg(long = "voucher")]
        vouchers: Vec<PathBuf>,
        /// As for `collect`: redeem a sub-channel only up to this total.
        #[arg(long = "up-to", value_name = "SUB_CHANNEL=USD", value_parser = parse_up_to)]
        up_to: Vec<(String, Amount)>,
        /// As for `collect`: split what is redeemed by this listing's
        /// revenue share (the payee's close).
        #[arg(long)]
        listing: Option<String>,
    },
    /// Where a channel stands.
    Show { channel: ChannelId },
}

fn parse_up_to(text: &str) -> Result<(String, Amount), String> {
    let (sub_channel, amount) = text
        .split_once('=')
        .ok_or("expected SUB_CHANNEL=USD, for example cli=0.25")?;
    let amount = amount.parse::<Amount>().map_err(|e| e.to_string())?;
    Ok((sub_channel.to_owned(), amount))
}

fn read_voucher(path: &PathBuf) -> anyhow::Result<Voucher> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the voucher {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a voucher", path.display()))
}

pub async fn run(command: ChannelCommand, client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        ChannelCommand::Open {
            key,
            to,
            deposit,
            from,
            voucher_key,
            expires_in,
            dispute_window,
            category,
            idempotency_key,
        } => {
            let key = read_key(&key)?;
            let from = match from {
                Some(from) => from,
                None => spending_account(client, did_of(&key)).await?,
            };
            let idempotency_key = idempotency_key.unwrap_or_else(fresh_key);
            let channel_id = ChannelId::derive(&from, &to, &idempotency_key);
            let command = Command::OpenChannel(OpenChannel {
                from,
                payee: to,
                deposit,
                voucher_key,
                expires_at: Some(Timestamp(now().0 + parse_duration_s(&expires_in)?)),
                dispute_window_s: Some(parse_duration_s(&dispute_window)?),
                category,
                idempotency_key,
            });
            report(json, client.submit(&key, &command).await, |response| {
                format!("channel {channel_id}\n{}", summarize(response))
            })
        }
        ChannelCommand::TopUp {
            key,
            channel,
            amount,
            idempotency_key,
        } => {
            let command = Command::TopUpChannel(TopUpChannel {
                channel_id: channel,
                amount,
                idempotency_key: idempotency_key.unwrap_or_else(fresh_key),
            });
            report(
                json,
                client.submit(&read_key(&key)?, &command).await,
                summarize,
            )
        }
        ChannelCommand::Pay {
            key,
            channel,
            total,
            nonce,
            sub_channel,
            out,
        } => {
            let key = read_key(&key)?;
            let facts = client.channel(&channel).await?;
            anyhow::ensure!(
                facts.voucher_key == did_of(&key),
                "this key does not sign the channel's vouchers ({} does)",
                facts.voucher_key
            );
            anyhow::ensure!(
                total <= facts.deposit,
                "{} is more than the channel's deposit of {}",
                total.to_decimal_string(),
                facts.deposit.to_decimal_string()
            );
            let network = network_hash(&client.health().await?.network);
            let voucher = VoucherTerms {
                channel_id: channel,
                epoch: 0,
                sub_channel_id: sub_channel,
                accumulated_amount: total,
                nonce,
                payee_id: facts.payee,
            }
            .sign(&key, &network);
            let text = serde_json::to_string_pretty(&voucher)?;
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => println!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        ChannelCommand::Collect {
            key,
            vouchers,
            up_to,
            listing,
        } => {
            let vouchers = vouchers
                .iter()
                .map(read_voucher)
                .collect::<anyhow::Result<Vec<_>>>()?;
            let channel_id = vouchers[0].channel_id;
            let command = Command::CollectChannel(CollectChannel {
                channel_id,
                vouchers,
                amounts: up_to.into_iter().collect(),
                listing_id: listing,
            });
            report(
                json,
                client.submit(&read_key(&key)?, &command).await,
                summarize,
            )
        }
        ChannelCommand::Close {
            key,
            channel,
            vouchers,
            up_to,
            listing,
        } => {
            let key = read_key(&key)?;
            let facts = client.channel(&channel).await?;
            let vouchers = vouchers
                .iter()
                .map(read_voucher)
                .collect::<anyhow::Result<Vec<_>>>()?;
            let command = if did_of(&key) == facts.payee {
                Command::CloseChannel(CollectChannel {
                    channel_id: channel,
                    vouchers,
                    amounts: up_to.into_iter().collect(),
                    listing_id: listing,
                })
            } else {
                anyhow::ensure!(
                    vouchers.is_empty() && up_to.is_empty() && listing.is_none(),
                    "only the payee redeems vouchers; the payer's close takes none"
                );
                Command::StartChannelClose(ChannelRef {
                    channel_id: channel,
                })
            };
            report(json, client.submit(&key, &command).await, summarize)
        }
        ChannelCommand::Show { channel } => report(json, client.channel(&channel).await, |view| {
            let mut lines = vec![
                format!("channel      {}", view.channel_id),
                format!("from         {}", view.from),
                format!("payee        {}", view.payee),
                format!("voucher key  {}", view.voucher_key),
                format!("deposit      {}", view.deposit.to_decimal_string()),
                format!("collected    {}", view.collected.to_decimal_string()),
                format!("status       {:?}", view.status),
                format!("expires at   {}", view.expires_at.0),
            ];
            for (sub, redeemed) in &view.sub_channels {
                lines.push(format!(
                    "  {sub}: nonce {}, total {}",
                    redeemed.nonce,
                    redeemed.amount.to_decimal_string()
                ));
            }
            lines.join("\n")
        }),
    }
}

/// What `agentrail pay-url` fetches, and how it may pay.
#[derive(Debug)]
pub struct PayUrl {
    pub url: String,
    pub method: String,
    pub data: String,
    pub from: Option<Did>,
    pub keep_open: bool,
    pub evm_key: Option<std::path::PathBuf>,
    /// `eip155:<chain id>:<token address>`, each.
    pub exact_assets: Vec<String>,
}

/// `agentrail pay-url`: one request through the paying client.
pub async fn pay_url(
    client: &Client,
    key: &std::path::Path,
    request: PayUrl,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let PayUrl {
        url,
        method,
        data,
        from,
        keep_open,
        evm_key,
        exact_assets,
    } = request;
    let url = url.as_str();
    let key = read_key(key)?;
    let from = match from {
        Some(from) => from,
        None => spending_account(client, did_of(&key)).await?,
    };
    let method: agentrail_pay::payer::Method = method
        .parse()
        .with_context(|| format!("{method:?} is not an HTTP method"))?;
    let mut payer =
        agentrail_pay::payer::Payer::new(client.clone(), key, from, Default::default()).await?;
    if let Some(path) = evm_key {
        let mut assets = Vec::new();
        for asset in &exact_assets {
            let (network, token) = asset
                .rsplit_once(':')
                .filter(|(network, _)| network.starts_with("eip155:"))
                .with_context(|| format!("{asset:?} is not eip155:<chain id>:<token address>"))?;
            let token = token
                .parse()
                .with_context(|| format!("{token:?} is not an address"))?;
            assets.push((network.to_owned(), token));
        }
        payer = payer.with_exact_key(agentrail_chain::EvmKey::read(&path)?, assets);
    }
    let result = payer.fetch(method, url, data.into_bytes()).await;
    if !keep_open {
        payer.close_all().await?;
    }
    let paid = result?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "status": paid.status.as_u16(),
                "paid": paid.paid,
                "settlement": paid.settlement,
                "body": String::from_utf8_lossy(&paid.body),
            })
        );
    } else {
        eprintln!("{} (paid {})", paid.status, paid.paid.to_decimal_string());
        println!("{}", String::from_utf8_lossy(&paid.body));
    }
    Ok(if paid.status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
