"""Setup intents over HTTP (spec payments.md §2): create, get, confirm, cancel. Unknown ids are 404 before
any body check; action bodies are optional."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField, StrictDictField
from billing_project.core.api.inputs import body, optional_body, validated
from payments.selectors import setup_intents as setup_intent_selectors
from payments.services import setup_intents as setup_intent_services


class SetupIntentIn(serializers.Serializer):
    customerId = StrictCharField(max_length=255)
    paymentMethodId = StrictCharField(required=False, default="", allow_blank=True, max_length=255,
                                      help_text="→ requires_confirmation; checked when confirmed")
    usage = StrictCharField(required=False, default="off_session", allow_blank=True, max_length=40,
                            help_text="off_session (default) or on_session")
    metadata = StrictDictField(required=False, default=dict)


class SetupIntentConfirmIn(serializers.Serializer):
    paymentMethodId = StrictCharField(required=False, default="", allow_blank=True, max_length=255,
                                      help_text="replaces the intent's payment method; must be the customer's")


class SetupIntentCancelIn(serializers.Serializer):
    cancellationReason = StrictCharField(required=False, default="", allow_blank=True, max_length=500)


class SetupIntentOut(serializers.Serializer):
    id = serializers.CharField()
    customerId = serializers.CharField()
    status = serializers.ChoiceField(choices=["requires_payment_method", "requires_confirmation",
                                              "requires_action", "processing", "succeeded", "canceled"])
    usage = serializers.CharField()
    created = serializers.DateTimeField()
    paymentMethodId = serializers.CharField(required=False)
    providerRef = serializers.CharField(required=False)
    lastError = serializers.CharField(required=False)
    metadata = serializers.DictField(required=False)
    cancellationReason = serializers.CharField(required=False)
    canceledAt = serializers.DateTimeField(required=False)


def _render(intent) -> dict:
    return setup_intent_services.setup_intent_data(intent)


class SetupIntentsView(APIView):
    @extend_schema(request=SetupIntentIn, responses={201: SetupIntentOut},
                   summary="Create a setup intent (save a payment method for later; nothing is charged)")
    def post(self, request):
        v = validated(SetupIntentIn, body(request))
        intent = setup_intent_services.setup_intent_create(
            organization=request.organization, customer_id=v["customerId"],
            payment_method_id=v["paymentMethodId"], usage=v["usage"], metadata=v["metadata"])
        return Response(_render(intent), status=http.HTTP_201_CREATED)


class SetupIntentView(APIView):
    @extend_schema(responses=SetupIntentOut, summary="One setup intent")
    def get(self, request, setup_intent_id: str):
        return Response(_render(setup_intent_selectors.setup_intent_get(organization=request.organization,
                                                                        setup_intent_id=setup_intent_id)))


class SetupIntentConfirmView(APIView):
    @extend_schema(request=SetupIntentConfirmIn, responses=SetupIntentOut,
                   summary="Confirm: the customer's payment method is saved for later use → succeeded "
                           "(no charge)")
    def post(self, request, setup_intent_id: str):
        setup_intent_selectors.setup_intent_get(organization=request.organization, setup_intent_id=setup_intent_id)
        v = validated(SetupIntentConfirmIn, optional_body(request))
        intent = setup_intent_services.setup_intent_confirm(
            organization=request.organization, setup_intent_id=setup_intent_id,
            payment_method_id=v["paymentMethodId"])
        return Response(_render(intent))


class SetupIntentCancelView(APIView):
    @extend_schema(request=SetupIntentCancelIn, responses=SetupIntentOut,
                   summary="Cancel (from any status but succeeded or canceled)")
    def post(self, request, setup_intent_id: str):
        setup_intent_selectors.setup_intent_get(organization=request.organization, setup_intent_id=setup_intent_id)
        v = validated(SetupIntentCancelIn, optional_body(request))
        intent = setup_intent_services.setup_intent_cancel(
            organization=request.organization, setup_intent_id=setup_intent_id,
            cancellation_reason=v["cancellationReason"])
        return Response(_render(intent))


urlpatterns = [
    path("setup-intents", SetupIntentsView.as_view(), name="setup-intents"),
    path("setup-intents/<str:setup_intent_id>", SetupIntentView.as_view(), name="setup-intent"),
    path("setup-intents/<str:setup_intent_id>/confirm", SetupIntentConfirmView.as_view(),
         name="setup-intent-confirm"),
    path("setup-intents/<str:setup_intent_id>/cancel", SetupIntentCancelView.as_view(),
         name="setup-intent-cancel"),
]
