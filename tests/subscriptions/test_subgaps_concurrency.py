"""Package "subgaps": four workers racing to send ``invoice.upcoming`` for the same 30 subscriptions (two
sweepers claiming, two redelivered tasks running unclaimed) publish it exactly once per subscription."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from subscriptions.models import Subscription
from subscriptions.services import plans as plan_services
from subscriptions.services import renewals, sweeps
from subscriptions.services import subscriptions as sub_services
from tests.threads import run_threads
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2027, 1, 31, 10, 0, tzinfo=UTC)
COUNT = 30


def test_racing_sweeps_send_invoice_upcoming_once_per_subscription(org_acme):
    plan = plan_services.plan_create(organization=org_acme, name="Pro", price=3000)
    subs = [sub_services.subscription_create(organization=org_acme, customer_id=f"notice-{i}",
                                             plan_id=plan.public_id, now=T0) for i in range(COUNT)]
    now = subs[0].current_period_end - timedelta(days=2)

    def work(i: int):
        if i < 2:
            while pks := sweeps.subscriptions_claim(now=now, limit=5):
                for pk in pks:
                    renewals.subscription_due_process(subscription_pk=pk, now=now)
            return "sweeper"
        for sub in subs:  # redelivered tasks: no claim, straight to the per-subscription service
            renewals.subscription_due_process(subscription_pk=sub.pk, now=now)
        return "tasks"

    run_threads(4, work)
    sent = Counter(BillingEvent.objects.filter(organization=org_acme, type="invoice.upcoming")
                   .values_list("object_id", flat=True))
    assert sent == Counter({sub.public_id: 1 for sub in subs})
    assert set(Subscription.objects.values_list("status", flat=True)) == {"active"}
    assert all(sub.upcoming_notice_period == sub.current_period_start for sub in Subscription.objects.all())
