"""The README's Python quick start and its MCP section run exactly as written."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from agentrail import Client, Key, Limits

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_readme_quick_start_runs_as_written(node: str, rust_provider: str, tmp_path: Path) -> None:
    section = README.split("## Python quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the README has a Python quick start"
    lines = block.group(1).splitlines()
    assert lines[0].startswith("python3 -m venv venv && venv/bin/pip install ./python")
    # The venv and the install are this test run's own environment; the
    # program after them is run as written.
    program = "\n".join(lines[2:]).rsplit("PY", 1)[0]
    assert len([line for line in program.splitlines() if line.strip()]) <= 24
    result = subprocess.run(
        [sys.executable, "-c", program],
        env={**os.environ, "AGENTRAIL_NODE": node, "PROVIDER": rust_provider},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        r"paid 2\.50 USD: entry \d+ of a log of \d+, verified; a paid call counted 4 words\n", result.stdout
    ), result.stdout


def test_the_readme_mcp_configuration_starts_a_wallet_that_lists_its_tools(node: str, tmp_path: Path) -> None:
    section = README.split("## LLM agents: the MCP server", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, "the README has an MCP host configuration"
    entry = json.loads(block.group(1))["mcpServers"]["agentrail"]
    assert entry["command"] == "venv/bin/agentrail-mcp"
    # The host's venv is this test run's; the rest is as written, in a
    # folder holding the agent's key.
    client = Client(node)
    owner, agent = Key.generate(), Key.generate()
    client.register_principal(owner)
    client.register_agent(owner, agent.did, Limits(max_per_payment=Decimal("1"), daily_budget=Decimal("5")))
    agent.save(tmp_path / "agent.key")
    parameters = StdioServerParameters(
        command=str(Path(sys.executable).parent / "agentrail-mcp"),
        args=entry["args"],
        env={**entry["env"], "AGENTRAIL_NODE": node},
        cwd=tmp_path,
    )

    async def list_tools() -> set[str]:
        async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return {tool.name for tool in (await session.list_tools()).tools}

    names = asyncio.run(list_tools())
    documented = set(re.findall(r"`([a-z_]+)`", section.split("Give it", 1)[0]))
    assert documented - {"agentrail-mcp"} <= names, documented - names
