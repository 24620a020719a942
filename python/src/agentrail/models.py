"""The node's wire types, generated from its OpenAPI document by
`tools/generate_models.py` (datamodel-code-generator). Do not edit.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class AgentExtension(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    description: str
    params: Any
    required: bool
    uri: str


class AgentProvider(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    organization: str
    """
    The owning principal's did:key.
    """
    url: str


class AgentSkill(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    description: str
    id: str
    """
    The listing id.
    """
    name: str
    tags: list[str]


class Amount(RootModel[str]):
    root: str = Field(..., examples=['2500000'], pattern='^(0|[1-9][0-9]{0,38})$')
    """
    Atomic units (1 USD = 1,000,000), as a decimal string
    """


class ApprovalStatus(Enum):
    """
    Where a payment above an approval threshold stands.
    """

    pending = 'pending'
    approved = 'approved'
    declined = 'declined'
    expired = 'expired'


class Approver(Enum):
    """
    Who approved a delivery.
    """

    buyer = 'buyer'
    validator = 'validator'
    review_window_ended = 'review_window_ended'
    arbiter = 'arbiter'


class BountyStatus(Enum):
    open = 'open'
    closed = 'closed'
    scoring = 'scoring'


class ChannelId(RootModel[str]):
    root: str = Field(..., pattern='^[0-9a-f]{64}$', title='ChannelId')
    """
    SHA-256 over the payer, the payee and the opener's idempotency key (docs/protocol.md)
    """


class OpenStatus(BaseModel):
    """
    Where a channel stands.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    state: Literal['open']


class ClosedStatus(BaseModel):
    """
    Where a channel stands.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    state: Literal['closed']


class ExpiredStatus(BaseModel):
    """
    Where a channel stands.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    state: Literal['expired']


class CloseReason(Enum):
    """
    Why a channel closed.
    """

    cooperative = 'cooperative'
    dispute_window_ended = 'dispute_window_ended'
    expired = 'expired'


class VoidCommand(BaseModel):
    """
    Returns a reserved hold to its account.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    hold_id: str
    type: Literal['void']


class ApproveCommand(BaseModel):
    """
    The principal approves a payment waiting above a threshold.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    approval_id: int = Field(..., ge=0)
    type: Literal['approve']


class DeclineCommand(BaseModel):
    """
    The principal declines a payment waiting above a threshold.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    approval_id: int = Field(..., ge=0)
    type: Literal['decline']


class TopUpChannelCommand(BaseModel):
    """
    Adds to a channel's deposit, counted against the mandate.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    amount: Amount
    channel_id: ChannelId
    idempotency_key: str
    type: Literal['top_up_channel']


class StartChannelCloseCommand(BaseModel):
    """
    The payer starts closing: the payee may still collect during the
    channel's dispute window, then the rest returns to the payer.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    channel_id: ChannelId
    type: Literal['start_channel_close']


class WithdrawListingCommand(BaseModel):
    """
    Withdraws a listing and returns its stake.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    listing_id: str
    type: Literal['withdraw_listing']


class CounterQuoteCommand(BaseModel):
    """
    A counter-offer, by either side in turn.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    price: Amount
    quote_id: str
    type: Literal['counter_quote']


class AcceptQuoteCommand(BaseModel):
    """
    The buyer accepts a quote: the price goes into escrow, a task begins.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    quote_id: str
    task_id: str
    """
    Chosen by the client, unique among the records the ledger keeps
    (and, at a node, among those archived: `id_retired`).
    """
    type: Literal['accept_quote']


class ApproveTaskCommand(BaseModel):
    """
    The buyer or the validator approves a delivery: the escrow pays out.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    result_hash: str
    task_id: str
    type: Literal['approve_task']


class DisputeTaskCommand(BaseModel):
    """
    The buyer disputes a delivery before the arbiter named in the terms.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    reason: str
    """
    At most 256 bytes.
    """
    task_id: str
    type: Literal['dispute_task']


class ResolveDisputeCommand(BaseModel):
    """
    The arbiter splits a disputed task's escrow.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    provider_bps: int = Field(..., ge=0, le=65535)
    task_id: str
    type: Literal['resolve_dispute']


class TickCommand(BaseModel):
    """
    The clock: records what time did (expiries, deadlines, windows that
    ended) at the moment it fell due; signed by the operator. A node
    journals one, before any other command at that time, whenever
    something is due, so that the log is the whole transcript and no
    other entry carries a time-driven event.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    type: Literal['tick']


class ClaimDepositsCommand(BaseModel):
    """
    A key that chain deposits were kept for takes them into its own
    account; signed by that key. (An agent's key, whose account a
    principal opened: the vault's deposits to it wait for its consent.)
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    idempotency_key: str
    type: Literal['claim_deposits']


class CollectSubscriptionCommand(BaseModel):
    """
    The payee's side collects this period's money.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    amount: Amount
    subscription_id: str
    type: Literal['collect_subscription']


class CancelSubscriptionCommand(BaseModel):
    """
    Either side ends a subscription.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    subscription_id: str
    type: Literal['cancel_subscription']


class ScoreContributionCommand(BaseModel):
    """
    The bounty's validator scores a contribution; its payout follows.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    bounty_id: str
    contribution_id: str
    result_hash: str
    """
    The hash the validator checked.
    """
    score_bps: int = Field(..., ge=0, le=65535)
    type: Literal['score_contribution']


class ApproveLegCommand(BaseModel):
    """
    The buyer's side accepts a delivered leg (naming the hash it checked).
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    leg: int = Field(..., ge=0, le=255)
    order_id: str
    result_hash: str
    type: Literal['approve_leg']


class DeclineLegCommand(BaseModel):
    """
    The leg's provider declines it: the leg fails.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    leg: int = Field(..., ge=0, le=255)
    order_id: str
    type: Literal['decline_leg']


class DisputeLegCommand(BaseModel):
    """
    A request to change the ledger. Every variant names what it touches; the
    signer is carried beside it (see [`Authenticated`]).
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    leg: int = Field(..., ge=0, le=255)
    order_id: str
    reason: str
    """
    At most 256 bytes.
    """
    type: Literal['dispute_leg']


class ResolveLegCommand(BaseModel):
    """
    The order's arbiter rules on a disputed leg.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    leg: int = Field(..., ge=0, le=255)
    order_id: str
    provider_bps: int = Field(..., ge=0, le=65535)
    type: Literal['resolve_leg']


class ConsistencyProof(BaseModel):
    """
    `GET /v1/log/proof/consistency?from=M&to=N`.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    from_: int = Field(..., alias='from', ge=0)
    proof: list[str]
    """
    Base64 hashes (RFC 9162 §2.1.4).
    """
    to: int = Field(..., ge=0)


class Did(RootModel[str]):
    root: str = Field(
        ...,
        examples=['did:key:z6Mko9hTggMwjSTEaJaPUfE6tqcy2xvU6BnNq3e3o8qVBiyH'],
        pattern='^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$',
    )
    """
    An Ed25519 did:key: base58btc of 0xed 0x01 and the 32-byte public key
    """


class DocumentId(RootModel[str]):
    root: str = Field(..., pattern='^[0-9a-f]{64}$', title='DocumentId')
    """
    SHA-256 of a signed document's signing bytes
    """


class ErrorCode(Enum):
    """
    Stable machine code, e.g. `budget_exceeded`.
    """

    already_contributed = 'already_contributed'
    already_registered = 'already_registered'
    amount_overflow = 'amount_overflow'
    amount_zero = 'amount_zero'
    approval_not_found = 'approval_not_found'
    approval_not_pending = 'approval_not_pending'
    approval_required = 'approval_required'
    body_too_large = 'body_too_large'
    bounty_full = 'bounty_full'
    bounty_not_found = 'bounty_not_found'
    bounty_wrong_state = 'bounty_wrong_state'
    budget_exceeded = 'budget_exceeded'
    category_not_allowed = 'category_not_allowed'
    chain_deposit_required = 'chain_deposit_required'
    channel_closed = 'channel_closed'
    channel_closing = 'channel_closing'
    channel_exhausted = 'channel_exhausted'
    channel_expired = 'channel_expired'
    channel_not_found = 'channel_not_found'
    channel_outlives_grant = 'channel_outlives_grant'
    contribution_not_found = 'contribution_not_found'
    contribution_scored = 'contribution_scored'
    deposit_out_of_order = 'deposit_out_of_order'
    digest_mismatch = 'digest_mismatch'
    digest_missing = 'digest_missing'
    entry_too_large = 'entry_too_large'
    faucet_disabled = 'faucet_disabled'
    faucet_limit = 'faucet_limit'
    grant_expired = 'grant_expired'
    grant_not_yet_valid = 'grant_not_yet_valid'
    grant_revoked = 'grant_revoked'
    grant_widens = 'grant_widens'
    hold_not_active = 'hold_not_active'
    hold_not_found = 'hold_not_found'
    id_retired = 'id_retired'
    idempotency_conflict = 'idempotency_conflict'
    insufficient_funds = 'insufficient_funds'
    invalid_did = 'invalid_did'
    invalid_field = 'invalid_field'
    invalid_grant = 'invalid_grant'
    invalid_grant_signature = 'invalid_grant_signature'
    invalid_path = 'invalid_path'
    invalid_query = 'invalid_query'
    invalid_range = 'invalid_range'
    invalid_request = 'invalid_request'
    invalid_signature = 'invalid_signature'
    invalid_split = 'invalid_split'
    leg_wrong_state = 'leg_wrong_state'
    listing_busy = 'listing_busy'
    listing_not_found = 'listing_not_found'
    listing_withdrawn = 'listing_withdrawn'
    malformed_json = 'malformed_json'
    method_not_allowed = 'method_not_allowed'
    no_arbiter = 'no_arbiter'
    no_such_tile = 'no_such_tile'
    no_unclaimed_deposits = 'no_unclaimed_deposits'
    nonce_reused = 'nonce_reused'
    not_arbiter = 'not_arbiter'
    not_authorized = 'not_authorized'
    not_found = 'not_found'
    not_in_log = 'not_in_log'
    not_leader = 'not_leader'
    not_operator = 'not_operator'
    not_validator = 'not_validator'
    nothing_due = 'nothing_due'
    off_ledger_payment_not_allowed = 'off_ledger_payment_not_allowed'
    offer_out_of_turn = 'offer_out_of_turn'
    order_not_found = 'order_not_found'
    outcome_unknown = 'outcome_unknown'
    overloaded = 'overloaded'
    own_side_role = 'own_side_role'
    payee_denied = 'payee_denied'
    payee_not_allowed = 'payee_not_allowed'
    per_payment_limit_exceeded = 'per_payment_limit_exceeded'
    price_above_budget = 'price_above_budget'
    quote_not_found = 'quote_not_found'
    quote_not_open = 'quote_not_open'
    quote_rounds_exhausted = 'quote_rounds_exhausted'
    rate_limited = 'rate_limited'
    result_hash_mismatch = 'result_hash_mismatch'
    rfq_closed = 'rfq_closed'
    rfq_not_found = 'rfq_not_found'
    same_account = 'same_account'
    shutting_down = 'shutting_down'
    signature_before_start = 'signature_before_start'
    signature_expired = 'signature_expired'
    signature_invalid = 'signature_invalid'
    signature_malformed = 'signature_malformed'
    signature_missing = 'signature_missing'
    signature_wrong_network = 'signature_wrong_network'
    storage_unavailable = 'storage_unavailable'
    subscription_already_collected = 'subscription_already_collected'
    subscription_amount_exceeded = 'subscription_amount_exceeded'
    subscription_not_active = 'subscription_not_active'
    subscription_not_found = 'subscription_not_found'
    task_not_found = 'task_not_found'
    task_wrong_state = 'task_wrong_state'
    too_many_connections = 'too_many_connections'
    too_many_delegations = 'too_many_delegations'
    too_many_subscriptions = 'too_many_subscriptions'
    unavailable = 'unavailable'
    unknown_account = 'unknown_account'
    unknown_grant = 'unknown_grant'
    unknown_identity = 'unknown_identity'
    voucher_signature_invalid = 'voucher_signature_invalid'
    voucher_stale = 'voucher_stale'
    withdrawal_not_found = 'withdrawal_not_found'


class ErrorDetail(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    code: ErrorCode = Field(..., title='ErrorCode')
    """
    Stable machine code, e.g. `budget_exceeded`.
    """
    message: str
    """
    For people.
    """
    param: str | None = None
    """
    The request field the error is about.
    """


class PrincipalRegisteredEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    principal: Did
    type: Literal['principal_registered']


class AgentRegisteredEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    agent: Did
    grant_id: DocumentId
    principal: Did
    type: Literal['agent_registered']


class SessionIssuedEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    agent: Did
    grant_id: DocumentId
    session: Did
    type: Literal['session_issued']


class GrantRevokedEvent(BaseModel):
    """
    `subject`'s grant ended; `cascaded_from` names the revoked grant
    above it when the revocation came from there.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    cascaded_from: Did | None = None
    revoked_by: Did
    subject: Did
    type: Literal['grant_revoked']


class DepositedEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    to: Did
    type: Literal['deposited']


class WithdrawnEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    from_: Did = Field(..., alias='from')
    type: Literal['withdrawn']


class MandateChargedEvent(BaseModel):
    """
    A payment off the ledger counted against the mandate of `from`'s
    grants; no ledger money moved.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    from_: Did = Field(..., alias='from')
    payee: str
    reference: str
    signer: Did
    type: Literal['mandate_charged']


class DepositUnclaimedEvent(BaseModel):
    """
    A chain deposit to a did:key with no account yet: the ledger keeps
    it for that key, and credits it when the key registers.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    to: Did
    type: Literal['deposit_unclaimed']


class DepositClaimedEvent(BaseModel):
    """
    The deposits kept for `to` moved into its new account.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    to: Did
    type: Literal['deposit_claimed']


class TransferredEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    category: str | None = None
    from_: Did = Field(..., alias='from')
    memo: str | None = None
    signer: Did
    to: Did
    type: Literal['transferred']


class PaymentApprovedEvent(BaseModel):
    """
    Followed by the `Transferred` event that pays it.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    approval_id: int = Field(..., ge=0)
    type: Literal['payment_approved']


class PaymentDeclinedEvent(BaseModel):
    """
    The held amount returned to `from`.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    approval_id: int = Field(..., ge=0)
    from_: Did = Field(..., alias='from')
    type: Literal['payment_declined']


class PaymentExpiredEvent(BaseModel):
    """
    The held amount returned to `from`.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    approval_id: int = Field(..., ge=0)
    from_: Did = Field(..., alias='from')
    type: Literal['payment_expired']


class HoldVoidedEvent(BaseModel):
    """
    The held amount returned to `from`.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    from_: Did = Field(..., alias='from')
    hold_id: str
    type: Literal['hold_voided']


class HoldExpiredEvent(BaseModel):
    """
    The held amount returned to `from`.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    from_: Did = Field(..., alias='from')
    hold_id: str
    type: Literal['hold_expired']


class ChannelToppedUpEvent(BaseModel):
    """
    `amount` more of `from`'s money reserved in the channel.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    channel_id: ChannelId
    deposit: Amount
    from_: Did = Field(..., alias='from')
    type: Literal['channel_topped_up']


class ChannelClosedEvent(BaseModel):
    """
    The channel ended: the payee received `paid` in all, `refunded`
    returned to the payer.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    channel_id: ChannelId
    from_: Did = Field(..., alias='from')
    paid: Amount
    reason: CloseReason
    refunded: Amount
    type: Literal['channel_closed']


class ListingWithdrawnEvent(BaseModel):
    """
    The listing is withdrawn; what its stake still held returned.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    listing_id: str
    provider: Did
    stake_returned: Amount
    type: Literal['listing_withdrawn']


class QuoteSubmittedEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    price: Amount
    provider: Did
    quote_id: str
    rfq_id: str
    type: Literal['quote_submitted']


class SubscriptionCollectedEvent(BaseModel):
    """
    One period's collect: `amount` moved from `from` to `payee`.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    from_: Did = Field(..., alias='from')
    payee: Did
    period_index: int = Field(..., ge=0)
    """
    The period's number ([`Period::index`]).
    """
    subscription_id: str
    type: Literal['subscription_collected']


class SubscriptionCancelledEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    by: Did
    subscription_id: str
    type: Literal['subscription_cancelled']


class ContributionSubmittedEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    bounty_id: str
    contribution_id: str
    contributor: Did
    speed_bps: int = Field(..., ge=0, le=65535)
    type: Literal['contribution_submitted']


class BountyClosedEvent(BaseModel):
    """
    Every slot scored or the scoring window ended: `refunded` returned
    to the lead.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    bounty_id: str
    lead: Did
    paid: Amount
    refunded: Amount
    type: Literal['bounty_closed']


class OrderPlacedEvent(BaseModel):
    """
    The legs' total is held from the buyer.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    atomic: bool
    buyer: Did
    legs: int = Field(..., ge=0, le=255)
    order_id: str
    total: Amount
    type: Literal['order_placed']


class LegApprovedEvent(BaseModel):
    """
    The leg was accepted with `provider_bps` of its price due to its
    provider's side (10,000 unless an arbiter ruled).
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    by: Approver
    leg: int = Field(..., ge=0, le=255)
    order_id: str
    provider_bps: int = Field(..., ge=0, le=65535)
    type: Literal['leg_approved']


class OrderUnwoundEvent(BaseModel):
    """
    A leg failed: `refunded` (the price of every leg not paid, the
    failed one included unless its `LegPaid` settled it) returned to the
    buyer.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    buyer: Did
    order_id: str
    refunded: Amount
    type: Literal['order_unwound']


class OrderCompletedEvent(BaseModel):
    """
    Every leg was paid.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    buyer: Did
    order_id: str
    type: Literal['order_completed']


class EvmAddress(RootModel[str]):
    root: str = Field(
        ...,
        examples=['0x5fbdb2315678afecb367f032d93f642f64180aa3'],
        pattern='^0x[0-9a-f]{40}$',
    )
    """
    An EVM address: 0x and 40 lowercase hex digits (no EIP-55 checksum).
    """


class InactiveBound(BaseModel):
    """
    The grant is expired or revoked: nothing can leave through it.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    kind: Literal['inactive']


class TotalBudgetBound(BaseModel):
    """
    The remaining total budget.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    kind: Literal['total_budget']


class DailyBudgetBound(BaseModel):
    """
    The daily budget over the UTC days left in the window (today counts
    with what is left of it).
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    days: int = Field(..., ge=0)
    kind: Literal['daily_budget']


class ParentBound(BaseModel):
    """
    A grant above this one binds first.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    kind: Literal['parent']


class ExposureBound(
    RootModel[InactiveBound | TotalBudgetBound | DailyBudgetBound | ParentBound]
):
    root: InactiveBound | TotalBudgetBound | DailyBudgetBound | ParentBound = Field(
        ..., discriminator='kind'
    )
    """
    The limit that binds a grant's [`Exposure`].
    """


class FaucetRequest(BaseModel):
    """
    Dev mode: the node deposits from its operator key.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    amount: Amount
    to: Did


class Hash32(RootModel[str]):
    root: str = Field(
        ...,
        examples=['0x0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0'],
        pattern='^0x[0-9a-f]{64}$',
    )
    """
    A 32-byte hash (a transaction's or a block's): 0x and 64 lowercase hex digits.
    """


class HoldStatus(Enum):
    """
    Where a hold stands.
    """

    reserved = 'reserved'
    released = 'released'
    voided = 'voided'
    expired = 'expired'


class IdentityKind(Enum):
    """
    What kind of identity a did:key is registered as.
    """

    principal = 'principal'
    agent = 'agent'
    session = 'session'


class LegFailure(Enum):
    """
    Why a leg failed.
    """

    declined = 'declined'
    deadline_missed = 'deadline_missed'
    dispute_lost = 'dispute_lost'
    arbitration_lapsed = 'arbitration_lapsed'


class FundedStatus(BaseModel):
    """
    Where a leg stands.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    state: Literal['funded']


class FailedStatus(BaseModel):
    """
    Where a leg stands.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    reason: LegFailure
    state: Literal['failed']


class UnwoundStatus(BaseModel):
    """
    Another leg failed, and this one's price returned to the buyer.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    state: Literal['unwound']


class Limits(BaseModel):
    """
    The spending limits of a grant. Absent options mean "no limit of this
    kind at this level"; the limits of every grant above still apply.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    allowed_categories: list[str] | None = None
    """
    When present, every payment must name one of these categories.
    """
    allowed_payees: list[Did] | None = None
    """
    When present, only these payees may be paid.
    """
    approval_threshold: Amount | None = None
    """
    Payments strictly above this amount wait for the principal's approval.
    """
    daily_approval_threshold: Amount | None = None
    """
    A payment that takes the UTC day's spending through the grant
    strictly above this amount waits for the principal's approval, so a
    series of payments each below `approval_threshold` cannot add up past
    the principal unseen.
    """
    daily_budget: Amount
    denied_payees: list[Did] | None = None
    """
    These payees may never be paid.
    """
    max_per_payment: Amount
    total_budget: Amount | None = None


class ListingKind(Enum):
    """
    What a listing offers.
    """

    service = 'service'
    dataset = 'dataset'


class ListingStatus(Enum):
    listed = 'listed'
    withdrawn = 'withdrawn'


class LogEntry(BaseModel):
    """
    `GET /v1/log/entries/{index}`: one leaf of the log.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    index: int = Field(..., ge=0)
    leaf: str
    """
    Base64 of the leaf (the journal entry's bytes).
    """
    leaf_hash: str
    """
    Base64 of its RFC 9162 leaf hash.
    """


class OrderLeg(BaseModel):
    """
    One leg of an order: who delivers it, for how much, by when.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    deadline_s: int = Field(..., ge=0)
    """
    Seconds from the order for the delivery: 60 s to 90 days.
    """
    description: str | None = None
    """
    What the leg is, at most 256 bytes (a milestone's name).
    """
    price: Amount
    provider: Did


class OrderStatus(Enum):
    open = 'open'
    unwinding = 'unwinding'
    completed = 'completed'
    unwound = 'unwound'


class Part(BaseModel):
    """
    One payee's part of a released hold.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    to: Did


class Period(Enum):
    """
    How often a subscription may be collected. Days and weeks count from
    the Unix epoch in UTC (weeks start on Thursdays, as the epoch did);
    months are UTC calendar months.
    """

    day = 'day'
    week = 'week'
    month = 'month'


class PostBounty(BaseModel):
    """
    A lead locks `price × contributions` for up to `contributions`
    results; `validator` scores each. A contribution submitted by
    `full_pay_until` earns `price × score`; later, the share falls linearly
    to zero at `closes_at`, when submissions end. The validator scores
    until `closes_at + scoring_window_s`; then, or once every slot is
    scored, the rest returns to `from`.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    bounty_id: str
    """
    Chosen by the client (the same characters as a subscription id).
    """
    category: str | None = None
    close_s: int = Field(..., ge=0)
    """
    Seconds from now, after `full_pay_s`, at most 90 days: submissions
    end, at zero pay.
    """
    contributions: int = Field(..., ge=0)
    """
    1 to 1,000 ([`crate::constants::BOUNTY_CONTRIBUTIONS_MAX`]).
    """
    description: str | None = None
    """
    What is asked, at most 512 bytes.
    """
    from_: Did = Field(..., alias='from')
    full_pay_s: int = Field(..., ge=0)
    """
    Seconds from now: full pay for results submitted until then.
    """
    price: Amount
    scoring_window_s: int | None = Field(None, ge=0)
    """
    Seconds the validator has after the close: 60 s to 7 days, one day
    if absent.
    """
    validator: Did


class PerCallPricing(BaseModel):
    """
    A fixed price for each call (for a dataset: each licensed use).
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    model: Literal['per_call']
    price: Amount


class PerUnitPricing(BaseModel):
    """
    A price for each unit of work, e.g. a token or a kilobyte.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    model: Literal['per_unit']
    price: Amount
    unit: str


class PerTaskPricing(BaseModel):
    """
    A fixed price for a whole task.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    model: Literal['per_task']
    price: Amount


class OnQuotePricing(BaseModel):
    """
    Priced by quote only.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    model: Literal['on_quote']


class Pricing(
    RootModel[PerCallPricing | PerUnitPricing | PerTaskPricing | OnQuotePricing]
):
    root: PerCallPricing | PerUnitPricing | PerTaskPricing | OnQuotePricing = Field(
        ..., discriminator='model'
    )
    """
    How a listing is priced.
    """


class QuoteStatus(Enum):
    open = 'open'
    accepted = 'accepted'
    closed = 'closed'


class Receipt(BaseModel):
    """
    A receipt as served by `GET /v1/receipts/{index}`.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    checkpoint: str
    """
    The signed checkpoint the proof leads to.
    """
    inclusion_proof: list[str]
    """
    Base64 hashes, from the leaf up.
    """
    index: int = Field(..., ge=0)
    leaf: str
    """
    Base64 of the leaf: the journal entry's bytes.
    """
    leaf_hash: str
    """
    Base64 of the leaf's RFC 9162 hash.
    """
    tree_size: int = Field(..., ge=0)


class ReceiptRef(BaseModel):
    """
    A journaled command's place in the log.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    index: int = Field(..., ge=0)
    leaf_hash: str
    """
    Base64 of the RFC 9162 leaf hash.
    """


class Redeemed(BaseModel):
    """
    The best voucher redeemed on one sub-channel.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    nonce: int = Field(..., ge=0)


class RefundReason(Enum):
    """
    Why escrow returned to the buyer.
    """

    deadline_missed = 'deadline_missed'
    arbitration_lapsed = 'arbitration_lapsed'


class ReplicationHealth(BaseModel):
    """
    How a node of several fares in the journal they share.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    behind: int = Field(..., ge=0)
    """
    Entries the head holds that this node has not applied yet.
    """
    database_ok: bool
    """
    Whether this node's last call to the database succeeded.
    """
    head_size: int = Field(..., ge=0)
    """
    Entries the journal's head holds, when this node last read it.
    """
    leader_url: str
    """
    Where the leader takes commands (empty while none leads).
    """
    role: str
    """
    `leader` (this node takes commands) or `standby` (it follows and
    serves reads; commands are answered `not_leader`).
    """
    synchronous_standby: bool
    """
    Whether the database waits for a synchronous standby's flush before
    a commit returns (`synchronous_commit` and
    `synchronous_standby_names`, read at start): without one, an
    acknowledged batch lives on one machine until it is replicated.
    """
    term: int = Field(..., ge=0)
    """
    The term of the journal's head when this node last read it.
    """


class Reputation(BaseModel):
    """
    A score and how it was reached.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    age_days: int = Field(..., ge=0)
    age_points: int = Field(..., ge=0, le=65535)
    counterparty_points: int = Field(..., ge=0, le=65535)
    disputes_lost: int = Field(..., ge=0)
    disputes_won: int = Field(..., ge=0)
    distinct_counterparties: int = Field(..., ge=0)
    licences_sold: int = Field(..., ge=0)
    penalty_points: int = Field(..., ge=0, le=65535)
    qualifying_counterparties: int = Field(..., ge=0)
    """
    Counterparties old enough and paying enough to count.
    """
    qualifying_volume: Amount
    """
    What the qualifying counterparties paid.
    """
    quality_points: int = Field(..., ge=0, le=65535)
    refunds: int = Field(..., ge=0)
    score: int = Field(..., ge=0, le=65535)
    """
    0-1000.
    """
    tasks_paid: int = Field(..., ge=0)
    version: int = Field(..., ge=0)
    volume: Amount
    volume_points: int = Field(..., ge=0, le=65535)


class RfqStatus(Enum):
    open = 'open'
    awarded = 'awarded'
    expired = 'expired'


class Role(Enum):
    """
    What a grant makes its subject.
    """

    agent = 'agent'
    session = 'session'


class Side(Enum):
    """
    Which side made an offer.
    """

    buyer = 'buyer'
    provider = 'provider'


class Signature(RootModel[str]):
    root: str = Field(..., pattern='^[0-9a-f]{128}$', title='Signature')
    """
    An Ed25519 signature
    """


class Split(BaseModel):
    """
    One payee's share of a release, in basis points of the hold.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    bps: int = Field(..., ge=0, le=65535)
    to: Did


class SubscriptionStatus(Enum):
    active = 'active'
    cancelled = 'cancelled'
    ended = 'ended'


class FundedStatus1(BaseModel):
    """
    Where a task stands; the variants own what each state knows.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    state: Literal['funded']


class RefundedStatus(BaseModel):
    """
    Where a task stands; the variants own what each state knows.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    reason: RefundReason
    state: Literal['refunded']


class Timestamp(RootModel[int]):
    root: int = Field(..., ge=0)
    """
    Seconds since 1970-01-01T00:00:00Z (Unix time, UTC).
    """


class Voucher(BaseModel):
    """
    A signed voucher: x402's channel receipt in the agentrail binding.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    accumulatedAmount: Amount
    channelId: ChannelId
    epoch: int = Field(..., ge=0)
    nonce: int = Field(..., ge=0)
    payeeId: Did
    payerSignature: Signature
    subChannelId: str


class AgentCapabilities(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    extensions: list[AgentExtension]
    pushNotifications: bool
    streaming: bool


class AgentCard(BaseModel):
    """
    An agent's card in the A2A Agent Card shape (protocol 0.3), built from
    its listings; agentrail's market terms ride in the
    `capabilities.extensions` entry named [`MARKET_EXTENSION_URI`].
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    capabilities: AgentCapabilities
    defaultInputModes: list[str]
    defaultOutputModes: list[str]
    description: str
    name: str
    preferredTransport: str
    protocolVersion: str
    provider: AgentProvider
    skills: list[AgentSkill]
    url: str
    version: str


class ApprovalResponse(BaseModel):
    """
    `GET /v1/approvals/{id}`.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    id: int = Field(..., ge=0)
    status: ApprovalStatus


class BalanceResponse(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    available: Amount
    did: Did
    held: Amount


class ChainBinding(BaseModel):
    """
    What a ledger's genesis binds it to on chain.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    chain_id: int = Field(..., ge=0)
    """
    The EIP-155 chain id.
    """
    operator: EvmAddress
    """
    The vault's operator: signs withdrawals and anchors the log.
    """
    vault: EvmAddress
    """
    The `AgentrailVault` holding the ledger's tokens.
    """


class ChainDeposit(BaseModel):
    """
    One `Deposited` log of the vault, as the operator credits it.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    block: int = Field(..., ge=0)
    """
    The block the log is in, and its hash, so an auditor can find it
    and a follower can tell when a reorg took it away.
    """
    block_hash: Hash32
    from_: EvmAddress = Field(..., alias='from')
    """
    Who sent the tokens.
    """
    id: int = Field(..., ge=0)
    """
    The vault's deposit id: 1, 2, 3, … — credited in this order, each once.
    """
    log_index: int = Field(..., ge=0)
    tx: Hash32
    """
    The transaction and the log's index in its block.
    """


class ChainHealth(BaseModel):
    """
    How a node bound to an EVM chain follows it.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    alarm: str | None = None
    """
    Set when the chain contradicts what the ledger credited (a reorg
    deeper than the confirmations): crediting stops until an operator
    looks. The node keeps serving.
    """
    anchored_size: int | None = Field(None, ge=0)
    """
    The log size last anchored in the vault.
    """
    binding: ChainBinding | None = None
    """
    The genesis' binding: chain id, vault and the operator's address.
    """
    confirmations: int = Field(..., ge=0)
    """
    Confirmations a deposit needs before it is credited.
    """
    deposits_credited: int = Field(..., ge=0)
    """
    Vault deposits credited (the next has id one more).
    """
    following: bool
    """
    Whether this node runs the chain follower (`serve --chain-rpc`).
    """
    head: int | None = Field(None, ge=0)
    """
    The newest block the follower saw.
    """
    last_error: str | None = None
    """
    The last RPC error, if the last call failed.
    """
    pending_withdrawals: int = Field(..., ge=0)
    """
    Withdrawals debited and not yet paid on chain.
    """
    rpc_ok: bool
    """
    Whether the last call to the chain's RPC endpoint succeeded.
    """
    safe: int | None = Field(None, ge=0)
    """
    The newest block with the required confirmations.
    """


class ClosingStatus(BaseModel):
    """
    The payer started a close; the payee may collect until `closes_at`.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    closes_at: Timestamp
    state: Literal['closing']


class ChannelStatus(
    RootModel[OpenStatus | ClosingStatus | ClosedStatus | ExpiredStatus]
):
    root: OpenStatus | ClosingStatus | ClosedStatus | ExpiredStatus = Field(
        ..., discriminator='state'
    )
    """
    Where a channel stands.
    """


class ChannelView(BaseModel):
    """
    A channel as readers see it.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    channel_id: ChannelId
    collected: Amount
    deposit: Amount
    dispute_window_s: int = Field(..., ge=0)
    expires_at: Timestamp
    from_: Did = Field(..., alias='from')
    payee: Did
    status: ChannelStatus
    sub_channels: dict[str, Redeemed]
    """
    The best voucher redeemed on each sub-channel.
    """
    voucher_key: Did


class RegisterPrincipalCommand(BaseModel):
    """
    A principal registers itself; signed by the principal.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    principal: Did
    type: Literal['register_principal']


class RevokeCommand(BaseModel):
    """
    Ends a grant and every grant below it; signed by its issuer or the
    principal above it.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    subject: Did
    type: Literal['revoke']


class DepositCommand(BaseModel):
    """
    Money enters the ledger; signed by the operator.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    amount: Amount
    chain: ChainDeposit | None = None
    """
    The vault's `Deposited` log this credits; required on a ledger bound
    to a chain, refused on one that is not.
    """
    idempotency_key: str
    """
    For a chain deposit: `eip155:<chain id>:deposit:<vault deposit id>`
    ([`crate::chain::deposit_key`]).
    """
    to: Did
    type: Literal['deposit']


class WithdrawCommand(BaseModel):
    """
    Money leaves the ledger; signed by the principal owning the account.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    amount: Amount
    from_: Did = Field(..., alias='from')
    idempotency_key: str
    to: EvmAddress | None = None
    """
    Where the vault pays the tokens; required on a ledger bound to a
    chain, refused on one that is not.
    """
    type: Literal['withdraw']


class TransferCommand(BaseModel):
    """
    Pays another account, or waits for approval above a threshold.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    amount: Amount
    category: str | None = None
    from_: Did = Field(..., alias='from')
    idempotency_key: str
    memo: str | None = None
    to: Did
    type: Literal['transfer']


class HoldCommand(BaseModel):
    """
    Reserves money for later release (escrow).
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    amount: Amount
    category: str | None = None
    expires_at: Timestamp | None = None
    """
    When the hold voids itself; at most 90 days ahead, 90 days if absent.
    """
    from_: Did = Field(..., alias='from')
    hold_id: str
    """
    Chosen by the client, unique among the holds the state keeps; a node
    also refuses an id its archive holds (`id_retired`), so it names one
    hold for good. Also the idempotency key.
    """
    type: Literal['hold']


class ReleaseCommand(BaseModel):
    """
    Pays a reserved hold out to one or several payees by basis points.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    hold_id: str
    splits: list[Split]
    type: Literal['release']


class OpenChannelCommand(BaseModel):
    """
    Opens a payment channel: reserves a deposit for a payee, counted
    once against the mandate; the payer then pays with vouchers.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    category: str | None = None
    deposit: Amount
    dispute_window_s: int | None = Field(None, ge=0)
    """
    Seconds the payee keeps to collect once the payer starts a close:
    60 s to 7 days, one day if absent.
    """
    expires_at: Timestamp | None = None
    """
    When the channel closes by itself; at most 90 days ahead, 30 days if
    absent.
    """
    from_: Did = Field(..., alias='from')
    idempotency_key: str
    """
    Chosen by the client; with `from` and `payee` it derives the channel
    id ([`crate::channel::ChannelId::derive`]). Also the idempotency key.
    """
    payee: Did
    type: Literal['open_channel']
    voucher_key: Did | None = None
    """
    Signs the channel's vouchers (a key the payer's paying client may
    hold); the open's signer if absent.
    """


class CollectChannelCommand(BaseModel):
    """
    The payee redeems its best vouchers; the channel stays open.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    amounts: dict[str, Amount] | None = None
    """
    Per sub-channel, the total to redeem when it is less than the
    voucher's: a payee collects what it charged, not the credit a payer
    signed ahead (the rest returns to the payer when the channel ends).
    A sub-channel absent here redeems its voucher's whole total. Each
    entry names a sub-channel one of the vouchers pays, and is at most
    that voucher's total.
    """
    channel_id: ChannelId
    listing_id: str | None = None
    """
    One of the payee's listings: what is collected is split by its
    revenue share (a model's creator and its host, say) in this
    command. The payee alone if absent.
    """
    type: Literal['collect_channel']
    vouchers: list[Voucher]
    """
    Applied in order; each must redeem more than its sub-channel did
    before, and no older nonce than it did. At most 64; may be empty for
    a close.
    """


class CloseChannelCommand(BaseModel):
    """
    The payee redeems its last vouchers and closes the channel at once;
    the rest of the deposit returns to the payer.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    amounts: dict[str, Amount] | None = None
    """
    Per sub-channel, the total to redeem when it is less than the
    voucher's: a payee collects what it charged, not the credit a payer
    signed ahead (the rest returns to the payer when the channel ends).
    A sub-channel absent here redeems its voucher's whole total. Each
    entry names a sub-channel one of the vouchers pays, and is at most
    that voucher's total.
    """
    channel_id: ChannelId
    listing_id: str | None = None
    """
    One of the payee's listings: what is collected is split by its
    revenue share (a model's creator and its host, say) in this
    command. The payee alone if absent.
    """
    type: Literal['close_channel']
    vouchers: list[Voucher]
    """
    Applied in order; each must redeem more than its sub-channel did
    before, and no older nonce than it did. At most 64; may be empty for
    a close.
    """


class PublishListingCommand(BaseModel):
    """
    Publishes an agent card (and reserves its stake).
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    capabilities: list[str]
    """
    1-16 tags of `[a-z0-9_.-]`, 1-32 bytes each.
    """
    content_hash: str | None = None
    """
    SHA-256 of the content, 64 lower-case hex digits: datasets only.
    """
    description: str | None = ''
    """
    At most 512 bytes.
    """
    endpoint: str | None = None
    """
    Where the service answers (`http://` or `https://`, at most 256 bytes).
    """
    kind: ListingKind
    listing_id: str
    """
    Chosen by the client, unique in the ledger; also the idempotency key.
    """
    name: str
    """
    1-64 bytes.
    """
    pricing: Pricing
    provider: Did
    revenue_share: list[Split] | None = None
    """
    Who shares the revenue, in basis points summing to 10,000; empty
    means the provider alone. A dataset's licence fees and a task
    delivered without a manifest are paid out this way.
    """
    stake: Amount | None = None
    type: Literal['publish_listing']


class RequestQuotesCommand(BaseModel):
    """
    A buyer asks providers for quotes.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    arbiter: Did | None = None
    """
    Decides a dispute; any identity but the operator, the buyer's side
    and the provider. Without one, deliveries cannot be disputed.
    """
    budget_max: Amount
    """
    No quote may ask more.
    """
    capability: str
    """
    The capability wanted; also the category the budget is charged to.
    """
    deadline_s: int = Field(..., ge=0)
    """
    Seconds from acceptance to the delivery deadline (60 s to 90 days).
    """
    description: str | None = ''
    expires_at: Timestamp | None = None
    """
    Quotes are taken until then: at most 30 days ahead, one day if absent.
    """
    from_: Did = Field(..., alias='from')
    """
    The account that will pay.
    """
    invited: list[Did] | None = None
    """
    Only these providers may quote (at most 32); anyone if empty.
    """
    review_window_s: int | None = Field(None, ge=0)
    """
    Seconds the buyer keeps to approve or dispute a delivery before it
    approves by default (60 s to 7 days; one day if absent).
    """
    rfq_id: str
    """
    Chosen by the client, unique among the records the ledger keeps
    (and, at a node, among those archived: `id_retired`).
    """
    type: Literal['request_quotes']
    validator: Did | None = None
    """
    May approve a delivery in the buyer's place by signing its result
    hash.
    """


class SubmitQuoteCommand(BaseModel):
    """
    A provider quotes on a request.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    listing_id: str | None = None
    """
    The provider's listing the work comes under (its stake backs the
    task); it must offer the capability asked for.
    """
    note: str | None = None
    """
    At most 256 bytes.
    """
    price: Amount
    provider: Did
    quote_id: str
    """
    Chosen by the client, unique among the records the ledger keeps
    (and, at a node, among those archived: `id_retired`).
    """
    rfq_id: str
    type: Literal['submit_quote']


class DeliverTaskCommand(BaseModel):
    """
    The provider delivers a task's result and its contribution manifest.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    manifest: list[Split] | None = None
    """
    Empty: the listing's revenue share, or the provider alone.
    """
    result_hash: str
    """
    SHA-256 of the result, 64 lower-case hex digits.
    """
    task_id: str
    type: Literal['deliver_task']
    uri: str | None = None


class LicenseDatasetCommand(BaseModel):
    """
    Buys one licensed use of a dataset.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    from_: Did = Field(..., alias='from')
    """
    The account that pays and holds the licence.
    """
    license_id: str
    """
    Chosen by the client, unique among the records the ledger keeps
    (and, at a node, among those archived: `id_retired`);
    also the idempotency key.
    """
    listing_id: str
    type: Literal['license_dataset']


class SettleWithdrawalCommand(BaseModel):
    """
    Records that the vault paid a pending withdrawal; signed by the
    operator once the chain shows the payout.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    block: int = Field(..., ge=0)
    id: int = Field(..., ge=0)
    tx: Hash32
    type: Literal['settle_withdrawal']


class ChargeMandateCommand(BaseModel):
    """
    An agent (or a session) charges its mandate for a payment it makes
    off the ledger, before making it (x402's `exact`, a token transfer
    on a chain): the grants' limits apply and the amount counts against
    their budgets. No ledger money moves.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    amount: Amount
    from_: Did = Field(..., alias='from')
    """
    The account whose grants are charged: the signer's own (an agent),
    or its agent's (a session).
    """
    idempotency_key: str
    payee: str
    """
    Who is paid, as a CAIP-10 account id (`eip155:8453:0x…`): 1-128
    characters of A-Z, a-z, 0-9, ':', '-', '_', '.'.
    """
    reference: str
    """
    The payment's own reference, the same character set (x402 `exact`:
    the authorization's nonce).
    """
    type: Literal['charge_mandate']


class SubscribeCommand(BaseModel):
    """
    A payer's side lets a payee collect at most so much per period.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    amount: Amount
    """
    The most one period's collect takes.
    """
    category: str | None = None
    """
    Checked against the mandate's categories at every collect.
    """
    ends_at: Timestamp | None = None
    """
    When collecting stops; open-ended if absent.
    """
    from_: Did = Field(..., alias='from')
    payee: Did
    period: Period
    subscription_id: str
    """
    Chosen by the client: 1-64 characters of A-Z, a-z, 0-9, '_', '-',
    '.', ':'. Also the idempotency key.
    """
    type: Literal['subscribe']


class PostBountyCommand(BaseModel):
    """
    A lead locks a bounty's budget for contributions a validator scores.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    bounty_id: str
    """
    Chosen by the client (the same characters as a subscription id).
    """
    category: str | None = None
    close_s: int = Field(..., ge=0)
    """
    Seconds from now, after `full_pay_s`, at most 90 days: submissions
    end, at zero pay.
    """
    contributions: int = Field(..., ge=0)
    """
    1 to 1,000 ([`crate::constants::BOUNTY_CONTRIBUTIONS_MAX`]).
    """
    description: str | None = None
    """
    What is asked, at most 512 bytes.
    """
    from_: Did = Field(..., alias='from')
    full_pay_s: int = Field(..., ge=0)
    """
    Seconds from now: full pay for results submitted until then.
    """
    price: Amount
    scoring_window_s: int | None = Field(None, ge=0)
    """
    Seconds the validator has after the close: 60 s to 7 days, one day
    if absent.
    """
    type: Literal['post_bounty']
    validator: Did


class SubmitContributionCommand(BaseModel):
    """
    A contributor's result: its hash, and who shares the payout (the
    contributor alone if empty).
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    bounty_id: str
    contribution_id: str
    """
    Unique within the bounty; also the idempotency key.
    """
    contributor: Did
    manifest: list[Split] | None = None
    result_hash: str
    type: Literal['submit_contribution']


class PlaceOrderCommand(BaseModel):
    """
    A buyer's side binds several legs into one escrowed order.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    arbiter: Did | None = None
    """
    Who resolves a disputed leg; disputes are impossible without one.
    """
    atomic: bool | None = False
    category: str | None = None
    from_: Did = Field(..., alias='from')
    legs: list[OrderLeg]
    order_id: str
    """
    Chosen by the client (the same characters as a subscription id).
    """
    review_window_s: int | None = Field(None, ge=0)
    """
    Seconds the buyer has to approve or dispute a delivery: 60 s to 7
    days, one day if absent. Silence approves.
    """
    type: Literal['place_order']


class DeliverLegCommand(BaseModel):
    """
    The leg's provider delivers: the result's hash, and who shares its
    price (the provider alone if empty).
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    leg: int = Field(..., ge=0, le=255)
    manifest: list[Split] | None = None
    order_id: str
    result_hash: str
    type: Literal['deliver_leg']


class ContributionView(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    contribution_id: str
    contributor: Did
    manifest: list[Split]
    parts: list[Part] | None = None
    result_hash: str
    score_bps: int | None = Field(None, ge=0, le=65535)
    speed_bps: int = Field(..., ge=0, le=65535)
    """
    The speed factor its submission time earned, in basis points.
    """
    submitted_at: Timestamp


class Delivery(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    delivered_at: Timestamp
    manifest: list[Split]
    """
    The manifest in force: contributors and their basis points.
    """
    result_hash: str
    uri: str | None = None


class ErrorBody(BaseModel):
    """
    Every error: `{"error":{"code":"…","message":"…","param":"…"}}`.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    error: ErrorDetail


class WithdrawalRequestedEvent(BaseModel):
    """
    A withdrawal debited for payment on chain, waiting for the vault.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    from_: Did = Field(..., alias='from')
    id: int = Field(..., ge=0)
    to: EvmAddress
    type: Literal['withdrawal_requested']


class WithdrawalPaidEvent(BaseModel):
    """
    The vault paid withdrawal `id` in transaction `tx`.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    from_: Did = Field(..., alias='from')
    id: int = Field(..., ge=0)
    to: EvmAddress
    tx: Hash32
    type: Literal['withdrawal_paid']


class PaymentPendingEvent(BaseModel):
    """
    A payment above an approval threshold: its amount is held until the
    principal approves or declines it, or `expires_at` passes.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    approval_id: int = Field(..., ge=0)
    expires_at: Timestamp
    from_: Did = Field(..., alias='from')
    to: Did
    type: Literal['payment_pending']


class HoldReservedEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    expires_at: Timestamp
    from_: Did = Field(..., alias='from')
    hold_id: str
    type: Literal['hold_reserved']


class HoldReleasedEvent(BaseModel):
    """
    `from`'s held money paid out as `parts`.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    from_: Did = Field(..., alias='from')
    hold_id: str
    parts: list[Part]
    type: Literal['hold_released']


class ChannelOpenedEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    channel_id: ChannelId
    deposit: Amount
    expires_at: Timestamp
    from_: Did = Field(..., alias='from')
    payee: Did
    type: Literal['channel_opened']
    voucher_key: Did


class ChannelCollectedEvent(BaseModel):
    """
    `amount` of `from`'s held deposit moved to the payee now;
    `collected` is the channel's total.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    channel_id: ChannelId
    collected: Amount
    from_: Did = Field(..., alias='from')
    parts: list[Part] | None = None
    """
    The collect split by the payee's listing: who received what
    (the payee alone received `amount` if empty).
    """
    payee: Did
    type: Literal['channel_collected']


class ChannelClosingEvent(BaseModel):
    """
    The payer started a close: the payee may collect until `closes_at`.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    channel_id: ChannelId
    closes_at: Timestamp
    type: Literal['channel_closing']


class ListingPublishedEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    kind: ListingKind
    listing_id: str
    provider: Did
    stake: Amount
    type: Literal['listing_published']


class QuotesRequestedEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    budget_max: Amount
    buyer: Did
    capability: str
    expires_at: Timestamp
    rfq_id: str
    type: Literal['quotes_requested']


class QuoteCounteredEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    by: Side
    price: Amount
    quote_id: str
    round: int = Field(..., ge=0, le=255)
    type: Literal['quote_countered']


class TaskFundedEvent(BaseModel):
    """
    The buyer accepted: `price` is reserved from its account in escrow
    until `deadline`, under terms whose canonical hash is `terms_hash`.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    buyer: Did
    deadline: Timestamp
    price: Amount
    provider: Did
    quote_id: str
    task_id: str
    terms_hash: str
    type: Literal['task_funded']


class TaskDeliveredEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    manifest: list[Split]
    provider: Did
    result_hash: str
    review_ends_at: Timestamp
    task_id: str
    type: Literal['task_delivered']


class TaskApprovedEvent(BaseModel):
    """
    `buyer`'s escrow paid the contributors of the manifest.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    buyer: Did
    by: Approver
    parts: list[Part]
    task_id: str
    type: Literal['task_approved']


class TaskDisputedEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    arbiter: Did
    arbitration_ends_at: Timestamp
    task_id: str
    type: Literal['task_disputed']


class DisputeResolvedEvent(BaseModel):
    """
    The arbiter ruled: `parts` to the contributors, `refunded` to the
    buyer, and `slashed` of the provider's stake to the buyer.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    arbiter: Did
    buyer: Did
    parts: list[Part]
    provider: Did
    provider_bps: int = Field(..., ge=0, le=65535)
    refunded: Amount
    slashed: Amount
    task_id: str
    type: Literal['dispute_resolved']


class TaskRefundedEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    buyer: Did
    reason: RefundReason
    task_id: str
    type: Literal['task_refunded']


class DatasetLicensedEvent(BaseModel):
    """
    One licensed use: `price` paid to the creators as `parts`.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    content_hash: str
    license_id: str
    licensee: Did
    listing_id: str
    parts: list[Part]
    price: Amount
    type: Literal['dataset_licensed']


class SubscriptionCreatedEvent(BaseModel):
    """
    A payer's side let `payee` collect at most `amount` per period.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    from_: Did = Field(..., alias='from')
    payee: Did
    period: Period
    subscription_id: str
    type: Literal['subscription_created']


class BountyPostedEvent(BaseModel):
    """
    `budget` (price × contributions) is held from the lead.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    bounty_id: str
    budget: Amount
    closes_at: Timestamp
    lead: Did
    type: Literal['bounty_posted']


class ContributionScoredEvent(BaseModel):
    """
    The validator's score, and the payout it earned (`parts`, from the
    lead's held budget).
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    bounty_id: str
    contribution_id: str
    lead: Did
    parts: list[Part]
    score_bps: int = Field(..., ge=0, le=65535)
    type: Literal['contribution_scored']


class LegDeliveredEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    leg: int = Field(..., ge=0, le=255)
    order_id: str
    provider: Did
    result_hash: str
    review_ends_at: Timestamp
    type: Literal['leg_delivered']


class LegDisputedEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    arbiter: Did
    arbitration_ends_at: Timestamp
    leg: int = Field(..., ge=0, le=255)
    order_id: str
    type: Literal['leg_disputed']


class LegPaidEvent(BaseModel):
    """
    The leg's money left the escrow: `parts` to the provider's side,
    `refunded` to the buyer.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    buyer: Did
    leg: int = Field(..., ge=0, le=255)
    order_id: str
    parts: list[Part]
    refunded: Amount
    type: Literal['leg_paid']


class LegFailedEvent(BaseModel):
    """
    Something the ledger did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    leg: int = Field(..., ge=0, le=255)
    order_id: str
    reason: LegFailure
    type: Literal['leg_failed']


class Exposure(BaseModel):
    """
    The most money that can still leave through a grant before it expires,
    even if its key is stolen, and which limit decides it.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    bound: ExposureBound


class Grant(BaseModel):
    """
    The unsigned body of a grant.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    expires_at: Timestamp
    issuer: Did
    limits: Limits
    nonce: str
    """
    Issuer-chosen, so that two grants with equal terms have distinct ids.
    """
    not_before: Timestamp
    role: Role
    subject: Did
    version: int = Field(..., ge=0)


class Health(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    chain: ChainHealth | None = None
    """
    The chain this ledger is bound to, and how its follower fares;
    absent on a ledger with no chain.
    """
    clock: Timestamp
    dev: bool
    journal_len: int = Field(..., ge=0)
    network: str
    """
    The network id channel vouchers sign (`agentrail:<log origin>`).
    """
    operator: Did
    """
    The ledger's operator (its genesis): what an audit replays from.
    """
    replication: ReplicationHealth | None = None
    """
    On a node of several sharing a journal in PostgreSQL: whether this
    one leads and how far behind the journal it is; absent on a node of
    its own.
    """
    status: str


class HoldResponse(BaseModel):
    """
    `GET /v1/holds/{id}`.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    id: str
    status: HoldStatus


class DeliveredStatus(BaseModel):
    """
    Where a leg stands.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    manifest: list[Split]
    result_hash: str
    review_ends_at: Timestamp
    state: Literal['delivered']


class DisputedStatus(BaseModel):
    """
    Where a leg stands.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    arbitration_ends_at: Timestamp
    manifest: list[Split]
    reason: str
    result_hash: str
    state: Literal['disputed']


class ApprovedStatus(BaseModel):
    """
    Accepted (by the buyer, its silence, or the arbiter) and waiting for
    the rest of an atomic order: `provider_bps` of its price is due.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    manifest: list[Split]
    provider_bps: int = Field(..., ge=0, le=65535)
    state: Literal['approved']


class PaidStatus(BaseModel):
    """
    Paid out: `parts` to the provider's side, `refunded` to the buyer.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    parts: list[Part]
    refunded: Amount
    state: Literal['paid']


class LegStatus(
    RootModel[
        FundedStatus
        | DeliveredStatus
        | DisputedStatus
        | ApprovedStatus
        | PaidStatus
        | FailedStatus
        | UnwoundStatus
    ]
):
    root: (
        FundedStatus
        | DeliveredStatus
        | DisputedStatus
        | ApprovedStatus
        | PaidStatus
        | FailedStatus
        | UnwoundStatus
    ) = Field(..., discriminator='state')
    """
    Where a leg stands.
    """


class LegView(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    deadline: Timestamp
    leg: int = Field(..., ge=0, le=255)
    status: LegStatus
    terms: OrderLeg


class LicenseView(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    content_hash: str
    license_id: str
    licensed_at: Timestamp
    licensee: Did
    listing_id: str
    parts: list[Part]
    price: Amount


class ListingView(BaseModel):
    """
    Publishes an agent card. Signed by the provider, its session, or its
    principal. A stake, if any, is reserved from the provider's account
    (counted against its mandate like a hold) while the listing stands, and
    is slashed to the buyer when the provider loses a dispute.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    capabilities: list[str]
    """
    1-16 tags of `[a-z0-9_.-]`, 1-32 bytes each.
    """
    content_hash: str | None = None
    """
    SHA-256 of the content, 64 lower-case hex digits: datasets only.
    """
    description: str | None = ''
    """
    At most 512 bytes.
    """
    endpoint: str | None = None
    """
    Where the service answers (`http://` or `https://`, at most 256 bytes).
    """
    kind: ListingKind
    listing_id: str
    """
    Chosen by the client, unique in the ledger; also the idempotency key.
    """
    name: str
    """
    1-64 bytes.
    """
    open_tasks: int = Field(..., ge=0)
    """
    Tasks under this listing not yet settled.
    """
    pricing: Pricing
    provider: Did
    published_at: Timestamp
    revenue_share: list[Split] | None = None
    """
    Who shares the revenue, in basis points summing to 10,000; empty
    means the provider alone. A dataset's licence fees and a task
    delivered without a manifest are paid out this way.
    """
    stake: Amount | None = None
    stake_held: Amount
    """
    What the stake still holds (zero once slashed or withdrawn).
    """
    status: ListingStatus


class OrderView(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    arbiter: Did | None = None
    atomic: bool
    buyer: Did
    held: Amount
    """
    What the escrow still holds.
    """
    legs: list[LegView]
    order_id: str
    placed_at: Timestamp
    review_window_s: int = Field(..., ge=0)
    status: OrderStatus
    total: Amount


class PendingApproval(BaseModel):
    """
    A payment above an approval threshold that waits for the principal.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    amount: Amount
    approval_id: int = Field(..., ge=0)
    """
    What `approve` and `decline` name.
    """
    category: str | None = None
    expires_at: Timestamp
    """
    When the held amount returns to `from` if nobody decides.
    """
    from_: Did = Field(..., alias='from')
    memo: str | None = None
    signer: Did
    """
    The key that asked for the payment (an agent or a session).
    """
    to: Did


class QuoteView(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    last_offer_by: Side
    listing_id: str | None = None
    note: str | None = None
    price: Amount
    """
    The latest offer, by `last_offer_by`.
    """
    provider: Did
    quote_id: str
    rfq_id: str
    rounds: int = Field(..., ge=0, le=255)
    """
    Offers made so far, the first quote included.
    """
    status: QuoteStatus


class RfqView(BaseModel):
    """
    A buyer asks for quotes. No money moves until a quote is accepted. The
    terms named here (deadline, review window, arbiter, validator) are what
    every quote agrees to.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    arbiter: Did | None = None
    """
    Decides a dispute; any identity but the operator, the buyer's side
    and the provider. Without one, deliveries cannot be disputed.
    """
    budget_max: Amount
    """
    No quote may ask more.
    """
    capability: str
    """
    The capability wanted; also the category the budget is charged to.
    """
    deadline_s: int = Field(..., ge=0)
    """
    Seconds from acceptance to the delivery deadline (60 s to 90 days).
    """
    description: str | None = ''
    expires_at: Timestamp
    from_: Did = Field(..., alias='from')
    """
    The account that will pay.
    """
    invited: list[Did] | None = None
    """
    Only these providers may quote (at most 32); anyone if empty.
    """
    quotes: list[QuoteView]
    review_window_s: int | None = Field(None, ge=0)
    """
    Seconds the buyer keeps to approve or dispute a delivery before it
    approves by default (60 s to 7 days; one day if absent).
    """
    rfq_id: str
    """
    Chosen by the client, unique among the records the ledger keeps
    (and, at a node, among those archived: `id_retired`).
    """
    status: RfqStatus
    validator: Did | None = None
    """
    May approve a delivery in the buyer's place by signing its result
    hash.
    """


class SignedGrant(BaseModel):
    """
    A grant and its issuer's signature over "agentrail grant v1\\n" and the grant's JCS bytes
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    grant: Grant
    signature: Signature


class Subscribe(BaseModel):
    """
    A payer's side lets `payee` collect at most `amount` per `period` from
    `from`, until `ends_at` or a cancellation. Each collect is charged to
    the mandate of the key that subscribed, as a payment to `payee` is.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    amount: Amount
    """
    The most one period's collect takes.
    """
    category: str | None = None
    """
    Checked against the mandate's categories at every collect.
    """
    ends_at: Timestamp | None = None
    """
    When collecting stops; open-ended if absent.
    """
    from_: Did = Field(..., alias='from')
    payee: Did
    period: Period
    subscription_id: str
    """
    Chosen by the client: 1-64 characters of A-Z, a-z, 0-9, '_', '-',
    '.', ':'. Also the idempotency key.
    """


class SubscriptionView(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    collected: Amount
    collects: int = Field(..., ge=0)
    created_at: Timestamp
    last_period: int | None = Field(None, ge=0)
    """
    The period number ([`Period::index`]) of the last collect.
    """
    status: SubscriptionStatus
    subscriber: Did
    """
    The key whose mandate each collect is charged to.
    """
    terms: Subscribe


class DeliveredStatus1(BaseModel):
    """
    Where a task stands; the variants own what each state knows.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    delivery: Delivery
    review_ends_at: Timestamp
    state: Literal['delivered']


class ApprovedStatus1(BaseModel):
    """
    Where a task stands; the variants own what each state knows.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    by: Approver
    delivery: Delivery
    parts: list[Part]
    state: Literal['approved']


class DisputedStatus1(BaseModel):
    """
    Where a task stands; the variants own what each state knows.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    arbitration_ends_at: Timestamp
    delivery: Delivery
    reason: str
    state: Literal['disputed']


class ResolvedStatus(BaseModel):
    """
    Where a task stands; the variants own what each state knows.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    delivery: Delivery
    parts: list[Part]
    provider_bps: int = Field(..., ge=0, le=65535)
    refunded: Amount
    slashed: Amount
    state: Literal['resolved']


class TaskStatus(
    RootModel[
        FundedStatus1
        | DeliveredStatus1
        | ApprovedStatus1
        | DisputedStatus1
        | ResolvedStatus
        | RefundedStatus
    ]
):
    root: (
        FundedStatus1
        | DeliveredStatus1
        | ApprovedStatus1
        | DisputedStatus1
        | ResolvedStatus
        | RefundedStatus
    ) = Field(..., discriminator='state')
    """
    Where a task stands; the variants own what each state knows.
    """


class TaskTerms(BaseModel):
    """
    The agreed terms of a task, fixed at acceptance; `terms_hash` in the
    events is SHA-256 of their RFC 8785 canonical JSON.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    arbiter: Did | None = None
    buyer: Did
    capability: str
    deadline: Timestamp
    listing_id: str | None = None
    price: Amount
    provider: Did
    quote_id: str
    review_window_s: int = Field(..., ge=0)
    rfq_id: str
    task_id: str
    validator: Did | None = None


class TaskView(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    funded_at: Timestamp
    status: TaskStatus
    terms: TaskTerms
    terms_hash: str


class ApprovalsPage(BaseModel):
    """
    A page of the payments waiting for a principal's approval, in id order;
    pass `next_after` as `after` for the next page. One read looks at a
    bounded number of approvals, so a page may hold fewer than asked (even
    none) while `next_after` says there may be more; `null` is the end.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    items: list[PendingApproval]
    next_after: int | None = Field(None, ge=0)


class BountyView(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    budget: Amount
    """
    `price × contributions`.
    """
    closes_at: Timestamp
    contributions: list[ContributionView]
    full_pay_until: Timestamp
    lead: Did
    paid: Amount
    refunded: Amount
    """
    Returned to the lead when the bounty closed.
    """
    scoring_ends_at: Timestamp
    status: BountyStatus
    terms: PostBounty


class RegisterAgentCommand(BaseModel):
    """
    A principal grants an agent a mandate; signed by the principal.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    grant: SignedGrant
    type: Literal['register_agent']


class IssueSessionCommand(BaseModel):
    """
    An agent grants a session key a narrower mandate; signed by the agent.
    """

    model_config = ConfigDict(
        extra='forbid',
        populate_by_name=True,
    )
    grant: SignedGrant
    type: Literal['issue_session']


class Command(
    RootModel[
        RegisterPrincipalCommand
        | RegisterAgentCommand
        | IssueSessionCommand
        | RevokeCommand
        | DepositCommand
        | WithdrawCommand
        | TransferCommand
        | HoldCommand
        | ReleaseCommand
        | VoidCommand
        | ApproveCommand
        | DeclineCommand
        | OpenChannelCommand
        | TopUpChannelCommand
        | CollectChannelCommand
        | CloseChannelCommand
        | StartChannelCloseCommand
        | PublishListingCommand
        | WithdrawListingCommand
        | RequestQuotesCommand
        | SubmitQuoteCommand
        | CounterQuoteCommand
        | AcceptQuoteCommand
        | DeliverTaskCommand
        | ApproveTaskCommand
        | DisputeTaskCommand
        | ResolveDisputeCommand
        | LicenseDatasetCommand
        | TickCommand
        | SettleWithdrawalCommand
        | ClaimDepositsCommand
        | ChargeMandateCommand
        | SubscribeCommand
        | CollectSubscriptionCommand
        | CancelSubscriptionCommand
        | PostBountyCommand
        | SubmitContributionCommand
        | ScoreContributionCommand
        | PlaceOrderCommand
        | DeliverLegCommand
        | ApproveLegCommand
        | DeclineLegCommand
        | DisputeLegCommand
        | ResolveLegCommand
    ]
):
    root: (
        RegisterPrincipalCommand
        | RegisterAgentCommand
        | IssueSessionCommand
        | RevokeCommand
        | DepositCommand
        | WithdrawCommand
        | TransferCommand
        | HoldCommand
        | ReleaseCommand
        | VoidCommand
        | ApproveCommand
        | DeclineCommand
        | OpenChannelCommand
        | TopUpChannelCommand
        | CollectChannelCommand
        | CloseChannelCommand
        | StartChannelCloseCommand
        | PublishListingCommand
        | WithdrawListingCommand
        | RequestQuotesCommand
        | SubmitQuoteCommand
        | CounterQuoteCommand
        | AcceptQuoteCommand
        | DeliverTaskCommand
        | ApproveTaskCommand
        | DisputeTaskCommand
        | ResolveDisputeCommand
        | LicenseDatasetCommand
        | TickCommand
        | SettleWithdrawalCommand
        | ClaimDepositsCommand
        | ChargeMandateCommand
        | SubscribeCommand
        | CollectSubscriptionCommand
        | CancelSubscriptionCommand
        | PostBountyCommand
        | SubmitContributionCommand
        | ScoreContributionCommand
        | PlaceOrderCommand
        | DeliverLegCommand
        | ApproveLegCommand
        | DeclineLegCommand
        | DisputeLegCommand
        | ResolveLegCommand
    ) = Field(..., discriminator='type')
    """
    A request to change the ledger. Every variant names what it touches; the
    signer is carried beside it (see [`Authenticated`]).
    """


class Discovered(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    listing: ListingView
    reputation: int = Field(..., ge=0, le=65535)


class DiscoveryPage(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    listings: list[Discovered]
    next_offset: int | None = Field(None, ge=0)
    """
    The offset of the next page, if there is one.
    """
    total: int = Field(..., ge=0)
    """
    Matching listings in all.
    """


class GrantStatus(BaseModel):
    """
    The state of an agent or session grant, for status pages and passports.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    active: bool
    exposure: Exposure
    """
    The most that can still leave through this grant and those above it.
    """
    grant: SignedGrant
    principal: Did
    remaining_today: Amount
    """
    What this grant's own daily budget still allows today.
    """
    remaining_total: Amount | None = None
    """
    What this grant's own total budget still allows, if it has one.
    """
    revoked_at: Timestamp | None = None
    spent_today: Amount
    spent_total: Amount


class RfqPage(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
    )
    next_offset: int | None = Field(None, ge=0)
    rfqs: list[RfqView]
    """
    Latest expiry first.
    """
    total: int = Field(..., ge=0)


class AgentSummary(BaseModel):
    """
    One agent of a principal (`GET /v1/principals/{did}/agents`): its grant
    with spending and exposure, its account and the sessions it issued.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    balance: BalanceResponse | None = None
    did: Did
    grant: GrantStatus
    sessions: list[Did]
    """
    Sessions that were live when the agent's newest session was issued,
    oldest first (`GET /v1/grants/{did}` tells where each stands).
    """


class AgentsPage(BaseModel):
    """
    A page of a principal's agents, oldest first; pass `next_offset` as
    `offset` for the next page.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    items: list[AgentSummary]
    next_offset: int | None = Field(None, ge=0)
    principal: Did
    total: int = Field(..., ge=0)
    """
    How many agents the principal registered in all.
    """


class CommandResponse(BaseModel):
    """
    The answer to an accepted command: where it is in the journal, and what
    it did.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    events: list[Event]
    index: int = Field(..., ge=0)
    receipt: ReceiptRef
    """
    Where the command sits in the transparency log; the full proof is at
    `GET /v1/receipts/{index}`.
    """
    time: Timestamp


class DuplicateEvent(BaseModel):
    """
    The command repeated an idempotency key with identical content:
    nothing was applied again, and this is the original outcome.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    original: list[Event]
    type: Literal['duplicate']


class HistoryItem(BaseModel):
    """
    One journal entry that concerns an identity.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    events: list[Event]
    index: int = Field(..., ge=0)
    signer: Did
    time: Timestamp


class HistoryPage(BaseModel):
    """
    A page of history, newest first; pass `next_before` as `before` for the
    next page.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    items: list[HistoryItem]
    next_before: int | None = Field(None, ge=0)


class Passport(BaseModel):
    """
    Everything the ledger knows of one identity.
    """

    model_config = ConfigDict(
        populate_by_name=True,
    )
    balance: BalanceResponse | None = None
    """
    The account of a principal or agent.
    """
    did: Did
    grant: GrantStatus | None = None
    """
    The grant of an agent or session: limits, spending, exposure.
    """
    kind: IdentityKind
    listings: list[ListingView] | None = Field([], validate_default=True)
    """
    Listings it published (withdrawn ones included).
    """
    owner_chain: list[Did]
    """
    From the identity up to its principal.
    """
    recent: list[HistoryItem]
    """
    The newest journal entries that concern it; each `index` is the
    log leaf whose receipt (`/v1/receipts/{index}`) proves it.
    """
    reputation: Reputation | None = None
    """
    Its reputation (principals and agents), with the components.
    """


class Event(
    RootModel[
        PrincipalRegisteredEvent
        | AgentRegisteredEvent
        | SessionIssuedEvent
        | GrantRevokedEvent
        | DepositedEvent
        | WithdrawnEvent
        | MandateChargedEvent
        | DepositUnclaimedEvent
        | DepositClaimedEvent
        | WithdrawalRequestedEvent
        | WithdrawalPaidEvent
        | TransferredEvent
        | PaymentPendingEvent
        | PaymentApprovedEvent
        | PaymentDeclinedEvent
        | PaymentExpiredEvent
        | HoldReservedEvent
        | HoldReleasedEvent
        | HoldVoidedEvent
        | HoldExpiredEvent
        | ChannelOpenedEvent
        | ChannelToppedUpEvent
        | ChannelCollectedEvent
        | ChannelClosingEvent
        | ChannelClosedEvent
        | ListingPublishedEvent
        | ListingWithdrawnEvent
        | QuotesRequestedEvent
        | QuoteSubmittedEvent
        | QuoteCounteredEvent
        | TaskFundedEvent
        | TaskDeliveredEvent
        | TaskApprovedEvent
        | TaskDisputedEvent
        | DisputeResolvedEvent
        | TaskRefundedEvent
        | DatasetLicensedEvent
        | SubscriptionCreatedEvent
        | SubscriptionCollectedEvent
        | SubscriptionCancelledEvent
        | BountyPostedEvent
        | ContributionSubmittedEvent
        | ContributionScoredEvent
        | BountyClosedEvent
        | OrderPlacedEvent
        | LegDeliveredEvent
        | LegDisputedEvent
        | LegApprovedEvent
        | LegPaidEvent
        | LegFailedEvent
        | OrderUnwoundEvent
        | OrderCompletedEvent
        | DuplicateEvent
    ]
):
    root: (
        PrincipalRegisteredEvent
        | AgentRegisteredEvent
        | SessionIssuedEvent
        | GrantRevokedEvent
        | DepositedEvent
        | WithdrawnEvent
        | MandateChargedEvent
        | DepositUnclaimedEvent
        | DepositClaimedEvent
        | WithdrawalRequestedEvent
        | WithdrawalPaidEvent
        | TransferredEvent
        | PaymentPendingEvent
        | PaymentApprovedEvent
        | PaymentDeclinedEvent
        | PaymentExpiredEvent
        | HoldReservedEvent
        | HoldReleasedEvent
        | HoldVoidedEvent
        | HoldExpiredEvent
        | ChannelOpenedEvent
        | ChannelToppedUpEvent
        | ChannelCollectedEvent
        | ChannelClosingEvent
        | ChannelClosedEvent
        | ListingPublishedEvent
        | ListingWithdrawnEvent
        | QuotesRequestedEvent
        | QuoteSubmittedEvent
        | QuoteCounteredEvent
        | TaskFundedEvent
        | TaskDeliveredEvent
        | TaskApprovedEvent
        | TaskDisputedEvent
        | DisputeResolvedEvent
        | TaskRefundedEvent
        | DatasetLicensedEvent
        | SubscriptionCreatedEvent
        | SubscriptionCollectedEvent
        | SubscriptionCancelledEvent
        | BountyPostedEvent
        | ContributionSubmittedEvent
        | ContributionScoredEvent
        | BountyClosedEvent
        | OrderPlacedEvent
        | LegDeliveredEvent
        | LegDisputedEvent
        | LegApprovedEvent
        | LegPaidEvent
        | LegFailedEvent
        | OrderUnwoundEvent
        | OrderCompletedEvent
        | DuplicateEvent
    ) = Field(..., discriminator='type')
    """
    Something the ledger did.
    """


CommandResponse.model_rebuild()
DuplicateEvent.model_rebuild()
HistoryItem.model_rebuild()
