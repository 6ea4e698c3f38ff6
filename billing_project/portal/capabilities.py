"""``GET /capabilities`` (spec webhooks.md §6): the original's static document as a floor — no entry a client
may look for is ever removed — with ``bankTransferReconciliation: true``, plus ``enabled``: what this
deployment really has, computed from its routes, settings and tables, never hand-maintained."""

from __future__ import annotations

from django.urls import Resolver404, resolve
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.errors import api_not_found
from billing_project.core.errors import ValidationError
from billing_project.core.models import Organization
from billing_project.core.money import currency_exponent, currency_normalize
from invoicing import rating
from payments.processors import registry

BILLING = "/api/v1/billing/"

FLOOR = {
    "paymentMethods": ["card", "bank_account", "balance", "crypto"],
    "currencies": ["usd", "eur", "gbp", "cad", "aud", "jpy", "chf", "btc", "eth", "sol", "usdc", "usdt", "lux"],
    "features": ["subscriptions", "subscription_items", "metered_billing", "invoicing", "credit_grants",
                 "credit_notes", "refunds", "disputes", "dunning", "payment_intents", "setup_intents",
                 "customer_balance", "payouts", "webhooks", "billing_events", "customer_portal"],
    "billingModels": ["flat_rate", "per_seat", "metered", "tiered", "volume", "threshold", "hybrid"],
    "taxCalculation": True,
    "bankTransferReconciliation": True,
}

# feature → a route that exists exactly when the feature is wired (ids are placeholders)
FEATURE_ROUTES = {
    "subscriptions": "subscriptions", "subscription_items": "subscription-items",
    "metered_billing": "meter-events", "invoicing": "invoices", "credit_grants": "credit-grants",
    "credit_notes": "credit-notes", "refunds": "refunds", "disputes": "disputes",
    "dunning": "subscriptions/x/retry-payment", "payment_intents": "payment-intents",
    "setup_intents": "setup-intents", "customer_balance": "customer-balance", "payouts": "payouts",
    "webhooks": "webhook-endpoints", "billing_events": "events", "customer_portal": "portal/overview",
    "tax_calculation": "invoices/x/calculate-tax", "bank_transfer_reconciliation": "reconciliation/match",
    "payment_methods": "payment-methods", "plans": "plans", "prepaid_wallets": "balance", "holds": "holds",
    "usage_ledger": "usage", "zap": "zap", "pricing_rules": "pricing-rules", "invoice_pdfs": "invoices/x/pdf",
}


def route_exists(route: str) -> bool:
    try:
        match = resolve(BILLING + route)
    except Resolver404:
        return False
    return match.func is not api_not_found


def _currencies() -> list[dict]:
    out = []
    for code in FLOOR["currencies"]:
        try:
            out.append({"code": currency_normalize(code), "exponent": currency_exponent(code)})
        except ValidationError:  # not ISO 4217 (crypto): not accepted by this deployment
            continue
    return out


def _processors(organization: Organization | None, wired: bool) -> tuple[list[str], dict | None]:
    """The processors registered in this deployment (none when payments are not wired) and the one that charges
    ``organization``'s customers, with where that choice comes from (organization | setting | default)."""
    if not wired:
        return [], None
    choice = registry.processor_choice(organization) if organization is not None else None
    return sorted(registry.processors_available()), (
        {"name": choice.name, "source": choice.source} if choice is not None else None)


def capabilities_document(organization: Organization | None = None) -> dict:
    features = {name: route_exists(route) for name, route in FEATURE_ROUTES.items()}
    processors, chosen = _processors(organization, features["payment_intents"])
    models = sorted(set(rating.MODELS) | {"metered"} | ({"flat_rate"} if features["plans"] else set()))
    methods = ["balance"] + (["card"] if features["payment_methods"] else [])
    return {
        **FLOOR,
        "enabled": {
            "processors": processors,
            **({"processor": chosen} if chosen is not None else {}),
            "paymentMethods": methods,
            "currencies": _currencies(),
            "anyIso4217Currency": True,
            "features": features,
            "billingModels": models,
            "webhookSignature": "Commerce-Signature: t=<unix>,v1=<hex HMAC-SHA256>",
        },
    }


CapabilitiesOut = inline_serializer("Capabilities", {
    "paymentMethods": serializers.ListField(child=serializers.CharField()),
    "currencies": serializers.ListField(child=serializers.CharField()),
    "features": serializers.ListField(child=serializers.CharField()),
    "billingModels": serializers.ListField(child=serializers.CharField()),
    "taxCalculation": serializers.BooleanField(),
    "bankTransferReconciliation": serializers.BooleanField(),
    "enabled": inline_serializer("CapabilitiesEnabled", {
        "processors": serializers.ListField(child=serializers.CharField()),
        "processor": inline_serializer("CapabilitiesProcessor", {
            "name": serializers.CharField(),
            "source": serializers.ChoiceField(choices=["organization", "setting", "default"])},
            required=False, help_text="The processor charging the caller's organization's customers"),
        "paymentMethods": serializers.ListField(child=serializers.CharField()),
        "currencies": serializers.ListField(child=inline_serializer("CapabilitiesCurrency", {
            "code": serializers.CharField(), "exponent": serializers.IntegerField()})),
        "anyIso4217Currency": serializers.BooleanField(),
        "features": serializers.DictField(child=serializers.BooleanField()),
        "billingModels": serializers.ListField(child=serializers.CharField()),
        "webhookSignature": serializers.CharField(),
    }),
})


class CapabilitiesView(APIView):
    @extend_schema(responses=CapabilitiesOut,
                   summary="What this deployment offers: the original's document plus `enabled` (what is wired)")
    def get(self, request):
        return Response(capabilities_document(getattr(request, "organization", None)))
