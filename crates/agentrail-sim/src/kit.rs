//! Building blocks for ledger tests: deterministic keys, grants and signed
//! commands.

use agentrail_core::channel::{ChannelId, Voucher, VoucherTerms};
use agentrail_core::command::{
    Command, Decision, Deposit, Hold, RegisterGrant, RegisterPrincipal, Release, Revoke, Split,
    Transfer, Void, Withdraw,
};
use agentrail_core::grant::{GRANT_VERSION, Grant, Limits, Role, SignedGrant};
use agentrail_core::{Amount, Authenticated, Did, SignedCommand, Timestamp};
use ed25519_dalek::SigningKey;

/// 2026-01-01T00:00:00Z: the simulated epoch.
pub const T0: Timestamp = Timestamp(1_767_225_600);

/// `whole` dollars in atomic units.
pub fn usd(whole: u128) -> Amount {
    Amount::from_atomic(whole * 1_000_000)
}

/// A deterministic key from a label.
pub fn key(label: &str) -> SigningKey {
    let mut seed = [0u8; 32];
    for (index, byte) in label.bytes().enumerate() {
        seed[index % 32] = seed[index % 32].wrapping_mul(31).wrapping_add(byte);
    }
    seed[31] ^= label.len() as u8;
    SigningKey::from_bytes(&seed)
}

/// The network id of simulated and test ledgers.
pub const NETWORK_ID: &str = "agentrail:agentrail.test/log";

/// The hash channel vouchers sign on simulated and test ledgers.
pub fn network() -> [u8; 32] {
    agentrail_core::channel::network_hash(NETWORK_ID)
}

pub fn did(key: &SigningKey) -> Did {
    Did::from_verifying_key(&key.verifying_key())
}

/// Limits with only the two required caps.
pub fn limits(max_per_payment: Amount, daily_budget: Amount) -> Limits {
    Limits {
        max_per_payment,
        daily_budget,
        total_budget: None,
        allowed_payees: None,
        denied_payees: Vec::new(),
        allowed_categories: None,
        approval_threshold: None,
        daily_approval_threshold: None,
    }
}

/// A grant from `issuer` to `subject` valid for `[not_before, expires_at)`.
pub fn grant(
    issuer: &SigningKey,
    subject: Did,
    role: Role,
    limits: Limits,
    not_before: Timestamp,
    expires_at: Timestamp,
    nonce: &str,
) -> SignedGrant {
    Grant {
        version: GRANT_VERSION,
        issuer: did(issuer),
        subject,
        role,
        limits,
        not_before,
        expires_at,
        nonce: nonce.to_owned(),
    }
    .sign(issuer)
    .expect("test grants are canonicalisable")
}

/// Signs and verifies a command: the normal path into the ledger.
pub fn signed(key: &SigningKey, command: Command) -> Authenticated {
    SignedCommand::sign(command, key)
        .expect("test commands are canonicalisable")
        .verify()
        .expect("a fresh signature verifies")
}

pub fn register_principal(principal: Did) -> Command {
    Command::RegisterPrincipal(RegisterPrincipal { principal })
}

pub fn register_agent(grant: SignedGrant) -> Command {
    Command::RegisterAgent(RegisterGrant { grant })
}

pub fn issue_session(grant: SignedGrant) -> Command {
    Command::IssueSession(RegisterGrant { grant })
}

pub fn revoke(subject: Did) -> Command {
    Command::Revoke(Revoke { subject })
}

pub fn deposit(to: Did, amount: Amount, key: &str) -> Command {
    Command::Deposit(Deposit {
        to,
        amount,
        idempotency_key: key.to_owned(),
        chain: None,
    })
}

pub fn withdraw(from: Did, amount: Amount, key: &str) -> Command {
    Command::Withdraw(Withdraw {
        from,
        amount,
        idempotency_key: key.to_owned(),
        to: None,
    })
}

pub fn transfer(from: Did, to: Did, amount: Amount, key: &str) -> Command {
    transfer_in(from, to, amount, None, key)
}

pub fn transfer_in(
    from: Did,
    to: Did,
    amount: Amount,
    category: Option<&str>,
    key: &str,
) -> Command {
    Command::Transfer(Transfer {
        from,
        to,
        amount,
        memo: None,
        category: category.map(str::to_owned),
        idempotency_key: key.to_owned(),
    })
}

pub fn hold(hold_id: &str, from: Did, amount: Amount) -> Command {
    Command::Hold(Hold {
        hold_id: hold_id.to_owned(),
        from,
        amount,
        category: None,
        expires_at: None,
    })
}

pub fn release(hold_id: &str, splits: &[(Did, u16)]) -> Command {
    Command::Release(Release {
        hold_id: hold_id.to_owned(),
        splits: splits.iter().map(|&(to, bps)| Split { to, bps }).collect(),
    })
}

pub fn void(hold_id: &str) -> Command {
    Command::Void(Void {
        hold_id: hold_id.to_owned(),
    })
}

pub fn approve(approval_id: u64) -> Command {
    Command::Approve(Decision { approval_id })
}

pub fn decline(approval_id: u64) -> Command {
    Command::Decline(Decision { approval_id })
}

/// Opens a channel from `from` to `payee` with the defaults (30 days, one
/// day of dispute window, vouchers signed by the opener).
pub fn open_channel(from: Did, payee: Did, deposit: Amount, key: &str) -> Command {
    Command::OpenChannel(agentrail_core::command::OpenChannel {
        from,
        payee,
        deposit,
        voucher_key: None,
        expires_at: None,
        dispute_window_s: None,
        category: None,
        idempotency_key: key.to_owned(),
    })
}

/// [`open_channel`] expiring at `expires_at` (within the opener's grant).
pub fn open_channel_until(
    from: Did,
    payee: Did,
    deposit: Amount,
    key: &str,
    expires_at: Timestamp,
) -> Command {
    match open_channel(from, payee, deposit, key) {
        Command::OpenChannel(open) => Command::OpenChannel(agentrail_core::command::OpenChannel {
            expires_at: Some(expires_at),
            ..open
        }),
        _ => unreachable!("open_channel opens a channel"),
    }
}

pub fn collect_channel(channel_id: ChannelId, vouchers: Vec<Voucher>) -> Command {
    Command::CollectChannel(agentrail_core::command::CollectChannel {
        channel_id,
        vouchers,
        amounts: Default::default(),
        listing_id: None,
    })
}

/// A collect that redeems each named sub-channel only up to its amount.
pub fn collect_channel_up_to(
    channel_id: ChannelId,
    vouchers: Vec<Voucher>,
    amounts: &[(&str, Amount)],
) -> Command {
    Command::CollectChannel(agentrail_core::command::CollectChannel {
        channel_id,
        vouchers,
        amounts: amounts
            .iter()
            .map(|(sub, amount)| ((*sub).to_owned(), *amount))
            .collect(),
        listing_id: None,
    })
}

pub fn close_channel(channel_id: ChannelId, vouchers: Vec<Voucher>) -> Command {
    Command::CloseChannel(agentrail_core::command::CollectChannel {
        channel_id,
        vouchers,
        amounts: Default::default(),
        listing_id: None,
    })
}

pub fn start_channel_close(channel_id: ChannelId) -> Command {
    Command::StartChannelClose(agentrail_core::command::ChannelRef { channel_id })
}

pub fn top_up_channel(channel_id: ChannelId, amount: Amount, key: &str) -> Command {
    Command::TopUpChannel(agentrail_core::command::TopUpChannel {
        channel_id,
        amount,
        idempotency_key: key.to_owned(),
    })
}

/// A voucher by `key` for `network` (a hash, [`network`] in tests).
pub fn voucher(
    key: &SigningKey,
    network: &[u8; 32],
    channel_id: ChannelId,
    payee: Did,
    sub_channel: &str,
    nonce: u64,
    total: Amount,
) -> Voucher {
    VoucherTerms {
        channel_id,
        epoch: 0,
        sub_channel_id: sub_channel.to_owned(),
        accumulated_amount: total,
        nonce,
        payee_id: payee,
    }
    .sign(key, network)
}

// ----- markets -------------------------------------------------------------

use agentrail_core::market::{
    AcceptQuote, ApproveTask, CounterQuote, DeliverTask, DisputeTask, LicenseDataset, ListingKind,
    ListingRef, Pricing, PublishListing, RequestQuotes, ResolveDispute, SubmitQuote,
};

/// A service listing offering `capabilities` at `price` per task.
pub fn listing(id: &str, provider: Did, capabilities: &[&str], price: Amount) -> PublishListing {
    PublishListing {
        listing_id: id.into(),
        provider,
        kind: ListingKind::Service,
        name: format!("listing {id}"),
        description: String::new(),
        capabilities: capabilities.iter().map(|tag| (*tag).to_owned()).collect(),
        pricing: Pricing::PerTask { price },
        endpoint: None,
        revenue_share: Vec::new(),
        stake: None,
        content_hash: None,
    }
}

pub fn publish(listing: PublishListing) -> Command {
    Command::PublishListing(listing)
}

pub fn withdraw_listing(id: &str) -> Command {
    Command::WithdrawListing(ListingRef {
        listing_id: id.into(),
    })
}

/// A request for quotes due `deadline_s` after acceptance, reviewed for an
/// hour, with no arbiter or validator.
pub fn rfq(
    id: &str,
    from: Did,
    capability: &str,
    budget_max: Amount,
    deadline_s: u64,
) -> RequestQuotes {
    RequestQuotes {
        rfq_id: id.into(),
        from,
        capability: capability.into(),
        description: String::new(),
        budget_max,
        deadline_s,
        review_window_s: Some(3_600),
        arbiter: None,
        validator: None,
        invited: Vec::new(),
        expires_at: None,
    }
}

pub fn request_quotes(request: RequestQuotes) -> Command {
    Command::RequestQuotes(request)
}

pub fn quote(
    id: &str,
    rfq_id: &str,
    provider: Did,
    listing_id: Option<&str>,
    price: Amount,
) -> Command {
    Command::SubmitQuote(SubmitQuote {
        quote_id: id.into(),
        rfq_id: rfq_id.into(),
        provider,
        listing_id: listing_id.map(str::to_owned),
        price,
        note: None,
    })
}

pub fn counter(quote_id: &str, price: Amount) -> Command {
    Command::CounterQuote(CounterQuote {
        quote_id: quote_id.into(),
        price,
    })
}

pub fn accept(quote_id: &str, task_id: &str) -> Command {
    Command::AcceptQuote(AcceptQuote {
        quote_id: quote_id.into(),
        task_id: task_id.into(),
    })
}

/// SHA-256 of `content`, as result and content hashes are written.
pub fn sha256_hex(content: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(content))
}

pub fn deliver(task_id: &str, result: &[u8], manifest: &[(Did, u16)]) -> Command {
    Command::DeliverTask(DeliverTask {
        task_id: task_id.into(),
        result_hash: sha256_hex(result),
        uri: None,
        manifest: manifest
            .iter()
            .map(|&(to, bps)| Split { to, bps })
            .collect(),
    })
}

pub fn approve_task(task_id: &str, result: &[u8]) -> Command {
    Command::ApproveTask(ApproveTask {
        task_id: task_id.into(),
        result_hash: sha256_hex(result),
    })
}

pub fn dispute(task_id: &str, reason: &str) -> Command {
    Command::DisputeTask(DisputeTask {
        task_id: task_id.into(),
        reason: reason.into(),
    })
}

pub fn resolve(task_id: &str, provider_bps: u16) -> Command {
    Command::ResolveDispute(ResolveDispute {
        task_id: task_id.into(),
        provider_bps,
    })
}

pub fn license(license_id: &str, listing_id: &str, from: Did) -> Command {
    Command::LicenseDataset(LicenseDataset {
        license_id: license_id.into(),
        listing_id: listing_id.into(),
        from,
    })
}
