"""Money out of processor clearing under concurrency (issue 11 gaps): payout transit checks the settled balance
under the clearing account's row lock, and every other writer that takes money out of clearing — a refund's
card part, a dispute hold — takes the same lock (last, in the documented order). Replaying the clearing
account's entries in the order they were written (under that lock), every payout found the balance it
needed: no payout ever checked a balance a concurrent refund or hold was about to lower. No deadlock,
``ledger_audit`` clean."""

from __future__ import annotations

from unittest import mock

import pytest

from billing_project.core import services as core_services
from invoicing.services import invoices as invoice_services
from invoicing.services.invoice_lines import LineInput
from ledger import selectors as ledger_selectors
from ledger.models import Account, Entry
from ledger.services import customer_balance as cbs
from payments.models import Dispute, Payout, Refund
from payments.processors.sandbox import sandbox_fee
from payments.services import collection as collection_services
from payments.services import intents as intent_services
from payments.services import payouts as payout_services
from payments.services import refunds as refund_services
from tests.payments.intents_helpers import DISPUTE, OK, method
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)
BUYER = "acme/buyer"


def _no_fee():
    return mock.patch("payments.processors.sandbox.sandbox_fee", return_value=0)


def _charge(org, amount: int, last4: str = OK, customer: str = BUYER):
    pm = method(org, customer, last4)
    intent = intent_services.payment_intent_create(organization=org, customer_id=customer, amount=amount,
                                                   payment_method_id=pm.public_id)
    return intent_services.payment_intent_confirm(organization=org, intent_id=intent.public_id)


def _payouts(org, count: int, amount: int) -> list[Payout]:
    return [payout_services.payout_create(organization=org, amount=amount, destination_id=f"ba_{i}")
            for i in range(count)]


def _clearing(org) -> Account:
    return Account.objects.get(organization=org, kind=Account.KIND_PROCESSOR_CLEARING, currency="usd",
                               customer="")


def assert_payouts_found_their_funds(org) -> int:
    """Replay clearing in write order: each payout's withdrawal must find the balance covering it. Returns the
    final balance."""
    clearing, balance, checked = _clearing(org), 0, 0
    for entry in Entry.objects.filter(account=clearing).select_related("transaction").order_by("pk"):
        if entry.direction == Entry.CREDIT and entry.transaction.source_type == "payout":
            assert balance >= entry.amount, f"payout {entry.transaction.source_id} checked a stale balance"
            checked += 1
        balance += entry.amount if entry.direction == Entry.DEBIT else -entry.amount
    assert checked == Payout.objects.exclude(transit_transaction_id="").count()
    return balance


def _audit_ok():
    report = ledger_selectors.ledger_audit()
    assert report.ok, (report.drift, report.imbalances)


def test_payouts_racing_refunds_never_check_a_stale_clearing_balance(org_acme):
    with _no_fee():
        intents = [_charge(org_acme, 1000) for _ in range(6)]  # clearing: 6 000
    payouts = _payouts(org_acme, 6, 1000)

    def work(i: int):
        if i % 2:
            return refund_services.refund_create(organization=org_acme, payment_intent_id=intents[i // 2].public_id)
        return payout_services.payout_process(payout_pk=payouts[i // 2].pk)

    run_threads(12, work)
    assert Refund.objects.filter(status="succeeded").count() == 6  # the processor debits us: never refused
    paid = Payout.objects.filter(status="paid").count()
    assert paid + Payout.objects.filter(status="failed", failure_code="insufficient_funds").count() == 6
    assert assert_payouts_found_their_funds(org_acme) == 6_000 - 6_000 - 1_000 * paid
    _audit_ok()


def test_payouts_racing_dispute_holds_never_check_a_stale_clearing_balance(org_acme):
    """A disputed capture posts +amount, −fee and the hold −amount in one transaction: it lowers clearing by the
    fee, under the clearing lock; payouts sized so that the fees decide which of them still fit."""
    with _no_fee():
        _charge(org_acme, 3000, customer="acme/funder")  # clearing: 3 000
    disputed = [intent_services.payment_intent_create(
        organization=org_acme, customer_id=BUYER, amount=1000,
        payment_method_id=method(org_acme, BUYER, DISPUTE).public_id) for _ in range(6)]
    payouts = _payouts(org_acme, 6, 500)

    def work(i: int):
        if i % 2:
            return intent_services.payment_intent_confirm(organization=org_acme, intent_id=disputed[i // 2].public_id)
        return payout_services.payout_process(payout_pk=payouts[i // 2].pk)

    run_threads(12, work)
    assert Dispute.objects.filter(funds=Dispute.FUNDS_HELD).count() == 6
    paid = Payout.objects.filter(status="paid").count()
    assert assert_payouts_found_their_funds(org_acme) == 3_000 - 6 * sandbox_fee(1000) - 500 * paid
    _audit_ok()


def test_invoice_refunds_with_card_and_balance_parts_racing_payouts_do_not_deadlock(org_acme):
    """Phase 3 of an invoice refund locks the customer balance (its balance part) before clearing (its card
    part), as every other writer: racing refunds of one customer's invoices and payouts all finish."""
    pm = method(org_acme, BUYER, OK)
    customer = core_services.customer_ensure(organization=org_acme, customer_id=BUYER)
    customer.default_payment_method_id = pm.public_id
    customer.save()
    invoices = []
    with _no_fee():
        for _ in range(4):  # each paid 400 from the customer balance, 600 by card
            cbs.customer_balance_adjust(organization=org_acme, customer=BUYER, amount=400)
            draft = invoice_services.invoice_create(organization=org_acme, customer=BUYER,
                                                    lines=[LineInput(description="Pro", amount=1000)])
            invoice = invoice_services.invoice_finalize(organization=org_acme, invoice_id=draft.public_id)
            paid, result = collection_services.invoice_collect(organization=org_acme, invoice_id=invoice.public_id)
            assert result.success and paid.provider_paid == 600
            invoices.append(paid)
    payouts = _payouts(org_acme, 4, 700)  # clearing: 2 400

    def work(i: int):
        if i % 2:
            return refund_services.refund_create(organization=org_acme, invoice_id=invoices[i // 2].public_id)
        return payout_services.payout_process(payout_pk=payouts[i // 2].pk)

    run_threads(8, work)
    refunds = Refund.objects.filter(status="succeeded")
    assert refunds.count() == 4
    assert {(r.card_amount, r.balance_amount) for r in refunds} == {(600, 400)}
    balance = cbs.customer_balance_account(organization=org_acme, customer=BUYER, currency="usd")
    balance.refresh_from_db()
    assert balance.balance == 1600
    paid = Payout.objects.filter(status="paid").count()
    assert assert_payouts_found_their_funds(org_acme) == 2_400 - 2_400 - 700 * paid
    _audit_ok()
