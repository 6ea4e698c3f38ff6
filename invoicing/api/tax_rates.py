"""Tax-rate HTTP interface: GET/POST /tax-rates, DELETE /tax-rates/:id.

Input serializers check JSON types; ``invoicing.services.tax`` validates and normalizes (errors name the
field: ``country must be a two-letter ISO 3166 code``); output serializers document the bodies."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictBooleanField, StrictCharField, StrictIntegerField
from billing_project.core.api.inputs import api_actor, body, validated
from invoicing.selectors import tax as tax_selectors
from invoicing.services import tax as tax_services

# --- inputs -----------------------------------------------------------------------------------------


class TaxRateIn(serializers.Serializer):
    country = StrictCharField(help_text="ISO 3166-1 alpha-2, case-insensitive (stored upper case)")
    state = StrictCharField(required=False, default="", allow_blank=True,
                            help_text="State or province code (≤ 10 letters, digits, dashes); empty = country-wide. "
                                      "State and country-wide rates stack")
    percentageBasisPoints = StrictIntegerField(help_text="0..100000; 875 = 8.75 %")
    inclusive = StrictBooleanField(required=False, default=False,
                                   help_text="true: the tax is contained in the line amounts (shown, not added)")
    displayName = StrictCharField(help_text="Shown on invoices, e.g. \"CA State Tax\" (≤ 100 characters)")
    description = StrictCharField(required=False, default="", allow_blank=True)


# --- outputs (documentation of the bodies built by services.tax_rate_data) ---------------------------

class TaxRateOut(serializers.Serializer):
    id = serializers.CharField()
    country = serializers.CharField()
    state = serializers.CharField()
    percentageBasisPoints = serializers.IntegerField()
    percentage = serializers.CharField(help_text="The percentage with two decimals, e.g. \"8.75\"")
    inclusive = serializers.BooleanField()
    displayName = serializers.CharField()
    description = serializers.CharField()
    active = serializers.BooleanField(help_text="false once deleted (archived)")
    createdAt = serializers.DateTimeField()


class TaxRateListOut(serializers.Serializer):
    taxRates = TaxRateOut(many=True)
    count = serializers.IntegerField()


class TaxRateDeletedOut(serializers.Serializer):
    id = serializers.CharField()
    deleted = serializers.BooleanField()


# --- views ------------------------------------------------------------------------------------------

class TaxRatesView(APIView):
    # An APIView, not a ViewSet ``list`` action: drf-spectacular would document ``{"taxRates", "count"}`` as
    # an array of such objects.
    @extend_schema(operation_id="v1_billing_tax_rates_list",
                   parameters=[OpenApiParameter("country", str, description="only this country's rates"),
                               OpenApiParameter("state", str, description="only this state's rates")],
                   responses=TaxRateListOut, summary="List active tax rates, by country, state, then age")
    def get(self, request):
        rates = tax_selectors.tax_rate_list(organization=request.organization,
                                            country=request.query_params.get("country") or "",
                                            state=request.query_params.get("state") or "")
        out = [tax_services.tax_rate_data(rate) for rate in rates]
        return Response({"taxRates": out, "count": len(out)})

    @extend_schema(request=TaxRateIn, responses={201: TaxRateOut}, summary="Create a tax rate")
    def post(self, request):
        v = validated(TaxRateIn, body(request))
        rate = tax_services.tax_rate_create(
            organization=request.organization, country=v["country"], state=v["state"],
            percentage_bp=v["percentageBasisPoints"], inclusive=v["inclusive"], display_name=v["displayName"],
            description=v["description"], actor=api_actor(request),
        )
        return Response(tax_services.tax_rate_data(rate), status=http.HTTP_201_CREATED)


class TaxRateView(APIView):
    @extend_schema(responses={200: TaxRateDeletedOut},
                   summary="Delete (archive) a tax rate: new calculations stop using it; past invoices keep it")
    def delete(self, request, rate_id: str):
        rate = tax_services.tax_rate_delete(organization=request.organization, rate_id=rate_id,
                                            actor=api_actor(request))
        return Response({"id": rate.public_id, "deleted": True})


urlpatterns = [
    path("tax-rates", TaxRatesView.as_view(), name="tax-rates"),
    path("tax-rates/<str:rate_id>", TaxRateView.as_view(), name="tax-rate"),
]
