"""The clients' typed methods, generated from the node's OpenAPI document by
`tools/generate_api.py`. Do not edit.

Amounts are USD (`Decimal` or a decimal string), converted exactly to
atomic units; an `int` or a `float` is refused rather than guessed at.
Every command that moves money carries an idempotency key, generated when
not given.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from . import models
from .keys import Key
from .units import to_atomic

R = TypeVar("R")
USD = Decimal | str


def usd(value: USD) -> str:
    """USD to the wire's atomic units."""
    if not isinstance(value, (Decimal, str)):
        raise TypeError(
            f"an amount is USD as a Decimal or a decimal string, not {type(value).__name__}"
        )
    return str(to_atomic(value))


def new_id() -> str:
    from .signing import random_nonce

    return "py-" + random_nonce()


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


class Commands(Generic[R]):
    """One method per command; each signs and sends it with `_command`."""

    def _command(self, signer: Key, command: BaseModel) -> R:
        raise NotImplementedError

    def accept_quote(
        self, signer: Key, *, quote_id: str, task_id: str | None = None
    ) -> R:
        """The buyer accepts a quote: the price goes into escrow, a task begins."""
        return self._command(
            signer,
            models.AcceptQuoteCommand.model_validate(
                _present(
                    {
                        "type": "accept_quote",
                        "quote_id": quote_id,
                        "task_id": task_id or new_id(),
                    }
                )
            ),
        )

    def approve(self, signer: Key, *, approval_id: int) -> R:
        """The principal approves a payment waiting above a threshold."""
        return self._command(
            signer,
            models.ApproveCommand.model_validate(
                _present({"type": "approve", "approval_id": approval_id})
            ),
        )

    def approve_leg(
        self, signer: Key, *, leg: int, order_id: str, result_hash: str
    ) -> R:
        """The buyer's side accepts a delivered leg (naming the hash it checked)."""
        return self._command(
            signer,
            models.ApproveLegCommand.model_validate(
                _present(
                    {
                        "type": "approve_leg",
                        "leg": leg,
                        "order_id": order_id,
                        "result_hash": result_hash,
                    }
                )
            ),
        )

    def approve_task(self, signer: Key, *, result_hash: str, task_id: str) -> R:
        """The buyer or the validator approves a delivery: the escrow pays out."""
        return self._command(
            signer,
            models.ApproveTaskCommand.model_validate(
                _present(
                    {
                        "type": "approve_task",
                        "result_hash": result_hash,
                        "task_id": task_id,
                    }
                )
            ),
        )

    def cancel_subscription(self, signer: Key, *, subscription_id: str) -> R:
        """Either side ends a subscription."""
        return self._command(
            signer,
            models.CancelSubscriptionCommand.model_validate(
                _present(
                    {"type": "cancel_subscription", "subscription_id": subscription_id}
                )
            ),
        )

    def charge_mandate(
        self,
        signer: Key,
        *,
        amount: USD,
        payee: str,
        reference: str,
        from_: str | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """An agent (or a session) charges its mandate for a payment it makes
        off the ledger, before making it (x402's `exact`, a token transfer
        on a chain): the grants' limits apply and the amount counts against
        their budgets. No ledger money moves.
        """
        return self._command(
            signer,
            models.ChargeMandateCommand.model_validate(
                _present(
                    {
                        "type": "charge_mandate",
                        "amount": usd(amount),
                        "from": from_ or signer.did,
                        "idempotency_key": idempotency_key or new_id(),
                        "payee": payee,
                        "reference": reference,
                    }
                )
            ),
        )

    def claim_deposits(self, signer: Key, *, idempotency_key: str | None = None) -> R:
        """A key that chain deposits were kept for takes them into its own
        account; signed by that key. (An agent's key, whose account a
        principal opened: the vault's deposits to it wait for its consent.)
        """
        return self._command(
            signer,
            models.ClaimDepositsCommand.model_validate(
                _present(
                    {
                        "type": "claim_deposits",
                        "idempotency_key": idempotency_key or new_id(),
                    }
                )
            ),
        )

    def close_channel(
        self,
        signer: Key,
        *,
        channel_id: str,
        vouchers: list[models.Voucher | dict[str, Any]],
        amounts: dict[str, USD] | None = None,
        listing_id: str | None = None,
    ) -> R:
        """The payee redeems its last vouchers and closes the channel at once;
        the rest of the deposit returns to the payer.
        """
        return self._command(
            signer,
            models.CloseChannelCommand.model_validate(
                _present(
                    {
                        "type": "close_channel",
                        "amounts": (
                            None
                            if amounts is None
                            else {k: usd(v) for k, v in amounts.items()}
                        ),
                        "channel_id": channel_id,
                        "listing_id": listing_id,
                        "vouchers": vouchers,
                    }
                )
            ),
        )

    def collect_channel(
        self,
        signer: Key,
        *,
        channel_id: str,
        vouchers: list[models.Voucher | dict[str, Any]],
        amounts: dict[str, USD] | None = None,
        listing_id: str | None = None,
    ) -> R:
        """The payee redeems its best vouchers; the channel stays open."""
        return self._command(
            signer,
            models.CollectChannelCommand.model_validate(
                _present(
                    {
                        "type": "collect_channel",
                        "amounts": (
                            None
                            if amounts is None
                            else {k: usd(v) for k, v in amounts.items()}
                        ),
                        "channel_id": channel_id,
                        "listing_id": listing_id,
                        "vouchers": vouchers,
                    }
                )
            ),
        )

    def collect_subscription(
        self, signer: Key, *, amount: USD, subscription_id: str
    ) -> R:
        """The payee's side collects this period's money."""
        return self._command(
            signer,
            models.CollectSubscriptionCommand.model_validate(
                _present(
                    {
                        "type": "collect_subscription",
                        "amount": usd(amount),
                        "subscription_id": subscription_id,
                    }
                )
            ),
        )

    def counter_quote(self, signer: Key, *, price: USD, quote_id: str) -> R:
        """A counter-offer, by either side in turn."""
        return self._command(
            signer,
            models.CounterQuoteCommand.model_validate(
                _present(
                    {"type": "counter_quote", "price": usd(price), "quote_id": quote_id}
                )
            ),
        )

    def decline(self, signer: Key, *, approval_id: int) -> R:
        """The principal declines a payment waiting above a threshold."""
        return self._command(
            signer,
            models.DeclineCommand.model_validate(
                _present({"type": "decline", "approval_id": approval_id})
            ),
        )

    def decline_leg(self, signer: Key, *, leg: int, order_id: str) -> R:
        """The leg's provider declines it: the leg fails."""
        return self._command(
            signer,
            models.DeclineLegCommand.model_validate(
                _present({"type": "decline_leg", "leg": leg, "order_id": order_id})
            ),
        )

    def deliver_leg(
        self,
        signer: Key,
        *,
        leg: int,
        order_id: str,
        result_hash: str,
        manifest: list[models.Split | dict[str, Any]] | None = None,
    ) -> R:
        """The leg's provider delivers: the result's hash, and who shares its
        price (the provider alone if empty).
        """
        return self._command(
            signer,
            models.DeliverLegCommand.model_validate(
                _present(
                    {
                        "type": "deliver_leg",
                        "leg": leg,
                        "manifest": manifest,
                        "order_id": order_id,
                        "result_hash": result_hash,
                    }
                )
            ),
        )

    def deliver_task(
        self,
        signer: Key,
        *,
        result_hash: str,
        task_id: str,
        manifest: list[models.Split | dict[str, Any]] | None = None,
        uri: str | None = None,
    ) -> R:
        """The provider delivers a task's result and its contribution manifest."""
        return self._command(
            signer,
            models.DeliverTaskCommand.model_validate(
                _present(
                    {
                        "type": "deliver_task",
                        "manifest": manifest,
                        "result_hash": result_hash,
                        "task_id": task_id,
                        "uri": uri,
                    }
                )
            ),
        )

    def deposit(
        self,
        signer: Key,
        *,
        amount: USD,
        to: str,
        chain: models.ChainDeposit | dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """Money enters the ledger; signed by the operator."""
        return self._command(
            signer,
            models.DepositCommand.model_validate(
                _present(
                    {
                        "type": "deposit",
                        "amount": usd(amount),
                        "chain": chain,
                        "idempotency_key": idempotency_key or new_id(),
                        "to": to,
                    }
                )
            ),
        )

    def dispute_leg(self, signer: Key, *, leg: int, order_id: str, reason: str) -> R:
        """A request to change the ledger. Every variant names what it touches; the
        signer is carried beside it (see [`Authenticated`]).
        """
        return self._command(
            signer,
            models.DisputeLegCommand.model_validate(
                _present(
                    {
                        "type": "dispute_leg",
                        "leg": leg,
                        "order_id": order_id,
                        "reason": reason,
                    }
                )
            ),
        )

    def dispute_task(self, signer: Key, *, reason: str, task_id: str) -> R:
        """The buyer disputes a delivery before the arbiter named in the terms."""
        return self._command(
            signer,
            models.DisputeTaskCommand.model_validate(
                _present({"type": "dispute_task", "reason": reason, "task_id": task_id})
            ),
        )

    def hold(
        self,
        signer: Key,
        *,
        amount: USD,
        category: str | None = None,
        expires_at: int | None = None,
        from_: str | None = None,
        hold_id: str | None = None,
    ) -> R:
        """Reserves money for later release (escrow)."""
        return self._command(
            signer,
            models.HoldCommand.model_validate(
                _present(
                    {
                        "type": "hold",
                        "amount": usd(amount),
                        "category": category,
                        "expires_at": expires_at,
                        "from": from_ or signer.did,
                        "hold_id": hold_id or new_id(),
                    }
                )
            ),
        )

    def license_dataset(
        self,
        signer: Key,
        *,
        listing_id: str,
        from_: str | None = None,
        license_id: str | None = None,
    ) -> R:
        """Buys one licensed use of a dataset."""
        return self._command(
            signer,
            models.LicenseDatasetCommand.model_validate(
                _present(
                    {
                        "type": "license_dataset",
                        "from": from_ or signer.did,
                        "license_id": license_id or new_id(),
                        "listing_id": listing_id,
                    }
                )
            ),
        )

    def open_channel(
        self,
        signer: Key,
        *,
        deposit: USD,
        payee: str,
        category: str | None = None,
        dispute_window_s: int | None = None,
        expires_at: int | None = None,
        from_: str | None = None,
        idempotency_key: str | None = None,
        voucher_key: str | None = None,
    ) -> R:
        """Opens a payment channel: reserves a deposit for a payee, counted
        once against the mandate; the payer then pays with vouchers.
        """
        return self._command(
            signer,
            models.OpenChannelCommand.model_validate(
                _present(
                    {
                        "type": "open_channel",
                        "category": category,
                        "deposit": usd(deposit),
                        "dispute_window_s": dispute_window_s,
                        "expires_at": expires_at,
                        "from": from_ or signer.did,
                        "idempotency_key": idempotency_key or new_id(),
                        "payee": payee,
                        "voucher_key": voucher_key,
                    }
                )
            ),
        )

    def place_order(
        self,
        signer: Key,
        *,
        legs: list[models.OrderLeg | dict[str, Any]],
        order_id: str,
        arbiter: str | None = None,
        atomic: bool | None = None,
        category: str | None = None,
        from_: str | None = None,
        review_window_s: int | None = None,
    ) -> R:
        """A buyer's side binds several legs into one escrowed order."""
        return self._command(
            signer,
            models.PlaceOrderCommand.model_validate(
                _present(
                    {
                        "type": "place_order",
                        "arbiter": arbiter,
                        "atomic": atomic,
                        "category": category,
                        "from": from_ or signer.did,
                        "legs": legs,
                        "order_id": order_id,
                        "review_window_s": review_window_s,
                    }
                )
            ),
        )

    def post_bounty(
        self,
        signer: Key,
        *,
        bounty_id: str,
        close_s: int,
        contributions: int,
        full_pay_s: int,
        price: USD,
        validator: str,
        category: str | None = None,
        description: str | None = None,
        from_: str | None = None,
        scoring_window_s: int | None = None,
    ) -> R:
        """A lead locks a bounty's budget for contributions a validator scores."""
        return self._command(
            signer,
            models.PostBountyCommand.model_validate(
                _present(
                    {
                        "type": "post_bounty",
                        "bounty_id": bounty_id,
                        "category": category,
                        "close_s": close_s,
                        "contributions": contributions,
                        "description": description,
                        "from": from_ or signer.did,
                        "full_pay_s": full_pay_s,
                        "price": usd(price),
                        "scoring_window_s": scoring_window_s,
                        "validator": validator,
                    }
                )
            ),
        )

    def publish_listing(
        self,
        signer: Key,
        *,
        capabilities: list[str],
        kind: models.ListingKind | str,
        name: str,
        pricing: (
            models.Pricing
            | models.PerCallPricing
            | dict[str, Any]
            | models.PerUnitPricing
            | dict[str, Any]
            | models.PerTaskPricing
            | dict[str, Any]
            | models.OnQuotePricing
            | dict[str, Any]
        ),
        provider: str,
        content_hash: str | None = None,
        description: str | None = None,
        endpoint: str | None = None,
        listing_id: str | None = None,
        revenue_share: list[models.Split | dict[str, Any]] | None = None,
        stake: USD | None = None,
    ) -> R:
        """Publishes an agent card (and reserves its stake)."""
        return self._command(
            signer,
            models.PublishListingCommand.model_validate(
                _present(
                    {
                        "type": "publish_listing",
                        "capabilities": capabilities,
                        "content_hash": content_hash,
                        "description": description,
                        "endpoint": endpoint,
                        "kind": kind,
                        "listing_id": listing_id or new_id(),
                        "name": name,
                        "pricing": pricing,
                        "provider": provider,
                        "revenue_share": revenue_share,
                        "stake": None if stake is None else usd(stake),
                    }
                )
            ),
        )

    def release(
        self, signer: Key, *, hold_id: str, splits: list[models.Split | dict[str, Any]]
    ) -> R:
        """Pays a reserved hold out to one or several payees by basis points."""
        return self._command(
            signer,
            models.ReleaseCommand.model_validate(
                _present({"type": "release", "hold_id": hold_id, "splits": splits})
            ),
        )

    def request_quotes(
        self,
        signer: Key,
        *,
        budget_max: USD,
        capability: str,
        deadline_s: int,
        arbiter: str | None = None,
        description: str | None = None,
        expires_at: int | None = None,
        from_: str | None = None,
        invited: list[str] | None = None,
        review_window_s: int | None = None,
        rfq_id: str | None = None,
        validator: str | None = None,
    ) -> R:
        """A buyer asks providers for quotes."""
        return self._command(
            signer,
            models.RequestQuotesCommand.model_validate(
                _present(
                    {
                        "type": "request_quotes",
                        "arbiter": arbiter,
                        "budget_max": usd(budget_max),
                        "capability": capability,
                        "deadline_s": deadline_s,
                        "description": description,
                        "expires_at": expires_at,
                        "from": from_ or signer.did,
                        "invited": invited,
                        "review_window_s": review_window_s,
                        "rfq_id": rfq_id or new_id(),
                        "validator": validator,
                    }
                )
            ),
        )

    def resolve_dispute(self, signer: Key, *, provider_bps: int, task_id: str) -> R:
        """The arbiter splits a disputed task's escrow."""
        return self._command(
            signer,
            models.ResolveDisputeCommand.model_validate(
                _present(
                    {
                        "type": "resolve_dispute",
                        "provider_bps": provider_bps,
                        "task_id": task_id,
                    }
                )
            ),
        )

    def resolve_leg(
        self, signer: Key, *, leg: int, order_id: str, provider_bps: int
    ) -> R:
        """The order's arbiter rules on a disputed leg."""
        return self._command(
            signer,
            models.ResolveLegCommand.model_validate(
                _present(
                    {
                        "type": "resolve_leg",
                        "leg": leg,
                        "order_id": order_id,
                        "provider_bps": provider_bps,
                    }
                )
            ),
        )

    def revoke(self, signer: Key, *, subject: str) -> R:
        """Ends a grant and every grant below it; signed by its issuer or the
        principal above it.
        """
        return self._command(
            signer,
            models.RevokeCommand.model_validate(
                _present({"type": "revoke", "subject": subject})
            ),
        )

    def score_contribution(
        self,
        signer: Key,
        *,
        bounty_id: str,
        contribution_id: str,
        result_hash: str,
        score_bps: int,
    ) -> R:
        """The bounty's validator scores a contribution; its payout follows."""
        return self._command(
            signer,
            models.ScoreContributionCommand.model_validate(
                _present(
                    {
                        "type": "score_contribution",
                        "bounty_id": bounty_id,
                        "contribution_id": contribution_id,
                        "result_hash": result_hash,
                        "score_bps": score_bps,
                    }
                )
            ),
        )

    def settle_withdrawal(self, signer: Key, *, block: int, id: int, tx: str) -> R:
        """Records that the vault paid a pending withdrawal; signed by the
        operator once the chain shows the payout.
        """
        return self._command(
            signer,
            models.SettleWithdrawalCommand.model_validate(
                _present(
                    {"type": "settle_withdrawal", "block": block, "id": id, "tx": tx}
                )
            ),
        )

    def start_channel_close(self, signer: Key, *, channel_id: str) -> R:
        """The payer starts closing: the payee may still collect during the
        channel's dispute window, then the rest returns to the payer.
        """
        return self._command(
            signer,
            models.StartChannelCloseCommand.model_validate(
                _present({"type": "start_channel_close", "channel_id": channel_id})
            ),
        )

    def submit_contribution(
        self,
        signer: Key,
        *,
        bounty_id: str,
        contribution_id: str,
        contributor: str,
        result_hash: str,
        manifest: list[models.Split | dict[str, Any]] | None = None,
    ) -> R:
        """A contributor's result: its hash, and who shares the payout (the
        contributor alone if empty).
        """
        return self._command(
            signer,
            models.SubmitContributionCommand.model_validate(
                _present(
                    {
                        "type": "submit_contribution",
                        "bounty_id": bounty_id,
                        "contribution_id": contribution_id,
                        "contributor": contributor,
                        "manifest": manifest,
                        "result_hash": result_hash,
                    }
                )
            ),
        )

    def submit_quote(
        self,
        signer: Key,
        *,
        price: USD,
        provider: str,
        rfq_id: str,
        listing_id: str | None = None,
        note: str | None = None,
        quote_id: str | None = None,
    ) -> R:
        """A provider quotes on a request."""
        return self._command(
            signer,
            models.SubmitQuoteCommand.model_validate(
                _present(
                    {
                        "type": "submit_quote",
                        "listing_id": listing_id,
                        "note": note,
                        "price": usd(price),
                        "provider": provider,
                        "quote_id": quote_id or new_id(),
                        "rfq_id": rfq_id,
                    }
                )
            ),
        )

    def subscribe(
        self,
        signer: Key,
        *,
        amount: USD,
        payee: str,
        period: models.Period | str,
        subscription_id: str,
        category: str | None = None,
        ends_at: int | None = None,
        from_: str | None = None,
    ) -> R:
        """A payer's side lets a payee collect at most so much per period."""
        return self._command(
            signer,
            models.SubscribeCommand.model_validate(
                _present(
                    {
                        "type": "subscribe",
                        "amount": usd(amount),
                        "category": category,
                        "ends_at": ends_at,
                        "from": from_ or signer.did,
                        "payee": payee,
                        "period": period,
                        "subscription_id": subscription_id,
                    }
                )
            ),
        )

    def top_up_channel(
        self,
        signer: Key,
        *,
        amount: USD,
        channel_id: str,
        idempotency_key: str | None = None,
    ) -> R:
        """Adds to a channel's deposit, counted against the mandate."""
        return self._command(
            signer,
            models.TopUpChannelCommand.model_validate(
                _present(
                    {
                        "type": "top_up_channel",
                        "amount": usd(amount),
                        "channel_id": channel_id,
                        "idempotency_key": idempotency_key or new_id(),
                    }
                )
            ),
        )

    def void(self, signer: Key, *, hold_id: str) -> R:
        """Returns a reserved hold to its account."""
        return self._command(
            signer,
            models.VoidCommand.model_validate(
                _present({"type": "void", "hold_id": hold_id})
            ),
        )

    def withdraw(
        self,
        signer: Key,
        *,
        amount: USD,
        from_: str | None = None,
        idempotency_key: str | None = None,
        to: str | None = None,
    ) -> R:
        """Money leaves the ledger; signed by the principal owning the account."""
        return self._command(
            signer,
            models.WithdrawCommand.model_validate(
                _present(
                    {
                        "type": "withdraw",
                        "amount": usd(amount),
                        "from": from_ or signer.did,
                        "idempotency_key": idempotency_key or new_id(),
                        "to": to,
                    }
                )
            ),
        )

    def withdraw_listing(self, signer: Key, *, listing_id: str) -> R:
        """Withdraws a listing and returns its stake."""
        return self._command(
            signer,
            models.WithdrawListingCommand.model_validate(
                _present({"type": "withdraw_listing", "listing_id": listing_id})
            ),
        )


class Reads:
    """One method per read of the node's API."""

    def _get(self, path: str, model: Any, params: dict[str, Any] | None) -> Any:
        raise NotImplementedError

    def balance(self, did: str) -> models.BalanceResponse:
        """Available and held money of an account"""
        return self._get(f"/v1/accounts/{did}/balance", models.BalanceResponse, None)

    def history(
        self, did: str, *, before: int | None = None, limit: int | None = None
    ) -> models.HistoryPage:
        """Journal entries that concern an identity, newest first"""
        return self._get(
            f"/v1/accounts/{did}/history",
            models.HistoryPage,
            _present({"before": before, "limit": limit}),
        )

    def agent_card(self, did: str) -> models.AgentCard:
        """The identity's listings as an A2A Agent Card"""
        return self._get(f"/v1/agents/{did}/card", models.AgentCard, None)

    def approval(self, index: int) -> models.ApprovalResponse:
        """Where a payment awaiting approval stands"""
        return self._get(f"/v1/approvals/{index}", models.ApprovalResponse, None)

    def channel(self, id_: str) -> models.ChannelView:
        """A payment channel: parties, deposit, collected, status, the best voucher redeemed per sub-channel"""
        return self._get(f"/v1/channels/{id_}", models.ChannelView, None)

    def grant_status(self, did: str) -> models.GrantStatus:
        """Grant of an agent or session: limits, spending, exposure"""
        return self._get(f"/v1/grants/{did}", models.GrantStatus, None)

    def health(self) -> models.Health:
        """Liveness and journal length"""
        return self._get(f"/v1/health", models.Health, None)

    def hold_status(self, id_: str) -> models.HoldResponse:
        """Where a hold stands"""
        return self._get(f"/v1/holds/{id_}", models.HoldResponse, None)

    def license(self, id_: str) -> models.LicenseView:
        """A dataset licence: content hash, licensee, royalties paid"""
        return self._get(f"/v1/licenses/{id_}", models.LicenseView, None)

    def listings(
        self,
        *,
        capability: str | None = None,
        kind: str | None = None,
        max_price: str | None = None,
        min_reputation: int | None = None,
        offset: int | None = None,
        limit: int | None = None,
    ) -> models.DiscoveryPage:
        """Discovery: live listings filtered by capability, kind, price ceiling and minimum reputation, ranked, paginated"""
        return self._get(
            f"/v1/listings",
            models.DiscoveryPage,
            _present(
                {
                    "capability": capability,
                    "kind": kind,
                    "max_price": max_price,
                    "min_reputation": min_reputation,
                    "offset": offset,
                    "limit": limit,
                }
            ),
        )

    def listing(self, id_: str) -> models.ListingView:
        """A listing (agent card entry): pricing, stake, revenue share, status"""
        return self._get(f"/v1/listings/{id_}", models.ListingView, None)

    def log_entry(self, index: int) -> models.LogEntry:
        """One leaf of the log (a journal entry) and its hash"""
        return self._get(f"/v1/log/entries/{index}", models.LogEntry, None)

    def consistency(self, from_: int, to: int) -> models.ConsistencyProof:
        """RFC 9162 consistency proof between two tree sizes"""
        return self._get(
            f"/v1/log/proof/consistency",
            models.ConsistencyProof,
            _present({"from": from_, "to": to}),
        )

    def passport(self, did: str) -> models.Passport:
        """Owner chain, rights, balance and recent history of an identity"""
        return self._get(f"/v1/passports/{did}", models.Passport, None)

    def receipt(self, index: int) -> models.Receipt:
        """A self-contained receipt: leaf, inclusion proof and signed checkpoint"""
        return self._get(f"/v1/receipts/{index}", models.Receipt, None)

    def reputation(self, did: str) -> models.Reputation:
        """Reputation score (0-1000) and its components"""
        return self._get(f"/v1/reputation/{did}", models.Reputation, None)

    def rfqs(
        self,
        *,
        capability: str | None = None,
        provider: str | None = None,
        offset: int | None = None,
        limit: int | None = None,
    ) -> models.RfqPage:
        """Open requests for quotes, by capability and by a provider that may quote on them"""
        return self._get(
            f"/v1/rfqs",
            models.RfqPage,
            _present(
                {
                    "capability": capability,
                    "provider": provider,
                    "offset": offset,
                    "limit": limit,
                }
            ),
        )

    def rfq(self, id_: str) -> models.RfqView:
        """A request for quotes and its quotes"""
        return self._get(f"/v1/rfqs/{id_}", models.RfqView, None)

    def task(self, id_: str) -> models.TaskView:
        """An escrowed task: terms, terms hash, state"""
        return self._get(f"/v1/tasks/{id_}", models.TaskView, None)

    def subscription(self, id_: str) -> models.SubscriptionView:
        """A subscription: terms, the key whose mandate pays, what was collected and when"""
        return self._get(f"/v1/subscriptions/{id_}", models.SubscriptionView, None)

    def bounty(self, id_: str) -> models.BountyView:
        """A bounty: terms, budget, each contribution with its speed, score and payout"""
        return self._get(f"/v1/bounties/{id_}", models.BountyView, None)

    def order(self, id_: str) -> models.OrderView:
        """An order: its legs (or milestones), each leg's state, what the escrow holds"""
        return self._get(f"/v1/orders/{id_}", models.OrderView, None)

    def agents_of(
        self, did: str, *, offset: int | None = None, limit: int | None = None
    ) -> models.AgentsPage:
        """A principal's agents, oldest first: each grant with spending and exposure, account and sessions"""
        return self._get(
            f"/v1/principals/{did}/agents",
            models.AgentsPage,
            _present({"offset": offset, "limit": limit}),
        )

    def pending_approvals(
        self, did: str, *, after: int | None = None, limit: int | None = None
    ) -> models.ApprovalsPage:
        """Payments from a principal's accounts that wait for its approval, in id order"""
        return self._get(
            f"/v1/principals/{did}/approvals",
            models.ApprovalsPage,
            _present({"after": after, "limit": limit}),
        )


class AsyncReads:
    """The reads of `Reads`, awaited."""

    async def _get(self, path: str, model: Any, params: dict[str, Any] | None) -> Any:
        raise NotImplementedError

    async def balance(self, did: str) -> models.BalanceResponse:
        """Available and held money of an account"""
        return await self._get(
            f"/v1/accounts/{did}/balance", models.BalanceResponse, None
        )

    async def history(
        self, did: str, *, before: int | None = None, limit: int | None = None
    ) -> models.HistoryPage:
        """Journal entries that concern an identity, newest first"""
        return await self._get(
            f"/v1/accounts/{did}/history",
            models.HistoryPage,
            _present({"before": before, "limit": limit}),
        )

    async def agent_card(self, did: str) -> models.AgentCard:
        """The identity's listings as an A2A Agent Card"""
        return await self._get(f"/v1/agents/{did}/card", models.AgentCard, None)

    async def approval(self, index: int) -> models.ApprovalResponse:
        """Where a payment awaiting approval stands"""
        return await self._get(f"/v1/approvals/{index}", models.ApprovalResponse, None)

    async def channel(self, id_: str) -> models.ChannelView:
        """A payment channel: parties, deposit, collected, status, the best voucher redeemed per sub-channel"""
        return await self._get(f"/v1/channels/{id_}", models.ChannelView, None)

    async def grant_status(self, did: str) -> models.GrantStatus:
        """Grant of an agent or session: limits, spending, exposure"""
        return await self._get(f"/v1/grants/{did}", models.GrantStatus, None)

    async def health(self) -> models.Health:
        """Liveness and journal length"""
        return await self._get(f"/v1/health", models.Health, None)

    async def hold_status(self, id_: str) -> models.HoldResponse:
        """Where a hold stands"""
        return await self._get(f"/v1/holds/{id_}", models.HoldResponse, None)

    async def license(self, id_: str) -> models.LicenseView:
        """A dataset licence: content hash, licensee, royalties paid"""
        return await self._get(f"/v1/licenses/{id_}", models.LicenseView, None)

    async def listings(
        self,
        *,
        capability: str | None = None,
        kind: str | None = None,
        max_price: str | None = None,
        min_reputation: int | None = None,
        offset: int | None = None,
        limit: int | None = None,
    ) -> models.DiscoveryPage:
        """Discovery: live listings filtered by capability, kind, price ceiling and minimum reputation, ranked, paginated"""
        return await self._get(
            f"/v1/listings",
            models.DiscoveryPage,
            _present(
                {
                    "capability": capability,
                    "kind": kind,
                    "max_price": max_price,
                    "min_reputation": min_reputation,
                    "offset": offset,
                    "limit": limit,
                }
            ),
        )

    async def listing(self, id_: str) -> models.ListingView:
        """A listing (agent card entry): pricing, stake, revenue share, status"""
        return await self._get(f"/v1/listings/{id_}", models.ListingView, None)

    async def log_entry(self, index: int) -> models.LogEntry:
        """One leaf of the log (a journal entry) and its hash"""
        return await self._get(f"/v1/log/entries/{index}", models.LogEntry, None)

    async def consistency(self, from_: int, to: int) -> models.ConsistencyProof:
        """RFC 9162 consistency proof between two tree sizes"""
        return await self._get(
            f"/v1/log/proof/consistency",
            models.ConsistencyProof,
            _present({"from": from_, "to": to}),
        )

    async def passport(self, did: str) -> models.Passport:
        """Owner chain, rights, balance and recent history of an identity"""
        return await self._get(f"/v1/passports/{did}", models.Passport, None)

    async def receipt(self, index: int) -> models.Receipt:
        """A self-contained receipt: leaf, inclusion proof and signed checkpoint"""
        return await self._get(f"/v1/receipts/{index}", models.Receipt, None)

    async def reputation(self, did: str) -> models.Reputation:
        """Reputation score (0-1000) and its components"""
        return await self._get(f"/v1/reputation/{did}", models.Reputation, None)

    async def rfqs(
        self,
        *,
        capability: str | None = None,
        provider: str | None = None,
        offset: int | None = None,
        limit: int | None = None,
    ) -> models.RfqPage:
        """Open requests for quotes, by capability and by a provider that may quote on them"""
        return await self._get(
            f"/v1/rfqs",
            models.RfqPage,
            _present(
                {
                    "capability": capability,
                    "provider": provider,
                    "offset": offset,
                    "limit": limit,
                }
            ),
        )

    async def rfq(self, id_: str) -> models.RfqView:
        """A request for quotes and its quotes"""
        return await self._get(f"/v1/rfqs/{id_}", models.RfqView, None)

    async def task(self, id_: str) -> models.TaskView:
        """An escrowed task: terms, terms hash, state"""
        return await self._get(f"/v1/tasks/{id_}", models.TaskView, None)

    async def subscription(self, id_: str) -> models.SubscriptionView:
        """A subscription: terms, the key whose mandate pays, what was collected and when"""
        return await self._get(
            f"/v1/subscriptions/{id_}", models.SubscriptionView, None
        )

    async def bounty(self, id_: str) -> models.BountyView:
        """A bounty: terms, budget, each contribution with its speed, score and payout"""
        return await self._get(f"/v1/bounties/{id_}", models.BountyView, None)

    async def order(self, id_: str) -> models.OrderView:
        """An order: its legs (or milestones), each leg's state, what the escrow holds"""
        return await self._get(f"/v1/orders/{id_}", models.OrderView, None)

    async def agents_of(
        self, did: str, *, offset: int | None = None, limit: int | None = None
    ) -> models.AgentsPage:
        """A principal's agents, oldest first: each grant with spending and exposure, account and sessions"""
        return await self._get(
            f"/v1/principals/{did}/agents",
            models.AgentsPage,
            _present({"offset": offset, "limit": limit}),
        )

    async def pending_approvals(
        self, did: str, *, after: int | None = None, limit: int | None = None
    ) -> models.ApprovalsPage:
        """Payments from a principal's accounts that wait for its approval, in id order"""
        return await self._get(
            f"/v1/principals/{did}/approvals",
            models.ApprovalsPage,
            _present({"after": after, "limit": limit}),
        )
