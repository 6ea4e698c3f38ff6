"""API: GET /tax-rates, POST /tax-rates, DELETE /tax-rates/:id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing_project.core.models import AuditLog
from invoicing.models import TaxRate
from invoicing.selectors import tax as tax_selectors
from tests.conftest import assert_error
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

RATE_KEYS = {"id", "country", "state", "percentageBasisPoints", "percentage", "inclusive", "displayName",
             "description", "active", "createdAt"}


def create(api, **fields) -> dict:
    body = {"country": "US", "percentageBasisPoints": 875, "displayName": "Tax", **fields}
    r = api.post("/tax-rates", body)
    assert r.status_code == 201, r.content
    return r.json()


def listing(api, **params) -> dict:
    r = api.get("/tax-rates", params)
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"taxRates", "count"} and body["count"] == len(body["taxRates"])
    return body


# --- POST /tax-rates --------------------------------------------------------------------------------

def test_create_returns_the_rate_and_publishes_an_event(api, org_acme):
    r = api.post("/tax-rates", {"country": "us", "state": "ca", "percentageBasisPoints": 875, "inclusive": False,
                                "displayName": " CA State Tax ", "description": "California"})
    assert r.status_code == 201, r.content
    rate = r.json()
    assert set(rate) == RATE_KEYS
    assert rate["id"].startswith("txr_")
    assert (rate["country"], rate["state"], rate["percentageBasisPoints"], rate["percentage"]) == ("US", "CA", 875,
                                                                                                   "8.75")
    assert (rate["inclusive"], rate["displayName"], rate["description"], rate["active"]) == (
        False, "CA State Tax", "California", True)
    created = datetime.fromisoformat(rate["createdAt"])
    assert rate["createdAt"].endswith("Z") and abs(created - datetime.now(UTC)) < timedelta(minutes=1)

    stored = TaxRate.objects.get(public_id=rate["id"])
    assert stored.organization == org_acme and stored.country == "US" and stored.state == "CA"
    event = BillingEvent.objects.get(type="tax_rate.created")
    assert (event.organization, event.object_type, event.object_id) == (org_acme, "tax_rate", rate["id"])
    assert event.data == rate
    assert AuditLog.objects.get(action="tax_rate.create").actor.startswith("api:")


def test_create_defaults_and_percentage_format(api):
    rate = create(api, country="DE", percentageBasisPoints=1_900, inclusive=True, displayName="VAT")
    assert (rate["state"], rate["description"], rate["inclusive"], rate["percentage"]) == ("", "", True, "19.00")
    assert create(api, percentageBasisPoints=5)["percentage"] == "0.05"
    assert create(api, percentageBasisPoints=0)["percentage"] == "0.00"
    assert create(api, percentageBasisPoints=100_000)["percentage"] == "1000.00"


@pytest.mark.parametrize(("body", "message", "param"), [
    ({"country": ""}, "country is required", "country"),
    ({"country": None}, "country is required", "country"),
    ({"country": "USA"}, "country must be a two-letter ISO 3166 code", "country"),
    ({"country": "U1"}, "country must be a two-letter ISO 3166 code", "country"),
    ({"country": "ÜS"}, "country must be a two-letter ISO 3166 code", "country"),
    ({"country": 12}, "invalid request body: country must be a string", "country"),
    ({"state": "CA/X"}, "state must be at most 10 letters, digits or dashes", "state"),
    ({"state": "ABCDEFGHIJK"}, "state must be at most 10 letters, digits or dashes", "state"),
    ({"percentageBasisPoints": -1}, "percentageBasisPoints must be between 0 and 100000", "percentageBasisPoints"),
    ({"percentageBasisPoints": 100_001}, "percentageBasisPoints must be between 0 and 100000",
     "percentageBasisPoints"),
    ({"percentageBasisPoints": "875"}, "invalid request body: percentageBasisPoints must be an integer",
     "percentageBasisPoints"),
    ({"percentageBasisPoints": 8.75}, "invalid request body: percentageBasisPoints must be an integer",
     "percentageBasisPoints"),
    ({"percentageBasisPoints": None}, "percentageBasisPoints is required", "percentageBasisPoints"),
    ({"inclusive": "yes"}, "invalid request body: inclusive must be a boolean", "inclusive"),
    ({"displayName": ""}, "displayName is required", "displayName"),
    ({"displayName": "   "}, "displayName is required", "displayName"),
    ({"description": 5}, "invalid request body: description must be a string", "description"),
])
def test_create_validation_names_the_field(api, body, message, param):
    full = {"country": "US", "percentageBasisPoints": 875, "displayName": "Tax", **body}
    assert_error(api.post("/tax-rates", full), 400, message, param=param)
    assert not TaxRate.objects.exists() and not BillingEvent.objects.filter(type__startswith="tax_rate").exists()


@pytest.mark.parametrize("missing", ["country", "percentageBasisPoints", "displayName"])
def test_create_missing_required_field(api, missing):
    full = {"country": "US", "percentageBasisPoints": 875, "displayName": "Tax"}
    del full[missing]
    assert_error(api.post("/tax-rates", full), 400, f"{missing} is required", param=missing)


def test_create_bad_body(api, anon_api):
    assert_error(api.post("/tax-rates", raw="{"), 400, "invalid request body")
    assert_error(api.post("/tax-rates", raw=""), 400, "invalid request body")
    assert_error(api.post("/tax-rates", [1]), 400, "invalid request body")
    assert anon_api.post("/tax-rates", {"country": "US"}).status_code == 401


# --- GET /tax-rates ---------------------------------------------------------------------------------

def test_list_orders_by_country_state_then_age_and_filters(api):
    ca = create(api, state="CA", displayName="CA")
    us = create(api, displayName="US")
    ca2 = create(api, state="CA", displayName="CA local")
    de = create(api, country="DE", displayName="VAT")
    body = listing(api)
    assert [r["id"] for r in body["taxRates"]] == [de["id"], us["id"], ca["id"], ca2["id"]]
    assert body["taxRates"][0] == de
    assert [r["id"] for r in listing(api, country="us")["taxRates"]] == [us["id"], ca["id"], ca2["id"]]
    assert [r["id"] for r in listing(api, country="US", state="ca")["taxRates"]] == [ca["id"], ca2["id"]]
    assert listing(api, country="FR") == {"taxRates": [], "count": 0}


def test_list_empty(api):
    assert listing(api) == {"taxRates": [], "count": 0}


# --- DELETE /tax-rates/:id --------------------------------------------------------------------------

def test_delete_archives_then_list_excludes_it(api, org_acme):
    keep = create(api, displayName="keep")
    gone = create(api, displayName="gone")
    r = api.delete(f"/tax-rates/{gone['id']}")
    assert r.status_code == 200 and r.json() == {"id": gone["id"], "deleted": True}
    assert [x["id"] for x in listing(api)["taxRates"]] == [keep["id"]]

    stored = TaxRate.objects.get(public_id=gone["id"])  # archived, not deleted: invoices may point at it
    assert stored.archived_at is not None
    event = BillingEvent.objects.get(type="tax_rate.deleted")
    assert event.object_id == gone["id"] and event.data["active"] is False
    audit = AuditLog.objects.get(action="tax_rate.delete")
    assert audit.object_id == gone["id"] and audit.actor.startswith("api:") and audit.organization == org_acme
    assert tax_selectors.tax_rates_for_address(organization=org_acme, country="us") == [
        TaxRate.objects.get(public_id=keep["id"])]

    assert_error(api.delete(f"/tax-rates/{gone['id']}"), 404, "tax rate not found")  # already deleted
    assert BillingEvent.objects.filter(type="tax_rate.deleted").count() == 1


def test_delete_unknown(api):
    assert_error(api.delete("/tax-rates/txr_nope"), 404, "tax rate not found")


# --- tenancy ----------------------------------------------------------------------------------------

def test_tenant_isolation(api, globex_api, org_globex):
    mine = create(api, displayName="acme tax")
    theirs = create(globex_api, displayName="globex tax")
    assert [r["id"] for r in listing(api)["taxRates"]] == [mine["id"]]
    assert [r["id"] for r in listing(globex_api)["taxRates"]] == [theirs["id"]]
    assert_error(globex_api.delete(f"/tax-rates/{mine['id']}"), 404, "tax rate not found")
    assert TaxRate.objects.get(public_id=mine["id"]).archived_at is None
    assert BillingEvent.objects.get(object_id=theirs["id"]).organization == org_globex
    assert tax_selectors.tax_rates_for_address(organization=org_globex, country="US") == [
        TaxRate.objects.get(public_id=theirs["id"])]


# --- selectors used by the invoice service ----------------------------------------------------------

def test_rates_for_address_stack_country_and_state(api, org_acme):
    us = create(api, displayName="US")
    ca = create(api, state="CA", displayName="CA")
    create(api, state="NY", displayName="NY")
    create(api, country="DE", displayName="VAT")
    found = tax_selectors.tax_rates_for_address(organization=org_acme, country=" us ", state="ca")
    assert [r.public_id for r in found] == [us["id"], ca["id"]]
    assert [r.public_id for r in tax_selectors.tax_rates_for_address(organization=org_acme, country="US")] == [
        us["id"]]
    assert tax_selectors.tax_rates_for_address(organization=org_acme, country="", state="CA") == []
    assert tax_selectors.tax_rate_get(organization=org_acme, rate_id=ca["id"]).state == "CA"


def test_create_with_an_idempotency_key_is_replayed_not_duplicated(api):
    body = {"country": "US", "percentageBasisPoints": 875, "displayName": "Tax"}
    first = api.post("/tax-rates", body, idempotency_key="rate-1")
    again = api.post("/tax-rates", body, idempotency_key="rate-1")
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert TaxRate.objects.count() == 1 and BillingEvent.objects.filter(type="tax_rate.created").count() == 1
