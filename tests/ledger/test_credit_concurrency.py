"""Concurrent burns on one customer's grants, on real PostgreSQL: never over-burn, never burn twice."""

from __future__ import annotations

import pytest

from ledger import selectors
from ledger.models import BalanceTransaction, CreditGrant
from ledger.services import credits as cs
from ledger.services.credits import Charge
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)

USER = "hanzo/hot"


def _run(threads: int, fn):
    return run_threads(threads, fn, together=False)


def test_16_threads_burning_more_than_exists_take_exactly_the_grants(org_acme):
    for amount, priority in [(1_000, 0), (700, 1), (300, 2)]:
        cs.credit_grant_create(organization=org_acme, user=USER, amount_cents=amount, priority=priority)

    def worker(i: int) -> int:
        total = 0
        for n in range(10):
            total += cs.burn_credits(organization=org_acme, user=USER, currency="usd", charges=[Charge(17 + i)],
                                     idempotency_key=f"t{i}-{n}").applied
        return total

    applied = sum(_run(16, worker))
    assert applied == 2_000  # demand (16 × 10 × ~24) exceeds supply: every cent burned, none twice
    assert sum(CreditGrant.objects.values_list("remaining_cents", flat=True)) == 0
    assert selectors.ledger_audit().ok


def test_the_same_key_from_16_threads_burns_once(org_acme):
    grant = cs.credit_grant_create(organization=org_acme, user=USER, amount_cents=10_000)
    results = _run(16, lambda i: cs.burn_credits(organization=org_acme, user=USER, currency="usd",
                                                 charges=[Charge(250)], idempotency_key="inv_42"))
    assert {r.applied for r in results} == {250}
    assert sum(1 for r in results if not r.replayed) == 1
    assert BalanceTransaction.objects.filter(type="credit_burn").count() == 1
    grant.refresh_from_db()
    assert grant.remaining_cents == 9_750


def test_void_racing_burns_leaves_a_consistent_grant(org_acme):
    grant = cs.credit_grant_create(organization=org_acme, user=USER, amount_cents=5_000)

    def worker(i: int):
        if i == 7:
            return cs.credit_grant_void(organization=org_acme, grant_id=grant.public_id).voided_cents
        return cs.burn_credits(organization=org_acme, user=USER, currency="usd", charges=[Charge(100)],
                               idempotency_key=f"v{i}").applied

    results = _run(16, worker)
    grant.refresh_from_db()
    burned = sum(r for i, r in enumerate(results) if i != 7)
    assert burned + grant.voided_cents == 5_000 and grant.remaining_cents == 0
    assert selectors.ledger_audit().ok
