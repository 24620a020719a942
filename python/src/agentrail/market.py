"""Hiring without a human: negotiation strategies and the loops that run them.

The strategies are the Rust client's (`agentrail_client::market`), decision
for decision: a buyer that ranks quotes by price and reputation, counters
once and accepts within its mandate; a provider that never goes below its
reservation price. `hire` and `answer_rfqs` run them against a node: every
move is a signed command, and the mandate bounds what a buyer can lock in
escrow whatever the strategy decides.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from . import models
from .api import USD, new_id, usd
from .client import AgentrailError, Client
from .keys import Key

BPS_WHOLE = 10_000
REPUTATION_MAX = 1_000


def per_call(price: USD) -> dict[str, Any]:
    """A listing's pricing: per call, in USD."""
    return {"model": "per_call", "price": usd(price)}


def per_unit(price: USD, unit: str) -> dict[str, Any]:
    return {"model": "per_unit", "price": usd(price), "unit": unit}


def per_task(price: USD) -> dict[str, Any]:
    return {"model": "per_task", "price": usd(price)}


def on_quote() -> dict[str, Any]:
    return {"model": "on_quote"}


def _atomic(amount: models.Amount) -> int:
    return int(amount.root)


def mandate_ceiling(grant: models.GrantStatus) -> int:
    """The most a buyer may commit in one payment under its mandate (atomic
    units): the smallest of its per-payment cap, what its daily and total
    budgets still allow, its approval threshold, and its exposure bound."""
    limits = grant.grant.grant.limits
    ceiling = min(_atomic(limits.max_per_payment), _atomic(grant.remaining_today))
    if grant.remaining_total is not None:
        ceiling = min(ceiling, _atomic(grant.remaining_total))
    if limits.approval_threshold is not None:
        ceiling = min(ceiling, _atomic(limits.approval_threshold))
    return min(ceiling, _atomic(grant.exposure.amount))


def _share_floor(amount: int, bps: int) -> int:
    return amount * bps // BPS_WHOLE


@dataclass(frozen=True)
class Move:
    """A strategy's decision: `accept`, `counter` (at `price`, atomic),
    `offer` (at `price`), `wait` or `walk_away`."""

    kind: Literal["accept", "counter", "offer", "wait", "walk_away"]
    price: int | None = None


@dataclass(frozen=True)
class BuyerStrategy:
    """`reputation_weight_bps`: how much a perfect reputation discounts a
    quote's price when ranking (at 5000, a 10 USD quote from a provider
    scored 1000 ranks like a 5 USD one from a provider scored 0).
    `counter_discount_bps`: the first counter asks this much below the quote."""

    reputation_weight_bps: int = 5_000
    counter_discount_bps: int = 1_500

    def ranked_price(self, quote: models.QuoteView, reputation: int) -> int:
        discount = self.reputation_weight_bps * min(reputation, REPUTATION_MAX) // REPUTATION_MAX
        price = _atomic(quote.price)
        return (
            price // BPS_WHOLE * (BPS_WHOLE - discount)
            + price % BPS_WHOLE * (BPS_WHOLE - discount) // BPS_WHOLE
        )

    def first_counter(self, quote: models.QuoteView) -> int:
        keep = BPS_WHOLE - min(self.counter_discount_bps, BPS_WHOLE - 1)
        return max(_share_floor(_atomic(quote.price), keep), 1)

    def choose(
        self, rfq: models.RfqView, reputations: dict[str, int], ceiling: int
    ) -> models.QuoteView | None:
        """The best open quote a counter could bring within `ceiling`, by
        ranked price (ties to the earlier quote); unknown providers score 0."""
        best: tuple[int, int, models.QuoteView] | None = None
        for position, quote in enumerate(rfq.quotes):
            if quote.status != models.QuoteStatus.open or self.first_counter(quote) > ceiling:
                continue
            key = (self.ranked_price(quote, reputations.get(quote.provider.root, 0)), position)
            if best is None or key < best[:2]:
                best = (*key, quote)
        return None if best is None else best[2]

    def respond(self, quote: models.QuoteView, ceiling: int) -> Move:
        """Counter once (in the quote's first round), then accept what the
        provider answers if it is within `ceiling`, else walk away."""
        if quote.status != models.QuoteStatus.open or quote.last_offer_by != models.Side.provider:
            return Move("walk_away")
        price = _atomic(quote.price)
        if quote.rounds == 1:
            counter = min(self.first_counter(quote), ceiling)
            if 0 < counter < price:
                return Move("counter", counter)
        return Move("accept") if price <= ceiling else Move("walk_away")


@dataclass(frozen=True)
class ProviderStrategy:
    """Asks `markup_bps` above its reservation price, meets any counter at
    or above it, and answers a lower one with the reservation price."""

    reservation_price: int
    markup_bps: int = 2_000

    @classmethod
    def of(cls, reservation_price: USD, markup_bps: int = 2_000) -> ProviderStrategy:
        return cls(int(usd(reservation_price)), markup_bps)

    def ask(self, rfq: models.RfqView) -> int | None:
        budget = _atomic(rfq.budget_max)
        if budget < self.reservation_price:
            return None
        return min(self.reservation_price + _share_floor(self.reservation_price, self.markup_bps), budget)

    def respond(self, quote: models.QuoteView) -> Move:
        if quote.status != models.QuoteStatus.open or quote.last_offer_by != models.Side.buyer:
            return Move("wait")
        return Move("offer", max(_atomic(quote.price), self.reservation_price))


class HireError(Exception):
    """No quote could be agreed within the mandate and the time given."""


@dataclass
class Hired:
    """A task funded in escrow: its id, the price locked and the entry."""

    task_id: str
    quote_id: str
    price: int
    entry: int


def _usd_text(atomic: int) -> str:
    from .units import to_usd

    return str(to_usd(atomic))


def hire(
    client: Client,
    key: Key,
    *,
    capability: str,
    budget_max: USD,
    deadline_s: int,
    description: str | None = None,
    account: str | None = None,
    strategy: BuyerStrategy = BuyerStrategy(),
    wait_s: float = 30.0,
    poll_s: float = 0.2,
    **request: Any,
) -> Hired:
    """Requests quotes, picks the best within the mandate, negotiates and
    accepts: the price is locked in escrow and the task starts. `request`
    passes `invited`, `arbiter`, `validator`, `review_window_s`, … to
    `request_quotes`."""
    account = account or key.did
    rfq_id = new_id()
    client.request_quotes(
        key,
        capability=capability,
        budget_max=budget_max,
        deadline_s=deadline_s,
        description=description,
        from_=account,
        rfq_id=rfq_id,
        **request,
    )
    deadline = time.monotonic() + wait_s
    try:
        ceiling = mandate_ceiling(client.grant_status(key.did))
    except AgentrailError:
        ceiling = int(usd(budget_max))  # a principal: only the budget binds
    ceiling = min(ceiling, int(usd(budget_max)))
    chosen: str | None = None
    while time.monotonic() < deadline:
        rfq = client.rfq(rfq_id)
        if chosen is None:
            reputations: dict[str, int] = {}
            for quote in rfq.quotes:
                try:
                    reputations[quote.provider.root] = client.reputation(quote.provider.root).score
                except AgentrailError:
                    pass
            best = strategy.choose(rfq, reputations, ceiling)
            if best is None:
                time.sleep(poll_s)
                continue
            chosen = best.quote_id
        quote = next(q for q in rfq.quotes if q.quote_id == chosen)
        if quote.last_offer_by == models.Side.buyer and quote.status == models.QuoteStatus.open:
            time.sleep(poll_s)  # the provider's turn
            continue
        move = strategy.respond(quote, ceiling)
        if move.kind == "counter":
            assert move.price is not None
            client.counter_quote(key, quote_id=quote.quote_id, price=_usd_text(move.price))
        elif move.kind == "accept":
            task_id = new_id()
            response = client.accept_quote(key, quote_id=quote.quote_id, task_id=task_id)
            return Hired(task_id, quote.quote_id, _atomic(quote.price), response.index)
        else:
            chosen = None  # walk away from this one; another may do
            time.sleep(poll_s)
    raise HireError(f"no quote for {capability!r} within {_usd_text(ceiling)} USD in {wait_s} s")


def answer_rfqs(client: Client, key: Key, capability: str, strategy: ProviderStrategy) -> int:
    """One pass of a provider: quotes on the open requests for `capability`
    it has not quoted, and answers the buyers' counters. How many moves it made."""
    moves = 0
    page = client.rfqs(capability=capability, limit=50)
    for rfq in page.rfqs:
        if rfq.status != models.RfqStatus.open:
            continue
        mine = [q for q in rfq.quotes if q.provider.root == key.did]
        if not mine:
            ask = strategy.ask(rfq)
            if ask is not None:
                client.submit_quote(key, rfq_id=rfq.rfq_id, provider=key.did, price=_usd_text(ask))
                moves += 1
            continue
        for quote in mine:
            move = strategy.respond(quote)
            if move.kind == "offer" and move.price is not None:
                client.counter_quote(key, quote_id=quote.quote_id, price=_usd_text(move.price))
                moves += 1
    return moves
