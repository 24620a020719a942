"""Exact money: USD as `Decimal`, atomic units (1 USD = 1,000,000) as `int`."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

UNITS_PER_USD = 1_000_000
MAX_ATOMIC = 10**39 - 1  # the wire's amounts are at most 39 decimal digits


class AmountError(ValueError):
    """An amount that is negative, too large or finer than one atomic unit."""


def to_atomic(usd: Decimal | str | int) -> int:
    """USD to atomic units; refuses what is not a whole number of units."""
    try:
        value = Decimal(usd) if not isinstance(usd, Decimal) else usd
    except InvalidOperation as error:
        raise AmountError(f"{usd!r} is not a decimal amount") from error
    if not value.is_finite():
        raise AmountError(f"{usd!r} is not a finite amount")
    atomic = value * UNITS_PER_USD
    if atomic != atomic.to_integral_value():
        raise AmountError(f"{usd} USD is finer than one atomic unit (0.000001 USD)")
    result = int(atomic)
    if result < 0 or result > MAX_ATOMIC:
        raise AmountError(f"{usd} USD is outside 0..{MAX_ATOMIC} atomic units")
    return result


def to_usd(atomic: int | str) -> Decimal:
    """Atomic units (an int or the wire's decimal string) to USD."""
    units = int(atomic)
    if units < 0 or units > MAX_ATOMIC:
        raise AmountError(f"{atomic} is outside 0..{MAX_ATOMIC} atomic units")
    return Decimal(units) / UNITS_PER_USD
