"""Bank transfers over HTTP (spec payments.md §7): instructions, reconciliation by reference (at the original's
router path and at its documented path), unmatched transfers. Parse, call one service or selector, render.

Input serializers only check JSON types; the services validate in the spec's order (``customerId is
required``, ``type is required (ach, wire, sepa)``, …) so the first error is the original's."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField, StrictDictField, StrictIntegerField
from billing_project.core.api.inputs import api_actor, body, validated
from billing_project.core.api.pagination import PAGING_PARAMETERS, paginate
from payments.selectors import bank_transfers as selectors
from payments.services import bank_transfers as services

# --- inputs -----------------------------------------------------------------------------------------


def _text(max_length: int = 255, help_text: str = "") -> StrictCharField:
    return StrictCharField(required=False, default="", allow_blank=True, trim_whitespace=False,
                           max_length=max_length, help_text=help_text)


class BankTransferInstructionIn(serializers.Serializer):
    customerId = _text(help_text="required")
    currency = _text(max_length=3, help_text="ISO 4217, any case; default usd")
    type = _text(max_length=10, help_text="required: ach, wire or sepa (exactly)")
    bankName = _text(help_text="required")
    accountHolder = _text()
    accountNumber = _text(max_length=64, help_text="required; stored and shown masked (**** + last 4)")
    routingNumber = _text(max_length=64, help_text="required for ach")
    iban = _text(max_length=64, help_text="required for sepa")
    bic = _text(max_length=64)
    metadata = StrictDictField(required=False, default=dict)


class ReconcileIn(serializers.Serializer):
    reference = _text(help_text="required: the instruction's reference, exactly")
    amount = StrictIntegerField(required=False, default=0, help_text="minor units, > 0")
    currency = _text(max_length=3, help_text="ISO 4217, any case; default usd (credited in this currency)")
    transferId = _text(help_text="the bank's id of the transfer: a transfer id is credited at most once; "
                                 "a repeat answers the first result")


class UnmatchedBankTransferIn(serializers.Serializer):
    amount = StrictIntegerField(required=False, default=0, help_text="minor units, > 0")
    currency = _text(max_length=3, help_text="ISO 4217, any case; default usd")
    reference = _text(help_text="what the sender quoted, if anything")
    transferId = _text(help_text="the bank's id of the transfer (a repeat returns the first record)")
    senderName = _text()
    description = _text(max_length=500)
    metadata = StrictDictField(required=False, default=dict)


# --- outputs (documentation of the bodies built by the services' *_data) -------------------------------

class BankTransferInstructionOut(serializers.Serializer):
    id = serializers.CharField()
    customerId = serializers.CharField()
    currency = serializers.CharField()
    type = serializers.ChoiceField(choices=["ach", "wire", "sepa"])
    reference = serializers.CharField(help_text="8 characters, unique in the organization; quote it on transfers")
    bankName = serializers.CharField()
    accountNumber = serializers.CharField(help_text="masked: **** + the last 4 characters")
    status = serializers.ChoiceField(choices=["active", "expired"])
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    accountHolder = serializers.CharField(required=False)
    routingNumber = serializers.CharField(required=False)
    iban = serializers.CharField(required=False)
    bic = serializers.CharField(required=False)
    metadata = serializers.DictField(required=False)


class BankTransferInstructionListOut(serializers.Serializer):
    instructions = BankTransferInstructionOut(many=True)
    count = serializers.IntegerField()
    hasMore = serializers.BooleanField(help_text="more after the last one: pass its id as startingAfter")


class ReconcileTransactionOut(serializers.Serializer):
    id = serializers.CharField(help_text="the customer-balance transaction")
    amount = serializers.IntegerField()
    endingBalance = serializers.IntegerField()
    type = serializers.CharField(help_text="bank_transfer")
    created = serializers.DateTimeField()


class ReconcileOut(serializers.Serializer):
    matched = serializers.BooleanField()
    reference = serializers.CharField()
    customerId = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    transferType = serializers.CharField(help_text="the instruction's type: ach, wire or sepa")
    transaction = ReconcileTransactionOut()
    transferId = serializers.CharField(required=False)


class UnmatchedBankTransferOut(serializers.Serializer):
    id = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "matched"])
    created = serializers.DateTimeField()
    reference = serializers.CharField(required=False)
    transferId = serializers.CharField(required=False)
    senderName = serializers.CharField(required=False)
    description = serializers.CharField(required=False)
    metadata = serializers.DictField(required=False)
    matchedAt = serializers.DateTimeField(required=False)
    customerId = serializers.CharField(required=False, help_text="once matched: the customer credited")
    balanceTransactionId = serializers.CharField(required=False, help_text="once matched")


class UnmatchedBankTransferListOut(serializers.Serializer):
    transfers = UnmatchedBankTransferOut(many=True)
    count = serializers.IntegerField()
    hasMore = serializers.BooleanField()


# --- views ------------------------------------------------------------------------------------------

def _q(request, name: str) -> str:
    return (request.query_params.get(name) or "").strip()


class BankTransferInstructionsView(APIView):
    @extend_schema(operation_id="v1_billing_bank_transfer_instructions_list",
                   parameters=[OpenApiParameter("customerId", str, description="only this customer's"),
                               OpenApiParameter("status", str, description="active or expired"),
                               *PAGING_PARAMETERS],
                   responses=BankTransferInstructionListOut, summary="List bank-transfer instructions, newest first")
    def get(self, request):
        items, has_more = paginate(selectors.bank_transfer_instruction_list(
            organization=request.organization, customer_id=_q(request, "customerId"), status=_q(request, "status")),
            request.query_params)
        return Response({"instructions": [services.bank_transfer_instruction_data(i) for i in items],
                         "count": len(items), "hasMore": has_more})

    @extend_schema(request=BankTransferInstructionIn, responses={201: BankTransferInstructionOut},
                   summary="Create an instruction: the bank details to pay into and a new 8-character reference")
    def post(self, request):
        v = validated(BankTransferInstructionIn, body(request))
        data = services.InstructionInput(
            customer_id=v["customerId"], type=v["type"], bank_name=v["bankName"], account_number=v["accountNumber"],
            currency=v["currency"], account_holder=v["accountHolder"], routing_number=v["routingNumber"],
            iban=v["iban"], bic=v["bic"], metadata=v["metadata"])
        instruction = services.bank_transfer_instruction_create(organization=request.organization, data=data,
                                                                actor=api_actor(request))
        return Response(services.bank_transfer_instruction_data(instruction), status=http.HTTP_201_CREATED)


class BankTransferInstructionView(APIView):
    @extend_schema(responses=BankTransferInstructionOut, summary="One bank-transfer instruction")
    def get(self, request, instruction_id: str):
        instruction = selectors.bank_transfer_instruction_get(organization=request.organization,
                                                              instruction_id=instruction_id)
        return Response(services.bank_transfer_instruction_data(instruction))


class ReconciliationMatchView(APIView):
    @extend_schema(request=ReconcileIn, responses={200: ReconcileOut},
                   summary="Credit an inbound transfer to the customer of the active instruction with its reference "
                           "(transfers quoting one reference accumulate; a transferId is credited once)")
    def post(self, request):
        v = validated(ReconcileIn, body(request))
        inbound = services.bank_transfer_reconcile(
            organization=request.organization, reference=v["reference"], amount=v["amount"],
            currency=v["currency"], transfer_id=v["transferId"], actor=api_actor(request))
        return Response(services.bank_transfer_reconcile_data(inbound))


class UnmatchedBankTransfersView(APIView):
    @extend_schema(operation_id="v1_billing_bank_transfers_unmatched_list",
                   parameters=[OpenApiParameter("status", str, description="pending or matched"),
                               *PAGING_PARAMETERS],
                   responses=UnmatchedBankTransferListOut, summary="List unmatched bank transfers, newest first")
    def get(self, request):
        items, has_more = paginate(selectors.unmatched_bank_transfer_list(
            organization=request.organization, status=_q(request, "status")), request.query_params)
        return Response({"transfers": [services.unmatched_bank_transfer_data(t) for t in items],
                         "count": len(items), "hasMore": has_more})

    @extend_schema(request=UnmatchedBankTransferIn, responses={201: UnmatchedBankTransferOut},
                   summary="Record a transfer no instruction matched: it waits for an operator to match it "
                           "to a customer (admin)")
    def post(self, request):
        v = validated(UnmatchedBankTransferIn, body(request))
        data = services.UnmatchedInput(
            amount=v["amount"], currency=v["currency"], reference=v["reference"], transfer_id=v["transferId"],
            sender_name=v["senderName"], description=v["description"], metadata=v["metadata"])
        unmatched = services.bank_transfer_unmatched_record(organization=request.organization, data=data,
                                                            actor=api_actor(request))
        return Response(services.unmatched_bank_transfer_data(unmatched), status=http.HTTP_201_CREATED)


urlpatterns = [
    path("bank-transfer-instructions", BankTransferInstructionsView.as_view(), name="bank-transfer-instructions"),
    path("bank-transfer-instructions/reconciliation/match", ReconciliationMatchView.as_view(),
         name="bank-transfer-instructions-reconciliation-match"),
    path("bank-transfer-instructions/<str:instruction_id>", BankTransferInstructionView.as_view(),
         name="bank-transfer-instruction"),
    path("reconciliation/match", ReconciliationMatchView.as_view(), name="reconciliation-match"),
    path("bank-transfers/unmatched", UnmatchedBankTransfersView.as_view(), name="bank-transfers-unmatched"),
]
