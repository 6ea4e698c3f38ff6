"""Idempotency-Key (Stripe semantics) on POST/PATCH/DELETE."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from billing_project.core.models import IdempotencyRecord
from ledger.models import BalanceTransaction
from tests.conftest import Api, assert_error


@pytest.mark.django_db
def test_same_request_replays_stored_response(api):
    body = {"user": "hanzo/bob", "amount": 1000}
    first = api.post("/deposit", body, idempotency_key="dep-1")
    second = api.post("/deposit", body, idempotency_key="dep-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert BalanceTransaction.objects.filter(type="deposit").count() == 1
    assert api.get("/balance", {"user": "hanzo/bob"}).json()["balance"] == 1000


@pytest.mark.django_db
def test_same_key_different_request_is_409(api):
    api.post("/deposit", {"user": "hanzo/bob", "amount": 1000}, idempotency_key="dep-2")
    r = api.post("/deposit", {"user": "hanzo/bob", "amount": 2000}, idempotency_key="dep-2")
    assert_error(r, 409, param="Idempotency-Key", contains="same parameters")
    assert api.get("/balance", {"user": "hanzo/bob"}).json()["balance"] == 1000


@pytest.mark.django_db
def test_keys_are_per_organization(api, globex_api):
    body = {"user": "hanzo/bob", "amount": 1000}
    a = api.post("/deposit", body, idempotency_key="shared")
    b = globex_api.post("/deposit", body, idempotency_key="shared")
    assert a.status_code == b.status_code == 201
    assert a.json()["transactionId"] != b.json()["transactionId"]
    assert "Idempotent-Replayed" not in b


@pytest.mark.django_db
def test_validation_errors_release_the_key(api):
    bad = api.post("/deposit", {"user": "hanzo/bob", "amount": -1}, idempotency_key="dep-3")
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.filter(key="dep-3").exists()
    # The first request never executed, so the key was released and a corrected request may use it.
    good = api.post("/deposit", {"user": "hanzo/bob", "amount": 1}, idempotency_key="dep-3")
    assert good.status_code == 201


@pytest.mark.django_db
def test_business_conflicts_are_replayed(api):
    api.post("/credit", {"user": "hanzo/carol"})
    first = api.post("/credit", {"user": "hanzo/carol"}, idempotency_key="cred")
    again = api.post("/credit", {"user": "hanzo/carol"}, idempotency_key="cred")
    assert first.status_code == again.status_code == 409
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_overlong_key_is_400(api):
    assert_error(api.post("/deposit", {"user": "u", "amount": 1}, idempotency_key="k" * 256), 400,
                 param="Idempotency-Key")


@pytest.mark.django_db(transaction=True)
def test_same_key_while_first_is_in_flight_is_409(acme_key):
    """A request holds the key while it runs: block it on the wallet row lock, then retry meanwhile."""
    api = Api(acme_key)
    api.post("/deposit", {"user": "hanzo/slow", "amount": 1})  # create the wallet
    results: dict[str, object] = {}

    from django.db import connections, transaction

    lock_taken = threading.Event()
    release = threading.Event()

    def hold_wallet_lock():
        with transaction.atomic():
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT id FROM ledger_account WHERE customer = 'hanzo/slow' AND kind = 'wallet' "
                               "FOR UPDATE")
            lock_taken.set()
            release.wait(10)
        connections.close_all()

    def slow_request():
        results["first"] = Api(acme_key).post("/deposit", {"user": "hanzo/slow", "amount": 5},
                                              idempotency_key="inflight")
        connections.close_all()

    locker = threading.Thread(target=hold_wallet_lock)
    locker.start()
    assert lock_taken.wait(10)
    worker = threading.Thread(target=slow_request)
    worker.start()
    deadline = time.monotonic() + 10
    while not IdempotencyRecord.objects.filter(key="inflight").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    second = api.post("/deposit", {"user": "hanzo/slow", "amount": 5}, idempotency_key="inflight")
    release.set()
    worker.join(10)
    locker.join(10)
    assert_error(second, 409, param="Idempotency-Key", contains="still being processed")
    assert results["first"].status_code == 201
    third = api.post("/deposit", {"user": "hanzo/slow", "amount": 5}, idempotency_key="inflight")
    assert third["Idempotent-Replayed"] == "true"
    assert api.get("/balance", {"user": "hanzo/slow"}).json()["balance"] == 6
    connection.close()


@pytest.mark.django_db
def test_records_older_than_the_ttl_are_purged(api):
    from datetime import timedelta

    from django.utils import timezone

    from billing_project.core.tasks import idempotency_records_purge

    api.post("/deposit", {"user": "u", "amount": 1}, idempotency_key="old")
    api.post("/deposit", {"user": "u", "amount": 1}, idempotency_key="new")
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_records_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    # The purged key is free again: a new request with it executes instead of replaying.
    r = api.post("/deposit", {"user": "u", "amount": 1}, idempotency_key="old")
    assert r.status_code == 201 and "Idempotent-Replayed" not in r


@pytest.mark.django_db
def test_api_key_is_looked_up_once_per_request_with_an_idempotency_key(api):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        r = api.post("/deposit", {"user": "u", "amount": 1}, idempotency_key="once")
    assert r.status_code == 201
    assert sum('FROM "core_apikey"' in q["sql"] for q in queries.captured_queries) == 1
