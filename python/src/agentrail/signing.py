"""Signed documents and signed HTTP requests (docs/protocol.md).

The request signature is RFC 9421 with the three components agentrail
covers. It is written here rather than with `http-message-signatures`
because that library binds to `requests`' request objects and the
signature must be made over the exact bytes httpx sends; the bytes are
checked against `docs/vectors.json` and verified by the real node.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

import rfc8785

from .keys import Key

GRANT_PREFIX = b"agentrail grant v1\n"
COMMAND_PREFIX = b"agentrail command v1\n"
COVERED = '("@method" "@path" "content-digest")'


def canonical(document: Any) -> bytes:
    """RFC 8785 (JCS) bytes of a JSON document."""
    return rfc8785.dumps(document)


def grant_signing_bytes(document: dict[str, Any]) -> bytes:
    return GRANT_PREFIX + canonical(document)


def grant_id(document: dict[str, Any]) -> str:
    return hashlib.sha256(grant_signing_bytes(document)).hexdigest()


def sign_grant(issuer: Key, document: dict[str, Any]) -> dict[str, Any]:
    """The wire form of a signed grant: {"grant", "signature"}."""
    if document.get("issuer") != issuer.did:
        raise ValueError("a grant is signed by its issuer")
    return {"grant": document, "signature": issuer.sign(grant_signing_bytes(document)).hex()}


def content_digest(body: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def random_nonce() -> str:
    """A request nonce: 22 URL-safe characters (128 bits)."""
    return secrets.token_urlsafe(16)


def signature_params(did: str, network: str, created: int, nonce: str) -> str:
    return f'{COVERED};created={created};nonce="{nonce}";keyid="{did}";' f'alg="ed25519";tag="{network}"'


def signature_base(method: str, path: str, digest: str, params: str) -> str:
    return (
        f'"@method": {method.upper()}\n"@path": {path}\n'
        f'"content-digest": {digest}\n"@signature-params": {params}'
    )


def sign_request(
    key: Key,
    network: str,
    method: str,
    path: str,
    body: bytes,
    *,
    created: int | None = None,
    nonce: str | None = None,
    label: str = "sig1",
) -> dict[str, str]:
    """The three headers of a signed request over `body`."""
    created = int(time.time()) if created is None else created
    nonce = random_nonce() if nonce is None else nonce
    digest = content_digest(body)
    params = signature_params(key.did, network, created, nonce)
    base = signature_base(method, path, digest, params)
    signature = base64.b64encode(key.sign(base.encode())).decode()
    return {
        "Content-Digest": digest,
        "Signature-Input": f"{label}={params}",
        "Signature": f"{label}=:{signature}:",
    }
