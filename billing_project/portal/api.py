"""Customer portal JSON (spec webhooks.md §7): GET /portal/overview|invoices|subscriptions|payment-methods.

Interface only: selectors of the apps below, read-only (GET never writes — the original created a usd
customer balance here). ``customerId`` is required (400 ``customerId is required``); an unknown customer
gets zeros and empty lists."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.errors import ValidationError
from billing_project.core.times import rfc3339
from invoicing.models import Invoice
from ledger.models import Account
from payments.models import PaymentMethod
from payments.services.methods import payment_method_data
from subscriptions.models import Subscription

CUSTOMER = [OpenApiParameter("customerId", str, required=True)]
MAX_ROWS = 1000


def _customer_id(request) -> str:
    value = (request.query_params.get("customerId") or "").strip()
    if not value:
        raise ValidationError("customerId is required", param="customerId", code="parameter_missing")
    return value


def _payment_methods(organization, customer_id: str):
    return (PaymentMethod.objects.select_related("customer")
            .filter(organization=organization, customer__customer_id=customer_id, detached_at__isnull=True)
            .order_by("-created_at", "-id"))


class PortalBalanceOut(serializers.Serializer):
    currency = serializers.CharField()
    balance = serializers.IntegerField()


class OverviewOut(serializers.Serializer):
    customerId = serializers.CharField()
    balance = serializers.IntegerField(help_text="the usd customer balance")
    currency = serializers.CharField()
    activeSubscriptions = serializers.IntegerField(help_text="subscriptions with status active")
    paymentMethods = serializers.IntegerField(help_text="attached (not detached) payment methods")
    balances = PortalBalanceOut(many=True, help_text="customer balances in every currency")


class PortalInvoiceOut(serializers.Serializer):
    id = serializers.CharField()
    number = serializers.CharField(allow_null=True, help_text="INV-0001; null until finalized")
    status = serializers.CharField()
    amountDue = serializers.IntegerField()
    total = serializers.IntegerField()
    currency = serializers.CharField()
    subscriptionId = serializers.CharField()
    created = serializers.DateTimeField()


class PortalSubscriptionOut(serializers.Serializer):
    id = serializers.CharField()
    planId = serializers.CharField()
    status = serializers.CharField()
    periodStart = serializers.DateTimeField()
    periodEnd = serializers.DateTimeField()
    cancelAtPeriodEnd = serializers.BooleanField()
    created = serializers.DateTimeField()


class PortalCardOut(serializers.Serializer):
    brand = serializers.CharField()
    last4 = serializers.CharField()
    expMonth = serializers.IntegerField()
    expYear = serializers.IntegerField()


class PortalPaymentMethodOut(serializers.Serializer):
    id = serializers.CharField()
    customerId = serializers.CharField()
    type = serializers.CharField()
    isDefault = serializers.BooleanField()
    created = serializers.DateTimeField()
    name = serializers.CharField(required=False)
    card = PortalCardOut(required=False)
    bankAccount = serializers.DictField(required=False)


class OverviewView(APIView):
    @extend_schema(parameters=CUSTOMER, responses=OverviewOut, summary="A customer's balance and counts")
    def get(self, request):
        customer_id = _customer_id(request)
        organization = request.organization
        balances = {currency: balance for currency, balance in Account.objects.filter(
            organization=organization, kind=Account.KIND_CUSTOMER_BALANCE, customer=customer_id)
            .order_by("currency").values_list("currency", "balance")}
        active = Subscription.objects.filter(organization=organization, customer__customer_id=customer_id,
                                             status=Subscription.STATUS_ACTIVE).count()
        return Response({
            "customerId": customer_id, "balance": balances.get("usd", 0), "currency": "usd",
            "activeSubscriptions": active,
            "paymentMethods": _payment_methods(organization, customer_id).count(),
            "balances": [{"currency": c, "balance": b} for c, b in balances.items()],
        })


class InvoicesView(APIView):
    @extend_schema(parameters=CUSTOMER, responses=PortalInvoiceOut(many=True),
                   summary="A customer's invoices, drafts included, newest first")
    def get(self, request):
        customer_id = _customer_id(request)
        invoices = Invoice.objects.filter(organization=request.organization, customer=customer_id).order_by("-id")
        return Response([{"id": i.public_id, "number": i.number_str or None, "status": i.status,
                          "amountDue": i.amount_due, "total": i.total, "currency": i.currency,
                          "subscriptionId": i.subscription_id, "created": rfc3339(i.created_at)}
                         for i in invoices[:MAX_ROWS]])


class SubscriptionsView(APIView):
    @extend_schema(parameters=CUSTOMER, responses=PortalSubscriptionOut(many=True),
                   summary="A customer's subscriptions, newest first")
    def get(self, request):
        customer_id = _customer_id(request)
        subs = (Subscription.objects.select_related("plan")
                .filter(organization=request.organization, customer__customer_id=customer_id).order_by("-id"))
        return Response([{"id": s.public_id, "planId": s.plan.public_id, "status": s.status,
                          "periodStart": rfc3339(s.current_period_start), "periodEnd": rfc3339(s.current_period_end),
                          "cancelAtPeriodEnd": s.cancel_at_period_end, "created": rfc3339(s.created_at)}
                         for s in subs[:MAX_ROWS]])


class PaymentMethodsView(APIView):
    @extend_schema(parameters=CUSTOMER, responses=PortalPaymentMethodOut(many=True),
                   summary="A customer's attached payment methods")
    def get(self, request):
        customer_id = _customer_id(request)
        methods = _payment_methods(request.organization, customer_id)
        return Response([payment_method_data(pm) for pm in methods[:MAX_ROWS]])



urlpatterns = [
    path("portal/overview", OverviewView.as_view(), name="portal-overview"),
    path("portal/invoices", InvoicesView.as_view(), name="portal-invoices"),
    path("portal/subscriptions", SubscriptionsView.as_view(), name="portal-subscriptions"),
    path("portal/payment-methods", PaymentMethodsView.as_view(), name="portal-payment-methods"),
]
