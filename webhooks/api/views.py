from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.response import Response

from billing_project.core.api.pagination import next_link, paginate
from webhooks import selectors
from webhooks.api.serializers import BillingEventSerializer

PAGING = [
    OpenApiParameter("limit", int, description="1–1000, default 100"),
    OpenApiParameter("startingAfter", str, description="id of the last object of the previous page"),
]


class BillingEventViewSet(viewsets.ViewSet):
    lookup_value_regex = "[^/]+"

    @extend_schema(
        parameters=[OpenApiParameter("type", str), OpenApiParameter("objectId", str), *PAGING],
        responses=BillingEventSerializer(many=True),
        summary="List billing events, newest first (bare array; more pages via the Link header)",
    )
    def list(self, request):
        qs = selectors.event_list(organization=request.organization, type=request.query_params.get("type"),
                                  object_id=request.query_params.get("objectId"))
        items, has_more = paginate(qs, request.query_params)
        response = Response(BillingEventSerializer(items, many=True).data)
        link = next_link(request, items, has_more)
        if link:
            response["Link"] = link
        return response

    @extend_schema(responses=BillingEventSerializer, summary="Get one billing event")
    def retrieve(self, request, pk=None):
        event = selectors.event_get(organization=request.organization, event_id=pk)
        return Response(BillingEventSerializer(event).data)
