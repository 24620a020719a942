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
    except ValueError as error:
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

    requires_response_body = True

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
            self._db.execute(
                "UPDATE streams SET total = ?, nonce = ? WHERE channel = ? AND sub = ?",
                (str(total), nonce, stream.channel, stream.sub),
            )
            self._db.execute(
                "INSERT INTO spent VALUES (1, ?) ON CONFLICT (one) DO UPDATE SET amount = excluded.amount",
                (str(spent),),
            )
            self._db.execute("COMMIT")
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
        self.client.submit(
            self.key,
            {
                "type": "top_up_channel",
                "channel_id": channel,
                "amount": str(self._deposit(price, self._mandates())),
                "idempotency_key": new_idempotency_key(),
            },
        )

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
                extra = terms.get("extra") or {}
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
        try:
            self.stream = payer._checkout(terms["payTo"], price)
        except AgentrailError as error:
            raise PaymentError(error.code, error.message) from error
        self.topped_up = False
        self.paid = 0

    def payload(self) -> dict[str, Any]:
        """Signs the next voucher (written down first) and answers x402's
        `PaymentPayload`. The total is the payee's proposal when it is within
        one price of credit, else the running total plus the price."""
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
        return {
            "x402Version": 2,
            "resource": self.required.get("resource"),
            "accepted": self.terms,
            "payload": {"version": 1, "payerId": self.payer.payer, "receipt": voucher},
        }

    def outcome(self, settlement: dict[str, Any]) -> bool:
        """True when the payee took the payment; False when it is to be sent
        again (the channel was topped up); raises `PaymentError` otherwise."""
        stream = self.stream
        if settlement.get("success"):
            proposal = (settlement.get("channel") or {}).get("proposal") or {}
            amount = proposal.get("accumulatedAmount")
            try:
                stream.proposal = int(amount) if amount is not None else None
            except (TypeError, ValueError):
                stream.proposal = None
            return True
        stream.proposal = None
        reason = settlement.get("errorReason") or "refused"
        if reason == "channel_exhausted" and not self.topped_up:
            self.topped_up = True
            try:
                self.payer._top_up(stream.channel, self.price)
            except AgentrailError as error:
                raise PaymentError(error.code, error.message) from error
            return False
        raise PaymentError(reason, "the payee refused the payment")

    def close(self) -> None:
        self.payer._checkin(self.stream)
