"""Package "subgaps": a renewal whose card payment is left pending by the processor (a timeout) and settled
later by the payments reconciler ends ``active`` (paid, the period advanced) or ``past_due`` (declined, dunning
started) — charged once, never marked past due for a payment that may have succeeded, never written off
while the payment is in flight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from billing_project.core import services as core_services
from invoicing.models import Invoice
from ledger import selectors as ledger_selectors
from payments.models import PaymentAttempt, SandboxOperation
from payments.processors.registry import processor_override
from payments.services import reconcile
from subscriptions.models import Renewal, Subscription
from subscriptions.services import plans as plan_services
from subscriptions.services import renewals, runner, sweeps
from subscriptions.services import subscriptions as sub_services
from tests.payments.intents_helpers import DECLINED, OK, TimeoutProcessor, method
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db
T0 = datetime(2027, 1, 31, 10, 0, tzinfo=UTC)


def _sub(org, user, last4, **fields):
    pm = method(org, user, last4)
    customer = core_services.customer_ensure(organization=org, customer_id=user)
    customer.default_payment_method_id = pm.public_id
    customer.save()
    plan = plan_services.plan_create(organization=org, name="Pro", price=3000)
    return sub_services.subscription_create(organization=org, customer_id=user, plan_id=plan.public_id,
                                            default_payment_method=pm.public_id, now=T0, **fields)


def _reconcile():
    """The payments reconciler's sweep, the attempts aged past its delay."""
    PaymentAttempt.objects.update(created_at=timezone.now() - timedelta(hours=1))
    return [reconcile.attempt_reconcile(attempt_pk=pk) for pk in reconcile.attempts_claim()]


def _renewal_timed_out(org, user, last4):
    sub = _sub(org, user, last4)
    end = sub.current_period_end
    assert renewals.subscription_due_process(subscription_pk=sub.pk, now=end) == Renewal.STATUS_PROCESSING
    sub.refresh_from_db()
    (renewal,) = Renewal.objects.filter(subscription=sub)
    invoice = Invoice.objects.get(public_id=renewal.invoice_id)
    assert invoice.status == "open" and invoice.collection_pending  # the card payment is in flight
    # Neither paid nor failed: no past_due, no dunning, the period does not move, nothing is due again.
    assert (sub.status, sub.current_period_start) == ("active", T0)
    assert (renewal.attempts, renewal.next_retry_at) == (1, None)
    assert not BillingEvent.objects.filter(type="subscription.updated", object_id=sub.public_id).exists()
    assert runner.run_due(now=end + timedelta(days=30)) == {}
    return sub, renewal, invoice, end


def test_a_timed_out_renewal_payment_that_succeeded_ends_active(org_acme):
    timeout = TimeoutProcessor()
    with processor_override(timeout):
        sub, renewal, invoice, end = _renewal_timed_out(org_acme, "pend-ok", OK)
        assert _reconcile() == ["succeeded"]
        invoice.refresh_from_db()
        assert invoice.status == "paid"
        assert sweeps.renewals_claim(now=end + timedelta(minutes=1)) == [renewal.pk]
        assert renewals.renewal_retry(renewal_pk=renewal.pk, now=end + timedelta(minutes=1)) == "paid"
    sub.refresh_from_db()
    assert (sub.status, sub.current_period_start) == ("active", end)  # the period advanced
    assert timeout.calls == 1 and SandboxOperation.objects.filter(operation="charge").count() == 1
    assert BillingEvent.objects.filter(type="subscription.renewed", object_id=sub.public_id).count() == 1
    assert Invoice.objects.filter(subscription_id=sub.public_id).count() == 1
    assert ledger_selectors.ledger_audit().ok


def test_a_timed_out_renewal_payment_that_was_declined_ends_past_due(org_acme):
    timeout = TimeoutProcessor()
    with processor_override(timeout):
        sub, renewal, invoice, end = _renewal_timed_out(org_acme, "pend-no", DECLINED)
        assert _reconcile() == ["declined"]
        later = end + timedelta(minutes=1)
        assert runner.run_due(now=later) == {"retry:past_due": 1}
    sub.refresh_from_db()
    renewal.refresh_from_db()
    invoice.refresh_from_db()
    assert (sub.status, sub.current_period_start) == ("past_due", T0)
    assert (renewal.status, renewal.attempts, renewal.next_retry_at) == ("past_due", 1, later + timedelta(days=1))
    assert (invoice.status, invoice.collection_pending) == ("open", {})
    assert timeout.calls == 1
    assert ledger_selectors.ledger_audit().ok


def test_dunning_never_writes_off_an_invoice_whose_payment_is_in_flight(org_acme):
    timeout = TimeoutProcessor()
    with processor_override(timeout):
        sub, renewal, invoice, end = _renewal_timed_out(org_acme, "pend-late", OK)
        # As if dunning were exhausted (past_due, every retry used) while the payment is still in flight.
        Renewal.objects.filter(pk=renewal.pk).update(status=Renewal.STATUS_PAST_DUE, attempts=9,
                                                     next_retry_at=end)
        assert renewals.renewal_retry(renewal_pk=renewal.pk, now=end + timedelta(days=9)) == "processing"
        invoice.refresh_from_db()
        assert invoice.status == "open"
        assert _reconcile() == ["succeeded"]
        assert renewals.renewal_retry(renewal_pk=renewal.pk, now=end + timedelta(days=9)) == "paid"
    sub.refresh_from_db()
    assert sub.status == Subscription.STATUS_ACTIVE
    assert ledger_selectors.ledger_audit().ok


def test_a_pending_cancel_still_ends_while_the_final_payment_is_in_flight(org_acme):
    with processor_override(TimeoutProcessor()):
        sub = _sub(org_acme, "pend-cancel", OK)
        sub_services.subscription_cancel(organization=org_acme, subscription_id=sub.public_id, at_period_end=True,
                                         now=T0 + timedelta(days=1))
        end = sub.current_period_end
        assert renewals.subscription_due_process(subscription_pk=sub.pk, now=end) == Renewal.STATUS_PROCESSING
        sub.refresh_from_db()
        assert (sub.status, sub.ended_at) == ("canceled", end)
        assert _reconcile() == ["succeeded"]
        assert runner.run_due(now=end + timedelta(minutes=1)) == {"retry:paid": 1}
    sub.refresh_from_db()
    assert sub.status == "canceled"
    assert ledger_selectors.ledger_audit().ok
