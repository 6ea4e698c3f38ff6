"""HTTP for deliveries: one pooled httpx client per worker process, no redirects, 10-second timeout, and the
check that refuses private, loopback and link-local targets (unless ``WEBHOOKS_ALLOW_PRIVATE_TARGETS`` or the
organization is in test mode).

Nothing here touches the database: ``attempt_send`` returns an ``AttemptResult`` the delivery service records.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

TIMEOUT_SECONDS = 10.0
RESPONSE_BODY_LIMIT = 2048
USER_AGENT = "Tally-Webhooks/1.0"

_client: httpx.Client | None = None
_client_pid: int | None = None
_client_lock = threading.Lock()


@dataclass(frozen=True)
class AttemptResult:
    outcome: str  # "succeeded" | "retry" | "failed"
    status_code: int | None = None
    error: str = ""
    response_body: str = ""
    latency_ms: int = 0


def http_client() -> httpx.Client:
    """The process's client (connection reuse across deliveries); a forked worker child builds its own."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        with _client_lock:
            if _client is None or _client_pid != os.getpid():
                _client = httpx.Client(
                    timeout=httpx.Timeout(TIMEOUT_SECONDS), follow_redirects=False, trust_env=False,
                    limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
                    headers={"User-Agent": USER_AGENT},
                )
                _client_pid = os.getpid()
    return _client


def _forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global)


def target_refusal(url: str) -> str | None:
    """Why ``url`` may not be called from here (a private, loopback or link-local address, or a name that
    resolves to one), or None. A name that does not resolve is left to the request (a retryable failure)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").strip("[]")
    try:
        addresses = [host] if _is_ip(host) else sorted({info[4][0] for info in socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)})
    except (OSError, UnicodeError):
        return None
    for address in addresses:
        if _forbidden(address.split("%")[0]):
            return f"webhook target refused: {host} is a private, loopback or link-local address ({address})"
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def classify(status_code: int) -> str:
    """2xx delivered; 429 and 5xx retried; anything else (3xx included: redirects are not followed) failed."""
    if 200 <= status_code < 300:
        return "succeeded"
    if status_code in (408, 429) or status_code >= 500:
        return "retry"
    return "failed"


def attempt_send(*, url: str, body: bytes, headers: dict[str, str], allow_private: bool) -> AttemptResult:
    """One POST. Never raises for what the receiver (or the network) does: the result says what happened."""
    started = time.monotonic()
    if not allow_private:
        refusal = target_refusal(url)
        if refusal:
            return AttemptResult(outcome="failed", error=refusal)
    try:
        response = http_client().post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return AttemptResult(outcome="retry", error=f"webhook delivery failed: timed out after {TIMEOUT_SECONDS:g} s",
                             latency_ms=_ms(started))
    except httpx.HTTPError as exc:
        return AttemptResult(outcome="retry", error=f"webhook delivery failed: {exc.__class__.__name__}: {exc}"[:500],
                             latency_ms=_ms(started))
    text = response.content[:RESPONSE_BODY_LIMIT].decode("utf-8", "replace").replace("\x00", "")
    outcome = classify(response.status_code)
    error = "" if outcome == "succeeded" else f"webhook endpoint returned status {response.status_code}"
    if 300 <= response.status_code < 400:
        error += " (redirects are not followed)"
    return AttemptResult(outcome=outcome, status_code=response.status_code, error=error, response_body=text,
                         latency_ms=_ms(started))


def _ms(started: float) -> int:
    return max(0, int((time.monotonic() - started) * 1000))
