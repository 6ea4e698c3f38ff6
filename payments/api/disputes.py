"""Disputes over HTTP (spec payments.md §5): list, get, submit evidence (PATCH), close. No create route: only
the processor opens disputes."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField
from billing_project.core.api.inputs import api_actor, body, optional_body, validated
from billing_project.core.api.pagination import PAGING_PARAMETERS, paged_array
from payments.models.disputes import EVIDENCE_FIELDS
from payments.selectors import refunds as selectors
from payments.services import disputes as dispute_services


def _evidence_field() -> StrictCharField:
    return StrictCharField(required=False, allow_blank=True, max_length=5000)


class EvidenceIn(serializers.Serializer):
    customerName = _evidence_field()
    customerEmailAddress = _evidence_field()
    productDescription = _evidence_field()
    serviceDate = _evidence_field()
    uncategorizedText = _evidence_field()


class CloseIn(serializers.Serializer):
    outcome = StrictCharField(required=False, default="", allow_blank=True, max_length=20,
                              help_text="won or lost (default lost: accepting the loss, as the original)")


class EvidenceOut(serializers.Serializer):
    customerName = serializers.CharField()
    customerEmailAddress = serializers.CharField()
    productDescription = serializers.CharField()
    serviceDate = serializers.CharField()
    uncategorizedText = serializers.CharField()


class DisputeOut(serializers.Serializer):
    id = serializers.CharField()
    paymentIntentId = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=["warning_needs_response", "needs_response", "under_review", "won",
                                              "lost", "warning_under_review", "warning_closed"])
    created = serializers.DateTimeField()
    customerId = serializers.CharField()
    funds = serializers.ChoiceField(choices=["held", "released", "lost"],
                                    help_text="the disputed amount: withheld, reinstated (won) or lost")
    evidence = EvidenceOut()
    reason = serializers.CharField(required=False)
    evidenceDueBy = serializers.DateTimeField(required=False)
    providerRef = serializers.CharField(required=False)
    closedAt = serializers.DateTimeField(required=False)
    metadata = serializers.DictField(required=False)


class DisputesView(APIView):
    @extend_schema(parameters=[OpenApiParameter("paymentIntentId", str, required=False), *PAGING_PARAMETERS],
                   responses=DisputeOut(many=True), operation_id="disputes_list",
                   summary="List disputes, newest first (bare array; more pages via the Link header)")
    def get(self, request):
        return paged_array(request, selectors.dispute_list(
            organization=request.organization,
            payment_intent_id=(request.query_params.get("paymentIntentId") or "").strip()), selectors.dispute_data)


class DisputeView(APIView):
    @extend_schema(responses=DisputeOut, summary="One dispute", operation_id="disputes_retrieve")
    def get(self, request, dispute_id: str):
        return Response(selectors.dispute_data(selectors.dispute_get(organization=request.organization,
                                                                     dispute_id=dispute_id)))

    @extend_schema(request=EvidenceIn, responses=DisputeOut, operation_id="disputes_evidence",
                   summary="Submit evidence: the fields sent are merged into the stored evidence; the dispute "
                           "goes under review (409 once closed)")
    def patch(self, request, dispute_id: str):
        dispute_services.dispute_exists(organization=request.organization, dispute_id=dispute_id)
        v = validated(EvidenceIn, body(request))
        dispute = dispute_services.dispute_evidence_submit(
            organization=request.organization, dispute_id=dispute_id,
            evidence={name: v.get(name) for name in EVIDENCE_FIELDS}, actor=api_actor(request))
        return Response(selectors.dispute_data(dispute))


class DisputeCloseView(APIView):
    @extend_schema(request=CloseIn, responses=DisputeOut, operation_id="disputes_close",
                   summary="Close: won reinstates the withheld funds, lost (the default) makes them a loss; a "
                           "closed dispute keeps its outcome (409 for another)")
    def post(self, request, dispute_id: str):
        dispute_services.dispute_exists(organization=request.organization, dispute_id=dispute_id)
        v = validated(CloseIn, optional_body(request))
        dispute = dispute_services.dispute_close(organization=request.organization, dispute_id=dispute_id,
                                                 outcome=v["outcome"], actor=api_actor(request))
        return Response(selectors.dispute_data(dispute))


urlpatterns = [
    path("disputes", DisputesView.as_view(), name="disputes"),
    path("disputes/<str:dispute_id>", DisputeView.as_view(), name="dispute"),
    path("disputes/<str:dispute_id>/close", DisputeCloseView.as_view(), name="dispute-close"),
]
