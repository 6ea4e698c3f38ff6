"""The ledger tells the same story as the invoices: after every path the customer's receivable equals the
amount due of their open invoices, revenue and tax payable equal what was billed and not voided, and
``ledger_audit`` is clean."""

from __future__ import annotations

import pytest
from django.db.models import Q, Sum

from invoicing.models import Invoice
from invoicing.services import credit_notes as cn_services
from invoicing.services import invoices as svc
from invoicing.services import tax as tax_services
from invoicing.services.invoice_lines import LineInput
from ledger import selectors
from ledger import services as ledger_services
from ledger.models import Account, Entry
from ledger.services import credits as credit_services
from ledger.services import customer_balance as customer_balance_services

pytestmark = pytest.mark.django_db

USER = "hanzo/books"


def _net(org, kind: str, customer: str = "") -> int:
    """Debit-positive net of an account kind (Σ debits − Σ credits)."""
    sums = Entry.objects.filter(account__organization=org, account__kind=kind, account__customer=customer).aggregate(
        d=Sum("amount", filter=Q(direction="debit"), default=0), c=Sum("amount", filter=Q(direction="credit"),
                                                                        default=0))
    return sums["d"] - sums["c"]


def _invoice(org, amount: int, *, tax_bp: int = 0) -> Invoice:
    invoice = svc.invoice_create(organization=org, customer=USER, lines=[LineInput(description="x", amount=amount)])
    if tax_bp:
        invoice = svc.invoice_tax_calculate(organization=org, invoice_id=invoice.public_id, country="US", state="CA")
    return svc.invoice_finalize(organization=org, invoice_id=invoice.public_id)


def _open_due(org) -> int:
    return sum(Invoice.objects.filter(organization=org, customer=USER, status="open")
               .values_list("amount_due", flat=True))


def test_receivable_tracks_open_invoices_through_every_path(org_acme):
    tax_services.tax_rate_create(organization=org_acme, country="US", state="CA", percentage_bp=1000,
                                 display_name="CA")
    paid = _invoice(org_acme, 1_000, tax_bp=1000)          # total 1100
    voided = _invoice(org_acme, 2_000, tax_bp=1000)        # total 2200, with a credit note, then void
    noted = _invoice(org_acme, 500)                        # credit note on the open invoice stays
    written_off = _invoice(org_acme, 700)
    assert _net(org_acme, Account.KIND_RECEIVABLE, USER) == 1_100 + 2_200 + 500 + 700 == _open_due(org_acme)
    assert -_net(org_acme, Account.KIND_TAX_PAYABLE) == 100 + 200

    cn_services.credit_note_create(organization=org_acme, invoice_id=voided.public_id, amount=300)
    cn_services.credit_note_create(organization=org_acme, invoice_id=noted.public_id, amount=200)
    assert _net(org_acme, Account.KIND_RECEIVABLE, USER) == _open_due(org_acme) == 1_100 + 1_900 + 300 + 700

    credit_services.credit_grant_create(organization=org_acme, user=USER, amount_cents=400)
    customer_balance_services.customer_balance_adjust(organization=org_acme, customer=USER, amount=300)
    ledger_services.deposit_create(organization=org_acme, user=USER, amount=1_000, currency="usd")
    _, result = svc.invoice_pay(organization=org_acme, invoice_id=paid.public_id)
    assert (result.credit_used, result.balance_used, result.wallet_used) == (400, 300, 400)

    svc.invoice_void(organization=org_acme, invoice_id=voided.public_id)
    svc.invoice_mark_uncollectible(organization=org_acme, invoice_id=written_off.public_id)
    assert _net(org_acme, Account.KIND_RECEIVABLE, USER) == _open_due(org_acme) == 300
    assert _net(org_acme, Account.KIND_BAD_DEBT) == 700
    assert _net(org_acme, Account.KIND_CREDIT_NOTES) == 200  # the voided invoice's note was reversed with it
    assert -_net(org_acme, Account.KIND_TAX_PAYABLE) == 100  # the voided invoice's tax is gone
    assert -_net(org_acme, Account.KIND_REVENUE) == 1_000 + 500 + 700
    assert selectors.ledger_audit().ok


def test_credit_note_on_a_paid_invoice_credits_the_balance_and_its_void_takes_it_back(org_acme):
    ledger_services.deposit_create(organization=org_acme, user=USER, amount=1_000, currency="usd")
    invoice = _invoice(org_acme, 1_000)
    svc.invoice_pay(organization=org_acme, invoice_id=invoice.public_id)
    note = cn_services.credit_note_create(organization=org_acme, invoice_id=invoice.public_id, amount=250)
    assert selectors.customer_balance_get(organization=org_acme, customer=USER, currency="usd") == 250
    assert _net(org_acme, Account.KIND_RECEIVABLE, USER) == 0
    cn_services.credit_note_void(organization=org_acme, credit_note_id=note.public_id)
    assert selectors.customer_balance_get(organization=org_acme, customer=USER, currency="usd") == 0
    assert _net(org_acme, Account.KIND_CREDIT_NOTES) == 0
    assert selectors.ledger_audit().ok


def test_the_customer_balance_pays_a_later_invoice(org_acme):
    ledger_services.deposit_create(organization=org_acme, user=USER, amount=1_000, currency="usd")
    first = _invoice(org_acme, 1_000)
    svc.invoice_pay(organization=org_acme, invoice_id=first.public_id)
    cn_services.credit_note_create(organization=org_acme, invoice_id=first.public_id, amount=600)
    second = _invoice(org_acme, 600)
    second, result = svc.invoice_pay(organization=org_acme, invoice_id=second.public_id)
    assert result.success and result.balance_used == 600 and second.payment_method == "balance"
    assert selectors.customer_balance_get(organization=org_acme, customer=USER, currency="usd") == 0
    assert selectors.ledger_audit().ok
