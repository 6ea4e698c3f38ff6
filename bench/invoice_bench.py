#!/usr/bin/env python
"""Invoice lifecycle throughput, in-process (services, real PostgreSQL, no HTTP).

  .venv/bin/python bench/invoice_bench.py [--threads 8] [--seconds 10] [--drafts 2000]

1. Lifecycle: ``--threads`` threads for ``--seconds`` each loop create (3 lines) → finalize → pay, for 100
   customers of one organization funded with a credit grant and a deposit (so every pay burns credits and
   withdraws deposits). Prints invoices/s and the p50/p99 of each step.
2. Finalization only, the cost of gap-free numbers: ``--drafts`` drafts finalized by ``--threads`` threads,
   (a) all in ONE organization (every finalization takes the same sequence row lock until it commits) and
   (b) spread over as many organizations as threads. Prints finalizations/s of both and their ratio.
After each part: numbers are 1…N without gaps per organization and ``ledger_audit`` is clean.
Re-runs itself under ``scripts/stack.py exec`` when no DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ledger_bench import reexec_under_stack  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--drafts", type=int, default=2000)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        reexec_under_stack(__file__)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    os.environ.setdefault("CONN_MAX_AGE", "60")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from billing_project.core.models import Organization
    from invoicing.models import Invoice
    from invoicing.services import invoices as svc
    from invoicing.services.invoice_lines import LineInput
    from ledger import selectors
    from ledger import services as ledger_services
    from ledger.services import credits as credit_services

    call_command("migrate", verbosity=0)
    stamp = int(time.time())

    def org(name: str) -> Organization:
        return Organization.objects.create(slug=f"ib-{name}-{stamp}", name=f"Invoice bench {name}")

    def run_threads(worker) -> list:
        barrier = threading.Barrier(args.threads)

        def wrapped(i):
            try:
                barrier.wait()
                return worker(i)
            finally:
                connections.close_all()

        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            return list(pool.map(wrapped, range(args.threads)))

    def check_numbers(organization: Organization) -> bool:
        numbers = sorted(Invoice.objects.filter(organization=organization, number__isnull=False)
                         .values_list("number", flat=True))
        return numbers == list(range(1, len(numbers) + 1))

    # 1. lifecycle -------------------------------------------------------------------------------------
    lifecycle_org = org("lifecycle")
    customers = [f"bench/c{i}" for i in range(100)]
    for customer in customers:
        credit_services.credit_grant_create(organization=lifecycle_org, user=customer, amount_cents=10**9 // 2)
        ledger_services.deposit_create(organization=lifecycle_org, user=customer, amount=10**12, currency="usd")
    lines = [LineInput(description="Pro plan", amount=4_900), LineInput(description="Seats", quantity=3,
                                                                        unit_price=1_500),
             LineInput(description="API calls", amount=1_234, meter_id="mtr_bench")]
    deadline = time.perf_counter() + args.seconds

    def lifecycle(i: int) -> dict[str, list[float]]:
        timings: dict[str, list[float]] = {"create": [], "finalize": [], "pay": []}
        n = 0
        while time.perf_counter() < deadline:
            customer = customers[(i * 13 + n) % len(customers)]
            n += 1
            t0 = time.perf_counter()
            invoice = svc.invoice_create(organization=lifecycle_org, customer=customer, lines=lines)
            t1 = time.perf_counter()
            svc.invoice_finalize(organization=lifecycle_org, invoice_id=invoice.public_id)
            t2 = time.perf_counter()
            _, result = svc.invoice_pay(organization=lifecycle_org, invoice_id=invoice.public_id)
            t3 = time.perf_counter()
            assert result.success, result
            timings["create"].append(t1 - t0)
            timings["finalize"].append(t2 - t1)
            timings["pay"].append(t3 - t2)
        return timings

    started = time.perf_counter()
    per_thread = run_threads(lifecycle)
    elapsed = time.perf_counter() - started
    merged = {k: [x for t in per_thread for x in t[k]] for k in ("create", "finalize", "pay")}
    done = len(merged["pay"])
    print(f"lifecycle: {args.threads} threads, {elapsed:.1f} s: {done} invoices created, finalized and paid "
          f"= {done / elapsed:.1f} invoices/s")
    for step, values in merged.items():
        p50, p99 = statistics.median(values) * 1000, percentile(values, 0.99) * 1000
        print(f"  {step:9s} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    print(f"  gap-free numbers: {check_numbers(lifecycle_org)}; "
          f"paid: {Invoice.objects.filter(organization=lifecycle_org, status='paid').count()}")

    # 2. finalization: one organization vs spread -------------------------------------------------------
    def finalize_run(orgs: list[Organization]) -> float:
        per_org = args.drafts // len(orgs)
        drafts = []
        for organization in orgs:
            for k in range(per_org):
                drafts.append((organization, svc.invoice_create(
                    organization=organization, customer=f"f{k % 50}",
                    lines=[LineInput(description="x", amount=1_000 + k)]).public_id))
        # thread i takes the drafts of organization i (spread) or every threads-th draft (one org)
        chunks = [drafts[i::args.threads] for i in range(args.threads)] if len(orgs) == 1 else \
            [[d for d in drafts if d[0] == orgs[i]] for i in range(args.threads)]
        t0 = time.perf_counter()
        run_threads(lambda i: [svc.invoice_finalize(organization=o, invoice_id=d) for o, d in chunks[i]])
        rate = len(drafts) / (time.perf_counter() - t0)
        assert all(check_numbers(o) for o in orgs)
        return rate

    one = finalize_run([org("one")])
    spread = finalize_run([org(f"spread{i}") for i in range(args.threads)])
    print(f"finalize, {args.drafts} drafts, {args.threads} threads: one organization {one:.0f}/s, "
          f"{args.threads} organizations {spread:.0f}/s, ratio one/spread {one / spread:.2f}")
    audit = selectors.ledger_audit()
    print(f"ledger_audit: {'clean' if audit.ok else audit.drift[:3] + audit.imbalances[:3]}")


if __name__ == "__main__":
    main()
