"""Webhook signatures (spec webhooks.md §3.1–3.2), for our deliveries and for receivers.

``Commerce-Signature: t=<unix seconds>,v1=<hex>``: ``hex = HMAC-SHA256(key = the endpoint secret as UTF-8,
including "whsec_", message = "<t>." + raw body)``. During the 24 hours after a secret roll the header carries
one ``v1`` per valid secret (new first); a receiver accepts the request when any of them matches.

Receiver example (Flask)::

    from webhooks.signing import SignatureVerificationError, verify

    @app.post("/hooks/tally")
    def tally_hook():
        try:
            verify(request.get_data(), request.headers["Commerce-Signature"], SECRET)
        except (KeyError, SignatureVerificationError):
            return "", 400
        event = request.get_json()          # {"id": "evt_…", "type": "invoice.paid", "data": {…}, …}
        if already_seen(event["id"]):       # deliveries are at least once: dedupe on the event id
            return "", 200
        handle(event)
        return "", 200
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Commerce-Signature"
EVENT_TYPE_HEADER = "Commerce-Event-Type"
DEFAULT_TOLERANCE = 300


class SignatureVerificationError(Exception):
    """The header is malformed, too old (or from the future), or matches none of the signatures."""


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def sign(*, secret: str, timestamp: int, payload: bytes | str) -> str:
    """The ``v1`` value: 64 lowercase hex characters (an empty secret or body is a valid input)."""
    message = str(int(timestamp)).encode("ascii") + b"." + _as_bytes(payload)
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(*, secrets: list[str], timestamp: int, payload: bytes | str) -> str:
    """``t=<timestamp>,v1=<sig>[,v1=<sig of an older secret>]``, one ``v1`` per secret, in the given order."""
    parts = [f"t={int(timestamp)}"]
    parts.extend(f"v1={sign(secret=s, timestamp=timestamp, payload=payload)}" for s in secrets)
    return ",".join(parts)


def _parse(header: str) -> tuple[str | None, list[str]]:
    # Parts without "=" and unknown keys are ignored; the last "t" wins; every "v1" is a candidate.
    timestamp, signatures = None, []
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = value.strip()
        elif key == "v1":
            signatures.append(value.strip())
    return timestamp, signatures


def verify(payload: bytes | str, header: str, secret: str, tolerance: int | None = DEFAULT_TOLERANCE, *,
           now: float | None = None) -> bool:
    """Check a ``Commerce-Signature`` header against the raw request body; returns True or raises
    ``SignatureVerificationError``: ``invalid signature header format`` (no ``t`` or ``v1``),
    ``timestamp outside the tolerance zone`` (more than ``tolerance`` seconds from now, either way; ``None``
    turns the check off as in the original) or ``signature verification failed``. Comparisons are constant
    time."""
    raw_timestamp, signatures = _parse(header)
    if not raw_timestamp or not signatures:
        raise SignatureVerificationError("invalid signature header format")
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise SignatureVerificationError("invalid signature header format") from None
    if tolerance is not None:
        current = time.time() if now is None else now
        if abs(current - timestamp) > tolerance:
            raise SignatureVerificationError("timestamp outside the tolerance zone")
    expected = sign(secret=secret, timestamp=timestamp, payload=payload)
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected.encode("ascii"), candidate.encode("utf-8", "replace"))
    if not matched:
        raise SignatureVerificationError("signature verification failed")
    return True
