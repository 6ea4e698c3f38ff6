"""``invoice.upcoming``: once per (subscription, period), ``upcoming_invoice_days`` (organization setting beside
the dunning ones, default 3) before the period ends, the sweeper (or a test clock's advance) publishes what
``GET /invoices/upcoming?userId=&subscriptionId=`` would answer at that moment.

Invariants
- Once per period: ``Subscription.upcoming_notice_period`` (the ``current_period_start`` the notice was sent
  for) is written with the event, in one transaction, under the subscription's row lock; a second sweep, a
  redelivered task or a clock advance finds it set and sends nothing.
- Only subscriptions that will bill that period: ``active`` or ``trialing`` (a pending at-period-end cancel
  still gets its final invoice: notified too), while the period has not ended (a sweep that comes after the
  end sends nothing: the renewal itself is due then).
- Reading the preview writes nothing (``invoicing.selectors.upcoming``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import (
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from invoicing.selectors import upcoming as upcoming_selectors
from subscriptions.models import Subscription, SubscriptionSettings
from webhooks import services as webhook_services

DEFAULT_DAYS = 3
NOTIFIED = (Subscription.STATUS_ACTIVE, Subscription.STATUS_TRIALING)


def notice_days(organization) -> int:
    found = SubscriptionSettings.objects.filter(organization=organization).values_list(
        "upcoming_invoice_days", flat=True).first()
    return DEFAULT_DAYS if found is None else int(found)


def with_notice_at(queryset: QuerySet[Subscription]) -> QuerySet[Subscription]:
    """Annotate ``notice_at`` = period end − the organization's notice days (one SQL expression, so sweeps and
    clocks filter and order on it)."""
    days = Coalesce(Subquery(SubscriptionSettings.objects.filter(organization=OuterRef("organization"))
                             .values("upcoming_invoice_days")[:1]), Value(DEFAULT_DAYS),
                    output_field=IntegerField())
    span = ExpressionWrapper(days * Value(timedelta(days=1), output_field=DurationField()),
                             output_field=DurationField())
    return queryset.annotate(notice_at=ExpressionWrapper(F("current_period_end") - span,
                                                         output_field=DateTimeField()))


def not_sent() -> Q:
    """The notice of the current period is not sent yet (and the subscription is one that gets it)."""
    return Q(status__in=NOTIFIED) & (Q(upcoming_notice_period__isnull=True)
                                     | ~Q(upcoming_notice_period=F("current_period_start")))


def due(now: datetime) -> Q:
    """On a ``with_notice_at`` queryset: the notice is due at ``now``. Bounded by the largest setting, so the
    sweep reads the ``current_period_end`` index range ``[now, now + max days]``, not every subscription."""
    largest = SubscriptionSettings.objects.aggregate(days=Max("upcoming_invoice_days"))["days"] or 0
    horizon = now + timedelta(days=max(largest, DEFAULT_DAYS))
    return not_sent() & Q(notice_at__lte=now, current_period_end__gte=now, current_period_end__lte=horizon)


def _is_due(sub: Subscription, now: datetime) -> bool:
    if sub.status not in NOTIFIED or sub.upcoming_notice_period == sub.current_period_start:
        return False
    if now >= sub.current_period_end:  # over: the renewal itself is due (checked first: no settings read)
        return False
    days = notice_days(sub.organization)
    return sub.current_period_end - timedelta(days=days) <= now <= sub.current_period_end


def upcoming_notice_step(sub: Subscription, now: datetime) -> bool:
    """Publish ``invoice.upcoming`` for the current period if due; True when sent. Caller holds the row lock."""
    if not _is_due(sub, now):
        return False
    customer_id = sub.customer.customer_id
    preview = upcoming_selectors.upcoming_invoice(organization=sub.organization, user=customer_id,
                                                  subscription_id=sub.public_id, now=now)
    data = upcoming_selectors.upcoming_data(preview)
    sub.upcoming_notice_period = sub.current_period_start
    sub.save(update_fields=["upcoming_notice_period", "updated_at"])
    webhook_services.event_publish(organization=sub.organization, type="invoice.upcoming", object_type="subscription",
                                   object_id=sub.public_id, customer_id=customer_id, data=data)
    return True
