"""Services and selectors: pricing_rule_create / pricing_rule_delete, pricing_rule_for, rule_cost."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing_project.core.errors import NotFound, ValidationError
from invoicing.models import Meter, PricingRule
from invoicing.rating import Tier
from invoicing.selectors import pricing as selectors
from invoicing.services import pricing as services
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db


def meter_for(org, *, event_name: str = "input_tokens", currency: str = "usd") -> Meter:
    return Meter.objects.create(organization=org, name=event_name, event_name=event_name, currency=currency)


@pytest.fixture
def meter(org_acme) -> Meter:
    return meter_for(org_acme)


def make(org, meter, **kwargs) -> PricingRule:
    fields = {"plan_id": "", "model": "per_unit", "currency": None, "unit_price": 1, "unit_price_decimal": None,
              "tiers": None, "package_size": None}
    fields.update(kwargs)
    return services.pricing_rule_create(organization=org, meter_id=meter.public_id, **fields)


# --- pricing_rule_create ----------------------------------------------------------------------------

def test_create_stores_the_rule_and_publishes_an_event(org_acme, meter):
    rule = make(org_acme, meter, model="graduated", unit_price=0, metadata={"source": "test"},
                tiers=[Tier(up_to=100, price=2), Tier(up_to=0, price_decimal=Decimal("0.5"), flat=10)])
    rule.refresh_from_db()
    assert rule.public_id.startswith("prc_")
    assert (rule.meter, rule.plan_id, rule.model, rule.currency) == (meter, "", "graduated", "usd")
    assert rule.tiers == [{"upTo": 100, "price": 2, "flat": 0},
                          {"upTo": 0, "price": 0, "flat": 10, "priceDecimal": "0.5"}]
    assert rule.metadata == {"source": "test"} and rule.deleted_at is None
    event = BillingEvent.objects.get(type="pricing_rule.created")
    assert (event.organization, event.object_type, event.object_id) == (org_acme, "pricing_rule", rule.public_id)
    assert event.data == services.pricing_rule_data(rule)
    assert event.data["model"] == "graduated" and event.data["meterId"] == meter.public_id


def test_create_checks_the_meter_the_currency_and_the_model(org_acme, org_globex, meter):
    with pytest.raises(ValidationError) as exc:
        services.pricing_rule_create(organization=org_globex, meter_id=meter.public_id)
    assert (exc.value.message, exc.value.param) == (f"unknown meter {meter.public_id}", "meterId")
    with pytest.raises(ValidationError) as exc:
        make(org_acme, meter, currency="EUR")
    assert exc.value.param == "currency"
    with pytest.raises(ValidationError) as exc:
        make(org_acme, meter, model="unknown")
    assert (exc.value.message, exc.value.param) == ("unknown pricing model unknown", "model")
    with pytest.raises(ValidationError) as exc:
        make(org_acme, meter, model="package", package_size=None)
    assert exc.value.param == "packageSize"
    assert make(org_acme, meter, currency="USD", model="PACKAGE", package_size=3).model == "package"
    assert not BillingEvent.objects.filter(type="pricing_rule.created").exclude(
        object_id=PricingRule.objects.get().public_id).exists()


def test_several_active_rules_for_one_meter_and_plan_are_allowed(org_acme, meter):
    """Item 7: as in the original, a second rule for the same (meter, plan) is created (no 409)."""
    first = make(org_acme, meter)
    second = make(org_acme, meter, unit_price=2)
    third = make(org_acme, meter, plan_id="pro", unit_price=3)
    fourth = make(org_acme, meter, plan_id="pro", unit_price=4)
    assert len({first.public_id, second.public_id, third.public_id, fourth.public_id}) == 4
    assert PricingRule.objects.filter(meter=meter, deleted_at__isnull=True).count() == 4
    assert BillingEvent.objects.filter(type="pricing_rule.created").count() == 4


# --- pricing_rule_delete ----------------------------------------------------------------------------

def test_delete_is_soft_publishes_and_frees_the_slot(org_acme, meter):
    rule = make(org_acme, meter)
    deleted = services.pricing_rule_delete(organization=org_acme, rule_id=rule.public_id)
    assert deleted.deleted_at is not None
    assert PricingRule.objects.filter(pk=rule.pk).exists()
    event = BillingEvent.objects.get(type="pricing_rule.deleted")
    assert event.object_id == rule.public_id and event.data["id"] == rule.public_id
    assert make(org_acme, meter, unit_price=5).unit_price == 5


def test_delete_unknown_other_tenant_or_twice_is_not_found(org_acme, org_globex, meter):
    rule = make(org_acme, meter)
    for org, rule_id in ((org_acme, "prc_nope"), (org_globex, rule.public_id)):
        with pytest.raises(NotFound) as exc:
            services.pricing_rule_delete(organization=org, rule_id=rule_id)
        assert (exc.value.message, exc.value.status) == ("pricing rule not found", 404)
    services.pricing_rule_delete(organization=org_acme, rule_id=rule.public_id)
    with pytest.raises(NotFound):
        services.pricing_rule_delete(organization=org_acme, rule_id=rule.public_id)
    assert BillingEvent.objects.filter(type="pricing_rule.deleted").count() == 1


# --- selectors --------------------------------------------------------------------------------------

def test_pricing_rule_for_prefers_the_plans_rule_over_the_default(org_acme, meter):
    default = make(org_acme, meter, unit_price=10)
    pro = make(org_acme, meter, plan_id="pro", unit_price=7)
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter, plan_id="pro") == pro
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter, plan_id="free") == default
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter) == default


def test_pricing_rule_for_ignores_deleted_rules(org_acme, meter):
    default = make(org_acme, meter, unit_price=10)
    pro = make(org_acme, meter, plan_id="pro", unit_price=7)
    services.pricing_rule_delete(organization=org_acme, rule_id=pro.public_id)
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter, plan_id="pro") == default
    services.pricing_rule_delete(organization=org_acme, rule_id=default.public_id)
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter, plan_id="pro") is None
    replacement = make(org_acme, meter, plan_id="pro", unit_price=8)
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter, plan_id="pro") == replacement


def test_pricing_rule_for_a_plan_only_rule_does_not_price_other_plans(org_acme, meter):
    make(org_acme, meter, plan_id="pro")
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter, plan_id="free") is None
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter) is None


def test_pricing_rule_for_takes_the_newest_active_rule_of_the_plan_else_the_newest_default(org_acme, meter):
    """Item 7: one deterministic choice among several rules — newest (created_at, then id) wins."""
    old_default = make(org_acme, meter, unit_price=10)
    new_default = make(org_acme, meter, unit_price=11)
    old_pro = make(org_acme, meter, plan_id="pro", unit_price=7)
    new_pro = make(org_acme, meter, plan_id="pro", unit_price=8)
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter, plan_id="pro") == new_pro
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter) == new_default
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter, plan_id="free") == new_default
    # A newer default never beats an older rule of the customer's plan.
    newest_default = make(org_acme, meter, unit_price=12)
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter, plan_id="pro") == new_pro
    # Deleting the newest falls back to the next newest.
    services.pricing_rule_delete(organization=org_acme, rule_id=new_pro.public_id)
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter, plan_id="pro") == old_pro
    services.pricing_rule_delete(organization=org_acme, rule_id=old_pro.public_id)
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter, plan_id="pro") == newest_default
    # Same created_at (one transaction's clock): the higher row id is the newer.
    PricingRule.objects.filter(pk__in=[old_default.pk, new_default.pk, newest_default.pk]).update(
        created_at=old_default.created_at)
    assert selectors.pricing_rule_for(organization=org_acme, meter=meter) == newest_default


def test_pricing_rule_for_is_scoped_to_the_organization_and_meter(org_acme, org_globex, meter):
    make(org_acme, meter)
    other = meter_for(org_acme, event_name="output_tokens")
    assert selectors.pricing_rule_for(organization=org_acme, meter=other) is None
    assert selectors.pricing_rule_for(organization=org_globex, meter=meter) is None


def test_pricing_rule_list_filters(org_acme, org_globex, meter):
    other = meter_for(org_acme, event_name="output_tokens")
    a = make(org_acme, meter)
    b = make(org_acme, meter, plan_id="pro")
    c = make(org_acme, other)
    services.pricing_rule_delete(organization=org_acme, rule_id=c.public_id)
    assert list(selectors.pricing_rule_list(organization=org_acme)) == [a, b]
    assert list(selectors.pricing_rule_list(organization=org_acme, meter_id=other.public_id)) == []
    assert list(selectors.pricing_rule_list(organization=org_acme, plan_id="")) == [a]
    assert list(selectors.pricing_rule_list(organization=org_acme, meter_id=meter.public_id, plan_id="pro")) == [b]
    assert list(selectors.pricing_rule_list(organization=org_globex)) == []


@pytest.mark.parametrize("kwargs,quantity,cost", [
    ({"unit_price": 2}, 100, 200),
    ({"unit_price": 0, "unit_price_decimal": Decimal("0.000002")}, 1_000_000, 2),
    ({"model": "tiered", "unit_price": 0,
      "tiers": [Tier(100, 10, 0), Tier(500, 5, 0), Tier(0, 1, 100)]}, 1600, 4600),
    ({"model": "volume", "unit_price": 0, "tiers": [Tier(100, 10, 0), Tier(1000, 5, 0), Tier(0, 1, 500)]}, 200, 1000),
    ({"model": "graduated", "unit_price": 0, "tiers": [Tier(100, 10, 0), Tier(0, 1, 100)]}, 150, 1150),
    ({"model": "tiered", "unit_price": 0, "tiers": None}, 100, 0),
    ({"model": "package", "unit_price": 50, "package_size": 100}, 101, 100),
])
def test_rule_cost_prices_a_stored_rule(org_acme, meter, kwargs, quantity, cost):
    rule = make(org_acme, meter, **kwargs)
    rule = PricingRule.objects.get(pk=rule.pk)  # as loaded from the database: Decimal(40, 12), JSON tiers
    assert selectors.rule_cost(rule, quantity) == cost
