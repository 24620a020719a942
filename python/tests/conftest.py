"""The real node binary (built by `cargo test`) on a free port, and the example
providers: the Rust one (examples/text-stats) and the Python one
(examples/text-stats-py)."""

from __future__ import annotations

import os
import socket
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "text-stats-py"


def node_binary() -> Path:
    binary = Path(os.environ.get("AGENTRAIL_BIN", ROOT / "target" / "debug" / "agentrail"))
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `cargo build` (scripts/test does)")
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("node")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(data / "node.log", "wb")
    process = subprocess.Popen(
        [str(node_binary()), "serve", "--dev", "--data", str(data / "data"), "--listen", f"127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((data / "node.log").read_text())
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


class Provider:
    def __init__(self, node: str, folder: Path, port: int, *extra: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(EXAMPLE / "provider.py"),
                "--node",
                node,
                "--key",
                str(folder / "provider.key"),
                "--store",
                str(folder / "vouchers.sqlite"),
                "--listen",
                f"127.0.0.1:{port}",
                *extra,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "listening on" in line, line
        self.did = line.split()[1]
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.post(self.url + "/stats", content=b"x", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)
        self.process.wait(timeout=30)


@pytest.fixture()
def rust_provider(node: str, tmp_path: Path) -> Iterator[str]:
    binary = node_binary().parent / "provider"
    port = free_port()
    process = subprocess.Popen(
        [
            str(binary),
            "--node",
            node,
            "--key",
            str(tmp_path / "provider.key"),
            "--store",
            str(tmp_path / "vouchers"),
            "--listen",
            f"127.0.0.1:{port}",
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
