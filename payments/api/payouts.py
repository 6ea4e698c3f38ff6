"""Payouts over HTTP (spec payments.md §6): create (pending, no balance check), list (bare array), get,
cancel. The beat task (``payments.tasks``) moves pending payouts on; no route does."""

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
from billing_project.core.money import currency_normalize
from payments.selectors import payouts as payout_selectors
from payments.services import payouts as payout_services


class PayoutIn(serializers.Serializer):
    amount = StrictIntegerField(required=False, default=0, help_text="minor units, > 0")
    currency = StrictCharField(required=False, default="usd", allow_blank=True,
                               help_text="ISO 4217, any case; default usd")
    destinationType = StrictCharField(required=False, default="", allow_blank=True, max_length=40,
                                      help_text="bank_account or card")
    destinationId = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    description = StrictCharField(required=False, default="", allow_blank=True, max_length=1000)
    metadata = StrictDictField(required=False, default=dict)

    def validate_currency(self, value):
        return currency_normalize(value)


class PayoutOut(serializers.Serializer):
    id = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "in_transit", "paid", "failed", "canceled"])
    destinationType = serializers.CharField()
    destinationId = serializers.CharField()
    created = serializers.DateTimeField()
    description = serializers.CharField(required=False)
    arrivalDate = serializers.DateTimeField(required=False)
    providerRef = serializers.CharField(required=False)
    failureCode = serializers.CharField(required=False, help_text="insufficient_funds: the settled balance "
                                                                  "did not cover the payout")
    failureMessage = serializers.CharField(required=False)
    metadata = serializers.DictField(required=False)


def _render(payout) -> dict:
    return payout_services.payout_data(payout)


class PayoutsView(APIView):
    @extend_schema(request=PayoutIn, responses={201: PayoutOut},
                   summary="Create a payout: pending, no balance check (funds are checked and moved when it "
                           "leaves pending)")
    def post(self, request):
        v = validated(PayoutIn, body(request))
        payout = payout_services.payout_create(
            organization=request.organization, amount=v["amount"], currency=v["currency"],
            destination_type=v["destinationType"], destination_id=v["destinationId"],
            description=v["description"], metadata=v["metadata"])
        return Response(_render(payout), status=http.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("status", str, required=False), *PAGING_PARAMETERS],
                   responses=PayoutOut(many=True),
                   summary="List payouts, newest first (bare array; more pages via the Link header)")
    def get(self, request):
        payouts = payout_selectors.payout_list(organization=request.organization,
                                               status=(request.query_params.get("status") or "").strip())
        return paged_array(request, payouts, _render)


class PayoutView(APIView):
    @extend_schema(responses=PayoutOut, summary="One payout")
    def get(self, request, payout_id: str):
        return Response(_render(payout_selectors.payout_get(organization=request.organization,
                                                            payout_id=payout_id)))


class PayoutCancelView(APIView):
    @extend_schema(request=None, responses=PayoutOut,
                   summary="pending → canceled (no money moves); 400 `can only cancel pending payouts, current: "
                           "<status>`")
    def post(self, request, payout_id: str):
        payout_selectors.payout_get(organization=request.organization, payout_id=payout_id)
        optional_body(request)
        payout = payout_services.payout_cancel(organization=request.organization, payout_id=payout_id)
        return Response(_render(payout))


urlpatterns = [
    path("payouts", PayoutsView.as_view(), name="payouts"),
    path("payouts/<str:payout_id>", PayoutView.as_view(), name="payout"),
    path("payouts/<str:payout_id>/cancel", PayoutCancelView.as_view(), name="payout-cancel"),
]
