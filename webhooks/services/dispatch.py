"""Getting work to the Celery workers after commit, cheaply enough for an event per usage call.

Every commit that wrote an event calls ``fanout_kick``: it enqueues the fan-out task only when no kick is
outstanding (a Redis ``SET NX`` key, cleared by the task as it starts, before it scans), so a burst of
commits costs one task, and an event committed after the task's scan began sets the key again. A kick that
is lost (Redis down, task lost) only delays: the beat sweeper runs the same fan-out every few seconds."""

from __future__ import annotations

import logging
import os
import time

import redis
from django.conf import settings
from django.db import transaction

from webhooks.services import deliveries as delivery_services

logger = logging.getLogger(__name__)

KICK_KEY = "tally:webhooks:fanout-kick"
KICK_TTL_MS = 10_000
SEND_CHUNK = 100  # per send task: fewer tasks and transactions; 25 → 100 took the drain from ~440 to ~770–920/s
FANOUT_BATCH = 500

_redis: redis.Redis | None = None
_redis_pid: int | None = None


def redis_client() -> redis.Redis:
    global _redis, _redis_pid
    if _redis is None or _redis_pid != os.getpid():
        _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        _redis_pid = os.getpid()
    return _redis


def fanout_kick() -> None:
    """Ask for a fan-out soon (after commit). Never raises: the sweeper is the fallback."""
    try:
        if redis_client().set(KICK_KEY, b"1", nx=True, px=KICK_TTL_MS):
            from webhooks import tasks  # the tasks module imports the services

            tasks.events_fanout.delay()
    except Exception:  # the change has committed; delivery is only delayed until the next sweep
        logger.warning("webhook fan-out kick failed; the sweeper will pick the events up", exc_info=True)


def kick_clear() -> None:
    try:
        redis_client().delete(KICK_KEY)
    except Exception:
        logger.warning("could not clear the webhook fan-out kick", exc_info=True)


def claim_enqueue(claim: delivery_services.Claim) -> None:
    """One send task per ``SEND_CHUNK`` claimed deliveries. Call after the claim committed."""
    if not claim.ids:
        return
    from webhooks import tasks

    for i in range(0, len(claim.ids), SEND_CHUNK):
        tasks.deliveries_send.delay(claim.ids[i:i + SEND_CHUNK], str(claim.token))


def claim_enqueue_on_commit(claim: delivery_services.Claim) -> None:
    def enqueue() -> None:
        try:
            claim_enqueue(claim)
        except Exception:  # committed: the claim lapses and the sweeper sends them
            logger.warning("could not enqueue webhook deliveries; the sweeper will", exc_info=True)

    transaction.on_commit(enqueue)


def fanout_drain(*, budget_seconds: float = 20.0) -> int:
    """Fan out batches until the outbox is empty or the time budget is spent; enqueue the sends."""
    started, total = time.monotonic(), 0
    while True:
        handled, claim = delivery_services.events_fanout(limit=FANOUT_BATCH)
        total += handled
        claim_enqueue(claim)
        if handled < FANOUT_BATCH or time.monotonic() - started > budget_seconds:
            return total


def due_drain(*, budget_seconds: float = 20.0) -> int:
    """Claim due deliveries (retries, lapsed claims) until none is left or the budget is spent."""
    started, total = time.monotonic(), 0
    while True:
        claim = delivery_services.deliveries_claim_due(limit=FANOUT_BATCH)
        total += len(claim.ids)
        claim_enqueue(claim)
        if len(claim.ids) < FANOUT_BATCH or time.monotonic() - started > budget_seconds:
            return total
