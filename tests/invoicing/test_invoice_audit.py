"""ledger_audit also checks invoicing: each customer receivable equals Σ amount due of that customer's open
invoices, and each invoice's own receivable postings net to its amount due (open) or 0 (any other status)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from invoicing.models import Invoice
from invoicing.services import invoices as svc
from invoicing.services.invoice_lines import LineInput
from ledger import selectors
from ledger.services import credits as credit_services

pytestmark = pytest.mark.django_db

USER = "hanzo/audited"


def _open_invoice(org, amount=1_000, customer=USER) -> Invoice:
    invoice = svc.invoice_create(organization=org, customer=customer,
                                 lines=[LineInput(description="Fee", amount=amount)])
    return svc.invoice_finalize(organization=org, invoice_id=invoice.public_id)


def test_open_paid_and_void_invoices_audit_clean(org_acme):
    _open_invoice(org_acme)
    paid = _open_invoice(org_acme, 700)
    credit_services.credit_grant_create(organization=org_acme, user=USER, amount_cents=700)
    svc.invoice_pay(organization=org_acme, invoice_id=paid.public_id)
    void = _open_invoice(org_acme, 300)
    svc.invoice_void(organization=org_acme, invoice_id=void.public_id)
    report = selectors.ledger_audit()
    assert report.ok, report.drift


def test_an_amount_due_that_disagrees_with_the_entries_is_reported(org_acme):
    invoice = _open_invoice(org_acme)
    Invoice.objects.filter(pk=invoice.pk).update(amount_due=999)  # what a bug (or a hand edit) would leave
    report = selectors.ledger_audit()
    assert not report.ok
    assert any(f"invoice {invoice.public_id} (open): receivable postings 1000 != 999" in line
               for line in report.drift), report.drift
    assert any(f"receivable of {USER} usd" in line and "entries 1000 != open invoices' amount due 999" in line
               for line in report.drift), report.drift
    with pytest.raises(CommandError):
        call_command("ledger_audit")


def test_a_status_changed_without_its_posting_is_reported(org_acme):
    invoice = _open_invoice(org_acme)
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.STATUS_PAID, amount_due=0)
    drift = selectors.ledger_audit().drift
    assert any(f"invoice {invoice.public_id} (paid): receivable postings 1000 != 0" in line for line in drift)
