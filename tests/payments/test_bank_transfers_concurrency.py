"""Concurrent reconciliations on real PostgreSQL: one transfer id is credited once, different transfers
accumulate exactly, and an operator racing the API never credits a transfer twice."""

from __future__ import annotations

import pytest

from billing_project.core.errors import Conflict
from ledger import selectors as ledger_selectors
from ledger.models import CustomerBalanceTransaction
from payments.models import InboundBankTransfer, UnmatchedBankTransfer
from payments.services import bank_transfers as services
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = "cus_alice"
THREADS = 12


def _instruction(org):
    return services.bank_transfer_instruction_create(organization=org, data=services.InstructionInput(
        customer_id=ALICE, type="wire", bank_name="Acme Bank", account_number="000123456789"))


def _journal_is_exact(org, expected: int) -> None:
    rows = list(CustomerBalanceTransaction.objects.filter(organization=org, customer=ALICE)
                .order_by("pk").values_list("amount", "ending_balance"))
    running = 0
    for amount, ending in rows:
        running += amount
        assert ending == running
    assert running == expected
    assert ledger_selectors.customer_balance_get(organization=org, customer=ALICE, currency="usd") == expected
    assert ledger_selectors.ledger_audit().ok


def test_concurrent_reconciliations_of_one_transfer_id_credit_once(org_acme):
    inst = _instruction(org_acme)

    def worker(i: int):
        return services.bank_transfer_reconcile(organization=org_acme, reference=inst.reference, amount=2_500,
                                                transfer_id="bank-tx-1")

    results = run_threads(THREADS, worker)
    assert len({r.public_id for r in results}) == 1  # every caller got the first result
    assert len({r.customer_balance_transaction_id for r in results}) == 1
    assert InboundBankTransfer.objects.count() == 1
    _journal_is_exact(org_acme, 2_500)


def test_concurrent_reconciliations_of_different_transfers_accumulate_exactly(org_acme):
    inst = _instruction(org_acme)

    def worker(i: int) -> int:
        total = 0
        for n in range(4):
            amount = 100 + i * 10 + n
            transfer_id = f"bank-tx-{i}-{n}" if n % 2 else ""  # with and without a transfer id
            total += services.bank_transfer_reconcile(organization=org_acme, reference=inst.reference,
                                                      amount=amount, transfer_id=transfer_id).amount
        return total

    total = sum(run_threads(THREADS, worker))
    assert InboundBankTransfer.objects.count() == THREADS * 4
    _journal_is_exact(org_acme, total)


def test_operator_match_racing_a_reconciliation_of_the_same_transfer_credits_once(org_acme):
    inst = _instruction(org_acme)
    unmatched = services.bank_transfer_unmatched_record(
        organization=org_acme, data=services.UnmatchedInput(amount=700, transfer_id="bank-tx-1"))

    def worker(i: int):
        if i % 2:
            return services.bank_transfer_reconcile(organization=org_acme, reference=inst.reference, amount=700,
                                                    transfer_id="bank-tx-1")
        return services.bank_transfer_unmatched_match(organization=org_acme, unmatched_id=unmatched.public_id,
                                                      customer_id=ALICE, actor="staff")

    results = run_threads(8, worker, catch=(Conflict,))
    assert any(isinstance(r, InboundBankTransfer) for r in results)
    assert InboundBankTransfer.objects.count() == 1
    unmatched.refresh_from_db()
    assert unmatched.status == UnmatchedBankTransfer.STATUS_MATCHED
    assert unmatched.inbound_transfer == InboundBankTransfer.objects.get()
    _journal_is_exact(org_acme, 700)
