#!/usr/bin/env python
"""Ingestion benchmark: events/s through POST /api/v1/billing/meter-events (100 events per request, gunicorn
2 sync workers, CONN_MAX_AGE=60) side by side with a raw multi-row INSERT of the same rows in the same run;
then GET /meter-events/summary latency over 1M events of one customer in one month.

  .venv/bin/python scripts/stack.py exec -- .venv/bin/python bench/ingest_bench.py
  .venv/bin/python bench/ingest_bench.py --quick          # ~25 s smoke run (3 s per side, 100k events)

Without DATABASE_URL the script re-executes itself under ``scripts/stack.py exec`` (throwaway embedded
PostgreSQL + Redis). Steps:
1. ``manage.py migrate``; an organization + admin API key (core services); gunicorn (``bench.settings``)
   on 127.0.0.1; three sum meters via ``POST /meters`` (API ingest, raw ingest, summary).
2. Ingest, N client threads per side (default 8), each sending batches of 100 events spread over 100
   customers, timestamps in the last 72 h, one ``region`` dimension and a unique idempotency key per event
   (``--no-keys``: none), as fast as it can:
   - API: ``POST /meter-events`` (one ``http.client`` connection per thread; gunicorn's sync workers close
     it after each response, so every request reconnects) — validation, fingerprints, events + hourly
     rollups upserted in one statement;
   - raw: each thread its own psycopg connection (autocommit; ``RawCursor``, so ``$n`` placeholders and
     the statement auto-prepared by psycopg) executing ONE ``INSERT INTO invoicing_meterevent … VALUES (…)
     ×100`` per batch: equivalent rows (new public ids, fingerprints, the same columns, keys, dimensions)
     built by the client thread, into the same table, on its own meter — no rollups, no dedupe, no HTTP.
   One warm-up slice per side, then the two sides interleaved in short slices (ABBA order, ``--slice``) so
   that drifting background load on the shared machine hits both alike. CPU seconds of the client (this
   process), gunicorn and PostgreSQL are sampled from /proc around each measured slice.
3. Correctness: rows stored for the API meter = 100 × its 201 responses (warm-up included) = events reported
   ``created``; Σ rollup event_count / value_sum equal the events' count / Σ value (and the values the
   client sent), and every (customer, hour) rollup equals the aggregate of its events; raw rows = 100 ×
   raw statements.
4. Summary: 1M events for ONE customer over one calendar month (the last complete one) bulk-loaded with
   set-based SQL, bypassing the API (bench/ingest_history.py); then sequential ``GET /meter-events/summary``
   for the whole month (warm-up, then ``--reads``), and with non-hour-aligned bounds (:17 past the first hour
   to :17 past the last, so the edge hours are read from raw events); every answer is checked against the
   SQL count and Σ value of the events.
5. A plain-text table on stdout and bench/results/ingest.json (exit status 1 when a correctness check fails).
Targets (reported, not asserted): API events/s ≥ 0.35× raw; summary p50 ≤ 20 ms at 1M events.
Also reported: the CPU cost ratio (raw CPU per event / API CPU per event, our processes only), which stays
put when other processes load the machine — they take more from the API slices than from the raw ones, so
the measured ratio drops; the table warns when more than 10% of the busy CPU went to other processes.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import random
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ledger_bench import (  # noqa: E402
    HOST,
    RESULTS,
    Gunicorn,
    django_setup,
    fmt,
    latency_summary,
    log,
    manage,
    ratio,
    reexec_under_stack,
)

EVENTS_PATH = "/api/v1/billing/meter-events"
SUMMARY_PATH = "/api/v1/billing/meter-events/summary"
METERS_PATH = "/api/v1/billing/meters"
BATCH = 100
SUMMARY_CUSTOMER = "bench/summary"
REGIONS = ("eu-west", "us-east", "ap-south")
TARGET_RATIO = 0.35
TARGET_SUMMARY_P50_MS = 20.0

# PostgreSQL's own $n placeholders, executed through psycopg's RawCursor: psycopg does not cache the
# %s → $n conversion of a query this long (1,000 parameters) and re-parses it on every execute, which cost
# ~30 µs of client CPU per row here — more than the INSERT itself. A RawCursor skips that parsing.
_RAW_COLUMNS = 10  # parameters per row (metadata is the constant '{}')
RAW_INSERT_SQL = ("INSERT INTO invoicing_meterevent (public_id, organization_id, meter_id, customer, value, "
                  "timestamp, idempotency_key, fingerprint, dimensions, metadata, created_at) VALUES "
                  + ", ".join("({}, ${}::jsonb, '{{}}'::jsonb, ${})".format(
                      ", ".join(f"${r * _RAW_COLUMNS + c}" for c in range(1, 9)),
                      r * _RAW_COLUMNS + 9, r * _RAW_COLUMNS + 10) for r in range(BATCH)))


# --- generated events -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Event:
    customer: str
    value: int
    timestamp: datetime
    timestamp_text: str  # RFC 3339, as sent
    key: str | None
    dimensions: dict[str, str]


class EventSource:
    """One thread's events: customers and values at random, timestamps within the last ``spread`` hours,
    keys unique per (run, side, thread, batch, position)."""

    def __init__(self, *, tag: str, tid: int, customers: int, spread_hours: float, keys: bool):
        self.rng = random.Random(f"{tag}/{tid}")
        self.prefix = f"{tag}-{tid}-"
        self.customers = [f"bench/c{i}" for i in range(customers)]
        self.spread = spread_hours * 3600.0
        self.keys = keys
        self.seq = 0

    def batch(self) -> list[Event]:
        self.seq += 1
        now = datetime.now(UTC)
        rng = self.rng
        out = []
        for i in range(BATCH):
            ts = (now - timedelta(seconds=rng.uniform(1.0, self.spread))).replace(microsecond=0)
            out.append(Event(customer=rng.choice(self.customers), value=rng.randint(1, 100), timestamp=ts,
                             timestamp_text=ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             key=f"{self.prefix}{self.seq}-{i}" if self.keys else None,
                             dimensions={"region": rng.choice(REGIONS)}))
        return out


def fingerprint(meter_public_id: str, event: Event, dims_json: str) -> str:
    """The same sha256 string the API stores (see ``meter_event_fingerprint``)."""
    return hashlib.sha256(f"{meter_public_id}\x1f{event.customer}\x1f{event.value}\x1f{event.timestamp_text}"
                          f"\x1f{dims_json}".encode()).hexdigest()


# --- per-side figures -------------------------------------------------------------------------------

@dataclass
class SideStats:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # per batch, measured slices
    events: int = 0  # events stored by measured batches
    statuses: Counter = field(default_factory=Counter)  # HTTP status / "ok", measured slices
    event_statuses: Counter = field(default_factory=Counter)  # API per-event status, measured slices
    ok_batches_total: int = 0  # warm-up included, for the correctness checks
    created_total: int = 0
    value_total: int = 0
    errors: list[str] = field(default_factory=list)  # transport errors, non-201s, failed statements
    ambiguous: int = 0  # transport errors: the batch may or may not have been stored
    cpu: Counter = field(default_factory=Counter)  # CPU seconds per process group, measured slices
    machine: Counter = field(default_factory=Counter)  # /proc/stat jiffies busy/total, measured slices

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def merge(self, other: SideStats, *, measured: bool) -> None:
        self.ok_batches_total += other.ok_batches_total
        self.created_total += other.created_total
        self.value_total += other.value_total
        self.errors.extend(other.errors)
        self.ambiguous += other.ambiguous
        if measured:
            self.seconds += other.seconds
            self.latencies.extend(other.latencies)
            self.events += other.events
            self.statuses.update(other.statuses)
            self.event_statuses.update(other.event_statuses)

    def summary(self) -> dict:
        cpu = dict(self.cpu)
        if self.machine["total"] and cpu:  # busy time on the machine not charged to our processes
            cpu["other"] = max(0.0, self.machine["busy"] / _TICK - sum(cpu.values()))
        per_k = {k: round(v * 1e6 / self.events, 1) if self.events else None for k, v in sorted(cpu.items())}
        busy = self.machine["busy"] / self.machine["total"] if self.machine["total"] else None
        return {"batches": len(self.latencies), "events": self.events, "seconds": round(self.seconds, 3),
                "events_per_s": round(self.events_per_s, 1),
                "batches_per_s": round(len(self.latencies) / self.seconds, 1) if self.seconds else 0.0,
                **{f"batch_{k}": v for k, v in latency_summary(self.latencies).items()},
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "event_statuses": dict(sorted(self.event_statuses.items())),
                "errors": len(self.errors), "errors_sample": self.errors[:5],
                "cpu_seconds": {k: round(v, 2) for k, v in sorted(cpu.items())},
                "cpu_ms_per_1k_events": per_k,
                "machine_busy": round(busy, 3) if busy is not None else None}


# --- CPU accounting (Linux /proc; empty elsewhere) ----------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(ppid, utime + stime in seconds) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


class CpuProbe:
    """CPU seconds consumed so far by this process, the gunicorn master + workers, and the PostgreSQL
    postmaster + its children (backends, WAL writer, checkpointer…); plus machine busy/total jiffies, whose
    remainder ("other": other processes on a shared machine, interrupts) is reported too."""

    def __init__(self, *, gunicorn_pid: int, postmaster_pid: int | None):
        self.roots = {"gunicorn": gunicorn_pid, "postgres": postmaster_pid}
        self.enabled = Path("/proc/self/stat").exists()

    def sample(self) -> dict[str, float]:
        if not self.enabled:
            return {}
        out = {"client": sum(os.times()[:2])}
        stats = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                stat = _proc_stat(int(entry.name))
                if stat is not None:
                    stats[int(entry.name)] = stat
        for group, root in self.roots.items():
            if root is None:
                continue
            out[group] = sum(cpu for pid, (ppid, cpu) in stats.items() if pid == root or ppid == root)
        try:
            jiffies = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            idle = jiffies[3] + (jiffies[4] if len(jiffies) > 4 else 0)
            out["_total"], out["_busy"] = float(sum(jiffies[:8])), float(sum(jiffies[:8]) - idle)
        except (OSError, ValueError, IndexError):
            pass
        return out

    @staticmethod
    def add(stats: SideStats, before: dict[str, float], after: dict[str, float]) -> None:
        for group, value in after.items():
            if group in before and not group.startswith("_"):
                stats.cpu[group] += max(0.0, value - before[group])
        if "_total" in before and "_total" in after:
            stats.machine["total"] += after["_total"] - before["_total"]
            stats.machine["busy"] += after["_busy"] - before["_busy"]


def postmaster_pid(url: str) -> int | None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    stat = _proc_stat(backend)
    return stat[0] if stat else None


# --- the two sides ------------------------------------------------------------------------------------

@dataclass
class Context:
    port: int
    key: str
    org_pk: int
    api_meter: str
    raw_meter: str
    raw_meter_pk: int
    tag: str
    customers: int
    spread_hours: float
    keys: bool
    raw_conns: list = field(default_factory=list)
    sources: dict[tuple[str, int], EventSource] = field(default_factory=dict)

    def source(self, side: str, tid: int) -> EventSource:
        key = (side, tid)
        if key not in self.sources:
            self.sources[key] = EventSource(tag=f"{self.tag}{side[0]}", tid=tid, customers=self.customers,
                                            spread_hours=self.spread_hours, keys=self.keys)
        return self.sources[key]


def api_client(ctx: Context, tid: int, end: float, out: SideStats) -> float:
    """POST batches until ``end``; returns when the last one finished."""
    source = ctx.source("api", tid)
    headers = {"Authorization": f"Bearer {ctx.key}", "Content-Type": "application/json", "Accept": "application/json"}
    conn = http.client.HTTPConnection(HOST, ctx.port, timeout=60)
    finished = time.perf_counter()
    while finished < end:
        events = source.batch()
        payload = json.dumps({"events": [
            {"meterId": ctx.api_meter, "userId": e.customer, "value": e.value, "timestamp": e.timestamp_text,
             **({"idempotency": e.key} if e.key is not None else {}), "dimensions": e.dimensions}
            for e in events]}).encode()
        started = time.perf_counter()
        try:
            conn.request("POST", EVENTS_PATH, payload, headers)
            response = conn.getresponse()
            data = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            out.errors.append(f"{type(exc).__name__}: {exc}")
            out.ambiguous += 1
            conn.close()
            conn = http.client.HTTPConnection(HOST, ctx.port, timeout=60)
            finished = time.perf_counter()
            continue
        finished = time.perf_counter()
        out.latencies.append(finished - started)
        out.statuses[status] += 1
        if status == 201:
            results = json.loads(data)["events"]
            counts = Counter(r["status"] for r in results)
            out.event_statuses.update(counts)
            out.ok_batches_total += 1
            out.created_total += counts["created"]
            out.events += counts["created"]
            out.value_total += sum(e.value for e, r in zip(events, results, strict=True) if r["status"] == "created")
        else:
            out.errors.append(f"HTTP {status}: {data[:200]!r}")
    conn.close()
    return finished


def raw_client(ctx: Context, tid: int, end: float, out: SideStats) -> float:
    """One multi-row INSERT of 100 equivalent rows per statement (autocommit) until ``end``."""
    import psycopg

    from billing_project.core.ids import public_id

    source = ctx.source("raw", tid)
    cursor = psycopg.RawCursor(ctx.raw_conns[tid])  # autocommit connection: one transaction per statement
    finished = time.perf_counter()
    while finished < end:
        events = source.batch()
        now = datetime.now(UTC)
        params: list = []
        for e in events:
            dims = json.dumps(e.dimensions, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            params += [public_id("mev"), ctx.org_pk, ctx.raw_meter_pk, e.customer, e.value, e.timestamp, e.key,
                       fingerprint(ctx.raw_meter, e, dims), dims, now]
        started = time.perf_counter()
        try:
            cursor.execute(RAW_INSERT_SQL, params)
        except psycopg.Error as exc:
            out.errors.append(f"{type(exc).__name__}: {exc}")
            out.statuses["error"] += 1
            finished = time.perf_counter()
            continue
        finished = time.perf_counter()
        out.latencies.append(finished - started)
        out.statuses["ok"] += 1
        out.ok_batches_total += 1
        out.created_total += len(events)
        out.events += len(events)
        out.value_total += sum(e.value for e in events)
    return finished


def run_slice(*, name: str, client: Callable[[Context, int, float, SideStats], float], ctx: Context,
              threads: int, seconds: float) -> SideStats:
    """``threads`` clients for ``seconds`` (each finishes its batch in flight); the slice lasts from the
    common start to the last client's last answer."""
    result = SideStats(name=name)
    barrier = threading.Barrier(threads + 1)
    lock = threading.Lock()
    window: dict[str, float] = {}
    done: list[float] = []

    def body(tid: int) -> None:
        local = SideStats(name=name)
        barrier.wait()
        finished = client(ctx, tid, window["end"], local)
        with lock:
            local.seconds = 0.0
            result.merge(local, measured=True)
            done.append(finished)

    workers = [threading.Thread(target=body, args=(tid,), name=f"{name}-{tid}", daemon=True)
               for tid in range(threads)]
    for worker in workers:
        worker.start()
    window["start"] = time.perf_counter()
    window["end"] = window["start"] + seconds
    barrier.wait()
    for worker in workers:
        worker.join(seconds + 180)
    if any(worker.is_alive() for worker in workers):
        raise RuntimeError(f"{name}: client threads did not stop")
    result.seconds = max(0.0, max(done) - window["start"])
    return result


def cpu_cost_ratio(api: SideStats, raw: SideStats) -> float | None:
    """Raw CPU per event / API CPU per event (client + gunicorn + PostgreSQL, "other" excluded): the events/s
    ratio the two would reach if both were CPU-bound on the same cores. Unlike the measured ratio it hardly
    moves with foreign load on a shared machine, which takes a larger share of the API slices (fewer
    runnable threads) than of the raw ones."""
    costs = [sum(v for k, v in side.cpu.items() if k != "other") / side.events if side.events else 0.0
             for side in (api, raw)]
    return round(costs[1] / costs[0], 3) if costs[0] and costs[1] else None


def measure_ingest(ctx: Context, args: argparse.Namespace, probe: CpuProbe) -> tuple[SideStats, SideStats]:
    slices = max(1, round(args.seconds / args.slice)) if args.slice > 0 else 1
    length = args.seconds / slices
    log(f"ingest: {args.threads} threads per side, {args.warmup:g} s warm-up each, then {slices} × {length:g} s "
        f"slices per side, interleaved (ABBA)")
    sides = {"api": (SideStats(name="api"), api_client), "raw": (SideStats(name="raw"), raw_client)}
    for stats, client in sides.values():
        warm = run_slice(name=stats.name, client=client, ctx=ctx, threads=args.threads, seconds=args.warmup)
        stats.merge(warm, measured=False)
    for k in range(slices):
        for which in (("raw", "api") if k % 2 == 0 else ("api", "raw")):
            stats, client = sides[which]
            before = probe.sample()
            part = run_slice(name=stats.name, client=client, ctx=ctx, threads=args.threads, seconds=length)
            CpuProbe.add(stats, before, probe.sample())
            stats.merge(part, measured=True)
    return sides["api"][0], sides["raw"][0]


# --- HTTP helpers -------------------------------------------------------------------------------------

def http_json(port: int, key: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    payload = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        payload = json.dumps(body).encode()
    try:
        conn.request(method, path, payload, headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def meter_create(port: int, key: str, name: str, event_name: str) -> str:
    status, data = http_json(port, key, "POST", METERS_PATH,
                             {"name": name, "eventName": event_name, "aggregationType": "sum"})
    if status != 201:
        raise RuntimeError(f"POST {METERS_PATH}: {status} {data}")
    return data["id"]


def rfc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary_reads(*, port: int, key: str, meter: str, windows: dict[str, tuple[datetime, datetime]],
                  expected: dict[str, tuple[int, int]], requests: dict[str, int], warmup: int) -> dict:
    """Sequential GET /summary per window (warm-up first); every answer checked against ``expected``
    (count, Σ value). Returns latencies and the mismatches seen."""
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    latencies: dict[str, list[float]] = {w: [] for w in windows}
    wrong: dict[str, list[dict]] = {w: [] for w in windows}
    answers: dict[str, dict] = {}

    def get(label: str) -> float:
        nonlocal conn
        start, end = windows[label]
        query = urlencode({"meterId": meter, "userId": SUMMARY_CUSTOMER, "periodStart": rfc(start),
                           "periodEnd": rfc(end)})
        started = time.perf_counter()
        conn.request("GET", f"{SUMMARY_PATH}?{query}", headers=headers)
        response = conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"GET summary {label}: {response.status} {data[:200]!r}")
        answer = json.loads(data)
        answers[label] = answer
        count, total = expected[label]
        if (answer["eventCount"], answer["value"]) != (count, total) and len(wrong[label]) < 5:
            wrong[label].append({"eventCount": answer["eventCount"], "value": answer["value"],
                                 "expected_eventCount": count, "expected_value": total})
        return elapsed

    try:
        for label in windows:
            for _ in range(warmup):
                get(label)
        for label, n in requests.items():
            latencies[label].extend(get(label) for _ in range(n))
    finally:
        conn.close()
    return {"latencies": latencies, "wrong": wrong, "answers": answers}


# --- in-process database work --------------------------------------------------------------------------

def prepare(org_slug: str) -> tuple[int, str]:
    """An organization + admin API key (core services); returns (organization pk, secret)."""
    from billing_project.core import services as core_services

    organization = core_services.organization_get_or_create(slug=org_slug, name="Ingest bench")
    _key, secret = core_services.api_key_create(organization=organization, name="ingest bench")
    return organization.pk, secret


def meter_pk(public: str) -> int:
    from invoicing.models import Meter

    return Meter.objects.only("pk").get(public_id=public).pk


_ROLLUP_DIFF = """
WITH ev AS (
    SELECT customer, date_trunc('hour', timestamp, 'UTC') AS bucket, count(*) AS n, sum(value) AS s,
           max(value) AS mx, max(timestamp) AS last_ts
      FROM invoicing_meterevent WHERE meter_id = %(meter)s GROUP BY 1, 2
), ro AS (
    SELECT customer, bucket, event_count AS n, value_sum AS s, value_max AS mx, last_timestamp AS last_ts
      FROM invoicing_meterrollup WHERE meter_id = %(meter)s
)
SELECT count(*) FILTER (WHERE ev.customer IS NULL OR ro.customer IS NULL
                          OR (ev.n, ev.s, ev.mx, ev.last_ts) IS DISTINCT FROM (ro.n, ro.s, ro.mx, ro.last_ts)),
       count(*)
  FROM ev FULL JOIN ro USING (customer, bucket)
"""


def ingest_checks(*, api: SideStats, raw: SideStats, api_meter_pk: int, raw_meter_pk: int) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), coalesce(sum(value), 0) FROM invoicing_meterevent WHERE meter_id = %s",
                       [api_meter_pk])
        api_rows, api_sum = (int(v) for v in cursor.fetchone())
        cursor.execute("SELECT coalesce(sum(event_count), 0), coalesce(sum(value_sum), 0), count(*) "
                       "FROM invoicing_meterrollup WHERE meter_id = %s", [api_meter_pk])
        roll_count, roll_sum, roll_rows = (int(v) for v in cursor.fetchone())
        cursor.execute(_ROLLUP_DIFF, {"meter": api_meter_pk})
        bucket_mismatches, buckets = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM invoicing_meterevent WHERE meter_id = %s", [raw_meter_pk])
        (raw_rows,) = cursor.fetchone()
    checks = {
        "api_rows": api_rows, "api_201_batches": api.ok_batches_total, "api_created_reported": api.created_total,
        "api_rows_eq_100x201": api_rows == BATCH * api.ok_batches_total,
        "api_rows_eq_created": api_rows == api.created_total,
        "rollup_event_count": roll_count, "rollup_count_exact": roll_count == api_rows,
        "rollup_value_sum": roll_sum, "events_value_sum": api_sum, "client_value_sum": api.value_total,
        "rollup_sum_exact": roll_sum == api_sum == api.value_total,
        "rollup_rows": roll_rows, "buckets_compared": buckets, "bucket_mismatches": bucket_mismatches,
        "raw_rows": raw_rows, "raw_statements": raw.ok_batches_total,
        "raw_rows_eq_100xstatements": raw_rows == BATCH * raw.ok_batches_total,
        "ambiguous_batches": api.ambiguous, "errors": len(api.errors) + len(raw.errors),
    }
    checks["exact"] = (checks["api_rows_eq_100x201"] and checks["api_rows_eq_created"]
                       and checks["rollup_count_exact"] and checks["rollup_sum_exact"] and bucket_mismatches == 0
                       and checks["raw_rows_eq_100xstatements"] and api.ambiguous == 0 and not checks["errors"])
    return checks


def last_complete_month(now: datetime) -> tuple[datetime, datetime]:
    this_month = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    previous = (this_month - timedelta(days=1)).replace(day=1)
    return previous, this_month


def measure_summary(*, port: int, key: str, org_pk: int, meter: str, events: int, args: argparse.Namespace) -> dict:
    from bench.ingest_history import events_load, events_totals

    month_start, month_end = last_complete_month(datetime.now(UTC))
    pk = meter_pk(meter)
    log(f"summary: bulk-loading {events:,} events for {SUMMARY_CUSTOMER} over {month_start:%Y-%m}")
    load = events_load(organization_id=org_pk, meter_id=pk, customer=SUMMARY_CUSTOMER, events=events,
                       month_start=month_start, month_end=month_end, progress=lambda msg: log(f"  {msg}"))
    log(f"  loaded in {load['seconds']} s")
    edge = timedelta(minutes=17)
    windows = {"month": (month_start, month_end),
               "month, :17 edges": (month_start + edge, month_end - timedelta(hours=1) + edge)}
    expected = {label: events_totals(meter_id=pk, customer=SUMMARY_CUSTOMER, start=a, end=b)
                for label, (a, b) in windows.items()}
    log(f"summary reads: {args.reads} whole-month, {args.edge_reads} with :17 edges (after warm-up)")
    reads = summary_reads(port=port, key=key, meter=meter, windows=windows, expected=expected,
                          requests={"month": args.reads, "month, :17 edges": args.edge_reads}, warmup=20)
    rows = {}
    for label, (a, b) in windows.items():
        answer = reads["answers"][label]
        count, total = expected[label]
        rows[label] = {"periodStart": rfc(a), "periodEnd": rfc(b), "requests": len(reads["latencies"][label]),
                       **latency_summary(reads["latencies"][label]),
                       "eventCount": answer["eventCount"], "value": answer["value"],
                       "expected_eventCount": count, "expected_value": total,
                       "exact": not reads["wrong"][label], "wrong_sample": reads["wrong"][label]}
    p50 = rows["month"]["p50_ms"]
    return {"customer": SUMMARY_CUSTOMER, "meter": meter, "load": load, "windows": rows,
            "month_eventCount_is_loaded": rows["month"]["eventCount"] == events,
            "target_p50_ms": TARGET_SUMMARY_P50_MS,
            "p50_target_met": p50 is not None and p50 <= TARGET_SUMMARY_P50_MS}


# --- report -------------------------------------------------------------------------------------------

def render(results: dict) -> str:
    meta = results["meta"]
    lines = ["", f"Tally ingest bench — {meta['started_at']}  ({meta['cpus']} CPUs, {meta['threads']} client threads "
             f"per side, {meta['seconds']:g} s per side after {meta['warmup']:g} s warm-up, API/raw interleaved in "
             f"{meta['slice']:g} s slices, gunicorn {meta['workers']} sync workers, CONN_MAX_AGE=60)",
             f"{BATCH} events per request/statement over {meta['customers']} customers, timestamps in the last "
             f"{meta['spread_hours']:g} h, idempotency keys {'on' if meta['keys'] else 'OFF'}", ""]
    header = (f"{'side':<30}{'batches':>8}{'events':>9}{'events/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
              f"   CPU ms per 1k events: client gunicorn postgres other   busy")
    lines += [header, "-" * len(header)]
    for label, key in (("POST /meter-events (API)", "api"), ("raw multi-row INSERT", "raw")):
        run = results["ingest"][key]
        bad = run["errors"]  # transport errors, non-201 answers, failed statements (warm-up included)
        cpu = run["cpu_ms_per_1k_events"]
        busy = f"{run['machine_busy'] * 100:5.0f}%" if run["machine_busy"] is not None else "    -"
        lines.append(f"{label:<30}{run['batches']:>8}{run['events']:>9}{run['events_per_s']:>10.0f}"
                     f"{fmt(run['batch_p50_ms'], 8, 1)}{fmt(run['batch_p99_ms'], 8, 1)}{bad:>7}"
                     f"{'':>27}{fmt(cpu.get('client'), 7, 0)}{fmt(cpu.get('gunicorn'), 9, 0)}"
                     f"{fmt(cpu.get('postgres'), 9, 0)}{fmt(cpu.get('other'), 6, 0)}  {busy}")
    value = results["ingest"]["ratio"]
    verdict = "met" if value is not None and value >= TARGET_RATIO else "MISSED"
    lines += ["", f"API / raw events/s: {value}  (target ≥ {TARGET_RATIO}: {verdict})"]
    lines.append(f"CPU cost ratio (raw CPU per event / API CPU per event, ours only): "
                 f"{results['ingest']['cpu_cost_ratio']}")
    for key in ("api", "raw"):
        run = results["ingest"][key]
        other, busy = run["cpu_seconds"].get("other"), run["cpu_seconds"]
        total = sum(busy.values())
        if other is not None and total and other / total > 0.1:
            lines.append(f"WARNING: {other / total:.0%} of the busy CPU time in the {key} slices went to other "
                         f"processes (a shared machine is not quiet): events/s figures are depressed, unevenly")
    c = results["checks"]
    stored_ok = c["api_rows_eq_100x201"] and c["api_rows_eq_created"]
    rollups_ok = c["rollup_count_exact"] and c["rollup_sum_exact"] and not c["bucket_mismatches"]
    lines.append(f"rows stored = 100 × 201s = created : {'yes' if stored_ok else 'NO'}"
                 f" ({c['api_rows']:,} rows, {c['api_201_batches']:,} × 201, {c['api_created_reported']:,} created)")
    lines.append(f"rollups exact                      : {'yes' if rollups_ok else 'NO'}"
                 f" (Σ event_count {c['rollup_event_count']:,}, Σ value_sum {c['rollup_value_sum']:,} = events "
                 f"{c['events_value_sum']:,} = sent {c['client_value_sum']:,}; {c['buckets_compared']:,} buckets, "
                 f"{c['bucket_mismatches']} differ)")
    lines.append(f"raw rows = 100 × statements        : {'yes' if c['raw_rows_eq_100xstatements'] else 'NO'}"
                 f" ({c['raw_rows']:,} rows, {c['raw_statements']:,} statements)")
    summary = results.get("summary")
    if summary:
        load = summary["load"]
        lines += ["", f"summary: {load['events']:,} events for one customer in one month, bulk-loaded in "
                  f"{load['seconds']} s ({load['rollups']} hourly rollups)", ""]
        header = (f"{'GET /meter-events/summary':<28}{'requests':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
                  f"{'eventCount':>12}  exact")
        lines += [header, "-" * len(header)]
        for label, row in summary["windows"].items():
            lines.append(f"{label:<28}{row['requests']:>9}{fmt(row['p50_ms'], 9, 2)}{fmt(row['p90_ms'], 9, 2)}"
                         f"{fmt(row['p99_ms'], 9, 2)}{row['eventCount']:>12,}  "
                         + ("yes" if row["exact"] else f"NO (expected count {row['expected_eventCount']:,}, "
                            f"value {row['expected_value']:,}; got {row['eventCount']:,}, {row['value']:,})"))
        month = summary["windows"]["month"]
        lines.append(f"summary p50 (whole month): {month['p50_ms']} ms  (target ≤ {TARGET_SUMMARY_P50_MS:g} ms: "
                     f"{'met' if summary['p50_target_met'] else 'MISSED'})")
    lines.append("")
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per side (default 10)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds per side (default 2)")
    parser.add_argument("--slice", type=float, default=1.0,
                        help="interleave API and raw in slices of this many seconds (0: one slice each)")
    parser.add_argument("--threads", type=int, default=8, help="client threads per side (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument("--customers", type=int, default=100, help="customers the events spread over (default 100)")
    parser.add_argument("--spread-hours", type=float, default=72.0,
                        help="event timestamps uniformly within this many hours before now (default 72)")
    parser.add_argument("--no-keys", action="store_true", help="send events without idempotency keys")
    parser.add_argument("--summary-events", type=int, default=None,
                        help="events bulk-loaded for the summary customer (default 1,000,000)")
    parser.add_argument("--reads", type=int, default=None, help="timed whole-month summary reads (default 300)")
    parser.add_argument("--edge-reads", type=int, default=None,
                        help="timed summary reads with :17 bounds (default 50)")
    parser.add_argument("--skip-summary", action="store_true", help="ingest only")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 s per side, 1 s warm-up, 100k summary events, 100 reads")
    parser.add_argument("--app", default="billing_project.wsgi:application", help="WSGI app for gunicorn")
    parser.add_argument("--output", type=Path, default=RESULTS / "ingest.json")
    args = parser.parse_args()
    defaults = ({"seconds": 3.0, "warmup": 1.0, "summary_events": 100_000, "reads": 100, "edge_reads": 20}
                if args.quick else
                {"seconds": 10.0, "warmup": 2.0, "summary_events": 1_000_000, "reads": 300, "edge_reads": 50})
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def run(args: argparse.Namespace) -> int:
    import psycopg

    RESULTS.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    stamp = datetime.now(UTC)
    org_slug = f"ingest-{stamp:%Y%m%d%H%M%S}"
    log("migrating")
    manage("migrate", "--no-input", "-v", "0")
    django_setup()
    org_pk, key = prepare(org_slug)
    url = os.environ["DATABASE_URL"]
    results: dict = {"meta": {
        "started_at": stamp.isoformat(timespec="seconds"), "cpus": os.cpu_count(), "python": platform.python_version(),
        "threads": args.threads, "seconds": args.seconds, "warmup": args.warmup, "slice": args.slice,
        "workers": args.workers, "customers": args.customers, "spread_hours": args.spread_hours,
        "keys": not args.no_keys, "batch": BATCH, "organization": org_slug,
        "server": "gunicorn sync, CONN_MAX_AGE=60", "app": args.app, "quick": args.quick,
        "targets": {"api_raw_ratio_min": TARGET_RATIO, "summary_p50_ms_max": TARGET_SUMMARY_P50_MS},
    }}

    server = Gunicorn(app=args.app, workers=args.workers, log_path=RESULTS / "gunicorn-ingest.log")
    raw_conns: list = []
    try:
        log(f"starting gunicorn on {HOST}:{server.port}")
        server.start()
        tag = secrets.token_hex(3)
        api_meter = meter_create(server.port, key, "Ingest bench (API)", f"bench.ingest.api.{tag}")
        raw_meter = meter_create(server.port, key, "Ingest bench (raw)", f"bench.ingest.raw.{tag}")
        summary_meter = meter_create(server.port, key, "Ingest bench (summary)", f"bench.ingest.summary.{tag}")
        raw_conns = [psycopg.connect(url, autocommit=True) for _ in range(args.threads)]
        ctx = Context(port=server.port, key=key, org_pk=org_pk, api_meter=api_meter, raw_meter=raw_meter,
                      raw_meter_pk=meter_pk(raw_meter), tag=tag, customers=args.customers,
                      spread_hours=args.spread_hours, keys=not args.no_keys, raw_conns=raw_conns)
        probe = CpuProbe(gunicorn_pid=server.process.pid, postmaster_pid=postmaster_pid(url))
        api, raw = measure_ingest(ctx, args, probe)
        for stats in (api, raw):
            s = stats.summary()
            log(f"  {stats.name}: {s['events']:,} events in {s['seconds']} s = {s['events_per_s']:,.0f} events/s, "
                f"batch p50 {s['batch_p50_ms']} ms, p99 {s['batch_p99_ms']} ms, CPU ms/1k events "
                f"{s['cpu_ms_per_1k_events']}, machine busy {s['machine_busy']}")
        value = ratio(api.events_per_s, raw.events_per_s)
        results["ingest"] = {"api": api.summary(), "raw": raw.summary(), "ratio": value, "target_ratio": TARGET_RATIO,
                             "ratio_target_met": value is not None and value >= TARGET_RATIO,
                             "cpu_cost_ratio": cpu_cost_ratio(api, raw)}
        log("checking stored rows and rollups")
        results["checks"] = ingest_checks(api=api, raw=raw, api_meter_pk=meter_pk(api_meter),
                                          raw_meter_pk=ctx.raw_meter_pk)
        for conn in raw_conns:
            conn.close()
        raw_conns = []
        if not args.skip_summary:
            results["summary"] = measure_summary(port=server.port, key=key, org_pk=org_pk, meter=summary_meter,
                                                 events=args.summary_events, args=args)
    finally:
        for conn in raw_conns:
            conn.close()
        server.stop()

    results["meta"]["runtime_seconds"] = round(time.perf_counter() - began, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(render(results), flush=True)
    log(f"wrote {args.output} ({results['meta']['runtime_seconds']} s)")
    summary = results.get("summary")
    ok = results["checks"]["exact"] and (summary is None or (
        summary["month_eventCount_is_loaded"] and all(row["exact"] for row in summary["windows"].values())))
    return 0 if ok else 1


def main() -> int:
    args = parse_args()
    if not os.environ.get("DATABASE_URL"):
        reexec_under_stack(__file__)

    def terminate(signum, _frame):
        raise SystemExit(128 + signum)  # unwinds through run()'s finally: gunicorn is stopped

    signal.signal(signal.SIGTERM, terminate)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
