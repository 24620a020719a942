"""The Python paywall (examples/text-stats-py) paid by the Python payer and by
the Rust payer (examples/text-stats's buyer), against the real node."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from agentrail import Client, Key
from agentrail.channels import sign_voucher
from agentrail.payer import ChannelPayer, PaymentError, decode_header, encode_header

from conftest import ROOT, Provider, free_port, node_binary

STATS_PRICE = 1_000
SCHEMA = json.loads((ROOT / "tests" / "x402-v2.schema.json").read_text())


def conforms(definition: str, value: Any) -> None:
    """Checks `value` against x402's published v2 schema."""
    schema = {**SCHEMA, "$ref": f"#/$defs/{definition}"}
    jsonschema.validate(value, schema)


def running_provider(node: str, folder: Path, threshold: str) -> Iterator[Provider]:
    running = Provider(node, folder, free_port(), "--collect-threshold", threshold, "--check-every", "0.2")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture()
def provider(node: str, tmp_path: Path) -> Iterator[Provider]:
    yield from running_provider(node, tmp_path, "0.005")


def funded(node: str, usd: str = "5") -> tuple[Client, Key]:
    client = Client(node)
    key = Key.generate()
    client.register_principal(key)
    client.faucet(key.did, usd)
    return client, key


def collected(client: Client, channel: str) -> int:
    return int(client.channel(channel).collected.root)


def wait_for(predicate: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_402_is_x402_v2_and_refusals_are_typed(node: str, provider: Provider) -> None:
    unpaid = httpx.post(provider.url + "/stats", content=b"hello")
    assert unpaid.status_code == 402
    required = decode_header(unpaid.headers["PAYMENT-REQUIRED"])
    conforms("PaymentRequired", required)
    (terms,) = required["accepts"]
    assert terms["scheme"] == "channel" and terms["payTo"] == provider.did and terms["amount"] == "1000"
    metered = decode_header(httpx.post(provider.url + "/stats/full").headers["PAYMENT-REQUIRED"])
    assert metered["accepts"][0]["extra"] == {
        "pricing": "per_unit",
        "unit": "kilobyte",
        "maxAmountPerCall": "50000",
    }
    assert unpaid.headers["access-control-allow-origin"] == "*"

    garbled = httpx.post(provider.url + "/stats", headers={"PAYMENT-SIGNATURE": "%%%"})
    assert garbled.status_code == 400 and garbled.json()["error"]["code"] == "invalid_payment"

    # A voucher on a channel the ledger does not know, then a forged one.
    client, key = funded(node)
    voucher = sign_voucher(
        key,
        client.network(),
        {
            "channelId": "ab" * 32,
            "epoch": 0,
            "subChannelId": "s",
            "accumulatedAmount": "1000",
            "nonce": 1,
            "payeeId": provider.did,
        },
    )
    payload = {
        "x402Version": 2,
        "accepted": terms,
        "payload": {"version": 1, "payerId": key.did, "receipt": voucher},
    }
    unknown = httpx.post(provider.url + "/stats", headers={"PAYMENT-SIGNATURE": encode_header(payload)})
    assert unknown.status_code == 402
    settlement = decode_header(unknown.headers["PAYMENT-RESPONSE"])
    conforms("SettlementResponse", settlement)
    assert settlement["errorReason"] == "channel_not_found"

    payer = ChannelPayer(client, key, ":memory:", max_per_call="0.01", max_total="0.1")
    with httpx.Client(auth=payer) as http:
        assert http.post(provider.url + "/stats", content=b"open the channel").status_code == 200
    (channel,) = payer.channels()
    impostor = Key.generate()
    forged = sign_voucher(
        impostor,
        client.network(),
        {
            "channelId": channel,
            "epoch": 0,
            "subChannelId": "forged",
            "accumulatedAmount": "5000",
            "nonce": 1,
            "payeeId": provider.did,
        },
    )
    payload["payload"]["receipt"] = forged
    answer = httpx.post(provider.url + "/stats", headers={"PAYMENT-SIGNATURE": encode_header(payload)})
    assert decode_header(answer.headers["PAYMENT-RESPONSE"])["errorReason"] == "voucher_signature_invalid"
    # Replaying an accepted voucher buys nothing: its credit was spent.
    payload["payload"]["receipt"] = sign_voucher(
        key,
        client.network(),
        {
            "channelId": channel,
            "epoch": 0,
            "subChannelId": "py-0",
            "accumulatedAmount": "1000",
            "nonce": 1,
            "payeeId": provider.did,
        },
    )
    replay = httpx.post(provider.url + "/stats", headers={"PAYMENT-SIGNATURE": encode_header(payload)})
    assert replay.status_code == 402
    assert decode_header(replay.headers["PAYMENT-RESPONSE"])["errorReason"] == "payment_insufficient"


@pytest.fixture()
def collects_at_11500(node: str, tmp_path: Path) -> Iterator[Provider]:
    """A provider whose threshold only the whole test's earnings reach: with
    a lower one, a check falling between two calls would collect part and
    leave a rest below the threshold, which only time collects."""
    yield from running_provider(node, tmp_path, "0.0115")


def test_the_python_payer_pays_the_python_provider_which_collects(
    node: str, collects_at_11500: Provider, tmp_path: Path
) -> None:
    provider = collects_at_11500
    client, key = funded(node)
    payer = ChannelPayer(client, key, tmp_path / "payer.sqlite", max_per_call="0.06", max_total="1")
    with httpx.Client(auth=payer) as http:
        for _ in range(10):
            answer = http.post(
                provider.url + "/stats", content=b"the quick brown fox jumps over the lazy dog"
            )
            assert answer.status_code == 200, answer.text
            settlement = decode_header(answer.headers["PAYMENT-RESPONSE"])
            conforms("SettlementResponse", settlement)
        assert answer.json()["words"] == 9
        # Metered: 3 started kilobytes, 1500; the credit signed ahead is 50000.
        full = http.post(provider.url + "/stats/full", content=b"word " * 500)
        assert full.status_code == 200 and full.json()["words"] == 500
    (channel,) = payer.channels()
    # 10 calls and a metered one earned 11500, the threshold: collected by
    # the provider by itself, never the credit signed ahead.
    wait_for(lambda: collected(client, channel) == 10 * STATS_PRICE + 1_500)
    assert payer.spent() >= collected(client, channel)


def test_the_rust_payer_pays_the_python_provider(node: str, provider: Provider, tmp_path: Path) -> None:
    client, key = funded(node)
    key.save(tmp_path / "buyer.key")
    buyer = node_binary().parent / "buyer"
    run = subprocess.run(
        [
            str(buyer),
            "--node",
            node,
            "--key",
            str(tmp_path / "buyer.key"),
            "--provider",
            provider.url,
            "--calls",
            "40",
            "--concurrency",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "40 paid calls" in run.stdout, run.stdout
    # The buyer started closing its channel; the provider collects within
    # the dispute window what the calls cost: 40 calls and one metered call
    # on 40 copies of a 177-byte text (7 started kilobytes, 3500).
    history = client.history(key.did).model_dump(mode="json")
    channels = {
        e["channel_id"] for item in history["items"] for e in item["events"] if e["type"] == "channel_opened"
    }
    (channel,) = channels
    wait_for(lambda: collected(client, channel) == 40 * STATS_PRICE + 3_500)


def test_a_killed_provider_loses_at_most_its_bound_and_the_payer_never_pays_twice(
    node: str, tmp_path: Path
) -> None:
    port = free_port()
    # Bound: a crash may lose at most 3 calls' worth of a channel.
    running = Provider(node, tmp_path, port, "--max-unsynced", "0.003", "--collect-threshold", "1000")
    client, key = funded(node)
    payer = ChannelPayer(client, key, tmp_path / "payer.sqlite", max_per_call="0.01", max_total="1")
    served = 0
    with httpx.Client(auth=payer) as http:
        for _ in range(20):
            assert http.post(running.url + "/stats", content=b"before").status_code == 200
            served += 1
        running.stop(signal.SIGKILL)
        running = Provider(node, tmp_path, port, "--max-unsynced", "0.003", "--collect-threshold", "1000")
        try:
            for _ in range(20):
                answer = http.post(running.url + "/stats", content=b"after")
                assert answer.status_code == 200, answer.text
                served += 1
        finally:
            running.stop()  # a clean stop syncs; the store keeps every charge
    (channel,) = payer.channels()
    # Closing makes the provider's collector-free path explicit: a restart
    # with a low threshold collects what the store holds.
    running = Provider(node, tmp_path, port, "--collect-threshold", "0.000001", "--check-every", "0.2")
    try:
        wait_for(lambda: collected(client, channel) > 0)
        time.sleep(0.5)
        earned = collected(client, channel)
    finally:
        running.stop()
    assert served * STATS_PRICE - 3_000 <= earned <= served * STATS_PRICE
    # The payer signed credit for each call once; nothing was paid twice.
    assert payer.spent() <= served * STATS_PRICE + STATS_PRICE * 2


def test_over_limit_terms_are_refused_before_anything_is_signed(node: str, provider: Provider) -> None:
    client, key = funded(node)
    payer = ChannelPayer(client, key, ":memory:", max_per_call="0.01", max_total="0.1")
    with httpx.Client(auth=payer) as http, pytest.raises(PaymentError) as refused:
        http.post(provider.url + "/stats/full", content=b"x")  # up to 50000 a call
    assert refused.value.reason == "over_limit"
    assert payer.spent() == 0 and payer.channels() == []


def test_vouchers_the_ledger_could_not_redeem_are_refused_as_malformed(node: str, provider: Provider) -> None:
    client, key = funded(node)
    payer = ChannelPayer(client, key, ":memory:", max_per_call="0.01", max_total="0.1")
    with httpx.Client(auth=payer) as http:
        assert http.post(provider.url + "/stats", content=b"open").status_code == 200
    (channel,) = payer.channels()
    terms = decode_header(httpx.post(provider.url + "/stats").headers["PAYMENT-REQUIRED"])["accepts"][0]
    good = sign_voucher(
        key,
        client.network(),
        {
            "channelId": channel,
            "epoch": 0,
            "subChannelId": "fresh",
            "accumulatedAmount": "1000",
            "nonce": 1,
            "payeeId": provider.did,
        },
    )

    def send(voucher: dict[str, Any]) -> httpx.Response:
        payload = {
            "x402Version": 2,
            "accepted": terms,
            "payload": {"version": 1, "payerId": key.did, "receipt": voucher},
        }
        return httpx.post(provider.url + "/stats", headers={"PAYMENT-SIGNATURE": encode_header(payload)})

    for bad in (
        {"nonce": "1"},
        {"nonce": True},
        {"epoch": False},
        {"subChannelId": "fresh\n"},
        {"nonce": 1 << 64},
        {"accumulatedAmount": str(1 << 128)},
        {"accumulatedAmount": 1000},
    ):
        answer = send({**good, **bad})
        assert answer.status_code == 402, (bad, answer.text)
        assert decode_header(answer.headers["PAYMENT-RESPONSE"])["errorReason"] == "voucher_malformed", bad
    # JSON nested past any parser's depth is a 400, not a crash.
    deep = base64.b64encode(b'{"x402Version":2,"payload":' + b"[" * 2500 + b"]" * 2500 + b"}").decode()
    answer = httpx.post(provider.url + "/stats", headers={"PAYMENT-SIGNATURE": deep})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_payment"
    # The good one is still accepted: nothing above was kept.
    assert send(good).status_code == 200


def test_the_payer_follows_proposals_so_metered_calls_sign_what_they_cost(
    node: str, provider: Provider
) -> None:
    client, key = funded(node)
    payer = ChannelPayer(client, key, ":memory:", max_per_call="0.05", max_total="1")
    with httpx.Client(auth=payer) as http:
        for _ in range(3):
            assert http.post(provider.url + "/stats/full", content=b"word " * 600).status_code == 200
    # The first call signs its ceiling (0.05) as credit; each later one
    # restores only what the call before cost (3 KB: 0.0015).
    assert payer.spent() == 50_000 + 2 * 1_500


def test_a_payee_crying_exhausted_cannot_make_the_payer_lock_up_more(node: str) -> None:
    client, key = funded(node)
    payee = Key.generate()
    client.register_principal(payee)
    network = client.network()
    terms = {
        "scheme": "channel",
        "network": network,
        "asset": "USD",
        "payTo": payee.did,
        "amount": "1000",
        "maxTimeoutSeconds": 60,
        "extra": {"pricing": "per_call"},
    }

    def hostile(request: httpx.Request) -> httpx.Response:
        required = encode_header({"x402Version": 2, "resource": {"url": "/x"}, "accepts": [terms]})
        if "PAYMENT-SIGNATURE" not in request.headers:
            return httpx.Response(402, headers={"PAYMENT-REQUIRED": required})
        refusal = encode_header(
            {"success": False, "transaction": "", "network": network, "errorReason": "channel_exhausted"}
        )
        return httpx.Response(402, headers={"PAYMENT-REQUIRED": required, "PAYMENT-RESPONSE": refusal})

    payer = ChannelPayer(client, key, ":memory:", max_per_call="0.01", max_total="1")
    with httpx.Client(auth=payer, transport=httpx.MockTransport(hostile)) as http, pytest.raises(
        PaymentError
    ) as refused:
        http.get("http://hostile.example/x")
    assert refused.value.reason == "channel_exhausted"
    (channel,) = payer.channels()
    assert client.channel(channel).deposit.root == "1000000"  # never topped up
    assert payer.spent() == 1_000
