"""Delivery of the event log to webhook endpoints (spec webhooks.md §3, weaknesses 1–4 fixed).

Invariants:
- Fan-out: each event gets one ``Delivery`` (reason ``event``) per enabled endpoint of its organization whose
  filter matches, exactly once (the event row is locked ``FOR UPDATE SKIP LOCKED`` while ``dispatched_at`` is
  set; a unique constraint backs it). Events are claimed in batches, oldest first.
- A delivery is worked on only by the holder of its claim (``claim_token``, ``claimed_until``). Claims are
  taken in batches with ``FOR UPDATE SKIP LOCKED``; one that lapses (worker killed) is taken over by the
  sweeper: at least once, never lost. The HTTP request runs outside any transaction.
- 2xx → ``succeeded``; timeouts, transport errors, 408/429/5xx → retried with exponential backoff and jitter
  until ``RETRY_WINDOW`` after the delivery was created, then ``failed``; anything else (3xx: redirects are
  not followed, 4xx, a refused private target) → ``failed`` at once. Every request is a ``DeliveryAttempt``.
- An event stays ``pending`` while some endpoint it fans out to has an unfinished or failed delivery and no
  successful one.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from webhooks import signing
from webhooks.models import BillingEvent, Delivery, DeliveryAttempt, WebhookEndpoint
from webhooks.services import endpoints as endpoint_services
from webhooks.services import transport

RETRY_WINDOW = timedelta(days=3)
CLAIM = timedelta(minutes=5)
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 6 * 3600
SEND_THREADS = 8

_PENDING_REFRESH_SQL = """
UPDATE webhooks_billingevent e SET pending = EXISTS (
    SELECT 1 FROM webhooks_delivery d
    WHERE d.event_id = e.id AND d.status IN ('pending', 'failed')
      AND NOT EXISTS (SELECT 1 FROM webhooks_delivery s
                      WHERE s.event_id = e.id AND s.endpoint_id = d.endpoint_id AND s.status = 'succeeded'))
WHERE e.id = ANY(%s)"""


@dataclass(frozen=True)
class Claim:
    """Deliveries claimed by one worker: only the holder of ``token`` may record their attempts."""

    ids: list[int]
    token: uuid.UUID | None


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def event_pending_refresh(event_ids: list[int]) -> None:
    """Recompute ``pending`` of these events. Locks the event rows first (ascending id; callers hold their
    deliveries' locks, never the other way round), so the recomputation is a new statement that sees what a
    concurrent recorder of another delivery of the same event committed (READ COMMITTED)."""
    if event_ids:
        ids = sorted(event_ids)
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM webhooks_billingevent WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids])
            cursor.execute(_PENDING_REFRESH_SQL, [ids])


def backoff_delay(attempt_count: int) -> timedelta:
    """30 s, 1 min, 2 min, … capped at 6 h, each ×(0.75–1.25) so retries of many deliveries spread out."""
    base = min(BACKOFF_BASE_SECONDS * 2 ** max(0, attempt_count - 1), BACKOFF_CAP_SECONDS)
    return timedelta(seconds=base * random.uniform(0.75, 1.25))


# --- fan-out ------------------------------------------------------------------------------------------

def events_fanout(*, limit: int = 500, now: datetime | None = None) -> tuple[int, Claim]:
    """Fan out up to ``limit`` undispatched events (oldest first) in one transaction: create their
    deliveries already claimed for the caller, mark the events dispatched (not pending when nothing matched).
    Returns (events handled, the claim to send)."""
    now = _now(now)
    token = uuid.uuid4()
    with transaction.atomic():
        events = list(BillingEvent.objects.filter(dispatched_at__isnull=True).order_by("id")
                      .select_for_update(skip_locked=True).only("id", "organization_id", "type")[:limit])
        if not events:
            return 0, Claim([], None)
        endpoints = defaultdict(list)
        for endpoint in WebhookEndpoint.objects.filter(
                organization_id__in={e.organization_id for e in events}, status=WebhookEndpoint.STATUS_ENABLED,
                deleted_at__isnull=True).only("id", "organization_id", "events"):
            endpoints[endpoint.organization_id].append(endpoint)
        rows = [Delivery(organization_id=event.organization_id, event_id=event.id, endpoint_id=endpoint.id,
                         next_attempt_at=now, claim_token=token, claimed_until=now + CLAIM, created_at=now)
                for event in events for endpoint in endpoints.get(event.organization_id, ())
                if endpoint_services.event_filter_matches(endpoint.events, event.type)]
        created = Delivery.objects.bulk_create(rows)
        with_deliveries = {row.event_id for row in rows}
        ids = [e.id for e in events]
        BillingEvent.objects.filter(id__in=ids).update(dispatched_at=now)
        BillingEvent.objects.filter(id__in=[i for i in ids if i not in with_deliveries]).update(pending=False)
    return len(events), Claim([d.pk for d in created], token)


def deliveries_claim_due(*, limit: int = 500, now: datetime | None = None) -> Claim:
    """The sweeper's claim: pending deliveries whose next attempt is due and whose claim (if any) lapsed."""
    now = _now(now)
    token = uuid.uuid4()
    with transaction.atomic():
        ids = list(Delivery.objects.filter(status=Delivery.STATUS_PENDING, next_attempt_at__lte=now)
                   .exclude(claimed_until__gt=now).order_by("next_attempt_at")
                   .select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
        if ids:
            Delivery.objects.filter(id__in=ids).update(claim_token=token, claimed_until=now + CLAIM)
    return Claim(ids, token if ids else None)


def deliveries_claim(*, ids: list[int], now: datetime | None = None) -> Claim:
    """Claim these deliveries now (resend, retry now) unless another worker holds a live claim."""
    now = _now(now)
    token = uuid.uuid4()
    with transaction.atomic():
        got = list(Delivery.objects.filter(id__in=ids, status=Delivery.STATUS_PENDING)
                   .exclude(claimed_until__gt=now).select_for_update(skip_locked=True).values_list("id", flat=True))
        if got:
            Delivery.objects.filter(id__in=got).update(claim_token=token, claimed_until=now + CLAIM)
    return Claim(got, token if got else None)


# --- sending --------------------------------------------------------------------------------------------

def event_payload(event: BillingEvent) -> bytes:
    """The body every endpoint receives for ``event`` (every redelivery carries the same event id)."""
    body = {
        "id": event.public_id, "type": event.type, "objectType": event.object_type, "objectId": event.object_id,
        "customerId": event.customer_id or None, "data": event.data, "previousData": event.previous_data,
        "livemode": event.livemode, "created": event.created_at,
    }
    return json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":")).encode("utf-8")


def _request(delivery: Delivery, now: datetime) -> tuple[bytes, dict[str, str]]:
    payload = event_payload(delivery.event)
    headers = {
        "Content-Type": "application/json",
        signing.EVENT_TYPE_HEADER: delivery.event.type,
        signing.HEADER: signing.signature_header(
            secrets=endpoint_services.endpoint_signing_secrets(delivery.endpoint, now=now),
            timestamp=int(now.timestamp()), payload=payload),
        "Commerce-Event-Id": delivery.event.public_id,
        "Commerce-Delivery-Id": delivery.public_id,
    }
    return payload, headers


def _allow_private(delivery: Delivery) -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_TARGETS", False)) or not delivery.organization.live


def _send_one(delivery: Delivery, now: datetime) -> transport.AttemptResult | None:
    endpoint = delivery.endpoint
    if endpoint.deleted_at is not None or endpoint.status != WebhookEndpoint.STATUS_ENABLED:
        return None  # canceled: a disabled or deleted endpoint receives nothing
    body, headers = _request(delivery, now)
    return transport.attempt_send(url=endpoint.url, body=body, headers=headers,
                                  allow_private=_allow_private(delivery))


def deliveries_send(*, claim: Claim, now: datetime | None = None) -> dict[str, int]:
    """Send what ``claim`` holds (concurrently, one pooled client) and record each outcome. Deliveries whose
    claim was taken over meanwhile are skipped. Returns counts per outcome."""
    if not claim.ids:
        return {}
    start = _now(now)
    with transaction.atomic():  # refresh the claim so it covers this send; lost ones drop out here
        mine = list(Delivery.objects.filter(id__in=claim.ids, claim_token=claim.token, status=Delivery.STATUS_PENDING)
                    .select_for_update(skip_locked=True).values_list("id", flat=True))
        Delivery.objects.filter(id__in=mine).update(claimed_until=start + CLAIM)
    deliveries = list(Delivery.objects.filter(id__in=mine).select_related("event", "endpoint", "organization"))
    if len(deliveries) > 1:
        with ThreadPoolExecutor(max_workers=min(SEND_THREADS, len(deliveries))) as pool:
            results = list(pool.map(lambda d: _send_one(d, start), deliveries))
    else:
        results = [_send_one(d, start) for d in deliveries]
    return deliveries_record(results=[(d.pk, r) for d, r in zip(deliveries, results, strict=True)],
                             token=claim.token, now=now)


def _next_state(delivery: Delivery, result: transport.AttemptResult, now: datetime) -> None:
    delivery.attempt_count += 1
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error
    delivery.claim_token = None
    delivery.claimed_until = None
    if result.outcome == DeliveryAttempt.OUTCOME_SUCCEEDED:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = Delivery.STATUS_SUCCEEDED, now, None
        return
    deadline = delivery.created_at + RETRY_WINDOW
    if result.outcome == DeliveryAttempt.OUTCOME_RETRY and now < deadline:
        delivery.next_attempt_at = min(now + backoff_delay(delivery.attempt_count), deadline)
        return
    delivery.status, delivery.next_attempt_at = Delivery.STATUS_FAILED, None
    if result.outcome == DeliveryAttempt.OUTCOME_RETRY:
        delivery.last_error = f"{result.error} (gave up after {delivery.attempt_count} attempts over 3 days)"


def deliveries_record(*, results: list[tuple[int, transport.AttemptResult | None]], token: uuid.UUID | None,
                      now: datetime | None = None) -> dict[str, int]:
    """Record attempt results in one transaction, under the deliveries' row locks (ascending id), for the
    deliveries this worker still holds the claim of (a result of None: the endpoint was disabled or deleted →
    ``canceled``). Deliveries taken over meanwhile count as ``stale``: the other worker's attempt counts.
    Returns counts per outcome."""
    now = _now(now)
    by_id = dict(results)
    counts: dict[str, int] = defaultdict(int)
    with transaction.atomic():
        locked = list(Delivery.objects.filter(id__in=sorted(by_id)).order_by("id").select_for_update())
        attempts, changed = [], []
        for delivery in locked:
            if delivery.claim_token != token or delivery.status != Delivery.STATUS_PENDING:
                counts["stale"] += 1
                continue
            result = by_id[delivery.pk]
            if result is None:
                delivery.status, delivery.next_attempt_at = Delivery.STATUS_CANCELED, None
                delivery.claim_token = delivery.claimed_until = None
                delivery.last_error = "webhook endpoint disabled or deleted"
                counts["canceled"] += 1
            else:
                _next_state(delivery, result, now)
                attempts.append(DeliveryAttempt(
                    delivery=delivery, number=delivery.attempt_count, outcome=result.outcome,
                    status_code=result.status_code, latency_ms=result.latency_ms, error=result.error,
                    response_body=result.response_body, created_at=now))
                counts[result.outcome] += 1
            changed.append(delivery)
        DeliveryAttempt.objects.bulk_create(attempts)
        _deliveries_update(changed)
        event_pending_refresh(sorted({d.event_id for d in changed}))
    return dict(counts)


def _deliveries_update(changed: list[Delivery]) -> None:
    """Write the recorded state of ``changed`` in one ``UPDATE … FROM (VALUES …)`` (Django's ``bulk_update``
    builds a CASE per column and row, which cost more than the HTTP request it records)."""
    if not changed:
        return
    rows = ", ".join(["(%s, %s, %s, %s::timestamptz, %s::uuid, %s::timestamptz, %s::integer, %s, %s::timestamptz)"]
                     * len(changed))
    params = [value for d in changed for value in (
        d.pk, d.status, d.attempt_count, d.next_attempt_at, d.claim_token, d.claimed_until, d.last_status_code,
        d.last_error, d.delivered_at)]
    with connection.cursor() as cursor:
        cursor.execute(f"""
            UPDATE webhooks_delivery d SET status = v.status, attempt_count = v.attempt_count,
                next_attempt_at = v.next_attempt_at, claim_token = v.claim_token, claimed_until = v.claimed_until,
                last_status_code = v.last_status_code, last_error = v.last_error, delivered_at = v.delivered_at
            FROM (VALUES {rows}) AS v(id, status, attempt_count, next_attempt_at, claim_token, claimed_until,
                                      last_status_code, last_error, delivered_at)
            WHERE d.id = v.id""", params)
