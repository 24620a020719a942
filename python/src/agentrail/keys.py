"""Ed25519 keys, `did:key` identities and the CLI's key files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

# base58btc is a dozen lines and none of our dependencies provides it.
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ED25519_MULTICODEC = b"\xed\x01"


class KeyFormatError(ValueError):
    """A did:key or key file that cannot be read."""


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    text = ""
    while number:
        number, digit = divmod(number, 58)
        text = _BASE58[digit] + text
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + text


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        index = _BASE58.find(char)
        if index < 0:
            raise KeyFormatError(f"{char!r} is not a base58btc character")
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def did_of_public(public: bytes) -> str:
    """The did:key of a 32-byte Ed25519 public key."""
    if len(public) != 32:
        raise KeyFormatError("an Ed25519 public key is 32 bytes")
    return "did:key:z" + _b58encode(_ED25519_MULTICODEC + public)


def public_of_did(did: str) -> bytes:
    """The 32-byte Ed25519 public key a did:key names."""
    if not did.startswith("did:key:z"):
        raise KeyFormatError(f"{did!r} is not a did:key (did:key:z…)")
    data = _b58decode(did[len("did:key:z") :])
    if len(data) != 34 or data[:2] != _ED25519_MULTICODEC:
        raise KeyFormatError(f"{did!r} is not an Ed25519 did:key")
    return data[2:]


def verify(did: str, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is the Ed25519 signature of `did` over `message`."""
    try:
        Ed25519PublicKey.from_public_bytes(public_of_did(did)).verify(signature, message)
    except Exception:  # cryptography raises InvalidSignature; a bad key is no better
        return False
    return True


class Key:
    """An Ed25519 signing key and its did:key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.did = did_of_public(self.public)

    @classmethod
    def generate(cls) -> Key:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Key:
        if len(seed) != 32:
            raise KeyFormatError("an Ed25519 seed is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Key:
        """Reads a key file of `agentrail key generate`: {"did", "seed"}."""
        try:
            document = json.loads(Path(path).read_text())
            seed = bytes.fromhex(document["seed"])
            did = document["did"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise KeyFormatError(f'{path}: expected {{"did": …, "seed": …}}') from error
        key = cls.from_seed(seed)
        if key.did != did:
            raise KeyFormatError(f"{path}: the seed is not the key of {did}")
        return key

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes a key file the CLI reads, readable by its owner only."""
        text = json.dumps({"did": self.did, "seed": self.seed().hex()}, indent=2) + "\n"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(text)

    def seed(self) -> bytes:
        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"Key({self.did})"
