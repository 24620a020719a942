"""A client of the node's API: signed commands with retries, typed reads."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from . import models
from .api import USD, AsyncReads, Commands, R, Reads, usd
from .grants import Limits, grant
from .keys import Key
from .signing import random_nonce, sign_request

T = TypeVar("T", bound=BaseModel)

# 503 codes that did not apply the command, and the one that may have.
RETRY_CODES = {"overloaded", "storage_unavailable", "shutting_down", "outcome_unknown", "not_leader"}


class AgentrailError(Exception):
    """A refusal of the node: its stable `code`, `message`, `param` and status."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.param = param


def _error_of(response: httpx.Response) -> AgentrailError:
    try:
        detail = response.json()["error"]
        return AgentrailError(response.status_code, detail["code"], detail["message"], detail.get("param"))
    except (ValueError, KeyError, TypeError):
        return AgentrailError(response.status_code, "http_error", response.text[:200])


def _retry_after(response: httpx.Response) -> float:
    """Seconds to wait, as the node says, within 0..30 (a date, a NaN or a
    negative number waits one second)."""
    try:
        seconds = float(response.headers.get("Retry-After", "1"))
    except ValueError:
        return 1.0
    if not seconds >= 0.0:  # negative, or NaN
        return 1.0
    return min(seconds, 30.0)


def new_idempotency_key() -> str:
    return "py-" + random_nonce()


def _document(command: BaseModel | dict[str, Any]) -> bytes:
    if isinstance(command, BaseModel):
        document = command.model_dump(mode="json", by_alias=True, exclude_none=True)
    else:
        document = command
    return json.dumps(document, separators=(",", ":")).encode()


def _retryable(response: httpx.Response, error: AgentrailError) -> bool:
    return response.status_code == 429 or (response.status_code == 503 and error.code in RETRY_CODES)


COMMANDS_PATH = "/v1/commands"


def _next_node(nodes: list[str], current: str) -> str:
    """The node after `current` in `nodes`, in turn."""
    index = nodes.index(current) if current in nodes else -1
    return nodes[(index + 1) % len(nodes)]


class _Api(Commands[R]):
    """The commands whose arguments are not one-to-one with their fields."""

    def register_principal(self, principal: Key) -> R:
        """A principal registers itself."""
        return self._command(
            principal,
            models.RegisterPrincipalCommand(type="register_principal", principal=models.Did(principal.did)),
        )

    def register_agent(self, principal: Key, agent: str, limits: Limits, **options: Any) -> R:
        """The principal grants `agent` a mandate (`limits`; `options` are the
        grant's other fields: `expires_at`, `categories`, `payees`, …)."""
        signed = grant(principal, agent, "agent", limits, **options)
        return self._command(
            principal, models.RegisterAgentCommand.model_validate({"type": "register_agent", "grant": signed})
        )

    def issue_session(self, agent: Key, session: str, limits: Limits, **options: Any) -> R:
        """The agent grants a session key a mandate within its own."""
        signed = grant(agent, session, "session", limits, **options)
        return self._command(
            agent, models.IssueSessionCommand.model_validate({"type": "issue_session", "grant": signed})
        )

    def transfer(
        self,
        signer: Key,
        to: str,
        amount: USD,
        *,
        from_: str | None = None,
        category: str | None = None,
        memo: str | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """Pays `amount` USD from `from_` (default: the signer's own account;
        a session pays from its agent's)."""
        command = models.TransferCommand(
            type="transfer",
            from_=models.Did(from_ or signer.did),
            to=models.Did(to),
            amount=models.Amount(usd(amount)),
            category=category,
            memo=memo,
            idempotency_key=idempotency_key or new_idempotency_key(),
        )
        return self._command(signer, command)


class Client(_Api[models.CommandResponse], Reads):
    """The node's API over HTTP, in the style of Stripe's SDK: a method per
    command and per read (`agentrail.api`), typed by the node's models.

    Every mutation carries an idempotency key. A `429` or a `503` that did
    not apply the command is sent again after `Retry-After`; a `503
    outcome_unknown` is sent again with the same command (so the same
    idempotency key) under a new signature and nonce, which returns the
    first outcome if it landed. Refusals raise `AgentrailError`.

    `nodes` names further nodes of the same ledger (nodes sharing one
    journal, `agentrail serve --store postgres://…`): a command a node
    refuses as `not_leader`, or that finds no node listening, goes to the
    next one; reads go to the node commands last reached.
    """

    def __init__(
        self,
        base: str = "http://127.0.0.1:8402",
        *,
        network: str | None = None,
        http: httpx.Client | None = None,
        retries: int = 4,
        nodes: Sequence[str] = (),
    ) -> None:
        self.base = base.rstrip("/")
        self._nodes = [self.base, *(node.rstrip("/") for node in nodes)]
        self._http = http or httpx.Client(timeout=30.0)
        self._network = network
        self.retries = retries

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, model: type[T], params: dict[str, Any] | None = None) -> T:
        response = self._http.get(self.base + path, params=params)
        if response.status_code != 200:
            raise _error_of(response)
        return model.model_validate(response.json())

    def _text(self, path: str) -> str:
        response = self._http.get(self.base + path)
        if response.status_code != 200:
            raise _error_of(response)
        return response.text

    def network(self) -> str:
        """The network id requests are signed for (pinned once read)."""
        if self._network is None:
            self._network = self.health().network
        return self._network

    def _command(self, signer: Key, command: BaseModel) -> models.CommandResponse:
        return self.submit(signer, command)

    def submit(self, signer: Key, command: BaseModel | dict[str, Any]) -> models.CommandResponse:
        """Signs and sends one command; retries as the protocol allows."""
        body = _document(command)
        for attempt in range(self.retries + 1):
            headers = sign_request(signer, self.network(), "POST", COMMANDS_PATH, body)
            headers["Content-Type"] = "application/json"
            try:
                response = self._http.post(self.base + COMMANDS_PATH, content=body, headers=headers)
            except httpx.ConnectError:
                if len(self._nodes) == 1 or attempt == self.retries:
                    raise
                self.base = _next_node(self._nodes, self.base)
                time.sleep(0.1)
                continue
            if response.status_code == 200:
                return models.CommandResponse.model_validate(response.json())
            error = _error_of(response)
            if not _retryable(response, error) or attempt == self.retries:
                raise error
            if error.code == "not_leader":
                self.base = _next_node(self._nodes, self.base)
            time.sleep(_retry_after(response))
        raise AssertionError("unreachable")

    def faucet(self, to: str, amount: USD) -> models.CommandResponse:
        """Dev nodes only: deposits `amount` USD from the node's operator key."""
        response = self._http.post(self.base + "/v1/faucet", json={"to": to, "amount": usd(amount)})
        if response.status_code != 200:
            raise _error_of(response)
        return models.CommandResponse.model_validate(response.json())

    def log_key(self) -> str:
        """The log's note key. Fetch it once and pin it: proofs are checked
        against the pinned key, never against what a node serves later."""
        return self._text("/v1/log/key").strip()

    def checkpoint(self) -> str:
        """The latest signed checkpoint (a C2SP signed note)."""
        return self._text("/checkpoint")


class AsyncClient(_Api[Coroutine[Any, Any, models.CommandResponse]], AsyncReads):
    """`Client` for asyncio: the same methods, awaited."""

    def __init__(
        self,
        base: str = "http://127.0.0.1:8402",
        *,
        network: str | None = None,
        http: httpx.AsyncClient | None = None,
        retries: int = 4,
        nodes: Sequence[str] = (),
    ) -> None:
        self.base = base.rstrip("/")
        self._nodes = [self.base, *(node.rstrip("/") for node in nodes)]
        self._http = http or httpx.AsyncClient(timeout=30.0)
        self._network = network
        self.retries = retries

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _get(self, path: str, model: type[T], params: dict[str, Any] | None = None) -> T:
        response = await self._http.get(self.base + path, params=params)
        if response.status_code != 200:
            raise _error_of(response)
        return model.model_validate(response.json())

    async def _text(self, path: str) -> str:
        response = await self._http.get(self.base + path)
        if response.status_code != 200:
            raise _error_of(response)
        return response.text

    async def network(self) -> str:
        if self._network is None:
            self._network = (await self.health()).network
        return self._network

    def _command(self, signer: Key, command: BaseModel) -> Coroutine[Any, Any, models.CommandResponse]:
        return self.submit(signer, command)

    async def submit(self, signer: Key, command: BaseModel | dict[str, Any]) -> models.CommandResponse:
        body = _document(command)
        network = await self.network()
        for attempt in range(self.retries + 1):
            headers = sign_request(signer, network, "POST", COMMANDS_PATH, body)
            headers["Content-Type"] = "application/json"
            try:
                response = await self._http.post(self.base + COMMANDS_PATH, content=body, headers=headers)
            except httpx.ConnectError:
                if len(self._nodes) == 1 or attempt == self.retries:
                    raise
                self.base = _next_node(self._nodes, self.base)
                await asyncio.sleep(0.1)
                continue
            if response.status_code == 200:
                return models.CommandResponse.model_validate(response.json())
            error = _error_of(response)
            if not _retryable(response, error) or attempt == self.retries:
                raise error
            if error.code == "not_leader":
                self.base = _next_node(self._nodes, self.base)
            await asyncio.sleep(_retry_after(response))
        raise AssertionError("unreachable")

    async def faucet(self, to: str, amount: USD) -> models.CommandResponse:
        response = await self._http.post(self.base + "/v1/faucet", json={"to": to, "amount": usd(amount)})
        if response.status_code != 200:
            raise _error_of(response)
        return models.CommandResponse.model_validate(response.json())

    async def log_key(self) -> str:
        return (await self._text("/v1/log/key")).strip()

    async def checkpoint(self) -> str:
        return await self._text("/checkpoint")
