"""Pricing-rule reads, and the rating of a quantity with a stored rule."""

from __future__ import annotations

from django.db.models import QuerySet

from billing_project.core.models import Organization
from invoicing import pricing
from invoicing.models import Meter, PricingRule


def pricing_rule_list(*, organization: Organization, meter_id: str | None = None,
                      plan_id: str | None = None) -> QuerySet[PricingRule]:
    """Active rules in creation order; ``meter_id`` is the meter's public id; ``None`` = no filter."""
    qs = (PricingRule.objects.filter(organization=organization, deleted_at__isnull=True)
          .select_related("meter").order_by("id"))
    if meter_id is not None:
        qs = qs.filter(meter__public_id=meter_id)
    if plan_id is not None:
        qs = qs.filter(plan_id=plan_id)
    return qs


def pricing_rule_for(*, organization: Organization, meter: Meter, plan_id: str = "") -> PricingRule | None:
    """The rule that prices ``meter`` for a customer on ``plan_id``.

    The active rule whose ``plan_id`` equals the customer's plan wins; otherwise the active default rule
    (``plan_id`` ""); otherwise ``None``. The unique constraint leaves at most one of each, so the
    choice never depends on storage order (unlike the original's "last one wins")."""
    plans = {plan_id, ""}
    rules = {rule.plan_id: rule for rule in PricingRule.objects.filter(
        organization=organization, meter=meter, plan_id__in=plans, deleted_at__isnull=True)}
    return rules.get(plan_id) or rules.get("")


def rule_cost(rule: PricingRule, quantity: int) -> int:
    """Minor units owed for ``quantity`` under ``rule`` (``pricing.line_cost``; rounded once, half-up)."""
    return pricing.line_cost(
        model=rule.model, quantity=quantity, unit_price=rule.unit_price, unit_price_decimal=rule.unit_price_decimal,
        tiers=pricing.tiers_parse(rule.tiers, model=rule.model) if rule.tiers else None,
        package_size=rule.package_size,
    )
