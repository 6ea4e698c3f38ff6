"""The JSON renderer of every API view: it cannot fail on a string.

A Python ``str`` may hold a lone surrogate (from a source other than a request body: an old row, a library),
which UTF-8 cannot encode; DRF's renderer then raises after the view ran. Here such a character is written
as U+FFFD, as the original's encoder does. Everything else a response may fail on is covered by the API
middleware rendering every state-changing response inside its transaction (``core/api/idempotency.py``)."""

from __future__ import annotations

from typing import Any

from rest_framework import renderers

from billing_project.core.api.parsers import REPLACEMENT, SURROGATE


def without_surrogates(data: Any) -> Any:
    """A copy of ``data`` whose strings (keys included) have lone surrogates replaced by U+FFFD."""
    if isinstance(data, str):
        return SURROGATE.sub(REPLACEMENT, data)
    if isinstance(data, dict):
        return {without_surrogates(k): without_surrogates(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [without_surrogates(v) for v in data]
    return data


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:  # rare: only then is the body walked
            return super().render(without_surrogates(data), accepted_media_type, renderer_context)
