"""Package "subgaps": ``GET /invoices/upcoming?userId=&subscriptionId=`` end to end on a real subscription
(plan × quantity, a licensed item, a metered item with usage, a pending proration): the preview is to the
cent what the renewal then bills, and the GET writes nothing."""

from __future__ import annotations

import pytest
from django.apps import apps

from invoicing.services import metering as metering_services
from invoicing.services import pricing as pricing_services
from ledger import selectors as ledger_selectors
from subscriptions.models import Subscription, SubscriptionItem
from tests.conftest import assert_error
from tests.subscriptions.helpers import make_plan, patch

pytestmark = pytest.mark.django_db
USER = "upc-ivy"


def _state(sub_id: str):
    """Every table's row count, the subscription's accrual and the items' watermarks."""
    counts = {model._meta.label: model.objects.count() for model in apps.get_models()}
    sub = Subscription.objects.values("accrued_exact", "billed_amount", "segment_start", "updated_at",
                                      "upcoming_notice_period").get(public_id=sub_id)
    marks = list(SubscriptionItem.objects.order_by("pk").values_list("usage_watermark", flat=True))
    grants = list(apps.get_model("ledger", "CreditGrant").objects.order_by("pk").values_list("remaining_cents",
                                                                                              flat=True))
    return counts, sub, marks, grants


def test_upcoming_of_a_real_subscription_is_what_the_renewal_bills_and_writes_nothing(api, org_acme):
    clock = api.post("/test-clocks", {"name": "upc", "frozenTime": "2027-01-01T00:00:00Z"}).json()
    pro = make_plan(api, name="Pro", price=1000)
    seat = make_plan(api, slug="seat", name="Seat", price=500)
    meter = metering_services.meter_create(organization=org_acme, name="API calls", event_name="api.call")
    pricing_services.pricing_rule_create(organization=org_acme, meter_id=meter.public_id, unit_price=2)
    sub = api.post("/subscriptions", {"userId": USER, "planId": pro["id"], "quantity": 2,
                                      "testClock": clock["id"]}).json()
    for body in ({"subscriptionId": sub["id"], "priceId": seat["id"], "quantity": 4},
                 {"subscriptionId": sub["id"], "meterId": meter.public_id, "billingMode": "metered"}):
        assert api.post("/subscription-items", body).status_code == 201
    metering_services.meter_events_record(organization=org_acme, events=[
        metering_services.MeterEventInput(meter_id="api.call", customer=USER, value=5),
        metering_services.MeterEventInput(meter_id="api.call", customer=USER, value=7),
        metering_services.MeterEventInput(meter_id="api.call", customer="someone-else", value=100)])
    assert api.post("/credit-grants", {"userId": USER, "name": "promo", "amountCents": 1000,
                                       "currency": "usd"}).status_code == 201
    api.post(f"/test-clocks/{clock['id']}/advance", {"frozenTime": "2027-01-11T00:00:00Z"})
    assert patch(api, f"/subscriptions/{sub['id']}", {"quantity": 3}).status_code == 200  # 10 of 31 days at 2

    before = _state(sub["id"])
    res = api.get("/invoices/upcoming", {"userId": USER, "subscriptionId": sub["id"]})
    assert res.status_code == 200, res.content
    body = res.json()
    assert _state(sub["id"]) == before  # a GET: nothing burned, written or published
    assert api.get("/invoices/upcoming", {"userId": USER, "subscriptionId": sub["id"]}).json() == body

    lines = {line["type"] + ":" + line["id"].split("_")[1]: line for line in body["lineItems"]}
    assert {key: line["amount"] for key, line in lines.items()} == {
        "subscription:plan": 2032,  # 21 of 31 days × 3 × 1000: round(645.16 + 2032.26) − 645
        "proration:proration": 645,  # 10 of 31 days × 2 × 1000
        "subscription:item": 2000,  # Seat 500 × 4
        "usage:usage": 24,  # this customer's 12 calls × 2, not someone else's
    }
    assert lines["subscription:plan"]["periodStart"] == "2027-01-11T00:00:00Z"
    assert lines["subscription:plan"]["periodEnd"] == "2027-02-01T00:00:00Z"
    assert (lines["usage:usage"]["quantity"], lines["usage:usage"]["meterId"]) == (12, meter.public_id)
    assert (body["userId"], body["subscriptionId"], body["currency"]) == (USER, sub["id"], "usd")
    assert (body["subtotal"], body["creditApplied"], body["amountDue"]) == (4701, 1000, 3701)

    api.post(f"/test-clocks/{clock['id']}/advance", {"frozenTime": "2027-02-01T00:00:01Z"})
    (invoice,) = api.get("/invoices", {"subscriptionId": sub["id"]}).json()["invoices"]
    assert invoice["total"] == body["subtotal"]
    assert sorted(line["amount"] for line in invoice["lineItems"]) == sorted(
        line["amount"] for line in body["lineItems"])
    # No card: collection is all-or-nothing, so the 1000 of credit the preview counts stays unburnt for now.
    assert (invoice["status"], invoice["amountDue"], invoice["creditApplied"]) == ("open", 4701, 0)
    assert ledger_selectors.ledger_audit().ok


def test_upcoming_of_another_customers_subscription_is_404(api):
    plan = make_plan(api)
    sub = api.post("/subscriptions", {"userId": "upc-owner", "planId": plan["id"]}).json()
    res = api.get("/invoices/upcoming", {"userId": "upc-other", "subscriptionId": sub["id"]})
    assert_error(res, 404, "subscription not found", param="subscriptionId")
    assert_error(api.get("/invoices/upcoming", {"subscriptionId": sub["id"]}), 400, "userId is required")
