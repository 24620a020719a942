"""x402 over MCP (x402's `transports-v2/mcp.md`), `channel` scheme.

A provider prices its own MCP tools with `paid_tool`::

    server = MCPServer("text statistics")
    seller = Seller(Payee(AsyncClient(node), key, "vouchers.sqlite"))

    @server.tool()
    @paid_tool(seller, PerCall("0.001"))
    async def text_stats(text: str) -> dict[str, Any]:
        ...

A call without `_meta["x402/payment"]` answers a tool result with
`isError: true`, x402's `PaymentRequired` in `structuredContent` and the
`x402/error` wrapper in `content[0].text`. A paid call runs the tool and
answers its result with `_meta["x402/payment-response"]`. An agent pays
such tools with `call_paid_tool` (the `agentrail-mcp` server does, for the
servers its owner configured).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.client.session import ClientSession
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, TextContent

from .paywall import PayeeError, Price, Seller
from .payer import ChannelPayer, PaymentError

PAYMENT = "x402/payment"
PAYMENT_RESPONSE = "x402/payment-response"
ERROR = "x402/error"


def tool_resource(name: str) -> str:
    return f"mcp://tool/{name}"


def _required_result(required: dict[str, Any], refusal: dict[str, Any] | None = None) -> CallToolResult:
    structured = dict(required)
    if refusal is not None:
        structured[PAYMENT_RESPONSE] = refusal
    wrapper = {ERROR: {"code": 402, "message": required.get("error", "payment required"), "data": structured}}
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(wrapper))],
        structured_content=structured,
        is_error=True,
    )


def paid_tool(
    seller: Seller, price: Price, *, units: Callable[[Any], int] | None = None
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[CallToolResult]]]:
    """Prices an async MCP tool. For a tool priced per unit, `units(result)`
    says what a call used. A tool that raises costs nothing."""

    def decorate(tool: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[CallToolResult]]:
        name = tool.__name__
        signature = inspect.signature(tool)

        @functools.wraps(tool)
        async def wrapper(*args: Any, x402_context: Context, **kwargs: Any) -> CallToolResult:
            meta = x402_context.request_context.meta or {}
            payload = meta.get(PAYMENT)
            resource = tool_resource(name)
            if payload is None:
                return _required_result(seller.payment_required(resource, price, "payment required"))
            try:
                call = await seller.begin(payload, price)
            except PayeeError as error:
                required = seller.payment_required(resource, price, error.message)
                return _required_result(required, seller.refusal(error.code))
            try:
                try:
                    result = await tool(*args, **kwargs)
                    text = json.dumps(result)
                    cost = call.cost(True, units(result) if units else 0)
                except Exception as error:  # a failed call costs nothing
                    return CallToolResult(content=[TextContent(type="text", text=str(error))], is_error=True)
                settlement = await call.settle(cost)
            finally:
                call.release()  # nothing once settled; a cancelled call costs nothing
            return CallToolResult(
                content=[TextContent(type="text", text=text)],
                structured_content=result if isinstance(result, dict) else {"result": result},
                _meta={PAYMENT_RESPONSE: settlement},
            )

        context = inspect.Parameter("x402_context", inspect.Parameter.KEYWORD_ONLY, annotation=Context)
        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), context], return_annotation=CallToolResult
        )
        hints = dict(getattr(tool, "__annotations__", {}))
        hints.update({"x402_context": Context, "return": CallToolResult})
        wrapper.__annotations__ = hints
        return wrapper

    return decorate


def payment_required_of(result: CallToolResult) -> dict[str, Any] | None:
    """x402's `PaymentRequired` in a tool result, in the order the transport
    says a client looks: `structuredContent`, its `x402/error` wrapper, then
    `content[0].text`."""
    if not result.is_error:
        return None
    structured = result.structured_content
    if isinstance(structured, dict):
        if "x402Version" in structured and "accepts" in structured:
            return structured
        wrapped = structured.get(ERROR)
        if isinstance(wrapped, dict) and isinstance(wrapped.get("data"), dict):
            return wrapped["data"]
    if result.content and isinstance(result.content[0], TextContent):
        try:
            text = json.loads(result.content[0].text)
        except ValueError:
            return None
        if isinstance(text, dict):
            if "x402Version" in text and "accepts" in text:
                return text
            wrapped = text.get(ERROR)
            if isinstance(wrapped, dict) and isinstance(wrapped.get("data"), dict):
                return wrapped["data"]
    return None


def settlement_of(result: CallToolResult) -> dict[str, Any] | None:
    meta = result.meta or {}
    if isinstance(meta.get(PAYMENT_RESPONSE), dict):
        return meta[PAYMENT_RESPONSE]
    structured = result.structured_content
    if isinstance(structured, dict) and isinstance(structured.get(PAYMENT_RESPONSE), dict):
        return structured[PAYMENT_RESPONSE]
    return None


async def call_paid_tool(
    session: ClientSession,
    payer: ChannelPayer,
    name: str,
    arguments: dict[str, Any],
    *,
    max_amount: int | None = None,
) -> tuple[CallToolResult, int]:
    """Calls a tool, paying it through `payer` if it asks (at most
    `max_amount` atomic units, and the payer's own limits). Answers the
    result and what this call signed. Raises `PaymentError` when a payment
    is refused, by this payer or by the tool's server."""
    result = await session.call_tool(name, arguments)
    required = payment_required_of(result)
    if required is None:
        return result, 0
    payment = await asyncio.to_thread(payer.begin, required, max_amount)
    try:
        while True:
            payload = await asyncio.to_thread(payment.payload)
            result = await session.call_tool(name, arguments, meta={PAYMENT: payload})
            settlement = settlement_of(result)
            if settlement is None:
                if payment_required_of(result) is not None:
                    raise PaymentError("refused", "the tool asked for payment again")
                return result, payment.paid
            if await asyncio.to_thread(payment.outcome, settlement):
                return result, payment.paid
    finally:
        payment.close()
