"""Reads of plans, subscriptions and items, always scoped to the caller's organization."""

from __future__ import annotations

from django.db.models import QuerySet

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from subscriptions.models import Plan, Subscription, SubscriptionItem


def plan_find(*, organization: Organization, plan_id: str) -> Plan | None:
    """The plan with public id ``plan_id`` (archived ones included: running subscriptions keep them), or None."""
    if not plan_id:
        return None
    return Plan.objects.filter(organization=organization, public_id=plan_id).first()


def plan_get(*, organization: Organization, plan_id: str, message: str = "plan not found",
             param: str = "id") -> Plan:
    plan = plan_find(organization=organization, plan_id=plan_id)
    if plan is None:
        raise NotFound(message, param=param)
    return plan


def plan_list(*, organization: Organization, include_archived: bool = False) -> QuerySet[Plan]:
    qs = Plan.objects.filter(organization=organization)
    return qs if include_archived else qs.filter(archived_at__isnull=True)


def subscription_find(*, organization: Organization, subscription_id: str) -> Subscription | None:
    return (Subscription.objects.select_related("customer", "plan", "test_clock")
            .filter(organization=organization, public_id=subscription_id).first())


def subscription_get(*, organization: Organization, subscription_id: str) -> Subscription:
    sub = subscription_find(organization=organization, subscription_id=subscription_id)
    if sub is None:
        raise NotFound("subscription not found", param="id")
    return sub


def subscription_now(sub: Subscription, now=None):
    """``now`` when given, else the subscription's time: its test clock's, or the real one."""
    from django.utils import timezone  # noqa: PLC0415

    if now is not None:
        return now
    return sub.test_clock.frozen_time if sub.test_clock_id else timezone.now()


def test_clock_get(*, organization: Organization, clock_id: str):
    from subscriptions.models import TestClock  # noqa: PLC0415

    clock = TestClock.objects.filter(organization=organization, public_id=clock_id).first()
    if clock is None:
        raise NotFound("test clock not found", param="id")
    return clock


def subscription_list(*, organization: Organization, customer_id: str = "", status: str = "") -> QuerySet[Subscription]:
    qs = Subscription.objects.select_related("customer", "plan", "test_clock").filter(organization=organization)
    if customer_id:
        qs = qs.filter(customer__customer_id=customer_id)
    if status:
        qs = qs.filter(status=status)
    return qs


def item_get(*, organization: Organization, item_id: str) -> SubscriptionItem:
    item = SubscriptionItem.objects.filter(organization=organization, public_id=item_id).first()
    if item is None:
        raise NotFound("subscription item not found", param="id")
    return item


def item_list(*, organization: Organization, subscription_id: str = "") -> QuerySet[SubscriptionItem]:
    qs = SubscriptionItem.objects.filter(organization=organization)
    if subscription_id:
        qs = qs.filter(subscription_ref=subscription_id)
    return qs


def upcoming_lines(*, organization: Organization, customer_id: str, subscription_id: str, now=None):
    """The lines the subscription's next renewal would bill (invoice line objects), computed without
    writing or locking anything; ``None`` when the customer has no such subscription. Registered with
    ``invoicing.selectors.upcoming`` by the app config (invoicing cannot import subscriptions)."""
    from subscriptions.services import billing  # noqa: PLC0415 — billing does not import selectors

    sub = subscription_find(organization=organization, subscription_id=subscription_id)
    if sub is None or sub.customer.customer_id != customer_id:
        return None
    if sub.status == Subscription.STATUS_CANCELED:
        return []
    now = subscription_now(sub, now)
    draft = billing.Draft()
    billing.pending_lines(sub, draft)
    start, end = sub.current_period_start, sub.current_period_end
    segment_start = max(sub.segment_start, start)
    amount = billing.segment_close(sub, at=end)  # on this unsaved copy only
    if amount or segment_start == start:
        draft.lines.insert(0, billing.plan_line(sub, amount=amount, start=segment_start, end=end))
    billing.item_lines(sub, draft, start=start, end=end, now=now)
    return [billing.line_data(line) for line in draft.lines]
