"""A Python agent of a ledger served by two nodes sharing one journal in a
private PostgreSQL (scripts/postgres): it names both nodes, its commands
find the one that leads, and they keep landing when that node is killed
and the standby takes over."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from agentrail import AsyncClient, Client, Key, to_usd
from agentrail.models import DuplicateEvent

from conftest import ROOT, free_port, node_binary

SCRIPT = ROOT / "scripts" / "postgres"


def role(base: str) -> str | None:
    try:
        health = httpx.get(base + "/v1/health", timeout=1).json()
    except httpx.HTTPError:
        return None
    replication = health.get("replication")
    return replication["role"] if replication else None


def until(predicate: Callable[[], bool], what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {within} s")
        time.sleep(0.05)


class Pair:
    def __init__(self, folder: Path) -> None:
        port = free_port()
        while True:
            try:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port + 1))
                break
            except OSError:
                port = free_port()
        # Outside pytest's private folders: the clusters run as the
        # `postgres` user when the tests run as root.
        self.pg = Path(tempfile.mkdtemp(prefix="agentrail-pg-"))
        self.pg.chmod(0o755)
        started = subprocess.run([str(SCRIPT), "start", str(self.pg), str(port)], check=True, capture_output=True, text=True)
        self.url = started.stdout.strip()
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []
        self.bases: list[str] = []

    def start(self, name: str, *extra: str) -> str:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = open(self.folder / f"{name}.log", "ab")
        process = subprocess.Popen(
            [str(node_binary()), "serve", "--dev", "--data", str(self.folder / name), "--listen", f"127.0.0.1:{port}",
             "--store", self.url, "--lease-ms", "1000", *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        until(lambda: role(base) is not None, f"{name} answers")
        self.bases.append(base)
        return base

    def start_both(self) -> tuple[str, str]:
        """Node `a`, which leads, then node `b` of the same ledger (its
        genesis and keys), a standby; their URLs."""
        leader = self.start("a")
        until(lambda: role(leader) == "leader", "the first node leads")
        (self.folder / "b").mkdir()
        for file in ("genesis.json", "log.key", "operator.key"):
            shutil.copy(self.folder / "a" / file, self.folder / "b" / file)
        standby = self.start("b", "--standby")
        assert role(standby) == "standby"
        return leader, standby

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait(timeout=30)
        subprocess.run([str(SCRIPT), "stop", str(self.pg)], check=False)
        shutil.rmtree(self.pg, ignore_errors=True)


@pytest.fixture()
def pair(tmp_path: Path) -> Iterator[Pair]:
    pair = Pair(tmp_path)
    try:
        yield pair
    finally:
        pair.stop()


def test_commands_find_the_leader_and_survive_its_death(pair: Pair) -> None:
    leader, standby = pair.start_both()

    # The standby first: its not_leader answer sends the command on.
    with Client(standby, nodes=[leader]) as client:
        principal = Key.generate()
        client.register_principal(principal)
        assert client.base == leader
        other = Key.generate()
        client.register_principal(other)
        faucet = client.faucet(principal.did, "10")
        assert faucet.index >= 1
        until(lambda: httpx.get(standby + "/v1/health").json()["journal_len"] >= faucet.index + 1, "the standby follows")

        # The leader dies; the same client's next command lands on the standby
        # once it leads, and the first one is still there exactly once.
        pair.processes[0].send_signal(signal.SIGKILL)
        pair.processes[0].wait(timeout=30)
        key = "after-the-leader-died"
        paid = client.transfer(principal, other.did, "1.5", idempotency_key=key)
        assert client.base == standby
        assert role(standby) == "leader"
        again = client.transfer(principal, other.did, "1.5", idempotency_key=key)
        duplicate = again.events[0].root
        assert isinstance(duplicate, DuplicateEvent)
        assert duplicate.original == paid.events
        assert to_usd(client.balance(principal.did).available.root) == Decimal("8.5")
        assert to_usd(client.balance(other.did).available.root) == Decimal("1.5")


def test_the_async_client_finds_the_leader(pair: Pair) -> None:
    leader, standby = pair.start_both()

    async def register() -> tuple[int, str]:
        async with AsyncClient(standby, nodes=[leader]) as client:
            response = await client.register_principal(Key.generate())
            return response.index, client.base

    assert asyncio.run(register()) == (0, leader)
