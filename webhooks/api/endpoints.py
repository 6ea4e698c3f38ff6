"""Webhook endpoints over HTTP (spec webhooks.md §1): CRUD, roll-secret, an endpoint's deliveries.

The secret is in the answers of create and roll-secret only. PATCH applies ``url``, ``status`` and
``description`` when non-empty and ``events`` whenever sent (``[]`` = all events), as the original."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField
from billing_project.core.api.inputs import body, optional_body, validated
from billing_project.core.api.pagination import PAGING_PARAMETERS, paged_array
from billing_project.core.errors import ValidationError
from webhooks import selectors
from webhooks.api.deliveries import DeliveryOut, delivery_data
from webhooks.models import Delivery
from webhooks.services import endpoints as endpoint_services

EVENTS_HELP = "event types to receive: exact (invoice.paid), wildcard (invoice.*) or * ; empty or absent = all"


class EventTypesField(serializers.ListField):
    """A JSON array of at most 100 strings of at most 100 characters (exact types or wildcard patterns)."""

    child = serializers.CharField()
    default_error_messages = {"not_a_list": "must be a list of strings", "invalid": "must be a list of strings"}

    def to_internal_value(self, data):
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            self.fail("not_a_list")
        if len(data) > 100:
            raise serializers.ValidationError("must have at most 100 entries", code="max_length")
        for item in data:
            if len(item) > 100:
                raise serializers.ValidationError("entries must be at most 100 characters", code="max_length")
            if "\x00" in item:
                raise serializers.ValidationError("must not contain a NUL character", code="invalid")
        return list(data)


class EndpointIn(serializers.Serializer):
    url = StrictCharField(required=False, default="", allow_blank=True, trim_whitespace=False,
                          help_text="absolute http or https URL (reachability is checked at delivery)")
    events = EventTypesField(required=False, help_text=EVENTS_HELP)
    description = StrictCharField(required=False, default="", allow_blank=True, max_length=5000)


class EndpointUpdateIn(EndpointIn):
    url = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    description = StrictCharField(required=False, allow_blank=True, max_length=5000)
    status = StrictCharField(required=False, allow_blank=True, max_length=40,
                             help_text="enabled receives events; any other value (disabled) stops delivery")


class EndpointOut(serializers.Serializer):
    id = serializers.CharField()
    url = serializers.CharField()
    status = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    created = serializers.DateTimeField()
    metadata = serializers.DictField(required=False)
    previousSecretExpiresAt = serializers.DateTimeField(
        required=False, help_text="after a roll: until when the previous secret still signs deliveries")


class EndpointWithSecretOut(EndpointOut):
    secret = serializers.CharField(help_text="whsec_ + 64 hex; shown only here and on roll-secret")


class EndpointDeletedOut(serializers.Serializer):
    deleted = serializers.BooleanField()
    id = serializers.CharField()


def _events(v: dict) -> list[str] | None:
    return v.get("events")


class WebhookEndpointsView(APIView):
    @extend_schema(operation_id="v1_billing_webhook_endpoints_list", parameters=PAGING_PARAMETERS,
                   responses=EndpointOut(many=True),
                   summary="List webhook endpoints, newest first (bare array, no secrets; Link paging)")
    def get(self, request):
        endpoints = selectors.endpoint_list(organization=request.organization)
        return paged_array(request, endpoints, endpoint_services.endpoint_data)

    @extend_schema(request=EndpointIn, responses={201: EndpointWithSecretOut},
                   summary="Create a webhook endpoint (the answer carries its signing secret)")
    def post(self, request):
        v = validated(EndpointIn, body(request))
        endpoint = endpoint_services.endpoint_create(organization=request.organization, url=v["url"],
                                                     events=_events(v), description=v["description"])
        return Response(endpoint_services.endpoint_data(endpoint, with_secret=True), status=http.HTTP_201_CREATED)


class WebhookEndpointView(APIView):
    @extend_schema(responses=EndpointOut, summary="Get a webhook endpoint (no secret)")
    def get(self, request, endpoint_id: str):
        endpoint = endpoint_services.endpoint_get(organization=request.organization, endpoint_id=endpoint_id)
        return Response(endpoint_services.endpoint_data(endpoint))

    @extend_schema(request=EndpointUpdateIn, responses=EndpointOut,
                   summary="Update a webhook endpoint (url, status, description when non-empty; events when sent)")
    def patch(self, request, endpoint_id: str):
        endpoint_services.endpoint_get(organization=request.organization, endpoint_id=endpoint_id)  # 404 first
        v = validated(EndpointUpdateIn, body(request))
        endpoint = endpoint_services.endpoint_update(
            organization=request.organization, endpoint_id=endpoint_id, url=v.get("url"), events=_events(v),
            status=v.get("status"), description=v.get("description"))
        return Response(endpoint_services.endpoint_data(endpoint))

    @extend_schema(responses={200: EndpointDeletedOut}, summary="Delete a webhook endpoint (it receives nothing more)")
    def delete(self, request, endpoint_id: str):
        endpoint = endpoint_services.endpoint_delete(organization=request.organization, endpoint_id=endpoint_id)
        return Response({"deleted": True, "id": endpoint.public_id})


class RollSecretView(APIView):
    @extend_schema(request=None, responses=EndpointWithSecretOut,
                   summary="Roll the signing secret: the new one is in the answer; the old one signs too for 24 h")
    def post(self, request, endpoint_id: str):
        optional_body(request)
        endpoint = endpoint_services.endpoint_roll_secret(organization=request.organization, endpoint_id=endpoint_id)
        return Response(endpoint_services.endpoint_data(endpoint, with_secret=True))


STATUS_Q = OpenApiParameter("status", str, enum=[s for s, _ in Delivery.STATUS_CHOICES],
                            description="only deliveries in this status")


class EndpointDeliveriesView(APIView):
    @extend_schema(operation_id="v1_billing_webhook_endpoints_deliveries_list",
                   parameters=[STATUS_Q, *PAGING_PARAMETERS], responses=DeliveryOut(many=True),
                   summary="An endpoint's deliveries, newest first (bare array; Link paging)")
    def get(self, request, endpoint_id: str):
        endpoint = endpoint_services.endpoint_get(organization=request.organization, endpoint_id=endpoint_id)
        wanted = request.query_params.get("status") or None
        if wanted and wanted not in dict(Delivery.STATUS_CHOICES):
            raise ValidationError("status must be one of pending, succeeded, failed, canceled", param="status")
        qs = selectors.delivery_list(organization=request.organization, endpoint=endpoint, status=wanted)
        return paged_array(request, qs, delivery_data)


urlpatterns = [
    path("webhook-endpoints", WebhookEndpointsView.as_view(), name="webhook-endpoints"),
    path("webhook-endpoints/<str:endpoint_id>", WebhookEndpointView.as_view(), name="webhook-endpoint"),
    path("webhook-endpoints/<str:endpoint_id>/roll-secret", RollSecretView.as_view(), name="webhook-endpoint-roll"),
    path("webhook-endpoints/<str:endpoint_id>/deliveries", EndpointDeliveriesView.as_view(),
         name="webhook-endpoint-deliveries"),
]
