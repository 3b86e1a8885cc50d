"""ISO 4217: which currency codes exist, and what a symbol next to an amount stands for."""

from __future__ import annotations

from functools import lru_cache

from iso4217 import Currency

# Symbols next to an amount that set its currency (DESIGN 15: EUR, GBP, JPY, INR). "$"
# (USD, CAD, AUD, ...) and "kr" (SEK, NOK, DKK, ISK) do not: such files need options.currency.
SYMBOL_CURRENCIES = {"€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}


@lru_cache(maxsize=512)
def is_iso_currency(code: str) -> bool:
    """Whether ``code`` is an active ISO 4217 alphabetic code (upper case, three letters)."""
    try:
        Currency(code)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1)
def iso_codes() -> tuple[str, ...]:
    """Every active ISO 4217 alphabetic code, sorted."""
    return tuple(sorted(c.code for c in Currency))


def minor_units(code: str) -> int:
    """The decimals of ``code``'s minor unit (2 for EUR, 0 for JPY, 3 for BHD); 2 if unknown."""
    try:
        exponent = Currency(code).exponent
    except ValueError:
        return 2
    return 2 if exponent is None else int(exponent)
