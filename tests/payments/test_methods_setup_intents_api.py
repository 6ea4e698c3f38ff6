"""Setup intents over HTTP (spec payments.md §2): create defaults, confirm saves the customer's method (no
charge, nothing made default), cancel, guards, 404 before body, events, isolation."""

from __future__ import annotations

import pytest

from ledger.models import BalanceTransaction
from payments.models import SetupIntent
from tests.conftest import assert_error
from tests.payments.helpers_methods import create_method
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db


def _create(api, **body):
    response = api.post("/setup-intents", {"customerId": "cust/si", **body})
    assert response.status_code == 201, response.content
    return response.json()


def test_create_defaults(api):
    si = _create(api)
    assert si["id"].startswith("seti_")
    assert (si["customerId"], si["status"], si["usage"]) == ("cust/si", "requires_payment_method", "off_session")
    assert BillingEvent.objects.filter(type="setup_intent.created", object_id=si["id"]).count() == 1
    with_pm = _create(api, paymentMethodId="pm_later", usage="on_session", metadata={"k": "v"})
    assert (with_pm["status"], with_pm["usage"], with_pm["paymentMethodId"]) == ("requires_confirmation",
                                                                                "on_session", "pm_later")


def test_customer_required(api):
    assert_error(api.post("/setup-intents", {}), 400, "customerId is required")
    assert_error(api.post("/setup-intents", raw="nope"), 400, "invalid request body")


def test_confirm_saves_the_method_without_charging(api):
    si = _create(api)
    pm = create_method(api, "cust/si")
    response = api.post(f"/setup-intents/{si['id']}/confirm", {"paymentMethodId": pm["id"]})
    assert response.status_code == 200, response.content
    done = response.json()
    assert (done["status"], done["paymentMethodId"], done["providerRef"]) == ("succeeded", pm["id"], "internal")
    assert api.get(f"/setup-intents/{si['id']}").json()["status"] == "succeeded"
    assert api.get(f"/payment-methods/{pm['id']}").json()["isDefault"] is False
    assert not BalanceTransaction.objects.exists()
    assert BillingEvent.objects.filter(type="setup_intent.succeeded", object_id=si["id"]).count() == 1
    assert_error(api.post(f"/setup-intents/{si['id']}/confirm"), 400,
                 "cannot confirm setup intent in status succeeded")
    assert_error(api.post(f"/setup-intents/{si['id']}/cancel"), 400, "cannot cancel setup intent in status succeeded")


def test_confirm_with_the_method_named_at_creation_and_no_body(api):
    pm = create_method(api, "cust/si")
    si = _create(api, paymentMethodId=pm["id"])
    assert api.post(f"/setup-intents/{si['id']}/confirm").json()["status"] == "succeeded"


def test_confirm_guards(api):
    si = _create(api)
    assert_error(api.post(f"/setup-intents/{si['id']}/confirm", {}), 400, "payment method is required to confirm")
    assert_error(api.post(f"/setup-intents/{si['id']}/confirm", {"paymentMethodId": "pm_x"}), 400,
                 "payment method not found: pm_x")
    other = create_method(api, "someone-else")
    assert_error(api.post(f"/setup-intents/{si['id']}/confirm", {"paymentMethodId": other["id"]}), 400,
                 f"payment method {other['id']} does not belong to customer cust/si")
    detached = create_method(api, "cust/si")
    api.delete(f"/payment-methods/{detached['id']}")
    assert_error(api.post(f"/setup-intents/{si['id']}/confirm", {"paymentMethodId": detached["id"]}), 400,
                 f"payment method not found: {detached['id']}")
    assert SetupIntent.objects.get(public_id=si["id"]).status == "requires_payment_method"
    assert_error(api.post(f"/setup-intents/{si['id']}/confirm", raw="[]"), 400, "invalid request body")


def test_cancel_then_cannot_confirm(api):
    si = _create(api)
    response = api.post(f"/setup-intents/{si['id']}/cancel", {"cancellationReason": "abandoned"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "canceled" and response.json()["cancellationReason"] == "abandoned"
    pm = create_method(api, "cust/si")
    assert_error(api.post(f"/setup-intents/{si['id']}/confirm", {"paymentMethodId": pm["id"]}), 400,
                 "cannot confirm setup intent in status canceled")
    assert_error(api.post(f"/setup-intents/{si['id']}/cancel"), 400, "cannot cancel setup intent in status canceled")
    assert BillingEvent.objects.filter(type="setup_intent.canceled", object_id=si["id"]).count() == 1


@pytest.mark.parametrize("suffix", ["", "/confirm", "/cancel"])
def test_unknown_is_404_before_the_body(api, suffix):
    path = f"/setup-intents/seti_nope{suffix}"
    response = api.get(path) if not suffix else api.post(path, raw="not json")
    assert_error(response, 404, "setup intent not found")


def test_another_organizations_setup_intent_is_404(api, globex_api):
    si = _create(api)
    assert_error(globex_api.get(f"/setup-intents/{si['id']}"), 404, "setup intent not found")
    assert_error(globex_api.post(f"/setup-intents/{si['id']}/cancel"), 404, "setup intent not found")
    assert api.get(f"/setup-intents/{si['id']}").json()["status"] == "requires_payment_method"
