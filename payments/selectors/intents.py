"""Reads of payment intents: scoped to the caller's organization; another tenant's id is a 404."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from billing_project.core.times import rfc3339
from payments.models import PaymentIntent


def payment_intent_get(*, organization: Organization, intent_id: str) -> PaymentIntent:
    intent = (PaymentIntent.objects.select_related("customer", "payment_method")
              .filter(organization=organization, public_id=intent_id).first())
    if intent is None:
        raise NotFound("payment intent not found", param="id")
    return intent


def payment_intent_list(*, organization: Organization, customer_id: str = "") -> QuerySet[PaymentIntent]:
    """Newest first; ``customer_id`` filters exactly. The caller pages it."""
    queryset = PaymentIntent.objects.select_related("customer", "payment_method").filter(organization=organization)
    if customer_id:
        queryset = queryset.filter(customer__customer_id=customer_id)
    return queryset


def payment_intent_data(intent: PaymentIntent) -> dict[str, Any]:
    """The response object (spec payments.md §1.1): the original's fields, optional ones only when set, plus
    ``amountRefunded``."""
    data: dict[str, Any] = {
        "id": intent.public_id, "customerId": intent.customer.customer_id, "amount": intent.amount,
        "currency": intent.currency, "status": intent.status, "captureMethod": intent.capture_method,
        "confirmationMethod": intent.confirmation_method, "amountCapturable": intent.amount_capturable,
        "amountReceived": intent.amount_received, "amountRefunded": intent.amount_refunded,
        "created": rfc3339(intent.created_at),
    }
    optional = {
        "paymentMethodId": intent.payment_method.public_id if intent.payment_method_id else "",
        "invoiceId": intent.invoice_id, "description": intent.description, "providerRef": intent.provider_ref,
        "lastError": intent.last_error, "cancellationReason": intent.cancellation_reason,
    }
    data.update({k: v for k, v in optional.items() if v})
    if intent.canceled_at is not None:
        data["canceledAt"] = rfc3339(intent.canceled_at)
    if intent.metadata:
        data["metadata"] = intent.metadata
    return data
