"""Beat sweepers claim due rows and fan out one task per item; tasks take ids and call one service, which
re-checks under lock, so overlapping sweeps and duplicate deliveries apply nothing twice (STYLE §7).

- ``subscriptions_sweep`` claims due subscriptions and past-due renewals (``services.sweeps``): renewals,
  trial ends, period-end cancels, dunning retries.
- ``schedules_run_sweep`` claims the schedules with a phase start or an end due
  (``schedule_runner.schedules_claim``: ``FOR UPDATE SKIP LOCKED`` + a claimed-until stamp)."""

from __future__ import annotations

from celery import shared_task

from subscriptions.services import renewals, schedule_apply, schedule_runner, sweeps

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


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def schedules_run_sweep() -> int:
    pks = schedule_runner.schedules_claim(limit=5000)
    for schedule_pk in pks:
        schedule_run.delay(schedule_pk)
    return len(pks)


@shared_task(**ITEM_TASK)
def schedule_run(schedule_pk: int) -> int:
    return schedule_runner.schedule_run(schedule_pk=schedule_pk,
                                        applier=schedule_apply.SubscriptionServicesApplier())
