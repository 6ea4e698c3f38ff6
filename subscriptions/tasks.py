"""Beat sweepers claim due rows and fan out one task per item; tasks take ids and call one service.

Schedules: ``schedules_run_sweep`` claims the schedules with a phase start or an end due
(``schedule_runner.schedules_claim``: ``FOR UPDATE SKIP LOCKED`` + a claimed-until stamp) and enqueues
``schedule_run`` for each; the runner re-checks under the schedule's row lock, so overlapping sweeps and
duplicate deliveries apply nothing twice."""

from __future__ import annotations

from celery import shared_task

from subscriptions.services import schedule_apply, schedule_runner

ITEM_TASK = {"acks_late": True, "time_limit": 60, "soft_time_limit": 50, "autoretry_for": (OSError,),
             "retry_backoff": True, "retry_jitter": True, "max_retries": 5}


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
