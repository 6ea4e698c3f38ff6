"""The fast input path (``billing_project.core.api.inputs.validated``) must agree with DRF exactly: whenever
it answers, DRF accepts the same body and produces the same validated data; everything else goes to DRF."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from billing_project.core.api import inputs
from billing_project.core.errors import ApplicationError

APPS = ["billing_project", "ledger", "invoicing", "subscriptions", "payments", "webhooks"]


def _import_api_modules() -> None:
    """Import every module of every app's ``api`` package (and core's), so every serializer class exists."""
    for app in APPS:
        package_name = f"{app}.core.api" if app == "billing_project" else f"{app}.api"
        try:
            package = importlib.import_module(package_name)
        except ModuleNotFoundError:
            continue
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            importlib.import_module(info.name)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


_import_api_modules()
# Discovered, not listed: every serializer of the project that opted in to the fast path.
FAST = sorted({cls for cls in _subclasses(serializers.Serializer)
               if cls.__dict__.get("fast_path", False) and cls.__module__.split(".")[0] in APPS},
              key=lambda c: f"{c.__module__}.{c.__name__}")

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


def test_the_fast_path_is_opt_in_for_the_hot_paths_only():
    assert {cls.__name__ for cls in FAST} == {"UsageIn"}  # POST /usage, ZAP recordUsage
    for cls in FAST:
        assert inputs._fast_spec(cls) is not None
    from ledger.api.serializers import DepositIn, RefundIn

    assert inputs._fast_spec(RefundIn) is None and inputs._fast_validated(DepositIn, {"user": "u"}) is None


def test_an_opt_in_that_cannot_take_the_fast_path_fails_loudly():
    class NestedIn(serializers.Serializer):
        fast_path = True
        items = serializers.ListField(child=serializers.IntegerField())

    with pytest.raises(TypeError, match="field items cannot take the fast path"):
        inputs._fast_spec(NestedIn)


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
