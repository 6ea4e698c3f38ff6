"""The fast input path (``billing_project.core.api.inputs.validated``) must agree with DRF exactly: whenever
it answers, DRF accepts the same body and produces the same validated data; everything else goes to DRF."""

from __future__ import annotations

import importlib
import inspect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from billing_project.core.api import inputs
from billing_project.core.errors import ApplicationError

MODULES = ["billing_project.core.api.inputs",
           "ledger.api.serializers", "ledger.api.credits", "ledger.api.customer_balance", "invoicing.api.invoices",
           "invoicing.api.credit_notes", "invoicing.api.tax_rates", "invoicing.api.metering", "invoicing.api.pricing",
           "invoicing.api.preview", "webhooks.api.serializers"]


def _serializers() -> list[type[serializers.Serializer]]:
    found = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, serializers.Serializer) and cls.__module__ == name and cls.__name__.endswith("In"):
                found[f"{name}.{cls.__name__}"] = cls
    return [found[k] for k in sorted(found)]


ALL = _serializers()
FAST = [cls for cls in ALL if inputs._fast_spec(cls) is not None]

ODD_VALUES = st.sampled_from([None, "", "   ", " x ", "x" * 300, "a\x00b", "\ud800", "USD", "usd", "zzz", 0, -1, 1,
                              2**63, -(2**63) - 1, 1.5, True, False, [], {}, "5", "hanzo/alice", "é"])


def _value_for(spec) -> st.SearchStrategy:
    if spec.kind == "char":
        good = st.text(max_size=(spec.max_length or 50) + 5)
    elif spec.kind == "int":
        good = st.integers(min_value=-(2**64), max_value=2**64)
    else:
        good = st.booleans()
    return st.one_of(good, ODD_VALUES)


@st.composite
def bodies(draw, cls):
    _, specs = inputs._fast_spec(cls)
    body = {}
    for spec in specs:
        if draw(st.booleans()):
            body[spec.name] = draw(_value_for(spec))
    if draw(st.booleans()):
        body["unknownField"] = draw(ODD_VALUES)
    return body


def test_the_fast_path_covers_the_flat_inputs():
    names = {cls.__name__ for cls in FAST}
    assert {"UsageIn", "RefundIn"} <= names  # DepositIn left: its tags/expiresIn take two JSON types
    assert len(FAST) < len(ALL)  # nested / list / dict inputs stay on DRF


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_fast_path_agrees_with_drf(cls):
    @settings(max_examples=300, deadline=None)
    @given(body=bodies(cls))
    def check(body):
        fast = inputs._fast_validated(cls, body)
        serializer = cls(data=body)
        try:
            ok = serializer.is_valid()
        except ApplicationError:
            ok = False
        if fast is not None:
            assert ok, (body, serializer.errors)
            assert dict(serializer.validated_data) == fast

    check()


def test_usage_body_takes_the_fast_path_and_errors_do_not():
    from ledger.api.serializers import UsageIn

    good = {"user": " hanzo/alice ", "amount": 25, "currency": "USD", "model": "gpt", "totalTokens": 7}
    fast = inputs._fast_validated(UsageIn, good)
    assert fast is not None and fast["user"] == "hanzo/alice" and fast["currency"] == "usd"
    assert fast["requestId"] == "" and fast["premium"] is False
    assert inputs._fast_validated(UsageIn, {**good, "amount": -1})["amount"] == -1  # valid: skipped (≤ 0)
    assert inputs._fast_validated(UsageIn, {**good, "tokens": "7"}) is None
    assert inputs._fast_validated(UsageIn, {**good, "amount": "25"}) is None
    assert inputs._fast_validated(UsageIn, {"amount": 25}) is None
