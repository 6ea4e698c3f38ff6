"""Concurrency on real PostgreSQL: threads, each with its own connection, on one wallet."""

from __future__ import annotations

import random
import threading

import pytest

from billing_project.core.errors import Conflict, ValidationError
from ledger import selectors, services
from ledger.models import BalanceTransaction
from tests.conftest import Api
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)

USER = "hanzo/hot"


def _run(threads: int, fn):
    return run_threads(threads, fn, together=False)


def test_32_threads_x_50_mixed_calls_end_exact(acme_key, org_acme):
    """Usage, deposits and holds (captured or released) through the API from 32 threads."""
    Api(acme_key).post("/deposit", {"user": USER, "amount": 100_000})

    def worker(i: int) -> tuple[int, int]:
        api = Api(acme_key)
        rng = random.Random(i)
        effect = failures = 0
        for n in range(50):
            op = rng.choice(["usage", "deposit", "hold_capture", "hold_release"])
            if op == "usage":
                r = api.post("/usage", {"user": USER, "amount": 7, "requestId": f"t{i}-{n}"})
                assert r.status_code == 201, r.content
                effect -= 7
            elif op == "deposit":
                r = api.post("/deposit", {"user": USER, "amount": 11})
                assert r.status_code == 201, r.content
                effect += 11
            else:
                r = api.post("/holds", {"user": USER, "amount": 20})
                if r.status_code == 402:
                    failures += 1
                    continue
                assert r.status_code == 201, r.content
                hold_id = r.json()["id"]
                if op == "hold_capture":
                    assert api.post(f"/holds/{hold_id}/capture", {"amount": 13}).status_code == 200
                    effect -= 13
                else:
                    assert api.post(f"/holds/{hold_id}/release", {}).status_code == 200
        return effect, failures

    results = _run(32, worker)
    expected = 100_000 + sum(effect for effect, _ in results)
    final = selectors.balance_get(organization=org_acme, user=USER, currency="usd")
    assert final.balance == expected
    assert final.holds == 0
    report = selectors.ledger_audit()
    assert report.ok, (report.drift, report.imbalances)


def test_same_request_id_from_16_threads_charges_once(org_acme):
    txns = _run(16, lambda i: services.usage_record(organization=org_acme, user=USER, amount=25, currency="usd",
                                                    request_id="dup-1"))
    assert len({t.pk for t in txns}) == 1
    assert BalanceTransaction.objects.filter(tags="api-usage").count() == 1
    assert selectors.balance_get(organization=org_acme, user=USER, currency="usd").balance == -25


def test_concurrent_starter_credits_grant_once(org_acme):
    def grant(i):
        try:
            services.starter_credit_grant(organization=org_acme, user=USER)
            return "granted"
        except Conflict:
            return "conflict"

    outcomes = _run(12, grant)
    assert outcomes.count("granted") == 1
    assert selectors.balance_get(organization=org_acme, user=USER, currency="usd").balance == 500


def test_concurrent_refunds_never_over_refund(org_acme):
    usage = services.usage_record(organization=org_acme, user=USER, amount=100, currency="usd")
    barrier = threading.Barrier(10)

    def refund(i):
        barrier.wait(5)
        try:
            services.refund_create(organization=org_acme, user=USER, amount=30, currency="usd",
                                   original_transaction_id=usage.public_id)
            return True
        except ValidationError:
            return False

    assert _run(10, refund).count(True) == 3
    assert selectors.balance_get(organization=org_acme, user=USER, currency="usd").balance == -10


def test_concurrent_refunds_of_a_deposit_and_its_refunds_never_exceed_it(org_acme):
    """Threads refund one deposit, some through the id of an earlier refund of it (which counts against
    the deposit too): Σ refunds never exceeds the deposit."""
    deposit = services.deposit_create(organization=org_acme, user=USER, amount=100, currency="usd")
    first = services.refund_create(organization=org_acme, user=USER, amount=10, currency="usd",
                                   original_transaction_id=deposit.public_id)

    def refund(i):
        target = deposit if i % 2 else first
        try:
            services.refund_create(organization=org_acme, user=USER, amount=7, currency="usd",
                                   original_transaction_id=target.public_id)
            return True
        except ValidationError:
            return False

    assert run_threads(16, refund).count(True) == 12  # (100 − 10) // 7
    refunded = sum(BalanceTransaction.objects.filter(reverses=deposit, tags="refund").values_list("amount", flat=True))
    assert refunded == 10 + 12 * 7 <= 100
    assert selectors.balance_get(organization=org_acme, user=USER, currency="usd").balance == 100 + refunded


def test_floored_wallet_never_goes_negative_under_contention(org_acme):
    services.deposit_create(organization=org_acme, user=USER, amount=1000, currency="usd")
    wallet = services.accounts_resolve(organization=org_acme, currency="usd", customer=USER)["wallet"]
    services.wallet_set_overdraft(wallet=wallet, allow_negative=False)

    def spend(i):
        ok = 0
        for _ in range(10):
            try:
                services.usage_record(organization=org_acme, user=USER, amount=9, currency="usd")
                ok += 1
            except Exception as exc:  # InsufficientFunds once the money is gone
                assert exc.__class__.__name__ == "InsufficientFunds"
        return ok

    spent = sum(_run(16, spend))
    assert spent == 1000 // 9
    assert selectors.balance_get(organization=org_acme, user=USER, currency="usd").balance == 1000 - 9 * spent
