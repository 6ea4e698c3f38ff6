"""Metering services: create meters, record meter events (with their hourly rollups).

Invariants
- A meter's ``eventName`` is unique per organization (``invoicing_meter_event_name_uniq``); its
  aggregation type is one of ``Meter.AGGREGATIONS``; a ``unique_count`` meter names the dimension whose
  distinct values it counts.
- An event's ``meterId`` resolves to the organization's meter with that public id, else to its meter
  with that ``eventName``. An event that resolves to no meter is accepted and kept as an
  ``UnmatchedMeterEvent`` (``meter_ref`` = the ``meterId`` sent); the transaction that creates a meter
  with that id or ``eventName`` moves it into ``MeterEvent`` and its rollups (same public id), so it is
  counted exactly once, by its own timestamp.
- A batch of meter events is validated whole before anything is written, then stored in ONE transaction:
  one SQL statement for the matched events, their ``MeterRollup`` hourly buckets (UTC, the event's own
  hour, so backfills land in their period) and, for ``unique_count`` meters, their ``MeterUniqueValue``
  rows; one more for unmatched events. Rollups therefore always equal the aggregate of the stored events.
- Timestamps: any age is accepted unless the organization sets ``meter_event_backdate_days``; more than
  5 minutes in the future is refused.
- Idempotency: an event's key is unique per (organization, meter) (``invoicing_mev_idem_uniq``), an
  unmatched event's per (organization, meter_ref) (``invoicing_umev_idem_uniq``), committed with the row.
  A replay with the same fingerprint (meterId as sent, user, value, timestamp as sent, dimensions)
  reports ``duplicate``, a different payload ``conflict``; neither touches rollups. A concurrent batch
  with the same key waits on the other's uncommitted row (``ON CONFLICT``), so the event is stored
  exactly once.
- Unmatched ingestion vs. meter creation: both take a transaction-scoped advisory lock per
  (organization, name) — ingestion SHARED on each name it could not resolve, ``meter_create`` EXCLUSIVE
  on the new meter's id and ``eventName`` — in ascending key order, before any row. Ingestion resolves
  those names again once it holds the lock, so an event is either stored against the committed meter or
  committed as unmatched before the meter's transaction moves the unmatched rows: never left behind.
- Lock order: advisory locks (ascending); then, inside the events statement, event keys in
  (meter, key) order, rollup rows in (meter, customer, bucket) order, unique-value rows in the same
  order; then unmatched keys in (name, key) order — the same for every batch, so batches cannot deadlock.
- No billing event per meter event (volume); ``meter.created`` is published with the meter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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
MAX_FUTURE = timedelta(minutes=5)
MAX_KEY_LENGTH = 255
MAX_CUSTOMER_LENGTH = 255
MAX_METER_REF_LENGTH = 255

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
    """Create a meter, and count the unmatched events that named it (by its id or ``eventName``).

    ``aggregation_type`` is lower-cased and must be known; ``currency`` is normalized (default usd).
    Locking: the advisory locks of the meter's id and ``eventName`` (exclusive, ascending), so no
    ingestion can store an event for that name as unmatched after the move. Idempotency: ``eventName``
    unique per organization — a second meter with the same one raises ``Conflict`` and moves nothing.
    Side effects: ``meter.created`` in the same transaction."""
    name = (name or "").strip()
    event_name = (event_name or "").strip()
    aggregation_type = (aggregation_type or Meter.AGG_SUM).strip().lower()
    unique_dimension = (unique_dimension or "").strip()
    _meter_validate(name=name, event_name=event_name, aggregation_type=aggregation_type, dimensions=dimensions,
                    unique_dimension=unique_dimension)
    meter = Meter(organization=organization, name=name, event_name=event_name, aggregation_type=aggregation_type,
                  currency=currency_normalize(currency), dimensions=dimensions, unique_dimension=unique_dimension)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _names_lock(cursor, organization.pk, [meter.public_id, event_name], shared=False)
            meter.save(force_insert=True)
            _unmatched_attach(cursor, organization=organization, meter=meter)
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
SELECT public_id, event_name, id, aggregation_type, unique_dimension
  FROM invoicing_meter
 WHERE organization_id = %s AND (public_id = ANY(%s::text[]) OR event_name = ANY(%s::text[]))
"""

# "The incoming bucket's last event is later than the stored one", by (timestamp, event id).
_NEWER = ("(r.last_timestamp IS NULL"
          " OR (EXCLUDED.last_timestamp, EXCLUDED.last_event_id) > (r.last_timestamp, r.last_event_id))")

# Upserts the hourly rollups of the rows an ``ins`` CTE returned (one row per event).
_ROLLUP_CTE = """
roll AS (
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
), """ + _ROLLUP_CTE

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

_INSERT_UNMATCHED_SQL = """
INSERT INTO invoicing_unmatchedmeterevent
    (public_id, organization_id, meter_ref, customer, value, timestamp, idempotency_key, fingerprint, dimensions,
     created_at)
SELECT e.public_id, %s, e.ref, e.customer, e.value, e.ts, e.idem, e.fingerprint, e.dims::jsonb, %s
  FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::timestamptz[], %s::text[], %s::text[],
              %s::text[])
       WITH ORDINALITY AS e(public_id, ref, customer, value, ts, idem, fingerprint, dims, ord)
 ORDER BY e.ref, e.idem, e.ord
    ON CONFLICT (organization_id, meter_ref, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING public_id
"""

_STORED_UNMATCHED_KEYS_SQL = """
SELECT meter_ref, idempotency_key, public_id, fingerprint
  FROM invoicing_unmatchedmeterevent
 WHERE organization_id = %s
   AND (meter_ref, idempotency_key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
"""

# Moves a new meter's unmatched events into it, with their rollups, in one statement.
_ATTACH_CTE = """
moved AS (
    DELETE FROM invoicing_unmatchedmeterevent
     WHERE organization_id = %s AND meter_ref = ANY(%s::text[])
    RETURNING public_id, customer, value, timestamp, idempotency_key, fingerprint, dimensions, created_at
), ins AS (
    INSERT INTO invoicing_meterevent
        (public_id, organization_id, meter_id, customer, value, timestamp, idempotency_key, fingerprint,
         dimensions, metadata, created_at)
    SELECT public_id, %s, %s, customer, value, timestamp, idempotency_key, fingerprint, dimensions, '{}'::jsonb,
           created_at
      FROM moved
     ORDER BY idempotency_key, created_at, public_id
        ON CONFLICT (organization_id, meter_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, public_id, meter_id, customer, value, timestamp, idempotency_key, dimensions
), """ + _ROLLUP_CTE

_ATTACH_SQL = f"WITH {_ATTACH_CTE} SELECT count(*) FROM ins"
_ATTACH_UNIQUE_SQL = f"WITH {_ATTACH_CTE}{_UNIQUE_CTE} SELECT count(*) FROM ins"


def _name_lock_key(organization_pk: int, name: str) -> int:
    """A signed 64-bit advisory-lock key for (organization, meter name or id)."""
    digest = hashlib.sha256(f"tally.meter-name\x1f{organization_pk}\x1f{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _names_lock(cursor, organization_pk: int, names: Iterable[str], *, shared: bool) -> None:
    """Transaction-scoped advisory locks on (organization, name), one statement each, ascending key order
    (the fixed order every caller uses, so lockers cannot deadlock)."""
    fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    for key in sorted({_name_lock_key(organization_pk, name) for name in names}):
        cursor.execute(f"SELECT {fn}(%s)", [key])


def _meters_resolve(cursor, organization_pk: int, refs: list[str]) -> dict[str, tuple[int, str, str]]:
    """``meterId`` as sent → (meter pk, aggregation, unique dimension): by public id, else by ``eventName``.
    Names that resolve to no meter are left out."""
    cursor.execute(_METERS_SQL, [organization_pk, refs, refs])
    by_id: dict[str, tuple[int, str, str]] = {}
    by_name: dict[str, tuple[int, str, str]] = {}
    for public_id_, event_name, pk, aggregation, unique_dimension in cursor.fetchall():
        by_id[public_id_] = by_name[event_name] = (pk, aggregation, unique_dimension)
    out = {}
    for ref in refs:
        found = by_id.get(ref)
        if found is None:
            found = by_name.get(ref)
        if found is not None:
            out[ref] = found
    return out


def _unmatched_attach(cursor, *, organization: Organization, meter: Meter) -> int:
    """Move the organization's unmatched events named by ``meter``'s id or ``eventName`` into it (events,
    rollups, unique values) in one statement; returns how many were stored. Called by ``meter_create``
    inside its transaction, under its exclusive name locks."""
    params: list[Any] = [organization.pk, [meter.public_id, meter.event_name], organization.pk, meter.pk]
    sql = _ATTACH_SQL
    if meter.aggregation_type == Meter.AGG_UNIQUE_COUNT and meter.unique_dimension:
        sql = _ATTACH_UNIQUE_SQL
        params += [[meter.pk], [meter.unique_dimension]]
    cursor.execute(sql, params)
    return cursor.fetchone()[0]


def _invalid(index: int, field: str, message: str, code: str = "invalid_request") -> ValidationError:
    return ValidationError(message, param=f"events[{index}].{field}", code=code)


def _event_fields_check(i: int, event: MeterEventInput) -> None:
    if not event.meter_id:
        raise _invalid(i, "meterId", MSG_METER_REQUIRED, "parameter_missing")
    if len(event.meter_id) > MAX_METER_REF_LENGTH:
        raise _invalid(i, "meterId", f"meterId must be at most {MAX_METER_REF_LENGTH} characters")
    if not event.customer:
        raise _invalid(i, "userId", MSG_USER_REQUIRED, "parameter_missing")
    if len(event.customer) > MAX_CUSTOMER_LENGTH:
        raise _invalid(i, "userId", f"userId must be at most {MAX_CUSTOMER_LENGTH} characters")
    if isinstance(event.value, bool) or not isinstance(event.value, int) or not (
            INT64_MIN <= event.value <= INT64_MAX):
        raise _invalid(i, "value", "value must be a signed 64-bit integer")
    if event.idempotency_key is not None and len(event.idempotency_key) > MAX_KEY_LENGTH:
        raise _invalid(i, "idempotency", f"idempotency must be at most {MAX_KEY_LENGTH} characters")


def _events_validate(*, organization: Organization, events: list[MeterEventInput],
                     now: datetime) -> list[datetime]:
    """Check every event of the batch (nothing written yet); returns each event's effective timestamp."""
    backdate_days = organization.meter_event_backdate_days
    oldest = now - timedelta(days=backdate_days) if backdate_days is not None else None
    newest = now + MAX_FUTURE
    timestamps: list[datetime] = []
    for i, event in enumerate(events):
        _event_fields_check(i, event)
        ts = event.timestamp
        if ts is None:
            ts = now
        elif oldest is not None and ts < oldest:
            raise _invalid(i, "timestamp", f"timestamp is more than {backdate_days} days in the past "
                           "(the organization's backdating window)", "timestamp_out_of_range")
        elif ts > newest:
            raise _invalid(i, "timestamp", "timestamp is more than 5 minutes in the future",
                           "timestamp_out_of_range")
        timestamps.append(ts)
    return timestamps


# A stored key's owner: ("m", meter pk) for a meter, ("u", meterId as sent) while unmatched.
_Owner = tuple[str, int | str]


@dataclass
class _BatchPlan:
    """Which events of a batch go to the INSERTs (all key-less ones and the first of each key), with the
    columns of the matched (``cols``) and unmatched (``ucols``) INSERTs, decided in Python before writing."""

    first_of_key: dict[tuple[_Owner, str], int] = field(default_factory=dict)
    owners: list[_Owner] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    ids: list[str | None] = field(default_factory=list)
    cols: tuple[list, ...] = field(default_factory=lambda: ([], [], [], [], [], [], [], []))
    ucols: tuple[list, ...] = field(default_factory=lambda: ([], [], [], [], [], [], [], []))
    unique_meters: dict[int, str] = field(default_factory=dict)


def _dimensions_json(event: MeterEventInput) -> str | None:
    if event.dimensions is None:
        return None
    return json.dumps(event.dimensions, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _batch_plan(events: list[MeterEventInput], meters: dict, timestamps: list[datetime]) -> _BatchPlan:
    plan = _BatchPlan()
    for i, event in enumerate(events):
        resolved = meters.get(event.meter_id)
        owner: _Owner = ("m", resolved[0]) if resolved is not None else ("u", event.meter_id)
        plan.owners.append(owner)
        dims_json = _dimensions_json(event)
        fp = meter_event_fingerprint(meter_id=event.meter_id, customer=event.customer, value=event.value,
                                     timestamp=event.timestamp, dimensions_json=dims_json or "null")
        plan.fingerprints.append(fp)
        key = event.idempotency_key or None
        if key is not None:
            if (owner, key) in plan.first_of_key:
                plan.ids.append(None)
                continue
            plan.first_of_key[(owner, key)] = i
        new_id = public_id("mev")
        plan.ids.append(new_id)
        if resolved is not None:
            meter_pk, aggregation, unique_dimension = resolved
            if aggregation == Meter.AGG_UNIQUE_COUNT and unique_dimension:
                plan.unique_meters[meter_pk] = unique_dimension
            target, ref_or_pk = plan.cols, meter_pk
        else:
            target, ref_or_pk = plan.ucols, event.meter_id
        for column, value in zip(target, (new_id, ref_or_pk, event.customer, event.value, timestamps[i], key,
                                          fp, dims_json), strict=True):
            column.append(value)
    return plan


def _batch_insert(cursor, *, organization_pk: int, now: datetime, plan: _BatchPlan) -> set[str]:
    """Run the matched and the unmatched INSERT; returns the public ids actually inserted (a key already
    stored, or committed meanwhile by another batch, is skipped by the statement)."""
    inserted: set[str] = set()
    if plan.cols[0]:
        params: list[Any] = [organization_pk, now, *plan.cols]
        sql = _INSERT_SQL
        if plan.unique_meters:
            sql = _INSERT_UNIQUE_SQL
            params += [list(plan.unique_meters), list(plan.unique_meters.values())]
        cursor.execute(sql, params)
        inserted.update(row[0] for row in cursor.fetchall())
    if plan.ucols[0]:
        cursor.execute(_INSERT_UNMATCHED_SQL, [organization_pk, now, *plan.ucols])
        inserted.update(row[0] for row in cursor.fetchall())
    return inserted


def _stored_keys(*, organization_pk: int, plan: _BatchPlan,
                 inserted: set[str]) -> dict[tuple[_Owner, str], tuple[str, str]]:
    """(owner, key) → (public id, fingerprint) of the stored event holding that key."""
    stored: dict[tuple[_Owner, str], tuple[str, str]] = {}
    missing: list[tuple[_Owner, str]] = []
    for (owner, key), i in plan.first_of_key.items():
        if plan.ids[i] in inserted:
            stored[(owner, key)] = (plan.ids[i], plan.fingerprints[i])
        else:
            missing.append((owner, key))
    if missing:
        stored.update(_stored_keys_lookup(organization_pk=organization_pk, missing=missing))
    return stored


def _stored_keys_lookup(*, organization_pk: int,
                        missing: list[tuple[_Owner, str]]) -> dict[tuple[_Owner, str], tuple[str, str]]:
    """The events holding keys our INSERT skipped. A new statement, hence a new snapshot: it sees the rows
    our INSERT waited for and skipped."""
    stored: dict[tuple[_Owner, str], tuple[str, str]] = {}
    matched = [(o[1], k) for o, k in missing if o[0] == "m"]
    unmatched = [(o[1], k) for o, k in missing if o[0] == "u"]
    with connection.cursor() as cursor:
        if matched:
            cursor.execute(_STORED_KEYS_SQL, [organization_pk, [m for m, _ in matched], [k for _, k in matched]])
            for meter_pk, key, existing_id, existing_fp in cursor.fetchall():
                stored[(("m", meter_pk), key)] = (existing_id, existing_fp)
        if unmatched:
            cursor.execute(_STORED_UNMATCHED_KEYS_SQL,
                           [organization_pk, [r for r, _ in unmatched], [k for _, k in unmatched]])
            for ref, key, existing_id, existing_fp in cursor.fetchall():
                stored[(("u", ref), key)] = (existing_id, existing_fp)
    return stored


def _batch_results(events: list[MeterEventInput], plan: _BatchPlan,
                   stored: dict[tuple[_Owner, str], tuple[str, str]]) -> list[MeterEventResult]:
    results: list[MeterEventResult] = []
    for i, event in enumerate(events):
        key = event.idempotency_key or None
        if key is None:
            results.append(MeterEventResult(id=plan.ids[i], status=STATUS_CREATED))
            continue
        stored_id, stored_fp = stored[(plan.owners[i], key)]
        if stored_id == plan.ids[i]:
            status = STATUS_CREATED
        elif stored_fp == plan.fingerprints[i]:
            status = STATUS_DUPLICATE
        else:
            status = STATUS_CONFLICT
        results.append(MeterEventResult(id=stored_id, status=status))
    return results


def meter_events_record(*, organization: Organization, events: list[MeterEventInput],
                        now: datetime | None = None) -> list[MeterEventResult]:
    """Record up to 100 meter events; returns one result per event, in input order.

    Validation covers the whole batch before any write (required ids, int64 values, timestamps within
    the organization's backdating window, if any, and at most 5 minutes in the future); errors name the
    event (``events[k].field``). Each ``meterId`` resolves to a meter by id, else by ``eventName``; events
    naming no meter are stored as unmatched (``created``, counted once a meter with that name exists).
    Storage: one transaction — one statement inserting matched events, rollups and unique values, one
    inserting unmatched events. Locking: shared advisory locks on the unresolved names (then resolved
    again), the keys' index entries, rollup rows, in a fixed order. Idempotency: per (organization,
    meter, key), or (organization, name, key) while unmatched — ``created`` / ``duplicate`` (same
    fingerprint) / ``conflict`` (different payload), also for a key repeated inside the batch (the first
    occurrence decides). Side effects: none (no billing event per meter event)."""
    if not events:
        return []
    if len(events) > MAX_BATCH:
        raise ValidationError(f"maximum {MAX_BATCH} events per batch", param="events", code="batch_too_large")
    now = now or timezone.now()
    timestamps = _events_validate(organization=organization, events=events, now=now)
    refs = sorted({e.meter_id for e in events})

    with connection.cursor() as cursor:
        meters = _meters_resolve(cursor, organization.pk, refs)

    with transaction.atomic(), connection.cursor() as cursor:
        unresolved = [ref for ref in refs if ref not in meters]
        if unresolved:
            # A meter for one of these names may be committing right now: wait for it, then look again
            # (a new statement sees it). From here on no meter with these names can commit until we do.
            _names_lock(cursor, organization.pk, unresolved, shared=True)
            meters.update(_meters_resolve(cursor, organization.pk, unresolved))
        plan = _batch_plan(events, meters, timestamps)
        inserted = _batch_insert(cursor, organization_pk=organization.pk, now=now, plan=plan)

    stored = _stored_keys(organization_pk=organization.pk, plan=plan, inserted=inserted)
    return _batch_results(events, plan, stored)


def meter_event_record(*, organization: Organization, event: MeterEventInput,
                       now: datetime | None = None) -> MeterEventResult:
    """Record one meter event: ``meter_events_record`` with a batch of one (same rules and guarantees)."""
    return meter_events_record(organization=organization, events=[event], now=now)[0]
