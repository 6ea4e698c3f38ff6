"""Concurrent adjustments of one customer balance on real PostgreSQL: no lost update, an exact journal."""

from __future__ import annotations

import pytest

from billing_project.core.errors import Conflict
from ledger import selectors
from ledger.models import CustomerBalanceTransaction
from ledger.services import customer_balance as cbs
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)

CUSTOMER = "cus_hot"
THREADS = 16


def _run(threads: int, fn):
    return run_threads(threads, fn, together=False)


def _assert_exact_journal(org, expected_balance: int, *, floor: bool = True) -> None:
    rows = list(CustomerBalanceTransaction.objects.filter(organization=org, customer=CUSTOMER)
                .order_by("pk").values_list("amount", "ending_balance"))
    running = 0
    for amount, ending in rows:
        running += amount
        assert ending == running  # no duplicate and no gap: each ending balance is the previous + amount
        assert ending >= 0 or not floor
    assert running == expected_balance
    assert selectors.customer_balance_get(organization=org, customer=CUSTOMER, currency="usd") == expected_balance
    assert selectors.ledger_audit().ok


def test_16_threads_of_credits_and_debits_sum_exactly(org_acme):
    cbs.customer_balance_adjust(organization=org_acme, customer=CUSTOMER, amount=100_000)

    def worker(i: int) -> int:
        total = 0
        for n in range(6):
            amount = (10 + i) if n % 2 == 0 else -(7 + n)
            total += cbs.customer_balance_adjust(organization=org_acme, customer=CUSTOMER, amount=amount).amount
        return total

    total = sum(_run(THREADS, worker))
    assert CustomerBalanceTransaction.objects.count() == 1 + THREADS * 6
    _assert_exact_journal(org_acme, 100_000 + total)


def test_floored_debits_racing_past_zero_never_overdraw(org_acme):
    cbs.customer_balance_adjust(organization=org_acme, customer=CUSTOMER, amount=1_000)
    account = cbs.customer_balance_account(organization=org_acme, customer=CUSTOMER, currency="usd")

    def worker(i: int) -> int:
        spent = 0
        for _ in range(5):
            try:
                spent += -cbs.customer_balance_post(
                    organization=org_acme, customer=CUSTOMER, currency="usd", amount=-17, account=account,
                    type=CustomerBalanceTransaction.TYPE_CREDIT_NOTE_VOID).amount
            except Conflict as exc:
                assert exc.code == "insufficient_customer_balance"
        return spent

    spent = sum(_run(THREADS, worker))
    assert spent == 1_000 - 1_000 % 17  # demand (16 × 5 × 17) exceeds supply: everything possible, no more
    _assert_exact_journal(org_acme, 1_000 % 17)


def test_adjustments_racing_below_zero_stay_exact(org_acme):
    cbs.customer_balance_adjust(organization=org_acme, customer=CUSTOMER, amount=1_000)

    def worker(i: int) -> int:
        return sum(cbs.customer_balance_adjust(organization=org_acme, customer=CUSTOMER, amount=-17).amount
                   for _ in range(5))

    total = sum(_run(THREADS, worker))
    assert total == -17 * 5 * THREADS  # manual debits have no floor: all of them land, none is lost
    _assert_exact_journal(org_acme, 1_000 + total, floor=False)


def test_the_same_key_from_16_threads_posts_once(org_acme):
    cbs.customer_balance_account(organization=org_acme, customer=CUSTOMER, currency="usd")
    results = _run(THREADS, lambda i: cbs.customer_balance_adjust(organization=org_acme, customer=CUSTOMER,
                                                                  amount=250, idempotency_key="same").pk)
    assert len(set(results)) == 1
    assert CustomerBalanceTransaction.objects.count() == 1
    _assert_exact_journal(org_acme, 250)
