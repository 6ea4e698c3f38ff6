"""API: GET /webhook-endpoints/:id/deliveries, GET /deliveries/:id (attempts), POST /events/:id/resend,
GET /capabilities; admin: endpoints without secrets, deliveries with filters, audited "retry now"."""

from __future__ import annotations

import pytest
from django.urls import reverse

from billing_project.core.models import AuditLog
from tests.conftest import assert_error
from tests.webhooks.receiver import Receiver
from webhooks import services as webhook_services
from webhooks.models import Delivery
from webhooks.services import deliveries as svc
from webhooks.services import endpoints as endpoint_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def publish(org, type="invoice.paid"):
    return webhook_services.event_publish(organization=org, type=type, object_type="invoice", object_id="in_1",
                                          data={"amount": 1})


def delivered(org, receiver, script=None):
    if script:
        receiver.script = script
    ep = endpoint_services.endpoint_create(organization=org, url=receiver.url)
    event = publish(org)
    _h, claim = svc.events_fanout()
    svc.deliveries_send(claim=claim)
    return ep, event, Delivery.objects.get(event=event)


def test_endpoint_deliveries_and_delivery_with_attempts(api, org_acme, receiver):
    ep, event, delivery = delivered(org_acme, receiver, script=[(503, {})])
    listed = api.get(f"/webhook-endpoints/{ep.public_id}/deliveries").json()
    assert [d["id"] for d in listed] == [delivery.public_id]
    d = listed[0]
    assert (d["eventId"], d["eventType"], d["endpointId"], d["status"], d["attemptCount"], d["lastStatusCode"]) == (
        event.public_id, "invoice.paid", ep.public_id, "pending", 1, 503)
    assert d["nextAttemptAt"] and d["reason"] == "event" and "attempts" not in d
    detail = api.get(f"/deliveries/{delivery.public_id}").json()
    (attempt,) = detail["attempts"]
    assert (attempt["number"], attempt["outcome"], attempt["statusCode"]) == (1, "retry", 503)
    assert attempt["responseBody"] == '{"ok": true}' and attempt["latencyMs"] >= 0
    assert api.get(f"/webhook-endpoints/{ep.public_id}/deliveries", {"status": "succeeded"}).json() == []
    assert_error(api.get(f"/webhook-endpoints/{ep.public_id}/deliveries", {"status": "nope"}), 400, param="status")


def test_delivery_is_404_elsewhere(api, globex_api, org_acme, receiver):
    _ep, _event, delivery = delivered(org_acme, receiver)
    assert_error(globex_api.get(f"/deliveries/{delivery.public_id}"), 404, "webhook delivery not found")
    assert_error(api.get("/deliveries/whd_nope"), 404, "webhook delivery not found")
    assert_error(api.get("/webhook-endpoints/we_nope/deliveries"), 404, "webhook endpoint not found")


def test_resend_creates_new_deliveries_with_the_same_event(api, org_acme, receiver):
    ep, event, first = delivered(org_acme, receiver)
    r = api.post(f"/events/{event.public_id}/resend")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["event"]["id"] == event.public_id
    (again,) = body["deliveries"]
    assert again["id"] != first.public_id and again["reason"] == "resend" and again["status"] == "pending"
    assert again["endpointId"] == ep.public_id
    named = api.post(f"/events/{event.public_id}/resend", {"endpointId": ep.public_id}).json()
    assert len(named["deliveries"]) == 1


def test_resend_errors(api, globex_api, org_acme, receiver):
    ep, event, _d = delivered(org_acme, receiver)
    assert_error(api.post("/events/evt_nope/resend"), 404, "billing event not found")
    assert_error(globex_api.post(f"/events/{event.public_id}/resend"), 404, "billing event not found")
    assert_error(api.post(f"/events/{event.public_id}/resend", {"endpointId": "we_nope"}), 404,
                 "webhook endpoint not found")
    assert_error(api.post(f"/events/{event.public_id}/resend", raw="[]"), 400, "invalid request body")
    endpoint_services.endpoint_update(organization=org_acme, endpoint_id=ep.public_id, status="disabled")
    assert_error(api.post(f"/events/{event.public_id}/resend", {"endpointId": ep.public_id}), 409,
                 "webhook endpoint is not enabled (status: disabled)")
    assert api.post(f"/events/{event.public_id}/resend").json()["deliveries"] == []


def test_event_json_keeps_pending_and_livemode(api, org_acme, receiver):
    _ep, event, _d = delivered(org_acme, receiver)
    got = api.get(f"/events/{event.public_id}").json()
    assert got["pending"] is False and got["livemode"] is True


def test_capabilities_keeps_the_original_document_as_a_floor(api):
    r = api.get("/capabilities")
    assert r.status_code == 200
    doc = r.json()
    assert doc["bankTransferReconciliation"] is True and doc["taxCalculation"] is True
    assert {"card", "bank_account", "balance", "crypto"} <= set(doc["paymentMethods"])
    assert {"usd", "jpy", "btc", "lux"} <= set(doc["currencies"])
    assert {"webhooks", "billing_events", "subscriptions", "customer_portal"} <= set(doc["features"])
    assert {"flat_rate", "per_seat", "hybrid"} <= set(doc["billingModels"])
    enabled = doc["enabled"]
    assert {"code": "jpy", "exponent": 0} in enabled["currencies"]
    assert "btc" not in {c["code"] for c in enabled["currencies"]}
    assert enabled["features"]["webhooks"] is True and enabled["features"]["billing_events"] is True
    assert enabled["features"]["invoicing"] is True and enabled["features"]["credit_notes"] is True
    assert "tiered" in enabled["billingModels"]


# --- admin ----------------------------------------------------------------------------------------------

def test_admin_never_shows_the_secret(admin_client, org_acme):
    ep = endpoint_services.endpoint_create(organization=org_acme, url="https://hooks.example.com/x")
    for url in (reverse("admin:webhooks_webhookendpoint_changelist"),
                reverse("admin:webhooks_webhookendpoint_change", args=[ep.pk])):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert ep.secret not in page.content.decode()


def test_admin_deliveries_filters_attempts_and_audited_retry(admin_client, org_acme, receiver):
    ep, _event, delivery = delivered(org_acme, receiver, script=[(404, {}), (200, {})])
    assert delivery.status == "failed"
    changelist = reverse("admin:webhooks_delivery_changelist")
    for params in ({"status__exact": "failed"}, {"endpoint": ep.public_id}, {}):
        page = admin_client.get(changelist, params)
        assert page.status_code == 200 and delivery.public_id in page.content.decode()
    assert delivery.public_id not in admin_client.get(changelist, {"status__exact": "pending"}).content.decode()
    detail = admin_client.get(reverse("admin:webhooks_delivery_change", args=[delivery.pk])).content.decode()
    assert "webhook endpoint returned status 404" in detail  # the attempt, inline
    data = {"action": "retry_now", "_selected_action": [str(delivery.pk)]}
    asked = admin_client.post(changelist, data)
    assert asked.status_code == 200 and b"reason" in asked.content
    admin_client.post(changelist, {**data, "apply": "1", "reason": "receiver fixed"}, follow=True)
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.claim_token is not None
    audit = AuditLog.objects.get(action="webhook_delivery.retry")
    assert (audit.object_id, audit.reason, audit.data) == (delivery.public_id, "receiver fixed",
                                                           {"previousStatus": "failed"})
    assert svc.deliveries_send(claim=svc.Claim([delivery.pk], delivery.claim_token)) == {"succeeded": 1}
