"""Every command through the clients' typed methods, against the real node:
mandates and approvals, holds, sessions, withdrawals, channels (async),
and the market — a buyer hiring with its strategy while a provider answers
with its own, deliveries, approval, a dispute and its resolution, a dataset
licence."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from decimal import Decimal

import pytest

from agentrail import AgentrailError, AsyncClient, Client, Key, Limits
from agentrail.channels import channel_id, sign_voucher
from agentrail.market import BuyerStrategy, ProviderStrategy, answer_rfqs, hire, per_call, per_task
from agentrail.units import to_usd

from agentrail import api


def registered(client: Client, *keys: Key) -> None:
    for key in keys:
        client.register_principal(key)


def events(response: object) -> list[dict[str, object]]:
    return [event.model_dump(mode="json", by_alias=True) for event in response.events]  # type: ignore[attr-defined]


def available(client: Client, did: str) -> Decimal:
    return to_usd(client.balance(did).available.root)


def test_mandates_approvals_holds_sessions_and_withdrawals(node: str) -> None:
    client = Client(node)
    owner, agent, shop, session = Key.generate(), Key.generate(), Key.generate(), Key.generate()
    registered(client, owner, shop)
    client.faucet(owner.did, "100")
    client.register_agent(
        owner, agent.did, Limits(max_per_payment="10", daily_budget="50", approval_threshold="2")
    )
    client.transfer(owner, agent.did, "30")

    # Above the approval threshold: pending until the owner approves or declines.
    pending = events(client.transfer(agent, shop.did, "3", memo="needs a yes"))
    assert pending[0]["type"] == "payment_pending"
    approved = client.approve(owner, approval_id=pending[0]["approval_id"])
    assert "payment_approved" in {e["type"] for e in events(approved)}
    declined_id = events(client.transfer(agent, shop.did, "4"))[0]["approval_id"]
    client.decline(owner, approval_id=declined_id)
    assert client.approval(declined_id).model_dump(mode="json")["status"] != "pending"
    assert available(client, shop.did) == Decimal("3")

    # Escrow: a hold released in splits, a hold voided.
    held = client.hold(agent, amount="1.5")
    hold_id = events(held)[0]["hold_id"]
    client.release(agent, hold_id=hold_id, splits=[{"to": shop.did, "bps": 10_000}])
    assert available(client, shop.did) == Decimal("4.5")
    voided = client.hold(agent, amount="1", hold_id="py-hold-void")
    assert events(voided)[0]["hold_id"] == "py-hold-void"
    client.void(agent, hold_id="py-hold-void")
    assert client.hold_status("py-hold-void").model_dump(mode="json")["status"] != "held"

    # A session pays from its agent's account; a revoked one cannot.
    client.issue_session(
        agent, session.did, Limits(max_per_payment="1", daily_budget="2", approval_threshold="1")
    )
    client.transfer(session, shop.did, "0.5", from_=agent.did)
    client.revoke(agent, subject=session.did)
    with pytest.raises(AgentrailError) as revoked:
        client.transfer(session, shop.did, "0.5", from_=agent.did)
    assert revoked.value.status in (401, 403)

    # Withdrawals leave the ledger; a deposit is the operator's alone.
    before = available(client, owner.did)
    client.withdraw(owner, amount="1")
    assert available(client, owner.did) == before - 1
    with pytest.raises(AgentrailError) as not_operator:
        client.deposit(owner, to=owner.did, amount="1")
    assert not_operator.value.status == 403

    # Amounts are USD, never guessed from an int.
    with pytest.raises(TypeError):
        client.transfer(owner, shop.did, 1)  # type: ignore[arg-type]


def test_channels_through_the_async_client(node: str) -> None:
    async def run() -> None:
        async with AsyncClient(node) as client:
            payer, payee = Key.generate(), Key.generate()
            await client.register_principal(payer)
            await client.register_principal(payee)
            await client.faucet(payer.did, "10")
            network = await client.network()
            opened = await client.open_channel(
                payer, payee=payee.did, deposit="2", idempotency_key="py-open-1"
            )
            channel = channel_id(payer.did, payee.did, "py-open-1")
            assert events(opened)[0]["channel_id"] == channel
            await client.top_up_channel(payer, channel_id=channel, amount="1")
            assert (await client.channel(channel)).deposit.root == "3000000"

            def voucher(total: int, nonce: int) -> dict[str, object]:
                return sign_voucher(
                    payer,
                    network,
                    {
                        "channelId": channel,
                        "epoch": 0,
                        "subChannelId": "a",
                        "accumulatedAmount": str(total),
                        "nonce": nonce,
                        "payeeId": payee.did,
                    },
                )

            collected = await client.collect_channel(
                payee, channel_id=channel, vouchers=[voucher(500_000, 1)]
            )
            assert any(e["type"] == "channel_collected" for e in events(collected))
            await client.start_channel_close(payer, channel_id=channel)
            await client.close_channel(payee, channel_id=channel, vouchers=[voucher(700_000, 2)])
            view = await client.channel(channel)
            assert view.collected.root == "700000" and view.status.root.state == "closed"
            assert to_usd((await client.balance(payee.did)).available.root) == Decimal("0.7")

    asyncio.run(run())


def test_the_market_hires_delivers_approves_disputes_and_licenses(node: str) -> None:
    client = Client(node)
    owner, buyer, provider, arbiter = Key.generate(), Key.generate(), Key.generate(), Key.generate()
    registered(client, owner, provider, arbiter)
    client.faucet(owner.did, "100")
    client.faucet(provider.did, "50")
    client.register_agent(owner, buyer.did, Limits(max_per_payment="20", daily_budget="60"))
    client.transfer(owner, buyer.did, "50")
    client.publish_listing(
        provider,
        listing_id="py-gpu",
        name="GPU hours",
        kind="service",
        capabilities=["py-gpu"],
        pricing=per_task("8"),
        provider=provider.did,
        stake="10",
        endpoint="https://provider.example/a2a",
    )
    found = client.listings(capability="py-gpu")
    assert found.total == 1 and found.listings[0].model_dump(mode="json")["listing"]["listing_id"] == "py-gpu"

    # The provider answers requests with its strategy while the buyer hires with its own.
    stop = threading.Event()

    def provide() -> None:
        strategy = ProviderStrategy.of("6", markup_bps=5_000)  # asks 9, meets counters at or above 6
        while not stop.is_set():
            answer_rfqs(client, provider, "py-gpu", strategy)
            stop.wait(0.1)

    worker = threading.Thread(target=provide, daemon=True)
    worker.start()
    try:
        hired = hire(
            client,
            buyer,
            capability="py-gpu",
            budget_max="15",
            deadline_s=3_600,
            description="an hour of GPU",
            arbiter=arbiter.did,
            strategy=BuyerStrategy(),
        )
        second = hire(
            client, buyer, capability="py-gpu", budget_max="15", deadline_s=3_600, arbiter=arbiter.did
        )
    finally:
        stop.set()
        worker.join(timeout=10)
    # Asked 9, countered 15% below (7.65), met: 7.65 locked in escrow.
    assert hired.price == 7_650_000
    task = client.task(hired.task_id).model_dump(mode="json")
    assert task["terms"]["provider"] == provider.did and task["terms"]["price"] == "7650000"

    result = hashlib.sha256(b"the GPU hour's output").hexdigest()
    client.deliver_task(
        provider, task_id=hired.task_id, result_hash=result, uri="https://provider.example/out"
    )
    client.approve_task(buyer, task_id=hired.task_id, result_hash=result)
    assert client.task(hired.task_id).model_dump(mode="json")["status"]["state"] == "approved"

    client.deliver_task(provider, task_id=second.task_id, result_hash=hashlib.sha256(b"late").hexdigest())
    client.dispute_task(buyer, task_id=second.task_id, reason="the output is empty")
    resolved = client.resolve_dispute(arbiter, task_id=second.task_id, provider_bps=2_500)
    assert "dispute_resolved" in {e["type"] for e in events(resolved)}
    assert client.reputation(provider.did).tasks_paid >= 1

    # A dataset, licensed per call of its listing.
    content = hashlib.sha256(b"a dataset").hexdigest()
    client.publish_listing(
        provider,
        listing_id="py-data",
        name="a dataset",
        kind="dataset",
        capabilities=["py-data"],
        pricing=per_call("0.25"),
        provider=provider.did,
        content_hash=content,
    )
    licensed = client.license_dataset(buyer, listing_id="py-data", license_id="py-licence")
    assert events(licensed)[0]["type"] == "dataset_licensed"
    assert client.license("py-licence").content_hash == content
    client.withdraw_listing(provider, listing_id="py-data")
    assert client.listing("py-data").model_dump(mode="json")["status"] != "live"


def test_every_command_has_a_method() -> None:
    from agentrail import models

    commands = {
        cls.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
        for name, cls in vars(models).items()
        if name.endswith("Command") and name != "Command" and isinstance(cls, type)
    }
    node_only = {"tick"}
    missing = {
        name for name in commands - node_only if not hasattr(Client, name) or not hasattr(AsyncClient, name)
    }
    assert not missing
    assert api.usd("1.5") == "1500000"
