"""Invoices under concurrency on real PostgreSQL: one payment per invoice, pay racing void ends in one
consistent outcome, finalization numbers stay gap-free and unique, and adjustments racing a finalize that
collects a negative customer balance are collected exactly once."""

from __future__ import annotations

import pytest

from billing_project.core.errors import Conflict
from invoicing.models import Invoice
from invoicing.services import invoices as svc
from invoicing.services.invoice_lines import LineInput
from ledger import selectors
from ledger import services as ledger_services
from ledger.models import BalanceTransaction, CreditGrant, CustomerBalanceTransaction
from ledger.services import credits as credit_services
from ledger.services import customer_balance as cbs
from tests.threads import run_threads
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db(transaction=True)

USER = "hanzo/race"


def _run(threads: int, fn):
    return run_threads(threads, fn, catch=(Conflict,))


def _open_invoice(org, amount: int = 1_000) -> Invoice:
    invoice = svc.invoice_create(organization=org, customer=USER, lines=[LineInput(description="x", amount=amount)])
    return svc.invoice_finalize(organization=org, invoice_id=invoice.public_id)


def test_eight_concurrent_pays_of_one_invoice_pay_it_once(org_acme):
    credit_services.credit_grant_create(organization=org_acme, user=USER, amount_cents=600)
    ledger_services.deposit_create(organization=org_acme, user=USER, amount=5_000, currency="usd")
    invoice = _open_invoice(org_acme)
    outcomes = _run(8, lambda i: svc.invoice_pay(organization=org_acme, invoice_id=invoice.public_id))
    successes = [o for o in outcomes if not isinstance(o, Exception)]
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(successes) == 1 and len(conflicts) == 7
    assert all("invoice must be open to collect, current status: paid" == c.message for c in conflicts)
    assert BillingEvent.objects.filter(type="invoice.paid", object_id=invoice.public_id).count() == 1
    assert BalanceTransaction.objects.filter(type="credit_burn").count() == 1
    assert BalanceTransaction.objects.filter(type="invoice_payment").count() == 1
    assert CreditGrant.objects.get().remaining_cents == 0
    assert selectors.balance_get(organization=org_acme, user=USER, currency="usd").balance == 5_000 - 400
    assert selectors.ledger_audit().ok


def test_pay_racing_void_leaves_one_consistent_outcome(org_acme):
    ledger_services.deposit_create(organization=org_acme, user=USER, amount=100_000, currency="usd")
    paid = voided = 0
    for _round in range(8):
        invoice = _open_invoice(org_acme, amount=1_000)

        def act(i, invoice_id=invoice.public_id):
            if i % 2:
                return svc.invoice_void(organization=org_acme, invoice_id=invoice_id)
            return svc.invoice_pay(organization=org_acme, invoice_id=invoice_id)[0]

        outcomes = _run(2, act)
        final = Invoice.objects.get(pk=invoice.pk)
        assert final.status in (Invoice.STATUS_PAID, Invoice.STATUS_VOID)
        assert sum(isinstance(o, Conflict) for o in outcomes) == 1
        payments = BalanceTransaction.objects.filter(type="invoice_payment", source_id=invoice.public_id).count()
        voids = BalanceTransaction.objects.filter(type="invoice_void", source_id=invoice.public_id).count()
        if final.status == Invoice.STATUS_PAID:
            paid += 1
            assert (payments, voids, final.amount_due, final.amount_paid) == (1, 0, 0, 1_000)
        else:
            voided += 1
            assert (payments, voids, final.amount_paid) == (0, 1, 0)
    wallet = selectors.balance_get(organization=org_acme, user=USER, currency="usd")
    assert wallet.balance == 100_000 - 1_000 * paid
    assert paid + voided == 8
    assert selectors.ledger_audit().ok


def test_concurrent_finalizations_number_gap_free(org_acme):
    drafts = [svc.invoice_create(organization=org_acme, customer=f"c{i}",
                                 lines=[LineInput(description="x", amount=100 + i)]).public_id for i in range(24)]

    def worker(i):
        return [svc.invoice_finalize(organization=org_acme, invoice_id=invoice_id).number
                for invoice_id in drafts[i::8]]

    numbers = sorted(n for chunk in _run(8, worker) for n in chunk)
    assert numbers == list(range(1, 25))
    assert sorted(Invoice.objects.values_list("number_str", flat=True))[:2] == ["INV-0001", "INV-0002"]
    assert selectors.ledger_audit().ok


def test_adjustments_racing_a_finalize_are_collected_exactly_once(org_acme):
    """A finalize collecting a negative customer balance races adjustments of that balance: each adjustment
    lands entirely before the finalize (collected on the invoice) or after it (left on the balance)."""
    cbs.customer_balance_adjust(organization=org_acme, customer=USER, amount=-1_000)
    for round_ in range(3):
        start = selectors.customer_balance_get(organization=org_acme, customer=USER, currency="usd")
        invoice = svc.invoice_create(organization=org_acme, customer=USER,
                                     lines=[LineInput(description=f"round {round_}", amount=500)])

        def act(i, invoice_id=invoice.public_id):
            if i == 0:
                return svc.invoice_finalize(organization=org_acme, invoice_id=invoice_id)
            return sum(cbs.customer_balance_adjust(organization=org_acme, customer=USER,
                                                   amount=(-13 if n % 3 else 7)).amount for n in range(4))

        outcomes = _run(8, act)
        adjusted = sum(outcomes[1:])
        final = Invoice.objects.get(pk=invoice.pk)
        balance = selectors.customer_balance_get(organization=org_acme, customer=USER, currency="usd")
        # Nothing lost, nothing counted twice: what was owed is either on the invoice or still on the balance.
        assert balance - final.previous_balance == start + adjusted
        assert final.previous_balance >= 0 and final.amount_due == 500 + final.previous_balance
        assert final.line_items.filter(is_previous_balance=True).count() == (1 if final.previous_balance else 0)
        applied = CustomerBalanceTransaction.objects.filter(invoice_id=invoice.public_id, type="applied_to_invoice")
        assert [(t.amount, t.ending_balance) for t in applied] == (
            [(final.previous_balance, 0)] if final.previous_balance else [])
        rows = list(CustomerBalanceTransaction.objects.filter(organization=org_acme, customer=USER)
                    .order_by("pk").values_list("amount", "ending_balance"))
        running = 0
        for amount, ending in rows:  # the journal is an exact running sum, in commit order
            running += amount
            assert ending == running
        assert running == balance
        assert selectors.ledger_audit().ok
