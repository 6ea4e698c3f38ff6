"""API: POST /meters, GET /meters, GET /meters/:id (tests.md §1 "Meters", lines 1–6, with our fixes)."""

from __future__ import annotations

from datetime import datetime

import pytest

from invoicing.models import Meter
from tests.conftest import assert_error
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

METER_KEYS = {"id", "name", "eventName", "aggregationType", "currency", "dimensions", "createdAt"}
INPUT_TOKENS = {"name": "Input Tokens", "eventName": "input_tokens", "aggregationType": "sum", "currency": "usd",
                "dimensions": ["model", "region"]}


def create(api, **body) -> dict:
    r = api.post("/meters", body)
    assert r.status_code == 201, r.content
    return r.json()


# --- POST /meters -----------------------------------------------------------------------------------

def test_create_meter_echoes_all_fields(api):
    """tests.md 1."""
    r = api.post("/meters", INPUT_TOKENS)
    assert r.status_code == 201, r.content
    meter = r.json()
    assert set(meter) == METER_KEYS
    assert meter["id"].startswith("mtr_")
    for key, value in INPUT_TOKENS.items():
        assert meter[key] == value
    assert meter["createdAt"].endswith("Z")
    datetime.fromisoformat(meter["createdAt"])


def test_create_meter_defaults(api):
    meter = create(api, name="Calls", eventName="api_calls")
    assert meter["aggregationType"] == "sum"
    assert meter["currency"] == "usd"
    assert meter["dimensions"] is None
    assert "uniqueDimension" not in meter


def test_create_meter_lowercases_aggregation_and_currency(api):
    meter = create(api, name="Seats", eventName="seats", aggregationType="LAST", currency="EUR")
    assert meter["aggregationType"] == "last"
    assert meter["currency"] == "eur"


@pytest.mark.parametrize("aggregation", ["sum", "count", "last", "max"])
def test_create_meter_accepts_every_aggregation(api, aggregation):
    assert create(api, name="m", eventName=f"e_{aggregation}", aggregationType=aggregation)[
        "aggregationType"] == aggregation


def test_create_unique_count_meter_with_its_dimension(api):
    meter = create(api, name="Active models", eventName="models", aggregationType="unique_count",
                   dimensions=["model", "region"], uniqueDimension="model")
    assert meter["aggregationType"] == "unique_count"
    assert meter["uniqueDimension"] == "model"
    assert set(meter) == METER_KEYS | {"uniqueDimension"}


def test_create_unique_count_meter_without_declared_dimensions(api):
    assert create(api, name="Users", eventName="users", aggregationType="unique_count",
                  uniqueDimension="user")["uniqueDimension"] == "user"


def test_create_meter_publishes_meter_created(api, org_acme):
    meter = create(api, **INPUT_TOKENS)
    event = BillingEvent.objects.get(organization=org_acme, type="meter.created")
    assert event.object_type == "meter"
    assert event.object_id == meter["id"]
    assert event.data["eventName"] == "input_tokens"


@pytest.mark.parametrize("body", [{"eventName": "x"}, {"name": "", "eventName": "x"}, {"name": "  ", "eventName": "x"}])
def test_create_meter_without_name_is_400(api, body):
    """tests.md 2."""
    assert_error(api.post("/meters", body), 400, "name is required", param="name")


@pytest.mark.parametrize("body", [{"name": "x"}, {"name": "x", "eventName": ""}])
def test_create_meter_without_event_name_is_400(api, body):
    """tests.md 3."""
    assert_error(api.post("/meters", body), 400, "eventName is required", param="eventName")


def test_name_is_checked_before_event_name(api):
    assert_error(api.post("/meters", {}), 400, "name is required")


def test_unknown_aggregation_is_400(api):
    assert_error(api.post("/meters", {"name": "x", "eventName": "x", "aggregationType": "median"}), 400,
                 "aggregationType must be one of sum, count, last, max, unique_count", param="aggregationType")
    assert not Meter.objects.exists()


def test_unique_count_requires_unique_dimension(api):
    assert_error(api.post("/meters", {"name": "x", "eventName": "x", "aggregationType": "unique_count"}), 400,
                 "uniqueDimension is required for unique_count meters", param="uniqueDimension")


def test_unique_dimension_must_be_a_declared_dimension(api):
    assert_error(api.post("/meters", {"name": "x", "eventName": "x", "aggregationType": "unique_count",
                                      "dimensions": ["region"], "uniqueDimension": "model"}), 400,
                 "uniqueDimension must be one of dimensions", param="uniqueDimension")


def test_unique_dimension_on_other_aggregation_is_400(api):
    assert_error(api.post("/meters", {"name": "x", "eventName": "x", "uniqueDimension": "model"}), 400,
                 "uniqueDimension is only allowed for unique_count meters", param="uniqueDimension")


def test_unknown_currency_is_400(api):
    assert_error(api.post("/meters", {"name": "x", "eventName": "x", "currency": "zzz"}), 400,
                 "unknown currency: zzz", param="currency")


@pytest.mark.parametrize("dimensions, param", [("model", "dimensions"), ([1], "dimensions"),
                                                ([""], "dimensions"), (["a", "a"], "dimensions")])
def test_bad_dimensions_are_400(api, dimensions, param):
    assert_error(api.post("/meters", {"name": "x", "eventName": "x", "dimensions": dimensions}), 400,
                 param=param)


def test_invalid_json_is_400(api):
    assert_error(api.post("/meters", raw="{not json"), 400, "invalid request body")
    assert_error(api.post("/meters", raw="[1, 2]"), 400, "invalid request body")


def test_duplicate_event_name_is_409(api):
    create(api, **INPUT_TOKENS)
    assert_error(api.post("/meters", {**INPUT_TOKENS, "name": "Other"}), 409,
                 "a meter with eventName input_tokens already exists", param="eventName")
    assert Meter.objects.count() == 1


def test_same_event_name_in_two_organizations(api, globex_api):
    create(api, **INPUT_TOKENS)
    create(globex_api, **INPUT_TOKENS)
    assert Meter.objects.count() == 2


def test_unauthenticated_is_401(anon_api):
    assert anon_api.post("/meters", INPUT_TOKENS).status_code == 401
    assert anon_api.get("/meters").status_code == 401


# --- GET /meters ------------------------------------------------------------------------------------

def test_list_meters_in_creation_order(api):
    """tests.md 4."""
    first = create(api, **INPUT_TOKENS)
    second = create(api, name="Calls", eventName="api_calls")
    r = api.get("/meters")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2
    assert [m["id"] for m in body["meters"]] == [first["id"], second["id"]]
    assert body["meters"][0] == first
    assert body["meters"][0]["eventName"] == "input_tokens"
    assert body["meters"][0]["name"] == "Input Tokens"


def test_list_meters_empty(api):
    assert api.get("/meters").json() == {"meters": [], "count": 0}


def test_list_is_tenant_scoped(api, globex_api):
    create(api, **INPUT_TOKENS)
    assert globex_api.get("/meters").json() == {"meters": [], "count": 0}


# --- GET /meters/:id --------------------------------------------------------------------------------

def test_get_meter(api):
    """tests.md 5."""
    meter = create(api, **INPUT_TOKENS)
    r = api.get(f"/meters/{meter['id']}")
    assert r.status_code == 200
    assert r.json() == meter


def test_get_unknown_meter_is_404(api):
    """tests.md 6."""
    assert_error(api.get("/meters/nonexistent-id"), 404, "meter not found", param="id")


def test_get_other_tenants_meter_is_404(api, globex_api):
    meter = create(api, **INPUT_TOKENS)
    assert_error(globex_api.get(f"/meters/{meter['id']}"), 404, "meter not found")
