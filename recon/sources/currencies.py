"""ISO 4217: which currency codes exist, and what a symbol next to an amount stands for."""

from __future__ import annotations

from functools import lru_cache

from iso4217 import Currency

# Symbols that name one currency wherever they are written. "$", "kr", "¥" (JPY or
# CNY) and "R" do not: a file that uses them needs options.currency.
UNAMBIGUOUS_SYMBOLS = {"€": "EUR", "£": "GBP", "₹": "INR", "₩": "KRW", "₺": "TRY", "₽": "RUB"}


@lru_cache(maxsize=512)
def is_iso_currency(code: str) -> bool:
    """Whether ``code`` is an active ISO 4217 alphabetic code (upper case, three letters)."""
    try:
        Currency(code)
    except ValueError:
        return False
    return True


def iso_codes() -> list[str]:
    """Every active ISO 4217 alphabetic code, sorted."""
    return sorted(c.code for c in Currency)


def minor_units(code: str) -> int:
    """The decimals of ``code``'s minor unit (2 for EUR, 0 for JPY, 3 for BHD); 2 if unknown."""
    try:
        exponent = Currency(code).exponent
    except ValueError:
        return 2
    return 2 if exponent is None else int(exponent)
