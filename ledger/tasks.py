"""Beat sweepers claim due rows and fan out one task per item; tasks take ids and call one service.

A sweep claims what it enqueues (``ledger.services.sweeps``: ``FOR UPDATE SKIP LOCKED`` plus a claimed-until
stamp), so overlapping sweeps and the next minute's sweep do not enqueue the same id again while its task
is queued. Duplicate deliveries (a lapsed claim, ``acks_late`` redelivery) stay harmless: the services
re-check state under lock."""

from __future__ import annotations

from celery import shared_task

from ledger import services
from ledger.services import credits as credit_services
from ledger.services import sweeps

# Per-item tasks: short, retried with backoff and jitter on connection errors only.
ITEM_TASK = {"acks_late": True, "time_limit": 60, "soft_time_limit": 50, "autoretry_for": (OSError,),
             "retry_backoff": True, "retry_jitter": True, "max_retries": 5}


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def balances_expire_sweep() -> int:
    ids = sweeps.lots_claim(limit=5000)
    for lot_id in ids:
        lot_expire.delay(lot_id)
    return len(ids)


@shared_task(**ITEM_TASK)
def lot_expire(lot_id: int) -> str | None:
    txn = services.lot_expire(lot_id=lot_id)
    return txn.public_id if txn else None


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def holds_expire_sweep() -> int:
    due = sweeps.holds_claim(limit=5000)
    for organization_id, hold_id in due:
        hold_expire.delay(organization_id, hold_id)
    return len(due)


@shared_task(**ITEM_TASK)
def hold_expire(organization_id: int, hold_id: str) -> str | None:
    hold = services.hold_expire(organization_id=organization_id, hold_id=hold_id)
    return hold.public_id if hold else None


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def credit_grants_expire_sweep() -> int:
    ids = sweeps.credit_grants_claim(limit=5000)
    for grant_pk in ids:
        credit_grant_expire.delay(grant_pk)
    return len(ids)


@shared_task(**ITEM_TASK)
def credit_grant_expire(grant_pk: int) -> str | None:
    grant = credit_services.credit_grant_expire(grant_pk=grant_pk)
    return grant.public_id if grant else None
