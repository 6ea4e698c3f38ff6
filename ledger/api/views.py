"""Ledger HTTP interface: parse, call one service or selector, render the original's body shapes.

The balance operations are plain functions (``ledger.api.operations``) so ``/zap`` (served by invoicing, with
``/usage``: recording usage also writes the usage meter event) dispatches to exactly the same code."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status as http
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.inputs import body, optional_body, query_required, validated
from billing_project.core.api.pagination import PAGING_PARAMETERS, paginate
from ledger import selectors, services
from ledger.api import serializers as s
from ledger.api.filters import HoldFilter
from ledger.api.operations import op_deposit, op_get_balance, op_get_balance_all, txn_body
from ledger.models import Hold

PAGING = PAGING_PARAMETERS
USER_Q = OpenApiParameter("user", str, required=True, description="e.g. hanzo/alice")


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
        return Response(txn_body(txn), status=http.HTTP_201_CREATED)


class RefundView(APIView):
    @extend_schema(request=s.RefundIn, responses={201: s.TransactionOut},
                   summary="Refund (part of) a usage withdrawal as a deposit tagged refund")
    def post(self, request):
        v = validated(s.RefundIn, body(request))
        txn = services.refund_create(
            organization=request.organization, user=v["user"], amount=v["amount"], currency=v["currency"],
            original_transaction_id=v["originalTransactionId"], notes=v["notes"],
        )
        return Response(txn_body(txn, originalTransactionId=v["originalTransactionId"]),
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
