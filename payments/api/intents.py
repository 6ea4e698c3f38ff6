"""Payment intents over HTTP (spec payments.md §1): parse, call one service or selector, render.

Confirm, capture and cancel call the payment processor, so they run outside the request transaction
(``request_transaction = False``): their service commits a pending attempt, calls the processor with no
transaction open, then applies the result in a new transaction."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField, StrictDictField, StrictIntegerField
from billing_project.core.api.inputs import body, optional_body, validated
from billing_project.core.api.pagination import PAGING_PARAMETERS, paged_array
from billing_project.core.money import INT64_MAX, INT64_MIN
from payments.selectors import intents as intent_selectors
from payments.services import intents as intent_services


def _text(max_length: int = 255, **kwargs) -> StrictCharField:
    return StrictCharField(required=False, default="", allow_blank=True, max_length=max_length, **kwargs)


class PaymentIntentIn(serializers.Serializer):
    customerId = _text(help_text="required; any opaque string (the customer row is created on first use)")
    amount = StrictIntegerField(required=False, default=0, min_value=INT64_MIN, max_value=INT64_MAX,
                                help_text="minor units, > 0")
    currency = StrictCharField(required=False, default="usd", allow_blank=True, max_length=10)
    paymentMethodId = _text(60, help_text="an attached payment method of your organization (404 otherwise)")
    captureMethod = _text(40, help_text="automatic (default: charge at confirm) or manual (authorize only)")
    confirmationMethod = _text(40, help_text="stored only")
    setupFutureUsage = _text(40, help_text="stored only")
    description = _text(1000)
    receiptEmail = _text()
    invoiceId = _text(60, help_text="optional link, not checked")
    metadata = StrictDictField(required=False, default=dict)


class ConfirmIn(serializers.Serializer):
    paymentMethodId = _text(60, help_text="replaces the intent's payment method")


class CaptureIn(serializers.Serializer):
    amountToCapture = StrictIntegerField(required=False, default=0, min_value=INT64_MIN, max_value=INT64_MAX,
                                         help_text="≤ 0 or absent: everything capturable")


class PaymentIntentCancelIn(serializers.Serializer):
    cancellationReason = _text(1000, help_text="free text")


class PaymentIntentOut(serializers.Serializer):
    id = serializers.CharField()
    customerId = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=["requires_payment_method", "requires_confirmation",
                                              "requires_action", "processing", "requires_capture", "succeeded",
                                              "canceled"])
    captureMethod = serializers.CharField()
    confirmationMethod = serializers.CharField()
    amountCapturable = serializers.IntegerField(help_text="authorized, not yet captured")
    amountReceived = serializers.IntegerField(help_text="captured (gross; processor fees are posted separately)")
    amountRefunded = serializers.IntegerField()
    created = serializers.DateTimeField()
    paymentMethodId = serializers.CharField(required=False)
    invoiceId = serializers.CharField(required=False)
    description = serializers.CharField(required=False)
    providerRef = serializers.CharField(required=False)
    lastError = serializers.CharField(required=False, help_text="the last processor error (a decline)")
    cancellationReason = serializers.CharField(required=False)
    canceledAt = serializers.DateTimeField(required=False)
    metadata = serializers.DictField(required=False)


def _render(intent) -> dict:
    return intent_selectors.payment_intent_data(intent)


class PaymentIntentsView(APIView):
    @extend_schema(request=PaymentIntentIn, responses={201: PaymentIntentOut}, summary="Create a payment intent")
    def post(self, request):
        v = validated(PaymentIntentIn, body(request))
        intent = intent_services.payment_intent_create(
            organization=request.organization, customer_id=v["customerId"], amount=v["amount"],
            currency=v["currency"], payment_method_id=v["paymentMethodId"], capture_method=v["captureMethod"],
            confirmation_method=v["confirmationMethod"], setup_future_usage=v["setupFutureUsage"],
            description=v["description"], receipt_email=v["receiptEmail"], invoice_id=v["invoiceId"],
            metadata=v["metadata"])
        return Response(_render(intent), status=http.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("customerId", str, required=False), *PAGING_PARAMETERS],
                   responses=PaymentIntentOut(many=True), operation_id="payment_intents_list",
                   summary="List payment intents, newest first (bare array; more pages via the Link header)")
    def get(self, request):
        customer_id = (request.query_params.get("customerId") or "").strip()
        return paged_array(request, intent_selectors.payment_intent_list(
            organization=request.organization, customer_id=customer_id), _render)


class PaymentIntentView(APIView):
    @extend_schema(responses=PaymentIntentOut, summary="One payment intent", operation_id="payment_intents_retrieve")
    def get(self, request, intent_id: str):
        return Response(_render(intent_selectors.payment_intent_get(organization=request.organization,
                                                                    intent_id=intent_id)))


class _ProcessorAction(APIView):
    request_transaction = False  # the service calls the processor: no transaction may be open around it

    def _input(self, request, intent_id: str, serializer) -> dict:
        # Unknown ids are 404 before any body check.
        intent_services.payment_intent_exists(organization=request.organization, intent_id=intent_id)
        return validated(serializer, optional_body(request))


class PaymentIntentConfirmView(_ProcessorAction):
    @extend_schema(request=ConfirmIn, responses={200: PaymentIntentOut},
                   summary="Confirm: charge (or, with captureMethod manual, authorize) the payment method; "
                           "402 `card declined: …` on a decline")
    def post(self, request, intent_id: str):
        v = self._input(request, intent_id, ConfirmIn)
        intent = intent_services.payment_intent_confirm(organization=request.organization, intent_id=intent_id,
                                                        payment_method_id=v["paymentMethodId"])
        return Response(_render(intent))


class PaymentIntentCaptureView(_ProcessorAction):
    @extend_schema(request=CaptureIn, responses={200: PaymentIntentOut},
                   summary="Capture an authorized intent (all, or amountToCapture; the rest is released)")
    def post(self, request, intent_id: str):
        v = self._input(request, intent_id, CaptureIn)
        intent = intent_services.payment_intent_capture(organization=request.organization, intent_id=intent_id,
                                                        amount=v["amountToCapture"])
        return Response(_render(intent))


class PaymentIntentCancelView(_ProcessorAction):
    @extend_schema(request=PaymentIntentCancelIn, responses={200: PaymentIntentOut},
                   summary="Cancel (an authorization is released at the processor)")
    def post(self, request, intent_id: str):
        v = self._input(request, intent_id, PaymentIntentCancelIn)
        intent = intent_services.payment_intent_cancel(organization=request.organization, intent_id=intent_id,
                                                       reason=v["cancellationReason"])
        return Response(_render(intent))


urlpatterns = [
    path("payment-intents", PaymentIntentsView.as_view(), name="payment-intents"),
    path("payment-intents/<str:intent_id>", PaymentIntentView.as_view(), name="payment-intent"),
    path("payment-intents/<str:intent_id>/confirm", PaymentIntentConfirmView.as_view(), name="payment-intent-confirm"),
    path("payment-intents/<str:intent_id>/capture", PaymentIntentCaptureView.as_view(), name="payment-intent-capture"),
    path("payment-intents/<str:intent_id>/cancel", PaymentIntentCancelView.as_view(), name="payment-intent-cancel"),
]
