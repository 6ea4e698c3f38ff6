"""Pure: currency validation, exponents, the one rounding rule."""

from decimal import Decimal

import pytest

from billing_project.core.errors import ValidationError
from billing_project.core.money import currency_exponent, currency_normalize, format_minor, major_to_minor, round_minor


@pytest.mark.parametrize("code,exp", [("usd", 2), ("jpy", 0), ("kwd", 3), ("eur", 2), ("bhd", 3)])
def test_exponents(code, exp):
    assert currency_exponent(code) == exp


@pytest.mark.parametrize("raw,expected", [("USD", "usd"), (" eur ", "eur"), (None, "usd"), ("", "usd")])
def test_normalize(raw, expected):
    assert currency_normalize(raw) == expected


@pytest.mark.parametrize("raw", ["xyz", "dollars", 5, "us"])
def test_unknown_currency(raw):
    with pytest.raises(ValidationError) as exc:
        currency_normalize(raw)
    assert exc.value.param == "currency"


@pytest.mark.parametrize("amount,expected", [
    (Decimal("12.5"), 13), (Decimal("12.4999"), 12), (Decimal("-12.5"), -13), (Decimal("0.5"), 1), (Decimal("0"), 0),
])
def test_round_half_up_at_the_line(amount, expected):
    assert round_minor(amount, "usd") == expected


@pytest.mark.parametrize("major,currency,minor", [
    (Decimal("1.005"), "usd", 101), (Decimal("1.5"), "jpy", 2), (Decimal("0.0005"), "kwd", 1),
])
def test_major_to_minor(major, currency, minor):
    assert major_to_minor(major, currency) == minor


def test_format_minor():
    assert format_minor(123456, "usd") == "$1,234.56"
    assert format_minor(500, "jpy") == "¥500"
