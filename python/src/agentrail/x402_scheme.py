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

x402's own `exact` scheme (an EIP-3009 transfer per call, x402's
`ExactEvmScheme`) pays servers that offer no channel; `ExactMandate` binds
it to the agent's mandate, which the ledger cannot see on chain::

    x402 = paying_client(ExactMandate(client, key), account,
                         assets=[("eip155:8453", USDC)], channels=payer)
"""

from __future__ import annotations

import threading
from typing import Any

from x402 import x402Client, x402ClientSync
from x402.client_base import prefer_scheme
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.schemas.hooks import AbortResult, RecoveredResponseResult

from .client import AgentrailError, Client, new_idempotency_key
from .keys import Key
from .payer import ChannelPayer, Payment, PaymentError
from .units import to_usd

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


EXACT = "exact"


class ExactMandate:
    """x402 hooks that bind `exact` payments to an agent's mandate on the
    ledger (ARCHITECTURE.md, "The mandate binds exact payments"): before an
    `exact` payment is signed, it is charged to the grants over the signer
    (`charge_mandate`: their per-payment limits and daily and total budgets,
    shared with ledger payments); the ledger's refusal aborts it. A grant
    that names payees or categories, or asks approval above a threshold,
    allows no payment off the ledger. A principal (no grant) is bound by
    x402's own spend controls only. A charge counts whatever the server
    does with the payment: the budget errs on the side of the principal."""

    def __init__(self, client: Client, key: Key, payer: str | None = None) -> None:
        self.client = client
        self.key = key
        self.payer = payer or key.did
        self.per_payment: int | None = None
        self.mandated = False
        for did in dict.fromkeys([key.did, self.payer]):
            try:
                status = client.grant_status(did)
            except AgentrailError as error:
                if error.code == "unknown_grant":
                    continue
                raise
            self.mandated = True
            cap = int(status.grant.grant.limits.max_per_payment.root)
            self.per_payment = cap if self.per_payment is None else min(self.per_payment, cap)
        self._lock = threading.Lock()
        self._charged = 0

    def charged(self) -> int:
        """What `exact` payments through these hooks charged, atomic units."""
        with self._lock:
            return self._charged

    def install(self, x402: x402Client | x402ClientSync) -> None:
        x402.on_before_payment_creation(self.before_payment)

    def before_payment(self, ctx: Any) -> AbortResult | None:
        """Charges an `exact` payment to the mandate before it is signed;
        the ledger's refusal (its code) aborts it."""
        requirements = ctx.selected_requirements
        if getattr(requirements, "scheme", None) != EXACT or not self.mandated:
            return None
        amount = int(requirements.amount)
        reference = "x402-exact-" + new_idempotency_key()
        try:
            self.client.charge_mandate(
                self.key,
                amount=to_usd(amount),
                payee=f"{requirements.network}:{requirements.pay_to}",
                reference=reference,
                from_=self.payer,
                idempotency_key=reference[:64],
            )
        except AgentrailError as error:
            return AbortResult(reason=error.code, message=error.message)
        with self._lock:
            self._charged += amount
        return None


def paying_client(
    mandate: ExactMandate,
    account: Any,
    *,
    assets: list[tuple[str, str]],
    channels: ChannelPayer | None = None,
) -> x402Client:
    """An x402 client that pays agentrail's channels first (when given) and
    x402's `exact` from `account` (an eth-account `LocalAccount`) for the
    `(network, token)` pairs in `assets`, within `mandate`."""
    x402 = x402Client()
    if channels is not None:
        x402.register(NETWORKS, ChannelScheme(channels))
        x402.register_policy(prefer_scheme(SCHEME))
    for network in dict.fromkeys(network for network, _ in assets):
        register_exact_evm_client(x402, account, networks=network)
    cap = str(mandate.per_payment) if mandate.per_payment is not None else None
    allowed = [
        {"network": network, "asset": token, **({"max_amount_per_payment": cap} if cap else {})}
        for network, token in assets
    ]
    if channels is not None:
        allowed.append({"network": NETWORKS, "asset": "USD"})
    x402.set_spend_controls({"allowed_assets": allowed})
    mandate.install(x402)
    return x402
