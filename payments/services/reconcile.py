"""Reconciling processor attempts left pending (a crash, a timeout or a lost answer between the processor
call and the application of its result).

Invariants
- A sweep claims due attempts (pending for longer than ``PAYMENTS_RECONCILE_AFTER_SECONDS``, which must exceed
  the processor call timeout) with ``FOR UPDATE SKIP LOCKED`` plus a claimed-until stamp, as
  ``ledger.services.sweeps`` does: overlapping sweeps never hand out the same attempt twice.
- Reconciling asks the processor ``retrieve(key)`` with the attempt's own idempotency key — it never makes a
  new payment call, so nothing is charged twice. The answer is applied by the same code as the request's
  phase 3 (``attempts.attempt_apply`` / ``collection.collection_attempt_apply``), which re-checks under the
  locks that the attempt is still pending: a duplicate delivery or a racing request changes nothing.
- ``retrieve`` finding nothing means the call never reached the processor: the attempt fails (a decline
  for the intent; the invoice's consumed funds are given back). An error asking leaves it pending: the claim
  lapses and a later sweep asks again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from billing_project.core import sweeps as core_sweeps
from payments.models import PaymentAttempt, PaymentIntent
from payments.services import attempts
from payments.services import collection as collection_services

CLAIM_SECONDS = 600


def _after() -> timedelta:
    return timedelta(seconds=getattr(settings, "PAYMENTS_RECONCILE_AFTER_SECONDS", 300))


def attempts_claim(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Claim pending attempts older than the reconcile delay, not claimed by another sweep; their pks."""
    now = now or timezone.now()
    due = PaymentAttempt.objects.filter(status=PaymentAttempt.STATUS_PENDING, created_at__lte=now - _after())
    return core_sweeps.pks_claim(due, order="created_at", now=now, limit=limit, claim_seconds=CLAIM_SECONDS)


def attempt_reconcile(*, attempt_pk: int, now: datetime | None = None) -> str:
    """Settle one pending attempt from the processor's record of its key; returns the attempt's status after
    (``pending`` when the processor could not be asked)."""
    attempt = PaymentAttempt.objects.select_related("intent", "organization").filter(pk=attempt_pk).first()
    if attempt is None or attempt.status != PaymentAttempt.STATUS_PENDING:
        return attempt.status if attempt is not None else "missing"
    answer = attempts.attempt_retrieve(attempt)
    if answer is False:
        return PaymentAttempt.STATUS_PENDING
    intent = attempt.intent
    if intent.purpose == PaymentIntent.PURPOSE_INVOICE and attempt.kind == PaymentAttempt.KIND_CONFIRM:
        collection_services.collection_attempt_apply(attempt_pk=attempt_pk, result=answer, now=now)
    else:
        attempts.attempt_apply(attempt_pk=attempt_pk, result=answer, now=now)
    return PaymentAttempt.objects.values_list("status", flat=True).get(pk=attempt_pk)
