"""Subscriptions over HTTP (spec subscriptions.md §4–10): parse, call one service or selector, render."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictDictField,
    StrictIntegerField,
)
from billing_project.core.api.inputs import api_actor, body, optional_body, validated
from billing_project.core.api.pagination import PAGING_PARAMETERS, paginate
from billing_project.core.money import INT64_MAX, INT64_MIN
from invoicing.api.invoices import CollectionOut, InvoiceOut
from invoicing.services import invoice_render
from subscriptions import selectors
from subscriptions.services import renewals
from subscriptions.services import subscriptions as sub_services
from subscriptions.services.render import subscription_data


class ItemSpecIn(serializers.Serializer):
    priceId = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    planId = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    meterId = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    quantity = StrictIntegerField(required=False, default=0, min_value=INT64_MIN, max_value=INT64_MAX)
    billingMode = StrictCharField(required=False, default="", allow_blank=True, max_length=40)
    metadata = StrictDictField(required=False, default=None, allow_null=True)


class SubscriptionIn(serializers.Serializer):
    userId = StrictCharField(max_length=255)
    planId = StrictCharField(max_length=255)
    defaultPaymentMethod = StrictCharField(required=False, default="", allow_blank=True, max_length=255,
                                           help_text="a payment-method id or the literal `balance`; echoed as sent")
    metadata = StrictDictField(required=False, default=dict)
    quantity = StrictIntegerField(required=False, default=1, min_value=1, max_value=1_000_000_000)
    trialPeriodDays = StrictIntegerField(required=False, default=None, allow_null=True, min_value=0,
                                         max_value=3650, help_text="overrides the plan's trial")
    items = ItemSpecIn(many=True, required=False, default=list)
    testClock = StrictCharField(required=False, default="", allow_blank=True, max_length=40,
                                help_text="a test clock id: the subscription lives in the clock's time")


class SubscriptionPatchIn(serializers.Serializer):
    planId = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    prorate = StrictBooleanField(required=False, default=True, help_text="false = prorationBehavior none")
    prorationBehavior = StrictCharField(required=False, default="", allow_blank=True, max_length=32,
                                        help_text="create_prorations (default) | always_invoice | none")
    quantity = StrictIntegerField(required=False, default=0, min_value=INT64_MIN, max_value=INT64_MAX,
                                  help_text="applied when > 0")
    defaultPaymentMethod = StrictCharField(required=False, default=None, allow_blank=True, max_length=255)
    metadata = StrictDictField(required=False, default=None)


class SubscriptionCancelIn(serializers.Serializer):
    atPeriodEnd = StrictBooleanField(required=False, default=False)


class PlanSnapshotOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    price = serializers.IntegerField()
    currency = serializers.CharField()
    interval = serializers.CharField()


class SubscriptionOut(serializers.Serializer):
    id = serializers.CharField()
    userId = serializers.CharField()
    planId = serializers.CharField()
    status = serializers.ChoiceField(choices=["trialing", "active", "past_due", "canceled", "unpaid"])
    quantity = serializers.IntegerField()
    currentPeriodStart = serializers.DateTimeField()
    currentPeriodEnd = serializers.DateTimeField()
    cancelAtPeriodEnd = serializers.BooleanField()
    providerType = serializers.CharField()
    defaultPaymentMethod = serializers.CharField()
    plan = PlanSnapshotOut(help_text="the plan as taken at start / last plan change")
    metadata = serializers.DictField()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    trialStart = serializers.DateTimeField(required=False)
    trialEnd = serializers.DateTimeField(required=False)
    canceledAt = serializers.DateTimeField(required=False)
    endedAt = serializers.DateTimeField(required=False)
    testClock = serializers.CharField(required=False)


class SubscriptionListOut(serializers.Serializer):
    subscriptions = SubscriptionOut(many=True)
    count = serializers.IntegerField()
    hasMore = serializers.BooleanField()


class RenewOut(serializers.Serializer):
    subscription = SubscriptionOut()
    invoice = InvoiceOut()
    collection = CollectionOut()


class SubscriptionsView(APIView):
    @extend_schema(request=SubscriptionIn, responses={201: SubscriptionOut},
                   summary="Start a subscription (no invoice: the first is the first renewal)")
    def post(self, request):
        v = validated(SubscriptionIn, body(request))
        sub = sub_services.subscription_create(
            organization=request.organization, customer_id=v["userId"].strip(), plan_id=v["planId"].strip(),
            quantity=v["quantity"], trial_period_days=v["trialPeriodDays"], items=v["items"],
            default_payment_method=v["defaultPaymentMethod"], metadata=v["metadata"], test_clock_id=v["testClock"])
        return Response(subscription_data(sub), status=http.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("userId", str), OpenApiParameter("status", str),
                               *PAGING_PARAMETERS],
                   responses=SubscriptionListOut, summary="List subscriptions, newest first",
                   operation_id="subscriptions_list")
    def get(self, request):
        q = request.query_params
        subs, has_more = paginate(selectors.subscription_list(
            organization=request.organization, customer_id=(q.get("userId") or "").strip(),
            status=(q.get("status") or "").strip()), q)
        return Response({"subscriptions": [subscription_data(s) for s in subs], "count": len(subs),
                         "hasMore": has_more})


class SubscriptionView(APIView):
    # PATCH may invoice and collect now (always_invoice): its services commit on their own.
    request_transaction = False

    @extend_schema(responses=SubscriptionOut, summary="One subscription", operation_id="subscriptions_retrieve")
    def get(self, request, subscription_id: str):
        return Response(subscription_data(selectors.subscription_get(organization=request.organization,
                                                                     subscription_id=subscription_id)))

    @extend_schema(request=SubscriptionPatchIn, responses=SubscriptionOut,
                   summary="Change plan / quantity (prorated by the second unless prorate=false)")
    def patch(self, request, subscription_id: str):
        sub = selectors.subscription_get(organization=request.organization, subscription_id=subscription_id)
        v = validated(SubscriptionPatchIn, body(request))
        behavior = v["prorationBehavior"] or ("create_prorations" if v["prorate"] else "none")
        if not v["prorate"] and not v["prorationBehavior"]:
            behavior = "none"
        # The plan change first: it is the part that can refuse (404/409), so a refusal writes nothing.
        sub_services.subscription_change_plan(
            organization=request.organization, subscription_id=sub.public_id, plan_id=v["planId"].strip(),
            quantity=v["quantity"] if v["quantity"] > 0 else None, proration_behavior=behavior)
        sub_services.subscription_metadata_update(
            organization=request.organization, subscription_id=sub.public_id,
            default_payment_method=v["defaultPaymentMethod"], metadata=v["metadata"])
        return Response(subscription_data(selectors.subscription_get(organization=request.organization,
                                                                     subscription_id=sub.public_id)))


class SubscriptionCancelView(APIView):
    request_transaction = False  # an immediate cancel collects its final invoice

    @extend_schema(request=SubscriptionCancelIn, responses=SubscriptionOut,
                   summary="Cancel now (final invoice of the used part) or at period end (no body = at period end)")
    def post(self, request, subscription_id: str):
        selectors.subscription_get(organization=request.organization, subscription_id=subscription_id)
        raw = optional_body(request)
        sent = request.body and request.data is not None
        at_period_end = validated(SubscriptionCancelIn, raw)["atPeriodEnd"] if sent else True
        sub = sub_services.subscription_cancel(organization=request.organization, subscription_id=subscription_id,
                                               at_period_end=at_period_end, actor=api_actor(request))
        return Response(subscription_data(sub))


class SubscriptionReactivateView(APIView):
    @extend_schema(request=None, responses=SubscriptionOut, summary="Undo a pending at-period-end cancel")
    def post(self, request, subscription_id: str):
        selectors.subscription_get(organization=request.organization, subscription_id=subscription_id)
        optional_body(request)
        sub = sub_services.subscription_reactivate(organization=request.organization,
                                                   subscription_id=subscription_id, actor=api_actor(request))
        return Response(subscription_data(sub))


class SubscriptionRenewView(APIView):
    request_transaction = False  # collection runs outside any transaction (two-phase with a processor)

    @extend_schema(request=None, responses=RenewOut,
                   summary="Renew now: invoice the current period (once), finalize, collect, advance or past_due")
    def post(self, request, subscription_id: str):
        selectors.subscription_get(organization=request.organization, subscription_id=subscription_id)
        optional_body(request)
        outcome = renewals.subscription_renew(organization=request.organization, subscription_id=subscription_id,
                                              actor=api_actor(request))
        return Response({"subscription": subscription_data(outcome.subscription),
                         "invoice": invoice_render.invoice_data(outcome.invoice),
                         "collection": outcome.collection})


urlpatterns = [
    path("subscriptions", SubscriptionsView.as_view(), name="subscriptions"),
    path("subscriptions/<str:subscription_id>", SubscriptionView.as_view(), name="subscription"),
    path("subscriptions/<str:subscription_id>/cancel", SubscriptionCancelView.as_view(), name="subscription-cancel"),
    path("subscriptions/<str:subscription_id>/reactivate", SubscriptionReactivateView.as_view(),
         name="subscription-reactivate"),
    path("subscriptions/<str:subscription_id>/renew", SubscriptionRenewView.as_view(), name="subscription-renew"),
]
