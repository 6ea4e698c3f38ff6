"""``GET /invoices/upcoming?userId=&subscriptionId=`` (spec invoicing.md §4, fixed): what the next invoice
would bill. A GET: nothing is burned, written or published."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.errors import ValidationError
from billing_project.core.money import currency_normalize
from invoicing.api.metering import usage_in_int64
from invoicing.selectors import upcoming as upcoming_selectors


class UpcomingLineOut(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField(help_text="usage, subscription, proration, …")
    description = serializers.CharField()
    meterId = serializers.CharField(required=False)
    quantity = serializers.IntegerField(required=False, help_text="only if non-zero")
    unitPrice = serializers.IntegerField(required=False, help_text="only if non-zero")
    planId = serializers.CharField(required=False)
    planName = serializers.CharField(required=False)
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    periodStart = serializers.CharField(help_text="0001-01-01T00:00:00Z when unbounded")
    periodEnd = serializers.CharField(help_text="0001-01-01T00:00:00Z when unbounded")


class UpcomingOut(serializers.Serializer):
    userId = serializers.CharField()
    subscriptionId = serializers.CharField(required=False)
    periodStart = serializers.CharField(help_text="end of the last invoice; 0001-01-01T00:00:00Z without one")
    lineItems = UpcomingLineOut(many=True)
    subtotal = serializers.IntegerField()
    creditApplied = serializers.IntegerField(help_text="what credit grants would pay (nothing is burned)")
    amountDue = serializers.IntegerField(help_text="subtotal − creditApplied")
    currency = serializers.CharField()


class UpcomingInvoiceView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("userId", str, required=True),
            OpenApiParameter("subscriptionId", str, required=False,
                             description="the subscription's next invoice; without it, the usage since the "
                                         "customer's last invoice"),
            OpenApiParameter("currency", str, required=False,
                             description="only needed when usage is priced in several currencies"),
        ],
        responses={200: UpcomingOut,
                   404: OpenApiResponse(description="subscription not found: subscriptionId names no subscription "
                                                    "of this customer")},
        summary="Preview the next invoice: usage since the last invoice (or a subscription's next renewal), "
                "priced, minus what credits would cover; never burns credits")
    def get(self, request):
        q = request.query_params
        user = (q.get("userId") or "").strip()
        if not user:
            raise ValidationError("userId is required", param="userId", code="parameter_missing")
        raw_currency = (q.get("currency") or "").strip()
        upcoming = upcoming_selectors.upcoming_invoice(
            organization=request.organization, user=user, subscription_id=(q.get("subscriptionId") or "").strip(),
            currency=currency_normalize(raw_currency) if raw_currency else None)
        usage_in_int64(upcoming.subtotal, upcoming.credit_applied, upcoming.amount_due,
                       *(line.get("quantity", 0) for line in upcoming.lines))
        data = upcoming_selectors.upcoming_data(upcoming)
        return Response(data)
