"""Invoices over HTTP (spec invoicing.md §2–13): parse, call one service or selector, render."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.fields import empty
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField, StrictDictField, StrictIntegerField
from billing_project.core.api.inputs import ReasonIn, api_actor, body, optional_body, validated
from billing_project.core.api.pagination import PAGING_PARAMETERS, paginate
from billing_project.core.money import INT64_MAX, INT64_MIN, currency_normalize
from billing_project.core.times import parse_rfc3339
from invoicing.selectors import invoices as invoice_selectors
from invoicing.services import invoice_render
from invoicing.services import invoices as invoice_services
from invoicing.services.invoice_lines import LineInput


class _TimeField(StrictCharField):
    """An optional RFC 3339 timestamp, parsed. Not sending it (or ``null``) is "no value"; a blank string is
    not a timestamp (400 naming the field, as the original's time decoder refuses ``""``)."""

    def run_validation(self, data=empty):
        if isinstance(data, str) and not data.strip():
            raise serializers.ValidationError("must be an RFC 3339 timestamp", code="invalid_time")
        return super().run_validation(data)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        parsed = parse_rfc3339(value)
        if parsed is None:
            raise serializers.ValidationError("must be an RFC 3339 timestamp", code="invalid_time")
        return parsed


class LineItemIn(serializers.Serializer):
    id = StrictCharField(required=False, default="", allow_blank=True, max_length=255,
                         help_text="kept when given (unique within the invoice); otherwise a server id li_…")
    description = StrictCharField(max_length=500)
    amount = StrictIntegerField(required=False, default=0, min_value=INT64_MIN, max_value=INT64_MAX,
                                help_text="minor units, any sign; 0 with quantity and a non-zero unitPrice → "
                                          "their product (a negative unitPrice makes a credit line)")
    quantity = StrictIntegerField(required=False, default=0, min_value=0, max_value=INT64_MAX)
    unitPrice = StrictIntegerField(required=False, default=0, min_value=INT64_MIN, max_value=INT64_MAX)
    type = StrictCharField(required=False, default="", allow_blank=True, max_length=16,
                           help_text="subscription | usage | one_off | proration; default from planId/meterId")
    meterId = StrictCharField(required=False, default="", allow_blank=True, max_length=40)
    planId = StrictCharField(required=False, default="", allow_blank=True, max_length=60)
    planName = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    currency = StrictCharField(required=False, default="", allow_blank=True, max_length=3,
                               help_text="must be the invoice's currency when given")
    periodStart = _TimeField(required=False, default=None, allow_blank=True, allow_null=True)
    periodEnd = _TimeField(required=False, default=None, allow_blank=True, allow_null=True)

    def validate_currency(self, value):
        return currency_normalize(value, default="") if value else ""


def _line(v: dict) -> LineInput:
    return LineInput(description=v["description"], id=v["id"], amount=v["amount"], quantity=v["quantity"],
                     unit_price=v["unitPrice"], type=v["type"], meter_id=v["meterId"], plan_id=v["planId"],
                     plan_name=v["planName"], currency=v["currency"], period_start=v["periodStart"],
                     period_end=v["periodEnd"])


class InvoiceIn(serializers.Serializer):
    userId = StrictCharField(max_length=255)
    customerEmail = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    subscriptionId = StrictCharField(required=False, default="", allow_blank=True, max_length=60)
    currency = StrictCharField(required=False, default="usd", allow_blank=True)
    periodStart = _TimeField(required=False, default=None, allow_blank=True, allow_null=True)
    periodEnd = _TimeField(required=False, default=None, allow_blank=True, allow_null=True)
    lineItems = LineItemIn(many=True, required=False, default=list,
                           help_text="a line's id is kept when given (unique within the invoice), else generated")
    metadata = StrictDictField(required=False, default=dict)

    def validate_currency(self, value):
        return currency_normalize(value)


class LineItemOut(serializers.Serializer):
    id = serializers.CharField(help_text="the client's id when it gave one, else the server's li_…")
    type = serializers.CharField()
    description = serializers.CharField()
    meterId = serializers.CharField(required=False)
    quantity = serializers.IntegerField(required=False)
    unitPrice = serializers.IntegerField(required=False)
    planId = serializers.CharField(required=False)
    planName = serializers.CharField(required=False)
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    periodStart = serializers.CharField(help_text="RFC 3339; 0001-01-01T00:00:00Z when unset")
    periodEnd = serializers.CharField()


class TaxLineOut(serializers.Serializer):
    taxRateId = serializers.CharField()
    description = serializers.CharField()
    percentageBasisPoints = serializers.IntegerField()
    inclusive = serializers.BooleanField()
    jurisdiction = serializers.CharField()
    taxableAmount = serializers.IntegerField()
    amount = serializers.IntegerField()


class TaxAddressOut(serializers.Serializer):
    country = serializers.CharField()
    state = serializers.CharField()


class InvoiceOut(serializers.Serializer):
    id = serializers.CharField()
    userId = serializers.CharField()
    customerEmail = serializers.CharField()
    subscriptionId = serializers.CharField()
    periodStart = serializers.CharField()
    periodEnd = serializers.CharField()
    subtotal = serializers.IntegerField(help_text="Σ line amounts")
    tax = serializers.IntegerField(help_text="exclusive tax, added to the total")
    taxInclusive = serializers.IntegerField(help_text="tax contained in the line amounts (not added)")
    discount = serializers.IntegerField()
    discountName = serializers.CharField()
    discountPercentBasisPoints = serializers.IntegerField(required=False)
    couponId = serializers.CharField(required=False)
    total = serializers.IntegerField(help_text="subtotal − discount + tax")
    creditApplied = serializers.IntegerField(help_text="part of amountPaid paid by credit grants")
    customerBalanceApplied = serializers.IntegerField(help_text="part of amountPaid paid from the customer balance")
    depositsApplied = serializers.IntegerField(help_text="part of amountPaid paid from deposits")
    providerPaid = serializers.IntegerField(help_text="part of amountPaid paid through a payment method")
    previousBalance = serializers.IntegerField(
        help_text="customer debt collected on this invoice (the 'Previous balance' line), included in subtotal")
    creditNotesAmount = serializers.IntegerField(help_text="credit notes issued while the invoice was open")
    amountDue = serializers.IntegerField(
        help_text="max(0, subtotal − discount + tax − amountPaid − creditNotesAmount)")
    amountPaid = serializers.IntegerField(
        help_text="everything collected: creditApplied + customerBalanceApplied + depositsApplied + providerPaid")
    amountRefunded = serializers.IntegerField(
        help_text="given back by refunds (POST /refunds); a refunded invoice stays paid")
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=["draft", "open", "paid", "void", "uncollectible"])
    paymentMethod = serializers.CharField()
    paymentRef = serializers.CharField()
    number = serializers.IntegerField(help_text="0 until finalized")
    numberStr = serializers.CharField(help_text="INV-0001, gap-free per organization; empty on drafts")
    attemptCount = serializers.IntegerField()
    lineItems = LineItemOut(many=True)
    taxLines = TaxLineOut(many=True)
    taxAddress = TaxAddressOut(required=False)
    metadata = serializers.DictField()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    dueDate = serializers.DateTimeField(required=False)
    finalizedAt = serializers.DateTimeField(required=False)
    paidAt = serializers.DateTimeField(required=False)
    voidedAt = serializers.DateTimeField(required=False)
    markedUncollectibleAt = serializers.DateTimeField(required=False)
    lastAttemptAt = serializers.DateTimeField(required=False)


class InvoiceListOut(serializers.Serializer):
    invoices = InvoiceOut(many=True)
    count = serializers.IntegerField(help_text="invoices in this page")
    hasMore = serializers.BooleanField(help_text="more after the last one: pass its id as startingAfter")


class CollectionOut(serializers.Serializer):
    success = serializers.BooleanField()
    creditUsed = serializers.IntegerField()
    balanceUsed = serializers.IntegerField(help_text="customerBalanceUsed + depositsUsed")
    customerBalanceUsed = serializers.IntegerField()
    depositsUsed = serializers.IntegerField()
    providerUsed = serializers.IntegerField()
    providerRef = serializers.CharField(required=False)
    amountCharged = serializers.IntegerField()
    error = serializers.CharField(required=False)


class PayOut(serializers.Serializer):
    invoice = InvoiceOut()
    collection = CollectionOut()


class DiscountIn(serializers.Serializer):
    discountAmount = StrictIntegerField(required=False, allow_null=True, default=None, min_value=INT64_MIN,
                                        max_value=INT64_MAX, help_text="absolute, minor units")
    discountPercentBasisPoints = StrictIntegerField(required=False, allow_null=True, default=None,
                                                    help_text="percentage: 1000 = 10 %")
    discountName = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    couponId = StrictCharField(required=False, default="", allow_blank=True, max_length=100)


class CalculateTaxOut(serializers.Serializer):
    invoice = InvoiceOut()
    taxLines = TaxLineOut(many=True)
    totalTax = serializers.IntegerField(help_text="Σ tax lines (exclusive + inclusive)")


def _render(invoice) -> dict:
    return invoice_render.invoice_data(invoice)


INVOICE_LIST_PARAMS = [
    OpenApiParameter("userId", str, required=False),
    OpenApiParameter("status", str, required=False, enum=["draft", "open", "paid", "void", "uncollectible"]),
    OpenApiParameter("subscriptionId", str, required=False),
    *PAGING_PARAMETERS,
]


class InvoicesView(APIView):
    @extend_schema(request=InvoiceIn, responses={201: InvoiceOut}, summary="Create a draft invoice")
    def post(self, request):
        v = validated(InvoiceIn, body(request))
        invoice = invoice_services.invoice_create(
            organization=request.organization, customer=v["userId"], currency=v["currency"],
            customer_email=v["customerEmail"], subscription_id=v["subscriptionId"], period_start=v["periodStart"],
            period_end=v["periodEnd"], lines=[_line(line) for line in v["lineItems"]], metadata=v["metadata"])
        return Response(_render(invoice), status=http.HTTP_201_CREATED)

    @extend_schema(parameters=INVOICE_LIST_PARAMS, responses=InvoiceListOut, summary="List invoices, newest first",
                   operation_id="invoices_list")
    def get(self, request):
        q = request.query_params
        invoices, has_more = paginate(invoice_selectors.invoice_list(
            organization=request.organization, customer=(q.get("userId") or "").strip(),
            status=(q.get("status") or "").strip(), subscription_id=(q.get("subscriptionId") or "").strip()), q)
        return Response({"invoices": [_render(i) for i in invoices], "count": len(invoices), "hasMore": has_more})


class InvoiceView(APIView):
    @extend_schema(responses=InvoiceOut, summary="One invoice", operation_id="invoices_retrieve")
    def get(self, request, invoice_id: str):
        return Response(_render(invoice_selectors.invoice_get(organization=request.organization,
                                                              invoice_id=invoice_id)))


class InvoiceFinalizeView(APIView):
    @extend_schema(request=ReasonIn, responses=InvoiceOut,
                   summary="draft → open: number (INV-0001), due date, tax frozen, receivable posted")
    def post(self, request, invoice_id: str):
        v = validated(ReasonIn, optional_body(request))
        invoice = invoice_services.invoice_finalize(organization=request.organization, invoice_id=invoice_id,
                                                    actor=api_actor(request), reason=v["reason"])
        return Response(_render(invoice))


class InvoiceVoidView(APIView):
    @extend_schema(request=ReasonIn, responses=InvoiceOut, summary="draft | open → void")
    def post(self, request, invoice_id: str):
        v = validated(ReasonIn, optional_body(request))
        invoice = invoice_services.invoice_void(organization=request.organization, invoice_id=invoice_id,
                                                actor=api_actor(request), reason=v["reason"])
        return Response(_render(invoice))


class InvoiceMarkUncollectibleView(APIView):
    @extend_schema(request=ReasonIn, responses=InvoiceOut, summary="open → uncollectible (written off)")
    def post(self, request, invoice_id: str):
        v = validated(ReasonIn, optional_body(request))
        invoice = invoice_services.invoice_mark_uncollectible(
            organization=request.organization, invoice_id=invoice_id, actor=api_actor(request), reason=v["reason"])
        return Response(_render(invoice))


class InvoiceLineItemsView(APIView):
    @extend_schema(request=LineItemIn, responses=InvoiceOut, summary="Add a line to a draft")
    def post(self, request, invoice_id: str):
        # The original checks the invoice (404, then draft) before reading the body.
        invoice_selectors.invoice_draft_check(organization=request.organization, invoice_id=invoice_id,
                                              message="can only add line items to draft invoices")
        v = validated(LineItemIn, body(request))
        invoice = invoice_services.invoice_line_add(organization=request.organization, invoice_id=invoice_id,
                                                    line=_line(v))
        return Response(_render(invoice))


class InvoiceLineItemView(APIView):
    @extend_schema(request=None, responses={200: InvoiceOut}, summary="Remove a line from a draft")
    def delete(self, request, invoice_id: str, item_id: str):
        invoice = invoice_services.invoice_line_remove(organization=request.organization, invoice_id=invoice_id,
                                                       line_id=item_id)
        return Response(_render(invoice))


class InvoiceDiscountView(APIView):
    @extend_schema(request=DiscountIn, responses=InvoiceOut,
                   summary="Replace the draft's discount (absolute or percentage; capped at the subtotal)")
    def post(self, request, invoice_id: str):
        invoice_selectors.invoice_draft_check(organization=request.organization, invoice_id=invoice_id,
                                              message="can only apply discounts to draft invoices")
        v = validated(DiscountIn, body(request))
        invoice = invoice_services.invoice_discount_apply(
            organization=request.organization, invoice_id=invoice_id, amount=v["discountAmount"],
            percent_bp=v["discountPercentBasisPoints"], name=v["discountName"], coupon_id=v["couponId"])
        return Response(_render(invoice))


class InvoiceCalculateTaxView(APIView):
    @extend_schema(request=None, responses=CalculateTaxOut,
                   parameters=[OpenApiParameter("country", str, required=True, description="ISO 3166 alpha-2"),
                               OpenApiParameter("state", str, required=False),
                               OpenApiParameter("postalCode", str, required=False, description="accepted, unused"),
                               OpenApiParameter("city", str, required=False, description="accepted, unused")],
                   summary="Set the draft's tax address and compute its tax (no matching rate → 0 tax)")
    def post(self, request, invoice_id: str):
        optional_body(request)  # an action takes no body or a JSON object; anything else is 400
        invoice = invoice_services.invoice_tax_calculate(
            organization=request.organization, invoice_id=invoice_id,
            country=request.query_params.get("country", ""), state=request.query_params.get("state", ""))
        data = _render(invoice)
        return Response({"invoice": data, "taxLines": data["taxLines"],
                         "totalTax": sum(line["amount"] for line in data["taxLines"])})


urlpatterns = [
    path("invoices", InvoicesView.as_view(), name="invoices"),
    path("invoices/<str:invoice_id>", InvoiceView.as_view(), name="invoice"),
    path("invoices/<str:invoice_id>/finalize", InvoiceFinalizeView.as_view(), name="invoice-finalize"),
    # invoices/<id>/pay is served by payments.api.invoice_pay (collection may charge a payment method).
    path("invoices/<str:invoice_id>/void", InvoiceVoidView.as_view(), name="invoice-void"),
    path("invoices/<str:invoice_id>/mark-uncollectible", InvoiceMarkUncollectibleView.as_view(),
         name="invoice-mark-uncollectible"),
    path("invoices/<str:invoice_id>/line-items", InvoiceLineItemsView.as_view(), name="invoice-line-items"),
    path("invoices/<str:invoice_id>/line-items/<str:item_id>", InvoiceLineItemView.as_view(),
         name="invoice-line-item"),
    path("invoices/<str:invoice_id>/apply-discount", InvoiceDiscountView.as_view(), name="invoice-discount"),
    path("invoices/<str:invoice_id>/calculate-tax", InvoiceCalculateTaxView.as_view(),
         name="invoice-calculate-tax"),
]
