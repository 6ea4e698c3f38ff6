#!/usr/bin/env python
"""Ledger benchmark: POST /api/v1/billing/usage against a one-INSERT DRF baseline, and balance reads
at 1k vs 1M ledger entries, all over HTTP against gunicorn (2 sync workers, CONN_MAX_AGE=60).

  make bench
  .venv/bin/python scripts/stack.py exec -- .venv/bin/python bench/ledger_bench.py --seconds 5

Without DATABASE_URL the script re-executes itself under ``scripts/stack.py exec`` (throwaway embedded
PostgreSQL + Redis). Steps:
1. ``manage.py migrate``; an organization + admin API key (core services); the baseline table.
2. One gunicorn (``bench.settings``: the product's settings + the baseline route) on 127.0.0.1.
3. N client threads (one ``http.client`` connection each; gunicorn's sync workers close it after every
   response, so each request reconnects — alike for both endpoints) for a fixed time after a warm-up:
   usage on ONE hot user and spread over 100 users, and the baseline driven identically, the two
   endpoints interleaved in 1 s slices so that background load on a shared machine hits both alike.
4. Every user's balance (GET /balance) must be exactly −(its 201 responses); ``ledger_audit`` must be clean.
5. Balance-read latency for a user with 1k entries vs one with 1M (bulk-loaded, see bench/history.py).
6. A plain-text table on stdout and bench/results/ledger.json.
Targets (reported, not asserted): usage ≥ 0.6× baseline req/s; balance p50 1M/1k ≤ 1.2.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"
USAGE_PATH = "/api/v1/billing/usage"
BASELINE_PATH = "/api/v1/bench/baseline"
BALANCE_PATH = "/api/v1/billing/balance"
HOT_USER = "bench/hot"
SETTINGS = "bench.settings"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- process plumbing -------------------------------------------------------------------------------

def reexec_under_stack(script: str = __file__) -> None:
    """No DATABASE_URL: run ``script`` (default: this one) again inside ``scripts/stack.py exec`` (never
    returns)."""
    command = [sys.executable, str(ROOT / "scripts" / "stack.py"), "exec", "--",
               sys.executable, str(Path(script).resolve()), *sys.argv[1:]]
    log("DATABASE_URL is not set: re-running under scripts/stack.py exec")
    os.execv(sys.executable, command)


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DJANGO_SETTINGS_MODULE": SETTINGS, "CONN_MAX_AGE": "60", "DEBUG": "false",
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)})
    return env


def manage(*args: str) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=server_env(), cwd=ROOT,
                            check=True, text=True, stdout=subprocess.PIPE, timeout=600)
    return result.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Gunicorn:
    """gunicorn (sync workers) in its own process group, bound to 127.0.0.1; always stopped (``stop``)."""

    def __init__(self, *, app: str, workers: int, log_path: Path):
        self.app = app
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.workers = workers

    def start(self) -> None:
        command = [sys.executable, "-m", "gunicorn", self.app,
                   "--bind", f"{HOST}:{self.port}", "--workers", str(self.workers), "--worker-class", "sync",
                   "--timeout", "120", "--graceful-timeout", "5", "--log-level", "warning", "--chdir", str(ROOT)]
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(command, env=server_env(), cwd=ROOT, stdin=subprocess.DEVNULL,
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early (code {self.process.returncode}); see {self.log_path}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz within 60 s; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM to the whole group (master + workers), SIGKILL whatever is left after 15 s."""
        process = self.process
        if process is None:
            return
        try:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    pass
            os.killpg(process.pid, signal.SIGKILL)  # stragglers; ProcessLookupError when none are left
        except ProcessLookupError:
            pass
        finally:
            if process.poll() is None:
                process.wait(5)
            self._log.close()


def _die_with_parent() -> None:
    """In the gunicorn child before exec: SIGTERM it if this script dies abruptly (e.g. SIGKILL from
    ``stack.py exec`` after Ctrl-C), so no server outlives the bench. Linux only; best effort."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# --- load generation --------------------------------------------------------------------------------

@dataclass
class PhaseResult:
    name: str
    threads: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    created: Counter = field(default_factory=Counter)  # user -> 201 responses, warm-up included
    statuses: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    ambiguous_users: set[str] = field(default_factory=set)  # transport error mid-request: outcome unknown

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def merge(self, other: PhaseResult, *, measured: bool) -> None:
        """Add a slice's figures (a warm-up slice contributes only its postings and errors)."""
        self.created.update(other.created)
        self.errors.extend(other.errors)
        self.ambiguous_users |= other.ambiguous_users
        if measured:
            self.seconds += other.seconds
            self.latencies.extend(other.latencies)
            self.statuses.update(other.statuses)

    def summary(self) -> dict:
        return {"requests": self.requests, "seconds": round(self.seconds, 3), "req_per_s": round(self.rps, 1),
                **latency_summary(self.latencies), "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "transport_errors": len(self.errors), "errors_sample": self.errors[:5]}


def percentile_ms(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of latencies in seconds, in ms (None when there are none)."""
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return round(sorted_values[index] * 1000.0, 3)


def latency_summary(latencies: list[float]) -> dict:
    values = sorted(latencies)
    return {"p50_ms": percentile_ms(values, 0.50), "p90_ms": percentile_ms(values, 0.90),
            "p99_ms": percentile_ms(values, 0.99), "max_ms": percentile_ms(values, 1.0),
            "mean_ms": round(sum(values) / len(values) * 1000.0, 3) if values else None}


def fmt(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def drive(*, name: str, port: int, key: str, path: str, users: list[str], threads: int, warmup: float,
          seconds: float, cursor: Iterator[int] | None = None) -> PhaseResult:
    """``threads`` clients POST ``{"user", "amount": 1}`` as fast as they can for warmup + seconds.

    Users are taken round-robin from ``cursor`` (shared by all threads and, when passed in, by all the
    slices of a scenario), so a spread run touches every user evenly."""
    cursor = cursor if cursor is not None else itertools.count()
    result = PhaseResult(name=name, threads=threads)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Accept": "application/json"}
    barrier = threading.Barrier(threads + 1)
    lock = threading.Lock()
    window: dict[str, float] = {}
    last_done: list[float] = []

    def client(tid: int) -> None:
        latencies: list[float] = []
        created: Counter = Counter()
        statuses: Counter = Counter()
        errors: list[str] = []
        ambiguous: set[str] = set()
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        barrier.wait()
        warm_end, end = window["warm_end"], window["end"]
        finished = time.perf_counter()
        while finished < end:
            user = users[next(cursor) % len(users)]  # itertools.count: atomic under the GIL
            payload = json.dumps({"user": user, "amount": 1}).encode()
            started = time.perf_counter()
            try:
                conn.request("POST", path, payload, headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                ambiguous.add(user)
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
                finished = time.perf_counter()
                continue
            finished = time.perf_counter()
            if status == 201:
                created[user] += 1
            if started >= warm_end:
                latencies.append(finished - started)
                statuses[status] += 1
        conn.close()
        with lock:
            result.latencies.extend(latencies)
            result.created.update(created)
            result.statuses.update(statuses)
            result.errors.extend(errors)
            result.ambiguous_users |= ambiguous
            last_done.append(finished)

    workers = [threading.Thread(target=client, args=(tid,), name=f"{name}-{tid}", daemon=True)
               for tid in range(threads)]
    for worker in workers:
        worker.start()
    now = time.perf_counter()
    window["warm_end"], window["end"] = now + warmup, now + warmup + seconds
    barrier.wait()
    for worker in workers:
        worker.join(seconds + warmup + 180)
    if any(worker.is_alive() for worker in workers):
        raise RuntimeError(f"{name}: client threads did not stop")
    result.seconds = max(0.0, max(last_done) - window["warm_end"]) if seconds > 0 else 0.0
    return result


def measure_pair(*, scenario: str, port: int, key: str, users: list[str],
                 args: argparse.Namespace) -> tuple[PhaseResult, PhaseResult]:
    """Baseline and usage on the same users, interleaved in short slices (ABBA order) so that drifting
    background load on the shared machine hits both alike; one warm-up each first."""
    slices = max(1, round(args.seconds / args.slice)) if args.slice > 0 else 1
    length = args.seconds / slices
    log(f"scenario '{scenario}' ({len(users)} user{'s' if len(users) > 1 else ''}): {args.threads} threads, "
        f"{args.warmup:g} s warm-up each, then {slices} × {length:g} s slices per endpoint, interleaved")
    baseline = PhaseResult(name=f"baseline {scenario}", threads=args.threads)
    usage = PhaseResult(name=f"usage {scenario}", threads=args.threads)
    targets = {"baseline": (baseline, BASELINE_PATH), "usage": (usage, USAGE_PATH)}
    cursors = {path: itertools.count() for _result, path in targets.values()}
    for result, path in targets.values():
        warm = drive(name=result.name, port=port, key=key, path=path, users=users, threads=args.threads,
                     warmup=args.warmup, seconds=0, cursor=cursors[path])
        result.merge(warm, measured=False)
    for k in range(slices):
        for which in (("baseline", "usage") if k % 2 == 0 else ("usage", "baseline")):
            result, path = targets[which]
            part = drive(name=result.name, port=port, key=key, path=path, users=users, threads=args.threads,
                         warmup=0, seconds=length, cursor=cursors[path])
            result.merge(part, measured=True)
    return baseline, usage


def balance_reads(*, port: int, key: str, users: list[str], expected: dict[str, int], requests: int,
                  chunk: int = 100, warmup: int = 100) -> dict[str, list[float]]:
    """Sequential GET /balance; users interleaved in chunks so drifting machine load hits both alike."""
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    latencies: dict[str, list[float]] = {user: [] for user in users}

    def get(user: str) -> float:
        started = time.perf_counter()
        conn.request("GET", f"{BALANCE_PATH}?user={user}", headers=headers)
        response = conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"GET balance {user}: {response.status} {data[:200]!r}")
        balance = json.loads(data)["balance"]
        if balance != expected[user]:
            raise RuntimeError(f"GET balance {user}: {balance}, expected {expected[user]}")
        return elapsed

    try:
        for user in users:
            for _ in range(warmup):
                get(user)
        done = 0
        while done < requests:
            n = min(chunk, requests - done)
            for user in users:
                latencies[user].extend(get(user) for _ in range(n))
            done += n
    finally:
        conn.close()
    return latencies


def get_balances(*, port: int, key: str, users: list[str]) -> dict[str, int]:
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    out = {}
    try:
        for user in users:
            conn.request("GET", f"{BALANCE_PATH}?user={user}", headers=headers)
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"GET balance {user}: {response.status} {data[:200]!r}")
            out[user] = json.loads(data)["balance"]
    finally:
        conn.close()
    return out


# --- in-process Django (setup, bulk history, audit) ---------------------------------------------------

def django_setup() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    os.environ.setdefault("CONN_MAX_AGE", "60")
    # Run as a script, sys.path[0] is bench/ (its settings.py would shadow nothing, but be exact): use ROOT.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def prepare(org_slug: str) -> str:
    """An organization + admin API key (core services) and the baseline table; returns the secret."""
    from django.db import connection

    from bench.baseline import BASELINE_TABLE_SQL
    from billing_project.core import services as core_services

    organization = core_services.organization_get_or_create(slug=org_slug, name="Ledger bench")
    _key, secret = core_services.api_key_create(organization=organization, name="ledger bench")
    with connection.cursor() as cursor:
        cursor.execute(BASELINE_TABLE_SQL)
    return secret


def audit() -> dict:
    from ledger.selectors import ledger_audit

    started = time.perf_counter()
    report = ledger_audit()
    return {"clean": report.ok, "accounts_checked": report.accounts_checked, "drift": report.drift[:10],
            "imbalances": report.imbalances[:10], "seconds": round(time.perf_counter() - started, 2)}


def load_history(org_slug: str, user: str, transactions: int) -> dict:
    from bench.history import history_load
    from billing_project.core.models import Organization

    organization = Organization.objects.get(slug=org_slug)
    return history_load(organization=organization, user=user, transactions=transactions,
                        progress=lambda msg: log(f"  {user}: {msg}"))


# --- report -----------------------------------------------------------------------------------------

def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def render(results: dict) -> str:
    lines = []
    meta = results["meta"]
    lines.append("")
    lines.append(f"Tally ledger bench — {meta['started_at']}  ({meta['cpus']} CPUs, {meta['threads']} client threads, "
                 f"{meta['seconds']:g} s per run after {meta['warmup']:g} s warm-up, baseline/usage interleaved in "
                 f"{meta['slice']:g} s slices, gunicorn {meta['workers']} sync workers, CONN_MAX_AGE=60)")
    lines.append("")
    header = f"{'run':<26}{'requests':>10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-201':>9}{'errors':>8}"
    lines.append(header)
    lines.append("-" * len(header))
    for name, run in results["runs"].items():
        non201 = sum(v for k, v in run["statuses"].items() if k != "201")
        lines.append(f"{name:<26}{run['requests']:>10}{run['req_per_s']:>10.1f}{fmt(run['p50_ms'], 9, 2)}"
                     f"{fmt(run['p99_ms'], 9, 2)}{non201:>9}{run['transport_errors']:>8}")
    lines.append("")
    for scenario, value in results["ratios"].items():
        verdict = "" if value is None else ("  (target ≥ 0.6: met)" if value >= 0.6 else "  (target ≥ 0.6: MISSED)")
        lines.append(f"usage / baseline req/s, {scenario:<8}: {value}{verdict}")
    check = results["balance_check"]
    lines.append(f"balances exact (GET /balance == −201s) : {'yes' if check['exact'] else 'NO'} "
                 f"({check['users']} users, {check['users_with_postings']} with postings, "
                 f"{check['total_201']} usage postings)"
                 + ("" if check["exact"] else f"  mismatches: {check['mismatches'][:5]}"))
    after_load = results["audit_after_load"]
    lines.append(f"ledger_audit after load runs          : {'clean' if after_load['clean'] else 'DIRTY'}"
                 f" ({after_load['accounts_checked']} wallets)")
    reads = results.get("balance_reads")
    if reads:
        lines.append("")
        header = f"{'balance read':<26}{'entries':>10}{'load s':>10}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}"
        lines.append(header)
        lines.append("-" * len(header))
        for label, row in reads["users"].items():
            lines.append(f"{label:<26}{row['wallet_entries']:>10}{row['load_seconds']:>10.1f}"
                         f"{fmt(row['p50_ms'], 9, 3)}{fmt(row['p99_ms'], 9, 3)}{row['requests']:>10}")
        value = reads["p50_ratio_large_small"]
        verdict = "met" if value is not None and value <= 1.2 else "MISSED"
        lines.append(f"balance p50 ratio {reads['large_label']}/{reads['small_label']}: {value}"
                     f"  (target ≤ 1.2: {verdict}); p99 ratio {reads['p99_ratio_large_small']}")
        final = results["audit_final"]
        lines.append(f"ledger_audit after bulk load          : {'clean' if final['clean'] else 'DIRTY'} "
                     f"({final['accounts_checked']} wallets, {final['seconds']} s)"
                     + ("" if final["clean"] else f"  {final['drift'][:3]} {final['imbalances'][:3]}"))
    lines.append("")
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each run (default 2)")
    parser.add_argument("--slice", type=float, default=1.0,
                        help="interleave baseline and usage in slices of this many seconds (0: one slice each)")
    parser.add_argument("--threads", type=int, default=8, help="concurrent client threads (default 8)")
    parser.add_argument("--users", type=int, default=100, help="users in the spread run (default 100)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument("--reads", type=int, default=2000, help="sequential balance reads per user (default 2000)")
    parser.add_argument("--small-history", type=int, default=1_000, help="entries-history of the small user")
    parser.add_argument("--large-history", type=int, default=1_000_000, help="history of the large user")
    parser.add_argument("--skip-history", action="store_true", help="skip the 1k-vs-1M balance-read part")
    parser.add_argument("--app", default="billing_project.wsgi:application",
                        help="WSGI app for gunicorn (default: the product's; for trying a patched variant)")
    parser.add_argument("--output", type=Path, default=RESULTS / "ledger.json")
    return parser.parse_args()


def human(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else (
        f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n))


def run(args: argparse.Namespace) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC)
    org_slug = f"bench-{stamp:%Y%m%d%H%M%S}"
    log("migrating")
    manage("migrate", "--no-input", "-v", "0")
    django_setup()
    key = prepare(org_slug)
    results: dict = {"meta": {
        "started_at": stamp.isoformat(timespec="seconds"), "cpus": os.cpu_count(), "python": platform.python_version(),
        "threads": args.threads, "seconds": args.seconds, "warmup": args.warmup, "slice": args.slice,
        "workers": args.workers,
        "users_spread": args.users, "organization": org_slug, "server": "gunicorn sync, CONN_MAX_AGE=60",
        "app": args.app, "settings": SETTINGS,
    }, "runs": {}}

    server = Gunicorn(app=args.app, workers=args.workers, log_path=RESULTS / "gunicorn.log")
    try:
        log(f"starting gunicorn on {HOST}:{server.port}")
        server.start()
        spread_users = [f"bench/u{i}" for i in range(args.users)]
        phases: dict[str, PhaseResult] = {}
        for scenario, users in (("hot", [HOT_USER]), ("spread", spread_users)):
            pair = measure_pair(scenario=scenario, port=server.port, key=key, users=users, args=args)
            for phase in pair:
                phases[phase.name] = phase
                results["runs"][phase.name] = summary = phase.summary()
                log(f"  {phase.name}: {phase.requests} requests, {phase.rps:.1f} req/s, "
                    f"p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms")
        results["ratios"] = {
            "hot": ratio(phases["usage hot"].rps, phases["baseline hot"].rps),
            "spread": ratio(phases["usage spread"].rps, phases["baseline spread"].rps),
        }

        # Exactness: each usage user's balance is −(its 201 responses, warm-up included).
        created = phases["usage hot"].created + phases["usage spread"].created
        ambiguous = phases["usage hot"].ambiguous_users | phases["usage spread"].ambiguous_users
        users = [HOT_USER, *spread_users]
        balances = get_balances(port=server.port, key=key, users=users)
        mismatches = [f"{u}: balance {balances[u]} != -{created[u]}" for u in users
                      if balances[u] != -created[u] and u not in ambiguous]
        results["balance_check"] = {"exact": not mismatches and not ambiguous, "users": len(users),
                                    "total_201": sum(created.values()),
                                    "users_with_postings": sum(1 for u in users if created[u]),
                                    "mismatches": mismatches[:20],
                                    "ambiguous_users": sorted(ambiguous)}
        log("ledger_audit after the load runs")
        results["audit_after_load"] = audit()

        if not args.skip_history:
            small, large = f"bench/history-{human(args.small_history)}", f"bench/history-{human(args.large_history)}"
            loads = {}
            for user, n in ((small, args.small_history), (large, args.large_history)):
                log(f"bulk-loading {n:,} transactions for {user}")
                loads[user] = load_history(org_slug, user, n)
                log(f"  done in {loads[user]['seconds']} s; balance {loads[user]['balance']}")
            log("ledger_audit after the bulk load")
            results["audit_final"] = audit()
            log(f"  clean={results['audit_final']['clean']} in {results['audit_final']['seconds']} s")
            log(f"balance reads: {args.reads} per user, interleaved")
            expected = {user: load["balance"] for user, load in loads.items()}
            reads = balance_reads(port=server.port, key=key, users=[small, large], expected=expected,
                                  requests=args.reads)
            rows = {}
            for user, label in ((small, human(args.small_history)), (large, human(args.large_history))):
                rows[label] = {"user": user, "wallet_entries": loads[user]["wallet_entries"],
                               "load_seconds": loads[user]["seconds"], "balance": loads[user]["balance"],
                               "requests": len(reads[user]), **latency_summary(reads[user])}
            s_label, l_label = human(args.small_history), human(args.large_history)
            results["balance_reads"] = {
                "users": rows, "small_label": s_label, "large_label": l_label,
                "p50_ratio_large_small": ratio(rows[l_label]["p50_ms"], rows[s_label]["p50_ms"]),
                "p99_ratio_large_small": ratio(rows[l_label]["p99_ms"], rows[s_label]["p99_ms"]),
            }
    finally:
        server.stop()

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(render(results), flush=True)
    log(f"wrote {args.output}")
    ok = results["balance_check"]["exact"] and results["audit_after_load"]["clean"] and \
        results.get("audit_final", {"clean": True})["clean"]
    return 0 if ok else 1


def main() -> int:
    args = parse_args()
    if not os.environ.get("DATABASE_URL"):
        reexec_under_stack()

    def terminate(signum, _frame):
        raise SystemExit(128 + signum)  # unwinds through run()'s finally: gunicorn is stopped

    signal.signal(signal.SIGTERM, terminate)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
