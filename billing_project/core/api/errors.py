"""One exception handler: every API error is ``{"error": {"type", "code", "message", "param"}}``."""

from __future__ import annotations

from django.db import DataError
from django.http import Http404, JsonResponse
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


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        response = Response(error_body(exc.message, code=exc.code, param=exc.param), status=exc.status)
        if getattr(exc, "retry_after", None):  # 429 / 503: when to come back
            response["Retry-After"] = str(int(exc.retry_after))
        return response
    if isinstance(exc, exceptions.ParseError):
        return Response(error_body("invalid request body", code="invalid_request_body"), status=400)
    if isinstance(exc, exceptions.ValidationError):
        param, detail = first_error(exc.detail)
        message, code = validation_message(param, detail)
        return Response(error_body(message, code=code, param=param), status=400)
    if isinstance(exc, Http404):
        return Response(error_body("resource not found", code="resource_missing"), status=404)
    if isinstance(exc, DataError):
        return Response(error_body("a value is out of range", code="out_of_range"), status=400)
    if isinstance(exc, exceptions.APIException):
        codes = {401: "unauthorized", 403: "forbidden", 404: "resource_missing", 405: "method_not_allowed",
                 406: "not_acceptable", 415: "unsupported_media_type", 429: "rate_limited"}
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        response = Response(error_body(str(detail), code=codes.get(exc.status_code, "api_error")),
                            status=exc.status_code)
        if getattr(exc, "auth_header", None):
            response["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            response["Retry-After"] = str(int(exc.wait))
        return response
    return None


def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """JSON 404 for unknown routes under /api/ (Django's HTML page is for browsers)."""
    return JsonResponse(
        error_body(f"Unrecognized request URL ({request.method}: {request.path})", code="route_not_found"),
        status=404,
    )
