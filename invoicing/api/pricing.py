"""Pricing-rule HTTP interface: POST/GET /pricing-rules, DELETE /pricing-rules/:id.

Input serializers check JSON types; ``invoicing.pricing`` parses prices and tiers (errors name the field,
e.g. ``tiers[1].upTo``); the service enforces the rest; output serializers document the bodies."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, viewsets
from rest_framework import status as http
from rest_framework.response import Response

from billing_project.core.api.fields import StrictCharField, StrictIntegerField
from billing_project.core.api.inputs import body, validated
from billing_project.core.money import currency_normalize
from invoicing import rating
from invoicing.models import PricingRule
from invoicing.selectors import pricing as pricing_selectors
from invoicing.services import pricing as pricing_services

MODEL_HELP = "per_unit (default) | package | graduated | tiered | volume; case-insensitive"
DECIMAL_HELP = "Minor units per unit as a decimal string with at most 12 decimal places, e.g. \"0.000123\""


# --- inputs -----------------------------------------------------------------------------------------

class PricingTierIn(serializers.Serializer):
    """Documentation of one tier; ``invoicing.pricing.tiers_parse`` reads the JSON."""

    upTo = StrictIntegerField(required=False, default=0, min_value=0,
                              help_text="0 = unbounded (last tier only). graduated/volume: cumulative upper bound; "
                                        "tiered: width of the band")
    price = StrictIntegerField(required=False, default=0, min_value=0, help_text="Minor units per unit")
    flat = StrictIntegerField(required=False, default=0, min_value=0, help_text="Charged once for the tier")
    priceDecimal = StrictCharField(required=False, help_text=f"Instead of price. {DECIMAL_HELP}")


@extend_schema_field(PricingTierIn(many=True, allow_null=True))
class TiersField(serializers.Field):
    """Raw tier JSON; parsed in ``PricingRuleIn.validate`` once the model is known."""

    def to_internal_value(self, data):
        return data


class PricingRuleIn(serializers.Serializer):
    meterId = StrictCharField(max_length=60)
    planId = StrictCharField(required=False, default="", allow_blank=True, max_length=255,
                             help_text="A rule for a plan beats the meter's default rules (planId \"\"); "
                                       "among several, the newest prices")
    model = StrictCharField(required=False, default=rating.PER_UNIT, allow_blank=True, help_text=MODEL_HELP)
    currency = StrictCharField(required=False, default=None, allow_null=True, allow_blank=True,
                               help_text="Must be the meter's currency (the default)")
    unitPrice = StrictIntegerField(required=False, default=0, min_value=0,
                                   help_text="Minor units per unit (per_unit) or per package (package)")
    unitPriceDecimal = StrictCharField(required=False, default=None, allow_null=True, trim_whitespace=False,
                                       help_text=f"Instead of unitPrice. {DECIMAL_HELP}")
    packageSize = StrictIntegerField(required=False, default=None, allow_null=True,
                                     help_text="package only: units per package (≥ 1); each started package is charged")
    tiers = TiersField(required=False, default=None, allow_null=True,
                       help_text="tiered, volume and graduated only")

    def validate_model(self, value):
        return rating.model_normalize(value)

    def validate_currency(self, value):
        return currency_normalize(value, default=None) if value else None

    def validate_unitPriceDecimal(self, value):
        return rating.price_decimal_parse(value, param="unitPriceDecimal")

    def validate(self, attrs):
        if attrs["tiers"] is not None:
            attrs["tiers"] = rating.tiers_parse(attrs["tiers"], model=attrs["model"])
        return attrs


# --- outputs (documentation of the bodies built by services.pricing_rule_data) ----------------------

class PricingTierOut(serializers.Serializer):
    upTo = serializers.IntegerField()
    price = serializers.IntegerField()
    flat = serializers.IntegerField()
    priceDecimal = serializers.CharField(required=False)


class PricingRuleOut(serializers.Serializer):
    id = serializers.CharField()
    meterId = serializers.CharField()
    planId = serializers.CharField()
    model = serializers.CharField(help_text=" | ".join(rating.MODELS))
    currency = serializers.CharField()
    unitPrice = serializers.IntegerField()
    unitPriceDecimal = serializers.CharField(allow_null=True)
    packageSize = serializers.IntegerField(allow_null=True)
    tiers = PricingTierOut(many=True, allow_null=True)
    createdAt = serializers.DateTimeField()


@extend_schema_serializer(many=False)  # an envelope object, not an array of them
class PricingRuleListOut(serializers.Serializer):
    rules = PricingRuleOut(many=True)
    count = serializers.IntegerField()


class PricingRuleDeletedOut(serializers.Serializer):
    id = serializers.CharField()
    deleted = serializers.BooleanField()


# --- views ------------------------------------------------------------------------------------------

def _query(request, name: str) -> str | None:
    return (request.query_params.get(name) or "").strip() or None


class PricingRuleViewSet(viewsets.GenericViewSet):
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    lookup_value_regex = "[^/]+"
    serializer_class = PricingRuleOut

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller organization
            return PricingRule.objects.none()
        return pricing_selectors.pricing_rule_list(organization=self.request.organization)

    @extend_schema(parameters=[OpenApiParameter("meterId", str, description="only this meter's rules"),
                               OpenApiParameter("planId", str, description="only this plan's rules")],
                   responses=PricingRuleListOut, summary="List every active pricing rule, oldest first")
    def list(self, request):
        rules = pricing_selectors.pricing_rule_list(organization=request.organization,
                                                    meter_id=_query(request, "meterId"),
                                                    plan_id=_query(request, "planId"))
        out = [pricing_services.pricing_rule_data(rule) for rule in rules]
        return Response({"rules": out, "count": len(out)})

    @extend_schema(request=PricingRuleIn, responses={201: PricingRuleOut},
                   summary="Create a pricing rule for a meter (for a plan, or a default); the newest active one prices")
    def create(self, request):
        v = validated(PricingRuleIn, body(request))
        rule = pricing_services.pricing_rule_create(
            organization=request.organization, meter_id=v["meterId"], plan_id=v["planId"], model=v["model"],
            currency=v["currency"], unit_price=v["unitPrice"], unit_price_decimal=v["unitPriceDecimal"],
            tiers=v["tiers"], package_size=v["packageSize"],
        )
        return Response(pricing_services.pricing_rule_data(rule), status=http.HTTP_201_CREATED)

    @extend_schema(responses={200: PricingRuleDeletedOut},
                   summary="Delete a pricing rule (future calculations only; built invoices are unaffected)")
    def destroy(self, request, id=None):
        rule = pricing_services.pricing_rule_delete(organization=request.organization, rule_id=id)
        return Response({"id": rule.public_id, "deleted": True})
