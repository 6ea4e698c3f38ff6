"""Metering HTTP interface: meters, meter-event batches and the usage summary.

``POST /meter-events`` is the hot path: its body is checked by a hand-written loop (no DRF serializer
per event) and stored by one service call; the serializers below document it for the schema."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, viewsets
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField, StrictDictField, StrictIntegerField
from billing_project.core.api.inputs import body, query_required, validated
from billing_project.core.errors import ValidationError
from billing_project.core.money import INT64_MAX, INT64_MIN
from billing_project.core.times import parse_period_bound, parse_rfc3339
from invoicing.models import Meter
from invoicing.selectors import metering as selectors
from invoicing.services import metering as services
from invoicing.services.metering import MeterEventInput

MAX_DIMENSIONS = 50
MAX_DIMENSION_LENGTH = 255
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --- serializers ------------------------------------------------------------------------------------

class MeterIn(serializers.Serializer):
    name = StrictCharField(max_length=255)
    eventName = StrictCharField(max_length=255)
    aggregationType = StrictCharField(required=False, default=Meter.AGG_SUM, allow_blank=True, max_length=20,
                                      help_text="sum (default), count, last, max or unique_count")
    currency = StrictCharField(required=False, default="usd", allow_blank=True)
    dimensions = serializers.ListField(child=StrictCharField(max_length=100, allow_blank=True), required=False,
                                       allow_null=True, default=None, max_length=MAX_DIMENSIONS)
    uniqueDimension = StrictCharField(required=False, default="", allow_blank=True, max_length=100,
                                      help_text="unique_count only (required there): the dimension counted")


class MeterOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    eventName = serializers.CharField()
    aggregationType = serializers.ChoiceField(choices=Meter.AGGREGATIONS)
    currency = serializers.CharField()
    dimensions = serializers.ListField(child=serializers.CharField(), allow_null=True)
    uniqueDimension = serializers.CharField(required=False, help_text="only for unique_count meters")
    createdAt = serializers.DateTimeField()


@extend_schema_serializer(many=False)  # an envelope object, not an array of them
class MeterListOut(serializers.Serializer):
    meters = MeterOut(many=True)
    count = serializers.IntegerField()


class MeterEventIn(serializers.Serializer):
    meterId = StrictCharField(max_length=255, help_text="a meter's id, or its eventName; an event naming no "
                              "meter is kept and counted once a meter with that id or eventName is created")
    userId = StrictCharField(max_length=255)
    value = StrictIntegerField(required=False, default=0)
    timestamp = serializers.DateTimeField(required=False, help_text="RFC 3339; default now; any age (unless "
                                          "the organization sets a backdating window), at most 5 minutes ahead")
    idempotency = StrictCharField(required=False, max_length=255,
                                  help_text="dedupe key, unique per meter: a replay reports duplicate "
                                  "(with conflict: true when its payload differs; nothing is stored either way)")
    dimensions = StrictDictField(child=serializers.CharField(), required=False)


class MeterEventBatchIn(serializers.Serializer):
    events = MeterEventIn(many=True, help_text="1 to 100 events")


class MeterEventResultOut(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.ChoiceField(choices=[services.STATUS_CREATED, services.STATUS_DUPLICATE])
    conflict = serializers.BooleanField(required=False, help_text="present (true) on a duplicate whose payload "
                                        "differs from the stored event's: the new payload was not recorded")


def _event_result(result: services.MeterEventResult) -> dict:
    # The original reports every replayed key as "duplicate"; a differing payload is flagged, not renamed.
    if result.status == services.STATUS_CONFLICT:
        return {"id": result.id, "status": services.STATUS_DUPLICATE, "conflict": True}
    return {"id": result.id, "status": result.status}


class MeterEventBatchOut(serializers.Serializer):
    events = MeterEventResultOut(many=True)
    count = serializers.IntegerField()


class MeterUsageSummaryOut(serializers.Serializer):
    meterId = serializers.CharField()
    meterName = serializers.CharField()
    userId = serializers.CharField()
    aggregationType = serializers.CharField()
    value = serializers.IntegerField()
    eventCount = serializers.IntegerField()
    periodStart = serializers.CharField()
    periodEnd = serializers.CharField()


# --- meters -----------------------------------------------------------------------------------------

class MeterViewSet(viewsets.GenericViewSet):
    lookup_value_regex = "[^/]+"
    serializer_class = MeterOut
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller organization
            return Meter.objects.none()
        return selectors.meter_list(organization=self.request.organization)

    @extend_schema(responses=MeterListOut, summary="List meters in creation order")
    def list(self, request):
        meters = [services.meter_data(m) for m in self.get_queryset()]
        return Response({"meters": meters, "count": len(meters)})

    @extend_schema(responses=MeterOut, summary="Get a meter")
    def retrieve(self, request, pk=None):
        return Response(services.meter_data(selectors.meter_get(organization=request.organization, meter_id=pk)))

    @extend_schema(request=MeterIn, responses={201: MeterOut},
                   summary="Create a meter (eventName unique per organization: 409 when taken)")
    def create(self, request):
        v = validated(MeterIn, body(request))
        meter = services.meter_create(
            organization=request.organization, name=v["name"], event_name=v["eventName"],
            aggregation_type=v["aggregationType"], currency=v["currency"], dimensions=v["dimensions"],
            unique_dimension=v["uniqueDimension"],
        )
        return Response(services.meter_data(meter), status=http.HTTP_201_CREATED)


# --- meter events -----------------------------------------------------------------------------------

def _bad(index: int, field: str, message: str) -> ValidationError:
    where = f"events[{index}].{field}" if field else f"events[{index}]"
    return ValidationError(f"invalid request body: {where} {message}", param=where, code="invalid_request_body")


def _dimension_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return None


def _event_ref(i: int, item: dict[str, Any], field: str, missing_message: str) -> str:
    """``meterId`` / ``userId``: a required string, trimmed."""
    text = item.get(field)
    if text is not None and not isinstance(text, str):
        raise _bad(i, field, "must be a string")
    text = (text or "").strip()
    if not text:
        raise ValidationError(missing_message, param=f"events[{i}].{field}", code="parameter_missing")
    return text


def _event_value(i: int, item: dict[str, Any]) -> int:
    value = item.get("value", 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(i, "value", "must be an integer")
    if not INT64_MIN <= value <= INT64_MAX:
        raise _bad(i, "value", "must fit in a signed 64-bit integer")
    return value


def _event_timestamp(i: int, item: dict[str, Any]) -> datetime | None:
    timestamp = item.get("timestamp")
    if timestamp is None or timestamp == "":
        return None
    parsed = parse_rfc3339(timestamp)
    if parsed is None:
        raise ValidationError(f"invalid timestamp format: {timestamp} (expected RFC 3339)",
                              param=f"events[{i}].timestamp", code="invalid_timestamp")
    return parsed


def _event_dimensions(i: int, item: dict[str, Any]) -> dict[str, str] | None:
    dims = item.get("dimensions")
    if dims is None:
        return None
    if not isinstance(dims, dict):
        raise _bad(i, "dimensions", "must be an object")
    if len(dims) > MAX_DIMENSIONS:
        raise _bad(i, "dimensions", f"must have at most {MAX_DIMENSIONS} entries")
    normalized = {}
    for name, dim_value in dims.items():
        text = _dimension_text(dim_value)
        if text is None:
            raise _bad(i, f"dimensions.{name}", "must be a string, number or boolean")
        if len(name) > MAX_DIMENSION_LENGTH or len(text) > MAX_DIMENSION_LENGTH:
            raise _bad(i, f"dimensions.{name}", f"must be at most {MAX_DIMENSION_LENGTH} characters")
        normalized[name] = text
    return normalized


def _event_parse(i: int, item: Any) -> MeterEventInput:
    """One event of the batch, checked in the original's order (meterId, userId, value, timestamp,
    idempotency, dimensions)."""
    if not isinstance(item, dict):
        raise _bad(i, "", "must be an object")
    meter_id = _event_ref(i, item, "meterId", services.MSG_METER_REQUIRED)
    user = _event_ref(i, item, "userId", services.MSG_USER_REQUIRED)
    value = _event_value(i, item)
    timestamp = _event_timestamp(i, item)
    key = item.get("idempotency")
    if key is not None and not isinstance(key, str):
        raise _bad(i, "idempotency", "must be a string")
    dims = _event_dimensions(i, item)
    return MeterEventInput(meter_id=meter_id, customer=user, value=value, timestamp=timestamp,
                           idempotency_key=key or None, dimensions=dims)


def events_parse(data: dict[str, Any]) -> list[MeterEventInput]:
    """Check the JSON types of a ``{"events": [...]}`` body and build service inputs (whole batch)."""
    raw = data.get("events")
    if raw is None or raw == []:
        raise ValidationError("at least one event is required", param="events", code="parameter_missing")
    if not isinstance(raw, list):
        raise ValidationError("invalid request body: events must be an array", param="events",
                              code="invalid_request_body")
    if len(raw) > services.MAX_BATCH:
        raise ValidationError(f"maximum {services.MAX_BATCH} events per batch", param="events",
                              code="batch_too_large")
    return [_event_parse(i, item) for i, item in enumerate(raw)]


class MeterEventsView(APIView):
    data_error_param = "events.value"  # a rollup sum past int64 (PostgreSQL DataError) is about the values

    @extend_schema(request=MeterEventBatchIn, responses={201: MeterEventBatchOut},
                   summary="Record 1–100 meter events atomically (whole batch validated first; "
                   "per-meter idempotency keys → created / duplicate (conflict: true if the payload differs); events "
                   "for a meterId that names "
                   "no meter yet are kept and counted once that meter exists)")
    def post(self, request):
        events = events_parse(body(request))
        results = services.meter_events_record(organization=request.organization, events=events)
        return Response({"events": [_event_result(r) for r in results], "count": len(results)},
                        status=http.HTTP_201_CREATED)


def _summary_bound(raw: str, *, param: str) -> datetime | None:
    """A summary bound as the original reads it (metering.md §8): RFC 3339 or ``YYYY-MM-DD``; anything else
    is ignored (an open bound), a read-only leniency kept for wire compatibility. The original's summary
    reads a date-only ``periodEnd`` as the whole of that day: the half-open end is the next day's 00:00
    UTC. An RFC 3339 end stays as given (exclusive)."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        bound = parse_period_bound(text, param=param)
    except ValidationError:
        return None
    if param == "periodEnd" and _DATE_ONLY.match(text):
        if bound.date() == date.max:
            return None  # the whole of 9999-12-31: no end
        bound += timedelta(days=1)
    return bound


def usage_in_int64(*values: int) -> None:
    """Rollups sum in numeric, so a period can total more than the original's int64; no response carries
    such a number (issue 10 §2): 400, and a shorter period fits."""
    if any(not INT64_MIN <= value <= INT64_MAX for value in values):
        raise ValidationError("usage for this period exceeds a signed 64-bit integer; ask for a shorter period",
                              param="periodStart", code="out_of_range")


class MeterEventSummaryView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("meterId", str, required=True, description="a meter's id, or its eventName"),
            OpenApiParameter("userId", str, description="absent → all customers"),
            OpenApiParameter("periodStart", str, description="RFC 3339 or YYYY-MM-DD (00:00 UTC), inclusive; "
                             "anything else is ignored (as in the original)"),
            OpenApiParameter("periodEnd", str, description="RFC 3339 (exclusive) or YYYY-MM-DD (that whole day "
                             "included); anything else is ignored (as in the original)"),
        ],
        responses=MeterUsageSummaryOut,
        summary="Aggregate a meter's events over [periodStart, periodEnd)",
    )
    def get(self, request):
        meter_id = query_required(request, "meterId")
        raw_start = request.query_params.get("periodStart", "")
        raw_end = request.query_params.get("periodEnd", "")
        start = _summary_bound(raw_start, param="periodStart")
        end = _summary_bound(raw_end, param="periodEnd")
        meter = selectors.meter_resolve(organization=request.organization, meter_ref=meter_id, param="meterId")
        user = (request.query_params.get("userId") or "").strip()
        usage = selectors.meter_usage(meter=meter, customer=user or None, start=start, end=end)
        usage_in_int64(usage.value)
        return Response({
            "meterId": meter.public_id, "meterName": meter.name, "userId": user,
            "aggregationType": meter.aggregation_type, "value": usage.value, "eventCount": usage.event_count,
            "periodStart": raw_start, "periodEnd": raw_end,
        })
