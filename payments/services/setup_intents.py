"""Setup-intent services: create, confirm, cancel.

Invariants
- Status machine (spec payments.md §2): ``requires_payment_method`` (created without a method) or
  ``requires_confirmation`` (with one) → confirm → ``succeeded``; cancel from anything but
  ``succeeded``/``canceled``. Guards run under the intent's row lock.
- Confirm saves the method for the customer: it must exist, be attached and belong to the intent's
  customer (stricter than the original, which looked nothing up); nothing is charged, no money moves, no
  processor is called, and the method is not made default.
- Lock order: the setup intent, then (read only) its payment method.
- Events in the same transaction: ``setup_intent.created|succeeded|canceled``.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.errors import NotFound, ValidationError
from billing_project.core.models import Organization
from billing_project.core.times import rfc3339
from payments.models import PaymentMethod, SetupIntent
from webhooks import services as webhook_services


def setup_intent_data(intent: SetupIntent) -> dict[str, Any]:
    data: dict[str, Any] = {"id": intent.public_id, "customerId": intent.customer.customer_id,
                            "status": intent.status, "usage": intent.usage, "created": rfc3339(intent.created_at)}
    optional = {"paymentMethodId": intent.payment_method_id, "providerRef": intent.provider_ref,
                "lastError": intent.last_error, "metadata": intent.metadata,
                "cancellationReason": intent.cancellation_reason,
                "canceledAt": rfc3339(intent.canceled_at) if intent.canceled_at else ""}
    data.update({k: v for k, v in optional.items() if v})
    return data


def _publish(intent: SetupIntent, type: str, previous: dict[str, Any] | None = None) -> None:
    webhook_services.event_publish(organization=intent.organization, type=type, object_type="setup_intent",
                                   object_id=intent.public_id, customer_id=intent.customer.customer_id,
                                   data=setup_intent_data(intent), previous_data=previous)


def setup_intent_create(*, organization: Organization, customer_id: str, payment_method_id: str = "",
                        usage: str = "", metadata: dict[str, Any] | None = None) -> SetupIntent:
    """A new setup intent (``requires_confirmation`` when a method is named, checked at confirm).
    Emits ``setup_intent.created``."""
    customer = core_services.customer_ensure(organization=organization, customer_id=customer_id)
    status = (SetupIntent.STATUS_REQUIRES_CONFIRMATION if payment_method_id
              else SetupIntent.STATUS_REQUIRES_PAYMENT_METHOD)
    with transaction.atomic():
        intent = SetupIntent.objects.create(organization=organization, customer=customer,
                                            payment_method_id=payment_method_id, status=status,
                                            usage=usage or "off_session", metadata=metadata or {})
        intent.organization = organization
        _publish(intent, "setup_intent.created")
    return intent


def _locked(*, organization: Organization, setup_intent_id: str) -> SetupIntent:
    intent = (SetupIntent.objects.select_for_update(of=("self",)).select_related("organization", "customer")
              .filter(organization=organization, public_id=setup_intent_id).first())
    if intent is None:
        raise NotFound("setup intent not found", param="id")
    return intent


def _method_for(intent: SetupIntent) -> PaymentMethod:
    method = (PaymentMethod.objects.filter(organization_id=intent.organization_id,
                                           public_id=intent.payment_method_id, detached_at__isnull=True)
              .first())
    if method is None:
        raise ValidationError(f"payment method not found: {intent.payment_method_id}", param="paymentMethodId",
                              code="resource_missing")
    if method.customer_id != intent.customer_id:
        raise ValidationError(f"payment method {method.public_id} does not belong to customer "
                              f"{intent.customer.customer_id}", param="paymentMethodId")
    return method


def setup_intent_confirm(*, organization: Organization, setup_intent_id: str,
                         payment_method_id: str = "") -> SetupIntent:
    """Confirm: ``payment_method_id`` (when given) replaces the intent's method; the method is checked
    (exists, attached, this customer's) and the intent succeeds. 400 ``cannot confirm setup intent in status
    <s>`` / ``payment method is required to confirm`` / ``payment method not found: <id>``. Locking: the
    intent row. Emits ``setup_intent.succeeded``."""
    with transaction.atomic():
        intent = _locked(organization=organization, setup_intent_id=setup_intent_id)
        if intent.status not in SetupIntent.CONFIRMABLE:
            raise ValidationError(f"cannot confirm setup intent in status {intent.status}", code="invalid_state")
        if payment_method_id:
            intent.payment_method_id = payment_method_id
        if not intent.payment_method_id:
            raise ValidationError("payment method is required to confirm", param="paymentMethodId",
                                  code="parameter_missing")
        method = _method_for(intent)
        previous = {"status": intent.status}
        intent.status = SetupIntent.STATUS_SUCCEEDED
        intent.provider_ref = method.provider_ref or "internal"
        intent.provider_type = method.provider_type
        intent.last_error = ""
        intent.succeeded_at = timezone.now()
        intent.save()
        _publish(intent, "setup_intent.succeeded", previous)
    return intent


def setup_intent_cancel(*, organization: Organization, setup_intent_id: str,
                        cancellation_reason: str = "") -> SetupIntent:
    """Cancel from any status but ``succeeded``/``canceled`` (400 ``cannot cancel setup intent in status
    <s>``). Locking: the intent row. Emits ``setup_intent.canceled``."""
    with transaction.atomic():
        intent = _locked(organization=organization, setup_intent_id=setup_intent_id)
        if intent.status in SetupIntent.FINAL:
            raise ValidationError(f"cannot cancel setup intent in status {intent.status}", code="invalid_state")
        previous = {"status": intent.status}
        intent.status = SetupIntent.STATUS_CANCELED
        intent.cancellation_reason = cancellation_reason
        intent.canceled_at = timezone.now()
        intent.save()
        _publish(intent, "setup_intent.canceled", previous)
    return intent
