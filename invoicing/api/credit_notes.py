"""Credit notes over HTTP (spec invoicing.md §14): parse, call one service or selector, render."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField, StrictIntegerField
from billing_project.core.api.inputs import ReasonIn, api_actor, body, optional_body, validated
from billing_project.core.api.pagination import PAGING_PARAMETERS, next_link, paginate
from billing_project.core.money import INT64_MAX, INT64_MIN
from invoicing.selectors import credit_notes as credit_note_selectors
from invoicing.services import credit_notes as credit_note_services
from invoicing.services.credit_notes import CreditNoteLineInput


class CreditNoteLineIn(serializers.Serializer):
    description = StrictCharField(max_length=500)
    amount = StrictIntegerField(required=False, default=0, min_value=INT64_MIN, max_value=INT64_MAX,
                                help_text="minor units, positive; 0 with quantity and unitPrice → their product")
    quantity = StrictIntegerField(required=False, default=0, min_value=0, max_value=INT64_MAX)
    unitPrice = StrictIntegerField(required=False, default=0, min_value=INT64_MIN, max_value=INT64_MAX)
    currency = StrictCharField(required=False, default="", allow_blank=True, max_length=3,
                               help_text="must be the invoice's currency when given")


class CreditNoteIn(serializers.Serializer):
    invoiceId = StrictCharField(max_length=40)
    customerId = StrictCharField(required=False, default="", allow_blank=True, max_length=255,
                                 help_text="defaults to the invoice's customer; another customer is stored and is "
                                           "the one credited when the invoice is paid")
    amount = StrictIntegerField(required=False, default=0, min_value=INT64_MIN, max_value=INT64_MAX,
                                help_text="total credit; 0 → Σ lineItems.amount + outOfBandAmount")
    reason = StrictCharField(required=False, default="", allow_blank=True, max_length=100,
                             help_text="duplicate, fraudulent, order_change, product_unsatisfactory, …")
    lineItems = CreditNoteLineIn(many=True, required=False, default=list)
    outOfBandAmount = StrictIntegerField(required=False, default=0, min_value=INT64_MIN, max_value=INT64_MAX,
                                         help_text="credit not tied to a line")
    memo = StrictCharField(required=False, default="", allow_blank=True, max_length=5000)


class CreditNoteLineOut(serializers.Serializer):
    description = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    quantity = serializers.IntegerField(required=False)
    unitPrice = serializers.IntegerField(required=False)


class CreditGrantReturnOut(serializers.Serializer):
    id = serializers.CharField(help_text="the new credit grant")
    sourceGrantId = serializers.CharField(help_text="the grant that paid the invoice")
    amount = serializers.IntegerField()


class CreditNoteOut(serializers.Serializer):
    id = serializers.CharField()
    invoiceId = serializers.CharField()
    customerId = serializers.CharField()
    number = serializers.CharField(help_text="CN-0001, gap-free per organization; kept when voided")
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=["issued", "void"])
    effect = serializers.ChoiceField(
        choices=["invoice", "customer_balance"],
        help_text="invoice: lowers the invoice's amount due (a draft's at finalization); customer_balance: the "
                  "invoice was paid, so credit of the kind that paid went back to the customer: grants like "
                  "the ones that paid (creditGrants) and customer balance for the rest (creditBalanceTransaction)")
    created = serializers.DateTimeField()
    reason = serializers.CharField(required=False)
    lineItems = CreditNoteLineOut(many=True, required=False)
    outOfBandAmount = serializers.IntegerField(required=False)
    creditBalanceTransaction = serializers.CharField(required=False,
                                                     help_text="the customer-balance transaction it created")
    creditGrants = CreditGrantReturnOut(many=True, required=False,
                                        help_text="credit grants re-issued for the part credit grants paid")
    pending = serializers.BooleanField(required=False,
                                       help_text="true while the invoice is a draft: posted when it is finalized")
    refundId = serializers.CharField(required=False)
    memo = serializers.CharField(required=False)
    metadata = serializers.DictField(required=False)
    voidedAt = serializers.DateTimeField(required=False)


def _line(v: dict) -> CreditNoteLineInput:
    return CreditNoteLineInput(description=v["description"], amount=v["amount"], quantity=v["quantity"],
                               unit_price=v["unitPrice"], currency=v["currency"])


def _render(note) -> dict:
    return credit_note_services.credit_note_data(note)


LIST_PARAMS = [
    OpenApiParameter("invoiceId", str, required=False),
    OpenApiParameter("customerId", str, required=False),
    *PAGING_PARAMETERS,
]


class CreditNotesView(APIView):
    @extend_schema(request=CreditNoteIn, responses={201: CreditNoteOut},
                   summary="Issue a credit note: lowers a draft's (at finalization) or an open invoice's amount "
                           "due, or gives a paid one's credit back; capped at the invoice total")
    def post(self, request):
        v = validated(CreditNoteIn, body(request))
        note = credit_note_services.credit_note_create(
            organization=request.organization, invoice_id=v["invoiceId"], amount=v["amount"],
            customer=v["customerId"], reason=v["reason"], memo=v["memo"],
            line_items=[_line(line) for line in v["lineItems"]], out_of_band_amount=v["outOfBandAmount"],
            actor=api_actor(request))
        return Response(_render(note), status=http.HTTP_201_CREATED)

    @extend_schema(parameters=LIST_PARAMS, responses=CreditNoteOut(many=True),
                   summary="List credit notes, newest first (a bare array; more pages via the Link header)")
    def get(self, request):
        q = request.query_params
        notes, has_more = paginate(credit_note_selectors.credit_note_list(
            organization=request.organization, invoice_id=(q.get("invoiceId") or "").strip(),
            customer=(q.get("customerId") or "").strip()), q)
        response = Response([_render(note) for note in notes])
        link = next_link(request, notes, has_more)
        if link:
            response["Link"] = link
        return response


class CreditNoteView(APIView):
    @extend_schema(responses=CreditNoteOut, summary="One credit note")
    def get(self, request, credit_note_id: str):
        return Response(_render(credit_note_selectors.credit_note_get(organization=request.organization,
                                                                      credit_note_id=credit_note_id)))


class CreditNoteVoidView(APIView):
    @extend_schema(request=ReasonIn, responses=CreditNoteOut,
                   summary="issued → void: the invoice's amount due goes back up, or the credit given back is "
                           "taken back (409 if already used)")
    def post(self, request, credit_note_id: str):
        v = validated(ReasonIn, optional_body(request))
        note = credit_note_services.credit_note_void(organization=request.organization,
                                                     credit_note_id=credit_note_id, actor=api_actor(request),
                                                     reason=v["reason"])
        return Response(_render(note))


urlpatterns = [
    path("credit-notes", CreditNotesView.as_view(), name="credit-notes"),
    path("credit-notes/<str:credit_note_id>", CreditNoteView.as_view(), name="credit-note"),
    path("credit-notes/<str:credit_note_id>/void", CreditNoteVoidView.as_view(), name="credit-note-void"),
]
