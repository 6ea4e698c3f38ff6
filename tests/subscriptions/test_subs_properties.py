"""Property: any sequence of plan and quantity changes (prorated) bills, over whole periods, within one
minor unit of the exact integral of price × quantity over time (pure period maths checked too)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoicing.models import Invoice
from ledger.services import credits as credit_services
from subscriptions import periods
from subscriptions.services import plans as plan_services
from subscriptions.services import runner
from subscriptions.services import subscriptions as sub_services

T0 = datetime(2027, 1, 31, 10, 0, tzinfo=UTC)
PRICES = [0, 999, 3000, 4999, 12345]


@pytest.mark.parametrize("start,ends", [
    (datetime(2027, 1, 31, tzinfo=UTC), ["2027-02-28", "2027-03-31", "2027-04-30"]),
    (datetime(2028, 1, 31, tzinfo=UTC), ["2028-02-29", "2028-03-31", "2028-04-30"]),
    (datetime(2027, 1, 15, tzinfo=UTC), ["2027-02-15", "2027-03-15", "2027-04-15"]),
])
def test_periods_keep_anchor_day(start, ends):
    got, moment = [], start
    for _ in ends:
        moment = periods.advance(moment, 1, start.day)
        got.append(moment.date().isoformat())
    assert got == ends
    assert periods.advance(datetime(2028, 2, 29, tzinfo=UTC), 12, 29).date().isoformat() == "2029-02-28"


def test_line_amount_rounds_once_half_up():
    assert periods.line_amount(accrued_before=Decimal("0.4"), billed_before=0, addition=Decimal("0.1")) == 1
    assert periods.line_amount(accrued_before=Decimal("1000.6"), billed_before=1001, addition=Decimal(3000)) == 3000
    assert periods.round_half_up(Decimal("2.5")) == 3


def _exact(changes, end):
    """∫ price × quantity / period length dt over [T0, end), periods on the anchor day."""
    total, state_at = Fraction(0), [(T0, PRICES[2], 1)] + changes
    bounds = [T0]
    while bounds[-1] < end:
        bounds.append(periods.advance(bounds[-1], 1, T0.day))
    for i, (t, price, qty) in enumerate(state_at):
        seg_end = state_at[i + 1][0] if i + 1 < len(state_at) else end
        for s, e in zip(bounds, bounds[1:], strict=False):
            lo, hi = max(s, t), min(e, seg_end)
            if hi > lo:
                total += Fraction(price * qty) * Fraction((hi - lo) // timedelta(microseconds=1),
                                                          (e - s) // timedelta(microseconds=1))
    return total


@pytest.mark.django_db
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(min_value=1, max_value=80 * 86400), st.sampled_from(range(len(PRICES))),
                                st.integers(min_value=1, max_value=4),
                                st.sampled_from(["create_prorations", "always_invoice"])),
                      min_size=1, max_size=6))
def test_prorated_changes_bill_the_exact_integral(org_acme, steps):
    plans = [plan_services.plan_create(organization=org_acme, name=f"P{p}", price=p) for p in PRICES]
    user = f"prop-{uuid.uuid4().hex[:8]}"
    credit_services.credit_grant_create(organization=org_acme, user=user, amount_cents=10**9)
    sub = sub_services.subscription_create(organization=org_acme, customer_id=user, plan_id=plans[2].public_id,
                                           now=T0)
    changes = []
    for offset, plan_index, qty, behavior in sorted(steps):
        at = T0 + timedelta(seconds=offset)
        runner.run_due(now=at, queryset_filter=lambda s, r: (s.filter(pk=sub.pk), r.filter(subscription=sub)))
        sub_services.subscription_change_plan(organization=org_acme, subscription_id=sub.public_id,
                                              plan_id=plans[plan_index].public_id, quantity=qty,
                                              proration_behavior=behavior, now=at)
        sub.refresh_from_db()
        changes.append((at, sub.plan_snapshot["price"], sub.quantity))
    end = sub.current_period_end
    runner.run_due(now=end, queryset_filter=lambda s, r: (s.filter(pk=sub.pk), r.filter(subscription=sub)))
    billed = sum(Invoice.objects.filter(subscription_id=sub.public_id).values_list("subtotal", flat=True))
    assert abs(Fraction(billed) - _exact(changes, end)) <= 1
