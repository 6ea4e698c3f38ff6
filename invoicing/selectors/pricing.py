"""Pricing-rule reads, and the rating of a quantity with a stored rule."""

from __future__ import annotations

from django.db.models import Case, QuerySet, Value, When

from billing_project.core.models import Organization
from invoicing import rating
from invoicing.models import Meter, PricingRule


def pricing_rule_list(*, organization: Organization, meter_id: str | None = None,
                      plan_id: str | None = None) -> QuerySet[PricingRule]:
    """Every active rule (several may share a meter and plan) in creation order; ``meter_id`` is the
    meter's public id; ``None`` = no filter."""
    qs = (PricingRule.objects.filter(organization=organization, deleted_at__isnull=True)
          .select_related("meter").order_by("id"))
    if meter_id is not None:
        qs = qs.filter(meter__public_id=meter_id)
    if plan_id is not None:
        qs = qs.filter(plan_id=plan_id)
    return qs


def pricing_rule_for(*, organization: Organization, meter: Meter, plan_id: str = "") -> PricingRule | None:
    """The rule that prices ``meter`` for a customer on ``plan_id``; ``None`` when the meter has none.

    Several active rules may exist for one (meter, plan) (as in the original), so the choice is one fixed
    rule: the NEWEST active rule whose ``plan_id`` is the customer's plan (newest = latest ``created_at``,
    ties → highest row id); without one, the newest active default rule (``plan_id`` ""). Deleted rules
    never count. One indexed query; the answer never depends on storage order."""
    return (PricingRule.objects.filter(organization=organization, meter=meter, plan_id__in={plan_id, ""},
                                       deleted_at__isnull=True)
            .annotate(for_plan=Case(When(plan_id=plan_id, then=Value(1)), default=Value(0)))
            .select_related("meter").order_by("-for_plan", "-created_at", "-id").first())


def rule_cost(rule: PricingRule, quantity: int) -> int:
    """Minor units owed for ``quantity`` under ``rule`` (``rating.line_cost``; rounded once, half-up)."""
    return rating.line_cost(
        model=rule.model, quantity=quantity, unit_price=rule.unit_price, unit_price_decimal=rule.unit_price_decimal,
        tiers=rating.tiers_parse(rule.tiers, model=rule.model) if rule.tiers else None,
        package_size=rule.package_size,
    )
