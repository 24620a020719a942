"""A buyer agent: calls the text-statistics API many times, paying each call
through one payment channel, and reports what it spent.

    python buyer.py --node http://127.0.0.1:8402 --key buyer.key --calls 100
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import httpx

from agentrail import Client, Key
from agentrail.payer import ChannelPayer
from agentrail.units import to_usd

TEXT = (
    "Agents buy data, rent compute and hire each other. Each call is paid with a "
    "voucher: no fee, no waiting, and the ledger sees the channel only when it "
    "opens, collects and closes."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", default="http://127.0.0.1:8402")
    parser.add_argument(
        "--key", type=Path, default=Path("buyer.key"), help="a funded principal, agent or session"
    )
    parser.add_argument("--payer", help="the paying account when --key is a session (its agent)")
    parser.add_argument("--state", type=Path, default=Path("buyer-channels.sqlite"))
    parser.add_argument("--provider", default="http://127.0.0.1:8403")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--max-total", default="1", help="USD this buyer may sign away")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    client = Client(args.node)
    key = Key.load(args.key)
    payer = ChannelPayer(
        client, key, args.state, payer=args.payer, max_per_call="0.05", max_total=args.max_total
    )
    before = payer.spent()
    with httpx.Client(auth=payer, timeout=30) as http:
        started = time.perf_counter()
        for _ in range(args.calls):
            http.post(args.provider + "/stats", content=TEXT).raise_for_status()
        elapsed = time.perf_counter() - started
        full = http.post(args.provider + "/stats/full", content=TEXT * 40)
        full.raise_for_status()
    spent = payer.spent() - before
    if args.json:
        print(
            json.dumps(
                {
                    "calls": args.calls,
                    "seconds": elapsed,
                    "calls_per_s": args.calls / elapsed,
                    "metered_words": full.json()["words"],
                    "signed_atomic": spent,
                }
            )
        )
    else:
        print(
            f"{args.calls} paid calls in {elapsed:.2f} s ({args.calls / elapsed:.0f}/s); a metered call on "
            f"{full.json()['words']} words; signed {to_usd(spent)} USD of credit"
        )


if __name__ == "__main__":
    main()
