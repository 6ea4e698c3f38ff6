"""Payment methods over HTTP (spec payments.md §3): create (card number Luhn-checked, never stored or echoed),
get, list (bare array), update, detach, set default (validated first, ownership checked), isolation."""

from __future__ import annotations

import json

import pytest

from billing_project.core.models import Customer
from payments.models import PaymentMethod
from tests.conftest import assert_error
from tests.payments.helpers_methods import CARD_OK, card, create_method, patch
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db


def test_create_card_stores_display_data_only(api, org_acme):
    response = api.post("/payment-methods", {"customerId": "acme/alice", "type": "card", "card": card()})
    assert response.status_code == 201, response.content
    pm = response.json()
    assert pm["id"].startswith("pm_")
    assert (pm["customerId"], pm["type"], pm["isDefault"], pm["name"]) == ("acme/alice", "card", False,
                                                                          "visa ending in 4242")
    assert pm["card"] == {"brand": "visa", "last4": "4242", "expMonth": 12, "expYear": 2030}
    assert CARD_OK not in response.content.decode() and "cvc" not in response.content.decode()
    row = PaymentMethod.objects.get(public_id=pm["id"])
    stored = json.dumps([str(getattr(row, f.attname)) for f in PaymentMethod._meta.concrete_fields])
    assert CARD_OK not in stored and "123" not in stored.replace(str(row.pk), "")
    event = BillingEvent.objects.get(type="payment_method.attached", object_id=pm["id"])
    assert CARD_OK not in json.dumps(event.data)
    assert Customer.objects.get(organization=org_acme, customer_id="acme/alice").default_payment_method_id == ""


def test_brand_and_last4_come_from_the_number(api):
    body = {"customerId": "c1", "card": {"number": "5555 5555 5555 4444", "last4": "0000", "expMonth": 1,
                                         "expYear": 2001}}
    pm = api.post("/payment-methods", body).json()
    assert pm["card"]["brand"] == "mastercard" and pm["card"]["last4"] == "4444"
    assert pm["name"] == "mastercard ending in 4444"  # an expired card can be saved (the charge declines it)


def test_brand_is_lower_cased(api):
    pm = api.post("/payment-methods", {"customerId": "c1", "card": {"brand": "VISA", "last4": "1111"}}).json()
    assert pm["card"]["brand"] == "visa" and pm["name"] == "visa ending in 1111"


@pytest.mark.parametrize("card_body,param", [
    ({"number": "4242424242424241"}, "card.number"),
    ({"number": "1234"}, "card.number"),
    ({"number": 4242424242424242}, "card.number"),
    ({"number": CARD_OK, "cvc": "12"}, "card.cvc"),
    ({"expMonth": 13}, "card.expMonth"),
    ({"last4": "12345"}, "card.last4"),
])
def test_bad_card_input_is_400_naming_the_field(api, card_body, param):
    response = api.post("/payment-methods", {"customerId": "c1", "card": card_body})
    error = assert_error(response, 400, param=param)
    assert CARD_OK not in error["message"]
    assert not PaymentMethod.objects.exists()


def test_customer_id_is_required(api):
    assert_error(api.post("/payment-methods", {"type": "card", "card": card()}), 400, "customerId is required")
    assert_error(api.post("/payment-methods", {"customerId": "", "card": card()}), 400, "customerId is required")
    assert_error(api.post("/payment-methods", raw="{"), 400, "invalid request body")


def test_bank_account_needs_only_last4(api):
    response = api.post("/payment-methods", {"customerId": "c2", "type": "bank_account",
                                             "bankAccount": {"last4": "1111"}})
    assert response.status_code == 201, response.content
    assert response.json()["bankAccount"] == {"last4": "1111"}
    assert "card" not in response.json()


def test_get_list_and_filters(api):
    a = create_method(api, "cust/a")
    b = api.post("/payment-methods", {"customerId": "cust/a", "type": "bank_account",
                                      "bankAccount": {"last4": "9"}}).json()
    create_method(api, "cust/b")
    assert api.get(f"/payment-methods/{a['id']}").json()["id"] == a["id"]
    listed = api.get("/payment-methods", {"customerId": "cust/a"}).json()
    assert [p["id"] for p in listed] == [b["id"], a["id"]]
    assert [p["id"] for p in api.get("/payment-methods", {"customerId": "cust/a", "type": "card"}).json()] == [a["id"]]
    first = api.get("/payment-methods", {"customerId": "cust/a", "limit": 1})
    assert len(first.json()) == 1 and 'rel="next"' in first["Link"]


def test_update_replaces_address_and_metadata(api):
    pm = create_method(api, "c3", metadata={"a": "1"})
    response = patch(api, f"/payment-methods/{pm['id']}",
                     {"billingAddress": {"line1": "2 Side St", "country": "gb"}, "metadata": {"nickname": "work"}})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["billingAddress"] == {"line1": "2 Side St", "country": "GB"}
    assert body["metadata"] == {"nickname": "work"}
    assert BillingEvent.objects.filter(type="payment_method.updated", object_id=pm["id"]).count() == 1
    assert patch(api, f"/payment-methods/{pm['id']}", {}).json()["metadata"] == {"nickname": "work"}


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_unknown_method_is_404_before_the_body(api, method):
    path = "/payment-methods/pm_nope"
    if method == "GET":
        response = api.get(path)
    elif method == "PATCH":
        response = patch(api, path, "not json")
    else:
        response = api.delete(path)
    assert_error(response, 404, "payment method not found")


def test_detach_then_404_and_gone_from_lists(api, org_acme):
    pm = create_method(api, "c4")
    assert api.post("/customers/c4/default-payment-method", {"paymentMethodId": pm["id"]}).status_code == 200
    response = api.delete(f"/payment-methods/{pm['id']}")
    assert response.status_code == 200 and response.json() == {"deleted": True, "id": pm["id"]}
    assert_error(api.get(f"/payment-methods/{pm['id']}"), 404, "payment method not found")
    assert api.get("/payment-methods", {"customerId": "c4"}).json() == []
    assert_error(api.delete(f"/payment-methods/{pm['id']}"), 404, "payment method not found")
    assert Customer.objects.get(organization=org_acme, customer_id="c4").default_payment_method_id == ""
    assert BillingEvent.objects.filter(type="payment_method.detached", object_id=pm["id"]).count() == 1
    assert BillingEvent.objects.filter(type="customer.updated", object_id="c4").count() == 2


def test_set_default_switches_and_reports(api):
    first, second = create_method(api, "c5"), create_method(api, "c5")
    res = api.post("/customers/c5/default-payment-method", {"paymentMethodId": first["id"]})
    assert res.status_code == 200 and res.json()["isDefault"] is True
    res = api.post("/customers/c5/default-payment-method", {"paymentMethodId": second["id"]})
    assert res.json()["id"] == second["id"] and res.json()["isDefault"] is True
    assert api.get(f"/payment-methods/{first['id']}").json()["isDefault"] is False
    assert api.get("/customers/c5").json()["defaultPaymentMethod"] == second["id"]


def test_set_default_validates_before_switching(api):
    mine, theirs = create_method(api, "c6"), create_method(api, "c7")
    api.post("/customers/c6/default-payment-method", {"paymentMethodId": mine["id"]})
    assert_error(api.post("/customers/c6/default-payment-method", {"paymentMethodId": "pm_unknown"}), 404,
                 "payment method not found", param="paymentMethodId")
    assert_error(api.post("/customers/c6/default-payment-method", {}), 404, "payment method not found")
    assert_error(api.post("/customers/c6/default-payment-method", {"paymentMethodId": theirs["id"]}), 404,
                 "payment method not found for customer c6")
    assert api.get(f"/payment-methods/{mine['id']}").json()["isDefault"] is True  # the old default stays
    assert_error(api.post("/customers/c6/default-payment-method", raw="[1]"), 400, "invalid request body")


def test_set_default_for_a_customer_id_with_a_slash(api):
    pm = create_method(api, "acme/bob")
    response = api.post("/customers/acme/bob/default-payment-method", {"paymentMethodId": pm["id"]})
    assert response.status_code == 200, response.content
    assert api.get("/customers/acme%2Fbob").json()["defaultPaymentMethod"] == pm["id"]


def test_another_organizations_methods_are_404(api, globex_api):
    pm = create_method(api, "shared-id")
    assert_error(globex_api.get(f"/payment-methods/{pm['id']}"), 404, "payment method not found")
    assert_error(patch(globex_api, f"/payment-methods/{pm['id']}", {"metadata": {}}), 404)
    assert_error(globex_api.delete(f"/payment-methods/{pm['id']}"), 404)
    assert globex_api.get("/payment-methods").json() == []
    assert_error(globex_api.post("/customers/shared-id/default-payment-method", {"paymentMethodId": pm["id"]}),
                 404, "payment method not found")
    assert api.get(f"/payment-methods/{pm['id']}").status_code == 200
