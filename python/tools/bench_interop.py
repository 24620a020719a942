"""Paid calls/s of the Python payer against the Rust text-stats provider.

    cargo build --release -p agentrail -p agentrail-example-text-stats
    .venv/bin/python python/tools/bench_payer.py --bin target/release --calls 2000

Starts a dev node and the provider from `--bin`, pays `--calls` sequential
calls of `POST /stats` through one channel, and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from agentrail import Client, Key
from agentrail.payer import ChannelPayer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", type=Path, default=Path("target/release"))
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        node_port, provider_port = free_port(), free_port()
        node = subprocess.Popen(
            [str(args.bin / "agentrail"), "serve", "--dev", "--data", f"{folder}/node",
             "--listen", f"127.0.0.1:{node_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{node_port}"
        for _ in range(300):
            try:
                httpx.get(base + "/v1/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        provider = subprocess.Popen(
            [str(args.bin / "provider"), "--node", base, "--key", f"{folder}/provider.key",
             "--store", f"{folder}/vouchers", "--listen", f"127.0.0.1:{provider_port}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            assert provider.stdout is not None and "listening" in provider.stdout.readline()
            client = Client(base)
            key = Key.generate()
            client.register_principal(key)
            client.faucet(key.did, "100")
            payer = ChannelPayer(client, key, Path(folder) / "payer.sqlite",
                                 max_per_call="0.01", max_total="1000")
            url = f"http://127.0.0.1:{provider_port}/stats"
            latencies = []
            with httpx.Client(auth=payer) as http:
                http.post(url, content=b"warm up").raise_for_status()
                started = time.perf_counter()
                for _ in range(args.calls):
                    one = time.perf_counter()
                    http.post(url, content=b"the quick brown fox").raise_for_status()
                    latencies.append(time.perf_counter() - one)
                elapsed = time.perf_counter() - started
            latencies.sort()
            print(json.dumps({
                "bench": "python_payer_vs_rust_provider",
                "calls": args.calls,
                "paid_calls_per_s": round(args.calls / elapsed, 1),
                "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
                "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
                "spent_atomic": payer.spent(),
            }))
        finally:
            provider.terminate()
            node.terminate()
            provider.wait(timeout=30)
            node.wait(timeout=30)


if __name__ == "__main__":
    main()
