from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response

from billing_project.core.api.pagination import PAGING_PARAMETERS, next_link, paginate
from webhooks import selectors
from webhooks.api.filters import BillingEventFilter
from webhooks.api.serializers import BillingEventSerializer
from webhooks.models import BillingEvent

PAGING = PAGING_PARAMETERS


class BillingEventViewSet(viewsets.GenericViewSet):
    lookup_value_regex = "[^/]+"
    filterset_class = BillingEventFilter
    serializer_class = BillingEventSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller organization
            return BillingEvent.objects.none()
        return selectors.event_list(organization=self.request.organization)

    @extend_schema(
        parameters=PAGING,
        responses=BillingEventSerializer(many=True),
        summary="List billing events, newest first (bare array; more pages via the Link header)",
    )
    def list(self, request):
        items, has_more = paginate(self.filter_queryset(self.get_queryset()), request.query_params)
        response = Response(BillingEventSerializer(items, many=True).data)
        link = next_link(request, items, has_more)
        if link:
            response["Link"] = link
        return response

    @extend_schema(responses=BillingEventSerializer, summary="Get one billing event")
    def retrieve(self, request, pk=None):
        event = selectors.event_get(organization=request.organization, event_id=pk)
        return Response(BillingEventSerializer(event).data)
