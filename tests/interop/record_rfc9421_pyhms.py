"""Records a command request signed by PyPI's `http-message-signatures`.

The fixture `crates/agentrail-wire/tests/fixtures/rfc9421_pyhms.json` is
what this prints; the Rust tests verify it, so the verifier is checked
against bytes written by a library nobody here wrote. Regenerate with:

    python3 -m venv /tmp/hms && /tmp/hms/bin/pip install http-message-signatures==3.0.0 requests==2.34.2
    /tmp/hms/bin/python tests/interop/record_rfc9421_pyhms.py > crates/agentrail-wire/tests/fixtures/rfc9421_pyhms.json

The library's defaults are kept (label `pyhms`, parameters written as
created;keyid;alg;…, `alg` included); the request chooses what agentrail
requires: the covered components, a nonce and the network id as `tag`.
"""

import datetime
import json

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from http_message_signatures import HTTPMessageSigner, algorithms

SEED = bytes([7] * 32)
NETWORK = "agentrail:agentrail.log/0011223344556677"
CREATED = 1767225600
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def did_key(public: bytes) -> str:
    """did:key of an Ed25519 public key (multicodec 0xed01, base58btc)."""
    data = b"\xed\x01" + public
    number = int.from_bytes(data, "big")
    text = ""
    while number:
        number, digit = divmod(number, 58)
        text = BASE58[digit] + text
    return "did:key:z" + "1" * (len(data) - len(data.lstrip(b"\0"))) + text


class Keys:
    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.from_private_bytes(SEED)

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        return self.private

    def resolve_public_key(self, key_id: str):
        return self.private.public_key()


def main() -> None:
    keys = Keys()
    public = keys.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    keyid = did_key(public)
    body = json.dumps(
        {
            "type": "transfer",
            "from": keyid,
            "to": keyid,
            "amount": "1000000",
            "idempotency_key": "pyhms-fixture",
        },
        separators=(",", ":"),
    ).encode()
    request = requests.Request(
        "POST", "http://127.0.0.1:8402/v1/commands", data=body
    ).prepare()
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=keys)
    signer.sign(
        request,
        key_id=keyid,
        created=datetime.datetime.fromtimestamp(CREATED, datetime.timezone.utc),
        nonce="pyhms-fixture-1",
        tag=NETWORK,
        covered_component_ids=("@method", "@path", "content-digest"),
        body=body,
    )
    fixture = {
        "library": "PyPI http-message-signatures 3.0.0",
        "seed_hex": SEED.hex(),
        "keyid": keyid,
        "network": NETWORK,
        "created": CREATED,
        "method": request.method,
        "path": "/v1/commands",
        "body": body.decode(),
        "content_digest": request.headers["Content-Digest"],
        "signature_input": request.headers["Signature-Input"],
        "signature": request.headers["Signature"],
    }
    print(json.dumps(fixture, indent=2))


if __name__ == "__main__":
    main()
