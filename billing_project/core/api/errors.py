"""One exception handler: every API error is ``{"error": {"type", "code", "message", "param"}}``."""

from __future__ import annotations

import re

from django.core.exceptions import RequestDataTooBig
from django.db import DataError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import bad_request, permission_denied, server_error
from django.views.defaults import page_not_found as django_page_not_found
from rest_framework import exceptions
from rest_framework.response import Response

from billing_project.core.errors import ApplicationError

_REQUIRED_CODES = {"required", "blank", "null"}
_TYPE_CODES = {"invalid", "not_a_list", "not_a_dict", "max_length", "min_length", "range", "max_value",
               "min_value", "max_string_length", "empty", "invalid_choice", "not_a_string"}


def error_body(message: str, *, code: str, param: str | None = None) -> dict:
    body = {"type": "api-error", "code": code, "message": message}
    if param:
        body["param"] = param
    return {"error": body}


def first_error(detail, prefix: str = "") -> tuple[str | None, exceptions.ErrorDetail | str]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            return first_error(value, path)
    if isinstance(detail, list) and detail:
        if isinstance(detail[0], dict | list):
            return first_error(detail[0], prefix)
        return (prefix or None), detail[0]
    return (prefix or None), detail


def validation_message(param: str | None, detail) -> tuple[str, str]:
    code = getattr(detail, "code", "invalid") or "invalid"
    text = str(detail)
    if param and code in _REQUIRED_CODES:
        return f"{param} is required", "parameter_missing"
    if code in _TYPE_CODES:
        where = f"{param} " if param else ""
        return f"invalid request body: {where}{text}", "invalid_request_body"
    return text, code


def _application_error(exc: ApplicationError, context) -> Response:
    response = Response(error_body(exc.message, code=exc.code, param=exc.param), status=exc.status)
    if getattr(exc, "retry_after", None):  # 429 / 503: when to come back
        response["Retry-After"] = str(int(exc.retry_after))
    return response


def _validation_error(exc: exceptions.ValidationError, context) -> Response:
    param, detail = first_error(exc.detail)
    message, code = validation_message(param, detail)
    return Response(error_body(message, code=code, param=param), status=400)


def _data_error(exc: DataError, context) -> Response:
    if "NUL" in str(exc):  # PostgreSQL cannot store U+0000 in text
        param = _nul_param(context)
        where = f"{param} " if param else "a value "
        return Response(error_body(f"{where}must not contain a NUL character", code="invalid_request",
                                   param=param), status=400)
    param = data_error_param(exc, context)
    message = f"{param} is out of range" if param else "a value is out of range"
    return Response(error_body(message, code="out_of_range", param=param), status=400)


_API_EXCEPTION_CODES = {401: "unauthorized", 403: "forbidden", 404: "resource_missing", 405: "method_not_allowed",
                        406: "not_acceptable", 415: "unsupported_media_type", 429: "rate_limited"}


def _api_exception(exc: exceptions.APIException, context) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    response = Response(error_body(str(detail), code=_API_EXCEPTION_CODES.get(exc.status_code, "api_error")),
                        status=exc.status_code)
    if getattr(exc, "auth_header", None):
        response["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        response["Retry-After"] = str(int(exc.wait))
    return response


# First match wins (ParseError and ValidationError are APIExceptions too: they come first).
_HANDLERS = (
    (ApplicationError, _application_error),
    (exceptions.ParseError,
     lambda exc, context: Response(error_body("invalid request body", code="invalid_request_body"), status=400)),
    (exceptions.ValidationError, _validation_error),
    (Http404, lambda exc, context: Response(error_body("resource not found", code="resource_missing"), status=404)),
    # JSON nested deeper than the decoder (or anything after it) can follow
    (RecursionError, lambda exc, context: Response(
        error_body("invalid request body: nested too deeply", code="invalid_request_body"), status=400)),
    (RequestDataTooBig, lambda exc, context: payload_too_large()),
    (DataError, _data_error),
    (exceptions.APIException, _api_exception),
)


def exception_handler(exc, context):
    for kind, handle in _HANDLERS:
        if isinstance(exc, kind):
            return handle(exc, context)
    return None


_NUMERIC_OUT_OF_RANGE = re.compile(r"(bigint|integer|smallint|numeric)[^\n]*out of range|numeric field overflow")


def data_error_param(exc: DataError, context) -> str | None:
    """The field a PostgreSQL ``DataError`` is about. A number out of range on a write is the request's
    amount (the only client-controlled number summed into stored totals); a view can name another field by
    setting ``data_error_param`` on itself."""
    view = (context or {}).get("view")
    named = getattr(view, "data_error_param", None)
    if named:
        return named
    if _NUMERIC_OUT_OF_RANGE.search(str(exc)):
        return "amount"
    return None


def _nul_param(context) -> str | None:
    """The query parameter or top-level body field whose value holds a NUL character, if one does."""
    request = (context or {}).get("request")
    if request is None:
        return None
    for key, value in request.query_params.items():
        if "\x00" in key or "\x00" in value:
            return key
    data = getattr(request, "_full_data", None)
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, str) and "\x00" in value:
                return key
    return None


def payload_too_large() -> JsonResponse:
    from django.conf import settings

    return JsonResponse(error_body(f"request body too large (at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes)",
                                   code="payload_too_large"), status=413)


@csrf_exempt  # an unknown route answers 404 for every method, not a CSRF 403
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """JSON 404 for unknown routes under /api/ (Django's HTML page is for browsers)."""
    return JsonResponse(
        error_body(f"Unrecognized request URL ({request.method}: {request.path})", code="route_not_found"),
        status=404,
    )


# --- Django's error handlers (urls.py): JSON in the one error shape under /api/, Django's pages elsewhere --

def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def handler400(request, exception=None):
    if not _is_api(request):
        return bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return payload_too_large()
    return JsonResponse(error_body("bad request", code="invalid_request"), status=400)


def handler403(request, exception=None):
    if not _is_api(request):
        return permission_denied(request, exception)
    return JsonResponse(error_body("forbidden", code="forbidden"), status=403)


def handler404(request, exception=None):
    if not _is_api(request):
        return django_page_not_found(request, exception)
    return api_not_found(request)


def handler500(request):
    if not _is_api(request):
        return server_error(request)
    return JsonResponse(error_body("internal server error", code="api_error"), status=500)


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: the API authenticates by key and its views are CSRF-exempt; anything else under
    /api/ that trips CSRF still answers in the one error shape."""
    if not _is_api(request):
        from django.views.csrf import csrf_failure as django_csrf_failure

        return django_csrf_failure(request, reason)
    return JsonResponse(error_body(f"forbidden: {reason}", code="forbidden"), status=403)
