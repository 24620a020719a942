"""Subscriptions, bounties and orders through the Python client's typed
methods, against the real node: what is collected once per period, what a
validator's score pays, what an atomic order holds until every leg lands,
and the codes an attacker meets."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest

from agentrail import AgentrailError, Client, Key, Limits
from agentrail.units import to_usd


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def available(client: Client, did: str) -> Decimal:
    return to_usd(client.balance(did).available.root)


def refused(call: object) -> str:
    with pytest.raises(AgentrailError) as error:
        call()  # type: ignore[operator]
    return error.value.code


def test_a_subscription_collects_once_per_period_and_stops_when_cancelled(node: str) -> None:
    client = Client(node)
    owner, agent, host = Key.generate(), Key.generate(), Key.generate()
    for key in (owner, host):
        client.register_principal(key)
    client.faucet(owner.did, "50")
    client.register_agent(owner, agent.did, Limits(max_per_payment="10", daily_budget="20"))
    client.transfer(owner, agent.did, "30")
    client.subscribe(agent, subscription_id="py-vm", payee=host.did, amount="9", period="month")
    assert refused(lambda: client.collect_subscription(host, subscription_id="py-vm", amount="9.01")) == (
        "subscription_amount_exceeded"
    )
    client.collect_subscription(host, subscription_id="py-vm", amount="9")
    assert refused(lambda: client.collect_subscription(host, subscription_id="py-vm", amount="1")) == (
        "subscription_already_collected"
    )
    assert available(client, host.did) == Decimal("9")
    client.cancel_subscription(agent, subscription_id="py-vm")
    view = client.subscription("py-vm").model_dump(mode="json")
    assert view["status"] == "cancelled" and view["collects"] == 1


def test_a_bounty_pays_what_the_validator_scores_and_returns_the_rest(node: str) -> None:
    client = Client(node)
    lead, validator, worker = Key.generate(), Key.generate(), Key.generate()
    for key in (lead, validator, worker):
        client.register_principal(key)
    client.faucet(lead.did, "20")
    client.post_bounty(
        lead,
        bounty_id="py-bounty",
        price="8",
        contributions=1,
        validator=validator.did,
        full_pay_s=3_600,
        close_s=7_200,
    )
    client.submit_contribution(
        worker,
        bounty_id="py-bounty",
        contribution_id="py-c1",
        contributor=worker.did,
        result_hash=sha256("py-c1"),
    )
    score = dict(bounty_id="py-bounty", contribution_id="py-c1", result_hash=sha256("py-c1"))
    assert refused(lambda: client.score_contribution(lead, score_bps=10_000, **score)) == "not_validator"
    client.score_contribution(validator, score_bps=7_500, **score)
    assert available(client, worker.did) == Decimal("6")
    bounty = client.bounty("py-bounty").model_dump(mode="json")
    assert bounty["status"] == "closed"
    assert available(client, lead.did) == Decimal("14")


def test_an_atomic_order_pays_every_leg_at_the_last_approval(node: str) -> None:
    client = Client(node)
    buyer, supplier, carrier = Key.generate(), Key.generate(), Key.generate()
    for key in (buyer, supplier, carrier):
        client.register_principal(key)
    client.faucet(buyer.did, "30")
    legs = [
        {"provider": supplier.did, "price": "5000000", "deadline_s": 3_600},
        {"provider": carrier.did, "price": "2000000", "deadline_s": 3_600},
    ]
    client.place_order(buyer, order_id="py-order", legs=legs, atomic=True)
    for index, provider in enumerate((supplier, carrier)):
        client.deliver_leg(provider, order_id="py-order", leg=index, result_hash=sha256(f"leg {index}"))
    assert refused(
        lambda: client.approve_leg(supplier, order_id="py-order", leg=0, result_hash=sha256("leg 0"))
    ) == "not_authorized"
    client.approve_leg(buyer, order_id="py-order", leg=0, result_hash=sha256("leg 0"))
    assert available(client, supplier.did) == Decimal("0")
    client.approve_leg(buyer, order_id="py-order", leg=1, result_hash=sha256("leg 1"))
    assert (available(client, supplier.did), available(client, carrier.did)) == (Decimal("5"), Decimal("2"))
    assert client.order("py-order").model_dump(mode="json")["status"] == "completed"
