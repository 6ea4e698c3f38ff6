#!/usr/bin/env python
"""Where one renewal's time goes: SQL statements of one renewal (grouped) and a cProfile of one worker.

  .venv/bin/python bench/renewal_profile.py [--size 300] [--show-sql]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ledger_bench import reexec_under_stack  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--show-sql", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the renewal's SELECTs")
    parser.add_argument("--dump", default="", help="write the raw cProfile stats to this file")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        reexec_under_stack(__file__)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from billing_project.core import services as core_services
    from billing_project.core.models import Organization
    from ledger.services import credits as credit_services
    from subscriptions import periods
    from subscriptions.models import Subscription
    from subscriptions.services import plans as plan_services
    from subscriptions.services import renewals, sweeps
    from subscriptions.services.render import plan_snapshot

    call_command("migrate", verbosity=0)
    organization = Organization.objects.create(slug=f"rp-{time.time_ns()}", name="Renewal profile")
    plan = plan_services.plan_create(organization=organization, name="Pro", price=4_900)
    customers = []
    for i in range(args.customers):
        customer = core_services.customer_ensure(organization=organization, customer_id=f"rp/c{i}")
        credit_services.credit_grant_create(organization=organization, user=customer.customer_id, amount_cents=10**12)
        customers.append(customer)
    now = timezone.now()
    start = periods.add_months(now - timedelta(seconds=1), -1)
    Subscription.objects.bulk_create([
        Subscription(organization=organization, customer=customers[k % len(customers)], plan=plan,
                     plan_snapshot=plan_snapshot(plan), started_at=start, current_period_start=start,
                     current_period_end=now - timedelta(seconds=1), anchor_day=start.day, segment_start=start)
        for k in range(args.size)])
    with connections['default'].cursor() as cursor:  # bulk rows: analyzed, as autovacuum would have
        cursor.execute("ANALYZE")
    pks = sweeps.subscriptions_claim(now=now, limit=args.size)
    # warm-up: first renewal of each customer resolves/creates accounts
    for pk in pks[:args.customers]:
        renewals.subscription_due_process(subscription_pk=pk, now=now)
    with CaptureQueriesContext(connection) as ctx:
        status = renewals.subscription_due_process(subscription_pk=pks[args.customers], now=now)
    print(f"one renewal ({status}): {len(ctx.captured_queries)} SQL statements")
    kinds = Counter()
    for q in ctx.captured_queries:
        sql = q["sql"]
        key = " ".join(sql.split()[:3])[:60]
        found = re.search(r' FROM "?(\w+)"?', sql)
        if sql.startswith("SELECT") and found:
            key = "SELECT " + found.group(1) + (" FOR UPDATE" if "FOR UPDATE" in sql else "")
        kinds[key] += 1
        if args.show_sql:
            print("   ", sql[:300])
    for key, n in kinds.most_common():
        print(f"  {n:3d}  {key}")
    if args.explain:
        with connection.cursor() as cursor:
            for q in ctx.captured_queries:
                if q["sql"].lstrip().startswith("SELECT"):
                    cursor.execute("EXPLAIN ANALYZE " + q["sql"])
                    print("  ", q["sql"][:150], "\n      ", "\n       ".join(r[0] for r in cursor.fetchall()))
    rest = pks[args.customers + 1:]
    timed: dict[str, list[float]] = {}

    def timer(execute, sql, params, many, context):
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = " ".join(sql.split()[:3])[:50]
            found = re.search(r' FROM "?(\w+)"?', sql)
            if sql.lstrip().startswith("SELECT") and found:
                key = "SELECT " + found.group(1) + (" FOR UPDATE" if "FOR UPDATE" in sql else "")
            if key.startswith(("SAVEPOINT", "RELEASE")):
                key = key.split('"')[0]
            timed.setdefault(key, []).append(time.perf_counter() - t)

    half = len(rest) // 2
    t0 = time.perf_counter()
    with connection.execute_wrapper(timer):
        for pk in rest[:half]:
            renewals.subscription_due_process(subscription_pk=pk, now=now)
    elapsed = time.perf_counter() - t0
    total_sql = sum(sum(v) for v in timed.values())
    print(f"unprofiled: {half} renewals in {elapsed:.2f} s = {half / elapsed:.1f}/s; "
          f"SQL wall {total_sql / half * 1000:.1f} ms per renewal of {elapsed / half * 1000:.1f}")
    for key, values in sorted(timed.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {sum(values) / half * 1000:6.2f} ms/renewal  {len(values) / half:4.1f}x  {key}")
    rest = rest[half:]
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for pk in rest:
        renewals.subscription_due_process(subscription_pk=pk, now=now)
    prof.disable()
    elapsed = time.perf_counter() - t0
    print(f"one worker: {len(rest)} renewals in {elapsed:.2f} s = {len(rest) / elapsed:.1f}/s")
    if args.dump:
        prof.dump_stats(args.dump)
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
