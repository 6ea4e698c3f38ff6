"""Subscription items over HTTP (spec subscriptions.md §11): lists are bare arrays."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField, StrictDictField, StrictIntegerField
from billing_project.core.api.inputs import body, validated
from billing_project.core.api.pagination import PAGING_PARAMETERS, paged_array
from billing_project.core.money import INT64_MAX, INT64_MIN
from subscriptions import selectors
from subscriptions.services import items as item_services
from subscriptions.services.render import item_data


class ItemIn(serializers.Serializer):
    subscriptionId = StrictCharField(max_length=255, help_text="need not exist yet")
    priceId = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    planId = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    meterId = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    quantity = StrictIntegerField(required=False, default=0, min_value=INT64_MIN, max_value=INT64_MAX)
    billingMode = StrictCharField(required=False, default="", allow_blank=True, max_length=40,
                                  help_text="licensed (default) | metered")
    metadata = StrictDictField(required=False, default=None)


class ItemPatchIn(serializers.Serializer):
    quantity = StrictIntegerField(required=False, default=None, min_value=INT64_MIN, max_value=INT64_MAX,
                                  help_text="applied when > 0")
    metadata = StrictDictField(required=False, default=None, help_text="replaces the metadata when sent")


class ItemOut(serializers.Serializer):
    id = serializers.CharField()
    subscriptionId = serializers.CharField()
    billingMode = serializers.CharField()
    quantity = serializers.IntegerField()
    created = serializers.DateTimeField()
    priceId = serializers.CharField(required=False)
    planId = serializers.CharField(required=False)
    meterId = serializers.CharField(required=False)
    metadata = serializers.DictField(required=False)


class ItemDeletedOut(serializers.Serializer):
    deleted = serializers.BooleanField()
    id = serializers.CharField()


class ItemsView(APIView):
    @extend_schema(request=ItemIn, responses={201: ItemOut}, summary="Add an item (references need not exist)")
    def post(self, request):
        v = validated(ItemIn, body(request))
        item = item_services.item_create(
            organization=request.organization, subscription_id=v["subscriptionId"].strip(), price_id=v["priceId"],
            plan_id=v["planId"], meter_id=v["meterId"], quantity=v["quantity"], billing_mode=v["billingMode"],
            metadata=v["metadata"])
        return Response(item_data(item), status=http.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("subscriptionId", str), *PAGING_PARAMETERS],
                   responses=ItemOut(many=True), summary="List items (bare array)",
                   operation_id="subscription_items_list")
    def get(self, request):
        q = request.query_params
        items = selectors.item_list(organization=request.organization,
                                    subscription_id=(q.get("subscriptionId") or "").strip())
        return paged_array(request, items, item_data)


class ItemView(APIView):
    @extend_schema(responses=ItemOut, summary="One item", operation_id="subscription_items_retrieve")
    def get(self, request, item_id: str):
        return Response(item_data(selectors.item_get(organization=request.organization, item_id=item_id)))

    @extend_schema(request=ItemPatchIn, responses=ItemOut, summary="Update quantity / metadata (no proration)")
    def patch(self, request, item_id: str):
        selectors.item_get(organization=request.organization, item_id=item_id)
        v = validated(ItemPatchIn, body(request))
        item = item_services.item_update(organization=request.organization, item_id=item_id,
                                         quantity=v["quantity"], metadata=v["metadata"])
        return Response(item_data(item))

    @extend_schema(request=None, responses={200: ItemDeletedOut}, summary="Delete an item")
    def delete(self, request, item_id: str):
        deleted = item_services.item_delete(organization=request.organization, item_id=item_id)
        return Response({"deleted": True, "id": deleted})


urlpatterns = [
    path("subscription-items", ItemsView.as_view(), name="subscription-items"),
    path("subscription-items/<str:item_id>", ItemView.as_view(), name="subscription-item"),
]
