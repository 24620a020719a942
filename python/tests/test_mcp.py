"""`agentrail-mcp` driven by the official `mcp` SDK's stdio client, against the
real node, the Python text-statistics provider over HTTP, and its paid MCP
tools (x402 over MCP)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from agentrail import Client, Key, Limits

from conftest import EXAMPLE, Provider, free_port

SCRIPT = Path(sys.executable).parent / "agentrail-mcp"
OWNER_ONLY = {"approve", "decline", "revoke", "register_agent", "issue_session", "withdraw", "raise_limits"}
REQUIRED = {
    "whoami",
    "balance",
    "history",
    "passport",
    "transfer",
    "check_payment_requirements",
    "fetch_paid",
    "search_listings",
    "request_quotes",
    "accept_quote",
    "task_status",
    "deliver",
    "dispute",
    "get_receipt",
    "verify_receipt",
    "call_paid_tool",
}


@pytest.fixture()
def provider(node: str, tmp_path: Path) -> Iterator[Provider]:
    running = Provider(node, tmp_path, free_port())
    try:
        yield running
    finally:
        running.stop()


def agent_key(node: str, folder: Path, name: str, limits: Limits, funds: str) -> Path:
    client = Client(node)
    owner, agent = Key.generate(), Key.generate()
    client.register_principal(owner)
    client.faucet(owner.did, "20")
    client.register_agent(owner, agent.did, limits)
    client.transfer(owner, agent.did, funds)
    path = folder / f"{name}.key"
    agent.save(path)
    return path


def wallet(node: str, key: Path, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(command=str(SCRIPT), args=["--node", node, "--key", str(key), *extra])


async def call(session: ClientSession, name: str, /, **arguments: Any) -> tuple[bool, Any]:
    result = await session.call_tool(name, arguments)
    if result.is_error:
        return True, result.content[0].text  # type: ignore[union-attr]
    return False, result.structured_content


def test_the_wallet_lists_its_tools_pays_and_refuses_what_the_mandate_does_not_allow(
    node: str, provider: Provider, tmp_path: Path
) -> None:
    key = agent_key(
        node, tmp_path, "agent", Limits(max_per_payment=Decimal("1"), daily_budget=Decimal("3")), "5"
    )
    mcp_provider = (
        f"{sys.executable} {EXAMPLE / 'mcp_provider.py'} --node {node} --key {tmp_path / 'mcp-provider.key'}"
        f" --store {tmp_path / 'mcp-vouchers.sqlite'}"
    )
    parameters = wallet(
        node,
        key,
        "--allow-local-urls",
        "--max-per-call",
        "0.05",
        "--max-transfer",
        "1.5",
        "--mcp-server",
        f"stats={mcp_provider}",
    )
    shop = Key.generate()
    Client(node).register_principal(shop)

    async def drive() -> None:
        async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert REQUIRED <= names, REQUIRED - names
            assert not names & OWNER_ONLY

            error, me = await call(session, "whoami")
            assert not error and me["mandate"]["limits"]["max_per_payment"] == "1"

            error, paid = await call(session, "transfer", to=shop.did, amount="0.25", memo="a dataset")
            assert not error, paid
            error, proof = await call(session, "verify_receipt", entry=paid["entry"])
            assert not error and proof["verified"] and proof["entry"] == paid["entry"]

            # The mandate binds whatever the LLM asks, and the wallet's own cap before it.
            error, refused = await call(session, "transfer", to=shop.did, amount="1.2")
            assert error and refused.startswith("per_payment_limit_exceeded"), refused
            error, refused = await call(session, "transfer", to=shop.did, amount="2")
            assert error and refused.startswith("wallet_cap"), refused

            url = provider.url + "/stats"
            error, terms = await call(session, "check_payment_requirements", url=url, method="POST")
            assert not error and terms["payment_required"] and terms["payable"], terms
            assert terms["accepts"][0]["amount_usd"] == "0.001"

            error, fetched = await call(
                session, "fetch_paid", url=url, method="POST", body="the quick brown fox", max_amount="0.002"
            )
            assert not error and fetched["status"] == 200, fetched
            assert json.loads(fetched["body"])["words"] == 4
            assert fetched["settlement"]["success"] and Decimal(fetched["signed_usd"]) > 0

            # The wallet's own per-call cap: /stats/full may cost 0.05.
            error, refused = await call(
                session,
                "fetch_paid",
                url=provider.url + "/stats/full",
                method="POST",
                body="x",
                max_amount="0.01",
            )
            assert error and refused.startswith("over_limit"), refused

            # x402 over MCP: a paid tool of another server, paid through a channel.
            error, answer = await call(
                session,
                "call_paid_tool",
                server_name="stats",
                tool="text_stats",
                arguments={"text": "to be or not to be"},
                max_amount="0.002",
            )
            assert not error, answer
            assert not answer["is_error"] and answer["structured"]["words"] == 6, answer
            assert answer["settlement"]["success"] and Decimal(answer["signed_usd"]) > 0

            error, history = await call(session, "history", limit=5)
            assert not error and history["items"][0]["entry"] >= paid["entry"]

    asyncio.run(drive())


def test_a_payment_over_the_mandate_is_refused_with_the_mandate_code(
    node: str, provider: Provider, tmp_path: Path
) -> None:
    # A mandate of at most 0.0005 USD a payment cannot open a channel for a
    # 0.001 call: the node refuses it, and the wallet says why.
    key = agent_key(
        node, tmp_path, "tight", Limits(max_per_payment=Decimal("0.0005"), daily_budget=Decimal("1")), "1"
    )

    async def drive() -> None:
        async with stdio_client(wallet(node, key, "--allow-local-urls")) as (read, write), ClientSession(
            read, write
        ) as session:
            await session.initialize()
            error, refused = await call(
                session,
                "fetch_paid",
                url=provider.url + "/stats",
                method="POST",
                body="hello",
                max_amount="0.01",
            )
            assert error and refused.startswith("per_payment_limit_exceeded"), refused
            error, balance = await call(session, "balance")
            assert not error and balance["available"] == "1"

    asyncio.run(drive())


def test_the_wallet_refuses_local_urls_and_a_principals_key_by_default(
    node: str, provider: Provider, tmp_path: Path
) -> None:
    key = agent_key(
        node, tmp_path, "agent", Limits(max_per_payment=Decimal("1"), daily_budget=Decimal("3")), "2"
    )

    async def drive() -> None:
        async with stdio_client(wallet(node, key)) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            for url in (
                provider.url + "/stats",
                "http://169.254.169.254/latest/meta-data/",
                "file:///etc/passwd",
            ):
                error, refused = await call(session, "fetch_paid", url=url, method="POST")
                assert error and refused.startswith("url_not_allowed"), (url, refused)
            error, refused = await call(session, "check_payment_requirements", url=provider.url + "/stats")
            assert error and refused.startswith("url_not_allowed"), refused

    asyncio.run(drive())
    principal = Key.generate()
    Client(node).register_principal(principal)
    principal.save(tmp_path / "owner.key")
    started = subprocess.run(
        [str(SCRIPT), "--node", node, "--key", str(tmp_path / "owner.key")],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert started.returncode == 2 and "--allow-principal" in started.stderr, started.stderr
