"""Customers over HTTP: ``POST/GET /customers``, ``GET/PATCH /customers/:id`` and
``POST /customers/:id/default-payment-method`` (spec payments.md §3.6). Customer ids are opaque and may
contain ``/`` (sent raw or as ``%2F``): the routes take the rest of the path as the id."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.urls import path, re_path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField, StrictDictField
from billing_project.core.api.inputs import body, validated
from billing_project.core.api.pagination import PAGING_PARAMETERS, next_link, paginate
from billing_project.core.errors import ValidationError
from billing_project.core.money import currency_normalize
from payments.api.common import AddressIn, AddressOut, address_clean
from payments.api.methods import PaymentMethodOut
from payments.selectors import methods as method_selectors
from payments.services import customers as customer_services
from payments.services import methods as method_services

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")


class TaxIdIn(serializers.Serializer):
    type = StrictCharField(max_length=40, help_text="e.g. eu_vat, us_ein, gb_vat")
    value = StrictCharField(max_length=100)


class TaxIdOut(serializers.Serializer):
    type = serializers.CharField()
    value = serializers.CharField()


class CustomerFieldsIn(serializers.Serializer):
    """The settable fields; in a PATCH only those sent are replaced."""

    name = StrictCharField(required=False, allow_blank=True, max_length=255)
    email = StrictCharField(required=False, allow_blank=True, max_length=255)
    address = AddressIn(required=False)
    taxIds = TaxIdIn(many=True, required=False, max_length=25)
    preferredCurrency = StrictCharField(required=False, allow_blank=True, max_length=3,
                                        help_text="ISO 4217, any case (stored lower-case)")
    locale = StrictCharField(required=False, allow_blank=True, max_length=35, help_text="e.g. en, en-US, fr-CA")
    metadata = StrictDictField(required=False)

    def validate_email(self, value: str) -> str:
        if value:
            try:
                validate_email(value)
            except DjangoValidationError:
                raise serializers.ValidationError("must be a valid email address") from None
        return value

    def validate_preferredCurrency(self, value: str) -> str:
        return currency_normalize(value, param="preferredCurrency", default="") if value else ""

    def validate_locale(self, value: str) -> str:
        if value and not _LOCALE.match(value):
            raise serializers.ValidationError("must be a language tag like en or en-US")
        return value


class CustomerIn(CustomerFieldsIn):
    id = StrictCharField(required=False, max_length=255, help_text="your customer id (opaque; may contain /)")
    customerId = StrictCharField(required=False, max_length=255, help_text="alias of id")


class CustomerOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    email = serializers.CharField()
    address = AddressOut()
    taxIds = TaxIdOut(many=True)
    preferredCurrency = serializers.CharField()
    locale = serializers.CharField()
    metadata = serializers.DictField()
    defaultPaymentMethod = serializers.CharField(allow_null=True, help_text="set by POST "
                                                 "/customers/:id/default-payment-method")
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()


class CustomerListOut(serializers.Serializer):
    customers = CustomerOut(many=True)
    count = serializers.IntegerField(help_text="customers in this page")
    hasMore = serializers.BooleanField(help_text="more after the last one: pass its id as startingAfter")


class DefaultPaymentMethodIn(serializers.Serializer):
    paymentMethodId = StrictCharField(required=False, default="", allow_blank=True, max_length=255)


def _fields(v: dict) -> dict:
    fields = {k: v[k] for k in CustomerFieldsIn().fields if k in v}
    if "address" in fields:
        fields["address"] = address_clean(fields["address"])
    if "taxIds" in fields:
        fields["taxIds"] = [dict(t) for t in fields["taxIds"]]
    return fields


def _customer_id(v: dict) -> str:
    given = {v.get("id") or "", v.get("customerId") or ""} - {""}
    if not given:
        raise ValidationError("id is required", param="id", code="parameter_missing")
    if len(given) > 1:
        raise ValidationError("id and customerId differ; send one", param="customerId")
    return given.pop()


LIST_PARAMS = [OpenApiParameter("search", str, required=False, description="part of the id, name or email"),
               OpenApiParameter("email", str, required=False, description="exactly this email, any case"),
               *PAGING_PARAMETERS]


class CustomersView(APIView):
    @extend_schema(request=CustomerIn, responses={201: CustomerOut},
                   summary="Create a customer (409 `customer already exists` when the id is taken: customers are "
                           "also created implicitly the first time any object names them)")
    def post(self, request):
        v = validated(CustomerIn, body(request))
        customer = customer_services.customer_create(organization=request.organization,
                                                     customer_id=_customer_id(v), fields=_fields(v))
        return Response(customer_services.customer_data(customer), status=http.HTTP_201_CREATED)

    @extend_schema(operation_id="v1_billing_customers_list", parameters=LIST_PARAMS, responses=CustomerListOut,
                   summary="List customers, newest first, searchable")
    def get(self, request):
        q = request.query_params
        customers, has_more = paginate(method_selectors.customer_list(
            organization=request.organization, search=(q.get("search") or "").strip(),
            email=(q.get("email") or "").strip()), q, id_field="customer_id")
        response = Response({"customers": [customer_services.customer_data(c) for c in customers],
                             "count": len(customers), "hasMore": has_more})
        link = next_link(request, customers, has_more, id_attr="customer_id")
        if link:
            response["Link"] = link
        return response


class CustomerView(APIView):
    @extend_schema(responses=CustomerOut, summary="One customer")
    def get(self, request, customer_id: str):
        customer = method_selectors.customer_get(organization=request.organization, customer_id=customer_id)
        return Response(customer_services.customer_data(customer))

    @extend_schema(request=CustomerFieldsIn, responses=CustomerOut,
                   summary="Replace the fields sent (address and metadata wholesale)")
    def patch(self, request, customer_id: str):
        method_selectors.customer_get(organization=request.organization, customer_id=customer_id)
        v = validated(CustomerFieldsIn, body(request))
        customer = customer_services.customer_update(organization=request.organization, customer_id=customer_id,
                                                     fields=_fields(v))
        return Response(customer_services.customer_data(customer))


class CustomerDefaultPaymentMethodView(APIView):
    @extend_schema(request=DefaultPaymentMethodIn, responses=PaymentMethodOut,
                   summary="Make one of the customer's payment methods the default (validated first: 404 "
                           "`payment method not found` for an unknown, detached or other customer's method, "
                           "and the old default stays)")
    def post(self, request, customer_id: str):
        v = validated(DefaultPaymentMethodIn, body(request))
        method = customer_services.customer_default_payment_method_set(
            organization=request.organization, customer_id=customer_id, payment_method_id=v["paymentMethodId"])
        return Response(method_services.payment_method_data(method))


urlpatterns = [
    path("customers", CustomersView.as_view(), name="customers"),
    # Before the catch-all: a customer id may itself contain "/".
    re_path(r"^customers/(?P<customer_id>.+)/default-payment-method$", CustomerDefaultPaymentMethodView.as_view(),
            name="customer-default-payment-method"),
    path("customers/<path:customer_id>", CustomerView.as_view(), name="customer"),
]
