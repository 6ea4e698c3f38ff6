"""Test clocks: create, and advance — which runs, in time order, every renewal, trial step, period-end
cancel, ``invoice.upcoming`` notice and dunning retry of the clock's subscriptions and every phase step of
the clock's schedules that falls due up to the new time, each at its own moment (the runners at that
moment, restricted to the clock; at one moment subscriptions first, then schedules, so a phase starting
where a period ends follows that period's renewal). Only an advance moves clock-bound rows: the real-time
sweepers skip them. Advancing is one at a time per clock
(``ready → advancing`` by a guarded update; 409 otherwise) and never moves a clock back."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, Min, OuterRef, Q
from django.utils import timezone

from billing_project.core.errors import Conflict, ValidationError
from billing_project.core.models import Organization
from billing_project.core.times import rfc3339
from subscriptions import selectors
from subscriptions.models import Renewal, Subscription, SubscriptionSchedule, TestClock
from subscriptions.services import runner, schedule_apply, schedule_runner, upcoming
from webhooks import services as webhook_services

MAX_ADVANCE = timedelta(days=5 * 366)


def test_clock_data(clock: TestClock) -> dict[str, Any]:
    return {"id": clock.public_id, "name": clock.name, "frozenTime": rfc3339(clock.frozen_time),
            "status": clock.status, "createdAt": rfc3339(clock.created_at)}


def test_clock_create(*, organization: Organization, frozen_time: datetime | None = None, name: str = "") -> TestClock:
    with transaction.atomic():
        clock = TestClock.objects.create(organization=organization, name=name,
                                         frozen_time=frozen_time or timezone.now())
        webhook_services.event_publish(organization=organization, type="test_clock.created", object_type="test_clock",
                                       object_id=clock.public_id, data=test_clock_data(clock))
    return clock


def _next_moment(clock: TestClock) -> datetime | None:
    """The earliest time something of the clock falls due (None when nothing ever will)."""
    subs = Subscription.objects.filter(test_clock=clock).exclude(status=Subscription.STATUS_CANCELED)
    processing = Renewal.objects.filter(subscription=OuterRef("pk"), status=Renewal.STATUS_PROCESSING)
    renew = subs.filter(Q(status__in=[Subscription.STATUS_ACTIVE, Subscription.STATUS_TRIALING])
                        | Q(cancel_at_period_end=True)).exclude(Exists(processing)).aggregate(
        at=Min("current_period_end"))["at"]
    trial = subs.filter(status=Subscription.STATUS_TRIALING).aggregate(at=Min("trial_end"))["at"]
    warn = subs.filter(status=Subscription.STATUS_TRIALING, trial_will_end_sent=False).aggregate(
        at=Min("trial_end"))["at"]
    retry = Renewal.objects.filter(subscription__test_clock=clock, status=Renewal.STATUS_PAST_DUE).aggregate(
        at=Min("next_retry_at"))["at"]
    notice = upcoming.with_notice_at(subs.filter(upcoming.not_sent(), current_period_end__gte=clock.frozen_time)
                                     ).aggregate(at=Min("notice_at"))["at"]
    schedule = SubscriptionSchedule.objects.filter(
        test_clock=clock, status__in=SubscriptionSchedule.RUNNING).aggregate(at=Min("next_run_at"))["at"]
    moments = [m for m in (renew, trial, warn - timedelta(days=3) if warn else None, retry, notice, schedule)
               if m is not None]
    return min(moments) if moments else None


def _run_at(clock: TestClock, moment: datetime) -> None:
    runner.run_due(now=moment, clock=clock)
    schedule_runner.schedules_run_due(applier=schedule_apply.SubscriptionServicesApplier(), now=moment,
                                      organization=clock.organization, clock=clock)


def test_clock_advance(*, organization: Organization, clock_id: str, frozen_time: datetime) -> TestClock:
    """Move the clock to ``frozen_time``, running what falls due on the way, in order. 400 unless later
    than the clock's time (and within 5 years); 409 while another advance runs."""
    clock = selectors.test_clock_get(organization=organization, clock_id=clock_id)
    if frozen_time <= clock.frozen_time:
        raise ValidationError("frozenTime must be after the clock's current time", param="frozenTime")
    if frozen_time - clock.frozen_time > MAX_ADVANCE:
        raise ValidationError("a clock advances at most 5 years at a time", param="frozenTime")
    claimed = TestClock.objects.filter(pk=clock.pk, status=TestClock.STATUS_READY).update(
        status=TestClock.STATUS_ADVANCING)
    if not claimed:
        raise Conflict("the test clock is already advancing", code="test_clock_advancing", param="id")
    try:
        while (moment := _next_moment(clock)) is not None and moment <= frozen_time:
            moment = max(moment, clock.frozen_time)
            _run_at(clock, moment)
            TestClock.objects.filter(pk=clock.pk).update(frozen_time=moment)
            clock.frozen_time = moment
            if _next_moment(clock) == moment:
                break  # nothing moved at this moment (a conflict): do not spin
        _run_at(clock, frozen_time)  # recoveries (invoices paid meanwhile)
    finally:
        TestClock.objects.filter(pk=clock.pk).update(status=TestClock.STATUS_READY, frozen_time=frozen_time)
    clock.refresh_from_db()
    with transaction.atomic():
        webhook_services.event_publish(organization=organization, type="test_clock.advanced", object_type="test_clock",
                                       object_id=clock.public_id, data=test_clock_data(clock))
    return clock
