"""Mandates: grants from a principal to an agent and from an agent to a session."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from .keys import Key
from .signing import random_nonce, sign_grant
from .units import to_atomic

DAY_S = 86_400


@dataclass(frozen=True)
class Limits:
    """What a grant allows, in USD (`Decimal` or a decimal string, converted
    exactly to atomic units)."""

    max_per_payment: Decimal | str
    daily_budget: Decimal | str
    total_budget: Decimal | str | None = None
    allowed_payees: Sequence[str] | None = None
    denied_payees: Sequence[str] = field(default_factory=tuple)
    allowed_categories: Sequence[str] | None = None
    approval_threshold: Decimal | str | None = None
    daily_approval_threshold: Decimal | str | None = None

    def wire(self) -> dict[str, Any]:
        limits: dict[str, Any] = {
            "max_per_payment": str(to_atomic(self.max_per_payment)),
            "daily_budget": str(to_atomic(self.daily_budget)),
        }
        for name in ("total_budget", "approval_threshold", "daily_approval_threshold"):
            value = getattr(self, name)
            if value is not None:
                limits[name] = str(to_atomic(value))
        if self.allowed_payees is not None:
            limits["allowed_payees"] = list(self.allowed_payees)
        if self.denied_payees:
            limits["denied_payees"] = list(self.denied_payees)
        if self.allowed_categories is not None:
            limits["allowed_categories"] = list(self.allowed_categories)
        return limits


def grant(
    issuer: Key,
    subject: str,
    role: Literal["agent", "session"],
    limits: Limits,
    *,
    valid_for_s: int | None = None,
    not_before: int | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """A signed grant (`{"grant", "signature"}`) ready for a command. It
    lasts `valid_for_s`: by default 30 days for an agent, one day for a
    session (short-lived, and within the agent's grant)."""
    start = int(time.time()) if not_before is None else not_before
    if valid_for_s is None:
        valid_for_s = 30 * DAY_S if role == "agent" else DAY_S
    document = {
        "version": 1,
        "issuer": issuer.did,
        "subject": subject,
        "role": role,
        "limits": limits.wire(),
        "not_before": start,
        "expires_at": start + valid_for_s,
        "nonce": nonce or random_nonce(),
    }
    return sign_grant(issuer, document)
