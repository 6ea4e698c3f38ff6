"""What the beat sweepers find due, and how they claim it.

A sweep *claims* the due rows it hands out: one statement locks them with ``FOR UPDATE SKIP LOCKED`` and
stamps ``sweep_claimed_until``, so two overlapping sweeps never enqueue the same row, and the sweep of the
next minute does not enqueue again what the last one handed out while those tasks are still queued. A
claim lapses after ``CLAIM_SECONDS``: a row whose task was lost (worker killed, broker flushed) or that
its service left due (a conflict) is handed out again by a later sweep. The per-item services re-check
state under their own lock, so a lapsed claim can at worst cause one harmless duplicate delivery.

Only ``sweep_claimed_until`` is written here (a queryset ``update``: no ``updated_at`` bump, no event);
locks: the claimed rows only, never waited for (skipped when locked), released at the claim's commit.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from billing_project.core import sweeps as core_sweeps
from ledger.models import CreditGrant, Hold, Lot

CLAIM_SECONDS = core_sweeps.CLAIM_SECONDS


def lots_due_queryset(now: datetime) -> QuerySet[Lot]:
    return Lot.objects.filter(status=Lot.STATUS_OPEN, expires_at__lte=now, remaining__gt=0)


def holds_due_queryset(now: datetime) -> QuerySet[Hold]:
    return Hold.objects.filter(status=Hold.STATUS_PENDING, expires_at__lte=now)


def credit_grants_due_queryset(now: datetime) -> QuerySet[CreditGrant]:
    return CreditGrant.objects.filter(remaining_cents__gt=0, expires_at__lt=now, voided_at__isnull=True,
                                      expired_at__isnull=True)


def _claim(queryset: QuerySet, *fields: str, now: datetime, limit: int) -> list[tuple]:
    return core_sweeps.rows_claim(queryset, *fields, order="expires_at", now=now, limit=limit)


def lots_claim(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Claim the due lots not claimed by another sweep; their pks, oldest expiry first."""
    now = now or timezone.now()
    return [pk for (pk,) in _claim(lots_due_queryset(now), now=now, limit=limit)]


def holds_claim(*, now: datetime | None = None, limit: int = 1000) -> list[tuple[int, str]]:
    """Claim the due holds not claimed by another sweep: ``(organization_id, public_id)`` pairs."""
    now = now or timezone.now()
    return [(org, hold_id) for _pk, org, hold_id in
            _claim(holds_due_queryset(now), "organization_id", "public_id", now=now, limit=limit)]


def credit_grants_claim(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Claim the due credit grants not claimed by another sweep; their pks."""
    now = now or timezone.now()
    return [pk for (pk,) in _claim(credit_grants_due_queryset(now), now=now, limit=limit)]
