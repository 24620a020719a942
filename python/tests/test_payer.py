"""The Python payer against the Rust example provider (examples/text-stats)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from agentrail import Client, Key
from agentrail.payer import ChannelPayer, PaymentError

from conftest import free_port, node_binary

STATS_PRICE = 1_000  # examples/text-stats: 0.001 USD per call


@pytest.fixture()
def provider(node: str, tmp_path: Path) -> Iterator[str]:
    binary = node_binary().parent / "provider"
    port = free_port()
    process = subprocess.Popen(
        [
            str(binary), "--node", node, "--key", str(tmp_path / "provider.key"),
            "--store", str(tmp_path / "vouchers"), "--listen", f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on" in line, line
    threading.Thread(target=process.stdout.read, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def funded_payer(node: str) -> tuple[Client, Key]:
    client = Client(node)
    key = Key.generate()
    client.register_principal(key)
    client.faucet(key.did, "5")
    return client, key


def test_the_python_payer_pays_the_rust_provider(node: str, provider: str, tmp_path: Path) -> None:
    client, key = funded_payer(node)
    state = tmp_path / "payer.sqlite"
    payer = ChannelPayer(client, key, state, max_per_call=10_000, max_total=100_000)
    with httpx.Client(auth=payer) as http:
        for _ in range(10):
            answer = http.post(provider + "/stats", content=b"the quick brown fox")
            assert answer.status_code == 200, answer.text
        # Concurrent calls each take a sub-channel of their own.
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: http.post(provider + "/stats", content=b"x"), range(8)))
        assert all(a.status_code == 200 for a in answers)
    assert payer.spent() == 18 * STATS_PRICE
    payer.close()

    # A restarted payer goes on from its file: no nonce signed twice.
    again = ChannelPayer(client, key, state, max_per_call=10_000, max_total=100_000)
    assert again.spent() == 18 * STATS_PRICE
    with httpx.Client(auth=again) as http:
        for _ in range(5):
            assert http.post(provider + "/stats", content=b"after a restart").status_code == 200
    assert again.spent() == 23 * STATS_PRICE
    (channel_id,) = again.channels()
    channel = client.channel(channel_id)
    assert channel.status.root.state == "open"
    assert int(channel.deposit.root) >= again.spent()
    again.close()


def test_the_payer_refuses_what_passes_its_limits(node: str, provider: str, tmp_path: Path) -> None:
    client, key = funded_payer(node)
    cheap = ChannelPayer(client, key, tmp_path / "a.sqlite", max_per_call=999, max_total=100_000)
    with httpx.Client(auth=cheap) as http, pytest.raises(PaymentError) as refused:
        http.post(provider + "/stats", content=b"x")
    assert refused.value.reason == "over_limit"

    capped = ChannelPayer(client, key, tmp_path / "b.sqlite", max_per_call=10_000, max_total=3 * STATS_PRICE)
    with httpx.Client(auth=capped) as http:
        for _ in range(3):
            assert http.post(provider + "/stats", content=b"x").status_code == 200
        with pytest.raises(PaymentError) as capped_out:
            http.post(provider + "/stats", content=b"x")
    assert capped_out.value.reason == "spending_cap"
    assert capped.spent() == 3 * STATS_PRICE
