"""agentrail's `channel` scheme as a scheme client of the official `x402`
package (`pip install "./python[x402]"`): an agent already on x402's
clients pays agentrail providers by adding one registration::

    from x402 import x402Client
    from x402.http.clients import x402HttpxClient

    x402 = x402Client()
    x402.register("agentrail:*", ChannelScheme(payer))    # a ChannelPayer
    async with x402HttpxClient(x402) as http:
        await http.post("http://127.0.0.1:8403/stats", content="…")

The same registration on an `x402ClientSync` pays through x402's
`requests` adapter (`wrapRequestsWithPayment`). Each payment takes a
sub-channel of its own, written down before its voucher leaves (the
`ChannelPayer`'s durability), and gives it back when x402 reports the
response; an exhausted channel is topped up and the payment sent again
through x402's recovery. x402's spend controls apply on top of the
payer's caps and the mandate: "USD" on `agentrail:*` is one of this
scheme's default assets, so x402's default cap of $1 a payment holds.

x402 calls a scheme synchronously, from its async client too: the first
payment to a payee opens the channel there (one request to the node),
blocking that event loop for its round trip; later payments sign locally.

x402's `SettleResponse` keeps no `channel` member, so the payee's
proposals are not followed here (the `ChannelPayer` as an `httpx.Auth`
does follow them): each voucher adds the call's highest price, and credit
a metered call left unused returns to the payer when the channel ends.
"""

from __future__ import annotations

import threading
from typing import Any

from x402.schemas.hooks import RecoveredResponseResult

from .payer import ChannelPayer, Payment, PaymentError

SCHEME = "channel"
NETWORKS = "agentrail:*"
# Payments waiting for x402's response hook, at most: one that never hears
# back (a transport error) gives its sub-channel back when this is reached.
OPEN_MAX = 1024


class ChannelScheme:
    """An x402 `SchemeNetworkClient` (v2) paying through a `ChannelPayer`."""

    scheme = SCHEME

    def __init__(self, payer: ChannelPayer) -> None:
        self.payer = payer
        self.scheme_hooks = self
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str, int], Payment] = {}
        # Payments x402 is about to send again (its recovery after a top-up
        # or a replaced channel), by payee: the same call is not paid twice.
        self._again: dict[str, Payment] = {}

    def find_default_asset(self, asset: str, network: str) -> dict[str, Any] | None:
        """USD on an agentrail network is a default asset (6 decimals)."""
        if asset == "USD" and network.startswith("agentrail:"):
            return {"address": "USD", "symbol": "USD", "name": "agentrail USD", "decimals": 6}
        return None

    def create_payment_payload(self, requirements: Any, context: Any = None) -> dict[str, Any]:
        """Signs a voucher for one call of `requirements` (x402's model),
        within x402's cap (`context.max_amount_per_payment`), the payer's
        caps and the mandate; answers the scheme's inner payload."""
        terms = requirements.model_dump(mode="json", by_alias=True, exclude_none=True)
        cap = getattr(context, "max_amount_per_payment", None)
        with self._lock:
            payment = self._again.pop(str(terms.get("payTo")), None)
        if payment is None or payment.terms != terms:
            if payment is not None:
                payment.close()
            payment = self.payer.begin({"x402Version": 2, "accepts": [terms]}, int(cap) if cap else None)
        try:
            payload = payment.payload()
        except BaseException:
            payment.close()
            raise
        voucher = payload["payload"]["receipt"]
        stale = []
        with self._lock:
            while len(self._open) >= OPEN_MAX:
                stale.append(self._open.pop(next(iter(self._open))))
            self._open[(voucher["channelId"], voucher["subChannelId"], int(voucher["nonce"]))] = payment
        for old in stale:
            old.close()
        return payload["payload"]

    def on_payment_response(self, ctx: Any) -> RecoveredResponseResult | None:
        """x402's hook after a paid request: frees the sub-channel, and tops
        the channel up when the payee found it exhausted (then x402 pays again)."""
        inner = getattr(ctx.payment_payload, "payload", None) or {}
        voucher = inner.get("receipt") if isinstance(inner, dict) else None
        if not isinstance(voucher, dict):
            return None
        key = (voucher.get("channelId"), voucher.get("subChannelId"), int(voucher.get("nonce", 0)))
        with self._lock:
            payment = self._open.pop(key, None)  # type: ignore[arg-type]
        if payment is None:
            return None
        again = False
        try:
            settled = ctx.settle_response
            if settled is None:
                return None
            outcome = {"success": settled.success, "errorReason": settled.error_reason}
            if payment.outcome(outcome):
                return None
            again = True
            with self._lock:
                stale = self._again.pop(str(payment.terms.get("payTo")), None)
                self._again[str(payment.terms.get("payTo"))] = payment
            if stale is not None:
                stale.close()
            return RecoveredResponseResult()
        except PaymentError:
            return None  # the caller sees the payee's 402
        finally:
            if not again:
                payment.close()
