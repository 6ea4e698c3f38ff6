"""The schedule runner with the real applier (``schedule_apply.SubscriptionServicesApplier``) on real subscription
services: the first phase starts a subscription, the next changes its plan, ``endBehavior: cancel`` ends it with a
final invoice — settled after the runner's transaction commits (a card is never charged inside it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from invoicing.models import Invoice
from ledger import selectors as ledger_selectors
from subscriptions.models import Subscription, SubscriptionSchedule
from subscriptions.services import plans as plan_services
from subscriptions.services import schedule_apply, schedule_runner
from subscriptions.services import schedules as schedule_services

pytestmark = pytest.mark.django_db

START = datetime(2030, 3, 1, tzinfo=UTC)


def ts(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def day(n: float) -> datetime:
    return START + timedelta(days=n)


def test_real_applier_starts_changes_and_ends(org_acme, django_capture_on_commit_callbacks):
    basic = plan_services.plan_create(organization=org_acme, name="Basic", price=1_000)
    pro = plan_services.plan_create(organization=org_acme, name="Pro", price=3_000)
    schedule = schedule_services.schedule_create(
        organization=org_acme, customer_id="acme/sched-real", start_date=day(0), end_behavior="cancel", phases=[
            {"planId": basic.public_id, "startDate": ts(day(0)), "endDate": ts(day(10))},
            {"planId": pro.public_id, "startDate": ts(day(10)), "endDate": ts(day(20)),
             "prorationBehavior": "none"}])
    applier = schedule_apply.SubscriptionServicesApplier()

    assert schedule_runner.schedule_run(schedule_pk=schedule.pk, applier=applier, now=day(1)) == 1
    schedule.refresh_from_db()
    sub = Subscription.objects.get(public_id=schedule.subscription_id)
    assert sub.plan == basic and sub.customer.customer_id == "acme/sched-real"

    assert schedule_runner.schedule_run(schedule_pk=schedule.pk, applier=applier, now=day(11)) == 1
    sub.refresh_from_db()
    assert sub.plan == pro

    with django_capture_on_commit_callbacks(execute=True):
        assert schedule_runner.schedule_run(schedule_pk=schedule.pk, applier=applier, now=day(21)) == 1
    schedule.refresh_from_db()
    sub.refresh_from_db()
    assert schedule.status == SubscriptionSchedule.STATUS_COMPLETED
    assert sub.status == Subscription.STATUS_CANCELED and sub.ended_at == day(20)
    final = Invoice.objects.filter(subscription_id=sub.public_id).order_by("-id").first()
    assert final is not None and final.status != Invoice.STATUS_DRAFT  # finalized after the runner's commit
    assert schedule_runner.schedule_run(schedule_pk=schedule.pk, applier=applier, now=day(30)) == 0
    assert ledger_selectors.ledger_audit().ok


def test_a_missing_plan_aborts_with_the_real_applier(org_acme):
    schedule = schedule_services.schedule_create(
        organization=org_acme, customer_id="acme/sched-missing", start_date=day(0),
        phases=[{"planId": "plan_does_not_exist", "startDate": ts(day(0))}])
    applier = schedule_apply.SubscriptionServicesApplier()
    schedule_runner.schedule_run(schedule_pk=schedule.pk, applier=applier, now=day(1))
    schedule.refresh_from_db()
    assert schedule.status == SubscriptionSchedule.STATUS_RELEASED and "not found" in schedule.abort_reason
    assert not Subscription.objects.filter(customer__customer_id="acme/sched-missing").exists()
