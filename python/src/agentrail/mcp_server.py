"""`agentrail-mcp`: an LLM agent's wallet as MCP tools, over stdio.

    agentrail-mcp --key agent.key [--node URL] [--max-per-call 0.10] [--max-total 10]

The key is an agent's or a session's (its mandate binds whatever the LLM
asks: the ledger refuses what the grant does not allow, and this server
refuses what its own spending cap does not). What only the owner may do —
approve or decline payments, revoke, register agents, raise limits,
withdraw — is not a tool. Every result that comes from the journal names
its entry (`entry`); proofs are checked against the log key pinned at the
first start (or given with `--log-key`).

Paid MCP tools of other servers are called through `call_paid_tool`, for
the servers the owner named with `--mcp-server NAME=COMMAND` (an LLM never
chooses a command line to run).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import ipaddress
import os
import shlex
import urllib.parse
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent
from pydantic import ValidationError

from . import models
from .client import AgentrailError, AsyncClient, Client
from .keys import Key
from .mcp_paid import call_paid_tool as pay_tool_call
from .payer import PAYMENT_REQUIRED, PAYMENT_RESPONSE, ChannelPayer, PaymentError, decode_header
from .proof import LogKey, ProofError
from .proof import verify_receipt as check_receipt
from .units import AmountError, to_atomic, to_usd

BODY_BYTES_MAX = 1 << 20
ANSWER_BYTES_MAX = 64 * 1024
HISTORY_MAX = 100


@dataclass
class Wallet:
    key: Key
    account: str
    role: str
    client: AsyncClient
    payer: ChannelPayer
    log_key: LogKey
    servers: dict[str, list[str]]
    max_per_call: int
    # Most one transfer, or one request for quotes, may commit (atomic).
    max_transfer: int
    # Whether fetch_paid and check_payment_requirements may reach loopback
    # and private addresses (a dev provider on 127.0.0.1).
    allow_local_urls: bool = False


class Refused(Exception):
    """A tool's refusal: a stable `code` (the node's, the payer's or the
    wallet's) and a message for a person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


async def _check_url(url: str, allow_local: bool) -> None:
    """Only http(s), and (unless allowed) never loopback, private,
    link-local or reserved addresses: an LLM must not reach the machine's
    own services or a cloud's metadata endpoint through the wallet."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise Refused("url_not_allowed", "only http:// and https:// URLs are fetched")
    if allow_local:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parsed.hostname, parsed.port or 443)
    except OSError as error:
        raise Refused("unreachable", f"{parsed.hostname} does not resolve: {error}") from error
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            raise Refused(
                "url_not_allowed",
                f"{parsed.hostname} is a local or private address ({address}); see --allow-local-urls",
            )


def _usd(atomic: Any) -> str:
    return str(to_usd(int(getattr(atomic, "root", atomic))))


def _atomic(usd: str, what: str) -> int:
    try:
        return to_atomic(Decimal(str(usd)))
    except (AmountError, ArithmeticError, ValueError) as error:
        raise Refused("invalid_amount", f"{what} is a USD amount like '0.25' ({error})") from error


def _refused(error: AgentrailError | PaymentError) -> Refused:
    if isinstance(error, AgentrailError):
        return Refused(error.code, error.message)
    return Refused(error.reason, str(error).removeprefix(f"{error.reason}: "))


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _command_result(response: models.CommandResponse, **extra: Any) -> dict[str, Any]:
    return {
        "entry": response.index,
        "time": response.time.root,
        "leaf_hash": response.receipt.leaf_hash,
        "events": [_dump(event) for event in response.events],
        **extra,
    }


def build(wallet: Wallet) -> MCPServer:
    server = MCPServer(
        "agentrail",
        instructions=(
            "An agentrail wallet: pay, get paid, hire and verify, within the mandate its owner granted. "
            "Amounts are USD strings. Refusals start with a stable code (for example "
            "per_payment_limit_exceeded) followed by the reason."
        ),
    )
    client = wallet.client

    def tool(fn: Any) -> Any:
        """Registers `fn`; a refusal is a tool error whose text starts with its code."""

        @functools.wraps(fn)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except ValidationError as error:
                refusal = Refused(
                    "invalid_request", f"{error.error_count()} invalid field(s): {error.errors()[0]['msg']}"
                )
            except Refused as caught:
                refusal = caught
            return CallToolResult(
                content=[TextContent(type="text", text=str(refusal))],
                structured_content={"error": {"code": refusal.code, "message": refusal.message}},
                is_error=True,
            )

        return server.tool()(guarded)

    async def node(coroutine: Any) -> Any:
        """Awaits a call to the node; its refusal becomes the tool's."""
        try:
            return await coroutine
        except AgentrailError as error:
            raise _refused(error) from error

    @tool
    async def whoami() -> dict[str, Any]:
        """This wallet: its identity, the account it pays from, its mandate
        (limits, spent today and in total, what remains) and its own cap."""
        answer: dict[str, Any] = {
            "did": wallet.key.did,
            "account": wallet.account,
            "role": wallet.role,
            "network": await client.network(),
            "wallet_cap_per_call": _usd(wallet.max_per_call),
            "wallet_cap_total": _usd(wallet.payer.max_total),
            "wallet_signed": _usd(wallet.payer.spent()),
        }
        try:
            status = await client.grant_status(wallet.key.did)
        except AgentrailError:
            return answer
        limits = _dump(status.grant.grant.limits)
        answer["mandate"] = {
            "active": status.active,
            "principal": status.principal.root,
            "limits": {
                k: (_usd(v) if k.endswith(("payment", "budget", "threshold")) else v)
                for k, v in limits.items()
            },
            "spent_today": _usd(status.spent_today),
            "remaining_today": _usd(status.remaining_today),
            "spent_total": _usd(status.spent_total),
            "remaining_total": None if status.remaining_total is None else _usd(status.remaining_total),
        }
        return answer

    @tool
    async def balance(did: str | None = None) -> dict[str, Any]:
        """The balance of an account (default: the one this wallet pays from), in USD."""
        view = await node(client.balance(did or wallet.account))
        return {"did": view.did.root, "available": _usd(view.available), "held": _usd(view.held)}

    @tool
    async def history(limit: int = 20, before: int | None = None) -> dict[str, Any]:
        """The account's journal entries, newest first (each names its entry
        index; pass `next_before` as `before` for the next page)."""
        page = await node(
            client.history(wallet.account, limit=max(1, min(limit, HISTORY_MAX)), before=before)
        )
        return {
            "items": [
                {
                    "entry": item.index,
                    "time": item.time.root,
                    "signer": item.signer.root,
                    "events": [_dump(e) for e in item.events],
                }
                for item in page.items
            ],
            "next_before": page.next_before,
        }

    @tool
    async def passport(did: str | None = None) -> dict[str, Any]:
        """Everything the ledger knows of an identity (default: this wallet)."""
        return _dump(await node(client.passport(did or wallet.key.did)))

    @tool
    async def transfer(
        to: str, amount: str, memo: str | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Pays `amount` USD to `to` (a did:key) from this wallet's account,
        within the mandate and the wallet's own cap on one transfer. The
        same idempotency key never pays twice."""
        if _atomic(amount, "amount") > wallet.max_transfer:
            raise Refused(
                "wallet_cap", f"a transfer is at most {_usd(wallet.max_transfer)} USD in this wallet"
            )
        response = await node(
            client.transfer(
                wallet.key,
                to,
                _usd(_atomic(amount, "amount")),
                from_=wallet.account,
                memo=memo,
                idempotency_key=idempotency_key,
            )
        )
        return _command_result(response)

    def payer_http() -> httpx.Client:
        return httpx.Client(auth=wallet.payer, timeout=30.0, follow_redirects=False)

    @tool
    async def check_payment_requirements(url: str, method: str = "GET") -> dict[str, Any]:
        """What a URL asks to be paid (x402), without paying: its price per
        call or per unit, the payee, and whether this wallet can pay it."""
        await _check_url(url, wallet.allow_local_urls)
        async with httpx.AsyncClient(timeout=30.0) as http:
            try:
                # Headers only: the body is never read.
                async with http.stream(method.upper(), url) as response:
                    pass
            except httpx.HTTPError as error:
                raise Refused("unreachable", f"{error}") from error
        if response.status_code != 402:
            return {"url": url, "status": response.status_code, "payment_required": False}
        header = response.headers.get(PAYMENT_REQUIRED)
        if header is None:
            return {
                "url": url,
                "status": 402,
                "payment_required": True,
                "accepts": [],
                "payable": False,
                "why": "a 402 without PAYMENT-REQUIRED",
            }
        try:
            required = decode_header(header)
            terms, price = wallet.payer.choose(required)
            payable, why = True, None
        except PaymentError as error:
            terms, price, payable, why = None, None, False, f"{error.reason}: {error}"
        accepts = []
        for option in required.get("accepts", []) if isinstance(required, dict) else []:
            if isinstance(option, dict):
                shown = dict(option)
                if option.get("asset") == "USD" and str(option.get("amount", "")).isdigit():
                    shown["amount_usd"] = _usd(option["amount"])
                accepts.append(shown)
        return {
            "url": url,
            "status": 402,
            "payment_required": True,
            "accepts": accepts,
            "payable": payable,
            "why": why,
            "max_per_call_usd": None if price is None else _usd(price),
            "pay_to": None if terms is None else terms.get("payTo"),
        }

    @tool
    async def fetch_paid(
        url: str, method: str = "GET", body: str | None = None, max_amount: str = "0.01"
    ) -> dict[str, Any]:
        """Fetches a URL and pays its 402 (x402, channel scheme) — at most
        `max_amount` USD for this call, within this wallet's cap and the
        mandate. Answers the status, the body (cut at 64 KiB) and what was paid."""
        limit = _atomic(max_amount, "max_amount")
        content = (body or "").encode()
        if len(content) > BODY_BYTES_MAX:
            raise Refused("body_too_large", f"a body is at most {BODY_BYTES_MAX} bytes")
        await _check_url(url, wallet.allow_local_urls)
        before = wallet.payer.spent()

        def fetch() -> tuple[httpx.Response, bytes, bool]:
            with payer_http() as http:
                with http.stream(
                    method.upper(), url, content=content or None, extensions={"agentrail_max_amount": limit}
                ) as response:
                    kept = bytearray()
                    for chunk in response.iter_bytes():
                        kept += chunk
                        if len(kept) > ANSWER_BYTES_MAX:
                            return response, bytes(kept[:ANSWER_BYTES_MAX]), True
                    return response, bytes(kept), False

        try:
            response, answer, truncated = await asyncio.to_thread(fetch)
        except PaymentError as error:
            raise _refused(error) from error
        except httpx.HTTPError as error:
            raise Refused("unreachable", f"{error}") from error
        settlement = None
        if PAYMENT_RESPONSE in response.headers:
            try:
                settlement = decode_header(response.headers[PAYMENT_RESPONSE])
            except PaymentError:
                settlement = None
        return {
            "url": url,
            "status": response.status_code,
            "body": answer.decode("utf-8", "replace"),
            "truncated": truncated,
            "signed_usd": _usd(wallet.payer.spent() - before),
            "channel_id": (settlement or {}).get("channel", {}).get("channelId") if settlement else None,
            "settlement": settlement,
        }

    @tool
    async def call_paid_tool(
        server_name: str, tool: str, arguments: dict[str, Any] | None = None, max_amount: str = "0.01"
    ) -> dict[str, Any]:
        """Calls `tool` of an MCP server the owner configured (by name) and
        pays it if it asks (x402 over MCP), at most `max_amount` USD."""
        command_line = wallet.servers.get(server_name)
        if command_line is None:
            raise Refused("unknown_server", f"configured servers are {sorted(wallet.servers)}")
        limit = _atomic(max_amount, "max_amount")
        parameters = StdioServerParameters(command=command_line[0], args=command_line[1:])
        try:
            async with stdio_client(parameters) as (read_stream, write_stream):
                async with ClientSession(read_stream, write_stream) as session:
                    await session.initialize()
                    result, paid = await pay_tool_call(
                        session, wallet.payer, tool, arguments or {}, max_amount=limit
                    )
        except PaymentError as error:
            raise _refused(error) from error
        return {
            "server": server_name,
            "tool": tool,
            "is_error": result.is_error,
            "structured": result.structured_content,
            "text": [c.text for c in result.content if hasattr(c, "text")],
            "signed_usd": _usd(paid),
            "settlement": (result.meta or {}).get("x402/payment-response"),
        }

    @tool
    async def search_listings(
        capability: str | None = None,
        kind: str | None = None,
        max_price: str | None = None,
        min_reputation: int | None = None,
        limit: int = 10,
    ) -> dict[str, Any]:
        """Discovers live listings (services, datasets), ranked by the market."""
        page = await node(
            client.listings(
                capability=capability,
                kind=kind,
                max_price=None if max_price is None else str(_atomic(max_price, "max_price")),
                min_reputation=min_reputation,
                limit=max(1, min(limit, 50)),
            )
        )
        return _dump(page)

    @tool
    async def request_quotes(
        capability: str,
        budget_max: str,
        deadline_s: int,
        description: str | None = None,
        invited: list[str] | None = None,
    ) -> dict[str, Any]:
        """Asks providers of a capability for quotes, up to `budget_max` USD
        (at most the wallet's cap on one transfer), for delivery within
        `deadline_s` seconds of acceptance."""
        if _atomic(budget_max, "budget_max") > wallet.max_transfer:
            raise Refused("wallet_cap", f"a budget is at most {_usd(wallet.max_transfer)} USD in this wallet")
        response = await node(
            client.request_quotes(
                wallet.key,
                capability=capability,
                budget_max=_usd(_atomic(budget_max, "budget_max")),
                deadline_s=deadline_s,
                description=description,
                invited=invited,
                from_=wallet.account,
            )
        )
        rfq = next((e for e in _command_result(response)["events"] if "rfq_id" in e), {})
        return _command_result(response, rfq_id=rfq.get("rfq_id"))

    @tool
    async def accept_quote(quote_id: str) -> dict[str, Any]:
        """Accepts a quote: its price is locked in escrow and the task starts."""
        response = await node(client.accept_quote(wallet.key, quote_id=quote_id))
        task = next((e for e in _command_result(response)["events"] if "task_id" in e), {})
        return _command_result(response, task_id=task.get("task_id"))

    @tool
    async def task_status(task_id: str) -> dict[str, Any]:
        """Where a task stands: its parties, price, deadlines and state."""
        return _dump(await node(client.task(task_id)))

    @tool
    async def deliver(task_id: str, result_hash: str, uri: str | None = None) -> dict[str, Any]:
        """As the task's provider: delivers a result (its SHA-256 hex, and where to fetch it)."""
        return _command_result(
            await node(client.deliver_task(wallet.key, task_id=task_id, result_hash=result_hash, uri=uri))
        )

    @tool
    async def dispute(task_id: str, reason: str) -> dict[str, Any]:
        """As the task's buyer: disputes a delivery within the review window."""
        return _command_result(await node(client.dispute_task(wallet.key, task_id=task_id, reason=reason)))

    @tool
    async def get_receipt(entry: int) -> dict[str, Any]:
        """The proof that a journal entry is in the transparency log."""
        return _dump(await node(client.receipt(entry)))

    @tool
    async def verify_receipt(entry: int) -> dict[str, Any]:
        """Verifies an entry's receipt against the pinned log key: the
        checkpoint's signature and the entry's inclusion proof."""
        receipt = await node(client.receipt(entry))
        try:
            proof = check_receipt(receipt, wallet.log_key)
        except ProofError as error:
            return {"entry": entry, "verified": False, "why": str(error)}
        return {
            "entry": proof.index,
            "verified": True,
            "tree_size": proof.tree_size,
            "checkpoint": receipt.checkpoint,
        }

    return server


def _pinned_log_key(args: argparse.Namespace, node: Client, state: Path) -> LogKey:
    if args.log_key:
        return LogKey.parse(args.log_key)
    pin = state.with_suffix(".logkey")
    if pin.exists():
        return LogKey.parse(pin.read_text().strip())
    text = node.log_key()
    pin.write_text(text + "\n")
    return LogKey.parse(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="agentrail-mcp", description="An agentrail wallet as MCP tools, over stdio."
    )
    parser.add_argument("--node", default=os.environ.get("AGENTRAIL_NODE", "http://127.0.0.1:8402"))
    parser.add_argument(
        "--key", default=os.environ.get("AGENTRAIL_KEY"), help="the agent's or session's key file"
    )
    parser.add_argument(
        "--account",
        default=os.environ.get("AGENTRAIL_ACCOUNT"),
        help="the account paid from (default: the key's own, or its agent's for a session)",
    )
    parser.add_argument(
        "--state",
        default=os.environ.get("AGENTRAIL_STATE"),
        help="the payer's channel state (default: next to the key)",
    )
    parser.add_argument(
        "--max-per-call",
        default=os.environ.get("AGENTRAIL_MAX_PER_CALL", "0.10"),
        help="USD one paid call may cost at most",
    )
    parser.add_argument(
        "--max-total",
        default=os.environ.get("AGENTRAIL_MAX_TOTAL", "10"),
        help="USD this wallet may sign away through channels, across restarts",
    )
    parser.add_argument(
        "--max-transfer",
        default=os.environ.get("AGENTRAIL_MAX_TRANSFER", "1"),
        help="USD one transfer (or one request's budget) may be at most",
    )
    parser.add_argument(
        "--log-key", default=os.environ.get("AGENTRAIL_LOG_KEY"), help="the log's note key to pin"
    )
    parser.add_argument(
        "--allow-local-urls",
        action="store_true",
        help="let fetch_paid reach loopback and private addresses (a dev provider)",
    )
    parser.add_argument(
        "--allow-principal",
        action="store_true",
        help="run with a principal's key, which no mandate bounds (only the wallet's caps)",
    )
    parser.add_argument(
        "--mcp-server",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="a paid MCP server (stdio) that call_paid_tool may call",
    )
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("--key (or AGENTRAIL_KEY) names the agent's or session's key file")
    key = Key.load(args.key)
    sync = Client(args.node)
    account, role = key.did, "principal"
    try:
        status = sync.grant_status(key.did)
        role = status.grant.grant.role.value
        if role == "session":
            account = status.grant.grant.issuer.root
    except AgentrailError:
        pass
    if role == "principal" and not args.allow_principal:
        parser.error(
            "this key has no grant: a principal's key is bound by no mandate. Give the wallet an agent's "
            "or a session's key, or pass --allow-principal"
        )
    account = args.account or account
    state = Path(args.state) if args.state else Path(args.key).with_suffix(".channels.sqlite")
    servers: dict[str, list[str]] = {}
    for item in args.mcp_server:
        name, _, command_line = item.partition("=")
        if not name or not command_line:
            parser.error("--mcp-server is NAME=COMMAND")
        servers[name] = shlex.split(command_line)
    try:
        payer = ChannelPayer(
            sync, key, state, payer=account, max_per_call=args.max_per_call, max_total=args.max_total
        )
    except (AmountError, TypeError) as error:
        parser.error(f"--max-per-call and --max-total are USD amounts: {error}")
    max_per_call = payer.max_per_call
    try:
        max_transfer = to_atomic(Decimal(args.max_transfer))
    except (AmountError, ArithmeticError) as error:
        parser.error(f"--max-transfer is a USD amount: {error}")
    wallet = Wallet(
        key,
        account,
        role,
        AsyncClient(args.node),
        payer,
        _pinned_log_key(args, sync, state),
        servers,
        max_per_call,
        max_transfer,
        args.allow_local_urls,
    )
    build(wallet).run()


if __name__ == "__main__":
    main()
