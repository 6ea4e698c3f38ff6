#!/usr/bin/env python
"""Run Tally's processes on embedded PostgreSQL and Redis (or on DATABASE_URL / REDIS_URL).

  stack.py run            make run: servers under DATA_DIR, migrate, demo org + key, then web + worker
                          + beat through honcho (Procfile) until Ctrl-C / SIGTERM; then everything stops.
  stack.py exec -- CMD    make test / make bench: throwaway servers in a temp dir, run CMD with
                          DATABASE_URL and REDIS_URL set, stop and delete the servers, exit with CMD's code.

Both ask for the embedded servers (TALLY_EMBEDDED=1) and give the development settings production must
set itself: a SECRET_KEY (make run keeps one in DATA_DIR/secret_key, 0600), ALLOWED_HOSTS for loopback and
SECURE_COOKIES=0 (plain HTTP). Variables already in the environment win. make run reuses its demo API key
(plaintext in DATA_DIR/demo-api-key, 0600; the database holds only its hash).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from billing_project.core import embedded  # noqa: E402

BIN = Path(sys.executable).parent


def _start_services(base: Path, *, persistent: bool) -> tuple[dict[str, str], list]:
    env: dict[str, str] = {}
    stops: list = []
    if not os.environ.get("DATABASE_URL"):
        url, server = embedded.postgres_start(base / "pg", keep_running=True)
        env["DATABASE_URL"] = url
        stops.append(lambda: embedded.postgres_stop(server))
        print(f"[stack] embedded PostgreSQL at {base / 'pg'}", flush=True)
    if not os.environ.get("REDIS_URL"):
        redis = embedded.RedisServer(base / "redis")
        env["REDIS_URL"] = redis.url
        marker = base / "redis.url"
        if persistent:
            marker.write_text(redis.url)
        stops.append(redis.stop)
        stops.append(lambda: marker.unlink(missing_ok=True))
        print(f"[stack] embedded Redis at {redis.url}", flush=True)
    return env, stops


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def _secret_key(base: Path, *, persistent: bool) -> str:
    """make run: the key kept in DATA_DIR/secret_key (created 0600 on first start), so sessions survive a
    restart; make test / bench: a fresh one."""
    if not persistent:
        return secrets.token_urlsafe(50)
    path = base / "secret_key"
    if path.exists() and path.read_text().strip():
        path.chmod(0o600)
        return path.read_text().strip()
    key = secrets.token_urlsafe(50)
    embedded.write_private(path, key + "\n")
    return key


def dev_env(base: Path, *, persistent: bool, host: str = "127.0.0.1") -> dict[str, str]:
    """The development settings make run / make test / make bench give their processes (unless the
    environment already sets them)."""
    hosts = list(LOOPBACK_HOSTS)
    if host not in ("0.0.0.0", "::", "") and host not in hosts:
        hosts.append(f"[{host}]" if ":" in host else host)
    defaults = {
        "TALLY_EMBEDDED": "1",
        "ALLOWED_HOSTS": ",".join(hosts),
        "SECURE_COOKIES": "0",
    }
    env = {name: value for name, value in defaults.items() if not os.environ.get(name)}
    if not os.environ.get("SECRET_KEY"):
        env["SECRET_KEY"] = _secret_key(base, persistent=persistent)
    return env


def _stop(stops: list) -> None:
    for stop in reversed(stops):
        try:
            stop()
        except Exception as exc:  # keep stopping the rest
            print(f"[stack] stop failed: {exc}", file=sys.stderr)


def _manage(env: dict[str, str], *args: str, capture: bool = False) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, check=True,
                            cwd=ROOT, text=True, stdout=subprocess.PIPE if capture else None)
    return (result.stdout or "").strip()


def cmd_run() -> int:
    base = embedded.data_dir()
    host = os.environ.get("HOST") or "127.0.0.1"
    settings_env = dev_env(base, persistent=True, host=host)
    service_env, stops = _start_services(base, persistent=True)
    env = {**os.environ, **settings_env, **service_env, "DATA_DIR": str(base),
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    env.setdefault("PORT", "8000")
    env["HOST"] = host
    # manage.py run beside this stack (same DATA_DIR) attaches to it: see core/embedded.py.
    stack_env = embedded.stack_env_write(base, {**settings_env, **service_env})
    stops.append(lambda: stack_env.unlink(missing_ok=True))
    honcho = None
    stopping = False

    def forward(signum, _frame):
        nonlocal stopping
        stopping = True
        if honcho and honcho.poll() is None:
            honcho.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        _manage(env, "migrate", "--no-input", "-v", "0")
        _manage(env, "collectstatic", "--no-input", "-v", "0")
        key_file = base / "demo-api-key"
        key = _manage(env, "create_api_key", "--org", "demo", "--org-name", "Demo Org", "--name", "make run",
                      "--key-file", str(key_file), capture=True)
        url = f"http://{env['HOST']}:{env['PORT']}"
        print("\n" + "=" * 72)
        print(f"  Tally is starting at {url}")
        print(f"  API docs:   {url}/api/docs/      health: {url}/healthz     admin: {url}/admin/")
        print(f"  Demo org 'demo' admin API key (kept in {key_file}, reused on restart):\n    {key}")
        print(f"  Try: curl -H 'Authorization: Bearer {key}' '{url}/api/v1/billing/balance?user=hanzo/alice'")
        if host in ("0.0.0.0", "::") and "ALLOWED_HOSTS" in settings_env:
            print(f"  Serving on all interfaces, but only {env['ALLOWED_HOSTS']} are answered:"
                  "\n    set ALLOWED_HOSTS to the names clients use to reach this machine.")
        print("=" * 72 + "\n", flush=True)
        honcho = subprocess.Popen([str(BIN / "honcho"), "-f", str(ROOT / "Procfile"), "start"], env=env, cwd=ROOT)
        code = honcho.wait()
        return 0 if stopping else code  # Ctrl-C / SIGTERM is a clean stop
    finally:
        if honcho and honcho.poll() is None:
            honcho.terminate()
            honcho.wait(30)
        _stop(stops)
        print("[stack] stopped web, worker, beat, Redis and PostgreSQL", flush=True)


def cmd_exec(command: list[str]) -> int:
    base = Path(tempfile.mkdtemp(prefix="tally-"))
    os.chmod(base, 0o755)
    settings_env = dev_env(base, persistent=False)
    service_env, stops = _start_services(base, persistent=False)
    env = {**os.environ, **settings_env, **service_env, "DATA_DIR": str(base),
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    try:
        return subprocess.run(command, env=env, cwd=ROOT).returncode
    finally:
        _stop(stops)
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run")
    p_exec = sub.add_parser("exec")
    p_exec.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.cmd == "run":
        return cmd_run()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("exec needs a command")
    return cmd_exec(command)


if __name__ == "__main__":
    sys.exit(main())
