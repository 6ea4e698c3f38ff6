"""Customer balance over HTTP (spec invoicing.md §15, weakness 9 fixed): parse, call one service or selector,
render. Reads never write; currencies are normalised (``USD`` = ``usd``); an adjustment answers 200 (as the
original) and may take the balance below zero (money owed, collected on the next invoice finalized)."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField, StrictDictField, StrictIntegerField
from billing_project.core.api.inputs import api_actor, body, validated
from billing_project.core.api.pagination import PAGING_PARAMETERS, next_link, paginate
from billing_project.core.errors import ValidationError
from billing_project.core.money import currency_normalize
from ledger import selectors
from ledger.services import customer_balance as customer_balance_services

CUSTOMER_ID_REQUIRED_Q = OpenApiParameter("customerId", str, required=True, description="e.g. cus_alice")
CURRENCY_Q = OpenApiParameter("currency", str, required=False, description="ISO 4217, any case; default usd")
CUSTOMER_ID_Q = OpenApiParameter("customerId", str, required=False,
                                 description="only this customer's transactions; absent = every customer")


class CustomerBalanceOut(serializers.Serializer):
    customerId = serializers.CharField()
    currency = serializers.CharField()
    balance = serializers.IntegerField(help_text="minor units; positive = credit the customer holds, negative = owed")


class CustomerBalanceAdjustmentIn(serializers.Serializer):
    customerId = StrictCharField(max_length=255, trim_whitespace=True)
    amount = StrictIntegerField(required=False, default=0,
                                help_text="minor units, non-zero: positive credits the customer, negative debits")
    currency = StrictCharField(required=False, default="usd", allow_blank=True)
    description = StrictCharField(required=False, default="", allow_blank=True, max_length=500)
    metadata = StrictDictField(required=False, default=dict)

    def validate_currency(self, value):
        return currency_normalize(value)


class BalanceTransactionOut(serializers.Serializer):
    id = serializers.CharField()
    customerId = serializers.CharField()
    amount = serializers.IntegerField(help_text="positive = credit, negative = debit")
    currency = serializers.CharField()
    type = serializers.CharField()
    endingBalance = serializers.IntegerField(help_text="the customer balance right after this transaction")
    created = serializers.DateTimeField()
    description = serializers.CharField(required=False)
    invoiceId = serializers.CharField(required=False)
    creditNoteId = serializers.CharField(required=False)
    sourceRef = serializers.CharField(required=False)
    metadata = serializers.DictField(required=False)


def _customer_required(request) -> str:
    customer = (request.query_params.get("customerId") or "").strip()
    if not customer:
        raise ValidationError("customerId is required", param="customerId", code="parameter_missing")
    return customer


class CustomerBalanceView(APIView):
    @extend_schema(parameters=[CUSTOMER_ID_REQUIRED_Q, CURRENCY_Q], responses=CustomerBalanceOut,
                   summary="A customer's stored balance in one currency (0 if never used; never creates anything)")
    def get(self, request):
        customer = _customer_required(request)
        currency = currency_normalize(request.query_params.get("currency"))
        balance = selectors.customer_balance_get(organization=request.organization, customer=customer,
                                                 currency=currency)
        return Response({"customerId": customer, "currency": currency, "balance": balance})


class CustomerBalanceAdjustmentsView(APIView):
    @extend_schema(request=CustomerBalanceAdjustmentIn, responses={200: BalanceTransactionOut},
                   summary="Credit or debit a customer balance (a debit may go below zero: money owed, "
                           "collected on the next invoice finalized)")
    def post(self, request):
        v = validated(CustomerBalanceAdjustmentIn, body(request))
        actor = api_actor(request)
        cbt = customer_balance_services.customer_balance_adjust(
            organization=request.organization, customer=v["customerId"], amount=v["amount"],
            currency=v["currency"], description=v["description"], metadata=v["metadata"], actor=actor,
        )
        return Response(customer_balance_services.customer_balance_transaction_data(cbt))


class BalanceTransactionsView(APIView):
    @extend_schema(parameters=[CUSTOMER_ID_Q, *PAGING_PARAMETERS], responses=BalanceTransactionOut(many=True),
                   summary="The customer-balance journal, newest first (bare array; more pages via the Link header)")
    def get(self, request):
        customer = (request.query_params.get("customerId") or "").strip()
        items, has_more = paginate(selectors.customer_balance_transaction_list(
            organization=request.organization, customer=customer), request.query_params)
        response = Response([customer_balance_services.customer_balance_transaction_data(t) for t in items])
        link = next_link(request, items, has_more)
        if link:
            response["Link"] = link
        return response


urlpatterns = [
    path("customer-balance", CustomerBalanceView.as_view(), name="customer-balance"),
    path("customer-balance/adjustments", CustomerBalanceAdjustmentsView.as_view(),
         name="customer-balance-adjustments"),
    path("balance-transactions", BalanceTransactionsView.as_view(), name="balance-transactions"),
]
