"""Metering reads: meters, and a meter's usage over a half-open period ``[start, end)``.

Usage reads the hourly rollups for the whole hours of the period and raw events only for the partial
hours at its edges, so its cost does not grow with the number of events in the period."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import QuerySet

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from invoicing.models import Meter, MeterEvent, UnmatchedMeterEvent

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class MeterUsage:
    value: int
    event_count: int


def meter_list(*, organization: Organization) -> QuerySet[Meter]:
    """The organization's meters in creation order."""
    return Meter.objects.filter(organization=organization).order_by("pk")


def meter_get(*, organization: Organization, meter_id: str, param: str = "id") -> Meter:
    """One meter of the organization by public id; unknown or another tenant's → 404 ``meter not found``."""
    meter = Meter.objects.filter(organization=organization, public_id=meter_id).first()
    if meter is None:
        raise NotFound("meter not found", param=param)
    return meter


def meter_resolve(*, organization: Organization, meter_ref: str, param: str = "meterId") -> Meter:
    """The meter an event's ``meterId`` names: by public id, else by ``eventName`` (how reporters name
    meters); neither → 404 ``meter not found``."""
    meter = Meter.objects.filter(organization=organization, public_id=meter_ref).first()
    if meter is None:
        meter = Meter.objects.filter(organization=organization, event_name=meter_ref).first()
    if meter is None:
        raise NotFound("meter not found", param=param)
    return meter


def unmatched_meter_event_list(*, organization: Organization,
                               meter_ref: str | None = None) -> QuerySet[UnmatchedMeterEvent]:
    """Accepted events that name no meter yet, oldest first; ``meter_ref`` filters by the name sent."""
    qs = UnmatchedMeterEvent.objects.filter(organization=organization).order_by("created_at", "pk")
    if meter_ref is not None:
        qs = qs.filter(meter_ref=meter_ref)
    return qs


# --- usage ------------------------------------------------------------------------------------------

def _hour_floor(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_ceil(value: datetime) -> datetime:
    floor = _hour_floor(value)
    return floor if floor == value else floor + HOUR


@dataclass(frozen=True)
class _Split:
    """``[start, end)`` as whole-hour rollup buckets plus partial-hour edges read from events."""

    buckets: tuple[datetime | None, datetime | None] | None  # [lo, hi) of bucket starts; None bound = open
    edges: tuple[tuple[datetime, datetime], ...]


def _split(start: datetime | None, end: datetime | None) -> _Split:
    if start is not None and end is not None and start >= end:
        return _Split(buckets=None, edges=())
    lo = _hour_ceil(start) if start is not None else None
    hi = _hour_floor(end) if end is not None else None
    if lo is not None and hi is not None and lo >= hi:  # no whole hour inside: all of it is edge
        return _Split(buckets=None, edges=((start, end),))
    edges = []
    if start is not None and start < lo:
        edges.append((start, lo))
    if end is not None and hi < end:
        edges.append((hi, end))
    return _Split(buckets=(lo, hi), edges=tuple(edges))


def _where_events(meter: Meter, customer: str | None, split: _Split) -> tuple[str, list]:
    sql = "meter_id = %s"
    params: list = [meter.pk]
    if customer is not None:
        sql += " AND customer = %s"
        params.append(customer)
    sql += " AND (" + " OR ".join("(timestamp >= %s AND timestamp < %s)" for _ in split.edges) + ")"
    for a, b in split.edges:
        params += [a, b]
    return sql, params


def _where_buckets(meter: Meter, customer: str | None, split: _Split) -> tuple[str, list]:
    sql = "meter_id = %s"
    params: list = [meter.pk]
    if customer is not None:
        sql += " AND customer = %s"
        params.append(customer)
    lo, hi = split.buckets
    if lo is not None:
        sql += " AND bucket >= %s"
        params.append(lo)
    if hi is not None:
        sql += " AND bucket < %s"
        params.append(hi)
    return sql, params


def _query(parts: list[tuple[str, list]]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(f"({sql})" for sql, _ in parts), [p for _, ps in parts for p in ps])
        return cursor.fetchall()


def meter_usage(*, meter: Meter, customer: str | None, start: datetime | None, end: datetime | None) -> MeterUsage:
    """Aggregate the meter's events with ``start <= timestamp < end`` (either bound may be open), for one
    customer or, with ``customer=None``, for all.

    ``sum`` Σ value; ``count`` number of events; ``last`` the value of the latest event by timestamp (ties:
    the highest event id), 0 without events; ``max`` the largest value, 0 without events;
    ``unique_count`` distinct values of the meter's unique dimension. ``event_count`` is always the
    number of events. At most three small queries whatever the period's length."""
    split = _split(start, end)
    if split.buckets is None and not split.edges:
        return MeterUsage(value=0, event_count=0)

    event_count, value_sum, maxima = _totals(meter, customer, split)
    agg = meter.aggregation_type
    if agg == Meter.AGG_COUNT:
        value = event_count
    elif agg == Meter.AGG_MAX:
        value = max(maxima) if maxima else 0
    elif agg == Meter.AGG_LAST:
        value = _last(meter, customer, split) if event_count else 0
    elif agg == Meter.AGG_UNIQUE_COUNT:
        value = _unique(meter, customer, split) if event_count else 0
    else:
        value = value_sum
    return MeterUsage(value=value, event_count=event_count)


def _totals(meter: Meter, customer: str | None, split: _Split) -> tuple[int, int, list[int]]:
    """(event count, Σ value, the non-null maxima) over the edges (raw events) and whole hours (rollups)."""
    totals: list[tuple[str, list]] = []
    if split.edges:
        where, params = _where_events(meter, customer, split)
        totals.append((f"SELECT count(*), coalesce(sum(value), 0), max(value) FROM invoicing_meterevent "
                       f"WHERE {where}", params))
    if split.buckets is not None:
        where, params = _where_buckets(meter, customer, split)
        totals.append((f"SELECT coalesce(sum(event_count), 0), coalesce(sum(value_sum), 0), max(value_max) "
                       f"FROM invoicing_meterrollup WHERE {where}", params))
    rows = _query(totals)
    return (int(sum(row[0] for row in rows)), int(sum(row[1] for row in rows)),
            [row[2] for row in rows if row[2] is not None])


def _last(meter: Meter, customer: str | None, split: _Split) -> int:
    parts: list[tuple[str, list]] = []
    if split.edges:
        where, params = _where_events(meter, customer, split)
        parts.append((f"SELECT value, timestamp, id FROM invoicing_meterevent WHERE {where} "
                      "ORDER BY timestamp DESC, id DESC LIMIT 1", params))
    if split.buckets is not None:
        where, params = _where_buckets(meter, customer, split)
        parts.append((f"SELECT last_value, last_timestamp, last_event_id FROM invoicing_meterrollup WHERE {where} "
                      "ORDER BY last_timestamp DESC, last_event_id DESC LIMIT 1", params))
    rows = _query(parts)
    return max(rows, key=lambda row: (row[1], row[2]))[0] if rows else 0


def _unique(meter: Meter, customer: str | None, split: _Split) -> int:
    dimension = meter.unique_dimension
    if not dimension:
        return 0
    parts: list[str] = []
    params: list = []
    if split.edges:
        where, ps = _where_events(meter, customer, split)
        parts.append(f"SELECT dimensions ->> %s AS v FROM invoicing_meterevent WHERE {where} "
                     "AND dimensions ->> %s IS NOT NULL")
        params += [dimension, *ps, dimension]
    if split.buckets is not None:
        where, ps = _where_buckets(meter, customer, split)
        parts.append(f"SELECT value AS v FROM invoicing_meteruniquevalue WHERE {where}")
        params += ps
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(DISTINCT v) FROM ({' UNION ALL '.join(parts)}) u", params)
        return cursor.fetchone()[0]


def _event_selected(event: MeterEvent, *, meter: Meter, customer: str | None, start: datetime | None,
                    end: datetime | None) -> bool:
    return (event.meter_id == meter.pk and (customer is None or event.customer == customer)
            and (start is None or event.timestamp >= start) and (end is None or event.timestamp < end))


def meter_usage_from_events(*, meter: Meter, events: Iterable[MeterEvent], customer: str | None = None,
                            start: datetime | None = None, end: datetime | None = None) -> MeterUsage:
    """The same aggregation computed directly from event objects (no database): the reference that the
    rollup-based ``meter_usage`` must agree with."""
    selected = [e for e in events if _event_selected(e, meter=meter, customer=customer, start=start, end=end)]
    count = len(selected)
    agg = meter.aggregation_type
    if agg == Meter.AGG_COUNT:
        value = count
    elif agg == Meter.AGG_MAX:
        value = max((e.value for e in selected), default=0)
    elif agg == Meter.AGG_LAST:
        value = max(selected, key=lambda e: (e.timestamp, e.pk)).value if selected else 0
    elif agg == Meter.AGG_UNIQUE_COUNT:
        value = len({(e.dimensions or {}).get(meter.unique_dimension) for e in selected} - {None})
    else:
        value = sum(e.value for e in selected)
    return MeterUsage(value=value, event_count=count)
