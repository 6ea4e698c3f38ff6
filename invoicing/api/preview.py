"""``POST /invoice-preview`` (metering.md §13, fixed): parse, call the preview selector, render."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField
from billing_project.core.api.inputs import body, validated
from billing_project.core.money import currency_normalize
from billing_project.core.times import parse_period
from invoicing.api.metering import usage_in_int64
from invoicing.selectors import preview as preview_selectors


class InvoicePreviewIn(serializers.Serializer):
    userId = StrictCharField(max_length=255)
    periodStart = StrictCharField(required=False, default="", allow_blank=True,
                                  help_text="RFC 3339 or YYYY-MM-DD (00:00 UTC); inclusive")
    periodEnd = StrictCharField(required=False, default="", allow_blank=True,
                                help_text="RFC 3339 or YYYY-MM-DD (00:00 UTC); exclusive")
    planId = StrictCharField(required=False, default="", allow_blank=True, max_length=255,
                             help_text="The customer's plan: its pricing rules win over the default ones")
    currency = StrictCharField(required=False, default="", allow_blank=True,
                               help_text="Only needed when usage is priced in several currencies")

    def validate_currency(self, value):
        return currency_normalize(value) if value else None


class PreviewLineOut(serializers.Serializer):
    meterId = serializers.CharField()
    meterName = serializers.CharField()
    quantity = serializers.IntegerField()
    eventCount = serializers.IntegerField()
    unitCost = serializers.IntegerField()
    unitPriceDecimal = serializers.CharField(allow_null=True)
    totalCost = serializers.IntegerField()
    creditApplied = serializers.IntegerField()
    model = serializers.CharField()
    pricingRuleId = serializers.CharField()
    currency = serializers.CharField()


class InvoicePreviewOut(serializers.Serializer):
    userId = serializers.CharField()
    periodStart = serializers.CharField()
    periodEnd = serializers.CharField()
    planId = serializers.CharField()
    lineItems = PreviewLineOut(many=True)
    subtotal = serializers.IntegerField()
    creditApplied = serializers.IntegerField()
    amountDue = serializers.IntegerField(help_text="subtotal − creditApplied")
    currency = serializers.CharField()


class InvoicePreviewView(APIView):
    @extend_schema(request=InvoicePreviewIn, responses=InvoicePreviewOut,
                   summary="Preview usage × pricing − credits for a period (never burns credits)")
    def post(self, request):
        v = validated(InvoicePreviewIn, body(request))
        start, end = parse_period(v["periodStart"], v["periodEnd"])
        preview = preview_selectors.invoice_preview(organization=request.organization, user=v["userId"],
                                                    start=start, end=end, plan_id=v["planId"],
                                                    currency=v["currency"])
        usage_in_int64(preview.subtotal, preview.credit_applied, preview.amount_due,
                       *(n for line in preview.lines for n in (line.quantity, line.total_cost, line.unit_cost,
                                                               line.event_count, line.credit_applied)))
        lines = [{
            "meterId": line.meter.public_id, "meterName": line.meter.name, "quantity": line.quantity,
            "eventCount": line.event_count, "unitCost": line.unit_cost, "unitPriceDecimal": line.unit_price_decimal,
            "totalCost": line.total_cost, "creditApplied": line.credit_applied, "model": line.model,
            "pricingRuleId": line.rule_id, "currency": line.currency,
        } for line in preview.lines]
        return Response({
            "userId": v["userId"], "periodStart": v["periodStart"], "periodEnd": v["periodEnd"],
            "planId": v["planId"], "lineItems": lines, "subtotal": preview.subtotal,
            "creditApplied": preview.credit_applied, "amountDue": preview.amount_due, "currency": preview.currency,
        })
