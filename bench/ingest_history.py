"""Bulk-load one customer's month of meter events, and their hourly rollups, with set-based SQL (for the
summary-read benchmark in bench/ingest_bench.py).

The API (``meter_events_record``) is bypassed for speed: 1M events through ``POST /meter-events`` would
take minutes. The generated rows are what the API stores — public ids, idempotency keys, 64-character
fingerprints, dimensions — spread evenly over ``[month_start, month_end)``; the rollups are then built from
the loaded events by one ``INSERT … SELECT … GROUP BY`` with the same aggregates as the API's upsert
(count, Σ value, max, last value/timestamp/event id by (timestamp, id)), so rollups equal the events.
Bypassing the API also bypasses its 35-day timestamp window: any month works.

Foreign-key checks and every index stay on (the rows reference the existing organization and meter); on the
2-core machine 1M events load in ~20 s and their rollups in ~11 s.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import datetime

from django.db import connection, transaction

BATCH = 250_000

_INSERT_EVENTS = """
INSERT INTO invoicing_meterevent
    (public_id, organization_id, meter_id, customer, value, timestamp, idempotency_key, fingerprint,
     dimensions, metadata, created_at)
SELECT %(prefix)s || g, %(org)s, %(meter)s, %(customer)s, 1 + (g * 7919) %% 100,
       %(start)s::timestamptz + make_interval(secs => (g - 1) * %(step)s::float8),
       %(prefix)s || g, encode(sha256(convert_to(%(prefix)s || g, 'UTF8')), 'hex'),
       jsonb_build_object('region', (ARRAY['eu-west', 'us-east', 'ap-south'])[1 + g %% 3]), '{}'::jsonb, now()
  FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
"""

_INSERT_ROLLUPS = """
INSERT INTO invoicing_meterrollup
    (meter_id, customer, bucket, event_count, value_sum, value_max, last_value, last_timestamp, last_event_id)
SELECT meter_id, customer, date_trunc('hour', timestamp, 'UTC'), count(*), sum(value), max(value),
       (array_agg(value ORDER BY timestamp DESC, id DESC))[1], max(timestamp),
       (array_agg(id ORDER BY timestamp DESC, id DESC))[1]
  FROM invoicing_meterevent
 WHERE meter_id = %(meter)s AND customer = %(customer)s
 GROUP BY 1, 2, 3
"""

_TOTALS = """
SELECT count(*), coalesce(sum(value), 0) FROM invoicing_meterevent
 WHERE meter_id = %s AND customer = %s AND timestamp >= %s AND timestamp < %s
"""


def events_load(*, organization_id: int, meter_id: int, customer: str, events: int, month_start: datetime,
                month_end: datetime, progress: Callable[[str], None] | None = None) -> dict:
    """Insert ``events`` events for ``customer`` on ``meter_id``, evenly spaced over the month, and their
    hourly rollups (the customer must have none on this meter yet); return what was loaded."""
    step = (month_end - month_start).total_seconds() / events
    prefix = f"mev_b{secrets.token_hex(4)}_"  # public ids and keys: unique per load, ≤ 40 characters
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for first in range(1, events + 1, BATCH):
            last = min(first + BATCH - 1, events)
            cursor.execute(_INSERT_EVENTS, {"prefix": prefix, "org": organization_id, "meter": meter_id,
                                            "customer": customer, "start": month_start, "step": step,
                                            "first": first, "last": last})
            if progress:
                progress(f"{last:,}/{events:,} events ({time.perf_counter() - started:.1f} s)")
        events_seconds = time.perf_counter() - started
        cursor.execute(_INSERT_ROLLUPS, {"meter": meter_id, "customer": customer})
        rollups = cursor.rowcount
    rollup_seconds = time.perf_counter() - started - events_seconds
    if progress:
        progress(f"{rollups:,} hourly rollups ({rollup_seconds:.1f} s); ANALYZE")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE invoicing_meterevent")
        cursor.execute("ANALYZE invoicing_meterrollup")
    return {"customer": customer, "events": events, "rollups": rollups, "events_seconds": round(events_seconds, 2),
            "rollup_seconds": round(rollup_seconds, 2), "seconds": round(time.perf_counter() - started, 2)}


def events_totals(*, meter_id: int, customer: str, start: datetime, end: datetime) -> tuple[int, int]:
    """(count, Σ value) of the customer's events with ``start <= timestamp < end``, straight from the events."""
    with connection.cursor() as cursor:
        cursor.execute(_TOTALS, [meter_id, customer, start, end])
        count, total = cursor.fetchone()
    return int(count), int(total)
