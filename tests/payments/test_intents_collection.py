"""Two-phase invoice collection: funds first, then the default payment method for the remainder; a decline
undoes every consumption; a processor failure, timeout or crash is finished by the sweeper, never charging
twice; ledger_audit stays clean."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.errors import Conflict
from invoicing.models import Invoice
from invoicing.services import invoices as invoice_services
from invoicing.services.invoice_lines import LineInput
from ledger import selectors as ledger_selectors
from ledger import services as ledger_services
from ledger.models import CreditGrant
from ledger.services import credits as credit_services
from ledger.services import customer_balance as cbs
from payments.models import PaymentAttempt, PaymentIntent, SandboxOperation
from payments.processors.registry import processor_override
from payments.services import attempts, reconcile
from payments.services import collection as svc
from tests.conftest import assert_error
from tests.payments.intents_helpers import DECLINED, OK, CountingProcessor, FailingProcessor, TimeoutProcessor, method
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db
USER = "acme/payer"


def _invoice(org, amount=1000) -> Invoice:
    draft = invoice_services.invoice_create(organization=org, customer=USER,
                                            lines=[LineInput(description="x", amount=amount)])
    return invoice_services.invoice_finalize(organization=org, invoice_id=draft.public_id)


def _default(org, last4=OK):
    pm = method(org, USER, last4)
    customer = core_services.customer_ensure(organization=org, customer_id=USER)
    customer.default_payment_method_id = pm.public_id
    customer.save()
    return pm


def _funds(org):
    credit_services.credit_grant_create(organization=org, user=USER, amount_cents=300)
    cbs.customer_balance_adjust(organization=org, customer=USER, amount=200)
    ledger_services.deposit_create(organization=org, user=USER, amount=100, currency="usd")


def _state(org):
    grant = CreditGrant.objects.get(customer=USER)
    balance = cbs.customer_balance_account(organization=org, customer=USER, currency="usd")
    balance.refresh_from_db()
    wallet = ledger_selectors.balance_get(organization=org, user=USER, currency="usd").balance
    return grant.remaining_cents, balance.balance, wallet


def _audit_ok():
    report = ledger_selectors.ledger_audit()
    assert report.ok, (report.drift, report.imbalances)


def test_without_a_default_method_collection_stays_all_or_nothing(org_acme):
    _funds(org_acme)
    invoice = _invoice(org_acme)
    paid, result = svc.invoice_collect(organization=org_acme, invoice_id=invoice.public_id)
    assert not result.success and "insufficient funds" in result.error
    assert (paid.status, paid.amount_due, paid.attempt_count) == ("open", 1000, 1)
    assert _state(org_acme) == (300, 200, 100)
    assert not PaymentIntent.objects.exists()
    _audit_ok()


def test_funds_then_the_card_pays_the_rest(org_acme):
    _funds(org_acme)
    _default(org_acme)
    invoice = _invoice(org_acme)
    paid, result = svc.invoice_collect(organization=org_acme, invoice_id=invoice.public_id, actor="api:test")
    assert result.success
    assert (result.credit_used, result.balance_used, result.wallet_used, result.provider_used) == (300, 200, 100, 400)
    assert (paid.status, paid.amount_due, paid.amount_paid, paid.provider_paid) == ("paid", 0, 1000, 400)
    assert (paid.credit_applied, paid.balance_applied, paid.deposits_applied) == (300, 200, 100)
    assert paid.payment_method == "card" and paid.payment_ref.startswith("ch_sbx_")
    assert paid.collection_pending == {}
    intent = PaymentIntent.objects.get()
    assert (intent.purpose, intent.invoice_id, intent.status, intent.amount_received) == (
        "invoice", invoice.public_id, "succeeded", 400)
    assert _state(org_acme) == (0, 0, 0)
    assert BillingEvent.objects.filter(type="invoice.paid", object_id=invoice.public_id).count() == 1
    assert BillingEvent.objects.filter(type="payment_intent.succeeded", object_id=intent.public_id).count() == 1
    _audit_ok()


def test_the_card_alone_pays_a_customer_without_funds(org_acme):
    _default(org_acme)
    invoice = _invoice(org_acme, 2500)
    paid, result = svc.invoice_collect(organization=org_acme, invoice_id=invoice.public_id)
    assert (result.success, result.provider_used, paid.status, paid.provider_paid) == (True, 2500, "paid", 2500)
    _audit_ok()


def test_a_decline_gives_back_every_consumed_source_and_leaves_the_invoice_open(org_acme):
    _funds(org_acme)
    _default(org_acme, DECLINED)
    invoice = _invoice(org_acme)
    after, result = svc.invoice_collect(organization=org_acme, invoice_id=invoice.public_id)
    assert not result.success and "declined" in result.error
    assert (after.status, after.amount_due, after.amount_paid, after.attempt_count) == ("open", 1000, 0, 1)
    assert (after.credit_applied, after.balance_applied, after.deposits_applied, after.provider_paid) == (0, 0, 0, 0)
    assert after.collection_pending == {}
    assert _state(org_acme) == (300, 200, 100)
    intent = PaymentIntent.objects.get()
    assert (intent.status, intent.amount_received) == ("canceled", 0) and "declined" in intent.last_error
    assert BillingEvent.objects.filter(type="invoice.payment_failed", object_id=invoice.public_id).count() == 1
    _audit_ok()
    # The customer fixes the card: the next attempt consumes again and pays (new keys, attempt 2).
    _default(org_acme, OK)
    paid, result = svc.invoice_collect(organization=org_acme, invoice_id=invoice.public_id)
    assert (result.success, paid.status, paid.attempt_count, paid.provider_paid) == (True, "paid", 2, 400)
    assert _state(org_acme) == (0, 0, 0)
    # What credit paid the invoice nets the undone burn out (credit notes give back only that).
    from ledger.services import credit_returns
    paid_by = credit_returns.credit_grant_payments(organization=org_acme, source_type="invoice",
                                                   source_id=invoice.public_id)
    assert [(g.customer, amount) for g, amount in paid_by] == [(USER, 300)]
    _audit_ok()


def test_a_burn_reversal_is_idempotent(org_acme):
    from ledger.services import collection as ledger_collection
    from ledger.services import credit_returns
    from ledger.services.credits import Charge
    credit_services.credit_grant_create(organization=org_acme, user=USER, amount_cents=500)
    receivable = ledger_collection.collection_accounts(organization=org_acme, customer=USER,
                                                       currency="usd").receivable
    credit_services.burn_credits(organization=org_acme, user=USER, currency="usd", charges=[Charge(amount=200)],
                                 idempotency_key="k1", settle_to=receivable)
    first = credit_returns.credit_burn_reverse(organization=org_acme, burn_idempotency_key="k1", counter=receivable,
                                               idempotency_key="k1:undo")
    again = credit_returns.credit_burn_reverse(organization=org_acme, burn_idempotency_key="k1", counter=receivable,
                                               idempotency_key="k1:undo")
    assert first.pk == again.pk and again.replayed
    assert CreditGrant.objects.get(customer=USER).remaining_cents == 500
    assert credit_returns.credit_burn_reverse(organization=org_acme, burn_idempotency_key="nope",
                                              counter=receivable, idempotency_key="x") is None
    report = ledger_selectors.ledger_audit(registered=False)
    assert report.ok, report.drift


def test_a_grant_voided_while_the_card_is_charged_stays_voided_after_the_undo(org_acme):
    _funds(org_acme)
    _default(org_acme, DECLINED)
    invoice = _invoice(org_acme)

    class VoidingProcessor(CountingProcessor):
        def charge(self, request):
            grant = CreditGrant.objects.get(customer=USER)
            credit_services.credit_grant_void(organization=org_acme, grant_id=grant.public_id, reason="test")
            return super().charge(request)

    with processor_override(VoidingProcessor()):
        svc.invoice_collect(organization=org_acme, invoice_id=invoice.public_id)
    grant = CreditGrant.objects.get(customer=USER)
    assert grant.voided and grant.remaining_cents == 0 and grant.voided_cents == 300
    _audit_ok()


def test_pay_over_http_with_a_default_card_and_a_decline(api, org_acme):
    _default(org_acme)
    invoice = _invoice(org_acme, 1200)
    body = api.post(f"/invoices/{invoice.public_id}/pay").json()
    assert body["collection"]["success"] and body["collection"]["providerUsed"] == 1200
    assert (body["invoice"]["status"], body["invoice"]["providerPaid"], body["invoice"]["paymentMethod"]) == (
        "paid", 1200, "card")
    assert_error(api.post(f"/invoices/{invoice.public_id}/pay"), 409,
                 "invoice must be open to collect, current status: paid")
    _default(org_acme, DECLINED)
    other = _invoice(org_acme, 700)
    response = api.post(f"/invoices/{other.public_id}/pay")
    assert response.status_code == 200
    assert response.json()["collection"]["success"] is False
    assert "declined" in response.json()["collection"]["error"]
    assert response.json()["invoice"]["status"] == "open"
    assert_error(api.post("/invoices/in_nope/pay"), 404, "invoice not found")


def _age_attempts():
    PaymentAttempt.objects.update(created_at=timezone.now() - timedelta(hours=1))


def test_a_processor_that_fails_leaves_a_pending_payment_the_sweeper_undoes(org_acme):
    _funds(org_acme)
    _default(org_acme)
    invoice = _invoice(org_acme)
    failing = FailingProcessor()
    with processor_override(failing):
        pending, result = svc.invoice_collect(organization=org_acme, invoice_id=invoice.public_id)
        assert not result.success and "not known yet" in result.error
        assert pending.collection_pending["remainder"] == 400 and pending.amount_due == 400
        with pytest.raises(Conflict, match="in progress"):
            svc.invoice_collect(organization=org_acme, invoice_id=invoice.public_id)
        with pytest.raises(Conflict, match="in progress"):
            invoice_services.invoice_void(organization=org_acme, invoice_id=invoice.public_id)
        _audit_ok()
        assert reconcile.attempts_claim() == []  # not due yet
        _age_attempts()
        (pk,) = reconcile.attempts_claim()
        assert reconcile.attempts_claim() == []  # claimed
        assert reconcile.attempt_reconcile(attempt_pk=pk) == "failed"
    assert failing.calls == 1
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due, invoice.collection_pending) == ("open", 1000, {})
    assert _state(org_acme) == (300, 200, 100)
    _audit_ok()


def test_a_timeout_after_the_charge_is_finished_by_the_sweeper_without_charging_again(org_acme):
    _funds(org_acme)
    _default(org_acme)
    invoice = _invoice(org_acme)
    timeout = TimeoutProcessor()
    with processor_override(timeout):
        _, result = svc.invoice_collect(organization=org_acme, invoice_id=invoice.public_id)
        assert not result.success
        _age_attempts()
        for pk in reconcile.attempts_claim():
            assert reconcile.attempt_reconcile(attempt_pk=pk) == "succeeded"
            assert reconcile.attempt_reconcile(attempt_pk=pk) == "succeeded"  # a duplicate delivery: nothing
    assert timeout.calls == 1 and SandboxOperation.objects.filter(operation="charge").count() == 1
    invoice.refresh_from_db()
    assert (invoice.status, invoice.provider_paid, invoice.amount_due) == ("paid", 400, 0)
    assert BillingEvent.objects.filter(type="invoice.paid", object_id=invoice.public_id).count() == 1
    _audit_ok()


def test_a_crash_between_the_call_and_the_apply_is_finished_by_the_sweeper(org_acme):
    """Phase 1 committed, phase 2 (the charge) made, then the process died before phase 3."""
    _default(org_acme)
    pm = method(org_acme, USER, OK)
    from payments.services import intents as intent_services
    intent = intent_services.payment_intent_create(organization=org_acme, customer_id=USER, amount=800,
                                                   payment_method_id=pm.public_id)
    counting = CountingProcessor()
    with processor_override(counting):
        from django.db import transaction
        with transaction.atomic():
            locked = intent_services._locked(organization=org_acme, intent_id=intent.public_id)
            attempt = intent_services.confirm_begin_locked(locked, method=None)
        attempts.attempt_call(attempt)  # phase 2 … and the crash: phase 3 never runs
        intent.refresh_from_db()
        assert intent.status == "processing"
        _audit_ok()
        _age_attempts()
        (pk,) = reconcile.attempts_claim()
        assert reconcile.attempt_reconcile(attempt_pk=pk) == "succeeded"
    assert counting.calls == [attempt.processor_key]  # retrieve, never a second charge
    intent.refresh_from_db()
    assert (intent.status, intent.amount_received) == ("succeeded", 800)
    _audit_ok()


@pytest.fixture
def eager():
    from billing_project.celery import app as celery_app
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_the_sweeper_is_on_the_beat_schedule():
    from billing_project.celery import app as celery_app
    entry = celery_app.conf.beat_schedule["payments-reconcile-attempts"]
    assert (entry["task"], entry["schedule"]) == ("payments.tasks.payment_attempts_reconcile_sweep", 60.0)


def test_an_invoice_charge_crashed_before_apply_is_settled_by_the_sweeper(org_acme, eager):
    _funds(org_acme)
    _default(org_acme)
    invoice = _invoice(org_acme)
    # Phase 1 and 2 of invoice_collect, then a crash: run it with a processor whose answer is lost.
    with processor_override(TimeoutProcessor()):
        svc.invoice_collect(organization=org_acme, invoice_id=invoice.public_id)
    _age_attempts()
    from payments import tasks
    assert tasks.payment_attempts_reconcile_sweep.delay().get() == 1  # eager: the item task ran too
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.provider_paid == 400
    _audit_ok()
