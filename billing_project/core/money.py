"""Money: integer minor units plus a lowercase ISO-4217 currency.

Currency codes and their minor-unit exponents come from CLDR via Babel (JPY 0, USD 2, KWD 3).
``Decimal`` appears only where a sub-cent unit price is turned into a line amount, through
``round_minor`` — the one rounding rule: ROUND_HALF_UP to the currency's minor unit, once, at the line.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel import numbers as babel_numbers

from billing_project.core.errors import ValidationError

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
DEFAULT_CURRENCY = "usd"


@lru_cache(maxsize=1)
def _known_currencies() -> frozenset[str]:
    return frozenset(code.lower() for code in babel_numbers.list_currencies() if len(code) == 3)


def currency_normalize(value: object, *, param: str = "currency", default: str | None = DEFAULT_CURRENCY) -> str:
    """Lower-case and validate a currency code; ``None``/blank gives ``default``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is None:
            raise ValidationError(f"{param} is required", param=param, code="parameter_missing")
        return default
    if not isinstance(value, str):
        raise ValidationError(f"invalid request body: {param} must be a string", param=param,
                              code="invalid_type")
    code = value.strip().lower()
    if code not in _known_currencies():
        raise ValidationError(f"unknown currency: {value}", param=param, code="invalid_currency")
    return code


@lru_cache(maxsize=512)
def currency_exponent(currency: str) -> int:
    """Number of minor-unit digits: usd 2, jpy 0, kwd 3."""
    return int(babel_numbers.get_currency_precision(currency.upper()))


def round_minor(amount: Decimal, currency: str = "") -> int:
    """The one rounding rule: a Decimal amount in *minor units* rounded half-up to an integer.

    ``amount`` is already in minor units (e.g. 12.5 cents); the exponent matters only to the
    caller converting from major units (see ``major_to_minor``)."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def major_to_minor(amount: Decimal, currency: str) -> int:
    """Convert a Decimal amount in major units (dollars) to minor units, rounding half-up once."""
    return round_minor(amount * (Decimal(10) ** currency_exponent(currency)), currency)


def format_minor(amount: int, currency: str, locale: str = "en_US") -> str:
    value = Decimal(amount) / (Decimal(10) ** currency_exponent(currency))
    return babel_numbers.format_currency(value, currency.upper(), locale=locale)
