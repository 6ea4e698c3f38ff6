"""Plans (we own them; the original read them from elsewhere).

Invariants: a plan's public id never changes; a change of price, currency or interval writes a new
``PlanVersion`` (version + 1) — running subscriptions keep the snapshot they took; DELETE archives (no new
subscriptions, existing ones keep running). Every change emits ``plan.*``."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.errors import ValidationError
from billing_project.core.models import Organization
from subscriptions import selectors
from subscriptions.models import Plan, PlanVersion
from subscriptions.services.render import plan_data
from webhooks import services as webhook_services

PRICED_FIELDS = ("price", "currency", "interval", "interval_count")


def _publish(plan: Plan, type: str, previous: dict[str, Any] | None = None) -> None:
    webhook_services.event_publish(organization=plan.organization, type=type, object_type="plan",
                                   object_id=plan.public_id, data=plan_data(plan), previous_data=previous)


def _version_write(plan: Plan) -> None:
    PlanVersion.objects.create(plan=plan, version=plan.version, price=plan.price, currency=plan.currency,
                               interval=plan.interval, interval_count=plan.interval_count)


def plan_create(*, organization: Organization, name: str, price: int, currency: str = "usd", slug: str = "",
                description: str = "", interval: str = "month", interval_count: int = 1,
                trial_period_days: int = 0, metadata: dict | None = None) -> Plan:
    """A new plan at version 1. Emits ``plan.created``."""
    if not name:
        raise ValidationError("name is required", param="name")
    if price < 0:
        raise ValidationError("price must not be negative", param="price")
    with transaction.atomic():
        plan = Plan.objects.create(organization=organization, name=name, slug=slug, description=description,
                                   price=price, currency=currency, interval=interval or "month",
                                   interval_count=interval_count, trial_period_days=trial_period_days,
                                   metadata=metadata or {})
        _version_write(plan)
        _publish(plan, "plan.created")
    return plan


def plan_update(*, organization: Organization, plan_id: str, changes: dict[str, Any], actor: str = "") -> Plan:
    """Apply ``changes`` (model field names); a priced field that changes writes a new version.
    Emits ``plan.updated``."""
    if "price" in changes and changes["price"] < 0:
        raise ValidationError("price must not be negative", param="price")
    if "name" in changes and not changes["name"]:
        raise ValidationError("name is required", param="name")
    with transaction.atomic():
        plan = selectors.plan_get(organization=organization, plan_id=plan_id)
        plan = Plan.objects.select_for_update().get(pk=plan.pk)
        previous = plan_data(plan)
        repriced = any(field in changes and changes[field] != getattr(plan, field) for field in PRICED_FIELDS)
        for field, value in changes.items():
            setattr(plan, field, value)
        if repriced:
            plan.version += 1
        plan.save()
        if repriced:
            _version_write(plan)
        core_services.audit_record(organization=organization, actor=actor, action="plan.update",
                                   object_type="plan", object_id=plan.public_id, data={"repriced": repriced})
        _publish(plan, "plan.updated", previous)
    return plan


def plan_archive(*, organization: Organization, plan_id: str, actor: str = "") -> Plan:
    """Archive: no new subscriptions on it; running ones continue. Idempotent. Emits ``plan.archived``."""
    with transaction.atomic():
        plan = selectors.plan_get(organization=organization, plan_id=plan_id)
        plan = Plan.objects.select_for_update().get(pk=plan.pk)
        if plan.archived_at is None:
            plan.archived_at = timezone.now()
            plan.save(update_fields=["archived_at", "updated_at"])
            core_services.audit_record(organization=organization, actor=actor, action="plan.archive",
                                       object_type="plan", object_id=plan.public_id)
            _publish(plan, "plan.archived")
    return plan
