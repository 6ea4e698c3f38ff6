"""ledger_audit checks refunds and disputes against their postings, and finds drift."""

from __future__ import annotations

import pytest

from invoicing.models import Invoice
from ledger import selectors as ledger_selectors
from ledger import services as ledger_services
from payments.models import Dispute, PaymentIntent, Refund
from payments.selectors.audit_refunds import clearing_refunds_and_disputes, refunds_ledger_drift
from payments.services import disputes as dispute_services
from payments.services import refunds as svc
from tests.payments.test_disputes_api import disputed_intent
from tests.payments.test_refunds_api import _open_invoice, _pay, succeeded_intent

pytestmark = pytest.mark.django_db
CUSTOMER = "acme/buyer"


def test_clean_after_refunds_and_disputes_and_drift_is_reported(api, org_acme):
    intent = succeeded_intent(org_acme, 1000)
    svc.refund_create(organization=org_acme, payment_intent_id=intent.public_id, amount=300)
    disputed = disputed_intent(org_acme, 500)
    won = disputed_intent(org_acme, 200)
    dispute_services.dispute_close(organization=org_acme, dispute_id=Dispute.objects.get(payment_intent=won).public_id,
                                   outcome="won")
    invoice = _open_invoice(api, 400)
    ledger_services.deposit_create(organization=org_acme, user=CUSTOMER, amount=400, currency="usd")
    _pay(api, invoice["id"])
    svc.refund_create(organization=org_acme, invoice_id=invoice["id"], amount=150)
    assert refunds_ledger_drift() == []
    assert ledger_selectors.ledger_audit().ok
    assert clearing_refunds_and_disputes() == {(org_acme.pk, "usd"): 300 + 500}

    PaymentIntent.objects.filter(pk=intent.pk).update(amount_refunded=0)
    Invoice.objects.filter(public_id=invoice["id"]).update(refunds_pending=10)
    Dispute.objects.filter(payment_intent=disputed).update(funds="released")
    Refund.objects.filter(payment_intent=intent).update(card_amount=299, balance_amount=1)
    lines = refunds_ledger_drift()
    assert any(line.startswith(f"payment intent {intent.public_id}") for line in lines)
    assert any(line.startswith(f"invoice {invoice['id']}") for line in lines)
    assert any(line.startswith("dispute ") for line in lines)
    assert any(line.startswith("refund ") for line in lines)
    assert not ledger_selectors.ledger_audit().ok
