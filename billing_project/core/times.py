"""Times on the wire: RFC 3339 UTC out; RFC 3339, ``YYYY-MM-DD`` and Go durations in.

Periods are half-open ``[start, end)`` everywhere. A date-only bound means that date at 00:00 UTC, for
starts and ends alike (so ``periodEnd=2024-02-01`` covers all of January)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from billing_project.core.errors import ValidationError


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_rfc3339(value: str) -> datetime | None:
    """An RFC 3339 timestamp with a zone (``Z`` or ``±hh:mm``) → aware UTC datetime; else ``None``."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return None
    text = value.replace("z", "Z").replace("t", "T").replace(" ", "T")
    if "." in text:  # Python takes at most 6 fractional digits; RFC 3339 allows nanoseconds
        head, _, rest = text.partition(".")
        digits = re.match(r"\d+", rest).group(0)
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
    try:  # a local time near year 1 or 9999 may have no UTC equivalent (OverflowError): not a timestamp we can use
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def time_shift(moment: datetime, delta: timedelta, *, param: str) -> datetime:
    """``moment + delta``, or 400 naming ``param`` when the result falls outside years 1–9999."""
    try:
        return moment + delta
    except OverflowError:
        raise ValidationError(f"{param} puts the time beyond year 9999", param=param, code="out_of_range") from None


def parse_period_bound(value: str, *, param: str) -> datetime:
    """RFC 3339 or ``YYYY-MM-DD`` (00:00 UTC) → datetime; anything else is 400 ``invalid <param> format``."""
    text = (value or "").strip()
    parsed = parse_rfc3339(text)
    if parsed is None and _DATE.match(text):
        try:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        except ValueError:
            parsed = None
    if parsed is None:
        raise ValidationError(f"invalid {param} format", param=param, code="invalid_period")
    return parsed


def parse_period(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """Optional ``periodStart``/``periodEnd`` → half-open bounds; an end before its start is a 400."""
    lo = parse_period_bound(start, param="periodStart") if start else None
    hi = parse_period_bound(end, param="periodEnd") if end else None
    if lo is not None and hi is not None and hi < lo:
        raise ValidationError("periodEnd must not be before periodStart", param="periodEnd", code="invalid_period")
    return lo, hi


_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")
_UNIT_SECONDS = {"ns": Decimal("1e-9"), "us": Decimal("1e-6"), "µs": Decimal("1e-6"), "μs": Decimal("1e-6"),
                 "ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600),
                 "d": Decimal(86400)}
MAX_DURATION = timedelta(days=36500)


def parse_duration(value: str) -> timedelta | None:
    """Go ``time.ParseDuration`` syntax (``720h``, ``90m``, ``1h30m``, ``300ms``, ``-1h``), plus ``d`` for
    days. Returns ``None`` when unparseable or beyond 100 years."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    if text == "0":
        return timedelta(0)
    pos, total = 0, Decimal(0)
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            return None
        try:
            total += Decimal(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        except InvalidOperation:
            return None
        pos = match.end()
    if not text:
        return None
    if total > Decimal(MAX_DURATION.total_seconds()):
        return None
    return sign * timedelta(seconds=float(total)) if total % 1 else sign * timedelta(seconds=int(total))
