"""Beat sweeper for processor attempts left pending; per-item tasks take ids and call one service
(``payments.services.reconcile``). Overlapping beats and duplicate deliveries are harmless: attempts are
claimed, and applying re-checks under lock that the attempt is still pending."""

from __future__ import annotations

from celery import shared_task

from payments.services import reconcile

ITEM_TASK = {"acks_late": True, "time_limit": 60, "soft_time_limit": 50, "autoretry_for": (OSError,),
             "retry_backoff": True, "retry_jitter": True, "max_retries": 5}


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def payment_attempts_reconcile_sweep() -> int:
    pks = reconcile.attempts_claim(limit=1000)
    for pk in pks:
        payment_attempt_reconcile.delay(pk)
    return len(pks)


@shared_task(**ITEM_TASK)
def payment_attempt_reconcile(attempt_pk: int) -> str:
    return reconcile.attempt_reconcile(attempt_pk=attempt_pk)
