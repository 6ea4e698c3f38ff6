"""docs/architecture.md lists every billing route with its owner: a new route without a row fails here."""

from __future__ import annotations

import re
from pathlib import Path

from django.urls import URLPattern, URLResolver, get_resolver

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def _first_segment(route: str) -> str | None:
    match = re.search(r"api/v1/billing/([a-z-]+)", route.replace("^", ""))
    return match.group(1) if match else None


def test_every_billing_route_has_a_row():
    doc = DOC.read_text()
    table = [line for line in doc.splitlines() if line.startswith("| `")]
    missing = sorted({segment for route in _routes(get_resolver().url_patterns)
                      if (segment := _first_segment(route))
                      and not any(f"/{segment}" in line for line in table)})
    assert not missing, f"routes without a row in docs/architecture.md: {missing}"
