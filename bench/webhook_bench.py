#!/usr/bin/env python
"""Webhook delivery benchmark: deliveries/s to a local receiver and p95 from event commit to first attempt,
beside a baseline of the same receiver hit directly.

  .venv/bin/python bench/webhook_bench.py [--events 4000] [--paced-seconds 10] [--rate 500] [--producers 4]

Without DATABASE_URL the script re-executes itself under ``scripts/stack.py exec`` (throwaway embedded
PostgreSQL + Redis). Steps:
1. ``manage.py migrate``; an organization and one enabled endpoint pointing at the receiver.
2. The receiver: ``bench/webhook_receiver.py`` (asyncio, minimal HTTP/1.1 keep-alive, answers 200, verifies the
   signature of one request in 20) in its own process; its counts are reported (``receiver_*``).
3. Baseline: the receiver hit directly with the same signed body, 16 threads over one pooled httpx client.
4. Backlog (delivery capacity): ``--events`` events committed (one transaction each) before any worker runs;
   then a real Celery worker (prefork, concurrency 2, as the Procfile) starts and drains them: deliveries/s =
   events / (last first attempt − first fan-out). This is the figure for the ≥ 500/s target: it measures Tally,
   not how fast this one process can commit events.
5. Burst (live): ``--events`` more committed as fast as ``--producers`` threads (default 4) can while the worker
   runs; deliveries/s = events / (last first-attempt − first commit), bounded by the production rate (reported
   beside it), and commit → first attempt p50/p95.
6. Paced: ``--rate`` events/s (spread over the producer threads) for ``--paced-seconds``; commit → first
   attempt p50/p95 (attempt time = when its answer was recorded, so the HTTP round trip is included).
Targets (reported, not asserted): ≥ 500 deliveries/s, p95 < 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"


def log(message: str) -> None:
    print(f"[webhook-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DJANGO_SETTINGS_MODULE": "billing_project.settings", "LOG_LEVEL": "WARNING",
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)})
    return env


def start(command: list[str], log_path: Path) -> subprocess.Popen:
    handle = log_path.open("w")
    return subprocess.Popen(command, env=child_env(), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=handle,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    except ProcessLookupError:
        pass


def baseline(url: str, body: bytes, headers: dict[str, str], n: int) -> float:
    import httpx

    client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=32, max_keepalive_connections=32))
    started = time.monotonic()
    def one(_i: int) -> int:
        try:
            return client.post(url, content=body, headers=headers).status_code
        except httpx.HTTPError:
            return 0

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(one, range(n)))
    elapsed = time.monotonic() - started
    if statuses.count(200) != n:
        log(f"baseline: {n - statuses.count(200)} of {n} requests failed")
    client.close()
    return n / elapsed


def receiver_stats(url: str) -> dict:
    import httpx

    stats = httpx.get(url.rsplit("/", 1)[0] + "/stats", timeout=5).json()
    return {"receiver_requests": stats["requests"], "receiver_signatures_verified": stats["verified"],
            "receiver_bad_signatures": stats["bad_signatures"]}


def wait_delivered(count: int, *, timeout: float) -> None:
    from webhooks.models import Delivery

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = Delivery.objects.filter(status=Delivery.STATUS_SUCCEEDED).count()
        if done >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"only {done} of {count} deliveries succeeded within {timeout:.0f} s")


def latencies(event_ids: list[int]) -> tuple[list[float], datetime, datetime]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT e.created_at, min(a.created_at) FROM webhooks_billingevent e
            JOIN webhooks_delivery d ON d.event_id = e.id JOIN webhooks_deliveryattempt a ON a.delivery_id = d.id
            WHERE e.id = ANY(%s) GROUP BY e.id, e.created_at""", [event_ids])
        rows = cursor.fetchall()
    assert len(rows) == len(event_ids), (len(rows), len(event_ids))
    return ([(first - created).total_seconds() for created, first in rows], min(r[0] for r in rows),
            max(r[1] for r in rows))


def drain_seconds(event_ids: list[int]) -> float:
    """From the first delivery's creation (fan-out) to the last first attempt of these events."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT min(d.created_at), max(a.created_at) FROM webhooks_delivery d
            JOIN webhooks_deliveryattempt a ON a.delivery_id = d.id AND a.number = 1
            WHERE d.event_id = ANY(%s)""", [event_ids])
        first, last = cursor.fetchone()
    return (last - first).total_seconds()


def publish(org, i: int) -> int:
    from django.db import transaction

    from webhooks import services

    with transaction.atomic():
        return services.event_publish(organization=org, type="balance_transaction.created",
                                      object_type="balance_transaction", object_id=f"txn_bench_{i}",
                                      customer_id="bench/alice", data={"amount": 100, "currency": "usd", "i": i}).pk


def publish_parallel(org, numbers: range, producers: int, rate: float | None = None) -> list[int]:
    """Commit one event per number from ``producers`` threads (each its own connection), as fast as they can
    or, with ``rate``, the n-th event at n / rate seconds from the start."""
    from django.db import connection

    began = time.monotonic()

    def run(part: range) -> list[int]:
        ids = []
        try:
            for i in part:
                delay = began + (i - numbers.start) / rate - time.monotonic() if rate else 0
                if delay > 0:
                    time.sleep(delay)
                ids.append(publish(org, i))
            return ids
        finally:
            connection.close()

    parts = [numbers[k::producers] for k in range(producers)]
    with ThreadPoolExecutor(max_workers=producers) as pool:
        return [pk for ids in pool.map(run, parts) for pk in ids]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(args, org, endpoint, procs: dict) -> dict:
    from webhooks import signing

    body = json.dumps({"id": "evt_x", "type": "balance_transaction.created", "data": {"amount": 100}}).encode()
    headers = {"Content-Type": "application/json", signing.HEADER: signing.signature_header(
        secrets=[endpoint.secret], timestamp=int(time.time()), payload=body)}
    base_rps = baseline(endpoint.url, body, headers, args.events)
    log(f"baseline: {base_rps:.0f} req/s straight to the receiver")

    log(f"backlog: {args.events} events committed with no worker running")
    backlog = publish_parallel(org, range(args.events), args.producers)
    procs["worker"] = start([sys.executable, "-m", "celery", "-A", "billing_project", "worker", "--pool=prefork",
                             "--concurrency=2", "--loglevel=WARNING"], RESULTS / "webhook_worker.log")
    wait_delivered(args.events, timeout=300)
    backlog_rate = args.events / drain_seconds(backlog)
    log(f"backlog: drained at {backlog_rate:.0f} deliveries/s")

    log(f"burst: {args.events} events, one transaction each from {args.producers} threads, worker running")
    t0 = time.monotonic()
    burst = publish_parallel(org, range(args.events, 2 * args.events), args.producers)
    produce_s = time.monotonic() - t0
    wait_delivered(2 * args.events, timeout=300)
    lat, first_commit, last_attempt = latencies(burst)
    burst_rate = args.events / (last_attempt - first_commit).total_seconds()
    log(f"burst: produced in {produce_s:.1f} s; {burst_rate:.0f} deliveries/s; p95 {pct(lat, 95):.2f} s")

    n = int(args.rate * args.paced_seconds)
    log(f"paced: {args.rate}/s for {args.paced_seconds} s ({n} events)")
    paced = publish_parallel(org, range(2 * args.events, 2 * args.events + n), args.producers, rate=args.rate)
    wait_delivered(2 * args.events + n, timeout=300)
    paced_lat, _f, _l = latencies(paced)
    return {
        "baseline_receiver_direct_rps": round(base_rps, 1),
        "backlog_events": args.events, "backlog_deliveries_per_second": round(backlog_rate, 1),
        "burst_events": args.events, "burst_produce_seconds": round(produce_s, 2),
        "burst_deliveries_per_second": round(burst_rate, 1),
        "burst_commit_to_first_attempt_p50_s": round(pct(lat, 50), 3),
        "burst_commit_to_first_attempt_p95_s": round(pct(lat, 95), 3),
        "paced_rate_per_second": args.rate, "paced_events": n,
        "paced_commit_to_first_attempt_p50_s": round(pct(paced_lat, 50), 3),
        "paced_commit_to_first_attempt_p95_s": round(pct(paced_lat, 95), 3),
        "paced_commit_to_first_attempt_max_s": round(max(paced_lat), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=500, help="paced events/s (the target rate)")
    parser.add_argument("--paced-seconds", type=float, default=10)
    parser.add_argument("--producers", type=int, default=4, help="threads committing the live burst")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        os.execv(sys.executable, [sys.executable, str(ROOT / "scripts" / "stack.py"), "exec", "--",
                                  sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]])
    os.environ.update({k: v for k, v in child_env().items() if k not in os.environ or k == "DJANGO_SETTINGS_MODULE"})
    RESULTS.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], env=child_env(), check=True)
    import django

    django.setup()
    from billing_project.core.models import Organization
    from webhooks.services import endpoints

    port = free_port()
    org = Organization.objects.create(slug=f"bench-{int(time.time())}", name="Webhook bench")
    endpoint = endpoints.endpoint_create(organization=org, url=f"http://{HOST}:{port}/hook")
    receiver = start([sys.executable, str(ROOT / "bench" / "webhook_receiver.py"), str(port), endpoint.secret],
                     RESULTS / "webhook_receiver.log")
    procs: dict[str, subprocess.Popen] = {}
    try:
        time.sleep(1)
        result = measure(args, org, endpoint, procs)
        result.update(receiver_stats(endpoint.url))
    finally:
        stop(procs.get("worker"))
        stop(receiver)
    result.update({"when": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
                   "worker": "celery prefork ×2", "targets": {"deliveries_per_second": 500, "p95_seconds": 2}})
    (RESULTS / "webhooks.json").write_text(json.dumps(result, indent=2) + "\n")
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
