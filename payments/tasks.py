"""Payments beat tasks: the sweeper claims due payouts and fans out one task per payout; the task calls one
service, which re-checks state under lock (duplicate deliveries and overlapping beats are harmless)."""

from __future__ import annotations

from celery import shared_task

from payments.services import payouts as payout_services

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
