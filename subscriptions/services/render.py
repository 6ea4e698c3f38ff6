"""Response objects of plans, subscriptions and items (the original's JSON field names)."""

from __future__ import annotations

from typing import Any

from billing_project.core.times import rfc3339
from subscriptions.models import Plan, Subscription, SubscriptionItem


def plan_snapshot(plan: Plan) -> dict[str, Any]:
    return {"id": plan.public_id, "name": plan.name, "price": plan.price, "currency": plan.currency,
            "interval": plan.interval, "intervalCount": plan.interval_count, "version": plan.version}


def plan_data(plan: Plan) -> dict[str, Any]:
    return {
        "id": plan.public_id, "slug": plan.slug, "name": plan.name, "description": plan.description,
        "price": plan.price, "currency": plan.currency, "interval": plan.interval,
        "intervalCount": plan.interval_count, "trialPeriodDays": plan.trial_period_days, "version": plan.version,
        "active": plan.archived_at is None, "metadata": plan.metadata or {},
        "createdAt": rfc3339(plan.created_at), "updatedAt": rfc3339(plan.updated_at),
    }


def subscription_data(sub: Subscription) -> dict[str, Any]:
    snap = sub.plan_snapshot
    data: dict[str, Any] = {
        "id": sub.public_id, "userId": sub.customer.customer_id, "planId": sub.plan.public_id, "status": sub.status,
        "quantity": sub.quantity, "currentPeriodStart": rfc3339(sub.current_period_start),
        "currentPeriodEnd": rfc3339(sub.current_period_end), "cancelAtPeriodEnd": sub.cancel_at_period_end,
        "providerType": sub.provider_type, "defaultPaymentMethod": sub.default_payment_method,
        "plan": {"id": snap.get("id", sub.plan.public_id), "name": snap.get("name", ""),
                 "price": snap.get("price", 0), "currency": snap.get("currency", "usd"),
                 "interval": snap.get("interval", "month")},
        "metadata": sub.metadata or {},
        "createdAt": rfc3339(sub.created_at), "updatedAt": rfc3339(sub.updated_at),
    }
    if sub.test_clock_id:
        data["testClock"] = sub.test_clock.public_id
    for key, value in (("trialStart", sub.trial_start), ("trialEnd", sub.trial_end),
                       ("canceledAt", sub.canceled_at), ("endedAt", sub.ended_at)):
        if value is not None:
            data[key] = rfc3339(value)
    return data


def item_data(item: SubscriptionItem) -> dict[str, Any]:
    data: dict[str, Any] = {"id": item.public_id, "subscriptionId": item.subscription_ref,
                            "billingMode": item.billing_mode, "quantity": item.quantity,
                            "created": rfc3339(item.created_at)}
    for key, value in (("priceId", item.price_id), ("planId", item.plan_id), ("meterId", item.meter_id)):
        if value:
            data[key] = value
    if item.metadata:
        data["metadata"] = item.metadata
    return data
