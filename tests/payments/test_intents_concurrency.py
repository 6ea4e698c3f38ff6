"""Payment intents under concurrency on real PostgreSQL: concurrent confirms charge once, concurrent captures
capture once (never more than authorized)."""

from __future__ import annotations

import pytest

from billing_project.core.errors import ApplicationError
from ledger import selectors as ledger_selectors
from ledger.models import BalanceTransaction
from payments.models import PaymentAttempt, PaymentIntent, SandboxOperation
from payments.services import intents as svc
from tests.payments.intents_helpers import method
from tests.threads import run_threads
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db(transaction=True)
CUSTOMER = "acme/racer"


def test_eight_concurrent_confirms_charge_once(org_acme):
    pm = method(org_acme, CUSTOMER)
    intent = svc.payment_intent_create(organization=org_acme, customer_id=CUSTOMER, amount=2500,
                                       payment_method_id=pm.public_id)
    outcomes = run_threads(8, lambda i: svc.payment_intent_confirm(organization=org_acme,
                                                                    intent_id=intent.public_id),
                           catch=(ApplicationError,))
    ok = [o for o in outcomes if isinstance(o, PaymentIntent)]
    refused = [o for o in outcomes if isinstance(o, ApplicationError)]
    assert len(ok) == 1 and len(refused) == 7
    assert all(e.status == 409 for e in refused)
    intent.refresh_from_db()
    assert (intent.status, intent.amount_received) == ("succeeded", 2500)
    assert PaymentAttempt.objects.count() == 1
    assert SandboxOperation.objects.filter(operation="charge").count() == 1
    assert BalanceTransaction.objects.filter(type="payment_capture").count() == 1
    assert BillingEvent.objects.filter(type="payment_intent.succeeded", object_id=intent.public_id).count() == 1
    assert ledger_selectors.ledger_audit().ok


def test_eight_concurrent_captures_never_over_capture(org_acme):
    pm = method(org_acme, CUSTOMER)
    intent = svc.payment_intent_create(organization=org_acme, customer_id=CUSTOMER, amount=9000,
                                       payment_method_id=pm.public_id, capture_method="manual")
    svc.payment_intent_confirm(organization=org_acme, intent_id=intent.public_id)
    outcomes = run_threads(8, lambda i: svc.payment_intent_capture(organization=org_acme,
                                                                    intent_id=intent.public_id, amount=5000),
                           catch=(ApplicationError,))
    ok = [o for o in outcomes if isinstance(o, PaymentIntent)]
    assert len(ok) == 1
    assert all(o.status == 409 for o in outcomes if isinstance(o, ApplicationError))
    intent.refresh_from_db()
    assert (intent.status, intent.amount_received, intent.amount_capturable) == ("succeeded", 5000, 0)
    assert SandboxOperation.objects.filter(operation="capture").count() == 1
    assert BalanceTransaction.objects.filter(type="payment_capture").count() == 1
    assert BalanceTransaction.objects.filter(type="payment_auth_release").count() == 1
    assert ledger_selectors.ledger_audit().ok


class _NoTransactionProcessor:
    """Wraps the sandbox and fails the test if a payment call happens inside a database transaction."""

    def __init__(self):
        from payments.processors.sandbox import SandboxProcessor
        self.inner = SandboxProcessor()
        self.name = "guarded"
        self.seen: list[bool] = []

    def __getattr__(self, name):
        from django.db import connection
        target = getattr(self.inner, name)

        def call(*args, **kwargs):
            if name in ("charge", "authorize", "capture", "cancel", "refund"):
                self.seen.append(connection.in_atomic_block)
            return target(*args, **kwargs)
        return call


def test_no_processor_call_runs_inside_a_transaction(org_acme):
    from payments.processors.registry import processor_override
    guarded = _NoTransactionProcessor()
    pm = method(org_acme, CUSTOMER)
    with processor_override(guarded):
        auto = svc.payment_intent_create(organization=org_acme, customer_id=CUSTOMER, amount=100,
                                         payment_method_id=pm.public_id)
        svc.payment_intent_confirm(organization=org_acme, intent_id=auto.public_id)
        manual = svc.payment_intent_create(organization=org_acme, customer_id=CUSTOMER, amount=100,
                                           payment_method_id=pm.public_id, capture_method="manual")
        svc.payment_intent_confirm(organization=org_acme, intent_id=manual.public_id)
        svc.payment_intent_capture(organization=org_acme, intent_id=manual.public_id)
    assert guarded.seen == [False, False, False]


def test_eight_concurrent_pays_with_a_default_card_charge_once(org_acme):
    from billing_project.core import services as core_services
    from billing_project.core.errors import Conflict
    from invoicing.services import invoices as invoice_services
    from invoicing.services.invoice_lines import LineInput
    from payments.services import collection

    pm = method(org_acme, CUSTOMER)
    customer = core_services.customer_ensure(organization=org_acme, customer_id=CUSTOMER)
    customer.default_payment_method_id = pm.public_id
    customer.save()
    draft = invoice_services.invoice_create(organization=org_acme, customer=CUSTOMER,
                                            lines=[LineInput(description="x", amount=1500)])
    invoice = invoice_services.invoice_finalize(organization=org_acme, invoice_id=draft.public_id)
    outcomes = run_threads(8, lambda i: collection.invoice_collect(organization=org_acme,
                                                                    invoice_id=invoice.public_id),
                           catch=(Conflict,))
    assert sum(1 for o in outcomes if not isinstance(o, Exception)) == 1
    assert SandboxOperation.objects.filter(operation="charge").count() == 1
    invoice.refresh_from_db()
    assert (invoice.status, invoice.provider_paid) == ("paid", 1500)
    assert BillingEvent.objects.filter(type="invoice.paid", object_id=invoice.public_id).count() == 1
    assert ledger_selectors.ledger_audit().ok
