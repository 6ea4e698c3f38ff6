"""Two sweepers and a manual renew racing over 200 due subscriptions: exactly one invoice per period."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from invoicing.models import Invoice
from ledger import selectors as ledger_selectors
from ledger.services import credits as credit_services
from subscriptions.models import Renewal, Subscription
from subscriptions.services import plans as plan_services
from subscriptions.services import renewals, sweeps
from subscriptions.services import subscriptions as sub_services
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2027, 1, 31, 10, 0, tzinfo=UTC)
COUNT = 200


def test_two_sweepers_and_manual_renew_bill_each_period_once(org_acme):
    plan = plan_services.plan_create(organization=org_acme, name="Pro", price=3000)
    subs = []
    for i in range(COUNT):
        user = f"race-{i}"
        credit_services.credit_grant_create(organization=org_acme, user=user, amount_cents=100_000)
        subs.append(sub_services.subscription_create(organization=org_acme, customer_id=user,
                                                     plan_id=plan.public_id, now=T0))
    now = subs[0].current_period_end

    def work(i: int):
        if i < 2:  # a sweeper: claim, then run one task per claimed subscription
            done = 0
            while pks := sweeps.subscriptions_claim(now=now, limit=25):
                for pk in pks:
                    renewals.subscription_due_process(subscription_pk=pk, now=now)
                    done += 1
            return done
        for sub in subs:  # the manual trigger, racing on the same subscriptions
            renewals.subscription_renew(organization=org_acme, subscription_id=sub.public_id, now=now)
        return COUNT

    run_threads(3, work)
    per_period = Counter(Renewal.objects.values_list("subscription_id", "period_start"))
    assert per_period and max(per_period.values()) == 1
    invoices = Counter(Invoice.objects.filter(organization=org_acme).values_list("subscription_id", "period_start"))
    assert max(invoices.values()) == 1
    assert sum(1 for (_sub, start) in invoices if start == T0) == COUNT  # every first period billed once
    assert Invoice.objects.filter(organization=org_acme).exclude(status="paid").count() == 0
    assert set(Subscription.objects.values_list("status", flat=True)) == {"active"}
    assert ledger_selectors.ledger_audit().ok
