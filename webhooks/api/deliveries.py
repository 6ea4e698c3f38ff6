"""Deliveries over HTTP: ``GET /deliveries/:id`` with its attempts, ``POST /events/:id/resend``."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField
from billing_project.core.api.inputs import optional_body, validated
from webhooks import selectors
from webhooks.api.serializers import BillingEventSerializer
from webhooks.models import Delivery
from webhooks.services import redelivery


class AttemptOut(serializers.Serializer):
    number = serializers.IntegerField()
    outcome = serializers.CharField(help_text="succeeded, retry (another attempt is scheduled) or failed")
    statusCode = serializers.IntegerField(allow_null=True, help_text="null: no HTTP answer (timeout, refused)")
    latencyMs = serializers.IntegerField()
    error = serializers.CharField()
    responseBody = serializers.CharField(help_text="the answer's first 2 KB")
    created = serializers.DateTimeField()


class DeliveryOut(serializers.Serializer):
    id = serializers.CharField()
    eventId = serializers.CharField()
    eventType = serializers.CharField()
    endpointId = serializers.CharField()
    reason = serializers.CharField(help_text="event (the fan-out) or resend")
    status = serializers.CharField(help_text="pending, succeeded, failed (gave up) or canceled (endpoint disabled)")
    attemptCount = serializers.IntegerField()
    nextAttemptAt = serializers.DateTimeField(allow_null=True)
    lastStatusCode = serializers.IntegerField(allow_null=True)
    lastError = serializers.CharField()
    deliveredAt = serializers.DateTimeField(allow_null=True)
    created = serializers.DateTimeField()


class DeliveryDetailOut(DeliveryOut):
    attempts = AttemptOut(many=True)


class ResendIn(serializers.Serializer):
    endpointId = StrictCharField(required=False, allow_blank=True,
                                 help_text="only this endpoint (must be enabled); absent = every matching endpoint")


class ResendOut(serializers.Serializer):
    event = BillingEventSerializer()
    deliveries = DeliveryOut(many=True)


def delivery_data(delivery: Delivery, *, attempts: bool = False) -> dict:
    out = {
        "id": delivery.public_id, "eventId": delivery.event.public_id, "eventType": delivery.event.type,
        "endpointId": delivery.endpoint.public_id, "reason": delivery.reason, "status": delivery.status,
        "attemptCount": delivery.attempt_count,
        "nextAttemptAt": delivery.next_attempt_at if delivery.status == Delivery.STATUS_PENDING else None,
        "lastStatusCode": delivery.last_status_code, "lastError": delivery.last_error,
        "deliveredAt": delivery.delivered_at, "created": delivery.created_at,
    }
    if attempts:
        out["attempts"] = [{
            "number": a.number, "outcome": a.outcome, "statusCode": a.status_code, "latencyMs": a.latency_ms,
            "error": a.error, "responseBody": a.response_body, "created": a.created_at,
        } for a in sorted(delivery.attempts.all(), key=lambda a: a.number)]
    return out


class DeliveryView(APIView):
    @extend_schema(responses=DeliveryDetailOut, summary="Get a webhook delivery with its attempts")
    def get(self, request, delivery_id: str):
        delivery = selectors.delivery_get(organization=request.organization, delivery_id=delivery_id)
        return Response(delivery_data(delivery, attempts=True))


class EventResendView(APIView):
    @extend_schema(request=ResendIn, responses=ResendOut,
                   summary="Deliver an event again (new deliveries, sent right away; same event id)")
    def post(self, request, event_id: str):
        v = validated(ResendIn, optional_body(request))
        event, created = redelivery.event_resend(organization=request.organization, event_id=event_id,
                                                 endpoint_id=v.get("endpointId") or None)
        for delivery in created:
            delivery.event = event
        return Response({"event": BillingEventSerializer(event).data,
                         "deliveries": [delivery_data(d) for d in created]})


urlpatterns = [
    path("deliveries/<str:delivery_id>", DeliveryView.as_view(), name="webhook-delivery"),
    path("events/<str:event_id>/resend", EventResendView.as_view(), name="event-resend"),
]
