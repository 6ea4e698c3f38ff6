"""``/usage`` and ``/zap``: recording usage writes to two apps (the ledger withdrawal and the usage meter event),
and only a higher app may orchestrate a lower one (STYLE §3), so both routes live here and call
``invoicing.services.usage.usage_record_metered``; the other ZAP methods call the ledger's operations."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.errors import first_error, validation_message
from billing_project.core.api.inputs import body, query_required, without_nulls
from billing_project.core.api.pagination import PAGING_PARAMETERS
from billing_project.core.api.parsers import NulCharacter, json_loads_safe
from billing_project.core.errors import ApplicationError
from billing_project.core.errors import ValidationError as AppValidationError
from invoicing.services import usage as usage_services
from ledger.api import serializers as s
from ledger.api.operations import op_deposit, op_get_balance, op_get_balance_all, op_get_usage, op_record_usage

PAGING = PAGING_PARAMETERS
USER_Q = OpenApiParameter("user", str, required=True, description="e.g. hanzo/alice")


class UsageView(APIView):
    @extend_schema(parameters=[USER_Q, OpenApiParameter("currency", str), *PAGING], responses=s.UsageListOut,
                   summary="List a user's API-usage withdrawals, newest first")
    def get(self, request):
        user = query_required(request, "user")
        return Response(op_get_usage(request.organization, user=user, currency=request.query_params.get("currency"),
                                     query_params=request.query_params))

    @extend_schema(request=s.UsageIn, responses={201: s.UsageRecordedOut, 200: s.UsageRecordedOut},
                   summary="Record the cost of one API call (withdrawal); amount ≤ 0 → skipped")
    def post(self, request):
        status, out = op_record_usage(request.organization, body(request), recorder=usage_services.usage_record_metered)
        return Response(out, status=status)


# --- ZAP --------------------------------------------------------------------------------------------

class _ZapError(Exception):
    def __init__(self, code: int, message: str):
        self.code, self.message = code, message


def _zap_user(params: dict) -> str:
    user = params.get("user")
    if user is not None and not isinstance(user, str):
        raise _ZapError(-32602, "invalid params: user must be a string")
    if not user:
        raise _ZapError(-32602, "user is required")
    return user


_STORE_MESSAGES = {
    "billing.getBalance": "balance query failed",
    "billing.getBalanceAll": "balance query failed",
    "billing.getUsage": "usage query failed",
    "billing.recordUsage": "failed to record usage",
    "billing.deposit": "failed to create deposit",
}


def _zap_call(organization, method: str, params: dict) -> dict:
    if method == "billing.getBalance":
        return op_get_balance(organization, user=_zap_user(params), currency=params.get("currency"))
    if method == "billing.getBalanceAll":
        return op_get_balance_all(organization, user=_zap_user(params))
    if method == "billing.getUsage":
        return op_get_usage(organization, user=_zap_user(params), currency=params.get("currency"),
                            query_params={})
    if method == "billing.recordUsage":
        return op_record_usage(organization, params, recorder=usage_services.usage_record_metered)[1]
    if method == "billing.deposit":
        return op_deposit(organization, params)[1]
    raise _ZapError(-32601, f"method not found: {method}")


class _ZapBadEnvelope(_ZapError):
    """An envelope the dispatcher cannot read: answered 400 (the original's status for these)."""

    def __init__(self, code: int, message: str, rpc_id: str = ""):
        super().__init__(code, message)
        self.rpc_id = rpc_id


def _zap_envelope(body: bytes) -> tuple[str, str, Any]:
    """The envelope's ``id``, ``method`` and ``params``; ``_ZapBadEnvelope`` when it cannot be dispatched."""
    try:
        envelope = json_loads_safe(body)  # lone surrogates → U+FFFD, as the original
    except NulCharacter as exc:  # PostgreSQL cannot store it; the original fails storing it
        raise _ZapBadEnvelope(-32602, f"invalid params: {exc.path or 'body'} must not contain a NUL character") \
            from None
    except ValueError as exc:
        raise _ZapBadEnvelope(-32700, f"parse error: {exc}") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("id", ""), str) \
            or not isinstance(envelope.get("method", ""), str):
        raise _ZapBadEnvelope(-32700, "parse error: invalid envelope")
    rpc_id = envelope.get("id", "")
    method = envelope.get("method", "")
    if not method:
        raise _ZapBadEnvelope(-32600, "method is required", rpc_id=rpc_id)
    return rpc_id, method, envelope.get("params")


class ZapView(APIView):
    """JSON-RPC-style envelope over the five balance operations (spec ledger.md §9)."""

    @extend_schema(request=s.ZapIn, responses={200: s.ZapOut, 400: s.ZapOut},
                   summary="ZAP dispatch: billing.getBalance | getBalanceAll | getUsage | recordUsage | deposit")
    def post(self, request):
        try:
            rpc_id, method, params = _zap_envelope(request.body or b"")
        except _ZapBadEnvelope as exc:
            return Response({"id": exc.rpc_id, "error": {"code": exc.code, "message": exc.message}}, status=400)
        try:
            if method not in _STORE_MESSAGES:
                raise _ZapError(-32601, f"method not found: {method}")
            if not isinstance(params, dict):
                raise _ZapError(-32602, "invalid params: params must be an object")
            result = _zap_call(request.organization, method, without_nulls(params))
        except _ZapError as exc:
            return Response({"id": rpc_id, "error": {"code": exc.code, "message": exc.message}})
        except ApplicationError as exc:
            code = -32602 if isinstance(exc, AppValidationError) else -32000
            message = exc.message if code == -32602 else f"{_STORE_MESSAGES[method]}: {exc.message}"
            return Response({"id": rpc_id, "error": {"code": code, "message": message}})
        except DRFValidationError as exc:
            param, detail = first_error(exc.detail)
            message, _code = validation_message(param, detail)
            return Response({"id": rpc_id, "error": {"code": -32602, "message": message}})
        return Response({"id": rpc_id, "result": result})
