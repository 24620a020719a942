"""The text-statistics API as paid MCP tools (x402 over MCP, `channel` scheme),
served over stdio.

- `text_stats(text)`: counts and the ten most frequent words; 0.001 USD a call.
- `text_stats_full(text)`: every word's count; 0.0005 USD per started
  kilobyte, at most 0.05 USD a call.

    python mcp_provider.py --node http://127.0.0.1:8402 --key provider.key
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

from agentrail import AgentrailError, AsyncClient, Key
from agentrail.mcp_paid import paid_tool
from agentrail.paywall import Payee, PerCall, PerUnit, Seller
from provider import FULL_MAX_PER_CALL, FULL_PRICE_PER_KB, STATS_PRICE, stats


def server(node: str, key: Key, store: Path) -> MCPServer:
    client = AsyncClient(node)
    payee = Payee(client, key, store)
    seller = Seller(payee)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[None]:
        try:
            await client.register_principal(key)
        except AgentrailError as error:
            if error.code != "already_registered":
                raise
        await payee.start()
        try:
            yield
        finally:
            await payee.shutdown()

    mcp = MCPServer("agentrail text statistics", lifespan=lifespan)

    @mcp.tool()
    @paid_tool(seller, PerCall(STATS_PRICE))
    async def text_stats(text: str) -> dict[str, Any]:
        """Counts of a text and its ten most frequent words (0.001 USD)."""
        return stats(text, 10)

    def kilobytes(result: dict[str, Any]) -> int:
        return max(1, -(-int(result["bytes"]) // 1024))

    @mcp.tool()
    @paid_tool(seller, PerUnit(FULL_PRICE_PER_KB, "kilobyte", FULL_MAX_PER_CALL), units=kilobytes)
    async def text_stats_full(text: str) -> dict[str, Any]:
        """Every word's count (0.0005 USD per started kilobyte)."""
        return stats(text, None)

    return mcp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", default="http://127.0.0.1:8402")
    parser.add_argument("--key", type=Path, default=Path("provider.key"), help="created if missing")
    parser.add_argument("--store", type=Path, default=Path("provider-mcp-vouchers.sqlite"))
    args = parser.parse_args()
    if not args.key.exists():
        Key.generate().save(args.key)
    server(args.node, Key.load(args.key), args.store).run()


if __name__ == "__main__":
    main()
