"""Payment methods over HTTP (spec payments.md §3): parse, call one service or selector, render.

A card ``number`` and ``cvc`` are accepted next to the original's card fields, checked by the service and
never echoed; unknown ids are 404 before any body check."""

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
from payments.api.common import AddressIn, AddressOut, address_clean
from payments.selectors import methods as method_selectors
from payments.services import methods as method_services


def _opt(max_length: int = 255) -> StrictCharField:
    return StrictCharField(required=False, default="", allow_blank=True, max_length=max_length)


class CardIn(serializers.Serializer):
    number = StrictCharField(required=False, default="", allow_blank=True, max_length=40, trim_whitespace=False,
                             help_text="full card number (Luhn-checked; never stored or echoed); sets last4 and, "
                                       "when brand is absent, the brand")
    cvc = StrictCharField(required=False, default="", allow_blank=True, max_length=10, trim_whitespace=False,
                          help_text="3 or 4 digits; checked, never stored")
    brand = _opt(40)
    last4 = _opt(4)
    expMonth = StrictIntegerField(required=False, default=0, min_value=0, max_value=12, help_text="1–12")
    expYear = StrictIntegerField(required=False, default=0, min_value=0, max_value=9999,
                                 help_text="a past expiry is accepted (the charge declines it)")
    funding = _opt(20)
    country = _opt(2)


class BankAccountIn(serializers.Serializer):
    bankName = _opt()
    last4 = _opt(4)
    routingNumber = _opt(40)
    accountType = _opt(40)


class PaymentMethodIn(serializers.Serializer):
    customerId = StrictCharField(max_length=255)
    type = StrictCharField(required=False, default="card", allow_blank=True, max_length=40,
                           help_text="card (default), bank_account, balance, …")
    card = CardIn(required=False)
    bankAccount = BankAccountIn(required=False)
    billingAddress = AddressIn(required=False)
    providerRef = _opt()
    providerType = _opt(40)
    metadata = StrictDictField(required=False, default=dict)


class PaymentMethodUpdateIn(serializers.Serializer):
    billingAddress = AddressIn(required=False, help_text="replaces the stored address when present")
    metadata = StrictDictField(required=False, help_text="replaces the stored metadata when present")


class CardOut(serializers.Serializer):
    brand = serializers.CharField()
    last4 = serializers.CharField()
    expMonth = serializers.IntegerField(required=False)
    expYear = serializers.IntegerField(required=False)
    funding = serializers.CharField(required=False)
    country = serializers.CharField(required=False)


class BankAccountOut(serializers.Serializer):
    bankName = serializers.CharField(required=False)
    last4 = serializers.CharField(required=False)
    routingNumber = serializers.CharField(required=False)
    accountType = serializers.CharField(required=False)


class PaymentMethodOut(serializers.Serializer):
    id = serializers.CharField()
    customerId = serializers.CharField()
    type = serializers.CharField()
    isDefault = serializers.BooleanField(help_text="set only by POST /customers/:id/default-payment-method")
    created = serializers.DateTimeField()
    name = serializers.CharField(required=False, help_text="\"<brand> ending in <last4>\" for cards")
    card = CardOut(required=False)
    bankAccount = BankAccountOut(required=False)
    billingAddress = AddressOut(required=False)
    providerRef = serializers.CharField(required=False)
    metadata = serializers.DictField(required=False)


class DeletedOut(serializers.Serializer):
    deleted = serializers.BooleanField()
    id = serializers.CharField()


def _card(value: dict | None) -> method_services.CardInput | None:
    if value is None:
        return None
    return method_services.CardInput(number=value["number"], cvc=value["cvc"], brand=value["brand"],
                                     last4=value["last4"], exp_month=value["expMonth"],
                                     exp_year=value["expYear"], funding=value["funding"],
                                     country=value["country"])


def _bank(value: dict | None) -> dict | None:
    return None if value is None else {k: v for k, v in value.items() if v}


LIST_PARAMS = [OpenApiParameter("customerId", str, required=False), OpenApiParameter("type", str, required=False),
               *PAGING_PARAMETERS]


class PaymentMethodsView(APIView):
    @extend_schema(request=PaymentMethodIn, responses={201: PaymentMethodOut},
                   summary="Attach a payment method to a customer (never made default implicitly; no processor "
                           "call; card.number is Luhn-checked and never stored)")
    def post(self, request):
        v = validated(PaymentMethodIn, body(request))
        method = method_services.payment_method_create(
            organization=request.organization, customer_id=v["customerId"], type=v["type"],
            card=_card(v.get("card")), bank_account=_bank(v.get("bankAccount")),
            billing_address=address_clean(v.get("billingAddress")), provider_ref=v["providerRef"],
            provider_type=v["providerType"], metadata=v["metadata"])
        return Response(method_services.payment_method_data(method), status=http.HTTP_201_CREATED)

    @extend_schema(parameters=LIST_PARAMS, responses=PaymentMethodOut(many=True),
                   summary="List payment methods, newest first (bare array; more pages via the Link header)")
    def get(self, request):
        q = request.query_params
        methods = method_selectors.payment_method_list(organization=request.organization,
                                                       customer_id=(q.get("customerId") or "").strip(),
                                                       type=(q.get("type") or "").strip())
        return paged_array(request, methods, method_services.payment_method_data)


class PaymentMethodView(APIView):
    @extend_schema(responses=PaymentMethodOut, summary="One payment method (detached ones are 404)")
    def get(self, request, payment_method_id: str):
        method = method_selectors.payment_method_get(organization=request.organization,
                                                     payment_method_id=payment_method_id)
        return Response(method_services.payment_method_data(method))

    @extend_schema(request=PaymentMethodUpdateIn, responses=PaymentMethodOut,
                   summary="Replace billingAddress and/or metadata")
    def patch(self, request, payment_method_id: str):
        method_selectors.payment_method_get(organization=request.organization, payment_method_id=payment_method_id)
        v = validated(PaymentMethodUpdateIn, body(request))
        method = method_services.payment_method_update(
            organization=request.organization, payment_method_id=payment_method_id,
            billing_address=address_clean(v.get("billingAddress")), metadata=v.get("metadata"))
        return Response(method_services.payment_method_data(method))

    @extend_schema(responses={200: DeletedOut},
                   summary="Detach: the method answers 404 from now on; a default is cleared, none promoted")
    def delete(self, request, payment_method_id: str):
        method = method_services.payment_method_detach(organization=request.organization,
                                                       payment_method_id=payment_method_id)
        return Response({"deleted": True, "id": method.public_id})


urlpatterns = [
    path("payment-methods", PaymentMethodsView.as_view(), name="payment-methods"),
    path("payment-methods/<str:payment_method_id>", PaymentMethodView.as_view(), name="payment-method"),
]
