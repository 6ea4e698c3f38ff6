"""`make run` reuses its demo key (issue 10 §4): `create_api_key --key-file` keeps the plaintext in a 0600
file and reuses it while it is an active admin key of the organization; the database holds only its hash.
And the development settings scripts/stack.py gives make run / make test (a kept secret key, loopback hosts)."""

from __future__ import annotations

import importlib.util
import io
import stat
from pathlib import Path

import pytest
from django.core.management import call_command

from billing_project.core import services
from billing_project.core.models import ApiKey, api_key_hash

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def create_key(key_file: Path | None, org: str = "demo") -> str:
    out = io.StringIO()
    options = {"key_file": str(key_file)} if key_file else {}
    call_command("create_api_key", "--org", org, "--name", "make run", stdout=out, **options)
    return out.getvalue().strip()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_restart_reuses_the_kept_key(tmp_path):
    key_file = tmp_path / "demo-api-key"
    first = create_key(key_file)
    assert first.startswith("tk_") and key_file.read_text().strip() == first and mode(key_file) == 0o600
    assert create_key(key_file) == first
    assert ApiKey.objects.filter(organization__slug="demo").count() == 1
    row = ApiKey.objects.get(organization__slug="demo")
    assert row.key_hash == api_key_hash(first) and first not in str(row.__dict__)  # stored hashed only


def test_a_revoked_unknown_or_foreign_key_is_replaced(tmp_path):
    key_file = tmp_path / "demo-api-key"
    first = create_key(key_file)
    services.api_key_revoke(api_key=ApiKey.objects.get(key_hash=api_key_hash(first)))
    second = create_key(key_file)
    assert second != first and key_file.read_text().strip() == second

    key_file.write_text("tk_not-a-key\n")
    third = create_key(key_file)
    assert third not in (first, second) and key_file.read_text().strip() == third

    other = create_key(None, org="other")
    key_file.write_text(other)
    fourth = create_key(key_file)
    assert fourth != other and key_file.read_text().strip() == fourth
    assert ApiKey.objects.filter(organization__slug="demo", revoked_at__isnull=True).count() == 3


def test_a_kept_file_left_readable_is_tightened(tmp_path):
    key_file = tmp_path / "demo-api-key"
    first = create_key(key_file)
    key_file.chmod(0o644)
    assert create_key(key_file) == first and mode(key_file) == 0o600


def test_without_a_key_file_every_call_creates_a_key():
    assert create_key(None) != create_key(None)


# --- scripts/stack.py's development settings -------------------------------------------------------

@pytest.fixture
def stack():
    spec = importlib.util.spec_from_file_location("tally_stack_script", ROOT / "scripts" / "stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bare_env(monkeypatch):
    for name in ("TALLY_EMBEDDED", "SECRET_KEY", "ALLOWED_HOSTS", "SECURE_COOKIES"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_make_run_keeps_its_secret_key_under_data_dir(stack, bare_env, tmp_path):
    env = stack.dev_env(tmp_path, persistent=True)
    assert env["TALLY_EMBEDDED"] == "1" and env["SECURE_COOKIES"] == "0"
    assert env["ALLOWED_HOSTS"] == "localhost,127.0.0.1,[::1]" and "*" not in env["ALLOWED_HOSTS"]
    assert len(env["SECRET_KEY"]) >= 50 and mode(tmp_path / "secret_key") == 0o600
    assert stack.dev_env(tmp_path, persistent=True)["SECRET_KEY"] == env["SECRET_KEY"]  # reused on restart
    assert stack.dev_env(tmp_path, persistent=False)["SECRET_KEY"] != env["SECRET_KEY"]  # make test: fresh


def test_make_run_serves_its_host_and_the_environment_wins(stack, bare_env, tmp_path):
    assert stack.dev_env(tmp_path, persistent=False, host="10.0.0.5")["ALLOWED_HOSTS"].endswith(",10.0.0.5")
    assert "0.0.0.0" not in stack.dev_env(tmp_path, persistent=False, host="0.0.0.0")["ALLOWED_HOSTS"]
    bare_env.setenv("ALLOWED_HOSTS", "billing.example.com")
    bare_env.setenv("SECRET_KEY", "mine")
    env = stack.dev_env(tmp_path, persistent=True)
    assert "ALLOWED_HOSTS" not in env and "SECRET_KEY" not in env and not (tmp_path / "secret_key").exists()
