"""Getting paid: HTTP 402 for ASGI apps (Starlette, FastAPI), x402 v2 `channel`.

The Python twin of the Rust paywall (`agentrail_pay::paywall`)::

    payee = Payee(AsyncClient(node), key, "vouchers.sqlite")
    app = Paywall(app, payee, {
        "/stats": PerCall("0.001"),
        "/stats/full": PerUnit("0.0005", "kilobyte", max_per_call="0.05"),
    })

A priced route without a payment header answers `402` with
`PAYMENT-REQUIRED`. A paid request's voucher is checked locally by the
`Payee` (the channel's facts are fetched from the node once) and joins its
sub-channel's **credit**: what the vouchers added, minus what calls were
charged. A call is served only if the credit covers its most expensive
outcome (the price, or `max_per_call` for a route priced per unit, whose
handler reports what it used with `report_units`). A call answered with an
error status costs nothing. `PAYMENT-RESPONSE` proposes the next voucher:
the total that brings the credit back to what the next call needs. The
payee collects what calls cost, never the credit signed ahead.

Durability: accepted vouchers and charges are written to SQLite by a
flusher that commits everything pending at most `flush_every` after the
first of it. What a crash can lose is bounded per channel: once a
channel's accepted-but-not-durable amount (vouchers, or charges) would pass
`max_unsynced`, the call waits for the commit. Collection: by threshold,
by time, and before the channel's deadline.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import models
from .api import USD, usd
from .channels import verify_voucher
from .client import AgentrailError, AsyncClient
from .keys import Key, KeyFormatError

if TYPE_CHECKING:
    from .exact import Checked, ExactError, ExactSeller

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER_BYTES_MAX = 8 * 1024
SUB_CHANNEL_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
VOUCHERS_PER_COMMAND_MAX = 64
# The ledger redeems at most this many sub-channels of a channel: a voucher
# opening one more could never be collected (and would fail its batch).
SUB_CHANNELS_MAX = 1_024
# Sub-channels waiting for the flusher, at most: past it a payment is a 503.
PENDING_MAX = 65_536
METER = "agentrail.meter"
logger = logging.getLogger("agentrail.paywall")


class PayeeError(Exception):
    """Why a voucher or a call was not accepted; `code` is stable (the
    `errorReason` of the refusal)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        """The payee's own trouble (its store, the node, a full queue)."""
        return self.code in ("payee_busy", "payee_storage", "node_unavailable")


@dataclass(frozen=True, init=False)
class PerCall:
    """A route priced per call: `PerCall("0.001")` (USD). `price` is atomic."""

    price: int

    def __init__(self, price: USD) -> None:
        object.__setattr__(self, "price", int(usd(price)))


@dataclass(frozen=True, init=False)
class PerUnit:
    """A route priced per unit the handler reports, a call costing at most
    `max_per_call`: `PerUnit("0.0005", "kilobyte", "0.05")` (USD). The
    fields are atomic."""

    price: int
    unit: str
    max_per_call: int

    def __init__(self, price: USD, unit: str, max_per_call: USD) -> None:
        object.__setattr__(self, "price", int(usd(price)))
        object.__setattr__(self, "unit", unit)
        object.__setattr__(self, "max_per_call", int(usd(max_per_call)))


Price = PerCall | PerUnit


@dataclass
class Accepted:
    """What an accepted voucher added: `delta` new money, the sub-channel's
    `total`, and the sum over the channel."""

    delta: int
    total: int
    channel_total: int


@dataclass
class _Facts:
    voucher_key: str
    deposit: int
    expires_at: int
    state: str
    closes_at: int | None

    def deadline(self) -> int | None:
        if self.state == "open":
            return self.expires_at
        if self.state == "closing":
            return self.closes_at
        return None


@dataclass
class _Sub:
    best: dict[str, Any]
    charged: int
    reserved: int = 0

    @property
    def total(self) -> int:
        return int(self.best["accumulatedAmount"])

    def credit(self) -> int:
        return max(0, self.total - self.charged - self.reserved)


@dataclass
class _Channel:
    facts: _Facts | None = None
    subs: dict[str, _Sub] = field(default_factory=dict)
    claimed: int = 0
    charged: int = 0
    durable: dict[str, tuple[int, int]] = field(default_factory=dict)
    durable_claimed: int = 0
    durable_charged: int = 0
    redeemed: dict[str, tuple[int, int]] = field(default_factory=dict)
    waiting_since: float | None = None

    def uncollected(self) -> int:
        return sum(max(0, sub.charged - self.redeemed.get(id_, (0, 0))[0]) for id_, sub in self.subs.items())

    def make_durable(self, sub: str, total: int, charged: int) -> None:
        old_total, old_charged = self.durable.get(sub, (0, 0))
        total, charged = max(old_total, total), max(old_charged, charged)
        self.durable_claimed += total - old_total
        self.durable_charged += charged - old_charged
        self.durable[sub] = (total, charged)

    def over_bound(self, max_unsynced: int) -> bool:
        unsynced = max(self.claimed - self.durable_claimed, self.charged - self.durable_charged)
        return unsynced > max_unsynced

    def charge_redeemed(self) -> None:
        """What the ledger redeemed was charged (a crash may have forgotten
        charges the ledger had collected): the calls it paid are not served
        again."""
        for id_, (amount, _) in self.redeemed.items():
            sub = self.subs.get(id_)
            if sub is None:
                continue
            floor = min(amount, sub.total)
            if floor > sub.charged:
                self.charged += floor - sub.charged
                sub.charged = floor
            self.make_durable(id_, self.durable.get(id_, (0, 0))[0], floor)

    def check(self) -> None:
        """The book's conservation: charges within vouchers within the deposit."""
        assert self.claimed == sum(sub.total for sub in self.subs.values())
        assert self.charged == sum(sub.charged for sub in self.subs.values())
        assert all(0 <= sub.charged <= sub.total for sub in self.subs.values())
        assert self.facts is None or self.claimed <= self.facts.deposit


class Reservation:
    """Credit set aside for one call (`Payee.reserve`): `charge` earns the
    call's cost; released uncharged, it earns nothing."""

    def __init__(self, payee: Payee, channel: str, sub: str, needed: int) -> None:
        self.payee, self.channel, self.sub, self.needed = payee, channel, sub, needed
        self.open = True

    async def charge(self, cost: int) -> int:
        """Earns `cost` (at most what was reserved) and answers the credit left."""
        credit, changed = self.payee._settle(self, cost)
        if changed:
            await self.payee._write(self.channel, self.sub)
        return credit

    def release(self) -> None:
        if self.open:
            self.payee._settle(self, 0)


class Payee:
    """Accepts, keeps and collects vouchers. Start it inside the event loop
    (`await payee.start()`; `Paywall` does it at the app's startup).

    `max_unsynced` (USD) bounds what a crash may lose per channel;
    `collect_threshold` (USD), `collect_every` and `collect_margin`
    (seconds before the channel's deadline) say when to collect."""

    def __init__(
        self,
        client: AsyncClient,
        key: Key,
        store: str | Path,
        *,
        flush_every: float = 0.010,
        max_unsynced: USD = "1",
        collect_threshold: USD = "5",
        collect_every: float = 3_600.0,
        collect_margin: float = 600.0,
        check_every: float = 30.0,
    ) -> None:
        self.client = client
        self.key = key
        self.did = key.did
        self.flush_every = flush_every
        # Atomic units from here on.
        self.max_unsynced = int(usd(max_unsynced))
        self.collect_threshold = int(usd(collect_threshold))
        self.collect_every = collect_every
        self.collect_margin = collect_margin
        self.check_every = check_every
        self.network = ""
        self._store = str(store)
        self._db: sqlite3.Connection | None = None
        self._book: dict[str, _Channel] = {}
        self._pending: dict[tuple[str, str], tuple[int, str, int]] = {}
        self._seq = 0
        self._durable_seq = 0
        self._durable_event: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._stopping = False
        self._start_lock: asyncio.Lock | None = None

    # --- life --------------------------------------------------------------

    async def start(self) -> None:
        """Opens the store, loads what it kept, starts the flusher and the
        collector. Idempotent."""
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started:
                return
            if self._stopping:
                raise PayeeError("payee_storage", "the payee was shut down")
            self.network = await self.client.network()
            self._db = await asyncio.to_thread(self._open_store)
            for channel, sub, voucher, charged in self._db.execute(
                "SELECT channel, sub, voucher, charged FROM subchannels"
            ).fetchall():
                book = self._book.setdefault(channel, _Channel())
                kept = _Sub(json.loads(voucher), int(charged))
                book.subs[sub] = kept
                book.claimed += kept.total
                book.charged += kept.charged
                book.make_durable(sub, kept.total, kept.charged)
                if kept.charged:
                    book.waiting_since = time.monotonic()
            self._durable_event = asyncio.Event()
            self._wake = asyncio.Event()
            self._tasks = [
                asyncio.create_task(self._flusher()),
                asyncio.create_task(self._collector()),
            ]
            self._started = True

    def _open_store(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._store, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS subchannels (channel TEXT NOT NULL, sub TEXT NOT NULL,"
            " voucher TEXT NOT NULL, charged TEXT NOT NULL, PRIMARY KEY (channel, sub))"
        )
        return db

    async def sync(self) -> None:
        """Waits until everything accepted so far is durable."""
        await self._wait_durable(self._seq)

    async def shutdown(self) -> None:
        """Makes everything accepted durable, stops, closes the store."""
        if not self._started:
            return
        await self.sync()
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        assert self._db is not None
        self._db.close()
        self._started = False

    # --- accepting ---------------------------------------------------------

    async def accept_credit(self, voucher: dict[str, Any]) -> Accepted:
        """Checks a voucher locally and keeps it if it is the best of its
        sub-channel, as credit that calls are charged against."""
        if not self._started:
            await self.start()
        voucher = self._canonical(voucher)
        channel = voucher["channelId"]
        facts = await self._facts(channel, refresh=False)
        try:
            signed = verify_voucher(facts.voucher_key, self.network, voucher)
        except (KeyFormatError, ValueError, OverflowError):
            signed = False
        if not signed:
            raise PayeeError(
                "voucher_signature_invalid", "the voucher is not signed by the channel's voucher key"
            )
        refreshed = False
        while True:
            try:
                accepted, wait = self._record(voucher, facts)
            except PayeeError as error:
                # The payer may have topped up since the facts were fetched.
                if error.code == "channel_exhausted" and not refreshed:
                    facts = await self._facts(channel, refresh=True)
                    refreshed = True
                    continue
                raise
            if wait is not None:
                await self._wait_durable(wait)
            return accepted

    def _canonical(self, voucher: Any) -> dict[str, Any]:
        """The voucher as the node will read it, or `voucher_malformed`:
        parsed strictly (a nonce is an integer, never `"7"`, `7.0` or
        `true`) and within the wire's ranges, so that what is kept can
        always be redeemed."""
        try:
            parsed = models.Voucher.model_validate(voucher, strict=True)
        except ValidationError as error:
            raise PayeeError("voucher_malformed", str(error.errors()[0]["msg"])) from error
        if parsed.payeeId.root != self.did:
            raise PayeeError("voucher_wrong_payee", "the voucher pays another payee")
        if parsed.epoch != 0:
            raise PayeeError("voucher_malformed", "epoch must be 0")
        if not SUB_CHANNEL_ID.fullmatch(parsed.subChannelId):
            raise PayeeError("voucher_malformed", "a subChannelId is 1-64 of A-Z a-z 0-9 _ . : -")
        if parsed.nonce >= 1 << 64 or int(parsed.accumulatedAmount.root) >= 1 << 128:
            raise PayeeError("voucher_malformed", "a nonce is a u64 and an amount a u128")
        return {
            "channelId": parsed.channelId.root,
            "epoch": 0,
            "subChannelId": parsed.subChannelId,
            "accumulatedAmount": parsed.accumulatedAmount.root,
            "nonce": parsed.nonce,
            "payeeId": parsed.payeeId.root,
            "payerSignature": parsed.payerSignature.root,
        }

    def _record(self, voucher: dict[str, Any], facts: _Facts) -> tuple[Accepted, int | None]:
        if facts.state == "closed":
            raise PayeeError("channel_closed", "the channel is closed")
        if facts.state == "expired" or (facts.state == "open" and time.time() >= facts.expires_at):
            raise PayeeError("channel_expired", "the channel has expired")
        if facts.state == "closing":
            raise PayeeError("channel_closing", "the channel is closing and takes no new payments")
        channel_id, sub_id = voucher["channelId"], voucher["subChannelId"]
        book = self._book.setdefault(channel_id, _Channel(facts=facts))
        previous = book.subs.get(sub_id)
        last_nonce = int(previous.best["nonce"]) if previous else 0
        last_amount = previous.total if previous else 0
        if previous is not None and previous.best == voucher:
            return Accepted(0, last_amount, book.claimed), None
        total, nonce = int(voucher["accumulatedAmount"]), int(voucher["nonce"])
        if nonce <= last_nonce or total <= last_amount:
            raise PayeeError(
                "voucher_stale",
                f"the voucher is not above the best one of its sub-channel (nonce {last_nonce}, amount {last_amount})",
            )
        if previous is None and len(book.subs.keys() | book.redeemed.keys()) >= SUB_CHANNELS_MAX:
            raise PayeeError(
                "voucher_malformed",
                f"a channel has at most {SUB_CHANNELS_MAX} sub-channels (the ledger's bound)",
            )
        delta = total - last_amount
        if book.claimed + delta > facts.deposit:
            raise PayeeError(
                "channel_exhausted",
                f"the channel's vouchers would claim {book.claimed + delta} but it holds {facts.deposit}",
            )
        if len(self._pending) >= PENDING_MAX:
            raise PayeeError("payee_busy", "the payee is overloaded; retry")
        kept = _Sub(dict(voucher), previous.charged if previous else 0, previous.reserved if previous else 0)
        book.subs[sub_id] = kept
        book.claimed += delta
        book.check()
        seq = self._queue(channel_id, sub_id)
        return Accepted(delta, total, book.claimed), (seq if book.over_bound(self.max_unsynced) else None)

    def reserve(self, channel: str, sub: str, needed: int) -> Reservation:
        """Sets aside `needed` of a sub-channel's credit for a call being
        served, so that concurrent calls cannot spend it twice."""
        book = self._book.get(channel)
        kept = book.subs.get(sub) if book else None
        credit = kept.credit() if kept else 0
        if kept is None or credit < needed:
            raise PayeeError(
                "payment_insufficient", f"the sub-channel's credit is {credit}; the call needs {needed}"
            )
        kept.reserved += needed
        return Reservation(self, channel, sub, needed)

    def _settle(self, reservation: Reservation, cost: int) -> tuple[int, bool]:
        if not reservation.open:
            raise ValueError("a reservation is charged or released once")
        reservation.open = False
        cost = max(0, min(cost, reservation.needed))
        book = self._book[reservation.channel]
        kept = book.subs[reservation.sub]
        kept.reserved -= reservation.needed
        if cost == 0:
            return kept.credit(), False
        kept.charged += cost
        book.charged += cost
        book.check()
        if book.waiting_since is None:
            book.waiting_since = time.monotonic()
        return kept.credit(), True

    async def _write(self, channel: str, sub: str) -> None:
        """Queues a charged sub-channel's row; waits for the commit when the
        channel is over the unsynced bound. A full queue waits (the call was
        served: its charge must not be dropped)."""
        deadline = time.monotonic() + 5.0
        while len(self._pending) >= PENDING_MAX and (channel, sub) not in self._pending:
            if time.monotonic() > deadline:
                raise PayeeError("payee_busy", "the payee is overloaded; retry")
            await asyncio.sleep(0.001)
        seq = self._queue(channel, sub)
        if self._book[channel].over_bound(self.max_unsynced):
            await self._wait_durable(seq)

    def credit(self, channel: str, sub: str) -> int:
        book = self._book.get(channel)
        kept = book.subs.get(sub) if book else None
        return kept.credit() if kept else 0

    def uncollected(self, channel: str) -> int:
        """Money earned on a channel and not collected yet."""
        book = self._book.get(channel)
        return book.uncollected() if book else 0

    # --- the store ---------------------------------------------------------

    def _queue(self, channel: str, sub: str) -> int:
        kept = self._book[channel].subs[sub]
        self._seq += 1
        self._pending[(channel, sub)] = (self._seq, json.dumps(kept.best), kept.charged)
        assert self._wake is not None
        self._wake.set()
        return self._seq

    async def _wait_durable(self, seq: int) -> None:
        while self._durable_seq < seq:
            if self._stopping:
                raise PayeeError("payee_storage", "the flusher stopped")
            assert self._durable_event is not None
            await self._durable_event.wait()

    async def _flusher(self) -> None:
        assert self._wake is not None and self._db is not None
        db = self._db
        while True:
            await self._wake.wait()
            # Let the group gather, then take it all.
            await asyncio.sleep(self.flush_every)
            self._wake.clear()
            group, self._pending = self._pending, {}
            rows = [(ch, sub, voucher, str(charged)) for (ch, sub), (_, voucher, charged) in group.items()]
            while True:
                try:
                    await asyncio.to_thread(_commit, db, rows)
                    break
                except sqlite3.Error:
                    await asyncio.sleep(0.1)
            for (channel, sub), (_, voucher, charged) in group.items():
                self._book[channel].make_durable(sub, int(json.loads(voucher)["accumulatedAmount"]), charged)
            self._durable_seq = max([self._durable_seq, *(seq for seq, _, _ in group.values())])
            assert self._durable_event is not None
            self._durable_event.set()
            self._durable_event = asyncio.Event()

    # --- the ledger --------------------------------------------------------

    async def _facts(self, channel: str, refresh: bool) -> _Facts:
        book = self._book.get(channel)
        if not refresh and book is not None and book.facts is not None:
            return book.facts
        try:
            view = await self.client.channel(channel)
        except AgentrailError as error:
            if error.code == "channel_not_found":
                raise PayeeError("channel_not_found", "no such channel") from error
            raise PayeeError("node_unavailable", str(error)) from error
        except Exception as error:  # the node unreachable: the payee's trouble, retryable
            raise PayeeError("node_unavailable", f"the node: {error}") from error
        if view.payee.root != self.did:
            raise PayeeError("voucher_wrong_payee", "the channel pays another payee")
        status = view.status.root
        facts = _Facts(
            voucher_key=view.voucher_key.root,
            deposit=int(view.deposit.root),
            expires_at=view.expires_at.root,
            state=status.state,
            closes_at=getattr(getattr(status, "closes_at", None), "root", None),
        )
        book = self._book.setdefault(channel, _Channel())
        book.facts = facts
        book.redeemed = {sub: (int(r.amount.root), r.nonce) for sub, r in view.sub_channels.items()}
        book.charge_redeemed()
        return facts

    def _redeemable(self, channel: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
        book = self._book.get(channel)
        if book is None:
            return [], {}
        vouchers: list[dict[str, Any]] = []
        amounts: dict[str, str] = {}
        for id_, sub in sorted(book.subs.items()):
            redeemed = book.redeemed.get(id_)
            ahead = redeemed is None or (int(sub.best["nonce"]) >= redeemed[1] and sub.charged > redeemed[0])
            if sub.charged == 0 or not ahead:
                continue
            if len(vouchers) == VOUCHERS_PER_COMMAND_MAX:
                break
            if sub.charged < sub.total:
                amounts[id_] = str(sub.charged)
            vouchers.append(sub.best)
        return vouchers, amounts

    async def collect(self, channel: str, close: bool = False) -> int | None:
        """Redeems the channel's earned vouchers with the ledger (and closes
        it when `close`); the amount collected, or None when nothing was due."""
        vouchers, amounts = self._redeemable(channel)
        if not vouchers and not close:
            return None
        command: dict[str, Any] = {
            "type": "close_channel" if close else "collect_channel",
            "channel_id": channel,
            "vouchers": vouchers,
        }
        if amounts:
            command["amounts"] = amounts
        try:
            response = await self.client.submit(self.key, command)
        finally:
            # Whatever the answer, learn where the ledger stands now.
            try:
                await self._facts(channel, refresh=True)
            except PayeeError:
                pass
            book = self._book[channel]
            book.waiting_since = time.monotonic() if book.uncollected() else None
        for event in response.events:
            data = event.model_dump(mode="json", by_alias=True)
            if data.get("type") == "channel_collected":
                return int(data["amount"])
        return 0

    async def collect_due(self) -> int:
        """Collects every channel that is due: over the threshold, waiting
        for `collect_every`, or near its deadline. How many it collected."""
        now, collected = time.time(), 0
        for channel, book in list(self._book.items()):
            uncollected = book.uncollected()
            if uncollected == 0:
                continue
            deadline = book.facts.deadline() if book.facts else None
            due = (
                uncollected >= self.collect_threshold
                or deadline is None
                or now + self.collect_margin >= deadline
                or (
                    book.waiting_since is not None
                    and time.monotonic() - book.waiting_since >= self.collect_every
                )
            )
            if not due:
                continue
            try:
                if await self.collect(channel):
                    collected += 1
            except Exception as error:  # the node unreachable, a refusal: tried again at the next check
                logger.warning("collecting channel %s failed: %s", channel, error)
        return collected

    async def _collector(self) -> None:
        while True:
            await asyncio.sleep(self.check_every)
            try:
                for channel, book in list(self._book.items()):
                    if book.uncollected():
                        try:
                            await self._facts(channel, refresh=True)
                        except PayeeError:
                            pass
                await self.collect_due()
            except Exception:  # never let the collector die: money would wait for nothing
                logger.exception("the collector's check failed")


def _commit(db: sqlite3.Connection, rows: list[tuple[str, str, str, str]]) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(
            "INSERT INTO subchannels VALUES (?, ?, ?, ?) ON CONFLICT (channel, sub)"
            " DO UPDATE SET voucher = excluded.voucher, charged = excluded.charged",
            rows,
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


# --- selling: what HTTP and MCP share ----------------------------------------


@dataclass
class Meter:
    """What a metered handler used (`report_units`)."""

    units: int = 0


def report_units(scope_or_request: Any, units: int) -> None:
    """Tells the paywall how many units a call used: pass the ASGI scope, or
    a Starlette/FastAPI `Request`."""
    scope = getattr(scope_or_request, "scope", scope_or_request)
    meter = scope.get(METER)
    if meter is None:
        raise LookupError("report_units on a route the paywall does not price per unit")
    if type(units) is not int or units < 0:
        raise ValueError("units are a whole number, at least 0")
    meter.units = units


class PaidCall:
    """A call whose payment was accepted and whose credit is reserved:
    `settle` charges what it cost and answers x402's `SettlementResponse`
    (with the proposal of the next voucher); `release` charges nothing."""

    def __init__(
        self,
        seller: Seller,
        price: Price,
        voucher: dict[str, Any],
        payer: str,
        accepted: Accepted,
        reservation: Reservation,
    ) -> None:
        self.seller, self.price, self.voucher, self.payer = seller, price, voucher, payer
        self.accepted, self.reservation = accepted, reservation

    def cost(self, ok: bool, units: int = 0) -> int:
        """A call that failed costs nothing; one priced per unit costs
        `units` × the price, at most `max_per_call`."""
        if not ok:
            return 0
        if isinstance(self.price, PerCall):
            return self.price.price
        if type(units) is not int or units < 0:
            raise ValueError("units are a whole number, at least 0")
        return min(units * self.price.price, self.price.max_per_call)

    async def settle(self, cost: int) -> dict[str, Any]:
        payee = self.seller.payee
        channel, sub, nonce = (
            self.voucher["channelId"],
            self.voucher["subChannelId"],
            int(self.voucher["nonce"]),
        )
        try:
            left = await self.reservation.charge(cost)
        except PayeeError:
            # Served and charged in memory; written with the sub-channel's next row.
            left = payee.credit(channel, sub)
        needed = self.seller.needed(self.price)
        proposal = {
            "channelId": channel,
            "epoch": 0,
            "subChannelId": sub,
            "accumulatedAmount": str(self.accepted.total + max(0, needed - left)),
            "nonce": nonce + 1,
            "payeeId": payee.did,
        }
        return {
            "success": True,
            "transaction": f"{channel}/{sub}/{nonce}",
            "network": payee.network,
            "payer": self.payer,
            "channel": {
                "channelId": channel,
                "subChannelId": sub,
                "accumulatedAmount": str(self.accepted.total),
                "nonce": nonce,
                "proposal": proposal,
            },
        }

    def release(self) -> None:
        self.reservation.release()


class Seller:
    """x402 `channel` terms and payments for one payee, whatever carries
    them: the ASGI `Paywall`, or paid MCP tools (`agentrail.mcp_paid`)."""

    def __init__(self, payee: Payee) -> None:
        self.payee = payee

    @staticmethod
    def needed(price: Price) -> int:
        """The credit a call needs: its most expensive outcome."""
        return price.price if isinstance(price, PerCall) else price.max_per_call

    def requirements(self, price: Price) -> dict[str, Any]:
        extra: dict[str, Any] = {"pricing": "per_call"}
        if isinstance(price, PerUnit):
            extra = {"pricing": "per_unit", "unit": price.unit, "maxAmountPerCall": str(price.max_per_call)}
        return {
            "scheme": "channel",
            "network": self.payee.network,
            "asset": "USD",
            "payTo": self.payee.did,
            "amount": str(price.price),
            "maxTimeoutSeconds": 60,
            "extra": extra,
        }

    def payment_required(self, resource: str, price: Price, message: str) -> dict[str, Any]:
        """x402's `PaymentRequired` for `resource`."""
        return {
            "x402Version": 2,
            "error": message,
            "resource": {"url": resource},
            "accepts": [self.requirements(price)],
        }

    def refusal(self, code: str) -> dict[str, Any]:
        """x402's `SettlementResponse` of a refused payment."""
        return {"success": False, "transaction": "", "network": self.payee.network, "errorReason": code}

    async def begin(self, payload: Any, price: Price) -> PaidCall:
        """Checks a `PaymentPayload` and reserves the credit the call needs.
        Raises `PayeeError`: `invalid_payment` for a payload that is not one."""
        try:
            accepted_terms = payload["accepted"]
            voucher = payload["payload"]["receipt"]
            payer = payload["payload"]["payerId"]
            if (
                not isinstance(voucher, dict)
                or not isinstance(accepted_terms, dict)
                or not isinstance(payer, str)
            ):
                raise TypeError("the payload's accepted and receipt are objects, its payerId a string")
        except (KeyError, TypeError) as error:
            raise PayeeError("invalid_payment", f"not an x402 channel payment: {error}") from error
        if not self.payee._started:
            await self.payee.start()
        if accepted_terms.get("scheme") != "channel" or accepted_terms.get("network") != self.payee.network:
            raise PayeeError(
                "unsupported_scheme", "this server accepts the channel scheme on its own network only"
            )
        accepted = await self.payee.accept_credit(voucher)
        reservation = self.payee.reserve(voucher["channelId"], voucher["subChannelId"], self.needed(price))
        return PaidCall(self, price, voucher, payer, accepted, reservation)


# --- the ASGI middleware -------------------------------------------------------


def _route(scope: Scope) -> str:
    """The path routes are priced by: below the app's mount point (a
    `root_path` from the server or a Starlette `Mount`)."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def _encode(value: dict[str, Any]) -> bytes:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode())


CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"payment-required, payment-response, retry-after"),
]


class Paywall:
    """ASGI middleware pricing `routes` (exact paths) in x402 `channel`
    payments to `payee`, and in x402's `exact` payments too on the routes
    priced per call when `exact` is given (`agentrail.exact`). Priced routes
    answer CORS for any origin, so a web page may pay."""

    def __init__(
        self, app: App, payee: Payee, routes: dict[str, Price], *, exact: ExactSeller | None = None
    ) -> None:
        self.app = app
        self.payee = payee
        self.seller = Seller(payee)
        self.routes = dict(routes)
        self.exact = exact

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan(receive), send)
            return
        price = self.routes.get(_route(scope)) if scope["type"] in ("http", "websocket") else None
        if price is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            # A priced route is not served unpaid over another protocol.
            await send({"type": "websocket.close", "code": 1008, "reason": "payment required over HTTP"})
            return
        if not self.payee._started:
            await self.payee.start()
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await _answer(
                send,
                204,
                b"",
                [
                    *CORS,
                    (b"access-control-allow-methods", b"GET, POST, PUT, DELETE"),
                    (b"access-control-allow-headers", b"content-type, payment-signature, x-payment"),
                ],
            )
            return
        await self._paid(scope, receive, send, price, headers)

    def _lifespan(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.payee.start()
            elif message["type"] == "lifespan.shutdown":
                await self.payee.shutdown()
            return message

        return wrapped

    def _payment_required(self, path: str, price: Price, message: str) -> dict[str, Any]:
        required = self.seller.payment_required(path, price, message)
        if self.exact is not None and isinstance(price, PerCall):
            from .exact import payment_identifier_declaration

            required["accepts"].append(self.exact.requirements(price.price))
            required["extensions"] = payment_identifier_declaration()
        return required

    async def _required(
        self, send: Send, path: str, price: Price, message: str, refusal: str | None = None
    ) -> None:
        extra = [(b"payment-required", _encode(self._payment_required(path, price, message)))]
        if refusal is not None:
            extra.append((b"payment-response", _encode(self.seller.refusal(refusal))))
        body = json.dumps({"error": {"code": refusal or "payment_required", "message": message}}).encode()
        await _answer(send, 402, body, extra)

    async def _paid(
        self, scope: Scope, receive: Receive, send: Send, price: Price, headers: dict[bytes, bytes]
    ) -> None:
        path = _route(scope)
        header = headers.get(b"payment-signature") or headers.get(b"x-payment")
        if header is None:
            await self._required(send, path, price, "PAYMENT-SIGNATURE header is required")
            return
        try:
            if len(header) > HEADER_BYTES_MAX:
                raise ValueError(f"a payment header is at most {HEADER_BYTES_MAX} bytes")
            payload = json.loads(base64.b64decode(header.strip(), validate=True))
            accepted = payload.get("accepted") if isinstance(payload, dict) else None
            if (
                self.exact is not None
                and isinstance(price, PerCall)
                and isinstance(accepted, dict)
                and accepted.get("scheme") == "exact"
            ):
                await self._paid_exact(scope, receive, send, price, payload)
                return
            call = await self.seller.begin(payload, price)
        except (ValueError, RecursionError, PayeeError) as error:
            if not isinstance(error, PayeeError) or error.code == "invalid_payment":
                body = json.dumps(
                    {"error": {"code": "invalid_payment", "message": f"the payment header: {error}"}}
                )
                await _answer(send, 400, body.encode(), [])
            elif error.retryable:
                body = json.dumps({"error": {"code": error.code, "message": error.message}}).encode()
                await _answer(send, 503, body, [(b"retry-after", b"1")])
            else:
                await self._required(send, path, price, error.message, error.code)
            return
        meter = Meter()
        scope = dict(scope)
        scope[METER] = meter

        async def paid_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                settlement = await call.settle(call.cost(int(message["status"]) < 400, meter.units))
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", []),
                    *CORS,
                    (b"payment-response", _encode(settlement)),
                ]
            await send(message)

        try:
            await self.app(scope, receive, paid_send)
        finally:
            call.release()


    async def _refuse_exact(self, send: Send, path: str, price: Price, error: ExactError) -> None:
        assert self.exact is not None
        headers = [(b"payment-response", _encode(self.exact.refusal(error)))]
        if error.status == 402:
            headers.append((b"payment-required", _encode(self._payment_required(path, price, error.code))))
        elif error.status == 503 or error.code == "payment_in_progress":
            headers.append((b"retry-after", b"1"))
        body = json.dumps({"error": {"code": error.code, "message": error.message}}).encode()
        await _answer(send, error.status, body, headers)

    async def _paid_exact(
        self, scope: Scope, receive: Receive, send: Send, price: PerCall, payload: dict[str, Any]
    ) -> None:
        """A call paid with `exact`: checked, served at most once per
        authorization, and settled (after a 2xx answer, or before the app)."""
        from .exact import ExactError, Record

        exact = self.exact
        assert exact is not None
        path = _route(scope)
        requirements = exact.requirements(price.price)
        try:
            checked = exact.check(payload, price.price)
        except ExactError as error:
            await self._refuse_exact(send, path, price, error)
            return
        claimed = [checked.key] + ([f"id:{checked.payment_id}"] if checked.payment_id else [])
        if not exact.claim(claimed):
            busy = ExactError("payment_in_progress", "a request with this payment is being served", 409)
            await self._refuse_exact(send, path, price, busy)
            return
        try:
            await self._serve_exact(scope, receive, send, price, payload, requirements, checked)
        except ExactError as error:
            await self._refuse_exact(send, path, price, error)
        finally:
            exact.release(claimed)

    async def _serve_exact(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        price: PerCall,
        payload: dict[str, Any],
        requirements: dict[str, Any],
        checked: Checked,
    ) -> None:
        """Raises `ExactError` for a refusal found before the app runs."""
        from .exact import REPLAYS_MAX, ExactError, Record

        exact = self.exact
        assert exact is not None
        path = _route(scope)
        if checked.payment_id is not None:
            found = exact.by_identifier(checked.payment_id)
            if found is not None:
                replayed_key, replayed = found
                if replayed.payer != checked.payer or replayed.resource != path:
                    raise ExactError(
                        "payment_identifier_conflict", "the payment identifier was used by another payment", 409
                    )
                if replayed.replays >= REPLAYS_MAX or time.time() >= replayed.valid_before:
                    raise ExactError(
                        "payment_identifier_spent",
                        "the request paid under this payment identifier was served and retried"
                        " as often as allowed; pay again",
                    )
                # The client's retry of a paid request: served, not charged.
                replayed.replays += 1
                exact.put(replayed_key, replayed)
                settled = exact.settlement(replayed.tx, replayed.payer)
                await self.app(scope, receive, _with_settlement(send, settled))
                return
        record = exact.get(checked.key)
        if record is not None and record.served:
            raise ExactError("invalid_exact_evm_nonce_already_used", "the authorization was already used")
        if record is None:
            try:
                await exact.verify(payload, requirements)
            except ExactError as error:
                if error.code != "invalid_exact_evm_nonce_already_used":
                    raise
                # Used on chain, not recorded here: an earlier request's
                # answer never left. The settle finds its transaction.
                tx = await exact.settle(payload, requirements)
                record = Record(tx, checked.payer, path, False, checked.payment_id, checked.valid_before)
                exact.put(checked.key, record)
        if record is None and exact.settle_before:
            tx = await exact.settle(payload, requirements)
            record = Record(tx, checked.payer, path, False, checked.payment_id, checked.valid_before)
            exact.put(checked.key, record)
        refused = False

        async def paid_send(message: Message) -> None:
            nonlocal record, refused
            if refused:
                return
            if message["type"] == "http.response.start" and int(message["status"]) < 400:
                if record is None:
                    try:
                        tx = await exact.settle(payload, requirements)
                    except ExactError as error:
                        # Settled after the app: its answer is withheld.
                        refused = True
                        await self._refuse_exact(send, path, price, error)
                        return
                    record = Record(tx, checked.payer, path, False, checked.payment_id, checked.valid_before)
                record.served = True
                exact.put(checked.key, record)
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", []),
                    *CORS,
                    (b"payment-response", _encode(exact.settlement(record.tx, record.payer))),
                ]
            await send(message)

        await self.app(scope, receive, paid_send)


def _with_settlement(send: Send, settlement: dict[str, Any]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [*message.get("headers", []), *CORS, (b"payment-response", _encode(settlement))]
        await send(message)

    return wrapped


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *CORS,
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
