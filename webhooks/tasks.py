"""Webhook delivery tasks: thin; the work and its invariants are in ``webhooks.services.deliveries``.

``events_fanout`` runs when a commit kicked it; ``webhooks_sweep`` (beat, every few seconds) runs the same
fan-out plus the claim of due deliveries (retries, claims lapsed because a worker died). Duplicate or
overlapping runs are harmless: every batch is claimed with ``FOR UPDATE SKIP LOCKED``."""

from __future__ import annotations

import uuid

from celery import shared_task

from webhooks.services import deliveries, dispatch


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def events_fanout() -> int:
    dispatch.kick_clear()  # before the scan: a commit from now on kicks again
    return dispatch.fanout_drain(budget_seconds=60)


@shared_task(acks_late=True, time_limit=240, soft_time_limit=200)
def deliveries_send(ids: list[int], token: str) -> dict[str, int]:
    # Worst case (every request times out): a chunk of 100 over 8 threads = 13 rounds × 10 s = 130 s, inside the
    # soft limit (200 s) and the 5-minute claim.
    return deliveries.deliveries_send(claim=deliveries.Claim(list(ids), uuid.UUID(token)))


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def webhooks_sweep() -> int:
    return dispatch.fanout_drain(budget_seconds=20) + dispatch.due_drain(budget_seconds=20)
