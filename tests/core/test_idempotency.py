"""Idempotency-Key (Stripe semantics) on POST/PATCH/DELETE."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

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


@contextmanager
def _first_request_blocked(acme_key, *, user: str, key: str):
    """A deposit for ``user`` with Idempotency-Key ``key`` sent from a thread and held on the wallet's row
    lock (another thread holds it) once its claim exists; released, and both threads joined, on exit.
    Yields the dict where the first request's response lands (``"first"``)."""
    from django.db import connections, transaction

    results: dict[str, object] = {}
    lock_taken, release = threading.Event(), threading.Event()

    def hold_wallet_lock():
        with transaction.atomic():
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT id FROM ledger_account WHERE customer = %s AND kind = 'wallet' FOR UPDATE",
                               [user])
            lock_taken.set()
            release.wait(10)
        connections.close_all()

    def slow_request():
        results["first"] = Api(acme_key).post("/deposit", {"user": user, "amount": 5}, idempotency_key=key)
        connections.close_all()

    locker = threading.Thread(target=hold_wallet_lock)
    locker.start()
    assert lock_taken.wait(10)
    worker = threading.Thread(target=slow_request)
    worker.start()
    deadline = time.monotonic() + 10
    while not IdempotencyRecord.objects.filter(key=key).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield results
    finally:
        release.set()
        worker.join(10)
        locker.join(10)


@pytest.mark.django_db(transaction=True)
def test_same_key_while_first_is_in_flight_is_409(acme_key):
    """A request holds the key while it runs: block it on the wallet row lock, then retry meanwhile."""
    api = Api(acme_key)
    api.post("/deposit", {"user": "hanzo/slow", "amount": 1})  # create the wallet
    with _first_request_blocked(acme_key, user="hanzo/slow", key="inflight") as results:
        second = api.post("/deposit", {"user": "hanzo/slow", "amount": 5}, idempotency_key="inflight")
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


# --- issue 10 §1: money that moves must answer with success --------------------------------------------

@pytest.fixture
def failing_renderer(monkeypatch):
    """Rendering a body that holds a ``transactionId`` fails (any bug after the work: a 5xx in rendering)."""
    from billing_project.core.api.renderers import JSONRenderer

    original = JSONRenderer.render

    def render(self, data, *args, **kwargs):
        if isinstance(data, dict) and "transactionId" in data:
            raise RuntimeError("rendering failed")
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(JSONRenderer, "render", render)


@pytest.mark.django_db
@pytest.mark.parametrize("key", [None, "render-5xx"])
def test_a_5xx_in_rendering_rolls_the_work_back_and_a_retry_posts_once(api, failing_renderer, monkeypatch, key):
    api.client.raise_request_exception = False
    body = {"user": "hanzo/render", "amount": 400}
    r = api.post("/deposit", body, idempotency_key=key)
    assert r.status_code == 500
    assert not BalanceTransaction.objects.filter(customer="hanzo/render").exists()  # no money without answer
    assert not IdempotencyRecord.objects.exists()  # nothing committed, so the key is free
    monkeypatch.undo()
    retry = api.post("/deposit", body, idempotency_key=key)
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry
    assert api.get("/balance", {"user": "hanzo/render"}).json()["balance"] == 400


@pytest.mark.django_db(transaction=True)
def test_a_failure_after_commit_answers_the_committed_response_and_keeps_the_key(acme_key, monkeypatch):
    """An ``on_commit`` side effect that fails after the work committed: the client still gets its 201, the
    key stays done, and a retry replays instead of posting again."""
    from django.db import transaction as db_transaction

    from ledger import services

    api = Api(acme_key)
    original = services.deposit_create

    def deposit_then_broken_side_effect(**kwargs):
        txn = original(**kwargs)
        db_transaction.on_commit(lambda: (_ for _ in ()).throw(ConnectionError("broker down")))
        return txn

    monkeypatch.setattr(services, "deposit_create", deposit_then_broken_side_effect)
    body = {"user": "hanzo/after", "amount": 250}
    first = api.post("/deposit", body, idempotency_key="after-commit")
    assert first.status_code == 201
    record = IdempotencyRecord.objects.get(key="after-commit")
    assert record.status == IdempotencyRecord.STATUS_DONE and record.response_status == 201
    again = api.post("/deposit", body, idempotency_key="after-commit")
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert api.get("/balance", {"user": "hanzo/after"}).json()["balance"] == 250
    connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_failure_recording_the_response_rolls_the_work_back(acme_key, monkeypatch):
    """The response is recorded in the work's own transaction: if recording fails, nothing was posted and
    the key is free again."""
    from django.db.models import QuerySet

    api = Api(acme_key)
    api.client.raise_request_exception = False
    original_update = QuerySet.update

    def update(self, **kwargs):
        if self.model is IdempotencyRecord and kwargs.get("status") == IdempotencyRecord.STATUS_DONE:
            raise RuntimeError("disk full")
        return original_update(self, **kwargs)

    monkeypatch.setattr(QuerySet, "update", update)
    body = {"user": "hanzo/record", "amount": 90}
    assert api.post("/deposit", body, idempotency_key="record-fails").status_code == 500
    assert not BalanceTransaction.objects.filter(customer="hanzo/record").exists()
    assert not IdempotencyRecord.objects.filter(key="record-fails").exists()
    monkeypatch.undo()
    assert api.post("/deposit", body, idempotency_key="record-fails").status_code == 201
    assert api.get("/balance", {"user": "hanzo/record"}).json()["balance"] == 90
    connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_retry_never_takes_over_a_slow_first_request_that_may_still_commit(acme_key, settings):
    """Even past the in-flight timeout, a claim whose request is still running (its transaction holds the
    record's lock) is not taken over: the retry is a 409, the first commits once, a later retry replays."""
    settings.IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS = 0
    api = Api(acme_key)
    api.post("/deposit", {"user": "hanzo/race", "amount": 1})  # create the wallet
    with _first_request_blocked(acme_key, user="hanzo/race", key="race") as results:
        time.sleep(0.2)  # the first request now waits on the wallet lock, inside its transaction
        retries = [api.post("/deposit", {"user": "hanzo/race", "amount": 5}, idempotency_key="race")
                   for _ in range(3)]
    for retry in retries:
        assert_error(retry, 409, param="Idempotency-Key", contains="still being processed")
    assert results["first"].status_code == 201
    later = api.post("/deposit", {"user": "hanzo/race", "amount": 5}, idempotency_key="race")
    assert later["Idempotent-Replayed"] == "true"
    assert api.get("/balance", {"user": "hanzo/race"}).json()["balance"] == 6
    connection.close()


@pytest.mark.django_db
def test_an_abandoned_claim_is_taken_over_after_the_timeout(api, org_acme):
    """A claim left in flight by a worker that died (its transaction rolled back, the row is unlocked) proves
    nothing committed: after the timeout a retry executes."""
    from datetime import timedelta

    from django.utils import timezone

    body = {"user": "hanzo/crash", "amount": 30}
    assert api.post("/deposit", body, idempotency_key="probe").status_code == 201
    # The claim a crashed worker left: same request (the fingerprint does not depend on the key), in flight.
    IdempotencyRecord.objects.filter(key="probe").update(key="crashed", status=IdempotencyRecord.STATUS_IN_FLIGHT,
                                                         response_status=None, response_body=None)
    busy = api.post("/deposit", body, idempotency_key="crashed")
    assert_error(busy, 409, contains="still being processed")  # too recent: its owner may be about to lock it
    IdempotencyRecord.objects.filter(key="crashed").update(created_at=timezone.now() - timedelta(minutes=5))
    taken = api.post("/deposit", body, idempotency_key="crashed")
    assert taken.status_code == 201 and "Idempotent-Replayed" not in taken
    assert IdempotencyRecord.objects.get(key="crashed").status == IdempotencyRecord.STATUS_DONE
    assert api.get("/balance", {"user": "hanzo/crash"}).json()["balance"] == 60


@pytest.mark.django_db
@pytest.mark.parametrize("status,kept", [(201, True), (200, True), (402, True), (409, True), (400, False),
                                         (404, False), (500, False), (503, False)])
def test_a_state_changing_request_keeps_its_writes_only_when_its_answer_says_it_executed(status, kept):
    """The invariant under every POST/PATCH/DELETE: what the view wrote commits with a 2xx/402/409 answer and
    is rolled back with any other (an answer that says "not executed" is made true)."""
    from django.http import JsonResponse
    from django.test import RequestFactory

    from billing_project.core.api.idempotency import IdempotencyMiddleware
    from billing_project.core.models import Organization

    def view(request):
        Organization.objects.create(name="written-by-the-view")
        return JsonResponse({}, status=status)

    response = IdempotencyMiddleware(view)(RequestFactory().post("/api/v1/billing/x", {}))
    assert response.status_code == status
    assert Organization.objects.filter(name="written-by-the-view").exists() is kept


@pytest.mark.django_db
def test_nul_in_the_authorization_header_is_401_json(anon_api):
    r = anon_api.post("/deposit", {"user": "u", "amount": 1}, HTTP_AUTHORIZATION="Bearer tk_\x00x",
                      idempotency_key="auth-nul")
    assert_error(r, 401)


# --- views outside the request transaction (they will call a payment processor) --------------------------

class _WritesThenAnswers:
    """A view that writes, then answers with the status its request asks for (``?status=``)."""

    runs = 0

    @classmethod
    def view(cls, *, outside: bool):
        from django.http import JsonResponse
        from rest_framework.views import APIView

        from billing_project.core.models import Organization

        class View(APIView):
            request_transaction = not outside

            def post(self, request):
                cls.runs += 1
                Organization.objects.create(name="written", slug=f"written-{cls.runs}")
                return JsonResponse({"runs": cls.runs}, status=int(request.query_params.get("status", "201")))

        return View.as_view()


def _urlpatterns():
    from django.urls import path

    return [path("api/v1/billing/inside", _WritesThenAnswers.view(outside=False)),
            path("api/v1/billing/outside", _WritesThenAnswers.view(outside=True))]


urlpatterns = _urlpatterns()


@pytest.fixture
def own_urls(settings):
    settings.ROOT_URLCONF = __name__
    _WritesThenAnswers.runs = 0


@pytest.mark.django_db
def test_a_view_outside_the_request_transaction_keeps_its_key_whatever_the_answer(api, own_urls):
    from billing_project.core.models import Organization

    first = api.post("/outside?status=503", {}, idempotency_key="outside")
    assert first.status_code == 503
    assert Organization.objects.filter(name="written").count() == 1  # its own writes are its own business
    again = api.post("/outside?status=503", {}, idempotency_key="outside")
    assert again.status_code == 503 and again["Idempotent-Replayed"] == "true"
    assert _WritesThenAnswers.runs == 1  # the key was not released: the view never runs twice


@pytest.mark.django_db
def test_an_in_flight_claim_of_a_view_outside_the_transaction_is_never_taken_over(api, org_acme, own_urls):
    from datetime import timedelta

    from django.utils import timezone

    from billing_project.core.api.idempotency import request_fingerprint
    from billing_project.core.models import IdempotencyRecord as Record

    request = type("R", (), {"method": "POST", "get_full_path": lambda self: "/api/v1/billing/outside",
                             "body": b"{}"})()
    Record.objects.create(organization=org_acme, key="stuck", fingerprint=request_fingerprint(request),
                          method="POST", path="/api/v1/billing/outside")
    Record.objects.filter(key="stuck").update(created_at=timezone.now() - timedelta(hours=1))
    assert_error(api.post("/outside", {}, idempotency_key="stuck"), 409, contains="still being processed")
    assert _WritesThenAnswers.runs == 0


@pytest.mark.django_db
def test_a_view_inside_the_request_transaction_is_rolled_back_with_a_5xx(api, own_urls):
    from billing_project.core.models import Organization

    assert api.post("/inside?status=503", {}, idempotency_key="inside").status_code == 503
    assert not Organization.objects.filter(name="written").exists()
    assert api.post("/inside?status=201", {}, idempotency_key="inside2").status_code == 201
    assert api.post("/inside?status=503", {}, idempotency_key="inside").status_code == 503  # released: runs
    assert _WritesThenAnswers.runs == 3
