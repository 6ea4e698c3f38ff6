"""Customers over HTTP: create (409 when the id exists), get, patch, list (search, email, paging), ids with
``/``, events, isolation."""

from __future__ import annotations

import pytest

from billing_project.core.models import Customer
from tests.conftest import assert_error
from tests.payments.helpers_methods import create_method, patch
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

FULL = {"id": "acme/alice", "name": "Alice", "email": "alice@example.com",
        "address": {"line1": "1 Main St", "city": "Springfield", "country": "us"},
        "taxIds": [{"type": "eu_vat", "value": "DE123456789"}], "preferredCurrency": "EUR", "locale": "en-US",
        "metadata": {"tier": "gold"}}


def test_create_renders_every_field(api, org_acme):
    response = api.post("/customers", FULL)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] == "acme/alice" and body["name"] == "Alice" and body["email"] == "alice@example.com"
    assert body["address"] == {"line1": "1 Main St", "city": "Springfield", "country": "US"}
    assert body["taxIds"] == [{"type": "eu_vat", "value": "DE123456789"}]
    assert (body["preferredCurrency"], body["locale"], body["metadata"]) == ("eur", "en-US", {"tier": "gold"})
    assert body["defaultPaymentMethod"] is None
    assert BillingEvent.objects.filter(type="customer.created", object_id="acme/alice").count() == 1


def test_customer_id_alias_and_required(api):
    assert api.post("/customers", {"customerId": "c-alias"}).json()["id"] == "c-alias"
    assert_error(api.post("/customers", {"name": "x"}), 400, "id is required", param="id")
    assert_error(api.post("/customers", {"id": "a", "customerId": "b"}), 400, param="customerId")


def test_existing_id_is_409_even_when_created_implicitly(api):
    create_method(api, "implicit")  # customers are created on first use by any service
    assert_error(api.post("/customers", {"id": "implicit", "name": "x"}), 409, "customer already exists")
    assert api.post("/customers", {"id": "fresh"}).status_code == 201
    assert_error(api.post("/customers", {"id": "fresh"}), 409, "customer already exists")


@pytest.mark.parametrize("body,param", [
    ({"id": "x", "email": "not-an-email"}, "email"),
    ({"id": "x", "preferredCurrency": "xyz"}, "preferredCurrency"),
    ({"id": "x", "locale": "english please"}, "locale"),
    ({"id": "x", "taxIds": [{"type": "eu_vat"}]}, "taxIds.value"),
    ({"id": "x", "metadata": "no"}, "metadata"),
    ({"id": "x", "address": {"country": "USA"}}, "address.country"),
])
def test_bad_fields_are_400_naming_them(api, body, param):
    assert_error(api.post("/customers", body), 400, param=param)
    assert not Customer.objects.filter(customer_id="x").exists()


def test_get_and_unknown(api):
    api.post("/customers", FULL)
    assert api.get("/customers/acme/alice").json()["name"] == "Alice"
    assert api.get("/customers/acme%2Falice").json()["name"] == "Alice"
    assert_error(api.get("/customers/nobody"), 404, "customer not found")
    assert_error(patch(api, "/customers/nobody", "not json"), 404, "customer not found")


def test_patch_replaces_only_what_is_sent(api):
    api.post("/customers", FULL)
    response = patch(api, "/customers/acme/alice", {"name": "Alice B.", "metadata": {"tier": "silver"}})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["email"], body["metadata"]) == ("Alice B.", "alice@example.com", {"tier": "silver"})
    event = BillingEvent.objects.get(type="customer.updated", object_id="acme/alice")
    assert event.previous_data == {"name": "Alice", "metadata": {"tier": "gold"}}
    assert patch(api, "/customers/acme/alice", {"name": "Alice B."}).status_code == 200
    assert BillingEvent.objects.filter(type="customer.updated").count() == 1  # nothing changed, nothing emitted
    assert_error(patch(api, "/customers/acme/alice", {"email": "nope"}), 400, param="email")


def test_default_payment_method_is_read_only_in_patch(api):
    api.post("/customers", {"id": "c1"})
    pm = create_method(api, "c1")
    patch(api, "/customers/c1", {"defaultPaymentMethod": pm["id"]})
    assert api.get("/customers/c1").json()["defaultPaymentMethod"] is None


def test_list_search_email_and_paging(api):
    for cid, name, email in [("acme/alice", "Alice", "alice@example.com"), ("acme/bob", "Bob", "BOB@example.com"),
                             ("globex/carol", "Carol", "carol@globex.test")]:
        api.post("/customers", {"id": cid, "name": name, "email": email})
    everyone = api.get("/customers").json()
    assert [c["id"] for c in everyone["customers"]] == ["globex/carol", "acme/bob", "acme/alice"]
    assert everyone["count"] == 3 and everyone["hasMore"] is False
    assert [c["id"] for c in api.get("/customers", {"search": "ACME"}).json()["customers"]] == ["acme/bob",
                                                                                              "acme/alice"]
    assert [c["id"] for c in api.get("/customers", {"search": "globex.test"}).json()["customers"]] == ["globex/carol"]
    assert [c["id"] for c in api.get("/customers", {"email": "bob@example.com"}).json()["customers"]] == ["acme/bob"]
    page = api.get("/customers", {"limit": 2}).json()
    assert page["hasMore"] is True
    rest = api.get("/customers", {"limit": 2, "startingAfter": page["customers"][-1]["id"]}).json()
    assert [c["id"] for c in rest["customers"]] == ["acme/alice"] and rest["hasMore"] is False


def test_customers_are_per_organization(api, globex_api):
    api.post("/customers", {"id": "same", "name": "Acme's"})
    assert_error(globex_api.get("/customers/same"), 404, "customer not found")
    assert globex_api.get("/customers").json()["customers"] == []
    assert globex_api.post("/customers", {"id": "same", "name": "Globex's"}).status_code == 201
    assert api.get("/customers/same").json()["name"] == "Acme's"
