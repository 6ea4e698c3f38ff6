"""Subscription schedules over HTTP (spec subscriptions.md §12): parse, call one service or selector, render.

Action routes (``/cancel``, ``/release``) and PATCH answer 404 for an unknown id before looking at the body;
actions accept no body, ``null`` or a JSON object."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField, StrictDictField, StrictIntegerField
from billing_project.core.api.inputs import body, optional_body, validated
from billing_project.core.api.pagination import PAGING_PARAMETERS, paged_array
from billing_project.core.errors import ValidationError
from billing_project.core.times import parse_rfc3339
from subscriptions.selectors import schedules as schedule_selectors
from subscriptions.services import schedules as schedule_services


class PhaseItemSchema(serializers.Serializer):
    priceId = serializers.CharField(required=False, allow_null=True)
    quantity = serializers.IntegerField(required=False, allow_null=True)


class PhaseSchema(serializers.Serializer):
    planId = serializers.CharField(required=False, allow_null=True,
                                   help_text="need not exist now; a missing plan aborts the schedule when due")
    items = PhaseItemSchema(many=True, required=False, allow_null=True)
    startDate = serializers.CharField(required=False, allow_null=True,
                                      help_text="RFC 3339; default: the previous phase's end (first: startDate)")
    endDate = serializers.CharField(required=False, allow_null=True, help_text="RFC 3339, after startDate")
    trialEnd = serializers.CharField(required=False, allow_null=True, help_text="RFC 3339")
    prorationBehavior = serializers.CharField(required=False, allow_null=True,
                                              help_text="create_prorations (default) or none")


class PhasesField(serializers.ListField):
    """A list of phases, kept exactly as sent (``schedule_services.phases_check`` checks its structure)."""

    child = PhaseSchema()

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        return data


class ScheduleIn(serializers.Serializer):
    customerId = StrictCharField(max_length=255)
    startDate = StrictCharField(required=False, default="", allow_blank=True, help_text="RFC 3339")
    endBehavior = StrictCharField(required=False, default="", allow_blank=True, max_length=40,
                                  help_text="release (default) or cancel")
    phases = PhasesField(required=False, default=list)
    metadata = StrictDictField(required=False, default=dict)
    testClock = StrictCharField(required=False, default="", allow_blank=True, max_length=40,
                                help_text="a test clock id: the schedule runs in its time (and its subscription "
                                          "lives on it)")


class ScheduleUpdateIn(serializers.Serializer):
    endBehavior = StrictCharField(required=False, default="", allow_blank=True, max_length=40,
                                  help_text="applied when non-empty")
    phases = PhasesField(required=False, default=list, help_text="replaces all phases when non-empty")


class ScheduleOut(serializers.Serializer):
    id = serializers.CharField()
    customerId = serializers.CharField()
    status = serializers.ChoiceField(choices=["not_started", "active", "completed", "released", "canceled"])
    startDate = serializers.CharField(help_text="RFC 3339; 0001-01-01T00:00:00Z when none was given")
    endBehavior = serializers.CharField()
    created = serializers.DateTimeField()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    subscriptionId = serializers.CharField(required=False, help_text="the subscription the schedule manages")
    phases = PhaseSchema(many=True, required=False, help_text="as sent")
    metadata = serializers.DictField(required=False)
    currentPhase = StrictIntegerField(required=False, help_text="index of the phase running (once started)")
    canceledAt = serializers.DateTimeField(required=False)
    releasedAt = serializers.DateTimeField(required=False)
    completedAt = serializers.DateTimeField(required=False)
    abortReason = serializers.CharField(required=False,
                                        help_text="why the runner released the schedule (a missing plan or price)")
    testClock = serializers.CharField(required=False, help_text="the test clock it runs on")


class EmptyIn(serializers.Serializer):
    """No fields: the body may be absent, ``null`` or a JSON object."""


def _start_date(raw: str):
    if not raw:
        return None
    parsed = parse_rfc3339(raw.strip())
    if parsed is None:
        raise ValidationError("invalid request body: startDate must be an RFC 3339 timestamp", param="startDate",
                              code="invalid_request_body")
    return parsed


LIST_PARAMS = [
    OpenApiParameter("customerId", str, required=False),
    OpenApiParameter("status", str, required=False,
                     enum=["not_started", "active", "completed", "released", "canceled"]),
    *PAGING_PARAMETERS,
]


class SchedulesView(APIView):
    @extend_schema(request=ScheduleIn, responses={
        201: ScheduleOut, 404: OpenApiResponse(description="test clock not found: testClock names no clock")},
                   summary="Create a schedule (not_started): its phases run at their dates")
    def post(self, request):
        v = validated(ScheduleIn, body(request))
        schedule = schedule_services.schedule_create(
            organization=request.organization, customer_id=v["customerId"], start_date=_start_date(v["startDate"]),
            end_behavior=v["endBehavior"], phases=v["phases"], metadata=v["metadata"], test_clock_id=v["testClock"])
        return Response(schedule_services.schedule_data(schedule), status=http.HTTP_201_CREATED)

    @extend_schema(parameters=LIST_PARAMS, responses=ScheduleOut(many=True),
                   summary="List schedules, newest first (a bare array; more pages via the Link header)")
    def get(self, request):
        q = request.query_params
        return paged_array(request, schedule_selectors.schedule_list(
            organization=request.organization, customer_id=(q.get("customerId") or "").strip(),
            status=(q.get("status") or "").strip()), schedule_services.schedule_data)


class ScheduleView(APIView):
    @extend_schema(responses=ScheduleOut, summary="One schedule")
    def get(self, request, schedule_id: str):
        schedule = schedule_selectors.schedule_get(organization=request.organization, schedule_id=schedule_id)
        return Response(schedule_services.schedule_data(schedule))

    @extend_schema(request=ScheduleUpdateIn, responses=ScheduleOut,
                   summary="Change endBehavior and/or replace the phases (any status)")
    def patch(self, request, schedule_id: str):
        schedule_selectors.schedule_get(organization=request.organization, schedule_id=schedule_id)
        v = validated(ScheduleUpdateIn, optional_body(request))
        schedule = schedule_services.schedule_update(organization=request.organization, schedule_id=schedule_id,
                                                     end_behavior=v["endBehavior"], phases=v["phases"])
        return Response(schedule_services.schedule_data(schedule))


class ScheduleCancelView(APIView):
    @extend_schema(request=EmptyIn, responses=ScheduleOut,
                   summary="not_started/active → canceled: no further phase runs (the subscription is untouched)")
    def post(self, request, schedule_id: str):
        schedule_selectors.schedule_get(organization=request.organization, schedule_id=schedule_id)
        optional_body(request)
        schedule = schedule_services.schedule_cancel(organization=request.organization, schedule_id=schedule_id)
        return Response(schedule_services.schedule_data(schedule))


class ScheduleReleaseView(APIView):
    @extend_schema(request=EmptyIn, responses=ScheduleOut,
                   summary="not_started/active → released: the subscription keeps running on its own")
    def post(self, request, schedule_id: str):
        schedule_selectors.schedule_get(organization=request.organization, schedule_id=schedule_id)
        optional_body(request)
        schedule = schedule_services.schedule_release(organization=request.organization, schedule_id=schedule_id)
        return Response(schedule_services.schedule_data(schedule))


urlpatterns = [
    path("subscription-schedules", SchedulesView.as_view(), name="subscription-schedules"),
    path("subscription-schedules/<str:schedule_id>", ScheduleView.as_view(), name="subscription-schedule"),
    path("subscription-schedules/<str:schedule_id>/cancel", ScheduleCancelView.as_view(),
         name="subscription-schedule-cancel"),
    path("subscription-schedules/<str:schedule_id>/release", ScheduleReleaseView.as_view(),
         name="subscription-schedule-release"),
]
