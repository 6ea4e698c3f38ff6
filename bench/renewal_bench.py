#!/usr/bin/env python
"""Renewal throughput, in-process (services, real PostgreSQL, no HTTP).

  .venv/bin/python bench/renewal_bench.py [--workers 2] [--mode process|thread] [--sizes 10000 20000]
                                          [--customers 500]

For each size N: N subscriptions whose period ended a second ago (rows written in bulk, spread over
``--customers`` customers funded with one large credit grant each), then ``--workers`` workers each run
the sweeper loop (claim a batch with ``FOR UPDATE SKIP LOCKED``, renew each: draft → finalize → collect →
advance). Prints invoices/s per size and the time ratio of the largest to the smallest size (linear = the
size ratio), then sweeps again and shows 0 new invoices; checks one invoice per (subscription, period),
gap-free numbers and a clean ``ledger_audit``. Re-runs itself under ``scripts/stack.py exec`` when no
DATABASE_URL is set.

``--mode process`` (default) runs each worker as its own OS process (``spawn``: a fresh interpreter that
calls ``django.setup()`` and opens its own DB connection), as production's Celery prefork pool does
(``CELERY_CONCURRENCY=2``); the processes are started and set up before the clock starts and released
together. ``--mode thread`` runs the workers as threads of this process (they share one GIL).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ledger_bench import reexec_under_stack  # noqa: E402


def sweeper_loop(now) -> int:
    """One worker: claim a batch with SKIP LOCKED, renew each, until nothing is due (Django set up)."""
    from django.db import connections

    from subscriptions.services import renewals, sweeps

    done = 0
    try:
        while pks := sweeps.subscriptions_claim(now=now, limit=100):
            for pk in pks:
                renewals.subscription_due_process(subscription_pk=pk, now=now)
                done += 1
    finally:
        connections.close_all()
    return done


def process_worker(now, barrier, results) -> None:
    """Entry point of a spawned worker process: set Django up, wait for the start signal, sweep."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    os.environ.setdefault("CONN_MAX_AGE", "60")
    import django

    django.setup()
    from django.db import connection

    connection.ensure_connection()  # connect before the clock starts, as a long-lived worker would be
    barrier.wait()
    try:
        results.put(sweeper_loop(now))
    except BaseException as exc:
        results.put(exc)
        raise


def sweep_processes(now, workers: int) -> tuple[int, float]:
    """``workers`` spawned processes sweep; returns (renewed, seconds from release to last exit)."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers + 1)
    results = context.Queue()
    procs = [context.Process(target=process_worker, args=(now, barrier, results)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=300)  # raises BrokenBarrierError if a worker died during its set-up
    t0 = time.perf_counter()
    outcomes = [results.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    for proc in procs:
        proc.join()
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if failures or any(proc.exitcode for proc in procs):
        raise RuntimeError(f"worker process failed: {failures or [p.exitcode for p in procs]}")
    return sum(outcomes), elapsed


def sweep_threads(now, workers: int) -> tuple[int, float]:
    """``workers`` threads of this process sweep; returns (renewed, seconds)."""
    barrier = threading.Barrier(workers + 1)

    def wrapped(_i: int) -> int:
        barrier.wait()
        return sweeper_loop(now)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(wrapped, i) for i in range(workers)]
        barrier.wait()
        t0 = time.perf_counter()
        renewed = sum(f.result() for f in futures)
        return renewed, time.perf_counter() - t0


def main() -> None:  # noqa: PLR0915 — a linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mode", choices=("process", "thread"), default="process",
                        help="workers as separate processes (as the Celery prefork pool) or threads")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000])
    parser.add_argument("--customers", type=int, default=500)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        reexec_under_stack(__file__)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    os.environ.setdefault("CONN_MAX_AGE", "60")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone

    from billing_project.core import services as core_services
    from billing_project.core.models import Organization
    from invoicing.models import Invoice
    from ledger import selectors as ledger_selectors
    from ledger.services import credits as credit_services
    from subscriptions import periods
    from subscriptions.models import Renewal, Subscription
    from subscriptions.services import plans as plan_services
    from subscriptions.services.render import plan_snapshot

    call_command("migrate", verbosity=0)
    stamp = int(time.time())

    def sweep_all(now) -> tuple[int, float]:
        connections.close_all()  # no connection shared with (or held across) the workers
        if args.mode == "process":
            return sweep_processes(now, args.workers)
        return sweep_threads(now, args.workers)

    timings = {}
    for size in args.sizes:
        organization = Organization.objects.create(slug=f"rb-{size}-{stamp}", name=f"Renewal bench {size}")
        plan = plan_services.plan_create(organization=organization, name="Pro", price=4_900)
        customers = []
        for i in range(args.customers):
            customer = core_services.customer_ensure(organization=organization, customer_id=f"rb/c{i}")
            credit_services.credit_grant_create(organization=organization, user=customer.customer_id,
                                                amount_cents=10**12)
            customers.append(customer)
        now = timezone.now()
        start = periods.add_months(now - timedelta(seconds=1), -1)
        Subscription.objects.bulk_create([
            Subscription(organization=organization, customer=customers[k % len(customers)], plan=plan,
                         plan_snapshot=plan_snapshot(plan), started_at=start, current_period_start=start,
                         current_period_end=now - timedelta(seconds=1), anchor_day=start.day, segment_start=start)
            for k in range(size)], batch_size=2000)
        with connections['default'].cursor() as cursor:  # bulk rows: analyzed, as autovacuum would have
            cursor.execute("ANALYZE")
        renewed, elapsed = sweep_all(now)
        timings[size] = elapsed
        invoices = Invoice.objects.filter(organization=organization).count()
        print(f"{size} due: {args.workers} {args.mode} workers renewed {renewed} in {elapsed:.1f} s = "
              f"{invoices / elapsed:.1f} invoices/s ({invoices} invoices, "
              f"{Invoice.objects.filter(organization=organization, status='paid').count()} paid)")
        again, _ = sweep_all(now)
        per_period = Counter(Renewal.objects.filter(subscription__organization=organization)
                             .values_list("subscription_id", "period_start"))
        numbers = sorted(Invoice.objects.filter(organization=organization).values_list("number", flat=True))
        print(f"  rerun: {again} processed, {Invoice.objects.filter(organization=organization).count() - invoices} "
              f"new invoices; one per period: {max(per_period.values()) == 1}; "
              f"gap-free numbers: {numbers == list(range(1, len(numbers) + 1))}")
    if len(timings) > 1:
        small, large = min(timings), max(timings)
        print(f"time ratio {large}/{small}: {timings[large] / timings[small]:.2f}× (size ratio {large / small:.1f}×)")
    print(f"ledger_audit ok: {ledger_selectors.ledger_audit().ok}")


if __name__ == "__main__":
    main()
