"""A negative customer balance (money owed) is collected by the next invoice finalized for that customer and
currency, as Stripe does: a "Previous balance" line, the amount due includes it, the balance returns to 0 in
the same transaction; voiding that invoice makes the customer owe it again. Positive balances keep paying
invoices at collection. Real PostgreSQL; the ledger audits clean after every step."""

from __future__ import annotations

import pytest

from invoicing.models import Invoice
from invoicing.services import invoices as svc
from invoicing.services.invoice_lines import LineInput
from ledger import selectors
from ledger.models import Account, BalanceTransaction, CustomerBalanceTransaction, Entry
from ledger.services import credits as credit_services
from ledger.services import customer_balance as cbs
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

USER = "hanzo/owes"


def _create(api, lines, **extra):
    response = api.post("/invoices", {"userId": USER, "lineItems": lines, **extra})
    assert response.status_code == 201, response.content
    return response.json()


def _finalize(api, invoice_id):
    response = api.post(f"/invoices/{invoice_id}/finalize")
    assert response.status_code == 200, response.content
    return response.json()


def _adjust(api, amount, **extra):
    response = api.post("/customer-balance/adjustments", {"customerId": USER, "amount": amount, **extra})
    assert response.status_code == 200, response.content
    return response.json()


def _balance(api, currency="usd"):
    return api.get("/customer-balance", {"customerId": USER, "currency": currency}).json()["balance"]


def _legs(txn: BalanceTransaction) -> set[tuple[str, str, int]]:
    return {(e.account.kind, e.direction, e.amount) for e in Entry.objects.filter(transaction=txn)
            .select_related("account")}


def test_finalize_collects_a_negative_balance_as_a_previous_balance_line(api):
    assert _adjust(api, -750, description="chargeback fee")["endingBalance"] == -750
    invoice = _create(api, [{"description": "Pro plan", "amount": 2_000}])
    assert (invoice["subtotal"], invoice["amountDue"], invoice["previousBalance"]) == (2_000, 2_000, 0)

    opened = _finalize(api, invoice["id"])
    assert opened["status"] == "open"
    previous = opened["lineItems"][-1]
    assert (previous["description"], previous["amount"], previous["type"]) == ("Previous balance", 750, "one_off")
    assert (opened["subtotal"], opened["total"], opened["amountDue"], opened["previousBalance"]) == (
        2_750, 2_750, 2_750, 750)
    assert _balance(api) == 0

    journal = api.get("/balance-transactions", {"customerId": USER}).json()
    assert journal[0]["type"] == "applied_to_invoice"
    assert (journal[0]["amount"], journal[0]["endingBalance"], journal[0]["invoiceId"]) == (750, 0, invoice["id"])
    cbt = CustomerBalanceTransaction.objects.get(public_id=journal[0]["id"])
    assert _legs(cbt.transaction) == {("receivable", "debit", 750), ("customer_balance", "credit", 750)}
    # Revenue is only the invoice's own charges: the debt was booked when the balance was debited.
    finalize_txn = BalanceTransaction.objects.get(type="invoice_finalize", source_id=invoice["id"])
    assert _legs(finalize_txn) == {("receivable", "debit", 2_000), ("revenue", "credit", 2_000)}
    assert selectors.ledger_audit().ok

    # The next invoice owes nothing more.
    second = _finalize(api, _create(api, [{"description": "Pro plan", "amount": 2_000}])["id"])
    assert (second["amountDue"], second["previousBalance"], len(second["lineItems"])) == (2_000, 0, 1)


def test_previous_balance_is_paid_with_the_invoice_and_counts_in_amount_paid(api, org_acme):
    _adjust(api, -300)
    invoice = _finalize(api, _create(api, [{"description": "Seats", "amount": 1_000}])["id"])
    assert invoice["amountDue"] == 1_300
    credit_services.credit_grant_create(organization=org_acme, user=USER, amount_cents=1_300)
    paid = api.post(f"/invoices/{invoice['id']}/pay").json()
    assert paid["collection"]["success"] is True and paid["collection"]["amountCharged"] == 1_300
    assert (paid["invoice"]["amountPaid"], paid["invoice"]["creditApplied"], paid["invoice"]["amountDue"]) == (
        1_300, 1_300, 0)
    receivable = Account.objects.get(organization=org_acme, customer=USER, kind=Account.KIND_RECEIVABLE)
    signed = [e.amount if e.direction == Entry.DEBIT else -e.amount for e in Entry.objects.filter(account=receivable)]
    assert sum(signed) == 0  # the previous balance and the charges were both settled
    assert _balance(api) == 0
    assert selectors.ledger_audit().ok


def test_no_discount_or_tax_on_the_previous_balance(api):
    _adjust(api, -1_000)
    invoice = _create(api, [{"description": "Seats", "amount": 4_000}])
    response = api.post(f"/invoices/{invoice['id']}/apply-discount", {"discountPercentBasisPoints": 5_000})
    assert response.status_code == 200 and response.json()["discount"] == 2_000
    opened = _finalize(api, invoice["id"])
    assert (opened["discount"], opened["subtotal"], opened["total"], opened["amountDue"]) == (
        2_000, 5_000, 3_000, 3_000)
    assert selectors.ledger_audit().ok


def test_only_the_same_currency_is_collected_and_positive_balances_pay_at_collection(api):
    _adjust(api, -400, currency="eur")
    _adjust(api, 250)
    usd = _finalize(api, _create(api, [{"description": "a", "amount": 1_000}])["id"])
    assert (usd["previousBalance"], usd["amountDue"]) == (0, 1_000)  # a credit is not a previous balance
    assert (_balance(api), _balance(api, "eur")) == (250, -400)
    eur = _finalize(api, _create(api, [{"description": "b", "amount": 100}], currency="eur")["id"])
    assert (eur["previousBalance"], eur["amountDue"]) == (400, 500)
    assert _balance(api, "eur") == 0
    # The positive usd balance pays at collection, as before.
    paid = api.post(f"/invoices/{usd['id']}/pay").json()
    assert paid["collection"]["success"] is False  # 250 of 1000: all or nothing
    assert _balance(api) == 250
    assert selectors.ledger_audit().ok


def test_voiding_the_invoice_makes_the_customer_owe_it_again(api):
    _adjust(api, -600)
    opened = _finalize(api, _create(api, [{"description": "a", "amount": 1_000}])["id"])
    assert _balance(api) == 0
    voided = api.post(f"/invoices/{opened['id']}/void").json()
    assert (voided["status"], voided["amountDue"]) == ("void", 0)
    assert _balance(api) == -600
    journal = api.get("/balance-transactions", {"customerId": USER}).json()
    assert (journal[0]["type"], journal[0]["amount"], journal[0]["endingBalance"]) == (
        "unapplied_from_invoice", -600, -600)
    assert selectors.ledger_audit().ok
    # ... and the next invoice collects it.
    again = _finalize(api, _create(api, [{"description": "b", "amount": 100}])["id"])
    assert (again["previousBalance"], again["amountDue"]) == (600, 700)
    assert selectors.ledger_audit().ok


def test_a_negative_own_total_is_still_refused_whatever_is_owed(api):
    _adjust(api, -5_000)
    invoice = _create(api, [{"description": "credit", "amount": -100}])
    assert_error(api.post(f"/invoices/{invoice['id']}/finalize"), 409, contains="invoice total is negative")
    assert _balance(api) == -5_000  # nothing moved
    assert api.get(f"/invoices/{invoice['id']}").json()["status"] == "draft"


def test_write_off_includes_the_previous_balance(api):
    _adjust(api, -200)
    opened = _finalize(api, _create(api, [{"description": "a", "amount": 800}])["id"])
    body = api.post(f"/invoices/{opened['id']}/mark-uncollectible").json()
    assert body["status"] == "uncollectible"
    assert BalanceTransaction.objects.get(type="invoice_write_off", source_id=opened["id"]).amount == 1_000
    assert selectors.ledger_audit().ok


def test_service_finalize_is_exact_without_a_balance_account(org_acme):
    invoice = svc.invoice_create(organization=org_acme, customer=USER, lines=[LineInput(description="x", amount=5)])
    invoice = svc.invoice_finalize(organization=org_acme, invoice_id=invoice.public_id)
    assert (invoice.previous_balance, invoice.amount_due) == (0, 5)
    assert not Account.objects.filter(kind=Account.KIND_CUSTOMER_BALANCE, customer=USER).exists()
    cbs.customer_balance_adjust(organization=org_acme, customer=USER, amount=-7)
    invoice = svc.invoice_create(organization=org_acme, customer=USER, lines=[LineInput(description="y", amount=5)])
    invoice = svc.invoice_finalize(organization=org_acme, invoice_id=invoice.public_id)
    stored = Invoice.objects.get(pk=invoice.pk)
    assert (stored.previous_balance, stored.subtotal, stored.amount_due) == (7, 12, 12)
    assert stored.line_items.filter(is_previous_balance=True).count() == 1
    assert selectors.ledger_audit().ok


def test_a_restricted_grant_pays_no_part_of_the_previous_balance(api, org_acme):
    """The previous-balance line bears no discount: a grant restricted to the usage meter pays exactly the
    usage line's net share (1000 − 50 % = 500), never any of the 600 owed from before."""
    grant = credit_services.credit_grant_create(organization=org_acme, user=USER, amount_cents=5_000,
                                                eligibility=["mtr_calls"])
    _adjust(api, -600)
    created = _create(api, [{"description": "API calls", "amount": 1_000, "meterId": "mtr_calls"},
                            {"description": "Platform fee", "amount": 1_000}])
    assert api.post(f"/invoices/{created['id']}/apply-discount",
                    {"discountPercentBasisPoints": 5_000}).status_code == 200
    assert _finalize(api, created["id"])["amountDue"] == 1_600
    paid = api.post(f"/invoices/{created['id']}/pay").json()
    assert paid["collection"]["success"] is False
    grant.refresh_from_db()
    assert grant.remaining_cents == 5_000  # all or nothing: nothing consumed
    _adjust(api, 1_100)  # the customer balance covers the fee's half and the previous balance
    paid = api.post(f"/invoices/{created['id']}/pay").json()
    assert paid["collection"]["success"] is True, paid
    grant.refresh_from_db()
    assert grant.amount_cents - grant.remaining_cents == 500
    assert selectors.ledger_audit().ok
