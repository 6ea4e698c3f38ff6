"""Refunds over HTTP (spec payments.md §4): parse, call one service or selector, render.

Creating a refund may call the payment processor, so the view runs outside the request transaction
(``request_transaction = False``): the service commits a pending refund, calls the processor with no
transaction open, then applies the answer in a new transaction."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField, StrictDictField, StrictIntegerField
from billing_project.core.api.inputs import body, validated
from billing_project.core.api.pagination import PAGING_PARAMETERS, paged_array
from billing_project.core.money import INT64_MAX, INT64_MIN
from payments.selectors import refunds as refund_selectors
from payments.services import refunds as refund_services


def _text(max_length: int = 255, **kwargs) -> StrictCharField:
    return StrictCharField(required=False, default="", allow_blank=True, max_length=max_length, **kwargs)


class PaymentRefundIn(serializers.Serializer):
    paymentIntentId = _text(60, help_text="a succeeded payment intent (wins when both ids are given)")
    invoiceId = _text(60, help_text="a paid invoice (stored, also when paymentIntentId wins)")
    amount = StrictIntegerField(required=False, default=0, min_value=INT64_MIN, max_value=INT64_MAX,
                                help_text="minor units; ≤ 0 or absent: everything still refundable")
    reason = _text(255, help_text="duplicate, fraudulent, requested_by_customer (any string is stored)")
    metadata = StrictDictField(required=False, default=dict)


class RefundGrantReturnOut(serializers.Serializer):
    grantId = serializers.CharField()
    sourceGrantId = serializers.CharField()
    amount = serializers.IntegerField()


class RefundOut(serializers.Serializer):
    id = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "succeeded", "failed", "canceled"])
    created = serializers.DateTimeField()
    customerId = serializers.CharField()
    cardAmount = serializers.IntegerField(help_text="given back to the card through the processor")
    customerBalanceAmount = serializers.IntegerField(help_text="credited to the customer balance")
    creditAmount = serializers.IntegerField(help_text="re-issued as credit grants (see creditGrants)")
    paymentIntentId = serializers.CharField(required=False)
    invoiceId = serializers.CharField(required=False)
    reason = serializers.CharField(required=False)
    providerRef = serializers.CharField(required=False)
    receiptNumber = serializers.CharField(required=False)
    failureReason = serializers.CharField(required=False)
    creditGrants = RefundGrantReturnOut(many=True, required=False)
    metadata = serializers.DictField(required=False)


class RefundsView(APIView):
    request_transaction = False  # the service calls the processor: no transaction may be open around it

    @extend_schema(request=PaymentRefundIn, responses={201: RefundOut},
                   summary="Refund a succeeded payment intent or a paid invoice (cumulative caps; 400 "
                           "`refund amount … exceeds …`)")
    def post(self, request):
        v = validated(PaymentRefundIn, body(request))
        refund = refund_services.refund_create(
            organization=request.organization, payment_intent_id=v["paymentIntentId"], invoice_id=v["invoiceId"],
            amount=v["amount"], reason=v["reason"], metadata=v["metadata"])
        return Response(refund_selectors.refund_data(refund), status=http.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("paymentIntentId", str, required=False),
                               OpenApiParameter("invoiceId", str, required=False), *PAGING_PARAMETERS],
                   responses=RefundOut(many=True), operation_id="refunds_list",
                   summary="List refunds, newest first (bare array; more pages via the Link header)")
    def get(self, request):
        params = request.query_params
        return paged_array(request, refund_selectors.refund_list(
            organization=request.organization, payment_intent_id=(params.get("paymentIntentId") or "").strip(),
            invoice_id=(params.get("invoiceId") or "").strip()), refund_selectors.refund_data)


class RefundView(APIView):
    @extend_schema(responses=RefundOut, summary="One refund", operation_id="refunds_retrieve")
    def get(self, request, refund_id: str):
        return Response(refund_selectors.refund_data(refund_selectors.refund_get(
            organization=request.organization, refund_id=refund_id)))


urlpatterns = [
    path("refunds", RefundsView.as_view(), name="refunds"),
    path("refunds/<str:refund_id>", RefundView.as_view(), name="refund"),
]
