"""What the subscriptions sweeper finds due, and how it claims it (the pattern of ``ledger.services.sweeps``:
``FOR UPDATE SKIP LOCKED`` plus a claimed-until stamp; the per-item services re-check under their locks).

Due subscriptions: a period that is over (active/trialing, or any status with a pending at-period-end
cancel), a trial that ended or ends within 3 days (``trial_will_end`` not sent), an ``invoice.upcoming``
notice not sent yet for the period (``services.upcoming``). Due renewals: past-due
ones whose retry time came, or whose invoice was paid another way; ``processing`` ones (their card payment
was left pending) once that payment is settled. A subscription whose renewal is ``processing`` is not due
for another: it waits for that outcome."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from billing_project.core import sweeps as core_sweeps
from invoicing.models import Invoice
from subscriptions.models import Renewal, Subscription
from subscriptions.services import upcoming

CLAIM_SECONDS = 600


def subscriptions_due_queryset(now: datetime, clock=None) -> QuerySet[Subscription]:
    """Due in real time (``clock`` None: subscriptions on no test clock) or in ``clock``'s time."""
    processing = Renewal.objects.filter(subscription=OuterRef("pk"), status=Renewal.STATUS_PROCESSING)
    renew = Q(current_period_end__lte=now) & ~Exists(processing) & (
        Q(status__in=[Subscription.STATUS_ACTIVE, Subscription.STATUS_TRIALING]) | Q(cancel_at_period_end=True))
    trial = Q(status=Subscription.STATUS_TRIALING) & (
        Q(trial_end__lte=now) | Q(trial_will_end_sent=False, trial_end__lte=now + timedelta(days=3)))
    queryset = upcoming.with_notice_at(Subscription.objects.exclude(status=Subscription.STATUS_CANCELED))
    return queryset.filter(renew | trial | upcoming.due(now), test_clock=clock)


def renewals_due_queryset(now: datetime, clock=None) -> QuerySet[Renewal]:
    paid = Invoice.objects.filter(public_id=OuterRef("invoice_id"), status=Invoice.STATUS_PAID)
    in_flight = Invoice.objects.filter(public_id=OuterRef("invoice_id"), status=Invoice.STATUS_OPEN).exclude(
        collection_pending={})
    past_due = Q(status=Renewal.STATUS_PAST_DUE) & (Q(next_retry_at__lte=now) | Exists(paid))
    settled = Q(status=Renewal.STATUS_PROCESSING) & ~Exists(in_flight)
    return Renewal.objects.filter(past_due | settled, subscription__test_clock=clock)


def _claim(queryset: QuerySet, *, order: str, now: datetime, limit: int) -> list[int]:
    return core_sweeps.pks_claim(queryset, order=order, now=now, limit=limit, claim_seconds=CLAIM_SECONDS)


def subscriptions_claim(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    now = now or timezone.now()
    return _claim(subscriptions_due_queryset(now), order="current_period_end", now=now, limit=limit)


def renewals_claim(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    now = now or timezone.now()
    return _claim(renewals_due_queryset(now), order="next_retry_at", now=now, limit=limit)
