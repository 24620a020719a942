"""Paying HTTP 402 (x402 v2, the `channel` scheme) from httpx.

`ChannelPayer` is an `httpx.Auth`: a request answered `402` is paid with a
voucher on a channel to the payee, opened (or topped up) within the
agent's mandate and the payer's own spending cap, and sent again. Each
request in flight takes a sub-channel of its own. Each sub-channel's
total and nonce are written to a SQLite file *before* its voucher is sent,
so a restarted agent never signs a nonce twice and never pays for credit it
gave before (the payee keeps the unspent credit of a voucher it received).
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .api import USD, usd
from .channels import channel_id, sign_voucher
from .client import AgentrailError, Client, new_idempotency_key
from .keys import Key

PAYMENT_REQUIRED = "PAYMENT-REQUIRED"
PAYMENT_SIGNATURE = "PAYMENT-SIGNATURE"
PAYMENT_RESPONSE = "PAYMENT-RESPONSE"
HEADER_BYTES_MAX = 8 * 1024
# How long a channel this payer opens lives, at most (a grant above it may end sooner).
CHANNEL_LIFETIME_S = 7 * 86_400
# URLs whose terms are remembered, at most (then forgotten all at once).
KNOWN_URLS_MAX = 1_024
# What a payee says of a channel that will take no more vouchers.
CHANNEL_OVER = {"channel_expired", "channel_closed", "channel_closing", "channel_not_found"}


class PaymentError(Exception):
    """A 402 this payer will not or cannot pay; `reason` is stable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def decode_header(text: str) -> dict[str, Any]:
    if len(text) > HEADER_BYTES_MAX:
        raise PaymentError("header_too_large", f"an x402 header is at most {HEADER_BYTES_MAX} bytes")
    try:
        value = json.loads(base64.b64decode(text.strip(), validate=True))
    except (ValueError, RecursionError) as error:
        raise PaymentError("header_malformed", "an x402 header is base64 of JSON") from error
    if not isinstance(value, dict):
        raise PaymentError("header_malformed", "an x402 header is a JSON object")
    return value


def encode_header(value: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


@dataclass
class Stream:
    channel: str
    sub: str
    total: int
    nonce: int
    proposal: int | None = None


class ChannelPayer(httpx.Auth):
    """Pays 402 answers through agentrail channels, with a spending cap.

    `key` signs vouchers and channel commands; `payer` is the account that
    pays (an agent's did when `key` is one of its sessions). `max_per_call`
    and `max_total` (USD) bind whatever a server asks, on top of
    the mandate the ledger enforces.
    """

    # Only headers are read: a 402's body is never buffered.
    requires_response_body = False

    def __init__(
        self,
        client: Client,
        key: Key,
        state: str | Path,
        *,
        payer: str | None = None,
        max_per_call: USD,
        max_total: USD,
        deposit_calls: int = 1000,
    ) -> None:
        self.client = client
        self.key = key
        self.payer = payer or key.did
        # Atomic units from here on.
        self.max_per_call = int(usd(max_per_call))
        self.max_total = int(usd(max_total))
        self.deposit_calls = deposit_calls
        self.network = client.network()
        self._lock = threading.Lock()
        self._busy: set[tuple[str, str]] = set()
        # Terms seen per URL: a URL paid before is paid at once, in one round trip.
        self._known: dict[str, dict[str, Any]] = {}
        # The payee's proposal for each sub-channel's next voucher, and the
        # resource it was made for (a proposal is the credit one route needs).
        self._proposals: dict[tuple[str, str], tuple[str, int]] = {}
        self._db = sqlite3.connect(str(state), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript("""
            CREATE TABLE IF NOT EXISTS channels (
                payee TEXT NOT NULL, network TEXT NOT NULL, channel TEXT NOT NULL,
                deposit TEXT NOT NULL, PRIMARY KEY (payee, network));
            CREATE TABLE IF NOT EXISTS streams (
                channel TEXT NOT NULL, sub TEXT NOT NULL, total TEXT NOT NULL,
                nonce INTEGER NOT NULL, PRIMARY KEY (channel, sub));
            CREATE TABLE IF NOT EXISTS spent (one INTEGER PRIMARY KEY CHECK (one = 1),
                amount TEXT NOT NULL);
            """)

    # --- state -------------------------------------------------------------

    def spent(self) -> int:
        """Atomic units this payer has signed away, across restarts."""
        row = self._db.execute("SELECT amount FROM spent").fetchone()
        return int(row[0]) if row else 0

    def channels(self) -> list[str]:
        """The channels this payer opened, on this network."""
        rows = self._db.execute("SELECT channel FROM channels WHERE network = ?", (self.network,))
        return [row[0] for row in rows.fetchall()]

    def _checkout(self, payee: str, price: int) -> Stream:
        with self._lock:
            row = self._db.execute(
                "SELECT channel FROM channels WHERE payee = ? AND network = ?",
                (payee, self.network),
            ).fetchone()
            if row is None:
                channel = self._open(payee, price)
            else:
                channel = row[0]
            for sub, total, nonce in self._db.execute(
                "SELECT sub, total, nonce FROM streams WHERE channel = ? ORDER BY sub", (channel,)
            ).fetchall():
                if (channel, sub) not in self._busy:
                    self._busy.add((channel, sub))
                    return Stream(channel, sub, int(total), nonce)
            count = self._db.execute("SELECT COUNT(*) FROM streams WHERE channel = ?", (channel,)).fetchone()[
                0
            ]
            sub = f"py-{count}"
            self._db.execute("INSERT INTO streams VALUES (?, ?, '0', 0)", (channel, sub))
            self._busy.add((channel, sub))
            return Stream(channel, sub, 0, 0)

    def _checkin(self, stream: Stream) -> None:
        with self._lock:
            self._busy.discard((stream.channel, stream.sub))

    def _record(self, stream: Stream, total: int, nonce: int) -> None:
        """Writes a voucher's total and nonce before it leaves, with what it
        adds to the spending cap; refuses one past the cap."""
        with self._lock:
            added = total - stream.total
            spent = self.spent() + added
            if spent > self.max_total:
                raise PaymentError(
                    "spending_cap", f"paying {added} would pass this payer's cap of {self.max_total}"
                )
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "UPDATE streams SET total = ?, nonce = ? WHERE channel = ? AND sub = ?",
                    (str(total), nonce, stream.channel, stream.sub),
                )
                self._db.execute(
                    "INSERT INTO spent VALUES (1, ?) ON CONFLICT (one) DO UPDATE SET amount = excluded.amount",
                    (str(spent),),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        stream.total, stream.nonce = total, nonce

    def _mandates(self) -> list[Any]:
        """The grants above this payer (the signer's and the paying
        account's), as the node reports them: a principal has none."""
        found = []
        for did in dict.fromkeys([self.key.did, self.payer]):
            try:
                found.append(self.client.grant_status(did))
            except AgentrailError:
                pass
        return found

    def _deposit(self, price: int, mandates: list[Any]) -> int:
        """Credit for `deposit_calls` calls, within this payer's cap and the
        mandates (a channel's deposit is one payment to the ledger). At
        least the price: below it, the node's refusal names the limit."""
        room = self.max_total - self.spent()
        for status in mandates:
            limits = status.grant.grant.limits
            room = min(room, int(limits.max_per_payment.root), int(status.remaining_today.root))
            if status.remaining_total is not None:
                room = min(room, int(status.remaining_total.root))
        return max(price, min(price * self.deposit_calls, room))

    def _open(self, payee: str, price: int) -> str:
        key = new_idempotency_key()
        mandates = self._mandates()
        deposit = self._deposit(price, mandates)
        command: dict[str, Any] = {
            "type": "open_channel",
            "from": self.payer,
            "payee": payee,
            "deposit": str(deposit),
            "idempotency_key": key,
        }
        # A channel may not outlive a grant above it.
        ends = [status.grant.grant.expires_at.root for status in mandates]
        if ends:
            command["expires_at"] = min([int(time.time()) + CHANNEL_LIFETIME_S, *ends])
        self.client.submit(self.key, command)
        channel = channel_id(self.payer, payee, key)
        self._db.execute(
            "INSERT INTO channels VALUES (?, ?, ?, ?)", (payee, self.network, channel, str(deposit))
        )
        return channel

    def _top_up(self, channel: str, price: int) -> None:
        """Adds to a channel's deposit, only when what this payer signed on
        it, and one more call, would pass it: a payee cannot make the payer
        lock up money by calling a channel exhausted."""
        with self._lock:
            row = self._db.execute("SELECT deposit FROM channels WHERE channel = ?", (channel,)).fetchone()
            signed = sum(
                int(total)
                for (total,) in self._db.execute("SELECT total FROM streams WHERE channel = ?", (channel,))
            )
        deposit = int(row[0]) if row else 0
        if signed + price <= deposit:
            raise PaymentError(
                "channel_exhausted",
                "the payee calls the channel exhausted, but it holds what this payer signed",
            )
        amount = self._deposit(price, self._mandates())
        self.client.submit(
            self.key,
            {
                "type": "top_up_channel",
                "channel_id": channel,
                "amount": str(amount),
                "idempotency_key": new_idempotency_key(),
            },
        )
        with self._lock:
            self._db.execute(
                "UPDATE channels SET deposit = ? WHERE channel = ?", (str(deposit + amount), channel)
            )

    def _forget_channel(self, channel: str) -> None:
        """A channel the payee or the ledger says is over: the next payment
        to that payee opens another."""
        with self._lock:
            self._db.execute("DELETE FROM channels WHERE channel = ?", (channel,))

    # --- the 402 flow ------------------------------------------------------

    def choose(self, required: dict[str, Any], limit: int | None = None) -> tuple[dict[str, Any], int]:
        """The channel terms of a `PaymentRequired` on this network, and the
        most one call may cost; refuses terms above `max_per_call` (or the
        lower `limit`) before anything is signed."""
        ceiling = self.max_per_call if limit is None else min(limit, self.max_per_call)
        for terms in required.get("accepts", []):
            if not isinstance(terms, dict):
                continue
            if terms.get("scheme") == "channel" and terms.get("network") == self.network:
                extra = terms.get("extra")
                if not isinstance(extra, dict):
                    extra = {}
                try:
                    if extra.get("pricing") == "per_unit":
                        price = int(extra.get("maxAmountPerCall", -1))
                    else:
                        price = int(terms.get("amount", -1))
                except (TypeError, ValueError):
                    price = -1
                if price < 0 or not isinstance(terms.get("payTo"), str):
                    raise PaymentError("terms_malformed", "channel terms without an amount or a payee")
                if price > ceiling:
                    raise PaymentError(
                        "over_limit", f"a call costs up to {price}, above this payer's {ceiling}"
                    )
                return terms, price
        raise PaymentError("unsupported_scheme", f"no channel terms on {self.network}")

    def begin(self, required: dict[str, Any], limit: int | None = None) -> Payment:
        """A payment of one call for whatever carries x402 (HTTP, MCP): its
        `payload()`s are sent until `outcome()` says it is done. Close it."""
        terms, price = self.choose(required, limit)
        return Payment(self, required, terms, price)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        url = str(request.url)
        limit = request.extensions.get("agentrail_max_amount")
        known = self._known.get(url)
        if known is None or limit is not None:
            response = yield request
            if response.status_code != 402:
                return
            header = response.headers.get(PAYMENT_REQUIRED)
            if header is None:
                raise PaymentError("no_terms", "a 402 without PAYMENT-REQUIRED")
            required = decode_header(header)
        else:
            required = known
        payment = self.begin(required, limit)
        try:
            while True:
                request.headers[PAYMENT_SIGNATURE] = encode_header(payment.payload())
                response = yield request
                header = response.headers.get(PAYMENT_RESPONSE)
                if header is None:
                    self._known.pop(url, None)
                    return
                if payment.outcome(decode_header(header)):
                    if len(self._known) >= KNOWN_URLS_MAX:
                        self._known.clear()
                    self._known[url] = required
                    return
        except PaymentError:
            self._known.pop(url, None)
            raise
        finally:
            payment.close()

    def close(self) -> None:
        self._db.close()


class Payment:
    """One call's payment on a sub-channel of its own (`ChannelPayer.begin`)."""

    def __init__(
        self, payer: ChannelPayer, required: dict[str, Any], terms: dict[str, Any], price: int
    ) -> None:
        self.payer, self.required, self.terms, self.price = payer, required, terms, price
        resource = required.get("resource")
        self.resource = str(resource.get("url")) if isinstance(resource, dict) else ""
        self.stream = self._checkout()
        self.topped_up = False
        self.reopened = False
        self.paid = 0
        self._last: dict[str, Any] | None = None
        self._resend = False

    def _checkout(self) -> Stream:
        try:
            stream = self.payer._checkout(self.terms["payTo"], self.price)
        except AgentrailError as error:
            raise PaymentError(error.code, error.message) from error
        proposal = self.payer._proposals.get((stream.channel, stream.sub))
        if proposal is not None and proposal[0] == self.resource:
            stream.proposal = proposal[1]
        return stream

    def payload(self) -> dict[str, Any]:
        """Signs the next voucher (written down first) and answers x402's
        `PaymentPayload`. The total is the payee's proposal when it is within
        one price of credit, else the running total plus the price. After a
        top-up, the same voucher is sent again: one call never signs twice."""
        if self._resend and self._last is not None:
            self._resend = False
            return self._last
        stream = self.stream
        full = stream.total + self.price
        total = stream.proposal if stream.proposal and stream.total < stream.proposal <= full else full
        voucher = sign_voucher(
            self.payer.key,
            self.payer.network,
            {
                "channelId": stream.channel,
                "epoch": 0,
                "subChannelId": stream.sub,
                "accumulatedAmount": str(total),
                "nonce": stream.nonce + 1,
                "payeeId": self.terms["payTo"],
            },
        )
        before = stream.total
        self.payer._record(stream, total, stream.nonce + 1)
        self.paid += total - before
        self._last = {
            "x402Version": 2,
            "resource": self.required.get("resource"),
            "accepted": self.terms,
            "payload": {"version": 1, "payerId": self.payer.payer, "receipt": voucher},
        }
        return self._last

    def outcome(self, settlement: dict[str, Any]) -> bool:
        """True when the payee took the payment; False when it is to be sent
        again (the channel was topped up, or replaced because it ended);
        raises `PaymentError` otherwise."""
        stream = self.stream
        key = (stream.channel, stream.sub)
        if settlement.get("success"):
            channel = settlement.get("channel")
            proposal = channel.get("proposal") if isinstance(channel, dict) else None
            amount = proposal.get("accumulatedAmount") if isinstance(proposal, dict) else None
            try:
                self.payer._proposals[key] = (self.resource, int(amount))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                self.payer._proposals.pop(key, None)
            return True
        self.payer._proposals.pop(key, None)
        stream.proposal = None
        reason = settlement.get("errorReason") or "refused"
        try:
            if reason == "channel_exhausted" and not self.topped_up:
                self.topped_up = True
                self.payer._top_up(stream.channel, self.price)
                self._resend = True
                return False
            if reason in CHANNEL_OVER and not self.reopened:
                self.reopened = True
                self.payer._forget_channel(stream.channel)
                self.payer._checkin(stream)
                self.stream = self._checkout()
                return False
        except AgentrailError as error:
            raise PaymentError(error.code, error.message) from error
        raise PaymentError(reason, "the payee refused the payment")

    def close(self) -> None:
        self.payer._checkin(self.stream)
