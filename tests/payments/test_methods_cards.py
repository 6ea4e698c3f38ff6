"""Pure card helpers: Luhn, brand detection, CVC format (no database)."""

from __future__ import annotations

import pytest

from billing_project.core.errors import ValidationError
from payments import cards


@pytest.mark.parametrize("number,brand", [
    ("4242424242424242", "visa"), ("4000000000000002", "visa"), ("5555555555554444", "mastercard"),
    ("2223003122003222", "mastercard"), ("378282246310005", "amex"), ("6011111111111117", "discover"),
    ("3056930009020004", "diners"), ("3566002020360505", "jcb"), ("6200000000000005", "unionpay"),
    ("9999999999999995", "unknown"),
])
def test_brand_from_number(number, brand):
    assert cards.luhn_valid(number)
    assert cards.card_brand(number) == brand


@pytest.mark.parametrize("number", ["4242 4242 4242 4242", "4242-4242-4242-4242"])
def test_separators_are_allowed(number):
    assert cards.card_number_clean(number) == "4242424242424242"


@pytest.mark.parametrize("number,message", [
    ("4242424242424241", "Luhn"), ("42424242", "12 to 19 digits"), ("4242abcd42424242", "12 to 19 digits"),
    ("４２４２４２４２４２４２４２４２", "12 to 19 digits"), ("", "12 to 19 digits"),
])
def test_bad_numbers_name_the_field_and_never_repeat_the_number(number, message):
    with pytest.raises(ValidationError) as exc:
        cards.card_number_clean(number)
    assert exc.value.param == "card.number"
    assert message in exc.value.message
    assert not number or number not in exc.value.message


@pytest.mark.parametrize("cvc,ok", [("123", True), ("1234", True), ("12", False), ("12a", False), ("12345", False)])
def test_cvc_format(cvc, ok):
    if ok:
        cards.cvc_check(cvc)
    else:
        with pytest.raises(ValidationError):
            cards.cvc_check(cvc)
