"""Concurrent payout processing on real PostgreSQL: the funds check and the withdrawal happen under the
clearing account's row lock, so racing payouts never take the settled balance below zero; duplicate
deliveries of one payout move its money once; a cancel racing the processing leaves one consistent outcome."""

from __future__ import annotations

import pytest

from billing_project.core.errors import ValidationError
from ledger import selectors as ledger_selectors
from ledger.models import Account, BalanceTransaction
from payments.models import Payout
from payments.services import payouts as payout_services
from tests.payments.test_methods_payouts import fund_clearing, house_balance
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)


def _payouts(org, amounts: list[int]) -> list[Payout]:
    return [payout_services.payout_create(organization=org, amount=amount, destination_id=f"ba_{i}")
            for i, amount in enumerate(amounts)]


def test_racing_payouts_never_overdraw_clearing(org_acme):
    fund_clearing(org_acme, 2_000)
    payouts = _payouts(org_acme, [600] * 6)
    run_threads(6, lambda i: payout_services.payout_process(payout_pk=payouts[i].pk))
    statuses = sorted(Payout.objects.values_list("status", flat=True))
    assert statuses == ["failed"] * 3 + ["paid"] * 3
    assert house_balance(org_acme, Account.KIND_PROCESSOR_CLEARING) == 200
    assert house_balance(org_acme, Account.KIND_BANK) == 1_800
    assert ledger_selectors.ledger_audit().ok


def test_duplicate_deliveries_move_the_money_once(org_acme):
    fund_clearing(org_acme, 5_000)
    (payout,) = _payouts(org_acme, [1_500])
    run_threads(6, lambda i: payout_services.payout_process(payout_pk=payout.pk))
    assert Payout.objects.get(pk=payout.pk).status == "paid"
    assert BalanceTransaction.objects.filter(source_type="payout").count() == 2
    assert house_balance(org_acme, Account.KIND_PROCESSOR_CLEARING) == 3_500
    assert ledger_selectors.ledger_audit().ok


def test_cancel_racing_processing_has_one_outcome(org_acme):
    fund_clearing(org_acme, 50_000)
    payouts = _payouts(org_acme, [1_000] * 5)

    def work(i: int):
        payout = payouts[i // 2]
        if i % 2:
            return payout_services.payout_cancel(organization=org_acme, payout_id=payout.public_id)
        return payout_services.payout_process(payout_pk=payout.pk)

    run_threads(10, work, catch=(ValidationError,))
    paid = Payout.objects.filter(status="paid").count()
    canceled = Payout.objects.filter(status="canceled").count()
    assert paid + canceled == 5
    assert house_balance(org_acme, Account.KIND_BANK) == 1_000 * paid
    assert house_balance(org_acme, Account.KIND_PROCESSOR_CLEARING) == 50_000 - 1_000 * paid
    assert ledger_selectors.ledger_audit().ok
