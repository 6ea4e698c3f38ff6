"""Beat sweeper and per-item tasks (STYLE §7): the sweep claims due subscriptions and past-due renewals
(``services.sweeps``) and enqueues one task each; the tasks call one service, which re-checks under lock."""

from __future__ import annotations

from celery import shared_task

from subscriptions.services import renewals, sweeps

ITEM_TASK = {"acks_late": True, "time_limit": 120, "soft_time_limit": 100, "autoretry_for": (OSError,),
             "retry_backoff": True, "retry_jitter": True, "max_retries": 5}


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def subscriptions_sweep() -> int:
    due = sweeps.subscriptions_claim(limit=5000)
    for pk in due:
        subscription_due_process.delay(pk)
    retries = sweeps.renewals_claim(limit=5000)
    for pk in retries:
        renewal_retry.delay(pk)
    return len(due) + len(retries)


@shared_task(**ITEM_TASK)
def subscription_due_process(subscription_pk: int) -> str:
    return renewals.subscription_due_process(subscription_pk=subscription_pk)


@shared_task(**ITEM_TASK)
def renewal_retry(renewal_pk: int) -> str:
    return renewals.renewal_retry(renewal_pk=renewal_pk)
