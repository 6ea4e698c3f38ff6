"""Metering services: create meters, record meter events (with their hourly rollups).

Invariants
- A meter's ``eventName`` is unique per organization (``invoicing_meter_event_name_uniq``); its
  aggregation type is one of ``Meter.AGGREGATIONS``; a ``unique_count`` meter names the dimension whose
  distinct values it counts.
- A batch of meter events is validated whole before anything is written, then stored by ONE SQL
  statement: the events, their ``MeterRollup`` hourly buckets (UTC) and, for ``unique_count`` meters,
  their ``MeterUniqueValue`` rows. Rollups therefore always equal the aggregate of the stored events.
- Idempotency: an event's key is unique per (organization, meter) (``invoicing_mev_idem_uniq``),
  committed with the row. A replay with the same fingerprint (meter, user, value, timestamp as sent,
  dimensions) reports ``duplicate``, a different payload ``conflict``; neither touches rollups. A
  concurrent batch with the same key waits on the other's uncommitted row (``ON CONFLICT``), so the
  event is stored exactly once.
- Lock order inside the statement: event keys in (meter, key) order, then rollup rows in
  (meter, customer, bucket) order, then unique-value rows in the same order — the same for every
  batch, so concurrent batches cannot deadlock.
- No billing event per meter event (volume); ``meter.created`` is published with the meter.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing_project.core.errors import Conflict, ValidationError
from billing_project.core.ids import public_id
from billing_project.core.models import Organization
from billing_project.core.money import INT64_MAX, INT64_MIN, currency_normalize
from billing_project.core.times import rfc3339
from invoicing.models import Meter
from webhooks import services as webhook_services

MAX_BATCH = 100
DEFAULT_MAX_AGE_DAYS = 35
MAX_FUTURE = timedelta(hours=1)
MAX_KEY_LENGTH = 255
MAX_CUSTOMER_LENGTH = 255

STATUS_CREATED = "created"
STATUS_DUPLICATE = "duplicate"
STATUS_CONFLICT = "conflict"

MSG_METER_REQUIRED = "meterId is required for each event"
MSG_USER_REQUIRED = "userId is required for each event"


# --- meters -----------------------------------------------------------------------------------------

def meter_data(meter: Meter) -> dict[str, Any]:
    """The JSON shape of a meter (API responses, event payloads)."""
    data = {
        "id": meter.public_id,
        "name": meter.name,
        "eventName": meter.event_name,
        "aggregationType": meter.aggregation_type,
        "currency": meter.currency,
        "dimensions": meter.dimensions,
        "createdAt": rfc3339(meter.created_at),
    }
    if meter.unique_dimension:
        data["uniqueDimension"] = meter.unique_dimension
    return data


def _meter_validate(*, name: str, event_name: str, aggregation_type: str, dimensions: list[str] | None,
                    unique_dimension: str) -> None:
    if not name:
        raise ValidationError("name is required", param="name", code="parameter_missing")
    if not event_name:
        raise ValidationError("eventName is required", param="eventName", code="parameter_missing")
    if aggregation_type not in Meter.AGGREGATIONS:
        raise ValidationError(f"aggregationType must be one of {', '.join(Meter.AGGREGATIONS)}",
                              param="aggregationType", code="invalid_aggregation_type")
    if dimensions is not None:
        if any(not isinstance(d, str) or not d for d in dimensions):
            raise ValidationError("dimensions must be non-empty strings", param="dimensions")
        if len(set(dimensions)) != len(dimensions):
            raise ValidationError("dimensions must not repeat a name", param="dimensions")
    if aggregation_type == Meter.AGG_UNIQUE_COUNT:
        if not unique_dimension:
            raise ValidationError("uniqueDimension is required for unique_count meters", param="uniqueDimension",
                                  code="parameter_missing")
        if dimensions is not None and unique_dimension not in dimensions:
            raise ValidationError("uniqueDimension must be one of dimensions", param="uniqueDimension")
    elif unique_dimension:
        raise ValidationError("uniqueDimension is only allowed for unique_count meters", param="uniqueDimension")


def meter_create(*, organization: Organization, name: str, event_name: str, aggregation_type: str = Meter.AGG_SUM,
                 currency: str | None = None, dimensions: list[str] | None = None,
                 unique_dimension: str = "") -> Meter:
    """Create a meter.

    ``aggregation_type`` is lower-cased and must be known; ``currency`` is normalized (default usd).
    Locking: none. Idempotency: ``eventName`` unique per organization — a second meter with the same
    one raises ``Conflict``. Side effects: ``meter.created`` in the same transaction."""
    name = (name or "").strip()
    event_name = (event_name or "").strip()
    aggregation_type = (aggregation_type or Meter.AGG_SUM).strip().lower()
    unique_dimension = (unique_dimension or "").strip()
    _meter_validate(name=name, event_name=event_name, aggregation_type=aggregation_type, dimensions=dimensions,
                    unique_dimension=unique_dimension)
    meter = Meter(organization=organization, name=name, event_name=event_name, aggregation_type=aggregation_type,
                  currency=currency_normalize(currency), dimensions=dimensions, unique_dimension=unique_dimension)
    try:
        with transaction.atomic():
            meter.save(force_insert=True)
            webhook_services.event_publish(organization=organization, type="meter.created", object_type="meter",
                                           object_id=meter.public_id, data=meter_data(meter))
    except IntegrityError as exc:
        if "invoicing_meter_event_name_uniq" in str(exc):
            raise Conflict(f"a meter with eventName {event_name} already exists", param="eventName",
                           code="meter_event_name_taken") from None
        raise
    return meter


# --- meter events -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MeterEventInput:
    """One event as the caller sent it (types already checked by the interface).

    ``timestamp`` None means "now"; ``dimensions`` values are strings (scalars are stringified by the
    interface) so that fingerprints, unique counts and JSON storage agree."""

    meter_id: str
    customer: str
    value: int = 0
    timestamp: datetime | None = None
    idempotency_key: str | None = None
    dimensions: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class MeterEventResult:
    id: str
    status: str  # created | duplicate | conflict


def meter_event_fingerprint(*, meter_id: str, customer: str, value: int, timestamp: datetime | None,
                            dimensions_json: str) -> str:
    """sha256 of what makes two events "the same". The timestamp is the one *sent* (empty when the server
    chose it), so a retry of a timestamp-less event is a duplicate rather than a conflict."""
    ts = rfc3339(timestamp) if timestamp is not None else ""
    return hashlib.sha256(f"{meter_id}\x1f{customer}\x1f{value}\x1f{ts}\x1f{dimensions_json}".encode()).hexdigest()


_METERS_SQL = """
SELECT public_id, id, aggregation_type, unique_dimension
  FROM invoicing_meter
 WHERE organization_id = %s AND public_id = ANY(%s::text[])
"""

# "The incoming bucket's last event is later than the stored one", by (timestamp, event id).
_NEWER = ("(r.last_timestamp IS NULL"
          " OR (EXCLUDED.last_timestamp, EXCLUDED.last_event_id) > (r.last_timestamp, r.last_event_id))")

_EVENTS_CTE = """
ins AS (
    INSERT INTO invoicing_meterevent
        (public_id, organization_id, meter_id, customer, value, timestamp, idempotency_key, fingerprint,
         dimensions, metadata, created_at)
    SELECT e.public_id, %s, e.meter_id, e.customer, e.value, e.ts, e.idem, e.fingerprint, e.dims::jsonb,
           '{}'::jsonb, %s
      FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::bigint[], %s::timestamptz[], %s::text[],
                  %s::text[], %s::text[])
           WITH ORDINALITY AS e(public_id, meter_id, customer, value, ts, idem, fingerprint, dims, ord)
     ORDER BY e.meter_id, e.idem, e.ord
        ON CONFLICT (organization_id, meter_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, public_id, meter_id, customer, value, timestamp, idempotency_key, dimensions
), roll AS (
    INSERT INTO invoicing_meterrollup AS r
        (meter_id, customer, bucket, event_count, value_sum, value_max, last_value, last_timestamp, last_event_id)
    SELECT meter_id, customer, date_trunc('hour', timestamp, 'UTC'), count(*), sum(value), max(value),
           (array_agg(value ORDER BY timestamp DESC, id DESC))[1], max(timestamp),
           (array_agg(id ORDER BY timestamp DESC, id DESC))[1]
      FROM ins
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
        ON CONFLICT (meter_id, customer, bucket) DO UPDATE SET
           event_count = r.event_count + EXCLUDED.event_count,
           value_sum = r.value_sum + EXCLUDED.value_sum,
           value_max = GREATEST(r.value_max, EXCLUDED.value_max),
           last_value = CASE WHEN {newer} THEN EXCLUDED.last_value ELSE r.last_value END,
           last_timestamp = CASE WHEN {newer} THEN EXCLUDED.last_timestamp ELSE r.last_timestamp END,
           last_event_id = CASE WHEN {newer} THEN EXCLUDED.last_event_id ELSE r.last_event_id END
    RETURNING 1
)""".replace("{newer}", _NEWER)

# Runs after ``roll`` has finished (the count forces it), keeping the statement's fixed lock order.
_UNIQUE_CTE = """
, uniq AS (
    INSERT INTO invoicing_meteruniquevalue (meter_id, customer, bucket, value)
    SELECT DISTINCT ins.meter_id, ins.customer, date_trunc('hour', ins.timestamp, 'UTC'), ins.dimensions ->> m.dim
      FROM ins JOIN unnest(%s::bigint[], %s::text[]) AS m(meter_id, dim) ON m.meter_id = ins.meter_id
     WHERE ins.dimensions ->> m.dim IS NOT NULL AND (SELECT count(*) FROM roll) > 0
     ORDER BY 1, 2, 3, 4
        ON CONFLICT DO NOTHING
)"""

_RESULT = "SELECT public_id FROM ins WHERE idempotency_key IS NOT NULL"

_INSERT_SQL = f"WITH {_EVENTS_CTE} {_RESULT}"
_INSERT_UNIQUE_SQL = f"WITH {_EVENTS_CTE}{_UNIQUE_CTE} {_RESULT}"

_STORED_KEYS_SQL = """
SELECT meter_id, idempotency_key, public_id, fingerprint
  FROM invoicing_meterevent
 WHERE organization_id = %s
   AND (meter_id, idempotency_key) IN (SELECT * FROM unnest(%s::bigint[], %s::text[]))
"""


def _invalid(index: int, field: str, message: str, code: str = "invalid_request") -> ValidationError:
    return ValidationError(message, param=f"events[{index}].{field}", code=code)


def meter_events_record(*, organization: Organization, events: list[MeterEventInput],
                        now: datetime | None = None) -> list[MeterEventResult]:
    """Record up to 100 meter events; returns one result per event, in input order.

    Validation covers the whole batch before any write (required ids, known meters of this organization,
    int64 values, timestamps within ``METER_EVENT_MAX_AGE_DAYS`` in the past and one hour in the future);
    errors name the event (``events[k].field``). Storage: one statement inserting events, rollups and
    unique values (one transaction). Locking: the keys' index entries, then rollup rows, in a fixed order.
    Idempotency: per (organization, meter, key) — ``created`` / ``duplicate`` (same fingerprint) /
    ``conflict`` (different payload), also for a key repeated inside the batch (the first occurrence
    decides). Side effects: none (no billing event per meter event)."""
    if not events:
        return []
    if len(events) > MAX_BATCH:
        raise ValidationError(f"maximum {MAX_BATCH} events per batch", param="events", code="batch_too_large")
    now = now or timezone.now()
    max_age_days = getattr(settings, "METER_EVENT_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS)
    oldest = now - timedelta(days=max_age_days)
    newest = now + MAX_FUTURE

    timestamps: list[datetime] = []
    for i, event in enumerate(events):
        if not event.meter_id:
            raise _invalid(i, "meterId", MSG_METER_REQUIRED, "parameter_missing")
        if not event.customer:
            raise _invalid(i, "userId", MSG_USER_REQUIRED, "parameter_missing")
        if len(event.customer) > MAX_CUSTOMER_LENGTH:
            raise _invalid(i, "userId", f"userId must be at most {MAX_CUSTOMER_LENGTH} characters")
        if isinstance(event.value, bool) or not isinstance(event.value, int) or not (
                INT64_MIN <= event.value <= INT64_MAX):
            raise _invalid(i, "value", "value must be a signed 64-bit integer")
        if event.idempotency_key is not None and len(event.idempotency_key) > MAX_KEY_LENGTH:
            raise _invalid(i, "idempotency", f"idempotency must be at most {MAX_KEY_LENGTH} characters")
        ts = event.timestamp
        if ts is None:
            ts = now
        elif ts < oldest:
            raise _invalid(i, "timestamp", f"timestamp is more than {max_age_days} days in the past",
                           "timestamp_out_of_range")
        elif ts > newest:
            raise _invalid(i, "timestamp", "timestamp is more than 1 hour in the future", "timestamp_out_of_range")
        timestamps.append(ts)

    with connection.cursor() as cursor:
        cursor.execute(_METERS_SQL, [organization.pk, list({e.meter_id for e in events})])
        meters = {row[0]: row[1:] for row in cursor.fetchall()}
    for i, event in enumerate(events):
        if event.meter_id not in meters:
            raise _invalid(i, "meterId", f"unknown meter {event.meter_id}", "unknown_meter")

    # Decide in Python which events go to the INSERT: all key-less ones and the first of each key.
    first_of_key: dict[tuple[int, str], int] = {}
    fingerprints: list[str] = []
    ids: list[str | None] = []
    cols: tuple[list, ...] = ([], [], [], [], [], [], [], [])
    pub, meter_ids, customers, values, tss, keys, fps, dims = cols
    unique_meters: dict[int, str] = {}
    for i, event in enumerate(events):
        meter_pk, aggregation, unique_dimension = meters[event.meter_id]
        dims_json = (json.dumps(event.dimensions, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                     if event.dimensions is not None else None)
        fp = meter_event_fingerprint(meter_id=event.meter_id, customer=event.customer, value=event.value,
                                     timestamp=event.timestamp, dimensions_json=dims_json or "null")
        fingerprints.append(fp)
        key = event.idempotency_key or None
        if key is not None:
            if (meter_pk, key) in first_of_key:
                ids.append(None)
                continue
            first_of_key[(meter_pk, key)] = i
        new_id = public_id("mev")
        ids.append(new_id)
        if aggregation == Meter.AGG_UNIQUE_COUNT and unique_dimension:
            unique_meters[meter_pk] = unique_dimension
        pub.append(new_id)
        meter_ids.append(meter_pk)
        customers.append(event.customer)
        values.append(event.value)
        tss.append(timestamps[i])
        keys.append(key)
        fps.append(fp)
        dims.append(dims_json)

    params: list[Any] = [organization.pk, now, *cols]
    sql = _INSERT_SQL
    if unique_meters:
        sql = _INSERT_UNIQUE_SQL
        params += [list(unique_meters), list(unique_meters.values())]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = {row[0] for row in cursor.fetchall()}

    # (meter, key) → (public id, fingerprint) of the stored event holding that key.
    stored: dict[tuple[int, str], tuple[str, str]] = {}
    missing: list[tuple[int, str]] = []
    for (meter_pk, key), i in first_of_key.items():
        if ids[i] in inserted:
            stored[(meter_pk, key)] = (ids[i], fingerprints[i])
        else:
            missing.append((meter_pk, key))
    if missing:
        # A new statement, hence a new snapshot: it sees the rows our INSERT waited for and skipped.
        with connection.cursor() as cursor:
            cursor.execute(_STORED_KEYS_SQL, [organization.pk, [m for m, _ in missing], [k for _, k in missing]])
            for meter_pk, key, existing_id, existing_fp in cursor.fetchall():
                stored[(meter_pk, key)] = (existing_id, existing_fp)

    results: list[MeterEventResult] = []
    for i, event in enumerate(events):
        key = event.idempotency_key or None
        if key is None:
            results.append(MeterEventResult(id=ids[i], status=STATUS_CREATED))
            continue
        meter_pk = meters[event.meter_id][0]
        stored_id, stored_fp = stored[(meter_pk, key)]
        if stored_id == ids[i]:
            status = STATUS_CREATED
        elif stored_fp == fingerprints[i]:
            status = STATUS_DUPLICATE
        else:
            status = STATUS_CONFLICT
        results.append(MeterEventResult(id=stored_id, status=status))
    return results


def meter_event_record(*, organization: Organization, event: MeterEventInput,
                       now: datetime | None = None) -> MeterEventResult:
    """Record one meter event: ``meter_events_record`` with a batch of one (same rules and guarantees)."""
    return meter_events_record(organization=organization, events=[event], now=now)[0]
