//! The paying client: an agent's HTTP client that answers `402 Payment
//! Required` with channel vouchers, within its mandate.
//!
//! On a 402 it reads the `channel` requirement for this ledger's network,
//! checks the price against the agent's mandate, opens a channel to the
//! payee if it has none (deposit: [`PayerOptions::deposit_calls`] times the
//! price, within the per-payment limit), and retries with a voucher. Each
//! request in flight uses its own sub-channel (a stream), so concurrent
//! requests never reuse a nonce; within a stream the nonce and the total
//! rise with every voucher. The server's proposal for the next voucher is
//! followed, never beyond the price the 402 advertised. An exhausted channel
//! is topped up once per request.
//!
//! One call never pays more than the price its server advertises. When a
//! server answers `payment_insufficient` (its credit for the stream is short
//! of the price), the payer asks the terms again: it pays the difference up
//! to the price advertised now (terms that went stale), and refuses to pay
//! anything more when the price did not rise (a server demanding more than
//! it advertised).
//!
//! A channel the payer opens expires no later than the signer's grants (a
//! session's channel cannot outlive the session).

use std::collections::HashMap;
use std::sync::Mutex;

use agentrail_client::Client;
use agentrail_core::channel::{ChannelId, VoucherTerms, network_hash};
use agentrail_core::command::{ChannelRef, ChargeMandate, OpenChannel, TopUpChannel};
use agentrail_core::hashchain::{ChainTerms, HashChain};
use agentrail_core::{Amount, Command, Did, Timestamp};
use ed25519_dalek::SigningKey;
pub use reqwest::{Method, StatusCode};

use agentrail_evm::EvmKey;
use agentrail_evm::alloy_primitives::{Address, U256};
use agentrail_evm::eip3009::{self, Authorization, TokenDomain};

use crate::x402::{
    self, ChainPayload, ChainStart, ChannelPayload, ExactAuthorization, ExactPayload,
    PaymentPayload, PaymentRequired, PaymentRequirements, SettlementResponse,
};

/// How the payer opens channels.
#[derive(Clone, Copy, Debug)]
pub struct PayerOptions {
    /// A new channel's deposit, in calls at the advertised price (capped by
    /// the mandate's per-payment limit).
    pub deposit_calls: u64,
    /// Concurrent streams (sub-channels) per channel.
    pub streams_max: usize,
    /// Links of a hash chain committed at once where a server offers
    /// hash-chain payments (capped by its `maxLength`): calls priced per
    /// call then cost a hash, not a signature. The chain's calls are
    /// signed ahead as credit, which the payee earns only link by link.
    /// 0 pays every call with a signed voucher.
    pub chain_length: u32,
}

impl Default for PayerOptions {
    fn default() -> PayerOptions {
        PayerOptions {
            deposit_calls: 10_000,
            streams_max: 64,
            chain_length: 1_024,
        }
    }
}

/// Why a paid request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayError {
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the node: {0}")]
    Node(#[from] agentrail_client::ClientError),
    #[error("the server's payment terms are unusable: {0}")]
    Terms(String),
    #[error("{price} per call is above the mandate's per-payment limit of {limit}")]
    OverMandate { price: Amount, limit: Amount },
    #[error("the server refused the payment: {0}")]
    Refused(String),
    #[error("too many requests in flight on one channel")]
    Busy,
}

/// One sub-channel's counters.
#[derive(Clone, Debug)]
struct Stream {
    id: String,
    nonce: u64,
    total: Amount,
    /// The server's proposal for this stream's next total, and the
    /// resource it was made for.
    proposal: Option<(String, Amount)>,
    /// The hash chain committed on this stream, if any.
    chain: Option<StreamChain>,
}

/// A stream's committed hash chain and how far it was revealed.
#[derive(Clone, Debug)]
struct StreamChain {
    chain: HashChain,
    /// Links revealed (the next call reveals link `revealed + 1`).
    revealed: u32,
    /// What one link pays.
    unit: Amount,
}

#[derive(Debug)]
struct Channel {
    id: ChannelId,
    deposit: Amount,
    idle: Vec<Stream>,
    /// Streams in use or idle.
    live: usize,
    /// The number of the next new stream.
    next_stream: u64,
    /// The sum of the streams' totals: what vouchers (and the credit of
    /// hash chains) claim of the deposit.
    claimed: Amount,
}

/// An answer to a paid (or free) request.
#[derive(Debug)]
pub struct Paid {
    pub status: StatusCode,
    pub body: Vec<u8>,
    /// What this request paid (zero for a free one).
    pub paid: Amount,
    pub settlement: Option<SettlementResponse>,
}

/// An agent's paying HTTP client. Share it behind an `Arc`.
#[derive(Debug)]
pub struct Payer {
    http: reqwest::Client,
    node: Client,
    key: SigningKey,
    signer: Did,
    from: Did,
    network: String,
    options: PayerOptions,
    /// The mandate's per-payment limit, if the signer has one.
    per_payment: Option<Amount>,
    /// When the first of the signer's grants (and its agent's) ends.
    grant_ends_at: Option<Timestamp>,
    channels: tokio::sync::Mutex<HashMap<Did, Channel>>,
    spent: Mutex<Amount>,
    /// The payment terms of URLs paid before.
    terms: Mutex<HashMap<String, PaymentRequired>>,
    /// The EVM key that pays x402's `exact` scheme, when given, and the
    /// tokens it pays in (`eip155:<chain id>` and the token's address).
    exact_key: Option<EvmKey>,
    exact_assets: Vec<(String, Address)>,
    /// Whether the signer acts under a grant (an agent or a session), whose
    /// mandate each `exact` payment is charged to first.
    mandated: bool,
    /// Pay `exact` even where a channel is offered.
    prefer_exact: bool,
}

/// A chain signs its links ahead as credit: at most this fraction (1/n)
/// of its channel's unclaimed deposit, so that a few concurrent streams'
/// chains fit in it (the payee refuses credit beyond the deposit).
const CHAIN_DEPOSIT_SHARE: u128 = 8;

/// How a call fared on a stream's hash chain.
enum LinkPaid {
    Paid(Box<Paid>),
    /// Sent, and failed for another reason than the chain.
    Failed(PayError),
    /// The payee refused the chain: commit to a new one.
    Refused,
    /// The stream has no chain for this call.
    None,
}

/// URLs whose terms are remembered; the memory is emptied when full.
const TERMS_KEPT_MAX: usize = 1_024;

impl Payer {
    /// A payer signing with `key` and paying from `from` (its own account,
    /// or its agent's for a session key).
    pub async fn new(
        node: Client,
        key: SigningKey,
        from: Did,
        options: PayerOptions,
    ) -> Result<Payer, PayError> {
        let signer = Did::from_verifying_key(&key.verifying_key());
        let network = node.health().await?.network;
        let (mut per_payment, mut grant_ends_at) = (None, None::<Timestamp>);
        let mut mandated = false;
        // The signer's grant, then the one above it (a session's agent).
        let mut subject = signer;
        for _ in 0..2 {
            let grant = match node.grant(&subject).await {
                Ok(status) => status.grant.grant().clone(),
                Err(error) if error.code() == Some("unknown_grant") => break,
                Err(error) => return Err(error.into()),
            };
            per_payment.get_or_insert(grant.limits.max_per_payment);
            mandated = true;
            grant_ends_at =
                Some(grant_ends_at.map_or(grant.expires_at, |t| t.min(grant.expires_at)));
            subject = grant.issuer;
        }
        Ok(Payer {
            // The node client's TLS roots (a CA file given to it included).
            http: node.http().clone(),
            node,
            key,
            signer,
            from,
            network,
            options,
            per_payment,
            grant_ends_at,
            channels: tokio::sync::Mutex::new(HashMap::new()),
            spent: Mutex::new(Amount::ZERO),
            terms: Mutex::new(HashMap::new()),
            exact_key: None,
            exact_assets: Vec::new(),
            mandated,
            prefer_exact: false,
        })
    }

    /// Pays x402's `exact` scheme on EVM chains from `key` too, when a
    /// server offers no channel on this ledger, in the tokens of `assets`
    /// only (`eip155:<chain id>` and the token's address): USD stablecoins
    /// of 6 decimals, whose atomic units the mandate counts as its own. A
    /// server asking another token is refused, so that no token of other
    /// units or value is paid under a limit meant in USD.
    pub fn with_exact_key(mut self, key: EvmKey, assets: Vec<(String, Address)>) -> Payer {
        self.exact_key = Some(key);
        self.exact_assets = assets;
        self
    }

    /// Pays `exact` (with the key of [`Payer::with_exact_key`]) even where
    /// the server offers a channel too: for a one-off call, a transfer
    /// locks no deposit.
    pub fn prefer_exact(mut self, prefer: bool) -> Payer {
        self.prefer_exact = prefer;
        self
    }

    /// Everything paid through this payer so far.
    pub fn spent(&self) -> Amount {
        *self.spent.lock().expect("spent lock")
    }

    /// Fetches `url`, paying through a channel if the server asks.
    pub async fn fetch(&self, method: Method, url: &str, body: Vec<u8>) -> Result<Paid, PayError> {
        // A URL whose terms are known is paid at once: one round trip.
        let known = self.terms.lock().expect("terms lock").get(url).cloned();
        let required = match known {
            Some(required) => required,
            None => match self.ask_terms(&method, url, &body).await? {
                Ok(required) => required,
                Err(free) => return Ok(free),
            },
        };
        // Channel first; `exact` when the server offers no channel here.
        if (self.prefer_exact || self.pick(&required).is_none())
            && let Some(key) = &self.exact_key
            && let Some(terms) = required
                .accepts
                .iter()
                .find(|a| exact_payable(a) && self.pays_in(a))
        {
            return self
                .pay_exact(key, &method, url, body, &required, terms)
                .await;
        }
        let terms = self.channel_terms(&required)?;
        let payee: Did = terms
            .pay_to
            .parse()
            .map_err(|_| PayError::Terms("payTo is not a did:key".into()))?;
        let advertised = self.price_of(&terms)?;
        // What the next voucher adds: a call's price, then at most the
        // difference to a price the server advertised since.
        let mut price = advertised;
        // Hash chains, where the server offers them on a route priced per
        // call: the stream's chain pays, or a new one is committed.
        let chain_offer = match &terms.extra.hash_chain {
            Some(offer)
                if offer.version == 1
                    && offer.max_length > 0
                    && self.options.chain_length > 0
                    && terms.extra.pricing.as_deref().unwrap_or("per_call") == "per_call" =>
            {
                Some(offer.max_length.min(self.options.chain_length))
            }
            _ => None,
        };
        let (channel_id, mut stream) = self.checkout(payee, price, chain_offer.is_some()).await?;
        let (mut topped_up, mut paid_more) = (false, false);
        // Money given in earlier attempts of this call.
        let mut paid_before = Amount::ZERO;
        // Whether the payee refused this call's chain (a new one is then
        // committed once), and whether this call pays with vouchers only.
        let (mut chain_refused, mut chains_off) = (false, false);
        // The credit a chain being committed claimed of the deposit ahead
        // of its answer; given back when the commitment is not taken.
        let mut pre_claimed = Amount::ZERO;
        let result = loop {
            if !pre_claimed.is_zero() {
                self.unclaim(payee, std::mem::replace(&mut pre_claimed, Amount::ZERO))
                    .await;
            }
            if chain_offer.is_some() && !chain_refused && !paid_more && !chains_off {
                match self
                    .pay_link(
                        &method,
                        url,
                        &body,
                        (&required, &terms),
                        &mut stream,
                        channel_id,
                        price,
                    )
                    .await
                {
                    LinkPaid::Paid(paid) => break Ok(*paid),
                    LinkPaid::Failed(error) => {
                        self.retire(payee).await;
                        return Err(error);
                    }
                    // The chain is gone (the payee restarted) or used up:
                    // a new commitment, once, in a fresh stream (the
                    // credit a chain left is spent by no other call).
                    LinkPaid::Refused => {
                        chain_refused = true;
                        self.retire(payee).await;
                        stream = self.checkout(payee, price, chain_offer.is_some()).await?.1;
                    }
                    LinkPaid::None => {}
                }
            }
            // The server's proposal, when it was made for this resource and
            // asks no more than a call's price; the price otherwise.
            let full = stream.total.checked_add(price).unwrap_or(Amount::MAX);
            // A new chain's voucher signs its links ahead as credit.
            let chain = match chain_offer {
                Some(length) if !paid_more && !chains_off => {
                    match self.claim_chain(payee, price, length).await {
                        Some((length, credit)) => {
                            pre_claimed = credit;
                            let mut seed = [0u8; 32];
                            getrandom::fill(&mut seed)
                                .expect("the operating system provides randomness");
                            stream
                                .total
                                .checked_add(credit)
                                .map(|total| (HashChain::from_seed(seed, length), total))
                        }
                        None => None,
                    }
                }
                _ => None,
            };
            let total = match &stream.proposal {
                Some((resource, proposed))
                    if *resource == required.resource.url
                        && *proposed > stream.total
                        && *proposed <= full =>
                {
                    *proposed
                }
                _ => full,
            };
            let total = chain.as_ref().map_or(total, |(_, total)| *total);
            let voucher_terms = VoucherTerms {
                channel_id,
                epoch: 0,
                sub_channel_id: stream.id.clone(),
                accumulated_amount: total,
                nonce: stream.nonce + 1,
                payee_id: payee,
            };
            let network = network_hash(&self.network);
            let hash_chain = chain.as_ref().map(|(chain, _)| ChainStart {
                commitment: ChainTerms {
                    tip: chain.tip(),
                    unit: price,
                    length: chain.length(),
                }
                .sign(&voucher_terms, &self.key, &network),
                link: chain.link(1).expect("a chain has a first link"),
            });
            let voucher = voucher_terms.sign(&self.key, &network);
            let payload = PaymentPayload::answering(
                &required,
                &terms,
                &ChannelPayload {
                    version: 1,
                    payer_id: self.signer.to_string(),
                    client_tx_ref: None,
                    receipt: voucher,
                    hash_chain,
                },
                None,
            );
            let sent = self
                .http
                .request(method.clone(), url)
                .header(x402::PAYMENT_SIGNATURE, x402::encode_header(&payload))
                .body(body.clone())
                .send()
                .await;
            let answer = match sent {
                Ok(response) => {
                    let settlement =
                        header::<SettlementResponse>(&response, x402::PAYMENT_RESPONSE);
                    let status = response.status();
                    response
                        .bytes()
                        .await
                        .map(|bytes| (settlement, status, bytes.to_vec()))
                }
                Err(error) => Err(error),
            };
            let (settlement, status, bytes) = match answer {
                Ok((Ok(settlement), status, bytes)) => (settlement, status, bytes),
                Ok((Err(error), _, _)) => break Err(error),
                Err(error) => {
                    // Whether the server kept this voucher is unknown: the
                    // stream's counters can no longer be trusted, so the
                    // stream is retired and the next call opens another.
                    self.retire(payee).await;
                    return Err(error.into());
                }
            };
            match settlement {
                Some(settlement) if settlement.success => {
                    // A chain's voucher is credit: its first link paid one
                    // call's price. Its credit was claimed ahead.
                    let paid = match &chain {
                        Some(_) => {
                            pre_claimed = Amount::ZERO;
                            price
                        }
                        None => {
                            let paid = total.checked_sub(stream.total).unwrap_or(Amount::ZERO);
                            self.claim(payee, paid).await;
                            paid
                        }
                    };
                    stream.chain = chain.map(|(chain, _)| StreamChain {
                        chain,
                        revealed: 1,
                        unit: price,
                    });
                    stream.nonce += 1;
                    stream.total = total;
                    stream.proposal = settlement
                        .channel
                        .as_ref()
                        .map(|c| (required.resource.url.clone(), c.proposal.accumulated_amount));
                    let mut spent = self.spent.lock().expect("spent lock");
                    *spent = spent.checked_add(paid).unwrap_or(Amount::MAX);
                    break Ok(Paid {
                        status,
                        body: bytes,
                        paid: paid.checked_add(paid_before).unwrap_or(Amount::MAX),
                        settlement: Some(settlement),
                    });
                }
                // A chain the server does not take (another price than the
                // one advertised, say): this call pays with a voucher, and
                // the stale terms are handled as for vouchers.
                Some(settlement)
                    if chain.is_some()
                        && settlement
                            .error_reason
                            .as_deref()
                            .is_some_and(|code| code.starts_with("chain_")) =>
                {
                    chains_off = true;
                    // Credit a chain left on the stream is not spent by
                    // vouchers: this call goes on in a fresh stream.
                    if stream.chain.take().is_some() {
                        self.retire(payee).await;
                        stream = self.checkout(payee, price, chain_offer.is_some()).await?.1;
                    }
                }
                Some(settlement)
                    if settlement.error_reason.as_deref() == Some("channel_exhausted")
                        && !topped_up =>
                {
                    topped_up = true;
                    if let Err(error) = self.top_up(payee, channel_id, price).await {
                        break Err(error);
                    }
                }
                Some(settlement)
                    if settlement.error_reason.as_deref() == Some("payment_insufficient")
                        && !paid_more =>
                {
                    // The server kept the voucher's money but its credit
                    // for this stream needs more: count the voucher as
                    // given, and pay more only up to a price the server
                    // advertises now.
                    paid_more = true;
                    // A chain's voucher is credit, not payment.
                    let paid = match &chain {
                        Some(_) => Amount::ZERO,
                        None => total.checked_sub(stream.total).unwrap_or(Amount::ZERO),
                    };
                    self.claim(
                        payee,
                        total.checked_sub(stream.total).unwrap_or(Amount::ZERO),
                    )
                    .await;
                    stream.nonce += 1;
                    stream.total = total;
                    stream.proposal = None;
                    paid_before = paid_before.checked_add(paid).unwrap_or(Amount::MAX);
                    {
                        let mut spent = self.spent.lock().expect("spent lock");
                        *spent = spent.checked_add(paid).unwrap_or(Amount::MAX);
                    }
                    match self.fresh_price(&method, url, &body, payee).await {
                        Ok(fresh) if fresh > paid_before => {
                            price = fresh.checked_sub(paid_before).expect("checked above");
                        }
                        Ok(fresh) => {
                            break Err(PayError::Refused(format!(
                                "payment_insufficient: the server asks more than the {fresh} it advertises, and {paid_before} was paid"
                            )));
                        }
                        Err(error) => break Err(error),
                    }
                }
                Some(settlement) => {
                    // The server did not take this voucher: the stream's
                    // counters stay where they were, and its terms are asked
                    // again next time.
                    self.terms.lock().expect("terms lock").remove(url);
                    break Err(PayError::Refused(
                        settlement
                            .error_reason
                            .unwrap_or_else(|| status.to_string()),
                    ));
                }
                None => {
                    break Err(PayError::Refused(format!(
                        "{status} without PAYMENT-RESPONSE"
                    )));
                }
            }
        };
        if !pre_claimed.is_zero() {
            self.unclaim(payee, pre_claimed).await;
        }
        self.checkin(payee, stream).await;
        result
    }

    /// Pays one call with the next link of the stream's chain, when it has
    /// one for `price` with links left.
    #[allow(clippy::too_many_arguments)]
    async fn pay_link(
        &self,
        method: &Method,
        url: &str,
        body: &[u8],
        (required, terms): (&PaymentRequired, &PaymentRequirements),
        stream: &mut Stream,
        channel_id: ChannelId,
        price: Amount,
    ) -> LinkPaid {
        let Some(chain) = stream.chain.as_mut() else {
            return LinkPaid::None;
        };
        let index = chain.revealed + 1;
        let (Some(link), true) = (chain.chain.link(index), chain.unit == price) else {
            stream.chain = None;
            return LinkPaid::None;
        };
        let mut payload = PaymentPayload::answering(
            required,
            terms,
            &ChainPayload {
                version: 1,
                payer_id: self.signer.to_string(),
                channel_id,
                sub_channel_id: stream.id.clone(),
                index,
                link,
            },
            None,
        );
        // The resource is optional in x402 v2; a link's header stays short.
        payload.resource = None;
        let sent = self
            .http
            .request(method.clone(), url)
            .header(x402::PAYMENT_SIGNATURE, x402::encode_header(&payload))
            .body(body.to_vec())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            // Whether the server took the link is unknown: the stream is
            // retired with it.
            Err(error) => return LinkPaid::Failed(error.into()),
        };
        let settlement = header::<SettlementResponse>(&response, x402::PAYMENT_RESPONSE);
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes.to_vec(),
            Err(error) => return LinkPaid::Failed(error.into()),
        };
        match settlement {
            Ok(Some(settlement)) if settlement.success => {
                chain.revealed = index;
                let mut spent = self.spent.lock().expect("spent lock");
                *spent = spent.checked_add(price).unwrap_or(Amount::MAX);
                LinkPaid::Paid(Box::new(Paid {
                    status,
                    body: bytes,
                    paid: price,
                    settlement: Some(settlement),
                }))
            }
            // The payee lost or used up the chain, or took another link:
            // the link was not spent; a new commitment pays the call.
            Ok(Some(settlement))
                if settlement
                    .error_reason
                    .as_deref()
                    .is_some_and(|code| code.starts_with("chain_")) =>
            {
                stream.chain = None;
                LinkPaid::Refused
            }
            Ok(Some(settlement)) => LinkPaid::Failed(PayError::Refused(
                settlement
                    .error_reason
                    .unwrap_or_else(|| status.to_string()),
            )),
            Ok(None) => LinkPaid::Failed(PayError::Refused(format!(
                "{status} without PAYMENT-RESPONSE"
            ))),
            Err(error) => LinkPaid::Failed(error),
        }
    }

    /// Claims ahead the credit of a new chain of at most `length` links at
    /// `price` on the channel to `payee`: its length and credit, or `None`
    /// when not one link fits.
    async fn claim_chain(&self, payee: Did, price: Amount, length: u32) -> Option<(u32, Amount)> {
        let mut channels = self.channels.lock().await;
        let channel = channels.get_mut(&payee)?;
        let available = channel.deposit.saturating_sub(channel.claimed);
        let fits = (available.atomic() / price.atomic().max(1) / CHAIN_DEPOSIT_SHARE)
            .min(u128::from(length));
        let credit = price.checked_mul(fits)?;
        if fits == 0 {
            return None;
        }
        channel.claimed = channel.claimed.checked_add(credit)?;
        Some((fits as u32, credit))
    }

    /// Gives back credit claimed ahead for a chain the payee did not take.
    async fn unclaim(&self, payee: Did, credit: Amount) {
        if let Some(channel) = self.channels.lock().await.get_mut(&payee) {
            channel.claimed = channel.claimed.saturating_sub(credit);
        }
    }

    /// Counts `more` of the channel to `payee` as claimed by its streams.
    async fn claim(&self, payee: Did, more: Amount) {
        if let Some(channel) = self.channels.lock().await.get_mut(&payee) {
            channel.claimed = channel.claimed.checked_add(more).unwrap_or(Amount::MAX);
        }
    }

    /// What one call may cost under `terms`, within the mandate.
    fn price_of(&self, terms: &PaymentRequirements) -> Result<Amount, PayError> {
        let price = match terms.extra.pricing.as_deref().unwrap_or("per_call") {
            "per_call" => terms.amount,
            "per_unit" => terms.extra.max_amount_per_call.ok_or_else(|| {
                PayError::Terms("a per-unit price without maxAmountPerCall".into())
            })?,
            other => return Err(PayError::Terms(format!("unknown pricing {other:?}"))),
        };
        if let Some(limit) = self.per_payment
            && price > limit
        {
            return Err(PayError::OverMandate { price, limit });
        }
        Ok(price)
    }

    /// The channel requirement for this ledger in a 402's terms.
    fn channel_terms(&self, required: &PaymentRequired) -> Result<PaymentRequirements, PayError> {
        required
            .accepts
            .iter()
            .find(|a| {
                a.scheme == x402::SCHEME && a.network == self.network && a.asset == x402::ASSET
            })
            .cloned()
            .ok_or_else(|| PayError::Terms("no channel payment on this ledger is accepted".into()))
    }

    /// Asks `url` its terms again, unpaid, and returns the price of a call
    /// to `payee` it advertises now (remembered for the next call).
    async fn fresh_price(
        &self,
        method: &Method,
        url: &str,
        body: &[u8],
        payee: Did,
    ) -> Result<Amount, PayError> {
        let required = match self.ask_terms(method, url, body).await? {
            Ok(required) => required,
            Err(answer) => {
                return Err(PayError::Refused(format!(
                    "payment_insufficient, then {} to an unpaid request",
                    answer.status
                )));
            }
        };
        let terms = self.channel_terms(&required)?;
        if terms.pay_to != payee.to_string() {
            return Err(PayError::Terms("the server changed its payee".into()));
        }
        self.price_of(&terms)
    }

    /// Sends `url` an unpaid request: its 402 terms, remembered for the
    /// next call, or the answer when it asks no payment.
    async fn ask_terms(
        &self,
        method: &Method,
        url: &str,
        body: &[u8],
    ) -> Result<Result<PaymentRequired, Paid>, PayError> {
        let answer = self
            .http
            .request(method.clone(), url)
            .body(body.to_vec())
            .send()
            .await?;
        if answer.status() != StatusCode::PAYMENT_REQUIRED {
            return Ok(Err(Paid {
                status: answer.status(),
                body: answer.bytes().await?.to_vec(),
                paid: Amount::ZERO,
                settlement: None,
            }));
        }
        let required: PaymentRequired = header(&answer, x402::PAYMENT_REQUIRED)?
            .ok_or_else(|| PayError::Terms("a 402 without PAYMENT-REQUIRED".into()))?;
        let mut terms = self.terms.lock().expect("terms lock");
        if terms.len() >= TERMS_KEPT_MAX {
            terms.clear();
        }
        terms.insert(url.to_owned(), required.clone());
        Ok(Ok(required))
    }

    /// A stream of the channel to `payee`, opening the channel if needed.
    /// Idle streams that carry a hash chain go to calls that pay with
    /// chains (`chains`), the others to calls that pay with vouchers, so
    /// that a chain's credit is not spent by a voucher's call; a stream of
    /// the other kind is taken only when no new one may be opened.
    async fn checkout(
        &self,
        payee: Did,
        price: Amount,
        chains: bool,
    ) -> Result<(ChannelId, Stream), PayError> {
        let mut channels = self.channels.lock().await;
        if let std::collections::hash_map::Entry::Vacant(slot) = channels.entry(payee) {
            let deposit = self.deposit_for(price).await?;
            let key = format!("pay-{}", agentrail_client::random_nonce());
            let id = ChannelId::derive(&self.from, &payee, &key);
            let command = Command::OpenChannel(OpenChannel {
                from: self.from,
                payee,
                deposit,
                voucher_key: None,
                expires_at: self.channel_expiry(),
                dispute_window_s: None,
                category: None,
                idempotency_key: key,
            });
            self.node.submit(&self.key, &command).await?;
            slot.insert(Channel {
                id,
                deposit,
                idle: Vec::new(),
                live: 0,
                next_stream: 1,
                claimed: Amount::ZERO,
            });
        }
        let channel = channels.get_mut(&payee).expect("inserted above");
        let fitting = channel
            .idle
            .iter()
            .rposition(|stream| stream.chain.is_some() == chains);
        let stream = match fitting {
            Some(position) => channel.idle.swap_remove(position),
            None if channel.live >= self.options.streams_max && !channel.idle.is_empty() => {
                channel.idle.pop().expect("not empty")
            }
            None if channel.live < self.options.streams_max => {
                channel.live += 1;
                channel.next_stream += 1;
                Stream {
                    id: format!("s{}", channel.next_stream - 1),
                    nonce: 0,
                    total: Amount::ZERO,
                    proposal: None,
                    chain: None,
                }
            }
            None => return Err(PayError::Busy),
        };
        Ok((channel.id, stream))
    }

    /// A new channel's expiry: the ledger's default, or the end of the
    /// signer's grants when that comes first.
    fn channel_expiry(&self) -> Option<Timestamp> {
        let end = self.grant_ends_at?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let default = now.saturating_add(agentrail_core::constants::CHANNEL_DURATION_DEFAULT_S);
        (end.0 < default).then_some(end)
    }

    async fn checkin(&self, payee: Did, stream: Stream) {
        if let Some(channel) = self.channels.lock().await.get_mut(&payee) {
            channel.idle.push(stream);
        }
    }

    /// Drops a checked-out stream for good; its id is never used again.
    async fn retire(&self, payee: Did) {
        if let Some(channel) = self.channels.lock().await.get_mut(&payee) {
            channel.live -= 1;
        }
    }

    /// A deposit for `deposit_calls` calls, within the per-payment limit
    /// and the money available (and never below one call).
    async fn deposit_for(&self, price: Amount) -> Result<Amount, PayError> {
        let mut deposit = price
            .checked_mul(u128::from(self.options.deposit_calls))
            .unwrap_or(Amount::MAX);
        if let Some(limit) = self.per_payment {
            deposit = deposit.min(limit);
        }
        let available = self.node.balance(&self.from).await?.available;
        Ok(deposit.min(available).max(price))
    }

    async fn top_up(
        &self,
        payee: Did,
        channel_id: ChannelId,
        price: Amount,
    ) -> Result<(), PayError> {
        let amount = self.deposit_for(price).await?;
        let command = Command::TopUpChannel(TopUpChannel {
            channel_id,
            amount,
            idempotency_key: format!("top-{}", agentrail_client::random_nonce()),
        });
        self.node.submit(&self.key, &command).await?;
        if let Some(channel) = self.channels.lock().await.get_mut(&payee) {
            channel.deposit = channel.deposit.checked_add(amount).unwrap_or(Amount::MAX);
        }
        Ok(())
    }

    /// Starts closing every channel this payer opened: each payee keeps
    /// its dispute window to collect, then the rest returns.
    pub async fn close_all(&self) -> Result<usize, PayError> {
        let ids: Vec<ChannelId> = self.channels.lock().await.values().map(|c| c.id).collect();
        for channel_id in &ids {
            let command = Command::StartChannelClose(ChannelRef {
                channel_id: *channel_id,
            });
            self.node.submit(&self.key, &command).await?;
        }
        Ok(ids.len())
    }

    /// The requirement the payer would use for `required`, if any.
    pub fn pick<'a>(&self, required: &'a PaymentRequired) -> Option<&'a PaymentRequirements> {
        required
            .accepts
            .iter()
            .find(|a| a.scheme == x402::SCHEME && a.network == self.network)
    }
}

impl Payer {
    /// Whether `terms` names a token this payer pays `exact` in.
    fn pays_in(&self, terms: &PaymentRequirements) -> bool {
        let Ok(token) = terms.asset.parse::<Address>() else {
            return false;
        };
        self.exact_assets
            .iter()
            .any(|(network, asset)| *network == terms.network && *asset == token)
    }
}

/// Whether `terms` is `exact` on an EVM chain with a token domain.
fn exact_payable(terms: &PaymentRequirements) -> bool {
    terms.scheme == x402::EXACT
        && terms.network.starts_with("eip155:")
        && terms.extra.name.is_some()
        && terms.extra.version.is_some()
}

/// How often a paid `exact` request is sent again, the same payment each
/// time, while the server answers that its settlement is pending.
const EXACT_RETRIES: usize = 5;
/// Longest an authorization the payer signs stays valid, whatever the
/// server asks: a server that refused a payment cannot keep it to settle
/// much later.
const EXACT_VALIDITY_MAX_S: u64 = 300;

impl Payer {
    /// Pays one call with an EIP-3009 authorization of exactly the price,
    /// within the mandate: under a grant, the payment is first charged to
    /// it on the ledger (`charge_mandate`: its limits and budgets, shared
    /// with ledger payments), and nothing is signed if the ledger refuses.
    async fn pay_exact(
        &self,
        key: &EvmKey,
        method: &Method,
        url: &str,
        body: Vec<u8>,
        required: &PaymentRequired,
        terms: &PaymentRequirements,
    ) -> Result<Paid, PayError> {
        let price = terms.amount;
        if let Some(limit) = self.per_payment
            && price > limit
        {
            return Err(PayError::OverMandate { price, limit });
        }
        let chain_id: u64 = terms
            .network
            .strip_prefix("eip155:")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| PayError::Terms(format!("network {:?}", terms.network)))?;
        let token: Address = terms
            .asset
            .parse()
            .map_err(|_| PayError::Terms(format!("asset {:?} is not an address", terms.asset)))?;
        let pay_to: Address = terms
            .pay_to
            .parse()
            .map_err(|_| PayError::Terms(format!("payTo {:?} is not an address", terms.pay_to)))?;
        let domain = TokenDomain {
            name: terms.extra.name.clone().unwrap_or_default(),
            version: terms.extra.version.clone().unwrap_or_default(),
            chain_id,
            token,
        };
        let now = crate::exact::now_seconds();
        let authorization = Authorization {
            from: key.address(),
            to: pay_to,
            value: U256::from(price.atomic()),
            valid_after: 0,
            // As x402's clients sign: valid from the epoch until the
            // server's timeout from now.
            valid_before: now.saturating_add(terms.max_timeout_seconds.min(EXACT_VALIDITY_MAX_S)),
            nonce: eip3009::random_nonce(),
        };
        if self.mandated {
            // Counted once per authorization, whatever the server does: a
            // payment that fails after this is sent again, never re-signed.
            let nonce = hex::encode(authorization.nonce);
            let charge = Command::ChargeMandate(ChargeMandate {
                from: self.from,
                amount: price,
                payee: format!("{}:{}", terms.network, pay_to.to_checksum(None)),
                reference: format!("0x{nonce}"),
                idempotency_key: format!("x402-exact-{}", &nonce[..40]),
            });
            self.node.submit(&self.key, &charge).await?;
        }
        let signature = authorization.sign(&domain, key);
        // The server's extensions echoed, with a payment id when it
        // declares payment-identifier: the retries below are one request.
        let mut extensions = required.extensions.clone();
        if let Some(declared) = extensions
            .as_mut()
            .and_then(|e| e.get_mut(x402::PAYMENT_IDENTIFIER))
            .and_then(|d| d.get_mut("info"))
            .and_then(|info| info.as_object_mut())
        {
            declared.insert(
                "id".into(),
                format!("pay_{}", hex::encode(eip3009::random_nonce()))[..36]
                    .to_owned()
                    .into(),
            );
        }
        let exact = ExactPayload {
            signature: format!("0x{}", hex::encode(&signature)),
            authorization: ExactAuthorization {
                from: authorization.from.to_checksum(None),
                to: terms.pay_to.clone(),
                value: authorization.value.to_string(),
                valid_after: authorization.valid_after.to_string(),
                valid_before: authorization.valid_before.to_string(),
                nonce: authorization.nonce.to_string(),
            },
        };
        let payload = PaymentPayload::answering(required, terms, &exact, extensions);
        let header_value = x402::encode_header(&payload);
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let sent = self
                .http
                .request(method.clone(), url)
                .header(x402::PAYMENT_SIGNATURE, &header_value)
                .body(body.clone())
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                // Whether the server settled is unknown: the same payment
                // is sent again, which settles at most once.
                Err(_) if attempt < EXACT_RETRIES => continue,
                Err(error) => break Err(PayError::Http(error)),
            };
            let status = response.status();
            // The server's own trouble or this payment being served: the
            // same payment again, which is settled at most once.
            let again = status == StatusCode::SERVICE_UNAVAILABLE
                || (status == StatusCode::CONFLICT
                    && response.headers().contains_key("retry-after"));
            let settlement = header::<SettlementResponse>(&response, x402::PAYMENT_RESPONSE);
            let bytes = response.bytes().await.map(|b| b.to_vec());
            match (settlement, bytes) {
                (Ok(Some(settlement)), Ok(bytes)) if settlement.success && status.is_success() => {
                    break Ok(Paid {
                        status,
                        body: bytes,
                        paid: price,
                        settlement: Some(settlement),
                    });
                }
                _ if again && attempt < EXACT_RETRIES => {
                    tokio::time::sleep(std::time::Duration::from_millis(500 * attempt as u64))
                        .await;
                }
                (Ok(Some(settlement)), _) => {
                    break Err(PayError::Refused(
                        settlement
                            .error_reason
                            .unwrap_or_else(|| status.to_string()),
                    ));
                }
                (Ok(None), Ok(bytes)) if status.is_success() => {
                    // Served without a settlement header: the server did
                    // not say it took the money; count it as paid, since
                    // the authorization may still be used.
                    break Ok(Paid {
                        status,
                        body: bytes,
                        paid: price,
                        settlement: None,
                    });
                }
                (Ok(None), _) => {
                    break Err(PayError::Refused(format!(
                        "{status} without PAYMENT-RESPONSE"
                    )));
                }
                (Err(error), _) => break Err(error),
            }
        };
        if outcome.is_ok() {
            let mut spent = self.spent.lock().expect("spent lock");
            *spent = spent.checked_add(price).unwrap_or(Amount::MAX);
        }
        outcome
    }
}

fn header<T: serde::de::DeserializeOwned>(
    response: &reqwest::Response,
    name: &str,
) -> Result<Option<T>, PayError> {
    match response.headers().get(name) {
        None => Ok(None),
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| PayError::Terms(format!("{name} is not text")))?;
            x402::decode_header(text)
                .map(Some)
                .map_err(|e| PayError::Terms(format!("{name}: {e}")))
        }
    }
}
