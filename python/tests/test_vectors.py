"""The known answers of docs/vectors.json, computed by the SDK."""

from __future__ import annotations

import base64
import json

from agentrail import Key, did_of_public, public_of_did
from agentrail.channels import (
    channel_id,
    network_hash,
    sign_voucher,
    verify_voucher,
    voucher_signing_bytes,
)
from agentrail.keys import verify
from agentrail.signing import (
    content_digest,
    grant_id,
    grant_signing_bytes,
    sign_grant,
    sign_request,
)

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

VECTORS = json.loads((ROOT / "docs" / "vectors.json").read_text())


def test_keys_and_did_key() -> None:
    for vector in VECTORS["keys"]:
        key = Key.from_seed(bytes.fromhex(vector["seed_hex"]))
        assert key.public.hex() == vector["public_key_hex"]
        assert key.did == vector["did"]
        assert did_of_public(public_of_did(vector["did"])) == vector["did"]


def test_network_hash() -> None:
    network = VECTORS["network"]
    assert network["network_id"] == "agentrail:" + network["log_origin"]
    assert network_hash(network["network_id"]).hex() == network["network_hash_hex"]


def test_grant_signing_bytes_id_and_signature() -> None:
    vector = VECTORS["grant"]
    document = vector["document"]
    assert grant_signing_bytes(document).decode() == vector["signing_bytes_utf8"]
    assert grant_id(document) == vector["grant_id"]
    issuer = next(
        Key.from_seed(bytes.fromhex(k["seed_hex"])) for k in VECTORS["keys"] if k["did"] == document["issuer"]
    )
    assert sign_grant(issuer, document) == vector["signed_grant"]
    assert vector["signed_grant"]["signature"] == vector["signature_hex"]


def test_signed_request() -> None:
    vector = VECTORS["request"]
    key = Key.from_seed(bytes.fromhex(vector["signer_seed_hex"]))
    body = vector["body_utf8"].encode()
    assert content_digest(body) == vector["content_digest"]
    network = VECTORS["network"]["network_id"]
    headers = sign_request(
        key,
        network,
        vector["method"],
        vector["path"],
        body,
        created=vector["created"],
        nonce=vector["nonce"],
    )
    assert headers["Signature-Input"] == vector["signature_input"]
    assert headers["Signature"] == vector["signature"]
    signature = base64.b64decode(vector["signature"].split(":")[1])
    assert verify(key.did, signature, vector["signature_base"].encode())


def test_channel_id_and_voucher() -> None:
    channel = VECTORS["channel"]
    assert channel_id(channel["from"], channel["payee"], channel["idempotency_key"]) == channel["channel_id"]
    voucher = VECTORS["voucher"]
    network = VECTORS["network"]["network_id"]
    assert voucher_signing_bytes(network, voucher["terms"]).hex() == voucher["signing_bytes_hex"]
    assert len(voucher_signing_bytes(network, voucher["terms"])) == 181
    payer = next(
        Key.from_seed(bytes.fromhex(k["seed_hex"])) for k in VECTORS["keys"] if k["did"] == channel["from"]
    )
    assert sign_voucher(payer, network, voucher["terms"]) == voucher["signed"]
    assert verify_voucher(payer.did, network, voucher["signed"])
    tampered = {**voucher["signed"], "accumulatedAmount": "250001"}
    assert not verify_voucher(payer.did, network, tampered)
