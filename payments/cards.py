"""Pure card helpers: Luhn check, brand from the number. No database, no I/O; the number never leaves the
request that carried it (nothing here logs or returns it)."""

from __future__ import annotations

import re

from billing_project.core.errors import ValidationError

_SEPARATORS = re.compile(r"[ -]")

# (brand, prefixes as (low, high) ranges of the leading digits), first match wins.
_BRANDS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("amex", (("34", "34"), ("37", "37"))),
    ("diners", (("300", "305"), ("36", "36"), ("38", "39"))),
    ("discover", (("6011", "6011"), ("644", "649"), ("65", "65"))),
    ("jcb", (("3528", "3589"),)),
    ("unionpay", (("62", "62"),)),
    ("mastercard", (("51", "55"), ("2221", "2720"))),
    ("visa", (("4", "4"),)),
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_number_clean(number: str) -> str:
    """The digits of a card number (spaces and dashes allowed between them); 400 naming ``card.number``
    unless it is 12–19 digits with a valid Luhn check digit. The message never repeats the number."""
    digits = _SEPARATORS.sub("", number)
    if not digits.isascii() or not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise ValidationError("card.number must be 12 to 19 digits", param="card.number",
                              code="invalid_number")
    if not luhn_valid(digits):
        raise ValidationError("card.number is not a valid card number (Luhn check failed)", param="card.number",
                              code="invalid_number")
    return digits


def card_brand(digits: str) -> str:
    """The network of a card number (lower-case), ``unknown`` when no prefix matches."""
    for brand, ranges in _BRANDS:
        for low, high in ranges:
            head = digits[: len(low)]
            if low <= head <= high:
                return brand
    return "unknown"


def cvc_check(cvc: str) -> None:
    """A CVC is 3 or 4 digits; it is checked and dropped, never stored."""
    if not (cvc.isascii() and cvc.isdigit() and len(cvc) in (3, 4)):
        raise ValidationError("card.cvc must be 3 or 4 digits", param="card.cvc", code="invalid_cvc")
