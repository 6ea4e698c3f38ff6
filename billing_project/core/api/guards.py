"""Requests under /api/ refused before any view or other middleware sees them, in the one error shape:
a NUL character in the path (no id contains one, and PostgreSQL cannot store it — the ``Idempotency-Key``
record keeps the path) is 404, and a declared body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is 413.
A body without ``Content-Length`` (chunked) is bounded by Django when it is read; ``handler400`` and the
API exception handler turn that ``RequestDataTooBig`` into the same 413."""

from __future__ import annotations

from django.conf import settings

from billing_project.core.api.errors import api_not_found, payload_too_large


class ApiRequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            if "\x00" in request.path:
                return api_not_found(request)
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if limit is not None and length > limit:
                return payload_too_large()
        return self.get_response(request)
