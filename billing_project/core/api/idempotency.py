"""The API request guard: safe input, one transaction per state-changing request, ``Idempotency-Key``.

Every request under /api/:
- a NUL character in the path is a JSON 404, in a query parameter a 400 naming it (bodies: ``parsers.py``).

Every POST, PATCH and DELETE under /api/ runs, view *and rendering of its response*, in one database
transaction: a response that cannot be rendered (a 5xx) rolls back everything the request wrote, so no
money moves without its success answer. A response that says the request did not execute (4xx other than
402/409, and 5xx) rolls it back as well; 2xx, 402 and 409 commit. If the commit succeeded and an
``on_commit`` side effect then fails, the answer is still the committed response (the failure is logged).

``Idempotency-Key`` (Stripe semantics): one ``IdempotencyRecord`` per (organization, key), claimed *before*
the view runs in its own autocommit statement, so a concurrent duplicate sees it at once:
- same key, same fingerprint (method, path, query, body), finished → the stored response is replayed with
  ``Idempotent-Replayed: true``; same key, different fingerprint → 409 ``idempotency_key_reused``;
- same key while the first request is still running → 409 ``idempotency_request_in_flight``.
The request's transaction locks its record first and marks it done with the response *in the same
transaction as the work*: the work and "done" commit together or not at all. So a record still in flight
whose row is not locked proves that its request's work did not commit (it rolled back, or the worker
died); only such a record is released (by its owner) or taken over (by a retry, once it is older than
IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS, which covers the instant between the claim and the lock). A record
marked done is never released: its request committed.

A view that must not run inside one transaction (one that calls a payment processor: no lock may be held
across network I/O) sets ``request_transaction = False``. Its services then commit on their own, so once
such a view ran its key is stored whatever the answer (5xx included, as Stripe does) and an in-flight
claim of it is never taken over (nothing proves that its work did not commit); such a view makes its own
natural idempotency key the source of truth for the work.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.utils import timezone

from billing_project.core.api.auth import api_key_from_request
from billing_project.core.api.errors import error_body
from billing_project.core.models import IdempotencyRecord

logger = logging.getLogger(__name__)

METHODS = {"POST", "PATCH", "DELETE"}
STORED_ERROR_STATUSES = {402, 409}


def request_fingerprint(request) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.get_full_path()):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(request.body)
    return digest.hexdigest()


def executed(status: int) -> bool:
    """Does a response with this status say the request executed (its work is kept and replayed)?"""
    return 200 <= status < 300 or status in STORED_ERROR_STATUSES


def _conflict(message: str, code: str) -> JsonResponse:
    return JsonResponse(error_body(message, code=code, param="Idempotency-Key"), status=409)


def in_request_transaction(request) -> bool:
    """Does the view of this request run in the request transaction (``request_transaction``, default True)?"""
    try:
        func = resolve(request.path_info).func
    except Resolver404:
        return True
    return getattr(getattr(func, "cls", func), "request_transaction", True)


def unsafe_input_response(request) -> JsonResponse | None:
    """A JSON refusal of a NUL character in the path or the query string (PostgreSQL cannot store or
    compare it), else None."""
    if "\x00" in request.path:
        return JsonResponse(error_body("resource not found", code="resource_missing"), status=404)
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            param = name.replace("\x00", "")
            return JsonResponse(error_body(f"invalid request: {param or 'query'} must not contain a NUL character",
                                           code="invalid_request", param=param or None), status=400)
    return None


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        refused = unsafe_input_response(request)
        if refused is not None:
            return refused
        if request.method not in METHODS:
            return self.get_response(request)
        key = request.headers.get("Idempotency-Key")
        atomic = in_request_transaction(request)
        if key is None:
            return self._run(request, None) if atomic else self.get_response(request)
        if not key.strip() or len(key) > 255 or "\x00" in key:
            return JsonResponse(
                error_body("Idempotency-Key must be 1 to 255 characters (no NUL)", code="invalid_request",
                           param="Idempotency-Key"),
                status=400,
            )
        api_key = api_key_from_request(request)
        if api_key is None:  # the view answers 401/403; nothing to remember
            return self._run(request, None) if atomic else self.get_response(request)
        record, outcome = self._claim(api_key.organization, key, request_fingerprint(request), request,
                                      may_take_over=atomic)
        if outcome is not None:
            return outcome
        return self._run(request, record) if atomic else self._run_outside_transaction(request, record)

    def _run_outside_transaction(self, request, claim: IdempotencyRecord):
        """A view outside the request transaction: once it ran, its answer is stored whatever it is (if the
        worker dies meanwhile, the claim stays in flight until it expires: nothing proves the work did not
        commit)."""
        response = self.get_response(request)
        _store(claim, response)
        return response

    def _run(self, request, claim: IdempotencyRecord | None):
        """The view and its rendering in one transaction with the claim's "done" (see the module doc)."""
        committed: list[bool] = []
        response = None
        try:
            with transaction.atomic():
                transaction.on_commit(lambda: committed.append(True))  # the first callback: the commit happened
                if claim is not None and not _lock_own(claim):
                    return _conflict("A request with this Idempotency-Key is still being processed; retry later.",
                                     "idempotency_request_in_flight")
                response = self.get_response(request)  # rendered: Django renders inside the handler
                if not executed(response.status_code):
                    transaction.set_rollback(True)
                elif claim is not None:
                    _store(claim, response)
        except BaseException:
            if committed and response is not None:
                # The work and the record committed; a side effect registered with on_commit failed.
                logger.exception("on_commit callback failed after %s %s committed", request.method, request.path)
                return response
            _release(claim)
            raise
        if claim is not None and not executed(response.status_code):
            _release(claim)
        return response

    def _claim(self, organization, key, fingerprint, request, *, may_take_over: bool):
        now = timezone.now()
        for _attempt in range(3):
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        organization=organization, key=key, fingerprint=fingerprint,
                        method=request.method, path=request.path[:500],
                    )
                return record, None
            except IntegrityError:
                pass
            record = IdempotencyRecord.objects.filter(organization=organization, key=key).first()
            if record is None:
                continue  # released between our insert and read; try again
            ttl = timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
            if record.created_at < now - ttl:
                IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).delete()
                continue
            if record.fingerprint != fingerprint:
                return None, _conflict(
                    "Keys for idempotent requests can only be used with the same parameters they were "
                    "first used with.", "idempotency_key_reused")
            if record.status == IdempotencyRecord.STATUS_IN_FLIGHT:
                if may_take_over and _take_over(record, now):
                    return record, None
                return None, _conflict(
                    "A request with this Idempotency-Key is still being processed; retry later.",
                    "idempotency_request_in_flight")
            replay = HttpResponse(
                bytes(record.response_body or b""), status=record.response_status,
                content_type=record.response_content_type or "application/json",
            )
            replay["Idempotent-Replayed"] = "true"
            return None, replay
        return None, _conflict("Could not claim the Idempotency-Key; retry.", "idempotency_request_in_flight")


def _store(claim: IdempotencyRecord, response) -> None:
    """Mark the claim done with the response to replay."""
    IdempotencyRecord.objects.filter(pk=claim.pk).update(
        status=IdempotencyRecord.STATUS_DONE,
        response_status=response.status_code,
        response_body=bytes(response.content),
        response_content_type=response.get("Content-Type", "application/json"),
    )


def _in_flight(record: IdempotencyRecord):
    """The record, only while it is still in flight under the claim we know (``created_at`` is the claim's
    token: a take-over renews it)."""
    return IdempotencyRecord.objects.filter(pk=record.pk, status=IdempotencyRecord.STATUS_IN_FLIGHT,
                                            created_at=record.created_at)


def _lock_own(claim: IdempotencyRecord) -> bool:
    """Lock our claim for the request's transaction; False when a retry took it over meanwhile."""
    return bool(list(_in_flight(claim).select_for_update().values_list("pk", flat=True)))


def _take_over(record: IdempotencyRecord, now) -> bool:
    """Take over an abandoned claim: in flight for longer than the timeout and not locked by a running
    request's transaction (so that request's work did not commit and never will)."""
    stale_before = now - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS)
    if record.created_at >= stale_before:
        return False
    with transaction.atomic():
        if not list(_in_flight(record).select_for_update(skip_locked=True).values_list("pk", flat=True)):
            return False
        _in_flight(record).update(created_at=now)
    record.created_at = now
    return True


def _release(claim: IdempotencyRecord | None) -> None:
    """Free a claim whose request's transaction did not commit. Safe whatever happened: a committed
    request marked its record done in the same transaction, and a done record is never deleted here."""
    if claim is None:
        return
    try:
        _in_flight(claim).delete()
    except Exception:  # the connection may be gone; the claim is then taken over after the timeout
        logger.exception("could not release Idempotency-Key claim %s", claim.pk)
