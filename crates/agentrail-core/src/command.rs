//! Commands: what a signer asks the ledger to do, and the proof that the
//! signer asked.
//!
//! A [`SignedCommand`] carries its own Ed25519 signature over
//! `"agentrail command v1\n" ‖ JCS(command)`. The node may authenticate a
//! command another way (an HTTP message signature over the request that
//! carries it); either way the state machine only accepts an
//! [`Authenticated`] command, whose signer has been checked.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::amount::Amount;
use crate::canonical::CanonicalError;
use crate::chain::{ChainDeposit, EvmAddress, Hash32};
use crate::channel::{ChannelId, Voucher};
use crate::did::Did;
use crate::economy::{
    ApproveLeg, CancelSubscription, CollectSubscription, DeliverLeg, DisputeLeg, LegRef,
    PlaceOrder, PostBounty, ResolveLeg, ScoreContribution, SubmitContribution, Subscribe,
};
use crate::grant::SignedGrant;
use crate::market::{
    AcceptQuote, ApproveTask, CounterQuote, DeliverTask, DisputeTask, LicenseDataset, ListingRef,
    PublishListing, RequestQuotes, ResolveDispute, SubmitQuote,
};
use crate::rejection::Rejection;
use crate::signing::{
    COMMAND_DOMAIN, DocumentError, SignatureBytes, decode_document, signing_bytes,
};
use crate::time::Timestamp;

/// A request to change the ledger. Every variant names what it touches; the
/// signer is carried beside it (see [`Authenticated`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Command {
    /// A principal registers itself; signed by the principal.
    RegisterPrincipal(RegisterPrincipal),
    /// A principal grants an agent a mandate; signed by the principal.
    RegisterAgent(RegisterGrant),
    /// An agent grants a session key a narrower mandate; signed by the agent.
    IssueSession(RegisterGrant),
    /// Ends a grant and every grant below it; signed by its issuer or the
    /// principal above it.
    Revoke(Revoke),
    /// Money enters the ledger; signed by the operator.
    Deposit(Deposit),
    /// Money leaves the ledger; signed by the principal owning the account.
    Withdraw(Withdraw),
    /// Pays another account, or waits for approval above a threshold.
    Transfer(Transfer),
    /// Reserves money for later release (escrow).
    Hold(Hold),
    /// Pays a reserved hold out to one or several payees by basis points.
    Release(Release),
    /// Returns a reserved hold to its account.
    Void(Void),
    /// The principal approves a payment waiting above a threshold.
    Approve(Decision),
    /// The principal declines a payment waiting above a threshold.
    Decline(Decision),
    /// Opens a payment channel: reserves a deposit for a payee, counted
    /// once against the mandate; the payer then pays with vouchers.
    OpenChannel(OpenChannel),
    /// Adds to a channel's deposit, counted against the mandate.
    TopUpChannel(TopUpChannel),
    /// The payee redeems its best vouchers; the channel stays open.
    CollectChannel(CollectChannel),
    /// The payee redeems its last vouchers and closes the channel at once;
    /// the rest of the deposit returns to the payer.
    CloseChannel(CollectChannel),
    /// The payer starts closing: the payee may still collect during the
    /// channel's dispute window, then the rest returns to the payer.
    StartChannelClose(ChannelRef),
    /// Publishes an agent card (and reserves its stake).
    PublishListing(PublishListing),
    /// Withdraws a listing and returns its stake.
    WithdrawListing(ListingRef),
    /// A buyer asks providers for quotes.
    RequestQuotes(RequestQuotes),
    /// A provider quotes on a request.
    SubmitQuote(SubmitQuote),
    /// A counter-offer, by either side in turn.
    CounterQuote(CounterQuote),
    /// The buyer accepts a quote: the price goes into escrow, a task begins.
    AcceptQuote(AcceptQuote),
    /// The provider delivers a task's result and its contribution manifest.
    DeliverTask(DeliverTask),
    /// The buyer or the validator approves a delivery: the escrow pays out.
    ApproveTask(ApproveTask),
    /// The buyer disputes a delivery before the arbiter named in the terms.
    DisputeTask(DisputeTask),
    /// The arbiter splits a disputed task's escrow.
    ResolveDispute(ResolveDispute),
    /// Buys one licensed use of a dataset.
    LicenseDataset(LicenseDataset),
    /// The clock: records what time did (expiries, deadlines, windows that
    /// ended) at the moment it fell due; signed by the operator. A node
    /// journals one, before any other command at that time, whenever
    /// something is due, so that the log is the whole transcript and no
    /// other entry carries a time-driven event.
    Tick(Tick),
    /// Records that the vault paid a pending withdrawal; signed by the
    /// operator once the chain shows the payout.
    SettleWithdrawal(SettleWithdrawal),
    /// A key that chain deposits were kept for takes them into its own
    /// account; signed by that key. (An agent's key, whose account a
    /// principal opened: the vault's deposits to it wait for its consent.)
    ClaimDeposits(ClaimDeposits),
    /// An agent (or a session) charges its mandate for a payment it makes
    /// off the ledger, before making it (x402's `exact`, a token transfer
    /// on a chain): the grants' limits apply and the amount counts against
    /// their budgets. No ledger money moves.
    ChargeMandate(ChargeMandate),
    /// A payer's side lets a payee collect at most so much per period.
    Subscribe(Subscribe),
    /// The payee's side collects this period's money.
    CollectSubscription(CollectSubscription),
    /// Either side ends a subscription.
    CancelSubscription(CancelSubscription),
    /// A lead locks a bounty's budget for contributions a validator scores.
    PostBounty(PostBounty),
    SubmitContribution(SubmitContribution),
    /// The bounty's validator scores a contribution; its payout follows.
    ScoreContribution(ScoreContribution),
    /// A buyer's side binds several legs into one escrowed order.
    PlaceOrder(PlaceOrder),
    DeliverLeg(DeliverLeg),
    ApproveLeg(ApproveLeg),
    /// The leg's provider declines it: the leg fails.
    DeclineLeg(LegRef),
    DisputeLeg(DisputeLeg),
    /// The order's arbiter rules on a disputed leg.
    ResolveLeg(ResolveLeg),
}

/// The clock's entry has no fields: the entry's time is what it records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tick {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenChannel {
    pub from: Did,
    pub payee: Did,
    pub deposit: Amount,
    /// Signs the channel's vouchers (a key the payer's paying client may
    /// hold); the open's signer if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voucher_key: Option<Did>,
    /// When the channel closes by itself; at most 90 days ahead, 30 days if
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Seconds the payee keeps to collect once the payer starts a close:
    /// 60 s to 7 days, one day if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute_window_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Chosen by the client; with `from` and `payee` it derives the channel
    /// id ([`crate::channel::ChannelId::derive`]). Also the idempotency key.
    pub idempotency_key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpChannel {
    pub channel_id: ChannelId,
    pub amount: Amount,
    pub idempotency_key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectChannel {
    pub channel_id: ChannelId,
    /// Applied in order; each must redeem more than its sub-channel did
    /// before, and no older nonce than it did. At most 64; may be empty for
    /// a close.
    pub vouchers: Vec<Voucher>,
    /// Per sub-channel, the total to redeem when it is less than the
    /// voucher's: a payee collects what it charged, not the credit a payer
    /// signed ahead (the rest returns to the payer when the channel ends).
    /// A sub-channel absent here redeems its voucher's whole total. Each
    /// entry names a sub-channel one of the vouchers pays, and is at most
    /// that voucher's total.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub amounts: BTreeMap<String, Amount>,
    /// One of the payee's listings: what is collected is split by its
    /// revenue share (a model's creator and its host, say) in this
    /// command. The payee alone if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelRef {
    pub channel_id: ChannelId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterPrincipal {
    pub principal: Did,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterGrant {
    pub grant: SignedGrant,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    pub subject: Did,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deposit {
    pub to: Did,
    pub amount: Amount,
    /// For a chain deposit: `eip155:<chain id>:deposit:<vault deposit id>`
    /// ([`crate::chain::deposit_key`]).
    pub idempotency_key: String,
    /// The vault's `Deposited` log this credits; required on a ledger bound
    /// to a chain, refused on one that is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainDeposit>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Withdraw {
    pub from: Did,
    pub amount: Amount,
    pub idempotency_key: String,
    /// Where the vault pays the tokens; required on a ledger bound to a
    /// chain, refused on one that is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<EvmAddress>,
}

/// The vault paid pending withdrawal `id` in transaction `tx` of `block`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleWithdrawal {
    pub id: u64,
    pub tx: Hash32,
    pub block: u64,
}

/// A payment off the ledger, counted against the signer's mandate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeMandate {
    /// The account whose grants are charged: the signer's own (an agent),
    /// or its agent's (a session).
    pub from: Did,
    pub amount: Amount,
    /// Who is paid, as a CAIP-10 account id (`eip155:8453:0x…`): 1-128
    /// characters of A-Z, a-z, 0-9, ':', '-', '_', '.'.
    pub payee: String,
    /// The payment's own reference, the same character set (x402 `exact`:
    /// the authorization's nonce).
    pub reference: String,
    pub idempotency_key: String,
}

/// The signer takes every chain deposit kept for its key into its account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimDeposits {
    pub idempotency_key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    pub from: Did,
    pub to: Did,
    pub amount: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub idempotency_key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    /// Chosen by the client, unique among the holds the state keeps; a node
    /// also refuses an id its archive holds (`id_retired`), so it names one
    /// hold for good. Also the idempotency key.
    pub hold_id: String,
    pub from: Did,
    pub amount: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// When the hold voids itself; at most 90 days ahead, 90 days if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// One payee's share of a release, in basis points of the hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Split {
    pub to: Did,
    pub bps: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub hold_id: String,
    pub splits: Vec<Split>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Void {
    pub hold_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub approval_id: u64,
}

/// A command whose signer has been authenticated. The only input
/// [`crate::State::apply`] accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    signer: Did,
    command: Command,
}

impl Authenticated {
    /// Wraps a command whose signer the caller has already authenticated by
    /// other means.
    ///
    /// Callers MUST have verified a signature by `signer` that covers every
    /// byte of `command` (for example an RFC 9421 HTTP message signature
    /// over a request whose body is the command). Callers MUST NOT use this
    /// to skip verification. Grant signatures inside the command are still
    /// checked by the state machine.
    pub fn assume_verified(signer: Did, command: Command) -> Authenticated {
        Authenticated { signer, command }
    }

    pub fn signer(&self) -> &Did {
        &self.signer
    }

    pub fn command(&self) -> &Command {
        &self.command
    }
}

/// A command with the signer's signature over its canonical bytes, exactly
/// as it was signed.
#[derive(Clone)]
pub struct SignedCommand {
    command: Command,
    document: Value,
    signing_bytes: Vec<u8>,
    signer: Did,
    signature: SignatureBytes,
}

impl std::fmt::Debug for SignedCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedCommand")
            .field("signer", &self.signer)
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

impl SignedCommand {
    /// Signs `command` with `key`; the signer is the key's did:key.
    pub fn sign(command: Command, key: &SigningKey) -> Result<SignedCommand, CanonicalError> {
        let document =
            serde_json::to_value(&command).map_err(|e| CanonicalError::NotJson(e.to_string()))?;
        let bytes = signing_bytes(COMMAND_DOMAIN, &document)?;
        let signature = SignatureBytes::sign(key, &bytes);
        Ok(SignedCommand {
            command,
            document,
            signing_bytes: bytes,
            signer: Did::from_verifying_key(&key.verifying_key()),
            signature,
        })
    }

    /// Reads a command document, its signer and signature; does not verify.
    pub fn from_document(
        document: Value,
        signer: Did,
        signature: SignatureBytes,
    ) -> Result<SignedCommand, DocumentError> {
        let (command, bytes) = decode_document::<Command>(COMMAND_DOMAIN, &document)?;
        Ok(SignedCommand {
            command,
            document,
            signing_bytes: bytes,
            signer,
            signature,
        })
    }

    /// Replaces the signature (for tests of forged commands).
    pub fn with_signature(mut self, signature: SignatureBytes) -> SignedCommand {
        self.signature = signature;
        self
    }

    pub fn command(&self) -> &Command {
        &self.command
    }

    pub fn signer(&self) -> &Did {
        &self.signer
    }

    pub fn signature(&self) -> &SignatureBytes {
        &self.signature
    }

    /// Checks the signature and yields the authenticated command.
    pub fn verify(self) -> Result<Authenticated, Rejection> {
        if self.signer.verify(&self.signing_bytes, &self.signature.0) {
            Ok(Authenticated {
                signer: self.signer,
                command: self.command,
            })
        } else {
            Err(Rejection::InvalidSignature)
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedCommandWire {
    signer: Did,
    command: Value,
    signature: SignatureBytes,
}

impl Serialize for SignedCommand {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SignedCommandWire {
            signer: self.signer,
            command: self.document.clone(),
            signature: self.signature,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SignedCommand {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SignedCommand, D::Error> {
        let wire = SignedCommandWire::deserialize(deserializer)?;
        SignedCommand::from_document(wire.command, wire.signer, wire.signature)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_command_round_trips_and_detects_tampering() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let payee = Did::from_verifying_key(&SigningKey::from_bytes(&[4; 32]).verifying_key());
        let command = Command::Transfer(Transfer {
            from: Did::from_verifying_key(&key.verifying_key()),
            to: payee,
            amount: Amount::from_atomic(5),
            memo: Some("coffee".into()),
            category: None,
            idempotency_key: "k1".into(),
        });
        let signed = SignedCommand::sign(command.clone(), &key).unwrap();
        let json = serde_json::to_string(&signed).unwrap();
        let back: SignedCommand = serde_json::from_str(&json).unwrap();
        assert_eq!(back.clone().verify().unwrap().command(), &command);

        let tampered = json.replace("\"5\"", "\"6\"");
        let tampered: SignedCommand = serde_json::from_str(&tampered).unwrap();
        assert_eq!(tampered.verify(), Err(Rejection::InvalidSignature));

        let unknown = json.replace("\"memo\"", "\"note\"");
        assert!(serde_json::from_str::<SignedCommand>(&unknown).is_err());
    }
}
