"""x402's `exact` scheme on EVM for the ASGI `Paywall`: an EIP-3009
transfer of the token per call, beside the `channel` scheme, on routes
priced per call. Needs `pip install "./python[x402]"` (x402's SDK with its
EVM mechanism)::

    exact = ExactSeller(network="eip155:8453", asset=USDC, pay_to=ADDRESS,
                        name="USD Coin", version="2",
                        facilitator="http://127.0.0.1:8402", store="exact.sqlite")
    app = Paywall(app, payee, {"/stats": PerCall("0.001")}, exact=exact)

The Python twin of the Rust paywall's `ExactOffer` (docs/protocol.md, "x402:
the `exact` scheme on EVM"): a payment is checked here first (the
requirement echoed, recipient, amount equal to the price, validity window,
EIP-712 signature by the token's rules, with x402's codes), then by the
facilitator's `/verify` (nonce unused, balance), and settled by its
`/settle` after the handler answered 2xx (before it, with
`settle_before=True`). One authorization is settled and served once: each
settled one is written to SQLite before the answer that depends on it; an
answered one is refused when it comes again, one whose answer never left is
served, and a request under a `payment-identifier` already paid is served
again under its first transaction, for the same payer and route.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_keys import keys
from eth_utils import to_checksum_address
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.mechanisms.evm.eip712 import hash_eip3009_authorization
from x402.mechanisms.evm.types import ExactEIP3009Authorization
from x402.schemas import PaymentPayload, PaymentRequirements

EXACT = "exact"
VALID_BEFORE_MARGIN_S = 6
# How far past the requirement's timeout a validBefore may reach.
VALID_BEFORE_SLACK_S = 60
IDENTIFIER = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
# A facilitator's refusals that are its own trouble, not the payment's: the
# client sends the same payment again.
TRANSIENT = {"settlement_pending": 503, "chain_unavailable": 503, "payment_in_progress": 409}
# Requests served at once, at most: past it an exact payment is a 503.
IN_FLIGHT_MAX = 4096
# Retries of one paid request served under its payment id, while its
# authorization is valid: a lost answer is recoverable, a call paid once is
# not served for ever.
REPLAYS_MAX = 3


class ExactError(Exception):
    """Why an `exact` payment was refused; `code` is x402's where it has one,
    `status` the HTTP status the paywall answers."""

    def __init__(self, code: str, message: str, status: int = 402, transaction: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.transaction = transaction


@dataclass(frozen=True)
class Checked:
    payer: str
    key: str
    payment_id: str | None
    valid_before: int


@dataclass
class Record:
    tx: str
    payer: str
    resource: str
    served: bool
    payment_id: str | None
    valid_before: int
    replays: int = 0


def payment_identifier_declaration() -> dict[str, Any]:
    """x402's `payment-identifier` extension, declared optional."""
    return {
        "payment-identifier": {
            "info": {"required": False},
            "schema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {
                    "required": {"type": "boolean"},
                    "id": {"type": "string", "minLength": 16, "maxLength": 128, "pattern": "^[a-zA-Z0-9_-]+$"},
                },
                "required": ["required"],
            },
        }
    }


class ExactSeller:
    """`exact` terms, checks, settlement and the record of settled payments
    for one payee address."""

    def __init__(
        self,
        *,
        network: str,
        asset: str,
        pay_to: str,
        name: str,
        version: str,
        facilitator: str,
        store: str | Path,
        settle_before: bool = False,
        max_timeout_seconds: int = 60,
    ) -> None:
        if not network.startswith("eip155:") or not network[7:].isdigit():
            raise ValueError(f"{network!r} is not an eip155:<chain id> network")
        self.network = network
        self.chain_id = int(network[7:])
        self.asset = to_checksum_address(asset)
        self.pay_to = to_checksum_address(pay_to)
        self.name = name
        self.version = version
        self.settle_before = settle_before
        self.max_timeout_seconds = max_timeout_seconds
        self.facilitator = HTTPFacilitatorClient(FacilitatorConfig(url=facilitator))
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()
        self._db = sqlite3.connect(str(store), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript("""
            CREATE TABLE IF NOT EXISTS exact_payments (
                key TEXT PRIMARY KEY, tx TEXT NOT NULL, payer TEXT NOT NULL,
                resource TEXT NOT NULL, served INTEGER NOT NULL, payment_id TEXT UNIQUE,
                valid_before INTEGER NOT NULL, replays INTEGER NOT NULL);
            """)

    def requirements(self, amount: int) -> dict[str, Any]:
        return {
            "scheme": EXACT,
            "network": self.network,
            "asset": self.asset,
            "payTo": self.pay_to,
            "amount": str(amount),
            "maxTimeoutSeconds": self.max_timeout_seconds,
            "extra": {"name": self.name, "version": self.version},
        }

    # --- checks ----------------------------------------------------------------

    def check(self, payload: dict[str, Any], amount: int, now: int | None = None) -> Checked:
        """Every rule that needs no chain, in the order and with the codes of
        x402's facilitators. Raises `ExactError`."""
        now = int(time.time()) if now is None else now
        accepted = payload.get("accepted")
        if not isinstance(accepted, dict) or accepted.get("scheme") != EXACT:
            raise ExactError("unsupported_scheme", "the payment is not for the exact scheme")
        if accepted.get("network") != self.network:
            raise ExactError("network_mismatch", f"the payment is for {accepted.get('network')!r}")
        if (
            str(accepted.get("amount")) != str(amount)
            or str(accepted.get("asset", "")).lower() != self.asset.lower()
            or str(accepted.get("payTo", "")).lower() != self.pay_to.lower()
        ):
            raise ExactError("invalid_payment_requirements", "accepted names another amount, asset or payTo")
        try:
            inner = payload["payload"]
            auth = inner["authorization"]
            signature = bytes.fromhex(str(inner["signature"]).removeprefix("0x"))
            payer = to_checksum_address(auth["from"])
            to = to_checksum_address(auth["to"])
            value = int(str(auth["value"]), 10)
            valid_after = int(str(auth["validAfter"]), 10)
            valid_before = int(str(auth["validBefore"]), 10)
            nonce = bytes.fromhex(str(auth["nonce"]).removeprefix("0x"))
            if len(nonce) != 32:
                raise ValueError("the nonce is not 32 bytes")
        except (KeyError, TypeError, ValueError) as error:
            raise ExactError("invalid_payload", f"not an exact payment: {error}", 400) from error
        if amount <= 0:
            raise ExactError("invalid_payment_requirements", "an exact payment moves at least one unit")
        if to != self.pay_to:
            raise ExactError("invalid_exact_evm_payload_recipient_mismatch", f"the authorization pays {to}")
        if value != amount:
            raise ExactError(
                "invalid_exact_evm_payload_authorization_value_mismatch",
                f"the authorization moves {value}, not the price of {amount}",
            )
        if valid_before < now + VALID_BEFORE_MARGIN_S:
            raise ExactError("invalid_exact_evm_payload_authorization_valid_before", "it expires too soon")
        if valid_before > now + self.max_timeout_seconds + VALID_BEFORE_SLACK_S:
            raise ExactError(
                "invalid_exact_evm_payload_authorization_valid_before", "it stays valid past the timeout"
            )
        # The token moves it only strictly after validAfter.
        if valid_after >= now:
            raise ExactError("invalid_exact_evm_payload_authorization_valid_after", "it is not valid yet")
        digest = hash_eip3009_authorization(
            ExactEIP3009Authorization(
                from_address=payer,
                to=to,
                value=str(value),
                valid_after=str(valid_after),
                valid_before=str(valid_before),
                nonce="0x" + nonce.hex(),
            ),
            self.chain_id,
            self.asset,
            self.name,
            self.version,
        )
        if recover(digest, signature) != payer:
            raise ExactError("invalid_exact_evm_payload_signature", "the signature is not the payer's")
        payment_id = None
        extensions = payload.get("extensions")
        if isinstance(extensions, dict):
            info = (extensions.get("payment-identifier") or {}).get("info") or {}
            payment_id = info.get("id") if isinstance(info, dict) else None
            if payment_id is not None and (not isinstance(payment_id, str) or not IDENTIFIER.match(payment_id)):
                raise ExactError("invalid_payment_identifier", "the payment identifier is not x402's", 400)
        return Checked(payer, f"{payer.lower()}:0x{nonce.hex()}", payment_id, valid_before)

    # --- the facilitator -------------------------------------------------------

    async def verify(self, payload: dict[str, Any], requirements: dict[str, Any]) -> None:
        answer = await self._call("verify", payload, requirements)
        if not answer.is_valid:
            code = answer.invalid_reason or "invalid_payment"
            raise ExactError(code, answer.invalid_message or code, TRANSIENT.get(code, 402))

    async def settle(self, payload: dict[str, Any], requirements: dict[str, Any]) -> str:
        answer = await self._call("settle", payload, requirements)
        if answer.success:
            return str(answer.transaction)
        code = answer.error_reason or "transaction_failed"
        raise ExactError(code, answer.error_message or code, TRANSIENT.get(code, 402), str(answer.transaction or ""))

    async def _call(self, what: str, payload: dict[str, Any], requirements: dict[str, Any]) -> Any:
        try:
            model = PaymentPayload.model_validate(payload)
            terms = PaymentRequirements.model_validate(requirements)
        except ValueError as error:
            raise ExactError("invalid_payload", str(error), 400) from error
        try:
            if what == "verify":
                return await self.facilitator.verify(model, terms)
            return await self.facilitator.settle(model, terms)
        except Exception as error:  # the facilitator's transport or answer
            raise ExactError("chain_unavailable", f"the facilitator: {error}", 503) from error

    # --- the record ------------------------------------------------------------

    def claim(self, keys_: list[str]) -> bool:
        with self._lock:
            if len(self._in_flight) >= IN_FLIGHT_MAX or any(k in self._in_flight for k in keys_):
                return False
            self._in_flight.update(keys_)
            return True

    def release(self, keys_: list[str]) -> None:
        with self._lock:
            self._in_flight.difference_update(keys_)

    def get(self, key: str) -> Record | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM exact_payments WHERE key = ?", (key,)).fetchone()
        return _record(row) if row else None

    def by_identifier(self, payment_id: str) -> tuple[str, Record] | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS}, key FROM exact_payments WHERE payment_id = ?", (payment_id,)
        ).fetchone()
        return (str(row[7]), _record(row)) if row else None

    def put(self, key: str, record: Record) -> None:
        self._db.execute(
            f"INSERT INTO exact_payments (key, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET tx = excluded.tx, served = excluded.served,"
            " replays = excluded.replays",
            (key, record.tx, record.payer, record.resource, int(record.served), record.payment_id,
             record.valid_before, record.replays),
        )

    def settlement(self, tx: str, payer: str) -> dict[str, Any]:
        return {"success": True, "transaction": tx, "network": self.network, "payer": payer}

    def refusal(self, error: ExactError) -> dict[str, Any]:
        return {
            "success": False,
            "transaction": error.transaction,
            "network": self.network,
            "errorReason": error.code,
            "errorMessage": error.message,
        }


_COLUMNS = "tx, payer, resource, served, payment_id, valid_before, replays"


def _record(row: Any) -> Record:
    return Record(row[0], row[1], row[2], bool(row[3]), row[4], int(row[5]), int(row[6]))


def recover(digest: bytes, signature: bytes) -> str | None:
    """The address that signed `digest`, by the token's rules (65 bytes
    `r ‖ s ‖ v`, v 27 or 28, low s); None when it is not a signature."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if s > HALF_ORDER:
        return None
    try:
        public = keys.Signature(vrs=(signature[64] - 27, r, s)).recover_public_key_from_msg_hash(digest)
    except Exception:  # eth_keys raises several types for a bad signature
        return None
    return str(public.to_checksum_address())
