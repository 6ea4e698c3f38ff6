"""Disputes: opened by the processor (sandbox card …0259) with the funds held, evidence merged, close won
(funds reinstated) or lost (a loss), closed disputes keep their outcome; refunds never take disputed money."""

from __future__ import annotations

import json

import pytest

from billing_project.core.models import AuditLog
from ledger import selectors as ledger_selectors
from ledger.models import Account, BalanceTransaction
from payments.models import Dispute
from payments.processors.base import ProcessorResult
from payments.services import disputes as dispute_services
from payments.services import intents as intent_services
from tests.conftest import assert_error
from tests.payments.intents_helpers import DISPUTE, method
from tests.payments.test_refunds_api import _house, succeeded_intent
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db
CUSTOMER = "acme/buyer"


def disputed_intent(org, amount: int = 2000, *, manual: bool = False, capture: int = 0):
    pm = method(org, CUSTOMER, DISPUTE)
    intent = intent_services.payment_intent_create(organization=org, customer_id=CUSTOMER, amount=amount,
                                                   payment_method_id=pm.public_id,
                                                   capture_method="manual" if manual else "")
    intent = intent_services.payment_intent_confirm(organization=org, intent_id=intent.public_id)
    if manual:
        intent = intent_services.payment_intent_capture(organization=org, intent_id=intent.public_id,
                                                        amount=capture)
    return intent


def _patch(api, dispute_id: str, body=None, *, raw: str | None = None):
    """PATCH through the schema-checked client."""
    url = f"/api/v1/billing/disputes/{dispute_id}"
    payload = raw if raw is not None else json.dumps(body)
    return api._checked("PATCH", url, api.client.generic("PATCH", url, payload, content_type="application/json"))


def _events(type_: str, object_id: str) -> int:
    return BillingEvent.objects.filter(type=type_, object_id=object_id).count()


def test_a_disputed_charge_opens_a_dispute_and_holds_the_funds(api, org_acme):
    clearing_before = _house(org_acme, Account.KIND_PROCESSOR_CLEARING)
    intent = disputed_intent(org_acme, 2000)
    assert intent.status == "succeeded"
    dispute = Dispute.objects.get(payment_intent=intent)
    body = api.get(f"/disputes/{dispute.public_id}").json()
    assert body["id"].startswith("dp_")
    assert (body["paymentIntentId"], body["amount"], body["currency"], body["status"], body["funds"]) == (
        intent.public_id, 2000, "usd", "needs_response", "held")
    assert body["evidence"] == {"customerName": "", "customerEmailAddress": "", "productDescription": "",
                                "serviceDate": "", "uncategorizedText": ""}
    assert body["reason"] == "fraudulent" and body["evidenceDueBy"]
    assert _house(org_acme, Account.KIND_DISPUTES_HELD) == 2000
    assert _house(org_acme, Account.KIND_PROCESSOR_CLEARING) == clearing_before + 2000 - intent.fee - 2000
    assert _events("dispute.created", dispute.public_id) == 1
    assert _events("dispute.funds_withdrawn", dispute.public_id) == 1
    assert ledger_selectors.ledger_audit().ok


def test_a_manual_capture_of_a_disputed_card_disputes_the_captured_amount(org_acme):
    intent = disputed_intent(org_acme, 5000, manual=True, capture=3000)
    assert Dispute.objects.get(payment_intent=intent).amount == 3000


def test_an_ordinary_card_opens_no_dispute(api, org_acme):
    intent = succeeded_intent(org_acme, 100)
    assert api.get("/disputes", {"paymentIntentId": intent.public_id}).json() == []
    assert api.get("/disputes").json() == []


def test_list_by_intent(api, org_acme):
    one = disputed_intent(org_acme, 100)
    two = disputed_intent(org_acme, 200)
    listed = api.get("/disputes", {"paymentIntentId": one.public_id}).json()
    assert [d["paymentIntentId"] for d in listed] == [one.public_id]
    assert {d["paymentIntentId"] for d in api.get("/disputes").json()} == {one.public_id, two.public_id}


def test_evidence_is_merged_and_puts_the_dispute_under_review(api, org_acme):
    dispute = Dispute.objects.get(payment_intent=disputed_intent(org_acme))
    first = _patch(api, dispute.public_id, {"customerName": "Ann", "serviceDate": "2026-11-01"})
    assert first.status_code == 200, first.content
    assert first.json()["status"] == "under_review"
    second = _patch(api, dispute.public_id, {"uncategorizedText": "delivered", "customerName": None}).json()
    assert second["evidence"] == {"customerName": "Ann", "customerEmailAddress": "", "productDescription": "",
                                  "serviceDate": "2026-11-01", "uncategorizedText": "delivered"}
    assert _events("dispute.updated", dispute.public_id) == 2


def test_evidence_errors(api, org_acme):
    dispute = Dispute.objects.get(payment_intent=disputed_intent(org_acme))
    assert_error(_patch(api, "dp_nope", raw="x"), 404, "dispute not found")  # 404 before the body
    assert_error(_patch(api, dispute.public_id, raw="x"), 400, contains="invalid request body")
    assert_error(_patch(api, dispute.public_id, {"customerName": 5}), 400, param="customerName")
    assert Dispute.objects.get(pk=dispute.pk).status == "needs_response"


def test_close_won_reinstates_the_funds(api, org_acme):
    intent = disputed_intent(org_acme, 2000)
    dispute = Dispute.objects.get(payment_intent=intent)
    clearing = _house(org_acme, Account.KIND_PROCESSOR_CLEARING)
    body = api.post(f"/disputes/{dispute.public_id}/close", {"outcome": "won"}).json()
    assert (body["status"], body["funds"]) == ("won", "released") and body["closedAt"]
    assert _house(org_acme, Account.KIND_DISPUTES_HELD) == 0
    assert _house(org_acme, Account.KIND_PROCESSOR_CLEARING) == clearing + 2000
    assert _events("dispute.closed", dispute.public_id) == 1
    assert _events("dispute.funds_reinstated", dispute.public_id) == 1
    # a won dispute is never forced to lost, and takes no more evidence
    assert_error(api.post(f"/disputes/{dispute.public_id}/close"), 409, "dispute is already closed (status won)")
    assert api.post(f"/disputes/{dispute.public_id}/close", {"outcome": "won"}).status_code == 200
    assert_error(_patch(api, dispute.public_id, {"customerName": "x"}), 409,
                 "cannot submit evidence for a closed dispute (status won)")
    assert BalanceTransaction.objects.filter(type="dispute_release").count() == 1
    assert ledger_selectors.ledger_audit().ok


def test_close_defaults_to_lost(api, org_acme):
    dispute = Dispute.objects.get(payment_intent=disputed_intent(org_acme, 700))
    body = api.post(f"/disputes/{dispute.public_id}/close").json()
    assert (body["status"], body["funds"]) == ("lost", "lost")
    assert _house(org_acme, Account.KIND_DISPUTES_HELD) == 0
    assert _house(org_acme, Account.KIND_DISPUTE_LOSSES) == 700
    again = api.post(f"/disputes/{dispute.public_id}/close", {})
    assert again.status_code == 200 and again.json()["status"] == "lost"
    assert BalanceTransaction.objects.filter(type="dispute_loss").count() == 1
    assert _events("dispute.closed", dispute.public_id) == 1
    assert ledger_selectors.ledger_audit().ok


def test_close_errors(api, globex_api, org_acme):
    dispute = Dispute.objects.get(payment_intent=disputed_intent(org_acme))
    assert_error(api.post("/disputes/dp_nope/close", raw="[1]"), 404, "dispute not found")
    assert_error(api.post(f"/disputes/{dispute.public_id}/close", {"outcome": "maybe"}), 400,
                 "outcome must be one of: won, lost", param="outcome")
    assert_error(api.post(f"/disputes/{dispute.public_id}/close", raw="[1]"), 400, contains="invalid request body")
    assert_error(globex_api.post(f"/disputes/{dispute.public_id}/close"), 404)
    assert_error(globex_api.get(f"/disputes/{dispute.public_id}"), 404)
    assert globex_api.get("/disputes").json() == []
    assert Dispute.objects.get(pk=dispute.pk).status == "needs_response"


def test_disputed_money_cannot_be_refunded_until_won(api, org_acme):
    intent = disputed_intent(org_acme, 1000)
    assert_error(api.post("/refunds", {"paymentIntentId": intent.public_id, "amount": 1}), 400, contains="exceeds")
    dispute = Dispute.objects.get(payment_intent=intent)
    api.post(f"/disputes/{dispute.public_id}/close", {"outcome": "won"})
    assert api.post("/refunds", {"paymentIntentId": intent.public_id}).json()["amount"] == 1000


def test_staff_close_and_evidence_are_audited(org_acme):
    dispute = Dispute.objects.get(payment_intent=disputed_intent(org_acme))
    dispute_services.dispute_evidence_submit(organization=org_acme, dispute_id=dispute.public_id,
                                             evidence={"productDescription": "SaaS"}, actor="staff@acme")
    dispute_services.dispute_close(organization=org_acme, dispute_id=dispute.public_id, outcome="won",
                                   actor="staff@acme", reason="bank agreed")
    assert list(AuditLog.objects.filter(object_id=dispute.public_id).values_list("action", "actor")) == [
        ("dispute.evidence", "staff@acme"), ("dispute.close", "staff@acme")]


def test_opening_twice_for_one_capture_is_a_no_op(org_acme):
    intent = disputed_intent(org_acme, 900)
    dispute = Dispute.objects.get(payment_intent=intent)
    attempt = intent.attempts.get()
    assert dispute_services.dispute_open_locked(intent=intent, attempt=attempt,
                                                result=ProcessorResult(status="succeeded", amount=900)) is None
    assert Dispute.objects.count() == 1 and dispute.amount == 900
