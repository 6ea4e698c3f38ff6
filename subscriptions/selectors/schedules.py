"""Reads of subscription schedules, scoped to the caller's organization (never writes, never locks)."""

from __future__ import annotations

from django.db.models import QuerySet

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from subscriptions.models import SubscriptionSchedule


def schedule_get(*, organization: Organization, schedule_id: str) -> SubscriptionSchedule:
    """The schedule, or 404 ``subscription schedule not found`` (another organization's included)."""
    schedule = (SubscriptionSchedule.objects.select_related("organization", "customer", "test_clock")
                .filter(organization=organization, public_id=schedule_id).first())
    if schedule is None:
        raise NotFound("subscription schedule not found", param="id")
    return schedule


def schedule_list(*, organization: Organization, customer_id: str = "", status: str = ""
                  ) -> QuerySet[SubscriptionSchedule]:
    """Schedules of the organization, optionally of one customer and/or in one status."""
    queryset = SubscriptionSchedule.objects.select_related("organization", "customer", "test_clock").filter(
        organization=organization)
    if customer_id:
        queryset = queryset.filter(customer__customer_id=customer_id)
    if status:
        queryset = queryset.filter(status=status)
    return queryset
