"""Test clocks over HTTP: POST /test-clocks, GET /test-clocks/:id, POST /test-clocks/:id/advance."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.fields import empty
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField
from billing_project.core.api.inputs import body, optional_body, validated
from billing_project.core.times import parse_rfc3339
from subscriptions import selectors
from subscriptions.services import clocks as clock_services


class _TimeField(StrictCharField):
    def run_validation(self, data=empty):
        value = super().run_validation(data)
        if value in (None, empty) or value == "":
            return value
        parsed = parse_rfc3339(value)
        if parsed is None:
            raise serializers.ValidationError("must be an RFC 3339 timestamp", code="invalid_time")
        return parsed


class TestClockIn(serializers.Serializer):
    __test__ = False

    name = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    frozenTime = _TimeField(required=False, default=None, allow_null=True, help_text="RFC 3339; default now")


class AdvanceIn(serializers.Serializer):
    frozenTime = _TimeField(help_text="RFC 3339, after the clock's current time")


class TestClockOut(serializers.Serializer):
    __test__ = False

    id = serializers.CharField()
    name = serializers.CharField()
    frozenTime = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=["ready", "advancing"])
    createdAt = serializers.DateTimeField()


class TestClocksView(APIView):
    @extend_schema(request=TestClockIn, responses={201: TestClockOut}, summary="Create a test clock")
    def post(self, request):
        v = validated(TestClockIn, optional_body(request))
        clock = clock_services.test_clock_create(organization=request.organization, frozen_time=v["frozenTime"],
                                                 name=v["name"])
        return Response(clock_services.test_clock_data(clock), status=http.HTTP_201_CREATED)


class TestClockView(APIView):
    @extend_schema(responses=TestClockOut, summary="One test clock")
    def get(self, request, clock_id: str):
        clock = selectors.test_clock_get(organization=request.organization, clock_id=clock_id)
        return Response(clock_services.test_clock_data(clock))


class TestClockAdvanceView(APIView):
    request_transaction = False  # runs renewals (each collection outside any transaction)

    @extend_schema(request=AdvanceIn, responses=TestClockOut,
                   summary="Advance: run every renewal, trial step, cancel and dunning retry due, in order")
    def post(self, request, clock_id: str):
        selectors.test_clock_get(organization=request.organization, clock_id=clock_id)
        v = validated(AdvanceIn, body(request))
        clock = clock_services.test_clock_advance(organization=request.organization, clock_id=clock_id,
                                                  frozen_time=v["frozenTime"])
        return Response(clock_services.test_clock_data(clock))


urlpatterns = [
    path("test-clocks", TestClocksView.as_view(), name="test-clocks"),
    path("test-clocks/<str:clock_id>", TestClockView.as_view(), name="test-clock"),
    path("test-clocks/<str:clock_id>/advance", TestClockAdvanceView.as_view(), name="test-clock-advance"),
]
