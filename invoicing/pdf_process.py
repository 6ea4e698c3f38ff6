"""HTML → PDF with WeasyPrint, in-process or in a child process that a time limit can kill.

No Django import here: the child process (``spawn``: a fresh interpreter, safe beside threads and open
database connections) imports only this module and WeasyPrint. A web worker keeps one child per thread,
started on its first render and reused (the half-second WeasyPrint import is paid once), at a lower CPU
priority than the web workers (``nice`` 10) so rendering slows no other request; a render that
overruns its time limit kills the child (the next render starts a new one), so a pathological document
costs at most the limit, never the worker. Celery tasks render in-process: the prefork pool's hard time
limit kills the pool process instead.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading

READY_TIMEOUT_S = 60.0  # starting a child (interpreter + WeasyPrint import); not counted in a render's limit
RENDERS_PER_CHILD = 200  # then a fresh child: WeasyPrint's caches only grow
RENDER_NICENESS = 10  # the child's CPU priority below the web workers'


# WeasyPrint logs every layout step at INFO ("Step 2 - Fetching and parsing CSS"): noise in a worker's log.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)


class RenderTimeout(Exception):
    """The render did not finish within its time limit (the child was killed)."""


class RenderFailed(Exception):
    """The renderer could not start or died, or WeasyPrint raised."""


def html_to_pdf(html: str, base_url: str) -> bytes:
    """Render in this process. Never touches the network: only ``data:`` URLs are fetched."""
    import weasyprint  # lazy: the import alone takes about half a second (Pango through cffi, CSS machinery)

    fetcher = weasyprint.URLFetcher(allowed_protocols=("data",))
    return weasyprint.HTML(string=html, base_url=base_url, url_fetcher=fetcher).write_pdf()


def _serve(conn) -> None:  # the child's main loop
    import os

    os.nice(RENDER_NICENESS)  # API requests get the CPU first; a render takes what is left

    import weasyprint  # noqa: F401  (warm up before announcing readiness)

    conn.send(("ready", None))
    while True:
        try:
            html, base_url = conn.recv()
        except (EOFError, OSError):
            return  # the parent went away
        try:
            conn.send(("ok", html_to_pdf(html, base_url)))
        except Exception as exc:  # reported to the parent, the child keeps serving
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class _Child:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child_conn,), daemon=True, name="tally-pdf-render")
        self.process.start()
        child_conn.close()
        self.renders = 0
        if not self.conn.poll(READY_TIMEOUT_S):
            self.kill()
            raise RenderFailed("the PDF renderer did not start")
        try:
            self.conn.recv()
        except EOFError as exc:
            self.kill()
            raise RenderFailed("the PDF renderer did not start") from exc

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


_local = threading.local()


def _child() -> _Child:
    child = getattr(_local, "child", None)
    if child is None or not child.process.is_alive() or child.renders >= RENDERS_PER_CHILD:
        if child is not None:
            child.kill()
        child = _local.child = _Child()
    return child


def _discard(child: _Child) -> None:
    child.kill()
    if getattr(_local, "child", None) is child:
        _local.child = None


def html_to_pdf_limited(html: str, base_url: str, *, timeout: float) -> bytes:
    """Render in this thread's child process; ``RenderTimeout`` after ``timeout`` seconds (child killed)."""
    child = _child()
    child.renders += 1
    try:
        child.conn.send((html, base_url))
        if not child.conn.poll(timeout):
            _discard(child)
            raise RenderTimeout(f"rendering took longer than {timeout:g} s")
        status, payload = child.conn.recv()
    except (EOFError, OSError, BrokenPipeError) as exc:
        _discard(child)
        raise RenderFailed("the PDF renderer died") from exc
    if status != "ok":
        raise RenderFailed(payload)
    return payload


def shutdown() -> None:
    """Stop this thread's child (tests; a worker's children also stop when the worker exits)."""
    child = getattr(_local, "child", None)
    if child is not None:
        _discard(child)
