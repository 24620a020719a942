"""The SDK against the real node binary: mandates, payments, refusals."""

from __future__ import annotations

import base64
import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pytest

from agentrail import AgentrailError, Client, Key, Limits, to_usd
from agentrail.proof import LogKey, ProofError, open_checkpoint, verify_checkpoints, verify_receipt
from agentrail.models import DuplicateEvent, TransferredEvent


def test_a_mandate_binds_an_agent_and_its_session(node: str, tmp_path: Path) -> None:
    client = Client(node)
    principal, agent, session, vendor = (Key.generate() for _ in range(4))
    # Key files round-trip in the CLI's format.
    principal.save(tmp_path / "principal.key")
    assert Key.load(tmp_path / "principal.key").did == principal.did
    assert json.loads((tmp_path / "principal.key").read_text())["did"] == principal.did

    client.register_principal(principal)
    client.register_principal(vendor)
    client.faucet(principal.did, "100")
    client.register_agent(
        principal, agent.did, Limits(max_per_payment=Decimal("5"), daily_budget=Decimal("20"))
    )
    client.transfer(principal, agent.did, "30")
    client.issue_session(agent, session.did, Limits(max_per_payment=Decimal("2"), daily_budget=Decimal("3")))

    paid = client.transfer(session, vendor.did, "1.5", from_=agent.did, idempotency_key="py-pay-1")
    assert any(
        isinstance(event.root, TransferredEvent) and event.root.amount.root == "1500000"
        for event in paid.events
    )
    # The same key and command again: the first outcome, not a second payment.
    again = client.transfer(session, vendor.did, "1.5", from_=agent.did, idempotency_key="py-pay-1")
    duplicate = again.events[0].root
    assert isinstance(duplicate, DuplicateEvent)
    assert duplicate.original == paid.events
    assert to_usd(client.balance(vendor.did).available.root) == Decimal("1.5")

    # Over the session's per-payment limit: refused with the mandate's code.
    with pytest.raises(AgentrailError) as refused:
        client.transfer(session, vendor.did, "2.5", from_=agent.did)
    assert refused.value.status == 403
    assert refused.value.code == "per_payment_limit_exceeded"
    # The same key with a different command is a conflict, not a payment.
    with pytest.raises(AgentrailError) as conflict:
        client.transfer(session, vendor.did, "1", from_=agent.did, idempotency_key="py-pay-1")
    assert conflict.value.code == "idempotency_conflict"
    assert to_usd(client.balance(vendor.did).available.root) == Decimal("1.5")

    passport = client.passport(agent.did)
    assert passport.model_dump(mode="json")  # parsed into the generated model
    history = client.history(agent.did)
    assert history.items


def test_a_bad_signature_is_a_typed_refusal(node: str) -> None:
    client = Client(node, network="agentrail:some.other/log")
    with pytest.raises(AgentrailError) as refused:
        client.register_principal(Key.generate())
    assert refused.value.status == 401
    assert refused.value.code == "signature_wrong_network"


def test_receipts_and_checkpoints_verify_against_the_pinned_key(node: str) -> None:
    client = Client(node)
    key = LogKey.parse(client.log_key())
    assert key.network == client.network()
    payer = Key.generate()
    client.register_principal(payer)
    older = client.checkpoint()
    paid = client.faucet(payer.did, "2")
    receipt = client.receipt(paid.index)
    verified = verify_receipt(receipt, key)
    assert verified.index == paid.index
    assert payer.did in json.dumps(verified.entry)  # the faucet deposit names its payee

    # A receipt whose leaf was changed, or checked against another key, fails.
    forged = receipt.model_copy(update={"leaf": base64.b64encode(b"{}").decode()})
    with pytest.raises(ProofError):
        verify_receipt(forged, key)
    other = Key.generate()
    with pytest.raises(ProofError):
        verify_receipt(receipt, LogKey.parse(_note_key(key.name, other)))

    newer = client.checkpoint()
    first, second = (open_checkpoint(note, key) for note in (older, newer))
    proof = client.consistency(first.size, second.size)
    verify_checkpoints(older, newer, proof, key)
    with pytest.raises(ProofError):
        verify_checkpoints(newer, older, proof, key)


def _note_key(name: str, key: Key) -> str:
    raw = b"\x01" + key.public
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    return f"{name}+{key_id.hex()}+{base64.b64encode(raw).decode()}"
