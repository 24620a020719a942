"""Paid calls/s across languages, side by side in one run: the Python and the
Rust payer, each against the Rust and the Python text-stats provider, beside
`agentrail bench channel` (Rust to Rust, in one process with the node).

    cargo build --release -p agentrail -p agentrail-example-text-stats
    .venv/bin/python python/tools/bench_interop.py --bin target/release --calls 2000

Starts a dev node and both providers, runs each payer's `--calls` calls of
`POST /stats` one at a time (one channel per pair), then the channel bench,
and prints one JSON object (`--calls` small is a smoke run).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from agentrail import Client, Key
from agentrail.payer import ChannelPayer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python" / "tests"))
from conftest import EXAMPLE, free_port  # noqa: E402


def wait_http(url: str) -> None:
    for _ in range(300):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def start(command: list[str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening" not in line:
        raise RuntimeError(f"{command[0]}: {line}")
    return process


def funded_key(client: Client, folder: Path, name: str) -> Key:
    key = Key.generate()
    client.register_principal(key)
    client.faucet(key.did, "100")
    key.save(folder / f"{name}.key")
    return key


def python_payer(client: Client, key: Key, folder: Path, url: str, calls: int) -> dict[str, Any]:
    payer = ChannelPayer(
        client, key, folder / f"{key.did[-8:]}.sqlite", max_per_call="0.01", max_total="1000"
    )
    latencies = []
    with httpx.Client(auth=payer) as http:
        http.post(url, content=b"warm up").raise_for_status()
        started = time.perf_counter()
        for _ in range(calls):
            one = time.perf_counter()
            http.post(url, content=b"the quick brown fox").raise_for_status()
            latencies.append(time.perf_counter() - one)
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "paid_calls_per_s": round(calls / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 3),
    }


def rust_payer(binaries: Path, node: str, key_file: Path, provider: str, calls: int) -> dict[str, Any]:
    run = subprocess.run(
        [
            str(binaries / "buyer"),
            "--node",
            node,
            "--key",
            str(key_file),
            "--provider",
            provider,
            "--calls",
            str(calls),
            "--concurrency",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    rate = re.search(r"\(([0-9.]+)/s\)", run.stdout)
    assert rate, run.stdout
    return {"paid_calls_per_s": float(rate.group(1))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", type=Path, default=ROOT / "target" / "release")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        node = subprocess.Popen(
            [
                str(args.bin / "agentrail"),
                "serve",
                "--dev",
                "--data",
                str(folder / "node"),
                "--listen",
                f"127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes: list[subprocess.Popen[str]] = []
        try:
            wait_http(base + "/v1/health")
            rust_port, python_port = free_port(), free_port()
            processes.append(
                start(
                    [
                        str(args.bin / "provider"),
                        "--node",
                        base,
                        "--key",
                        str(folder / "rust-provider.key"),
                        "--store",
                        str(folder / "rust-vouchers"),
                        "--listen",
                        f"127.0.0.1:{rust_port}",
                    ]
                )
            )
            processes.append(
                start(
                    [
                        sys.executable,
                        str(EXAMPLE / "provider.py"),
                        "--node",
                        base,
                        "--key",
                        str(folder / "py-provider.key"),
                        "--store",
                        str(folder / "py-vouchers.sqlite"),
                        "--listen",
                        f"127.0.0.1:{python_port}",
                    ]
                )
            )
            providers = {
                "rust_provider": f"http://127.0.0.1:{rust_port}",
                "python_provider": f"http://127.0.0.1:{python_port}",
            }
            client = Client(base)
            results: dict[str, Any] = {"bench": "interop", "calls": args.calls, "sequential": True}
            for name, url in providers.items():
                print(f"… python payer → {name}", file=sys.stderr)
                key = funded_key(client, folder, f"py-{name}")
                results[f"python_payer_{name}"] = python_payer(
                    client, key, folder, url + "/stats", args.calls
                )
                print(f"… rust payer → {name}", file=sys.stderr)
                funded_key(client, folder, f"rust-{name}")
                results[f"rust_payer_{name}"] = rust_payer(
                    args.bin, base, folder / f"rust-{name}.key", url, args.calls
                )
            print("… agentrail bench channel (Rust to Rust)", file=sys.stderr)
            bench = subprocess.run(
                [
                    str(args.bin / "agentrail"),
                    "bench",
                    "channel",
                    "--json",
                    "--node",
                    base,
                    "--calls",
                    str(max(args.calls, 200)),
                    "--verifications",
                    "2000",
                ],
                capture_output=True,
                text=True,
                timeout=900,
                check=True,
            )
            results["agentrail_bench_channel"] = json.loads(bench.stdout)
            print(json.dumps(results))
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
            node.terminate()
            node.wait(timeout=30)


if __name__ == "__main__":
    main()
