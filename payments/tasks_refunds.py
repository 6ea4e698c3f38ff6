"""Refunds left pending by an unknown processor outcome (a timeout, a crash between the call and the apply):
a beat sweeper claims them and fans out one task per refund, which asks the processor with the same
idempotency key and applies the answer (``payments.services.refunds.refund_reconcile``). Duplicate deliveries
are harmless: the service re-checks under lock that the refund is still pending."""

from __future__ import annotations

from celery import shared_task

from payments.services import refunds as refund_services

ITEM_TASK = {"acks_late": True, "time_limit": 60, "soft_time_limit": 50, "autoretry_for": (OSError,),
             "retry_backoff": True, "retry_jitter": True, "max_retries": 5}


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def refunds_reconcile_sweep() -> int:
    ids = refund_services.refunds_pending_claim(limit=500)
    for refund_pk in ids:
        refund_reconcile.delay(refund_pk)
    return len(ids)


@shared_task(**ITEM_TASK)
def refund_reconcile(refund_pk: int) -> str:
    return refund_services.refund_reconcile(refund_pk=refund_pk).status
