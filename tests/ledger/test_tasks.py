"""Beat sweepers fan out one task per due id; tasks call one service; re-runs are harmless."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing_project.celery import app as celery_app
from ledger import selectors, services, tasks
from ledger.models import Hold, Lot

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_beat_schedule_runs_both_sweepers_every_minute():
    schedule = celery_app.conf.beat_schedule
    assert schedule["ledger-expire-balances"]["task"] == "ledger.tasks.balances_expire_sweep"
    assert schedule["ledger-expire-holds"]["task"] == "ledger.tasks.holds_expire_sweep"
    assert schedule["ledger-expire-balances"]["schedule"] == schedule["ledger-expire-holds"]["schedule"] == 60.0


def test_balance_sweeper_expires_due_lots(eager, org_acme):
    services.deposit_create(organization=org_acme, user="u", amount=500, currency="usd", expires_in_days=1)
    services.usage_record(organization=org_acme, user="u", amount=120, currency="usd")
    assert tasks.balances_expire_sweep() == 0  # not due yet
    Lot.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tasks.balances_expire_sweep() == 1
    assert selectors.balance_get(organization=org_acme, user="u", currency="usd").balance == 0
    assert tasks.balances_expire_sweep() == 0
    lot = Lot.objects.get()
    assert tasks.lot_expire(lot.pk) is None  # a duplicate delivery does nothing


def test_hold_sweeper_expires_due_holds(eager, org_acme):
    services.deposit_create(organization=org_acme, user="u", amount=500, currency="usd")
    hold = services.hold_place(organization=org_acme, user="u", amount=100, currency="usd", expires_in_seconds=1)
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tasks.holds_expire_sweep() == 1
    hold.refresh_from_db()
    assert hold.status == "expired"
    assert tasks.hold_expire(org_acme.pk, hold.public_id) is None
