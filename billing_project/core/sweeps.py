"""How every beat sweeper claims the due rows it hands out (ledger expiry, payouts, processor attempts and
refunds to reconcile, subscriptions, renewals, schedules).

One statement locks the due rows with ``FOR UPDATE SKIP LOCKED`` and stamps ``sweep_claimed_until``, so two
overlapping sweeps never enqueue the same row, and the next sweep does not enqueue again what the last one
handed out while those tasks are still queued. A claim lapses after ``claim_seconds``: a row whose task was
lost is handed out again. The per-item services re-check state under their own lock, so a lapsed claim can
at worst cause one harmless duplicate delivery. Only ``sweep_claimed_until`` is written (a queryset
``update``: no ``updated_at`` bump, no event); the model needs that column.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q, QuerySet

CLAIM_SECONDS = 600


def rows_claim(queryset: QuerySet, *fields: str, order: str, now: datetime, limit: int,
               claim_seconds: int = CLAIM_SECONDS) -> list[tuple]:
    """Claim up to ``limit`` rows of ``queryset`` not claimed by another sweep, in ``order``; ``(pk, *fields)``."""
    with transaction.atomic():
        rows = list(queryset.filter(Q(sweep_claimed_until__isnull=True) | Q(sweep_claimed_until__lte=now))
                    .order_by(order, "pk").select_for_update(of=("self",), skip_locked=True)
                    .values_list("pk", *fields)[:limit])
        if rows:
            queryset.model.objects.filter(pk__in=[row[0] for row in rows]).update(
                sweep_claimed_until=now + timedelta(seconds=claim_seconds))
    return rows


def pks_claim(queryset: QuerySet, *, order: str, now: datetime, limit: int,
              claim_seconds: int = CLAIM_SECONDS) -> list[int]:
    """``rows_claim`` returning only the pks."""
    return [pk for (pk,) in rows_claim(queryset, order=order, now=now, limit=limit, claim_seconds=claim_seconds)]
