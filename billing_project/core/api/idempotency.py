"""``Idempotency-Key`` on POST, PATCH and DELETE under /api/ (Stripe semantics).

One ``IdempotencyRecord`` per (organization, key), claimed *before* the view runs in its own
autocommit statement, so a concurrent duplicate sees it:
- same key, same fingerprint (method, path, query, body), finished → the stored response is replayed
  with ``Idempotent-Replayed: true``;
- same key, different fingerprint → 409;
- same key while the first request is still running → 409 (a record in flight longer than
  IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS is treated as abandoned by a crashed worker and taken over).
Responses that say the request never executed (400/401/403/404/405/415, 5xx) release the key so a
corrected retry can use it; 2xx, 402 and 409 outcomes are stored and replayed for 24 h.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from billing_project.core.api.auth import api_key_from_request
from billing_project.core.api.errors import error_body
from billing_project.core.models import IdempotencyRecord

METHODS = {"POST", "PATCH", "DELETE"}
STORED_ERROR_STATUSES = {402, 409}


def request_fingerprint(request) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.get_full_path()):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(request.body)
    return digest.hexdigest()


def _conflict(message: str, code: str) -> JsonResponse:
    return JsonResponse(error_body(message, code=code, param="Idempotency-Key"), status=409)


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.headers.get("Idempotency-Key")
        if key is None or request.method not in METHODS or not request.path.startswith("/api/"):
            return self.get_response(request)
        if not key.strip() or len(key) > 255:
            return JsonResponse(
                error_body("Idempotency-Key must be 1 to 255 characters", code="invalid_request",
                           param="Idempotency-Key"),
                status=400,
            )
        api_key = api_key_from_request(request)
        if api_key is None:
            return self.get_response(request)  # the view answers 401/403; nothing to remember
        organization = api_key.organization
        fingerprint = request_fingerprint(request)

        record, outcome = self._claim(organization, key, fingerprint, request)
        if outcome is not None:
            return outcome

        try:
            response = self.get_response(request)
        except BaseException:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
            raise
        if 200 <= response.status_code < 300 or response.status_code in STORED_ERROR_STATUSES:
            IdempotencyRecord.objects.filter(pk=record.pk).update(
                status=IdempotencyRecord.STATUS_DONE,
                response_status=response.status_code,
                response_body=bytes(response.content),
                response_content_type=response.get("Content-Type", "application/json"),
            )
        else:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return response

    def _claim(self, organization, key, fingerprint, request):
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
                stale = now - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS)
                if record.created_at < stale and IdempotencyRecord.objects.filter(
                    pk=record.pk, status=IdempotencyRecord.STATUS_IN_FLIGHT, created_at=record.created_at
                ).update(created_at=now):
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
