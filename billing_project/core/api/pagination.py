"""Cursor paging without changing the original's envelopes.

``limit`` (default 100, max 1000) and ``startingAfter`` (an object's public id). Lists are newest
first. Object envelopes carry ``hasMore``; bare arrays signal more with a ``Link: <…>; rel="next"``."""

from __future__ import annotations

from urllib.parse import urlencode

from drf_spectacular.utils import OpenApiParameter
from rest_framework.response import Response

from billing_project.core.errors import ValidationError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PAGING_PARAMETERS = [
    OpenApiParameter("limit", int, description="1–1000, default 100"),
    OpenApiParameter("startingAfter", str, description="id of the last object of the previous page"),
]


def page_params(query_params) -> tuple[int, str | None]:
    raw = query_params.get("limit")
    limit = DEFAULT_LIMIT
    if raw not in (None, ""):
        try:
            limit = int(raw)
        except ValueError:
            raise ValidationError("limit must be an integer between 1 and 1000", param="limit") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationError("limit must be an integer between 1 and 1000", param="limit")
    starting_after = query_params.get("startingAfter") or None
    return limit, starting_after


def paginate(queryset, query_params, *, id_field: str = "public_id") -> tuple[list, bool]:
    """Return (items, has_more) of an already-scoped queryset, newest first by primary key."""
    limit, starting_after = page_params(query_params)
    queryset = queryset.order_by("-pk")
    if starting_after:
        anchor = queryset.filter(**{id_field: starting_after}).values_list("pk", flat=True).first()
        if anchor is None:
            raise ValidationError(f"startingAfter: no such object: {starting_after}", param="startingAfter")
        queryset = queryset.filter(pk__lt=anchor)
    items = list(queryset[: limit + 1])
    return items[:limit], len(items) > limit


def next_link(request, items: list, has_more: bool, *, id_attr: str = "public_id") -> str | None:
    if not has_more or not items:
        return None
    params = request.query_params.copy()
    params["startingAfter"] = getattr(items[-1], id_attr)
    return f'<{request.build_absolute_uri(request.path)}?{urlencode(params)}>; rel="next"'


def paged_array(request, queryset, render, *, id_field: str = "public_id") -> Response:
    """A bare JSON array of one page (``limit``/``startingAfter``), newest first, with a ``Link: rel=next``
    header when there is more."""
    items, has_more = paginate(queryset, request.query_params, id_field=id_field)
    response = Response([render(item) for item in items])
    link = next_link(request, items, has_more, id_attr=id_field)
    if link:
        response["Link"] = link
    return response
