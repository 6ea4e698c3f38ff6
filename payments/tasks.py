"""Payments beat tasks. Sweepers claim due rows and fan out one task per row; each task takes an id and calls
one service that re-checks state under lock, so overlapping beats and duplicate deliveries are harmless.
- payouts: pending payouts are moved on (funds checked under the clearing account's lock);
- processor attempts left pending (a crash between call and apply) are reconciled by asking the processor
  with the same idempotency key (``payments.services.reconcile``) — never a new charge;
- refunds left pending by an unknown processor outcome are settled the same way, with the refund's own key
  (``payments.services.refunds.refund_reconcile``)."""

from __future__ import annotations

from celery import shared_task

from payments.services import payouts as payout_services
from payments.services import reconcile
from payments.services import refunds as refund_services

ITEM_TASK = {"acks_late": True, "time_limit": 60, "soft_time_limit": 50, "autoretry_for": (OSError,),
             "retry_backoff": True, "retry_jitter": True, "max_retries": 5}


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def payouts_process_sweep() -> int:
    pks = payout_services.payouts_claim(limit=5000)
    for pk in pks:
        payout_process.delay(pk)
    return len(pks)


@shared_task(**ITEM_TASK)
def payout_process(payout_pk: int) -> str | None:
    payout = payout_services.payout_process(payout_pk=payout_pk)
    return payout.status if payout else None


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def payment_attempts_reconcile_sweep() -> int:
    pks = reconcile.attempts_claim(limit=1000)
    for pk in pks:
        payment_attempt_reconcile.delay(pk)
    return len(pks)


@shared_task(**ITEM_TASK)
def payment_attempt_reconcile(attempt_pk: int) -> str:
    return reconcile.attempt_reconcile(attempt_pk=attempt_pk)


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def refunds_reconcile_sweep() -> int:
    ids = refund_services.refunds_pending_claim(limit=500)
    for refund_pk in ids:
        refund_reconcile.delay(refund_pk)
    return len(ids)


@shared_task(**ITEM_TASK)
def refund_reconcile(refund_pk: int) -> str:
    return refund_services.refund_reconcile(refund_pk=refund_pk).status
