"""Payment channel ids and vouchers (docs/protocol.md, "Payment channels")."""

from __future__ import annotations

import hashlib
from typing import Any

from .keys import Key, public_of_did, verify

CHANNEL_ID_PREFIX = b"agentrail channel id v1\n"
VOUCHER_PREFIX = b"agentrail voucher v1\n"


def network_hash(network: str) -> bytes:
    return hashlib.sha256(network.encode()).digest()


def channel_id(payer: str, payee: str, idempotency_key: str) -> str:
    """The id of the channel `payer` opens to `payee` under that key."""
    key = idempotency_key.encode()
    data = CHANNEL_ID_PREFIX + public_of_did(payer) + public_of_did(payee) + len(key).to_bytes(8, "big") + key
    return hashlib.sha256(data).hexdigest()


def voucher_signing_bytes(network: str, terms: dict[str, Any]) -> bytes:
    """The 181 bytes a voucher's signature covers."""
    return (
        VOUCHER_PREFIX
        + network_hash(network)
        + bytes.fromhex(terms["channelId"])
        + int(terms["epoch"]).to_bytes(8, "big")
        + hashlib.sha256(terms["subChannelId"].encode()).digest()
        + int(terms["accumulatedAmount"]).to_bytes(16, "big")
        + int(terms["nonce"]).to_bytes(8, "big")
        + public_of_did(terms["payeeId"])
    )


def sign_voucher(key: Key, network: str, terms: dict[str, Any]) -> dict[str, Any]:
    signature = key.sign(voucher_signing_bytes(network, terms)).hex()
    return {**terms, "payerSignature": signature}


def verify_voucher(signer: str, network: str, voucher: dict[str, Any]) -> bool:
    terms = {k: v for k, v in voucher.items() if k != "payerSignature"}
    return verify(signer, bytes.fromhex(voucher["payerSignature"]), voucher_signing_bytes(network, terms))
