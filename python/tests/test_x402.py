"""agentrail's channel scheme registered in the official x402 SDK: x402's own
httpx and requests clients pay the Python and the Rust example providers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from x402 import x402Client, x402ClientSync
from x402.http.clients import wrapRequestsWithPayment, x402HttpxClient

from agentrail import Client, Key
from agentrail.payer import ChannelPayer, decode_header
from agentrail.x402_scheme import NETWORKS, ChannelScheme

from conftest import Provider, free_port

STATS_PRICE = 1_000


@pytest.fixture()
def provider(node: str, tmp_path: Path) -> Iterator[Provider]:
    running = Provider(node, tmp_path, free_port())
    try:
        yield running
    finally:
        running.stop()


def payer(node: str, folder: Path) -> ChannelPayer:
    client = Client(node)
    key = Key.generate()
    client.register_principal(key)
    client.faucet(key.did, "5")
    return ChannelPayer(client, key, folder / "payer.sqlite", max_per_call="0.05", max_total="1")


def test_x402s_httpx_client_pays_the_python_provider(node: str, provider: Provider, tmp_path: Path) -> None:
    channels = payer(node, tmp_path)
    x402 = x402Client()
    x402.register(NETWORKS, ChannelScheme(channels))

    async def run() -> None:
        async with x402HttpxClient(x402, timeout=30) as http:
            for _ in range(5):
                answer = await http.post(provider.url + "/stats", content=b"paid by x402's client")
                assert answer.status_code == 200, answer.text
                assert decode_header(answer.headers["PAYMENT-RESPONSE"])["success"]
            # Metered: x402's default cap of $1 admits the 0.05 ceiling.
            metered = await http.post(provider.url + "/stats/full", content=b"word " * 300)
            assert metered.status_code == 200 and metered.json()["words"] == 300

    asyncio.run(run())
    (channel,) = channels.channels()
    # Five calls at the price, one metered call at its ceiling (credit).
    assert channels.spent() == 5 * STATS_PRICE + 50_000
    assert channels.client.channel(channel).payee.root == provider.did


def test_x402s_requests_adapter_pays_the_rust_provider(node: str, rust_provider: str, tmp_path: Path) -> None:
    channels = payer(node, tmp_path)
    x402 = x402ClientSync()
    x402.register(NETWORKS, ChannelScheme(channels))
    session = wrapRequestsWithPayment(requests.Session(), x402)
    for _ in range(3):
        answer = session.post(rust_provider + "/stats", data=b"paid through requests")
        assert answer.status_code == 200, answer.text
    assert channels.spent() == 3 * STATS_PRICE


def test_x402s_spend_controls_bind_before_anything_is_signed(
    node: str, provider: Provider, tmp_path: Path
) -> None:
    channels = payer(node, tmp_path)
    x402 = x402ClientSync().set_spend_controls(
        {
            "allowed_assets": [{"network": NETWORKS, "asset": "USD", "max_amount_per_payment": "500"}],
        }
    )
    x402.register(NETWORKS, ChannelScheme(channels))
    session = wrapRequestsWithPayment(requests.Session(), x402)
    with pytest.raises(Exception, match="(?i)spend|requirements"):
        session.post(provider.url + "/stats", data=b"0.001 is above a cap of 0.0005")
    assert channels.spent() == 0 and channels.channels() == []
