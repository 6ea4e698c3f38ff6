"""gunicorn's settings (``Procfile``: ``gunicorn -c billing_project/gunicorn_conf.py``); each from the
environment, with defaults that keep one slow request from stalling the others.

- ``WEB_CONCURRENCY`` sync workers, default 2 × cores + 1: a worker serves one request at a time, so a
  slow one (a PDF preview, up to ``INVOICE_PDF_TIME_LIMIT``) holds one worker, never the rest.
- ``GUNICORN_TIMEOUT`` (30 s): a worker silent that long is killed and replaced; it must stay above the
  longest legitimate request (the PDF time limit, 15 s by default).
- ``GUNICORN_MAX_REQUESTS`` / ``GUNICORN_MAX_REQUESTS_JITTER`` (1000 / 100): each worker is recycled after
  about that many requests, the jitter keeping the workers from restarting all at once.
"""

from __future__ import annotations

import os


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may use (containers, taskset)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * _cores() + 1)
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 10
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "1000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "100"))
accesslog = "-"
