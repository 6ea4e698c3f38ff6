"""Hypothesis: any sequence of grants, burns, voids and expiries keeps, per grant and in total,
remaining = granted − burned − expired − voided, never burns past zero, and matches the ledger."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_project.core.errors import ApplicationError
from ledger import selectors
from ledger.models import BalanceTransaction, CreditGrant
from ledger.services import credits as cs
from ledger.services.credits import Charge

pytestmark = pytest.mark.django_db

amounts = st.integers(min_value=1, max_value=3_000)
operation = st.one_of(
    st.tuples(st.just("grant"), amounts, st.integers(-2, 2), st.sampled_from([None, 1, 5]),
              st.sampled_from([(), ("mtr_a",)])),
    st.tuples(st.just("burn"), st.integers(-10, 4_000), st.just(0), st.just(None), st.sampled_from(["", "mtr_a"])),
    st.tuples(st.just("void"), st.integers(0, 20), st.just(0), st.just(None), st.just(())),
    st.tuples(st.just("expire"), st.integers(0, 6), st.just(0), st.just(None), st.just(())),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=20))
def test_burn_sequences_keep_the_credit_identity(org_acme, ops):
    user = f"prop/{uuid.uuid4().hex[:12]}"
    now = timezone.now()
    burned = 0
    for n, (kind, a, b, c, d) in enumerate(ops):
        try:
            if kind == "grant":
                cs.credit_grant_create(organization=org_acme, user=user, amount_cents=a, priority=b,
                                       eligibility=d, expires_at=now + timedelta(days=c) if c else None)
            elif kind == "burn":
                before = sum(CreditGrant.objects.filter(customer=user).values_list("remaining_cents", flat=True))
                result = cs.burn_credits(organization=org_acme, user=user, currency="usd",
                                         charges=[Charge(a, d)], idempotency_key=f"{user}:{n}")
                assert 0 <= result.applied <= max(0, a)
                assert result.applied <= before
                burned += result.applied
            elif kind == "void":
                grants = list(CreditGrant.objects.filter(customer=user).order_by("pk"))
                if grants:
                    cs.credit_grant_void(organization=org_acme, grant_id=grants[a % len(grants)].public_id)
            else:
                cs.credit_grants_expire(now=now + timedelta(days=a))
        except ApplicationError:
            pass
    grants = CreditGrant.objects.filter(customer=user)
    totals = grants.aggregate(granted=Sum("amount_cents"), remaining=Sum("remaining_cents"),
                              voided=Sum("voided_cents"), expired=Sum("expired_cents"))
    if totals["granted"] is not None:
        assert totals["remaining"] == totals["granted"] - burned - totals["expired"] - totals["voided"]
    ledger_burned = BalanceTransaction.objects.filter(customer=user, type="credit_burn").aggregate(
        s=Sum("amount"))["s"] or 0
    assert ledger_burned == burned
    for g in grants:
        assert 0 <= g.remaining_cents <= g.amount_cents
        assert g.remaining_cents == cs.grant_remaining_from_entries(g)
    report = selectors.ledger_audit()
    assert report.ok, (report.drift, report.imbalances)
