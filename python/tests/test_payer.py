"""The Python payer against the Rust example provider (examples/text-stats)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from agentrail import Client, Key
from agentrail.payer import ChannelPayer, PaymentError

STATS_PRICE = 1_000  # examples/text-stats: 0.001 USD per call


def funded_payer(node: str) -> tuple[Client, Key]:
    client = Client(node)
    key = Key.generate()
    client.register_principal(key)
    client.faucet(key.did, "5")
    return client, key


def test_the_python_payer_pays_the_rust_provider(node: str, rust_provider: str, tmp_path: Path) -> None:
    client, key = funded_payer(node)
    state = tmp_path / "payer.sqlite"
    payer = ChannelPayer(client, key, state, max_per_call="0.01", max_total="0.1")
    with httpx.Client(auth=payer) as http:
        for _ in range(10):
            answer = http.post(rust_provider + "/stats", content=b"the quick brown fox")
            assert answer.status_code == 200, answer.text
        # Concurrent calls each take a sub-channel of their own.
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: http.post(rust_provider + "/stats", content=b"x"), range(8)))
        assert all(a.status_code == 200 for a in answers)
    assert payer.spent() == 18 * STATS_PRICE
    payer.close()

    # A restarted payer goes on from its file: no nonce signed twice.
    again = ChannelPayer(client, key, state, max_per_call="0.01", max_total="0.1")
    assert again.spent() == 18 * STATS_PRICE
    with httpx.Client(auth=again) as http:
        for _ in range(5):
            assert http.post(rust_provider + "/stats", content=b"after a restart").status_code == 200
    assert again.spent() == 23 * STATS_PRICE
    (channel_id,) = again.channels()
    channel = client.channel(channel_id)
    assert channel.status.root.state == "open"
    assert int(channel.deposit.root) >= again.spent()
    again.close()


def test_the_payer_refuses_what_passes_its_limits(node: str, rust_provider: str, tmp_path: Path) -> None:
    client, key = funded_payer(node)
    cheap = ChannelPayer(client, key, tmp_path / "a.sqlite", max_per_call="0.000999", max_total="0.1")
    with httpx.Client(auth=cheap) as http, pytest.raises(PaymentError) as refused:
        http.post(rust_provider + "/stats", content=b"x")
    assert refused.value.reason == "over_limit"

    capped = ChannelPayer(client, key, tmp_path / "b.sqlite", max_per_call="0.01", max_total="0.003")
    with httpx.Client(auth=capped) as http:
        for _ in range(3):
            assert http.post(rust_provider + "/stats", content=b"x").status_code == 200
        with pytest.raises(PaymentError) as capped_out:
            http.post(rust_provider + "/stats", content=b"x")
    assert capped_out.value.reason == "spending_cap"
    assert capped.spent() == 3 * STATS_PRICE
