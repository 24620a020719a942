//! `agentrail market order|deliver-leg|approve-leg|decline-leg|dispute-leg|
//! resolve-leg|bounty|submit|score|subscribe|collect-subscription|cancel …`:
//! orders over several legs (and milestones), bounties paid by score and
//! speed, and subscriptions. Every change is a signed command; every read
//! is the node's.

use std::path::PathBuf;
use std::process::ExitCode;

use agentrail_client::Client;
use agentrail_core::economy::{
    ApproveLeg, CancelSubscription, CollectSubscription, DeliverLeg, DisputeLeg, LegRef, OrderLeg,
    Period, PlaceOrder, PostBounty, ResolveLeg, ScoreContribution, SubmitContribution, Subscribe,
};
use agentrail_core::{Amount, Command, Did, Timestamp};
use agentrail_sim::kit::sha256_hex;
use anyhow::Context;
use clap::Subcommand;

use crate::cli_support::{fresh_key, now, parse_duration_s, report};
use crate::market_cli::{parse_shares, pretty, read_file, submit};

#[derive(Debug, Subcommand)]
pub enum EconomyCommand {
    /// Buyer: bind legs (several providers, or one provider's milestones)
    /// into one escrowed order; the total is held at once.
    Order {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        id: Option<String>,
        /// The paying account (default: the signer's, or its agent's).
        #[arg(long)]
        from: Option<Did>,
        /// A leg as PROVIDER=PRICE@DEADLINE[:DESCRIPTION], e.g.
        /// did:key:z…=60@1d:freight; repeat, in order (1 to 16).
        #[arg(long = "leg", required = true)]
        legs: Vec<String>,
        /// Pay nothing until every leg is approved; refund everything if one fails.
        #[arg(long)]
        atomic: bool,
        #[arg(long, default_value = "1d")]
        review_window: String,
        #[arg(long)]
        arbiter: Option<Did>,
        #[arg(long)]
        category: Option<String>,
    },
    /// Provider: deliver a leg, naming the result's file.
    DeliverLeg {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        order: String,
        #[arg(long)]
        leg: u8,
        #[arg(long)]
        result: PathBuf,
        /// A contributor as DID=BPS; repeat (the shares sum to 10000).
        #[arg(long = "share")]
        shares: Vec<String>,
    },
    /// Buyer: approve a delivered leg, naming the result received.
    ApproveLeg {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        order: String,
        #[arg(long)]
        leg: u8,
        #[arg(long)]
        result: PathBuf,
    },
    /// Provider: decline a leg not delivered yet (the order unwinds).
    DeclineLeg {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        order: String,
        #[arg(long)]
        leg: u8,
    },
    /// Buyer: dispute a delivered leg before the order's arbiter.
    DisputeLeg {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        order: String,
        #[arg(long)]
        leg: u8,
        #[arg(long)]
        reason: String,
    },
    /// Arbiter: rule on a disputed leg (the provider's share in bps).
    ResolveLeg {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        order: String,
        #[arg(long)]
        leg: u8,
        #[arg(long)]
        provider_bps: u16,
    },
    /// Where an order and each of its legs stand.
    ShowOrder { id: String },
    /// Lead: post a bounty; price × contributions is held at once.
    Bounty {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        from: Option<Did>,
        /// What one contribution earns at a perfect score, submitted in time.
        #[arg(long)]
        price: Amount,
        #[arg(long)]
        contributions: u32,
        #[arg(long)]
        validator: Did,
        /// Full pay for results submitted within this (e.g. 2h).
        #[arg(long)]
        full_pay: String,
        /// Submissions end after this, at zero pay (e.g. 1d).
        #[arg(long)]
        close: String,
        #[arg(long, default_value = "1d")]
        scoring_window: String,
        #[arg(long)]
        category: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Contributor: submit a result to a bounty.
    Submit {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        bounty: String,
        #[arg(long)]
        id: Option<String>,
        /// The contributing account (default: the signer's, or its agent's).
        #[arg(long)]
        contributor: Option<Did>,
        #[arg(long)]
        result: PathBuf,
        #[arg(long = "share")]
        shares: Vec<String>,
    },
    /// Validator: score a contribution (basis points); it is paid at once.
    Score {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        bounty: String,
        #[arg(long)]
        contribution: String,
        #[arg(long)]
        result: PathBuf,
        #[arg(long)]
        score_bps: u16,
    },
    /// A bounty, its contributions, their speed, scores and payouts.
    ShowBounty { id: String },
    /// Payer: let a payee collect at most AMOUNT per day, week or month.
    Subscribe {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        from: Option<Did>,
        #[arg(long)]
        payee: Did,
        #[arg(long)]
        amount: Amount,
        /// day, week or month (UTC calendar months).
        #[arg(long, default_value = "month")]
        period: String,
        /// Stop collecting after this (e.g. 365d); open-ended if absent.
        #[arg(long)]
        ends_in: Option<String>,
        #[arg(long)]
        category: Option<String>,
    },
    /// Payee: collect this period's money.
    CollectSubscription {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        subscription: String,
        #[arg(long)]
        amount: Amount,
    },
    /// Payer or payee: end a subscription.
    Cancel {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        subscription: String,
    },
    /// A subscription and what it collected.
    ShowSubscription { id: String },
}

/// `PROVIDER=PRICE@DEADLINE[:DESCRIPTION]` into a leg.
fn parse_leg(text: &str) -> anyhow::Result<OrderLeg> {
    let shape = || format!("{text:?} is not PROVIDER=PRICE@DEADLINE[:DESCRIPTION]");
    let (provider, rest) = text.split_once('=').with_context(shape)?;
    let (price, rest) = rest.split_once('@').with_context(shape)?;
    let (deadline, description) = rest.split_once(':').unwrap_or((rest, ""));
    Ok(OrderLeg {
        provider: provider
            .parse()
            .with_context(|| format!("{provider:?} is not a did:key"))?,
        price: price
            .parse()
            .with_context(|| format!("{price:?} is not an amount"))?,
        deadline_s: parse_duration_s(deadline)?,
        description: description.to_owned(),
    })
}

fn parse_period(text: &str) -> anyhow::Result<Period> {
    Ok(match text {
        "day" => Period::Day,
        "week" => Period::Week,
        "month" => Period::Month,
        other => anyhow::bail!("--period is day, week or month, not {other:?}"),
    })
}

fn leg_ref(order: String, leg: u8) -> LegRef {
    LegRef {
        order_id: order,
        leg,
    }
}

pub async fn run(command: EconomyCommand, client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    use EconomyCommand as E;
    match command {
        E::Order {
            key,
            id,
            from,
            legs,
            atomic,
            review_window,
            arbiter,
            category,
        } => {
            submit(client, &key, json, |signer| {
                Ok(Command::PlaceOrder(PlaceOrder {
                    order_id: id.unwrap_or_else(fresh_key),
                    from: from.unwrap_or(signer),
                    legs: legs
                        .iter()
                        .map(|leg| parse_leg(leg))
                        .collect::<Result<_, _>>()?,
                    atomic,
                    review_window_s: Some(parse_duration_s(&review_window)?),
                    arbiter,
                    category,
                }))
            })
            .await
        }
        E::DeliverLeg {
            key,
            order,
            leg,
            result,
            shares,
        } => {
            submit(client, &key, json, |_| {
                Ok(Command::DeliverLeg(DeliverLeg {
                    order_id: order,
                    leg,
                    result_hash: sha256_hex(&read_file(&result)?),
                    manifest: parse_shares(&shares)?,
                }))
            })
            .await
        }
        E::ApproveLeg {
            key,
            order,
            leg,
            result,
        } => {
            submit(client, &key, json, |_| {
                Ok(Command::ApproveLeg(ApproveLeg {
                    order_id: order,
                    leg,
                    result_hash: sha256_hex(&read_file(&result)?),
                }))
            })
            .await
        }
        E::DeclineLeg { key, order, leg } => {
            submit(client, &key, json, |_| {
                Ok(Command::DeclineLeg(leg_ref(order, leg)))
            })
            .await
        }
        E::DisputeLeg {
            key,
            order,
            leg,
            reason,
        } => {
            submit(client, &key, json, |_| {
                Ok(Command::DisputeLeg(DisputeLeg {
                    order_id: order,
                    leg,
                    reason,
                }))
            })
            .await
        }
        E::ResolveLeg {
            key,
            order,
            leg,
            provider_bps,
        } => {
            submit(client, &key, json, |_| {
                Ok(Command::ResolveLeg(ResolveLeg {
                    order_id: order,
                    leg,
                    provider_bps,
                }))
            })
            .await
        }
        E::ShowOrder { id } => report(json, client.order(&id).await, pretty),
        E::Bounty {
            key,
            id,
            from,
            price,
            contributions,
            validator,
            full_pay,
            close,
            scoring_window,
            category,
            description,
        } => {
            submit(client, &key, json, |signer| {
                Ok(Command::PostBounty(PostBounty {
                    bounty_id: id.unwrap_or_else(fresh_key),
                    from: from.unwrap_or(signer),
                    price,
                    contributions,
                    validator,
                    full_pay_s: parse_duration_s(&full_pay)?,
                    close_s: parse_duration_s(&close)?,
                    scoring_window_s: Some(parse_duration_s(&scoring_window)?),
                    category,
                    description,
                }))
            })
            .await
        }
        E::Submit {
            key,
            bounty,
            id,
            contributor,
            result,
            shares,
        } => {
            submit(client, &key, json, |signer| {
                Ok(Command::SubmitContribution(SubmitContribution {
                    bounty_id: bounty,
                    contribution_id: id.unwrap_or_else(fresh_key),
                    contributor: contributor.unwrap_or(signer),
                    result_hash: sha256_hex(&read_file(&result)?),
                    manifest: parse_shares(&shares)?,
                }))
            })
            .await
        }
        E::Score {
            key,
            bounty,
            contribution,
            result,
            score_bps,
        } => {
            submit(client, &key, json, |_| {
                Ok(Command::ScoreContribution(ScoreContribution {
                    bounty_id: bounty,
                    contribution_id: contribution,
                    result_hash: sha256_hex(&read_file(&result)?),
                    score_bps,
                }))
            })
            .await
        }
        E::ShowBounty { id } => report(json, client.bounty(&id).await, pretty),
        E::Subscribe {
            key,
            id,
            from,
            payee,
            amount,
            period,
            ends_in,
            category,
        } => {
            submit(client, &key, json, |signer| {
                let ends_at = match &ends_in {
                    Some(text) => Some(Timestamp(
                        now()
                            .0
                            .checked_add(parse_duration_s(text)?)
                            .context("--ends-in is too far")?,
                    )),
                    None => None,
                };
                Ok(Command::Subscribe(Subscribe {
                    subscription_id: id.unwrap_or_else(fresh_key),
                    from: from.unwrap_or(signer),
                    payee,
                    amount,
                    period: parse_period(&period)?,
                    ends_at,
                    category,
                }))
            })
            .await
        }
        E::CollectSubscription {
            key,
            subscription,
            amount,
        } => {
            submit(client, &key, json, |_| {
                Ok(Command::CollectSubscription(CollectSubscription {
                    subscription_id: subscription,
                    amount,
                }))
            })
            .await
        }
        E::Cancel { key, subscription } => {
            submit(client, &key, json, |_| {
                Ok(Command::CancelSubscription(CancelSubscription {
                    subscription_id: subscription,
                }))
            })
            .await
        }
        E::ShowSubscription { id } => report(json, client.subscription(&id).await, pretty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legs_read_as_provider_price_deadline_and_description() {
        let did = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
        let leg = parse_leg(&format!("{did}=60.5@2d:freight: sea")).unwrap();
        assert_eq!(leg.price, Amount::from_atomic(60_500_000));
        assert_eq!(leg.deadline_s, 2 * 86_400);
        assert_eq!(leg.description, "freight: sea");
        assert!(parse_leg(&format!("{did}=60")).is_err());
        assert!(parse_period("year").is_err());
    }
}
