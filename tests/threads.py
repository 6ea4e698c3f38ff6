"""Running test code in real threads against real PostgreSQL (the concurrency tests' one helper)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connections


def run_threads(threads: int, fn: Callable[[int], Any], *, together: bool = True,
                catch: tuple[type[BaseException], ...] = ()) -> list[Any]:
    """``fn(i)`` for ``i`` in ``range(threads)``, each in its own thread and database connection (closed at
    the end, so the test database can be dropped). ``together`` releases all threads at once from a barrier
    to maximise contention. Exceptions of the ``catch`` types are returned in place of a result."""
    barrier = threading.Barrier(threads) if together else None

    def wrapped(i: int) -> Any:
        try:
            if barrier is not None:
                barrier.wait()
            try:
                return fn(i)
            except catch as exc:
                return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(wrapped, range(threads)))
