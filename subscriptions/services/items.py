"""Subscription items. References (``subscriptionId``, ``planId``, ``priceId``, ``meterId``) are stored as
sent and resolved only when an invoice is built (``billing.item_lines``). Every change emits
``subscription_item.*`` (and ``subscription.updated`` when the subscription exists)."""

from __future__ import annotations

from django.db import transaction

from billing_project.core.errors import ValidationError
from billing_project.core.models import Organization
from subscriptions import selectors
from subscriptions.models import SubscriptionItem
from subscriptions.services.render import item_data
from webhooks import services as webhook_services


def _publish(item: SubscriptionItem, type: str, previous: dict | None = None) -> None:
    webhook_services.event_publish(organization=item.organization, type=type, object_type="subscription_item",
                                   object_id=item.public_id, data=item_data(item), previous_data=previous)


def item_create(*, organization: Organization, subscription_id: str, price_id: str = "", plan_id: str = "",
                meter_id: str = "", quantity: int = 0, billing_mode: str = "", metadata: dict | None = None
                ) -> SubscriptionItem:
    """201 even when the references do not exist (yet). 400 ``subscriptionId is required``."""
    if not subscription_id:
        raise ValidationError("subscriptionId is required", param="subscriptionId")
    with transaction.atomic():
        item = SubscriptionItem.objects.create(
            organization=organization, subscription_ref=subscription_id, price_id=price_id, plan_id=plan_id,
            meter_id=meter_id, quantity=quantity, billing_mode=billing_mode or SubscriptionItem.MODE_LICENSED,
            metadata=metadata)
        _publish(item, "subscription_item.created")
    return item


def item_update(*, organization: Organization, item_id: str, quantity: int | None = None,
                metadata: dict | None = None) -> SubscriptionItem:
    """``quantity`` applies only when > 0; ``metadata`` replaces wholesale when sent. No proration."""
    with transaction.atomic():
        item = selectors.item_get(organization=organization, item_id=item_id)
        item = SubscriptionItem.objects.select_for_update().get(pk=item.pk)
        previous = item_data(item)
        if quantity is not None and quantity > 0:
            item.quantity = quantity
        if metadata is not None:
            item.metadata = metadata
        item.save()
        _publish(item, "subscription_item.updated", previous)
    return item


def item_delete(*, organization: Organization, item_id: str) -> str:
    with transaction.atomic():
        item = selectors.item_get(organization=organization, item_id=item_id)
        _publish(item, "subscription_item.deleted")
        public = item.public_id
        item.delete()
    return public
