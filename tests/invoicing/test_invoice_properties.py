"""Hypothesis over the invoice services on real PostgreSQL: for random lines, discounts, tax rates and funding,
``subtotal − discount + tax − amountPaid − creditNotes = amountDue`` to the minor unit, never
negative; a failed collection consumes nothing; a paid invoice was paid exactly; the ledger audits clean."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoicing.models import Invoice
from invoicing.services import invoices as svc
from invoicing.services import tax as tax_services
from invoicing.services.invoice_lines import LineInput
from ledger import selectors
from ledger import services as ledger_services
from ledger.models import Account, CreditGrant
from ledger.services import credits as credit_services
from ledger.services import customer_balance as customer_balance_services

pytestmark = pytest.mark.django_db

_customers = itertools.count()

lines_st = st.lists(st.integers(min_value=-2_000, max_value=1_000_000), min_size=1, max_size=6)
discount_st = st.one_of(st.none(), st.tuples(st.just("amount"), st.integers(1, 2_000_000)),
                        st.tuples(st.just("bp"), st.integers(1, 10_000)))
rates_st = st.lists(st.tuples(st.integers(0, 3_000), st.booleans(), st.sampled_from(["", "CA"])), max_size=3)
owed_st = st.integers(0, 300_000)  # a negative customer balance before finalization (money owed)
funding_st = st.tuples(st.integers(0, 1_500_000), st.integers(0, 500_000), st.integers(0, 500_000))


def _identity(invoice: Invoice) -> int:
    assert invoice.amount_paid == (invoice.credit_applied + invoice.balance_applied + invoice.deposits_applied
                                   + invoice.provider_paid)
    return max(0, invoice.subtotal - invoice.discount + invoice.tax - invoice.amount_paid - invoice.credit_notes_amount)


def _funds(org, customer: str) -> tuple[int, int, int]:
    grants = sum(CreditGrant.objects.filter(organization=org, customer=customer).values_list("remaining_cents",
                                                                                              flat=True))
    accounts = {a.kind: a.balance for a in Account.objects.filter(organization=org, customer=customer)}
    return grants, accounts.get(Account.KIND_CUSTOMER_BALANCE, 0), accounts.get(Account.KIND_WALLET, 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amounts=lines_st, discount=discount_st, rates=rates_st, owed=owed_st, funding=funding_st)
def test_amount_due_identity_and_all_or_nothing_collection(org_acme, amounts, discount, rates, owed, funding):
    n = next(_customers)
    customer = f"prop/{n}"
    country = chr(65 + n // 26 % 26) + chr(65 + n % 26)  # a fresh "country" per example: rates do not pile up
    for bp, inclusive, state in rates:
        tax_services.tax_rate_create(organization=org_acme, country=country, state=state, percentage_bp=bp,
                                     inclusive=inclusive, display_name=f"r{bp}")
    invoice = svc.invoice_create(organization=org_acme, customer=customer,
                                 lines=[LineInput(description=f"l{i}", amount=a) for i, a in enumerate(amounts)])
    assert invoice.amount_due == _identity(invoice) >= 0
    if discount is not None:
        kind, value = discount
        invoice = svc.invoice_discount_apply(organization=org_acme, invoice_id=invoice.public_id,
                                             amount=value if kind == "amount" else None,
                                             percent_bp=value if kind == "bp" else None)
        assert 0 <= invoice.discount <= max(0, invoice.subtotal)
    invoice = svc.invoice_tax_calculate(organization=org_acme, invoice_id=invoice.public_id, country=country,
                                        state="CA")
    assert invoice.amount_due == _identity(invoice) >= 0
    assert invoice.subtotal - invoice.discount + invoice.tax == invoice.total
    if invoice.total < 0:
        return  # cannot be finalized (covered by the API tests)
    own_total, own_discount, own_tax = invoice.total, invoice.discount, invoice.tax
    if owed:
        customer_balance_services.customer_balance_adjust(organization=org_acme, customer=customer, amount=-owed)
    invoice = svc.invoice_finalize(organization=org_acme, invoice_id=invoice.public_id)
    assert invoice.amount_due == _identity(invoice) == invoice.total
    # The debt is collected on this invoice, never discounted or taxed, and the balance is back to 0.
    assert (invoice.previous_balance, invoice.total) == (owed, own_total + owed)
    assert (invoice.discount, invoice.tax) == (own_discount, own_tax)
    assert _funds(org_acme, customer)[1] == 0

    grant, balance, deposit = funding
    if grant:
        credit_services.credit_grant_create(organization=org_acme, user=customer, amount_cents=grant)
    if balance:
        customer_balance_services.customer_balance_adjust(organization=org_acme, customer=customer, amount=balance)
    if deposit:
        ledger_services.deposit_create(organization=org_acme, user=customer, amount=deposit, currency="usd")
    before = _funds(org_acme, customer)
    invoice, result = svc.invoice_pay(organization=org_acme, invoice_id=invoice.public_id)
    after = _funds(org_acme, customer)
    assert invoice.amount_due == _identity(invoice) >= 0
    if result.success:
        assert invoice.status == Invoice.STATUS_PAID and invoice.amount_due == 0
        assert invoice.amount_paid == invoice.total  # credits included (the original's amountPaid)
        assert sum(before) - sum(after) == invoice.total
        # the waterfall order: credits first, then the customer balance, then deposits
        assert result.credit_used == min(before[0], invoice.total)
    else:
        assert before == after  # nothing consumed
        assert invoice.status == Invoice.STATUS_OPEN and invoice.attempt_count == 1
        assert sum(before) < invoice.total
    assert selectors.ledger_audit().ok
