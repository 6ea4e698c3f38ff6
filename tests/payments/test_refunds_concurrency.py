"""Refunds on real PostgreSQL under concurrency and processor failures: concurrent refunds never over-refund
(intent or invoice); a refused refund fails and frees its reservation; a timeout or a crash between the call
and the apply leaves a pending refund the sweeper settles with the same key — nothing lost or doubled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing_project.core.errors import ApplicationError
from invoicing.models import Invoice
from ledger import selectors as ledger_selectors
from ledger import services as ledger_services
from ledger.models import BalanceTransaction
from payments import tasks as tasks_refunds
from payments.models import Dispute, PaymentIntent, Refund, SandboxOperation
from payments.processors import base
from payments.processors.base import ProcessorError, ProcessorResult
from payments.processors.registry import processor_override
from payments.processors.sandbox import SandboxProcessor
from payments.services import disputes as dispute_services
from payments.services import refunds as svc
from tests.payments.test_disputes_api import disputed_intent
from tests.payments.test_refunds_api import succeeded_intent
from tests.threads import run_threads
from webhooks.models import BillingEvent

CUSTOMER = "acme/buyer"


class RefusingProcessor(SandboxProcessor):
    def refund(self, **kwargs) -> ProcessorResult:
        return ProcessorResult(status=base.DECLINED, decline_code="charge_already_refunded",
                               message="the charge was already refunded")


class UnreachableProcessor(SandboxProcessor):
    """The refund call never reaches the processor."""

    def refund(self, **kwargs) -> ProcessorResult:
        raise ProcessorError("connection refused")


class TimeoutProcessor(SandboxProcessor):
    """The refund happens at the processor but the answer is lost."""

    def __init__(self):
        self.calls = 0

    def refund(self, **kwargs) -> ProcessorResult:
        self.calls += 1
        super().refund(**kwargs)
        raise TimeoutError("read timed out")


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_refunds_of_an_intent_never_over_refund(org_acme):
    intent = succeeded_intent(org_acme, 1000)
    outcomes = run_threads(8, lambda i: svc.refund_create(organization=org_acme,
                                                          payment_intent_id=intent.public_id, amount=300),
                           catch=(ApplicationError,))
    ok = [o for o in outcomes if isinstance(o, Refund)]
    refused = [o for o in outcomes if isinstance(o, ApplicationError)]
    assert len(ok) == 3 and len(refused) == 5
    assert all(e.status == 400 and "exceeds" in e.message for e in refused)
    intent.refresh_from_db()
    assert intent.amount_refunded == 900
    assert Refund.objects.count() == 3
    assert SandboxOperation.objects.filter(operation="refund").count() == 3
    assert sum(BalanceTransaction.objects.filter(type="payment_refund").values_list("amount", flat=True)) == 900
    assert ledger_selectors.ledger_audit().ok


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_full_refunds_of_an_invoice_refund_it_once(api, org_acme):
    response = api.post("/invoices", {"userId": CUSTOMER, "lineItems": [{"description": "Pro", "amount": 1200}]})
    invoice_id = response.json()["id"]
    api.post(f"/invoices/{invoice_id}/finalize")
    ledger_services.deposit_create(organization=org_acme, user=CUSTOMER, amount=1200, currency="usd")
    assert api.post(f"/invoices/{invoice_id}/pay").json()["collection"]["success"]
    outcomes = run_threads(8, lambda i: svc.refund_create(organization=org_acme, invoice_id=invoice_id),
                           catch=(ApplicationError,))
    assert len([o for o in outcomes if isinstance(o, Refund)]) == 1
    assert Invoice.objects.get(public_id=invoice_id).amount_refunded == 1200
    assert api.get("/customer-balance", {"customerId": CUSTOMER}).json()["balance"] == 1200
    assert ledger_selectors.ledger_audit().ok


@pytest.mark.django_db
def test_a_refused_refund_fails_committed_and_frees_its_reservation(api, org_acme):
    intent = succeeded_intent(org_acme, 1000)
    with processor_override(RefusingProcessor()):
        response = api.post("/refunds", {"paymentIntentId": intent.public_id, "amount": 1000})
    assert response.status_code == 402, response.content
    assert response.json()["error"]["message"] == "refund failed: the charge was already refunded"
    [failed] = api.get("/refunds", {"paymentIntentId": intent.public_id}).json()
    assert (failed["status"], failed["failureReason"]) == ("failed", "the charge was already refunded")
    assert BillingEvent.objects.filter(type="refund.failed", object_id=failed["id"]).count() == 1
    assert not BalanceTransaction.objects.filter(type="payment_refund").exists()
    assert PaymentIntent.objects.get(pk=intent.pk).amount_refunded == 0
    assert api.post("/refunds", {"paymentIntentId": intent.public_id}).json()["amount"] == 1000


@pytest.mark.django_db
def test_an_unreachable_processor_leaves_it_pending_and_the_sweeper_fails_it(api, org_acme):
    intent = succeeded_intent(org_acme, 1000)
    with processor_override(UnreachableProcessor()):
        body = api.post("/refunds", {"paymentIntentId": intent.public_id, "amount": 600}).json()
    assert body["status"] == "pending"
    # the pending refund still counts against the cap
    assert "exceeds" in api.post("/refunds", {"paymentIntentId": intent.public_id, "amount": 401}).json()[
        "error"]["message"]
    assert svc.refunds_pending_claim() == []  # too young to be swept
    later = timezone.now() + timedelta(minutes=3)
    [pk] = svc.refunds_pending_claim(now=later)
    assert svc.refunds_pending_claim(now=later) == []  # claimed: an overlapping sweep skips it
    refund = svc.refund_reconcile(refund_pk=pk)
    assert (refund.status, refund.failure_reason) == ("failed", "the processor has no record of this refund")
    assert PaymentIntent.objects.get(pk=intent.pk).amount_refunded == 0
    assert ledger_selectors.ledger_audit().ok


@pytest.mark.django_db
def test_a_timeout_is_settled_once_by_the_sweeper(api, org_acme, settings):
    intent = succeeded_intent(org_acme, 1000)
    timeout = TimeoutProcessor()
    with processor_override(timeout):
        body = api.post("/refunds", {"paymentIntentId": intent.public_id, "amount": 1000}).json()
    assert body["status"] == "pending" and timeout.calls == 1
    Refund.objects.filter(public_id=body["id"]).update(created_at=timezone.now() - timedelta(minutes=5))
    settings.CELERY_TASK_ALWAYS_EAGER = True
    tasks_refunds.refund_reconcile.app.conf.task_always_eager = True
    try:
        assert tasks_refunds.refunds_reconcile_sweep() == 1
    finally:
        tasks_refunds.refund_reconcile.app.conf.task_always_eager = False
    refund = Refund.objects.get(public_id=body["id"])
    assert refund.status == "succeeded"
    assert svc.refund_reconcile(refund_pk=refund.pk).status == "succeeded"  # again: nothing happens
    assert SandboxOperation.objects.filter(operation="refund").count() == 1
    assert BalanceTransaction.objects.filter(type="payment_refund").count() == 1
    assert PaymentIntent.objects.get(pk=intent.pk).amount_refunded == 1000
    assert ledger_selectors.ledger_audit().ok


@pytest.mark.django_db
def test_a_crash_between_call_and_apply_is_applied_once(org_acme):
    intent = succeeded_intent(org_acme, 800)
    customer = intent.customer
    refund = svc._begin(organization=org_acme, customer=customer, intent=intent, invoice=None, by_intent=True,
                        amount=500, reason="", invoice_ref="", metadata={}, actor="")
    result = svc.refund_call(refund)  # the processor refunded; then the worker died before applying
    assert result.status == base.SUCCEEDED
    assert svc.refund_reconcile(refund_pk=refund.pk).status == "succeeded"
    assert svc.refund_apply(refund_pk=refund.pk, result=result)[1] is False  # the late apply changes nothing
    assert PaymentIntent.objects.get(pk=intent.pk).amount_refunded == 500
    assert BalanceTransaction.objects.filter(type="payment_refund").count() == 1
    assert ledger_selectors.ledger_audit().ok


@pytest.mark.django_db
def test_an_invoice_refund_in_flight_is_reserved_on_the_invoice(api, org_acme):
    response = api.post("/invoices", {"userId": CUSTOMER, "lineItems": [{"description": "Pro", "amount": 500}]})
    invoice_id = response.json()["id"]
    api.post(f"/invoices/{invoice_id}/finalize")
    ledger_services.deposit_create(organization=org_acme, user=CUSTOMER, amount=500, currency="usd")
    assert api.post(f"/invoices/{invoice_id}/pay").json()["collection"]["success"]
    card = succeeded_intent(org_acme, 500)
    PaymentIntent.objects.filter(pk=card.pk).update(purpose=PaymentIntent.PURPOSE_INVOICE, invoice_id=invoice_id)
    Invoice.objects.filter(public_id=invoice_id).update(deposits_applied=0, provider_paid=500)
    with processor_override(UnreachableProcessor()):
        body = api.post("/refunds", {"invoiceId": invoice_id}).json()
    assert (body["status"], body["cardAmount"]) == ("pending", 500)
    invoice = Invoice.objects.get(public_id=invoice_id)
    assert (invoice.refunds_pending, invoice.amount_refunded) == (500, 0)
    assert api.post("/credit-notes", {"invoiceId": invoice_id, "amount": 1}).status_code == 409
    assert svc.refund_reconcile(refund_pk=Refund.objects.get().pk).status == "failed"
    invoice.refresh_from_db()
    assert (invoice.refunds_pending, invoice.amount_refunded) == (0, 0)
    assert api.post("/refunds", {"invoiceId": invoice_id}).json()["status"] == "succeeded"
    invoice.refresh_from_db()
    assert (invoice.refunds_pending, invoice.amount_refunded) == (0, 500)
    assert PaymentIntent.objects.get(pk=card.pk).amount_refunded == 500


@pytest.mark.django_db(transaction=True)
def test_concurrent_closes_of_a_dispute_close_it_once(org_acme):
    dispute = Dispute.objects.get(payment_intent=disputed_intent(org_acme, 900))
    outcomes = run_threads(8, lambda i: dispute_services.dispute_close(
        organization=org_acme, dispute_id=dispute.public_id, outcome="won" if i % 2 else "lost"),
        catch=(ApplicationError,))
    dispute.refresh_from_db()
    winners = [o for o in outcomes if isinstance(o, Dispute) and o.status == dispute.status]
    refused = [o for o in outcomes if isinstance(o, ApplicationError)]
    assert len(winners) == 4 and len(refused) == 4 and all(e.status == 409 for e in refused)
    assert BalanceTransaction.objects.filter(type__in=("dispute_release", "dispute_loss")).count() == 1
    assert BillingEvent.objects.filter(type="dispute.closed", object_id=dispute.public_id).count() == 1
    assert ledger_selectors.ledger_audit().ok
