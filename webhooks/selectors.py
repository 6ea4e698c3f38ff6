from __future__ import annotations

from django.db.models import QuerySet

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from webhooks.models import BillingEvent, Delivery, WebhookEndpoint


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


def endpoint_list(*, organization: Organization) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(organization=organization, deleted_at__isnull=True).order_by("-pk")


def delivery_list(*, organization: Organization, endpoint: WebhookEndpoint | None = None,
                  status: str | None = None) -> QuerySet[Delivery]:
    qs = Delivery.objects.filter(organization=organization).select_related("event", "endpoint")
    if endpoint is not None:
        qs = qs.filter(endpoint=endpoint)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-pk")


def delivery_get(*, organization: Organization, delivery_id: str) -> Delivery:
    delivery = (Delivery.objects.filter(organization=organization, public_id=delivery_id)
                .select_related("event", "endpoint").prefetch_related("attempts").first())
    if delivery is None:
        raise NotFound("webhook delivery not found", param="id")
    return delivery
