"""Proofs against a pinned log key: checkpoints (C2SP signed notes),
receipts (RFC 9162 inclusion) and consistency between two checkpoints.

The Merkle algorithms are RFC 9162 §2.1.3.2 and §2.1.4.2; the note format
is C2SP `signed-note` with an Ed25519 key (`tlog-checkpoint`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from . import models


class ProofError(ValueError):
    """A checkpoint, receipt or consistency proof that does not hold."""


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclass(frozen=True)
class LogKey:
    """A C2SP note verifier key: `<name>+<key id hex>+<base64 0x01‖key>`."""

    name: str
    key_id: bytes
    public: bytes

    @classmethod
    def parse(cls, text: str) -> LogKey:
        try:
            name, key_id, key = text.strip().split("+", 2)
            raw = base64.b64decode(key, validate=True)
        except ValueError as error:
            raise ProofError("a log key is <name>+<key id>+<base64 key>") from error
        if len(raw) != 33 or raw[0] != 1:
            raise ProofError("the log key is not an Ed25519 note key")
        expected = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
        if bytes.fromhex(key_id) != expected:
            raise ProofError("the log key's id does not match its key")
        return cls(name, expected, raw[1:])

    @property
    def network(self) -> str:
        """The network id of this log's ledger."""
        return "agentrail:" + self.name


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes


def open_checkpoint(note: str, key: LogKey) -> Checkpoint:
    """The checkpoint a note states, once its signature by `key` verified."""
    split = note.rfind("\n\n")
    if split < 0:
        raise ProofError("a signed note has a blank line before its signatures")
    text = note[: split + 1]
    for line in note[split + 2 :].splitlines():
        if not line.startswith("\u2014 "):
            raise ProofError("a malformed signature line")
        signer, _, signature = line[2:].partition(" ")
        try:
            raw = base64.b64decode(signature, validate=True)
        except ValueError as error:
            raise ProofError("a signature that is not base64") from error
        if signer != key.name or raw[:4] != key.key_id:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(key.public).verify(raw[4:], text.encode())
        except InvalidSignature as error:
            raise ProofError("the checkpoint's signature does not verify") from error
        lines = text.split("\n")
        if len(lines) < 4 or lines[0] != key.name:
            raise ProofError("the checkpoint names another log")
        try:
            return Checkpoint(lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True))
        except ValueError as error:
            raise ProofError("the checkpoint's size or root is malformed") from error
    raise ProofError("the checkpoint is not signed by the pinned log key")


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    if index >= size:
        return False
    fn, sn, result = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = _node(sibling, result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = _node(result, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> bool:
    if first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    if first & (first - 1) == 0:
        proof = [first_root, *proof]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


@dataclass(frozen=True)
class VerifiedReceipt:
    """What a receipt proves: entry `index` of a log of `tree_size` leaves."""

    index: int
    tree_size: int
    entry: dict[str, Any]


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as error:
        raise ProofError("a hash that is not base64") from error


def verify_receipt(receipt: models.Receipt, key: LogKey) -> VerifiedReceipt:
    """Checks a receipt offline: the checkpoint's signature, then the leaf's
    inclusion under its root. Raises `ProofError` when either fails."""
    checkpoint = open_checkpoint(receipt.checkpoint, key)
    if checkpoint.size != receipt.tree_size:
        raise ProofError("the receipt's tree size is not its checkpoint's")
    leaf = _b64(receipt.leaf)
    if leaf_hash(leaf) != _b64(receipt.leaf_hash):
        raise ProofError("the leaf hash is not the hash of the leaf")
    proof = [_b64(h) for h in receipt.inclusion_proof]
    if not verify_inclusion(leaf_hash(leaf), receipt.index, checkpoint.size, proof, checkpoint.root):
        raise ProofError("the inclusion proof does not lead to the signed root")
    try:
        entry = json.loads(leaf)
    except ValueError as error:
        raise ProofError("the leaf is not a journal entry") from error
    return VerifiedReceipt(receipt.index, checkpoint.size, entry)


def verify_checkpoints(
    older: str, newer: str, proof: models.ConsistencyProof, key: LogKey
) -> tuple[Checkpoint, Checkpoint]:
    """Checks that `newer` extends `older`: the log was not rewritten."""
    first, second = open_checkpoint(older, key), open_checkpoint(newer, key)
    if (proof.from_, proof.to) != (first.size, second.size):
        raise ProofError("the proof is not between these two checkpoints")
    hashes = [_b64(h) for h in proof.proof]
    if not verify_consistency(first.size, second.size, first.root, second.root, hashes):
        raise ProofError("the newer checkpoint does not extend the older one")
    return first, second
