"""Plans, subscriptions, items and portal JSON over HTTP: status, body, error wording, isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing_project.core.times import parse_rfc3339
from ledger.services import credits as credit_services
from subscriptions.models import PlanVersion, Subscription
from tests.conftest import assert_error
from tests.subscriptions.helpers import make_plan, patch
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db


def _sub(api, user="alice", plan=None, **fields):
    body = {"userId": user, "planId": plan["id"]}
    body.update(fields)
    response = api.post("/subscriptions", body)
    assert response.status_code == 201, response.content
    return response.json()


# --- plans -------------------------------------------------------------------------------------------

def test_plan_create_get_list_and_version_on_reprice(api):
    plan = make_plan(api)
    assert plan["id"].startswith("plan_") and plan["price"] == 3000 and plan["version"] == 1 and plan["active"]
    assert api.get(f"/plans/{plan['id']}").json()["name"] == "Pro"
    assert [p["id"] for p in api.get("/plans").json()["plans"]] == [plan["id"]]
    renamed = patch(api, f"/plans/{plan['id']}", {"name": "Pro 2"}).json()
    assert renamed["version"] == 1 and renamed["id"] == plan["id"]
    repriced = patch(api, f"/plans/{plan['id']}", {"price": 5000}).json()
    assert repriced["version"] == 2 and repriced["id"] == plan["id"] and repriced["price"] == 5000
    assert list(PlanVersion.objects.order_by("version").values_list("price", flat=True)) == [3000, 5000]


def test_plan_errors_and_archive(api, globex_api):
    assert_error(api.post("/plans", {"price": 1}), 400, "name is required", param="name")
    assert_error(api.post("/plans", {"name": "x", "price": -1}), 400, param="price")
    assert_error(api.get("/plans/plan_nope"), 404, "plan not found")
    plan = make_plan(api)
    assert_error(globex_api.get(f"/plans/{plan['id']}"), 404, "plan not found")
    assert_error(patch(api, "/plans/plan_nope", {"price": 1}), 404, "plan not found")
    archived = api.delete(f"/plans/{plan['id']}").json()
    assert archived["active"] is False
    assert api.get("/plans").json()["plans"] == []
    assert_error(api.post("/subscriptions", {"userId": "u", "planId": plan["id"]}), 409, contains="archived")


def test_running_subscription_keeps_its_snapshot_after_reprice(api):
    plan = make_plan(api)
    sub = _sub(api, plan=plan)
    patch(api, f"/plans/{plan['id']}", {"price": 9900})
    assert api.get(f"/subscriptions/{sub['id']}").json()["plan"]["price"] == 3000


# --- subscriptions ------------------------------------------------------------------------------------

def test_create_subscription_shape_and_event(api):
    plan = make_plan(api)
    sub = _sub(api, plan=plan, defaultPaymentMethod="balance", metadata={"k": "v"})
    assert sub["status"] == "active" and sub["quantity"] == 1 and sub["providerType"] == "internal"
    assert sub["defaultPaymentMethod"] == "balance" and sub["cancelAtPeriodEnd"] is False
    assert sub["plan"] == {"id": plan["id"], "name": "Pro", "price": 3000, "currency": "usd", "interval": "month"}
    assert "trialStart" not in sub and "canceledAt" not in sub and "endedAt" not in sub
    assert BillingEvent.objects.filter(type="subscription.created", object_id=sub["id"]).count() == 1
    assert api.get("/invoices", {"subscriptionId": sub["id"]}).json()["invoices"] == []  # no invoice at start


def test_create_subscription_errors(api):
    assert_error(api.post("/subscriptions", {"planId": "p"}), 400, "userId is required")
    assert_error(api.post("/subscriptions", {"userId": "u"}), 400, "planId is required")
    assert_error(api.post("/subscriptions", {"userId": "u", "planId": "plan_nope"}), 404, "plan not found")
    assert_error(api.post("/subscriptions", raw="{"), 400, "invalid request body")


def test_trial_end_is_exactly_n_days(api):
    plan = make_plan(api, trialPeriodDays=14)
    sub = _sub(api, plan=plan)
    assert sub["status"] == "trialing"
    start, end = parse_rfc3339(sub["trialStart"]), parse_rfc3339(sub["trialEnd"])
    assert end - start == timedelta(days=14)
    assert sub["currentPeriodStart"] == sub["trialEnd"]


def test_any_number_of_subscriptions_and_list_filters(api, globex_api):
    plan = make_plan(api)
    a, b = _sub(api, plan=plan), _sub(api, plan=plan)
    assert api.post(f"/subscriptions/{b['id']}/cancel", {"atPeriodEnd": False}).status_code == 200
    listed = api.get("/subscriptions", {"userId": "alice"}).json()
    assert {s["id"] for s in listed["subscriptions"]} == {a["id"], b["id"]} and listed["count"] == 2
    active = api.get("/subscriptions", {"userId": "alice", "status": "active"}).json()["subscriptions"]
    assert [s["id"] for s in active] == [a["id"]]
    assert globex_api.get("/subscriptions", {"userId": "alice"}).json()["subscriptions"] == []
    assert_error(globex_api.get(f"/subscriptions/{a['id']}"), 404, "subscription not found")


def test_patch_plan_without_proration_and_quantity(api):
    plan, other = make_plan(api), make_plan(api, slug="max", name="Max", price=6000)
    sub = _sub(api, plan=plan)
    upd = patch(api, f"/subscriptions/{sub['id']}", {"planId": other["id"], "prorate": False}).json()
    assert upd["planId"] == other["id"] and upd["plan"]["price"] == 6000
    assert patch(api, f"/subscriptions/{sub['id']}", {"quantity": 3}).json()["quantity"] == 3
    assert patch(api, f"/subscriptions/{sub['id']}", {"quantity": 0}).json()["quantity"] == 3
    assert_error(patch(api, "/subscriptions/sub_nope", {"quantity": 2}), 404, "subscription not found")
    assert_error(patch(api, f"/subscriptions/{sub['id']}", {"planId": "plan_nope"}), 404, "new plan not found")
    assert_error(patch(api, f"/subscriptions/{sub['id']}", {"prorationBehavior": "sometimes"}), 400,
                 param="prorationBehavior")


def test_cancel_at_period_end_then_reactivate(api):
    sub = _sub(api, plan=make_plan(api))
    res = api.post(f"/subscriptions/{sub['id']}/cancel", {"atPeriodEnd": True}).json()
    assert res["status"] == "active" and res["cancelAtPeriodEnd"] is True and res["canceledAt"]
    assert "endedAt" not in res
    back = api.post(f"/subscriptions/{sub['id']}/reactivate").json()
    assert back["cancelAtPeriodEnd"] is False and "canceledAt" not in back and back["status"] == "active"


def test_cancel_without_body_is_at_period_end_and_immediate_is_final(api):
    sub = _sub(api, plan=make_plan(api))
    assert api.post(f"/subscriptions/{sub['id']}/cancel").json()["cancelAtPeriodEnd"] is True
    res = api.post(f"/subscriptions/{sub['id']}/cancel", {"atPeriodEnd": False}).json()
    assert res["status"] == "canceled" and res["endedAt"] == res["canceledAt"]
    assert_error(api.post(f"/subscriptions/{sub['id']}/cancel", {"atPeriodEnd": False}), 400,
                 "subscription is already canceled")
    assert_error(api.post(f"/subscriptions/{sub['id']}/reactivate"), 400,
                 "cannot reactivate a fully ended subscription")
    assert_error(api.post(f"/subscriptions/{sub['id']}/renew"), 409, contains="canceled")
    for action in ("cancel", "reactivate", "renew"):
        assert_error(api.post(f"/subscriptions/sub_nope/{action}"), 404, "subscription not found")
    assert_error(api.post(f"/subscriptions/{sub['id']}/renew", raw="[1]"), 400, "invalid request body")


def test_renew_without_funds_is_past_due_then_retry_pays(api, org_acme):
    sub = _sub(api, user="bob", plan=make_plan(api))
    res = api.post(f"/subscriptions/{sub['id']}/renew")
    assert res.status_code == 200, res.content
    data = res.json()
    assert data["collection"]["success"] is False and "insufficient funds" in data["collection"]["error"]
    assert data["subscription"]["status"] == "past_due"
    assert data["subscription"]["currentPeriodStart"] == sub["currentPeriodStart"]
    assert data["invoice"]["status"] == "open" and data["invoice"]["total"] == 3000
    assert data["invoice"]["subscriptionId"] == sub["id"]
    credit_services.credit_grant_create(organization=org_acme, user="bob", amount_cents=3000)
    again = api.post(f"/subscriptions/{sub['id']}/renew").json()
    assert again["invoice"]["id"] == data["invoice"]["id"]  # the same period's invoice, collected again
    assert again["collection"]["success"] is True and again["invoice"]["status"] == "paid"
    assert again["subscription"]["status"] == "active"
    assert again["subscription"]["currentPeriodStart"] == sub["currentPeriodEnd"]
    listed = api.get("/invoices", {"subscriptionId": sub["id"]}).json()["invoices"]
    assert [i["id"] for i in listed] == [data["invoice"]["id"]]
    assert BillingEvent.objects.filter(type="subscription.renewed", object_id=sub["id"]).count() == 1


def test_renew_bills_quantity(api, org_acme):
    sub = _sub(api, user="carol", plan=make_plan(api), quantity=3)
    credit_services.credit_grant_create(organization=org_acme, user="carol", amount_cents=9000)
    data = api.post(f"/subscriptions/{sub['id']}/renew").json()
    assert data["invoice"]["total"] == 9000 and data["collection"]["success"] is True
    assert Subscription.objects.get(public_id=sub["id"]).status == "active"


# --- items -------------------------------------------------------------------------------------------

def test_items_crud(api, globex_api):
    res = api.post("/subscription-items", {"subscriptionId": "sub_x", "planId": "plan_y", "quantity": -2,
                                           "metadata": {"a": 1}})
    assert res.status_code == 201, res.content
    item = res.json()
    assert item["billingMode"] == "licensed" and item["quantity"] == -2 and item["planId"] == "plan_y"
    assert "priceId" not in item and item["metadata"] == {"a": 1}
    assert [i["id"] for i in api.get("/subscription-items", {"subscriptionId": "sub_x"}).json()] == [item["id"]]
    assert patch(api, f"/subscription-items/{item['id']}", {"quantity": 0}).json()["quantity"] == -2
    assert patch(api, f"/subscription-items/{item['id']}", {"quantity": 5}).json()["quantity"] == 5
    assert_error(globex_api.get(f"/subscription-items/{item['id']}"), 404, "subscription item not found")
    assert api.delete(f"/subscription-items/{item['id']}").json() == {"deleted": True, "id": item["id"]}
    assert_error(api.get(f"/subscription-items/{item['id']}"), 404, "subscription item not found")
    assert_error(api.post("/subscription-items", {"planId": "p"}), 400, "subscriptionId is required")


# --- portal ------------------------------------------------------------------------------------------

def test_portal(api):
    assert_error(api.get("/portal/overview"), 400, "customerId is required")
    assert api.get("/portal/subscriptions", {"customerId": "nobody"}).json() == []
    assert api.get("/portal/invoices", {"customerId": "nobody"}).json() == []
    assert api.get("/portal/payment-methods", {"customerId": "nobody"}).json() == []
    plan = make_plan(api)
    keep, gone = _sub(api, user="dora", plan=plan), _sub(api, user="dora", plan=plan)
    api.post(f"/subscriptions/{gone['id']}/cancel", {"atPeriodEnd": False})
    overview = api.get("/portal/overview", {"customerId": "dora"}).json()
    assert overview["activeSubscriptions"] == 1 and overview["balance"] == 0 and overview["currency"] == "usd"
    rows = api.get("/portal/subscriptions", {"customerId": "dora"}).json()
    assert {r["id"] for r in rows} == {keep["id"], gone["id"]} and rows[0]["periodStart"]
    api.post("/invoices", {"userId": "dora", "lineItems": [{"description": "x", "amount": 5}]})
    invoices = api.get("/portal/invoices", {"customerId": "dora"}).json()
    assert invoices[0]["status"] == "draft" and invoices[0]["number"] is None


def test_test_clock_errors(api, globex_api):
    clock = api.post("/test-clocks", {"frozenTime": "2027-01-01T00:00:00Z"}).json()
    assert api.get(f"/test-clocks/{clock['id']}").json()["frozenTime"] == "2027-01-01T00:00:00Z"
    assert_error(api.post(f"/test-clocks/{clock['id']}/advance", {"frozenTime": "2026-12-31T00:00:00Z"}), 400,
                 param="frozenTime")
    assert_error(api.post(f"/test-clocks/{clock['id']}/advance", {"frozenTime": "soon"}), 400, param="frozenTime")
    assert_error(api.post(f"/test-clocks/{clock['id']}/advance", {}), 400, "frozenTime is required")
    assert_error(globex_api.post(f"/test-clocks/{clock['id']}/advance", {"frozenTime": "2027-02-01T00:00:00Z"}),
                 404, "test clock not found")
    assert_error(api.post("/subscriptions", {"userId": "u", "planId": make_plan(api)["id"], "testClock": "clock_x"}),
                 404, "test clock not found")


def test_patch_refused_writes_nothing_and_metadata_only_works_when_canceled(api):
    sub = _sub(api, plan=make_plan(api))
    assert_error(patch(api, f"/subscriptions/{sub['id']}", {"planId": "plan_nope", "metadata": {"x": 1}}), 404,
                 "new plan not found")
    assert api.get(f"/subscriptions/{sub['id']}").json()["metadata"] == {}
    api.post(f"/subscriptions/{sub['id']}/cancel", {"atPeriodEnd": False})
    assert patch(api, f"/subscriptions/{sub['id']}", {"metadata": {"x": 1}}).json()["metadata"] == {"x": 1}
    assert_error(patch(api, f"/subscriptions/{sub['id']}", {"quantity": 4}), 409,
                 "cannot update a canceled subscription")
