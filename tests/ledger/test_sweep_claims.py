"""Beat sweepers claim what they enqueue: overlapping sweeps and the next minute's sweep never enqueue the
same id twice while its task is queued; a claim lapses, so a lost task's row is handed out again."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from ledger import services, tasks
from ledger.models import CreditGrant, Hold, Lot
from ledger.services import credits as credit_services
from ledger.services import sweeps
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)

PAST = timedelta(seconds=1)


@pytest.fixture
def enqueued(monkeypatch):
    """What the sweepers hand to the item tasks (``delay`` recorded, nothing runs)."""
    sent: list = []
    lock = threading.Lock()

    def recorder(*args):
        with lock:
            sent.append(args[0] if len(args) == 1 else tuple(args))

    for task in (tasks.lot_expire, tasks.hold_expire, tasks.credit_grant_expire):
        monkeypatch.setattr(task, "delay", recorder)
    return sent


def _due_lots(org, n: int) -> list[int]:
    for i in range(n):
        services.deposit_create(organization=org, user=f"u{i}", amount=100, currency="usd", expires_in_days=1)
    Lot.objects.update(expires_at=timezone.now() - PAST)
    return sorted(Lot.objects.values_list("pk", flat=True))


def _due_holds(org, n: int) -> list[tuple[int, str]]:
    services.deposit_create(organization=org, user="u", amount=10_000, currency="usd")
    for _ in range(n):
        services.hold_place(organization=org, user="u", amount=10, currency="usd", expires_in_seconds=60)
    Hold.objects.update(expires_at=timezone.now() - PAST)
    return sorted(Hold.objects.values_list("organization_id", "public_id"))


def _due_grants(org, n: int) -> list[int]:
    for i in range(n):
        credit_services.credit_grant_create(organization=org, user=f"c{i}", amount_cents=100, currency="usd")
    CreditGrant.objects.update(expires_at=timezone.now() - PAST)
    return sorted(CreditGrant.objects.values_list("pk", flat=True))


SWEEPS = {
    "lots": (_due_lots, tasks.balances_expire_sweep),
    "holds": (_due_holds, tasks.holds_expire_sweep),
    "grants": (_due_grants, tasks.credit_grants_expire_sweep),
}


@pytest.mark.parametrize("kind", SWEEPS)
def test_overlapping_sweeps_never_enqueue_an_id_twice(kind, org_acme, enqueued):
    make_due, sweep = SWEEPS[kind]
    due = make_due(org_acme, 40)

    counts = run_threads(4, lambda _i: sweep())

    assert sorted(enqueued) == due  # every due id once, none twice
    assert sum(counts) == len(due)
    assert sweep() == 0  # the next minute's sweep: all still claimed, nothing re-queued
    assert len(enqueued) == len(due)


@pytest.mark.parametrize("kind", SWEEPS)
def test_a_lapsed_claim_is_handed_out_again(kind, org_acme, enqueued):
    make_due, sweep = SWEEPS[kind]
    due = make_due(org_acme, 3)
    assert sweep() == 3

    later = timezone.now() + timedelta(seconds=sweeps.CLAIM_SECONDS + 1)
    claim = {"lots": sweeps.lots_claim, "holds": sweeps.holds_claim, "grants": sweeps.credit_grants_claim}[kind]

    assert sorted(claim(now=later)) == due  # the tasks were lost: a later sweep hands them out again
    assert claim(now=later) == []


def test_claims_respect_the_limit_and_take_the_oldest_first(org_acme, enqueued):
    due = _due_lots(org_acme, 5)
    Lot.objects.filter(pk=due[-1]).update(expires_at=timezone.now() - timedelta(days=3))

    first = sweeps.lots_claim(limit=2)

    assert len(first) == 2 and first[0] == due[-1]
    assert sorted(first + sweeps.lots_claim(limit=10)) == due


def test_the_manual_command_ignores_claims(org_acme, enqueued):
    """``manage.py expire_balances`` expires everything due itself, claimed or not."""
    _due_lots(org_acme, 2)
    assert tasks.balances_expire_sweep() == 2

    assert services.balances_expire()["lots"] == 2
    assert not Lot.objects.filter(status=Lot.STATUS_OPEN).exists()
