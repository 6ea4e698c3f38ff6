from __future__ import annotations

from django.db.models import QuerySet

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from webhooks.models import BillingEvent


def event_list(*, organization: Organization, type: str | None = None,
               object_id: str | None = None) -> QuerySet[BillingEvent]:
    qs = BillingEvent.objects.filter(organization=organization)
    if type:
        qs = qs.filter(type=type)
    if object_id:
        qs = qs.filter(object_id=object_id)
    return qs.order_by("-pk")


def event_get(*, organization: Organization, event_id: str) -> BillingEvent:
    event = BillingEvent.objects.filter(organization=organization, public_id=event_id).first()
    if event is None:
        raise NotFound("billing event not found", param="id")
    return event
