"""Hypothesis: random sequences of ledger operations keep balance = Σ entries, holds = Σ hold legs,
and available ≥ 0 wherever the floor applies."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_project.core.errors import ApplicationError
from ledger import selectors, services
from ledger.models import Hold

pytestmark = pytest.mark.django_db

amounts = st.integers(min_value=1, max_value=5_000)
operation = st.one_of(
    st.tuples(st.just("deposit"), amounts, st.sampled_from([0, 1, 30])),
    st.tuples(st.just("usage"), amounts, st.just(0)),
    st.tuples(st.just("hold"), amounts, st.just(0)),
    st.tuples(st.just("release"), st.integers(0, 10), st.just(0)),
    st.tuples(st.just("capture"), st.integers(0, 10), amounts),
    st.tuples(st.just("expire"), st.integers(0, 40), st.just(0)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=25), floored=st.booleans())
def test_random_operation_sequences_keep_the_invariants(org_acme, ops, floored):
    user = f"prop/{uuid.uuid4().hex[:12]}"
    wallet = services.accounts_resolve(organization=org_acme, currency="usd", customer=user)["wallet"]
    services.wallet_set_overdraft(wallet=wallet, allow_negative=not floored)
    now = timezone.now()
    for kind, a, b in ops:
        placed_hold = False
        try:
            if kind == "deposit":
                services.deposit_create(organization=org_acme, user=user, amount=a, currency="usd",
                                        expires_in_days=b or None)
            elif kind == "usage":
                services.usage_record(organization=org_acme, user=user, amount=a, currency="usd")
            elif kind == "hold":
                services.hold_place(organization=org_acme, user=user, amount=a, currency="usd")
                placed_hold = True
            elif kind in ("release", "capture"):
                pending = list(Hold.objects.filter(customer=user, status="pending").order_by("pk"))
                if pending:
                    hold = pending[a % len(pending)]
                    if kind == "release":
                        services.hold_release(organization=org_acme, hold_id=hold.public_id)
                    else:
                        services.hold_capture(organization=org_acme, hold_id=hold.public_id,
                                              amount=min(b, hold.amount))
            else:
                services.balances_expire(now=now + timedelta(days=a))
        except ApplicationError:
            pass  # refused operations must leave no trace; the checks below prove it
        current = selectors.balance_get(organization=org_acme, user=user, currency="usd")
        assert current.holds >= 0
        if floored or placed_hold:  # a hold never reserves more than is available
            assert current.balance - current.holds >= 0, (kind, current)
    report = selectors.ledger_audit()
    assert report.ok, (report.drift, report.imbalances)
