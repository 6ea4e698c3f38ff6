"""Plans over HTTP: POST/GET /plans, GET/PATCH/DELETE /plans/:id (DELETE archives)."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField, StrictDictField, StrictIntegerField
from billing_project.core.api.inputs import api_actor, body, validated
from billing_project.core.api.pagination import PAGING_PARAMETERS, paginate
from billing_project.core.money import INT64_MAX, currency_normalize
from subscriptions import selectors
from subscriptions.services import plans as plan_services
from subscriptions.services.render import plan_data


class PlanIn(serializers.Serializer):
    name = StrictCharField(max_length=255)
    slug = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    description = StrictCharField(required=False, default="", allow_blank=True, max_length=5000)
    price = StrictIntegerField(required=False, default=0, min_value=0, max_value=INT64_MAX,
                               help_text="flat fee per period, minor units")
    currency = StrictCharField(required=False, default="usd", allow_blank=True)
    interval = StrictCharField(required=False, default="month", allow_blank=True, max_length=16,
                               help_text="month | year (anything else behaves as month)")
    intervalCount = StrictIntegerField(required=False, default=1, min_value=-1000, max_value=1000,
                                       help_text="≤ 0 means 1")
    trialPeriodDays = StrictIntegerField(required=False, default=0, min_value=0, max_value=3650)
    metadata = StrictDictField(required=False, default=dict)

    def validate_currency(self, value):
        return currency_normalize(value)


class PlanPatchIn(serializers.Serializer):
    name = StrictCharField(required=False, max_length=255)
    slug = StrictCharField(required=False, allow_blank=True, max_length=255)
    description = StrictCharField(required=False, allow_blank=True, max_length=5000)
    price = StrictIntegerField(required=False, min_value=0, max_value=INT64_MAX)
    currency = StrictCharField(required=False)
    interval = StrictCharField(required=False, allow_blank=True, max_length=16)
    intervalCount = StrictIntegerField(required=False, min_value=-1000, max_value=1000)
    trialPeriodDays = StrictIntegerField(required=False, min_value=0, max_value=3650)
    metadata = StrictDictField(required=False)

    def validate_currency(self, value):
        return currency_normalize(value)


class PlanOut(serializers.Serializer):
    id = serializers.CharField()
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    price = serializers.IntegerField()
    currency = serializers.CharField()
    interval = serializers.CharField()
    intervalCount = serializers.IntegerField()
    trialPeriodDays = serializers.IntegerField()
    version = serializers.IntegerField(help_text="grows with every change of price, currency or interval")
    active = serializers.BooleanField(help_text="false once archived (DELETE)")
    metadata = serializers.DictField()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


class PlanListOut(serializers.Serializer):
    plans = PlanOut(many=True)
    count = serializers.IntegerField()
    hasMore = serializers.BooleanField()


_FIELDS = {"name": "name", "slug": "slug", "description": "description", "price": "price", "currency": "currency",
           "interval": "interval", "intervalCount": "interval_count", "trialPeriodDays": "trial_period_days",
           "metadata": "metadata"}


class PlansView(APIView):
    @extend_schema(request=PlanIn, responses={201: PlanOut}, summary="Create a plan")
    def post(self, request):
        v = validated(PlanIn, body(request))
        plan = plan_services.plan_create(
            organization=request.organization, name=v["name"], slug=v["slug"], description=v["description"],
            price=v["price"], currency=v["currency"], interval=v["interval"], interval_count=v["intervalCount"],
            trial_period_days=v["trialPeriodDays"], metadata=v["metadata"])
        return Response(plan_data(plan), status=http.HTTP_201_CREATED)

    @extend_schema(parameters=PAGING_PARAMETERS, responses=PlanListOut, summary="List active plans, newest first",
                   operation_id="plans_list")
    def get(self, request):
        plans, has_more = paginate(selectors.plan_list(organization=request.organization), request.query_params)
        return Response({"plans": [plan_data(p) for p in plans], "count": len(plans), "hasMore": has_more})


class PlanView(APIView):
    @extend_schema(responses=PlanOut, summary="One plan (archived ones too)", operation_id="plans_retrieve")
    def get(self, request, plan_id: str):
        return Response(plan_data(selectors.plan_get(organization=request.organization, plan_id=plan_id)))

    @extend_schema(request=PlanPatchIn, responses=PlanOut,
                   summary="Update a plan; a new price is a new version (running subscriptions keep theirs)")
    def patch(self, request, plan_id: str):
        selectors.plan_get(organization=request.organization, plan_id=plan_id)
        v = validated(PlanPatchIn, body(request))
        plan = plan_services.plan_update(organization=request.organization, plan_id=plan_id,
                                         changes={_FIELDS[k]: value for k, value in v.items()},
                                         actor=api_actor(request))
        return Response(plan_data(plan))

    @extend_schema(request=None, responses={200: PlanOut}, summary="Archive a plan (no new subscriptions)")
    def delete(self, request, plan_id: str):
        plan = plan_services.plan_archive(organization=request.organization, plan_id=plan_id,
                                          actor=api_actor(request))
        return Response(plan_data(plan))


urlpatterns = [
    path("plans", PlansView.as_view(), name="plans"),
    path("plans/<str:plan_id>", PlanView.as_view(), name="plan"),
]
