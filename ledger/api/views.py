"""Ledger HTTP interface: parse, call one service or selector, render the original's body shapes.

The five balance operations are plain functions so ``/zap`` dispatches to exactly the same code."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status as http
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.errors import first_error, validation_message
from billing_project.core.api.inputs import body, optional_body, query_required, validated, without_nulls
from billing_project.core.api.pagination import PAGING_PARAMETERS, paginate
from billing_project.core.api.parsers import NulCharacter, json_loads_safe
from billing_project.core.errors import ApplicationError
from billing_project.core.errors import ValidationError as AppValidationError
from billing_project.core.money import currency_normalize
from billing_project.core.times import rfc3339
from ledger import selectors, services
from ledger.api import serializers as s
from ledger.api.filters import HoldFilter
from ledger.models import Hold

PAGING = PAGING_PARAMETERS
USER_Q = OpenApiParameter("user", str, required=True, description="e.g. hanzo/alice")


# --- operations shared by HTTP and ZAP ---------------------------------------------------------------

def op_get_balance(organization, *, user: str, currency) -> dict:
    cur = currency_normalize(currency)
    wallet = selectors.balance_get(organization=organization, user=user, currency=cur)
    return {"user": user, "currency": cur, "balance": wallet.balance, "holds": wallet.holds,
            "available": wallet.available}


def op_get_balance_all(organization, *, user: str) -> dict:
    balances = selectors.balance_list(organization=organization, user=user)
    return {"user": user, "balances": [
        {"currency": b.currency, "balance": b.balance, "holds": b.holds, "available": b.available}
        for b in balances
    ]}


def op_get_usage(organization, *, user: str, currency, query_params) -> dict:
    cur = currency_normalize(currency, default=None) if currency else None
    qs = selectors.usage_list(organization=organization, user=user, currency=cur)
    items, has_more = paginate(qs, query_params)
    usage = [{"transactionId": t.public_id, "amount": t.amount, "currency": t.currency, "notes": t.notes,
              "metadata": t.metadata, "createdAt": rfc3339(t.created_at)} for t in items]
    return {"user": user, "count": len(usage), "usage": usage, "hasMore": has_more}


def op_record_usage(organization, data: dict, *, recorder=services.usage_record) -> tuple[int, dict]:
    """``recorder`` is ``ledger.services.usage_record`` or a higher app's service with the same signature
    (``invoicing`` adds the usage meter event in the same transaction; see invoicing/api/usage.py)."""
    v = validated(s.UsageIn, data)
    v["totalTokens"] = _total_tokens(v)
    if v["amount"] <= 0:  # the original: "≤ 0 means nothing to charge"
        return http.HTTP_200_OK, {"user": v["user"], "amount": 0, "status": "skipped"}
    metadata = {key: v[key] for key in ("model", "provider", "promptTokens", "completionTokens", "totalTokens",
                                        "requestId", "premium", "stream", "status", "clientIp")}
    txn = recorder(
        organization=organization, user=v["user"], amount=v["amount"], currency=v["currency"],
        notes=f"API usage: {v['model']} ({v['totalTokens']} tokens)", metadata=metadata,
        request_id=v["requestId"] or None,
    )
    return http.HTTP_201_CREATED, {"transactionId": txn.public_id, "user": txn.customer, "amount": txn.amount,
                                   "currency": txn.currency, "type": "withdraw"}


def _total_tokens(v: dict) -> int:
    """``tokens`` is an alias of ``totalTokens``; sent together they must agree."""
    total, alias = v["totalTokens"], v.pop("tokens")
    if total is not None and alias is not None and total != alias:
        raise AppValidationError(f"tokens ({alias}) must equal totalTokens ({total}) when both are sent",
                                 param="tokens")
    return total if total is not None else (alias or 0)


def op_deposit(organization, data: dict, *, idempotency_key: str | None = None) -> tuple[int, dict]:
    v = validated(s.DepositIn, data)
    txn = services.deposit_create(
        organization=organization, user=v["user"], amount=v["amount"], currency=v["currency"], notes=v["notes"],
        tags=v["tags"], expires_in=v["expiresIn"],
        idempotency_key=f"deposit:{idempotency_key}" if idempotency_key else None,
    )
    return http.HTTP_201_CREATED, _txn_body(txn)


def _txn_body(txn, **extra) -> dict:
    out = {"transactionId": txn.public_id, "user": txn.customer, "amount": txn.amount, "currency": txn.currency,
           "type": txn.type, "tags": txn.tags}
    if txn.expires_at:
        out["expiresAt"] = rfc3339(txn.expires_at)
    out.update(extra)
    return out


# --- HTTP views -------------------------------------------------------------------------------------

class BalanceView(APIView):
    @extend_schema(parameters=[USER_Q, OpenApiParameter("currency", str, description="default usd")],
                   responses=s.BalanceOut, summary="Balance of one user in one currency")
    def get(self, request):
        user = query_required(request, "user")
        return Response(op_get_balance(request.organization, user=user,
                                       currency=request.query_params.get("currency")))


class BalanceAllView(APIView):
    @extend_schema(parameters=[USER_Q], responses=s.BalanceAllOut, summary="Balances in every currency")
    def get(self, request):
        user = query_required(request, "user")
        return Response(op_get_balance_all(request.organization, user=user))


class UsageView(APIView):
    usage_recorder = staticmethod(services.usage_record)

    @extend_schema(parameters=[USER_Q, OpenApiParameter("currency", str), *PAGING], responses=s.UsageListOut,
                   summary="List a user's API-usage withdrawals, newest first")
    def get(self, request):
        user = query_required(request, "user")
        return Response(op_get_usage(request.organization, user=user, currency=request.query_params.get("currency"),
                                     query_params=request.query_params))

    @extend_schema(request=s.UsageIn, responses={201: s.UsageRecordedOut, 200: s.UsageRecordedOut},
                   summary="Record the cost of one API call (withdrawal); amount ≤ 0 → skipped")
    def post(self, request):
        status, out = op_record_usage(request.organization, body(request), recorder=self.usage_recorder)
        return Response(out, status=status)


class DepositView(APIView):
    @extend_schema(request=s.DepositIn, responses={201: s.TransactionOut}, summary="Add funds to a wallet")
    def post(self, request):
        status, out = op_deposit(request.organization, body(request),
                                 idempotency_key=request.headers.get("Idempotency-Key"))
        return Response(out, status=status)


class StarterCreditView(APIView):
    @extend_schema(request=s.StarterCreditIn, responses={201: s.TransactionOut},
                   summary="Grant the $5.00 / 30-day starter credit (once per user; 409 after)")
    def post(self, request):
        v = validated(s.StarterCreditIn, body(request))
        txn = services.starter_credit_grant(organization=request.organization, user=v["user"])
        return Response(_txn_body(txn), status=http.HTTP_201_CREATED)


class RefundView(APIView):
    @extend_schema(request=s.RefundIn, responses={201: s.TransactionOut},
                   summary="Refund (part of) a usage withdrawal as a deposit tagged refund")
    def post(self, request):
        v = validated(s.RefundIn, body(request))
        txn = services.refund_create(
            organization=request.organization, user=v["user"], amount=v["amount"], currency=v["currency"],
            original_transaction_id=v["originalTransactionId"], notes=v["notes"],
        )
        return Response(_txn_body(txn, originalTransactionId=v["originalTransactionId"]),
                        status=http.HTTP_201_CREATED)


class HoldViewSet(viewsets.GenericViewSet):
    lookup_value_regex = "[^/]+"
    filterset_class = HoldFilter
    serializer_class = s.HoldOut

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller organization
            return Hold.objects.none()
        return selectors.hold_list(organization=self.request.organization)

    @extend_schema(parameters=PAGING, responses=s.HoldListOut, summary="List holds, newest first")
    def list(self, request):
        items, has_more = paginate(self.filter_queryset(self.get_queryset()), request.query_params)
        return Response({"holds": [services.hold_data(h) for h in items], "count": len(items),
                         "hasMore": has_more})

    @extend_schema(responses=s.HoldOut, summary="Get a hold")
    def retrieve(self, request, pk=None):
        return Response(services.hold_data(selectors.hold_get(organization=request.organization, hold_id=pk)))

    @extend_schema(request=s.HoldIn, responses={201: s.HoldOut},
                   summary="Place a hold on a wallet's available balance (402 when it is not enough)")
    def create(self, request):
        v = validated(s.HoldIn, body(request))
        hold = services.hold_place(
            organization=request.organization, user=v["user"], amount=v["amount"], currency=v["currency"],
            expires_in_seconds=v["expiresIn"], notes=v["notes"], metadata=v["metadata"],
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        return Response(services.hold_data(hold), status=http.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.HoldOut, summary="Release a pending hold (holdRemoved)")
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        optional_body(request)  # an action takes no body or a JSON object; anything else is 400
        hold = services.hold_release(organization=request.organization, hold_id=pk)
        return Response(services.hold_data(hold))

    @extend_schema(request=s.HoldCaptureIn, responses=s.HoldOut,
                   summary="Capture a pending hold (all of it, or `amount`); the rest is released")
    @action(detail=True, methods=["post"])
    def capture(self, request, pk=None):
        v = validated(s.HoldCaptureIn, optional_body(request))
        hold = services.hold_capture(organization=request.organization, hold_id=pk, amount=v["amount"] or None)
        return Response(services.hold_data(hold))


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


def _zap_call(organization, method: str, params: dict, query_params, recorder) -> dict:
    if method == "billing.getBalance":
        return op_get_balance(organization, user=_zap_user(params), currency=params.get("currency"))
    if method == "billing.getBalanceAll":
        return op_get_balance_all(organization, user=_zap_user(params))
    if method == "billing.getUsage":
        return op_get_usage(organization, user=_zap_user(params), currency=params.get("currency"),
                            query_params={})
    if method == "billing.recordUsage":
        return op_record_usage(organization, params, recorder=recorder)[1]
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

    usage_recorder = staticmethod(services.usage_record)

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
            result = _zap_call(request.organization, method, without_nulls(params), request.query_params,
                               self.usage_recorder)
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
