"""The process settings that keep one request from stalling the others (Procfile, gunicorn, Celery)."""

from __future__ import annotations

import importlib
import os
import shlex
from pathlib import Path

from django.conf import settings

from billing_project import gunicorn_conf

ROOT = Path(__file__).resolve().parents[2]


def _procfile() -> dict[str, list[str]]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {name: shlex.split(command) for name, _, command in (line.partition(": ") for line in lines if line)}


def _reloaded(monkeypatch, **env):
    for name in ("WEB_CONCURRENCY", "GUNICORN_TIMEOUT", "GUNICORN_MAX_REQUESTS", "GUNICORN_MAX_REQUESTS_JITTER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return importlib.reload(gunicorn_conf)


def test_web_runs_gunicorn_with_the_config_file():
    web = _procfile()["web"]
    assert web[0] == "gunicorn" and web[web.index("-c") + 1] == "billing_project/gunicorn_conf.py"
    assert (ROOT / "billing_project" / "gunicorn_conf.py").exists()


def test_gunicorn_defaults(monkeypatch):
    conf = _reloaded(monkeypatch)

    assert conf.workers == 2 * len(os.sched_getaffinity(0)) + 1
    assert conf.worker_class == "sync"
    assert conf.timeout == 30 and conf.timeout > settings.INVOICE_PDF_TIME_LIMIT + 5
    assert conf.max_requests == 1000 and 0 < conf.max_requests_jitter < conf.max_requests


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    conf = _reloaded(monkeypatch, WEB_CONCURRENCY="3", GUNICORN_TIMEOUT="45", GUNICORN_MAX_REQUESTS="50",
                     GUNICORN_MAX_REQUESTS_JITTER="7", HOST="0.0.0.0", PORT="9000")

    assert (conf.workers, conf.timeout, conf.max_requests, conf.max_requests_jitter) == (3, 45, 50, 7)
    assert conf.bind == "0.0.0.0:9000"
    _reloaded(monkeypatch)


def test_celery_worker_uses_the_prefork_pool_so_time_limits_hold():
    worker = _procfile()["worker"]
    assert "--pool=prefork" in worker
    assert settings.CELERY_TASK_TIME_LIMIT > settings.CELERY_TASK_SOFT_TIME_LIMIT
    assert settings.CELERY_WORKER_MAX_TASKS_PER_CHILD > 0
