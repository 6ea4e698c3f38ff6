"""Pricing-rule services (writes).

Invariants
- Several active rules may exist for one (meter, plan), as in the original; rating picks the newest
  (``invoicing.selectors.pricing.pricing_rule_for``) and the preview names the rule it used.
- A rule prices a meter of its own organization, in the meter's currency, and its fields fit its model
  (``rating.rule_check``): tier models carry checked tiers, ``package`` a size ≥ 1, no model carries a
  field it does not use.
- Rules are never updated in place: deleting sets ``deleted_at`` (invoices already built keep their
  figures); the next newest active rule then prices the pair.
- Every change publishes ``pricing_rule.created`` / ``pricing_rule.deleted`` in the same transaction.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing_project.core.errors import NotFound, ValidationError
from billing_project.core.models import Organization
from billing_project.core.money import currency_normalize
from billing_project.core.times import rfc3339
from invoicing import rating
from invoicing.models import Meter, PricingRule
from webhooks import services as webhook_services


def pricing_rule_data(rule: PricingRule) -> dict[str, Any]:
    """The API body of a rule (also the payload of its events)."""
    return {
        "id": rule.public_id,
        "meterId": rule.meter.public_id,
        "planId": rule.plan_id,
        "model": rule.model,
        "currency": rule.currency,
        "unitPrice": rule.unit_price,
        "unitPriceDecimal": rating.price_decimal_format(rule.unit_price_decimal),
        "packageSize": rule.package_size if rule.model == rating.PACKAGE else None,
        "tiers": rule.tiers,
        "createdAt": rfc3339(rule.created_at),
    }


def pricing_rule_create(*, organization: Organization, meter_id: str, plan_id: str = "",
                        model: str = rating.PER_UNIT, currency: str | None = None, unit_price: int = 0,
                        unit_price_decimal: Decimal | None = None, tiers: list[rating.Tier] | None = None,
                        package_size: int | None = None, metadata: dict[str, Any] | None = None) -> PricingRule:
    """Create an active rule for (meter, plan); from now on it is the newest, so it prices that pair.
    ``currency`` ``None`` → the meter's currency.

    No locking (an insert only). Not idempotent by itself (use the ``Idempotency-Key`` header: a replay
    creates another rule). Publishes ``pricing_rule.created``."""
    meter = Meter.objects.filter(organization=organization, public_id=meter_id).first()
    if meter is None:
        raise ValidationError(f"unknown meter {meter_id}", param="meterId", code="unknown_meter")
    currency = meter.currency if currency is None else currency_normalize(currency)
    if currency != meter.currency:
        raise ValidationError(f"currency {currency} does not match the meter's currency {meter.currency}",
                              param="currency", code="currency_mismatch")
    model = rating.model_normalize(model)
    rating.rule_check(model=model, unit_price=unit_price, unit_price_decimal=unit_price_decimal, tiers=tiers,
                       package_size=package_size)
    rule = PricingRule(
        organization=organization, meter=meter, plan_id=plan_id or "", model=model, currency=currency,
        unit_price=unit_price, unit_price_decimal=unit_price_decimal, package_size=package_size,
        tiers=rating.tiers_dump(tiers) if tiers is not None and model in rating.TIER_MODELS else None,
        metadata=metadata or {},
    )
    with transaction.atomic():
        rule.save()
        webhook_services.event_publish(organization=organization, type="pricing_rule.created",
                                       object_type="pricing_rule", object_id=rule.public_id,
                                       data=pricing_rule_data(rule))
    return rule


def pricing_rule_delete(*, organization: Organization, rule_id: str) -> PricingRule:
    """Soft-delete an active rule (sets ``deleted_at``).

    Locks the rule row, so of two concurrent deletes one succeeds and the other gets 404. Publishes
    ``pricing_rule.deleted``."""
    with transaction.atomic():
        rule = (PricingRule.objects.select_for_update(of=("self",)).select_related("meter")
                .filter(organization=organization, public_id=rule_id, deleted_at__isnull=True).first())
        if rule is None:
            raise NotFound("pricing rule not found", param="id")
        rule.deleted_at = timezone.now()
        rule.save(update_fields=["deleted_at", "updated_at"])
        webhook_services.event_publish(organization=organization, type="pricing_rule.deleted",
                                       object_type="pricing_rule", object_id=rule.public_id,
                                       data=pricing_rule_data(rule))
    return rule
