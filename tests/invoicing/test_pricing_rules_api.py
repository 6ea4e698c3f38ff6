"""API: POST /pricing-rules, GET /pricing-rules, DELETE /pricing-rules/:id (tests.md 28–33)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from invoicing.models import Meter, PricingRule
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

RULE_KEYS = {"id", "meterId", "planId", "model", "currency", "unitPrice", "unitPriceDecimal", "packageSize", "tiers",
             "createdAt"}


def meter_for(org, *, event_name: str = "input_tokens", currency: str = "usd") -> Meter:
    return Meter.objects.create(organization=org, name=event_name.replace("_", " ").title(), event_name=event_name,
                                currency=currency)


@pytest.fixture
def meter(org_acme) -> Meter:
    return meter_for(org_acme)


def create(api, meter_id: str, **fields) -> dict:
    r = api.post("/pricing-rules", {"meterId": meter_id, **fields})
    assert r.status_code == 201, r.content
    return r.json()


def delete(api, rule_id: str):
    return api.delete(f"/pricing-rules/{rule_id}")


def listing(api, **params) -> dict:
    r = api.get("/pricing-rules", params)
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"rules", "count"}
    assert body["count"] == len(body["rules"])
    return body


# --- POST /pricing-rules ----------------------------------------------------------------------------

def test_create_per_unit_rule(api, meter):  # tests.md 28
    r = api.post("/pricing-rules", {"meterId": meter.public_id, "model": "per_unit", "currency": "usd",
                                    "unitPrice": 1})
    assert r.status_code == 201, r.content
    rule = r.json()
    assert set(rule) == RULE_KEYS
    assert rule["id"].startswith("prc_")
    assert rule["meterId"] == meter.public_id
    assert rule["model"] == "per_unit"
    assert rule["unitPrice"] == 1
    assert rule["planId"] == "" and rule["currency"] == "usd"
    assert rule["unitPriceDecimal"] is None and rule["packageSize"] is None and rule["tiers"] is None
    created = datetime.fromisoformat(rule["createdAt"])
    assert rule["createdAt"].endswith("Z") and abs(created - datetime.now(UTC)) < timedelta(minutes=1)
    stored = PricingRule.objects.get(public_id=rule["id"])
    assert stored.meter == meter and stored.unit_price == 1 and stored.deleted_at is None


def test_create_defaults_model_per_unit_and_the_meters_currency(api, org_acme):
    eur = meter_for(org_acme, event_name="api_calls", currency="eur")
    rule = create(api, eur.public_id)
    assert (rule["model"], rule["currency"], rule["unitPrice"], rule["planId"]) == ("per_unit", "eur", 0, "")
    assert create(api, eur.public_id, planId="pro", currency="EUR", model="")["currency"] == "eur"


def test_create_tiered_lower_cases_the_model_and_echoes_tiers(api, meter):
    rule = create(api, meter.public_id, model="TIERED",
                  tiers=[{"upTo": 100, "price": 10}, {"upTo": 500, "price": 5, "flat": 0}, {"price": 1, "flat": 100}])
    assert rule["model"] == "tiered"
    assert rule["tiers"] == [{"upTo": 100, "price": 10, "flat": 0}, {"upTo": 500, "price": 5, "flat": 0},
                             {"upTo": 0, "price": 1, "flat": 100}]
    assert rule["unitPriceDecimal"] is None and rule["packageSize"] is None


def test_create_tiered_with_an_empty_tier_list(api, meter):
    assert create(api, meter.public_id, model="volume", tiers=[])["tiers"] == []
    assert create(api, meter.public_id, model="tiered", planId="p2")["tiers"] is None


def test_create_graduated_with_sub_cent_tier_prices(api, meter):
    rule = create(api, meter.public_id, model="graduated",
                  tiers=[{"upTo": 1_000_000, "priceDecimal": "0.000003000"}, {"upTo": 0, "priceDecimal": "0.0000015"}])
    assert rule["tiers"] == [{"upTo": 1_000_000, "price": 0, "flat": 0, "priceDecimal": "0.000003"},
                             {"upTo": 0, "price": 0, "flat": 0, "priceDecimal": "0.0000015"}]
    listed = listing(api)["rules"][0]
    assert listed["tiers"] == rule["tiers"]


def test_create_with_a_decimal_unit_price(api, meter):
    rule = create(api, meter.public_id, unitPriceDecimal="0.000002000")
    assert rule["unitPriceDecimal"] == "0.000002" and rule["unitPrice"] == 0
    assert listing(api)["rules"][0]["unitPriceDecimal"] == "0.000002"
    assert PricingRule.objects.get(public_id=rule["id"]).unit_price_decimal == Decimal("0.000002")


def test_create_package(api, meter):
    rule = create(api, meter.public_id, model="package", unitPrice=50, packageSize=1000)
    assert (rule["model"], rule["unitPrice"], rule["packageSize"]) == ("package", 50, 1000)


@pytest.mark.parametrize("body", [{}, {"meterId": ""}, {"meterId": None}, {"meterId": "  "}])
def test_create_without_meter_id(api, body):  # tests.md 29
    assert_error(api.post("/pricing-rules", {"unitPrice": 1, **body}), 400, "meterId is required", param="meterId")


def test_create_for_an_unknown_meter(api):
    assert_error(api.post("/pricing-rules", {"meterId": "mtr_nope"}), 400, "unknown meter mtr_nope", param="meterId")


def test_create_in_another_currency_than_the_meters(api, meter):
    err = assert_error(api.post("/pricing-rules", {"meterId": meter.public_id, "currency": "eur"}), 400,
                       param="currency")
    assert err["message"] == "currency eur does not match the meter's currency usd"
    assert_error(api.post("/pricing-rules", {"meterId": meter.public_id, "currency": "xyz"}), 400,
                 "unknown currency: xyz", param="currency")


INVALID_BODIES = [
    ({"model": "flat"}, "unknown pricing model flat", "model"),
    ({"model": "Unknown"}, "unknown pricing model Unknown", "model"),
    ({"model": 5}, "invalid request body: model must be a string", "model"),
    ({"unitPrice": "1"}, "invalid request body: unitPrice must be an integer", "unitPrice"),
    ({"unitPrice": 1.5}, "invalid request body: unitPrice must be an integer", "unitPrice"),
    ({"unitPrice": 2**63}, "invalid request body: unitPrice must fit in a signed 64-bit integer", "unitPrice"),
    ({"unitPrice": -1}, "invalid request body: unitPrice must be at least 0", "unitPrice"),
    ({"unitPriceDecimal": 0.5}, "invalid request body: unitPriceDecimal must be a string", "unitPriceDecimal"),
    ({"unitPriceDecimal": "0.0000000000001"},
     "invalid request body: unitPriceDecimal must have at most 12 decimal places", "unitPriceDecimal"),
    ({"unitPriceDecimal": "cheap"},
     "invalid request body: unitPriceDecimal must be a decimal string with at most 12 decimal places",
     "unitPriceDecimal"),
    ({"unitPriceDecimal": "-0.5"}, "unitPriceDecimal must not be negative", "unitPriceDecimal"),
    ({"unitPrice": 1, "unitPriceDecimal": "0.5"}, "set unitPrice or unitPriceDecimal, not both", "unitPriceDecimal"),
    ({"planId": 7}, "invalid request body: planId must be a string", "planId"),
    ({"model": "package", "unitPrice": 5}, "packageSize must be at least 1 for the package model", "packageSize"),
    ({"model": "package", "packageSize": 0}, "packageSize must be at least 1 for the package model", "packageSize"),
    ({"model": "package", "packageSize": "10"}, "invalid request body: packageSize must be an integer",
     "packageSize"),
    ({"packageSize": 10}, "packageSize is not used by the per_unit model", "packageSize"),
    ({"tiers": [{"upTo": 0, "price": 1}]}, "tiers are not used by the per_unit model", "tiers"),
    ({"model": "tiered", "unitPrice": 3, "tiers": []}, "unitPrice is not used by the tiered model; price the tiers "
                                                       "instead", "unitPrice"),
    ({"model": "graduated"}, "the graduated model needs at least one tier", "tiers"),
    ({"model": "graduated", "tiers": []}, "the graduated model needs at least one tier", "tiers"),
    ({"model": "tiered", "tiers": {"upTo": 1}}, "invalid request body: tiers must be an array", "tiers"),
    ({"model": "tiered", "tiers": [{"upTo": 0}, {"upTo": 10}]},
     "tiers[0].upTo: only the last tier may be unbounded (upTo 0)", "tiers[0].upTo"),
    ({"model": "graduated", "tiers": [{"upTo": 100}, {"upTo": 50}, {"upTo": 0}]},
     "tiers[1].upTo must be greater than the previous tier's upTo (100)", "tiers[1].upTo"),
    ({"model": "graduated", "tiers": [{"upTo": 100}]},
     "tiers[0].upTo: the last graduated tier must be unbounded (upTo 0)", "tiers[0].upTo"),
    ({"model": "volume", "tiers": [{"upTo": 10}, {"price": -1}]}, "tiers[1].price must not be negative",
     "tiers[1].price"),
    ({"model": "volume", "tiers": [{"flat": "1"}]}, "invalid request body: tiers[0].flat must be an integer",
     "tiers[0].flat"),
    ({"model": "tiered", "tiers": [{"priceDecimal": "0.1234567890123"}]},
     "invalid request body: tiers[0].priceDecimal must have at most 12 decimal places", "tiers[0].priceDecimal"),
    ({"model": "tiered", "tiers": [{"up_to": 10}]}, "invalid request body: tiers[0] has an unknown field up_to",
     "tiers[0].up_to"),
]


@pytest.mark.parametrize("fields,message,param", INVALID_BODIES)
def test_create_refuses_invalid_fields_naming_them(api, meter, fields, message, param):
    r = api.post("/pricing-rules", {"meterId": meter.public_id, **fields})
    assert_error(r, 400, message, param=param)
    assert not PricingRule.objects.exists()


@pytest.mark.parametrize("raw", ["", "[]", "{bad json", '"string"'])
def test_create_with_an_unparseable_body(api, raw):
    assert_error(api.post("/pricing-rules", raw=raw), 400, "invalid request body")


def test_several_active_rules_for_the_same_meter_and_plan_are_created_and_listed(api, meter):
    """Item 7: the original allows several rules per (meter, plan); the list returns them all."""
    first = create(api, meter.public_id, unitPrice=1)
    second = create(api, meter.public_id, unitPrice=2)
    pro_a = create(api, meter.public_id, planId="pro", unitPrice=3)
    pro_b = create(api, meter.public_id, planId="pro", unitPrice=4)
    body = listing(api, meterId=meter.public_id)
    assert body["count"] == 4
    assert [r["id"] for r in body["rules"]] == [first["id"], second["id"], pro_a["id"], pro_b["id"]]
    assert [r["id"] for r in listing(api, planId="pro")["rules"]] == [pro_a["id"], pro_b["id"]]


def test_the_same_plan_on_another_meter_is_fine(api, org_acme, meter):
    other = meter_for(org_acme, event_name="output_tokens")
    create(api, meter.public_id, planId="pro")
    create(api, other.public_id, planId="pro")
    assert listing(api, planId="pro")["count"] == 2


def test_delete_then_create_again(api, meter):
    first = create(api, meter.public_id, unitPrice=1)
    assert delete(api, first["id"]).status_code == 200
    second = create(api, meter.public_id, unitPrice=2)
    assert second["id"] != first["id"]
    assert [r["id"] for r in listing(api)["rules"]] == [second["id"]]


# --- GET /pricing-rules -----------------------------------------------------------------------------

def test_list_returns_active_rules_in_creation_order_with_the_model_string(api, org_acme, meter):  # tests.md 30
    other = meter_for(org_acme, event_name="output_tokens")
    a = create(api, meter.public_id, unitPrice=1)
    b = create(api, other.public_id, model="volume", tiers=[{"upTo": 0, "price": 2}])
    c = create(api, meter.public_id, planId="pro", model="package", unitPrice=5, packageSize=10)
    body = listing(api)
    assert body["count"] == 3
    assert [r["id"] for r in body["rules"]] == [a["id"], b["id"], c["id"]]
    assert [r["model"] for r in body["rules"]] == ["per_unit", "volume", "package"]  # weakness 12: a string
    assert body["rules"][0] == a and body["rules"][2] == c
    assert all(set(r) == RULE_KEYS for r in body["rules"])


def test_list_filters_by_meter_and_plan(api, org_acme, meter):  # tests.md 31
    other = meter_for(org_acme, event_name="output_tokens")
    create(api, meter.public_id)
    create(api, meter.public_id, planId="pro")
    create(api, other.public_id)
    by_meter = listing(api, meterId=meter.public_id)
    assert by_meter["count"] == 2 and {r["meterId"] for r in by_meter["rules"]} == {meter.public_id}
    assert listing(api, meterId=f"  {other.public_id} ")["count"] == 1
    assert listing(api, planId="pro")["rules"][0]["planId"] == "pro"
    assert listing(api, meterId=meter.public_id, planId="pro")["count"] == 1
    assert listing(api, meterId=other.public_id, planId="pro")["count"] == 0
    assert listing(api, meterId="mtr_unknown")["count"] == 0
    assert listing(api, meterId="", planId="")["count"] == 3


def test_list_when_empty(api):
    assert listing(api) == {"rules": [], "count": 0}


def test_list_leaves_out_deleted_rules(api, meter):
    rule = create(api, meter.public_id)
    delete(api, rule["id"])
    assert listing(api)["count"] == 0


# --- DELETE /pricing-rules/:id ----------------------------------------------------------------------

def test_delete(api, meter):  # tests.md 32
    rule = create(api, meter.public_id, unitPrice=99)
    r = delete(api, rule["id"])
    assert r.status_code == 200, r.content
    assert r.json() == {"id": rule["id"], "deleted": True}
    assert PricingRule.objects.get(public_id=rule["id"]).deleted_at is not None  # kept for history


def test_delete_unknown_or_already_deleted(api, meter):  # tests.md 33
    assert_error(delete(api, "prc_nonexistent"), 404, "pricing rule not found", param="id")
    rule = create(api, meter.public_id)
    delete(api, rule["id"])
    assert_error(delete(api, rule["id"]), 404, "pricing rule not found")


# --- events, auth, tenants --------------------------------------------------------------------------

def test_create_and_delete_publish_events(api, meter):
    rule = create(api, meter.public_id, unitPrice=3)
    delete(api, rule["id"])
    r = api.get("/events", {"type": "pricing_rule.created"})
    assert r.status_code == 200, r.content
    assert rule["id"] in r.content.decode()
    assert rule["id"] in api.get("/events", {"type": "pricing_rule.deleted"}).content.decode()


def test_requires_an_api_key(anon_api, meter):
    assert anon_api.get("/pricing-rules").status_code == 401
    assert anon_api.post("/pricing-rules", {"meterId": meter.public_id}).status_code == 401
    assert not PricingRule.objects.exists()


def test_tenant_isolation(api, globex_api, org_globex, meter):
    rule = create(api, meter.public_id, unitPrice=1)
    assert listing(globex_api) == {"rules": [], "count": 0}
    assert listing(globex_api, meterId=meter.public_id)["count"] == 0
    assert_error(delete(globex_api, rule["id"]), 404, "pricing rule not found")
    assert_error(globex_api.post("/pricing-rules", {"meterId": meter.public_id}), 400,
                 f"unknown meter {meter.public_id}", param="meterId")
    # globex may price its own meter with the same plan: uniqueness is per organization
    own = meter_for(org_globex)
    assert create(globex_api, own.public_id)["meterId"] == own.public_id
    assert listing(api)["rules"][0]["id"] == rule["id"]
    assert listing(globex_api)["count"] == 1


def test_an_empty_tier_list_on_a_unit_price_model_is_dropped(api, meter):
    assert create(api, meter.public_id, tiers=[])["tiers"] is None
