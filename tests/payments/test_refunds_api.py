"""Refunds over HTTP: intents (partial, full by default, cumulative cap, captured-amount cap), invoices (every
source: card, customer balance / deposits, grants), errors, lists, events, postings and tenant isolation."""

from __future__ import annotations

import pytest

from billing_project.core.models import AuditLog
from invoicing.models import Invoice
from ledger import selectors as ledger_selectors
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction, CreditGrant, Entry
from ledger.services import credits as credit_services
from payments.models import PaymentIntent, Refund, SandboxOperation
from payments.services import intents as intent_services
from tests.conftest import assert_error
from tests.payments.intents_helpers import method
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db
CUSTOMER = "acme/buyer"


def _house(org, kind: str) -> int:
    """Net debit balance of a house account (debits − credits)."""
    total = 0
    for entry in Entry.objects.filter(account__organization=org, account__kind=kind, account__currency="usd"):
        total += entry.amount if entry.direction == Entry.DEBIT else -entry.amount
    return total


def succeeded_intent(org, amount: int = 5000, *, manual: bool = False, capture: int | None = None,
                     customer: str = CUSTOMER) -> PaymentIntent:
    pm = method(org, customer)
    intent = intent_services.payment_intent_create(organization=org, customer_id=customer, amount=amount,
                                                   payment_method_id=pm.public_id,
                                                   capture_method="manual" if manual else "")
    intent = intent_services.payment_intent_confirm(organization=org, intent_id=intent.public_id)
    if manual:
        intent = intent_services.payment_intent_capture(organization=org, intent_id=intent.public_id,
                                                        amount=capture or 0)
    return intent


def _refund(api, status: int = 201, **body) -> dict:
    response = api.post("/refunds", body)
    assert response.status_code == status, response.content
    return response.json()


def _open_invoice(api, amount: int, customer: str = CUSTOMER) -> dict:
    response = api.post("/invoices", {"userId": customer, "lineItems": [{"description": "Pro", "amount": amount}]})
    assert response.status_code == 201, response.content
    response = api.post(f"/invoices/{response.json()['id']}/finalize")
    assert response.status_code == 200, response.content
    return response.json()


def _pay(api, invoice_id: str) -> dict:
    response = api.post(f"/invoices/{invoice_id}/pay")
    assert response.status_code == 200 and response.json()["collection"]["success"], response.content
    return response.json()["invoice"]


# --- payment intents -------------------------------------------------------------------------------------

def test_partial_refund_of_an_intent(api, org_acme):
    intent = succeeded_intent(org_acme, 5000)
    clearing_before = _house(org_acme, Account.KIND_PROCESSOR_CLEARING)
    body = _refund(api, paymentIntentId=intent.public_id, amount=2000, reason="requested_by_customer")
    assert body["id"].startswith("re_")
    assert (body["paymentIntentId"], body["amount"], body["currency"], body["status"], body["reason"]) == (
        intent.public_id, 2000, "usd", "succeeded", "requested_by_customer")
    assert (body["cardAmount"], body["customerBalanceAmount"], body["creditAmount"]) == (2000, 0, 0)
    assert body["providerRef"].startswith("re_sbx_")
    got = api.get(f"/payment-intents/{intent.public_id}").json()
    assert (got["status"], got["amountReceived"], got["amountRefunded"]) == ("succeeded", 5000, 2000)
    # Dr payments_received / Cr processor_clearing; the processor was asked once, under the refund's id.
    assert _house(org_acme, Account.KIND_PROCESSOR_CLEARING) == clearing_before - 2000
    txn = BalanceTransaction.objects.get(type="payment_refund")
    assert (txn.amount, txn.source_id, txn.idempotency_key) == (2000, body["id"], f"refund:{body['id']}")
    assert SandboxOperation.objects.get(operation="refund").idempotency_key == body["id"]
    for type_ in ("refund.created", "refund.succeeded"):
        assert BillingEvent.objects.filter(type=type_, object_id=body["id"]).count() == 1
    assert BillingEvent.objects.filter(type="payment_intent.refunded", object_id=intent.public_id).count() == 1
    assert ledger_selectors.ledger_audit().ok


def test_full_refund_by_default_then_nothing_left(api, org_acme):
    intent = succeeded_intent(org_acme, 3300)
    assert _refund(api, paymentIntentId=intent.public_id)["amount"] == 3300
    assert_error(api.post("/refunds", {"paymentIntentId": intent.public_id}), 400, param="amount",
                 contains="exceeds")
    assert_error(api.post("/refunds", {"paymentIntentId": intent.public_id, "amount": 1}), 400, contains="exceeds")
    assert Refund.objects.count() == 1


def test_negative_amount_means_everything_left(api, org_acme):
    intent = succeeded_intent(org_acme, 1000)
    _refund(api, paymentIntentId=intent.public_id, amount=300)
    assert _refund(api, paymentIntentId=intent.public_id, amount=-1)["amount"] == 700


def test_cap_is_cumulative(api, org_acme):
    intent = succeeded_intent(org_acme, 1000)
    _refund(api, paymentIntentId=intent.public_id, amount=600)
    assert_error(api.post("/refunds", {"paymentIntentId": intent.public_id, "amount": 401}), 400,
                 "refund amount 401 exceeds the refundable amount 400 (received 1000, 600 already refunded, in "
                 "flight or disputed)", param="amount")
    _refund(api, paymentIntentId=intent.public_id, amount=400)
    assert PaymentIntent.objects.get(pk=intent.pk).amount_refunded == 1000


def test_over_refund_stores_nothing(api, org_acme):
    intent = succeeded_intent(org_acme, 1000)
    assert_error(api.post("/refunds", {"paymentIntentId": intent.public_id, "amount": 1001}), 400,
                 "refund amount 1001 exceeds received amount 1000", param="amount")
    assert api.get("/refunds", {"paymentIntentId": intent.public_id}).json() == []
    assert not BalanceTransaction.objects.filter(type="payment_refund").exists()
    assert not BillingEvent.objects.filter(type__startswith="refund.").exists()


def test_limit_is_the_captured_amount(api, org_acme):
    intent = succeeded_intent(org_acme, 5000, manual=True, capture=3000)
    assert_error(api.post("/refunds", {"paymentIntentId": intent.public_id, "amount": 4000}), 400,
                 contains="exceeds")
    assert _refund(api, paymentIntentId=intent.public_id, amount=3000)["amount"] == 3000


def test_only_succeeded_intents(api, org_acme):
    pm = method(org_acme, CUSTOMER)
    intent = intent_services.payment_intent_create(organization=org_acme, customer_id=CUSTOMER, amount=500,
                                                   payment_method_id=pm.public_id)
    assert_error(api.post("/refunds", {"paymentIntentId": intent.public_id}), 409,
                 "can only refund succeeded payment intents, current: requires_confirmation")


@pytest.mark.parametrize("body,status,message,param", [
    ({"amount": 100}, 400, "either paymentIntentId or invoiceId is required", "paymentIntentId"),
    ({"paymentIntentId": "pi_nope"}, 404, "payment intent not found: pi_nope", "paymentIntentId"),
    ({"invoiceId": "in_nope"}, 404, "invoice not found: in_nope", "invoiceId"),
    ({"paymentIntentId": 7}, 400, None, "paymentIntentId"),
    ({"paymentIntentId": "pi_x", "amount": "10"}, 400, None, "amount"),
])
def test_create_errors(api, body, status, message, param):
    assert_error(api.post("/refunds", body), status, message, param=param)
    assert not Refund.objects.exists()


def test_invalid_body(api):
    assert_error(api.post("/refunds", raw="not json"), 400, contains="invalid request body")
    assert_error(api.post("/refunds", raw=""), 400, contains="invalid request body")


def test_get_and_list(api, org_acme):
    intent = succeeded_intent(org_acme, 1000)
    other = succeeded_intent(org_acme, 1000, customer="acme/other")
    r1 = _refund(api, paymentIntentId=intent.public_id, amount=100)
    r2 = _refund(api, paymentIntentId=intent.public_id, amount=200, metadata={"ticket": "7"})
    _refund(api, paymentIntentId=other.public_id, amount=50)
    got = api.get(f"/refunds/{r2['id']}").json()
    assert (got["id"], got["amount"], got["metadata"]) == (r2["id"], 200, {"ticket": "7"})
    listed = api.get("/refunds", {"paymentIntentId": intent.public_id}).json()
    assert [r["id"] for r in listed] == [r2["id"], r1["id"]]
    assert len(api.get("/refunds").json()) == 3
    page = api.get("/refunds", {"limit": 1})
    assert len(page.json()) == 1 and 'rel="next"' in page["Link"]
    assert_error(api.get("/refunds/re_nope"), 404, "refund not found")


def test_tenant_isolation(api, globex_api, org_acme):
    intent = succeeded_intent(org_acme, 1000)
    refund = _refund(api, paymentIntentId=intent.public_id, amount=100)
    assert_error(globex_api.get(f"/refunds/{refund['id']}"), 404)
    assert globex_api.get("/refunds").json() == []
    assert_error(globex_api.post("/refunds", {"paymentIntentId": intent.public_id}), 404)


def test_idempotency_key_replays_the_refund(api, org_acme):
    intent = succeeded_intent(org_acme, 1000)
    body = {"paymentIntentId": intent.public_id, "amount": 400}
    first = api.post("/refunds", body, idempotency_key="k1")
    again = api.post("/refunds", body, idempotency_key="k1")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert Refund.objects.count() == 1


# --- invoices --------------------------------------------------------------------------------------------

def test_invoice_paid_by_a_grant_gets_a_like_grant_back(api, org_acme):
    invoice = _open_invoice(api, 1800)
    source = credit_services.credit_grant_create(organization=org_acme, user=CUSTOMER, amount_cents=1800,
                                                 name="Promo", currency="usd")
    _pay(api, invoice["id"])
    body = _refund(api, invoiceId=invoice["id"])
    assert (body["invoiceId"], body["amount"], body["status"]) == (invoice["id"], 1800, "succeeded")
    assert (body["cardAmount"], body["customerBalanceAmount"], body["creditAmount"]) == (0, 0, 1800)
    assert "paymentIntentId" not in body
    [returned] = body["creditGrants"]
    assert (returned["sourceGrantId"], returned["amount"]) == (source.public_id, 1800)
    grant = CreditGrant.objects.get(public_id=returned["grantId"])
    assert (grant.customer, grant.remaining_cents, grant.name) == (CUSTOMER, 1800, f"Promo (refund {body['id']})")
    got = api.get(f"/invoices/{invoice['id']}").json()
    assert (got["status"], got["amountPaid"], got["amountRefunded"]) == ("paid", 1800, 1800)
    assert_error(api.post("/refunds", {"invoiceId": invoice["id"], "amount": 1}), 400, contains="exceeds")
    assert BillingEvent.objects.filter(type="invoice.updated", object_id=invoice["id"]).count() == 1
    assert ledger_selectors.ledger_audit().ok


def test_invoice_paid_by_deposits_and_balance_credits_the_customer_balance(api, org_acme):
    invoice = _open_invoice(api, 1000)
    ledger_services.deposit_create(organization=org_acme, user=CUSTOMER, amount=1000, currency="usd")
    _pay(api, invoice["id"])
    body = _refund(api, invoiceId=invoice["id"], amount=400)
    assert (body["customerBalanceAmount"], body["creditAmount"], body["cardAmount"]) == (400, 0, 0)
    balance = api.get("/customer-balance", {"customerId": CUSTOMER}).json()["balance"]
    assert balance == 400
    assert_error(api.post("/refunds", {"invoiceId": invoice["id"], "amount": 601}), 400,
                 contains="exceeds the refundable amount 600")
    assert _refund(api, invoiceId=invoice["id"])["amount"] == 600
    assert Invoice.objects.get(public_id=invoice["id"]).amount_refunded == 1000
    assert ledger_selectors.ledger_audit().ok


def test_invoice_with_a_card_part_refunds_the_card_first(api, org_acme):
    """An invoice paid partly by grant, partly by card (its collection intent): the card goes back first."""
    invoice = _open_invoice(api, 1000)
    credit_services.credit_grant_create(organization=org_acme, user=CUSTOMER, amount_cents=1000, currency="usd")
    _pay(api, invoice["id"])
    card = succeeded_intent(org_acme, 300)
    # Simulate what invoice collection records for a card remainder (the collection helper owns that path).
    PaymentIntent.objects.filter(pk=card.pk).update(purpose=PaymentIntent.PURPOSE_INVOICE, invoice_id=invoice["id"])
    Invoice.objects.filter(public_id=invoice["id"]).update(credit_applied=700, provider_paid=300)
    body = _refund(api, invoiceId=invoice["id"], amount=500)
    assert (body["cardAmount"], body["creditAmount"], body["paymentIntentId"]) == (300, 200, card.public_id)
    assert PaymentIntent.objects.get(pk=card.pk).amount_refunded == 300
    # the card part left the invoice's revenue side: Dr credit_notes / Cr clearing
    txn = BalanceTransaction.objects.get(type="payment_refund", source_id=body["id"])
    assert {e.account.kind for e in txn.entries.all()} == {Account.KIND_CREDIT_NOTES,
                                                          Account.KIND_PROCESSOR_CLEARING}
    # refunding the intent directly now counts against the invoice too
    assert_error(api.post("/refunds", {"paymentIntentId": card.public_id, "amount": 1}), 400, contains="exceeds")
    assert _refund(api, invoiceId=invoice["id"])["amount"] == 500


def test_only_paid_invoices(api):
    invoice = _open_invoice(api, 1000)
    assert_error(api.post("/refunds", {"invoiceId": invoice["id"]}), 409,
                 "can only refund paid invoices, current: open")


def test_credit_notes_on_a_paid_invoice_count_against_the_cap(api, org_acme):
    invoice = _open_invoice(api, 1000)
    ledger_services.deposit_create(organization=org_acme, user=CUSTOMER, amount=1000, currency="usd")
    _pay(api, invoice["id"])
    assert api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": 700}).status_code == 201
    assert_error(api.post("/refunds", {"invoiceId": invoice["id"], "amount": 301}), 400, contains="exceeds")
    assert _refund(api, invoiceId=invoice["id"])["amount"] == 300


def test_list_by_invoice(api, org_acme):
    invoice = _open_invoice(api, 500)
    ledger_services.deposit_create(organization=org_acme, user=CUSTOMER, amount=500, currency="usd")
    _pay(api, invoice["id"])
    refund = _refund(api, invoiceId=invoice["id"], amount=50)
    assert [r["id"] for r in api.get("/refunds", {"invoiceId": invoice["id"]}).json()] == [refund["id"]]
    assert api.get("/refunds", {"invoiceId": "in_other"}).json() == []


def test_both_ids_the_intent_wins_and_the_invoice_id_is_stored(api, org_acme):
    intent = succeeded_intent(org_acme, 1000)
    body = _refund(api, paymentIntentId=intent.public_id, invoiceId="in_whatever", amount=100)
    assert (body["paymentIntentId"], body["invoiceId"]) == (intent.public_id, "in_whatever")
    assert Refund.objects.get(public_id=body["id"]).invoice is None


def test_admin_action_refund_is_audited(org_acme):
    from payments.services import refunds as svc
    intent = succeeded_intent(org_acme, 800)
    refund = svc.refund_create(organization=org_acme, payment_intent_id=intent.public_id, reason="goodwill",
                               actor="staff@acme")
    log = AuditLog.objects.get(action="refund")
    assert (log.actor, log.object_id, log.reason, log.data["amount"]) == ("staff@acme", refund.public_id,
                                                                          "goodwill", 800)


def test_refunds_count_against_credit_notes(api, org_acme):
    invoice = _open_invoice(api, 1000)
    ledger_services.deposit_create(organization=org_acme, user=CUSTOMER, amount=1000, currency="usd")
    _pay(api, invoice["id"])
    _refund(api, invoiceId=invoice["id"], amount=600)
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": 401}), 409,
                 contains="credit notes would exceed the invoice total: 400 of 1000")
    assert api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": 400}).status_code == 201
    assert_error(api.post("/refunds", {"invoiceId": invoice["id"]}), 400, contains="exceeds")
