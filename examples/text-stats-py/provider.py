"""A paid text-statistics API in FastAPI: the Python twin of examples/text-stats.

- `POST /stats`: counts and the ten most frequent words; 0.001 USD a call.
- `POST /stats/full`: every word's count; 0.0005 USD per started kilobyte
  of text (metered), at most 0.05 USD a call.

Payments arrive as x402 `channel` vouchers; the provider checks them
locally, keeps them in `--store`, and collects them from the ledger by
itself. With `--exact-network` and its companions, `/stats` takes x402's
`exact` payments too, settled through `--facilitator`.

    python provider.py --node http://127.0.0.1:8402 --key provider.key
"""

from __future__ import annotations

import argparse
import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

from agentrail import AgentrailError, AsyncClient, Key
from agentrail.paywall import Payee, Paywall, PerCall, PerUnit, report_units

STATS_PRICE = "0.001"
FULL_PRICE_PER_KB = "0.0005"
FULL_MAX_PER_CALL = "0.05"


def stats(text: str, top: int | None) -> dict[str, Any]:
    """Counts of `text` and its most frequent words (ties alphabetical), as
    the Rust example counts them: words split at what is neither
    alphanumeric nor an apostrophe, lowercased."""
    words = [w for w in re.split(r"[^\w']|_", text) if w]
    counts = Counter(word.lower() for word in words)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {
        "bytes": len(text.encode()),
        "lines": len(text.splitlines()),
        "words": len(words),
        "distinct_words": len(counts),
        "top": [list(item) for item in (ranked if top is None else ranked[:top])],
    }


def app() -> FastAPI:
    api = FastAPI(title="text statistics")

    @api.post("/stats")
    async def summary(request: Request) -> dict[str, Any]:
        return stats((await request.body()).decode("utf-8", "replace"), 10)

    @api.post("/stats/full")
    async def full(request: Request) -> dict[str, Any]:
        body = await request.body()
        report_units(request, max(1, -(-len(body) // 1024)))
        return stats(body.decode("utf-8", "replace"), None)

    return api


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", default="http://127.0.0.1:8402")
    parser.add_argument("--key", type=Path, default=Path("provider.key"), help="created if missing")
    parser.add_argument("--store", type=Path, default=Path("provider-vouchers.sqlite"))
    parser.add_argument("--listen", default="127.0.0.1:8403")
    parser.add_argument("--max-unsynced", default="1", help="USD a crash may lose per channel")
    parser.add_argument(
        "--collect-threshold", default="5", help="collect a channel once this much (USD) is earned"
    )
    parser.add_argument("--check-every", type=float, default=30.0, help="seconds between collector checks")
    exact = parser.add_argument_group("x402's exact scheme on /stats (needs agentrail[x402])")
    exact.add_argument("--exact-network", help="eip155:<chain id>")
    exact.add_argument("--exact-asset", help="the EIP-3009 token")
    exact.add_argument("--exact-name", help="the token's EIP-712 name")
    exact.add_argument("--exact-version", help="the token's EIP-712 version")
    exact.add_argument("--exact-pay-to", help="the address paid")
    exact.add_argument("--facilitator", help="the x402 facilitator that verifies and settles")
    exact.add_argument("--settle-before", action="store_true", help="settle before the handler runs")
    args = parser.parse_args()
    if not args.key.exists():
        Key.generate().save(args.key)
    key = Key.load(args.key)
    client = AsyncClient(args.node)
    try:
        await client.register_principal(key)
    except AgentrailError as error:
        if error.code != "already_registered":
            raise
    payee = Payee(
        client,
        key,
        args.store,
        max_unsynced=args.max_unsynced,
        collect_threshold=args.collect_threshold,
        check_every=args.check_every,
    )
    seller = None
    if args.exact_network:
        from agentrail.exact import ExactSeller

        seller = ExactSeller(
            network=args.exact_network,
            asset=args.exact_asset,
            pay_to=args.exact_pay_to,
            name=args.exact_name,
            version=args.exact_version,
            facilitator=args.facilitator,
            store=args.store.with_suffix(".exact.sqlite"),
            settle_before=args.settle_before,
        )
    priced = Paywall(
        app(),
        payee,
        {
            "/stats": PerCall(STATS_PRICE),
            "/stats/full": PerUnit(FULL_PRICE_PER_KB, "kilobyte", FULL_MAX_PER_CALL),
        },
        exact=seller,
    )
    host, port = args.listen.rsplit(":", 1)
    config = uvicorn.Config(priced, host=host, port=int(port), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    await payee.start()
    print(f"provider {key.did} listening on http://{args.listen}", flush=True)
    await server.serve()


if __name__ == "__main__":
    asyncio.run(main())
