"""A client of the node's API: signed commands with retries, typed reads."""

from __future__ import annotations

import json
import time
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from . import models
from .grants import Limits, grant
from .keys import Key
from .signing import random_nonce, sign_request
from .units import to_atomic

T = TypeVar("T", bound=BaseModel)

# 503 codes that did not apply the command, and the one that may have.
RETRY_CODES = {"overloaded", "storage_unavailable", "shutting_down", "outcome_unknown"}


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
        return AgentrailError(
            response.status_code, detail["code"], detail["message"], detail.get("param")
        )
    except (ValueError, KeyError, TypeError):
        return AgentrailError(response.status_code, "http_error", response.text[:200])


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("Retry-After", "1")), 30.0)
    except ValueError:
        return 1.0


def new_idempotency_key() -> str:
    return "py-" + random_nonce()


class Client:
    """The node's API over HTTP.

    Every mutation carries an idempotency key. A `429` or a `503` that did
    not apply the command is sent again after `Retry-After`; a `503
    outcome_unknown` is sent again with the same command (so the same
    idempotency key) under a new signature and nonce, which returns the
    first outcome if it landed.
    """

    def __init__(
        self,
        base: str = "http://127.0.0.1:8402",
        *,
        network: str | None = None,
        http: httpx.Client | None = None,
        retries: int = 4,
    ) -> None:
        self.base = base.rstrip("/")
        self._http = http or httpx.Client(timeout=30.0)
        self._network = network
        self.retries = retries

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ---------------------------------------------------------

    def _get(self, path: str, model: type[T], params: dict[str, Any] | None = None) -> T:
        response = self._http.get(self.base + path, params=params)
        if response.status_code != 200:
            raise _error_of(response)
        return model.model_validate(response.json())

    def network(self) -> str:
        """The network id requests are signed for (pinned once read)."""
        if self._network is None:
            self._network = self.health().network
        return self._network

    def submit(self, signer: Key, command: BaseModel | dict[str, Any]) -> models.CommandResponse:
        """Signs and sends one command; retries as the protocol allows."""
        if isinstance(command, BaseModel):
            document = command.model_dump(mode="json", by_alias=True, exclude_none=True)
        else:
            document = command
        body = json.dumps(document, separators=(",", ":")).encode()
        path = "/v1/commands"
        for attempt in range(self.retries + 1):
            headers = sign_request(signer, self.network(), "POST", path, body)
            headers["Content-Type"] = "application/json"
            response = self._http.post(self.base + path, content=body, headers=headers)
            if response.status_code == 200:
                return models.CommandResponse.model_validate(response.json())
            error = _error_of(response)
            retryable = response.status_code == 429 or (
                response.status_code == 503 and error.code in RETRY_CODES
            )
            if not retryable or attempt == self.retries:
                raise error
            time.sleep(_retry_after(response))
        raise AssertionError("unreachable")

    # --- commands ----------------------------------------------------------

    def register_principal(self, principal: Key) -> models.CommandResponse:
        return self.submit(principal, {"type": "register_principal", "principal": principal.did})

    def register_agent(
        self, principal: Key, agent: str, limits: Limits, **options: Any
    ) -> models.CommandResponse:
        signed = grant(principal, agent, "agent", limits, **options)
        return self.submit(principal, {"type": "register_agent", "grant": signed})

    def issue_session(
        self, agent: Key, session: str, limits: Limits, **options: Any
    ) -> models.CommandResponse:
        signed = grant(agent, session, "session", limits, **options)
        return self.submit(agent, {"type": "issue_session", "grant": signed})

    def transfer(
        self,
        signer: Key,
        to: str,
        usd: Any,
        *,
        from_: str | None = None,
        category: str | None = None,
        memo: str | None = None,
        idempotency_key: str | None = None,
    ) -> models.CommandResponse:
        """Pays `usd` (a Decimal or decimal string) from `from_` (default: the
        signer's own account; a session pays from its agent's)."""
        command = models.TransferCommand(
            type="transfer",
            from_=models.Did(from_ or signer.did),
            to=models.Did(to),
            amount=models.Amount(str(to_atomic(usd))),
            category=category,
            memo=memo,
            idempotency_key=idempotency_key or new_idempotency_key(),
        )
        return self.submit(signer, command)

    def faucet(self, to: str, usd: Any) -> models.CommandResponse:
        """Dev nodes only: deposits from the node's operator key."""
        response = self._http.post(
            self.base + "/v1/faucet", json={"to": to, "amount": str(to_atomic(usd))}
        )
        if response.status_code != 200:
            raise _error_of(response)
        return models.CommandResponse.model_validate(response.json())

    # --- reads -------------------------------------------------------------

    def health(self) -> models.Health:
        return self._get("/v1/health", models.Health)

    def balance(self, did: str) -> models.BalanceResponse:
        return self._get(f"/v1/accounts/{did}/balance", models.BalanceResponse)

    def history(self, did: str, **params: Any) -> models.HistoryPage:
        return self._get(f"/v1/accounts/{did}/history", models.HistoryPage, params)

    def passport(self, did: str) -> models.Passport:
        return self._get(f"/v1/passports/{did}", models.Passport)

    def grant_status(self, did: str) -> models.GrantStatus:
        return self._get(f"/v1/grants/{did}", models.GrantStatus)

    def channel(self, channel_id: str) -> models.ChannelView:
        return self._get(f"/v1/channels/{channel_id}", models.ChannelView)

    def receipt(self, index: int) -> models.Receipt:
        return self._get(f"/v1/receipts/{index}", models.Receipt)

    def _text(self, path: str) -> str:
        response = self._http.get(self.base + path)
        if response.status_code != 200:
            raise _error_of(response)
        return response.text

    def log_key(self) -> str:
        """The log's note key. Fetch it once and pin it: proofs are checked
        against the pinned key, never against what a node serves later."""
        return self._text("/v1/log/key").strip()

    def checkpoint(self) -> str:
        """The latest signed checkpoint (a C2SP signed note)."""
        return self._text("/checkpoint")

    def consistency(self, older: int, newer: int) -> models.ConsistencyProof:
        return self._get(
            "/v1/log/proof/consistency",
            models.ConsistencyProof,
            {"from": older, "to": newer},
        )
