"""``/balance`` keeps answering while PDFs render: a live gunicorn (the Procfile's config) on the test
database, ``/balance`` timed alone and then beside a stream of PDF previews from two organizations.

Asserts correctness only (every balance right, every PDF request a PDF or a clear 429); the latency ratio
is printed, never asserted: no test fails on a timing."""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from invoicing.services import invoices as invoice_services
from invoicing.services.invoice_lines import LineInput
from ledger import services as ledger_services

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1/billing"


def _database_url() -> str:
    db = connection.settings_dict
    host = quote(db["HOST"] or "", safe="")
    auth = db["USER"] + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{host}{port}/{db['NAME']}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gunicorn(tmp_path):
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": _database_url(), "HOST": "127.0.0.1", "PORT": str(port),
           "WEB_CONCURRENCY": "4", "DATA_DIR": str(tmp_path), "MEDIA_ROOT": str(tmp_path / "media"),
           "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECRET_KEY": "test-live-gunicorn-" + "x" * 40}
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "billing_project.wsgi:application",
                                "-c", "billing_project/gunicorn_conf.py"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _get(port: int, path: str, key: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {key}"} if key else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _balances(port: int, key: str, n: int) -> list[float]:
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        status, body = _get(port, f"{API}/balance?user=alice&currency=usd", key)
        timings.append(time.perf_counter() - started)
        assert status == 200, body
        assert b'"balance":12345' in body.replace(b" ", b""), body
    return timings


def test_balance_is_not_stalled_by_pdf_renders(gunicorn, org_acme, org_globex, acme_key, globex_key):
    ledger_services.deposit_create(organization=org_acme, user="alice", amount=12345, currency="usd")
    drafts = []
    for org, key in ((org_acme, acme_key), (org_globex, globex_key)):
        invoice = invoice_services.invoice_create(
            organization=org, customer="alice",
            lines=[LineInput(description=f"Usage {n} " + "lorem ipsum " * 20, amount=100) for n in range(200)])
        drafts.append((key, invoice.public_id))

    _balances(gunicorn, acme_key, 5)  # warm every worker's connection
    alone = _balances(gunicorn, acme_key, 60)

    stop = threading.Event()
    pdf_statuses: list[int] = []

    def render(key: str, invoice_id: str) -> None:
        while not stop.is_set():
            status, body = _get(gunicorn, f"{API}/invoices/{invoice_id}/pdf", key)
            pdf_statuses.append(status)
            assert status == 429 or (status == 200 and body.startswith(b"%PDF")), body[:200]
            if status == 429:
                stop.wait(0.5)  # a client honouring Retry-After would wait longer still

    renderers = [threading.Thread(target=render, args=draft) for draft in drafts for _ in range(2)]
    for thread in renderers:
        thread.start()
    try:
        time.sleep(2.0)  # the renderers have started: the renders are under way
        beside = _balances(gunicorn, acme_key, 60)
    finally:
        stop.set()
        for thread in renderers:
            thread.join(120)

    assert 200 in pdf_statuses and set(pdf_statuses) <= {200, 429}
    p50_alone, p50_beside = statistics.median(alone) * 1000, statistics.median(beside) * 1000
    print(f"\n/balance p50 alone {p50_alone:.1f} ms, beside PDF renders {p50_beside:.1f} ms "
          f"(ratio {p50_beside / p50_alone:.2f}); PDF requests: {pdf_statuses.count(200)} rendered, "
          f"{pdf_statuses.count(429)} told to retry (429)")
