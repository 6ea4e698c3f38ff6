"""Fail closed in production (issue 10 §4).

Settings are loaded in a fresh process with a controlled environment (nothing inherited but PATH/HOME), as a
production start would: with DEBUG off they refuse to load without SECRET_KEY and ALLOWED_HOSTS, the embedded
servers start only with TALLY_EMBEDDED=1, and `check --deploy` passes with production-like settings.
`manage.py` beside a running `make run` takes that stack's environment from DATA_DIR/stack.env."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from billing_project.core import embedded
from tests.conftest import Api

ROOT = Path(__file__).resolve().parents[2]
PROBE = "from django.conf import settings; print(settings.SECRET_KEY, ','.join(settings.ALLOWED_HOSTS), " \
        "settings.SESSION_COOKIE_SECURE, settings.SECURE_PROXY_SSL_HEADER, sep='|')"
PRODUCTION = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "billing.example.com",
    "SECURE_COOKIES": "1",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
}


def run(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "DATA_DIR": str(data_dir),
            "DJANGO_SETTINGS_MODULE": "billing_project.settings", "STATIC_ROOT": str(data_dir / "static")}
    return subprocess.run([sys.executable, *args], env={**base, **env}, cwd=ROOT, text=True,
                          capture_output=True, timeout=120)


def load_settings(data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    return run(["-c", f"import django; django.setup(); {PROBE}"], data_dir, **env)


def probed(result: subprocess.CompletedProcess) -> list[str]:
    """SECRET_KEY, ALLOWED_HOSTS, SESSION_COOKIE_SECURE, SECURE_PROXY_SSL_HEADER as printed by PROBE."""
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1].split("|")  # (shell may print a banner first)


def urls() -> dict[str, str]:
    return {"DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": os.environ["REDIS_URL"]}


def a_secret() -> str:
    return secrets.token_urlsafe(50)


@pytest.mark.parametrize(("env", "message"), [
    ({}, "SECRET_KEY is not set"),
    ({"SECRET_KEY": "s" * 50}, "ALLOWED_HOSTS is not set"),
    ({"SECRET_KEY": "s" * 50, "ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS is not set"),
    ({"SECRET_KEY": "s" * 50, "ALLOWED_HOSTS": "a.example"}, "DATABASE_URL is not set"),
    ({"DEBUG": "1"}, "DATABASE_URL is not set"),  # embedded only when asked, DEBUG or not
    ({"SECRET_KEY": "s" * 50, "ALLOWED_HOSTS": "a.example", "DATABASE_URL": "postgres://u@h/d"},
     "REDIS_URL is not set"),
    ({"DEBUG": "ture"}, "DEBUG='ture' is not a yes/no value"),
    ({"DEBUG": "1", "SECURE_COOKIES": "maybe"}, "SECURE_COOKIES='maybe' is not a yes/no value"),
    ({"DEBUG": "1", "SECURE_HSTS_SECONDS": "1y"}, "SECURE_HSTS_SECONDS='1y' is not an integer"),
    ({"DEBUG": "1", "SECURE_PROXY_SSL_HEADER": "X Forwarded"}, "SECURE_PROXY_SSL_HEADER='X Forwarded'"),
])
def test_a_production_start_without_its_settings_refuses_to_load(tmp_path, env, message):
    result = load_settings(tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "pg").exists()  # no embedded PostgreSQL was started


def test_production_settings_load_without_embedded_servers(tmp_path):
    result = load_settings(tmp_path, SECRET_KEY="k" * 50, **PRODUCTION, **urls())
    assert probed(result) == ["k" * 50, "billing.example.com", "True", "('HTTP_X_FORWARDED_PROTO', 'https')"]
    assert not (tmp_path / "pg").exists()


def test_secure_cookies_default_on_without_debug_and_off_with_it(tmp_path):
    prod = load_settings(tmp_path, SECRET_KEY="k" * 50, ALLOWED_HOSTS="a.example", **urls())
    assert probed(prod)[2:] == ["True", "None"]
    assert probed(load_settings(tmp_path, DEBUG="1", **urls()))[2] == "False"


def test_check_deploy_passes_with_production_settings(tmp_path):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], tmp_path, SECRET_KEY=a_secret(),
                 **PRODUCTION, **urls())
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "no issues" in result.stdout


def test_check_deploy_reports_https_left_off(tmp_path):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], tmp_path, SECRET_KEY=a_secret(),
                 ALLOWED_HOSTS="billing.example.com", **urls())
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


# --- manage.py beside make run ---------------------------------------------------------------------

def stack_env(data_dir: Path, pid: int, **values: str) -> Path:
    path = embedded.stack_env_write(data_dir, values)
    text = path.read_text().replace(f"{embedded.STACK_PID}={os.getpid()}", f"{embedded.STACK_PID}={pid}")
    path.write_text(text)
    return path


def test_manage_py_beside_a_running_make_run_takes_its_environment(tmp_path):
    secret = a_secret()
    path = stack_env(tmp_path, os.getpid(), TALLY_EMBEDDED="1", SECRET_KEY=secret, ALLOWED_HOSTS="localhost",
                     SECURE_COOKIES="0", **urls())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert probed(run(["manage.py", "shell", "-c", PROBE], tmp_path))[:3] == [secret, "localhost", "False"]
    # the caller's own environment wins
    assert probed(run(["manage.py", "shell", "-c", PROBE], tmp_path, ALLOWED_HOSTS="ops.example"))[1] == "ops.example"


def test_manage_py_ignores_the_file_of_a_make_run_that_is_gone(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stack_env(tmp_path, dead.pid, TALLY_EMBEDDED="1", SECRET_KEY=a_secret(), ALLOWED_HOSTS="localhost", **urls())
    result = run(["manage.py", "check"], tmp_path)
    assert result.returncode != 0 and "SECRET_KEY is not set" in result.stderr, result.stderr[-2000:]


# --- the Host header --------------------------------------------------------------------------------

def test_the_test_stack_lists_its_hosts_instead_of_any():
    assert "*" not in settings.ALLOWED_HOSTS


@pytest.mark.django_db
def test_a_forged_host_is_refused_and_never_reaches_a_link_header(api, org_acme):
    from webhooks import services as webhook_services

    for i in range(3):
        webhook_services.event_publish(organization=org_acme, type="test.ping", object_type="test",
                                       object_id=f"obj_{i}", data={}, customer_id="")
    forged = api.get("/events", {"limit": 1}, HTTP_HOST="evil.example")
    assert forged.status_code == 400
    assert "Link" not in forged and b"evil.example" not in forged.content
    host = settings.ALLOWED_HOSTS[0]
    ok = api.get("/events", {"limit": 1}, HTTP_HOST=host)
    assert ok.status_code == 200 and ok["Link"].startswith(f"<http://{host}/api/v1/billing/events?")


# (SecurityMiddleware reads its settings when a client first loads the middleware: one client per setting.)

@pytest.mark.django_db
def test_https_behind_a_proxy_only_when_configured(acme_key, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    r = Api(acme_key).get("/healthz", HTTP_X_FORWARDED_PROTO="https")
    assert r.status_code == 200 and "Strict-Transport-Security" not in r  # the header is not trusted by default
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    r = Api(acme_key).get("/healthz", HTTP_X_FORWARDED_PROTO="https")
    assert r["Strict-Transport-Security"] == "max-age=3600"


@pytest.mark.django_db
def test_the_https_redirect_spares_the_health_check(acme_key, settings):
    settings.SECURE_SSL_REDIRECT = True
    api = Api(acme_key)
    assert api.get("/healthz").status_code == 200  # load balancers probe over plain HTTP
    r = api.get("/balance", {"user": "hanzo/alice"})
    assert r.status_code == 301 and r["Location"].startswith("https://")
