"""Customer services: the ``Customer`` row (one per organization + opaque customer id) and its default
payment method.

Invariants
- Customer ids stay the original's opaque strings; any service may create the row on first use
  (``billing_project.core.services.customer_ensure``). ``POST /customers`` creates it explicitly and answers
  409 ``customer already exists`` when the row is there (Stripe-like; no upsert).
- The default payment method changes only through ``customer_default_payment_method_set`` (the set-default
  endpoint; never implicitly, not even for a first method): the method is validated first (it exists, is not
  detached, belongs to this customer), then the default switches in one locked step — the old default is
  never cleared by a request that fails. Detaching the default clears it (``payment_method_detach``).
- Lock order (payments): customer row, then its payment-method rows.
- Every change publishes ``customer.created`` / ``customer.updated`` in the same transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from billing_project.core.errors import Conflict, NotFound
from billing_project.core.models import Customer, Organization
from billing_project.core.times import rfc3339
from payments.models import PaymentMethod
from webhooks import services as webhook_services

# Fields a client may set, API name → column.
CUSTOMER_FIELDS = {"name": "name", "email": "email", "address": "address", "taxIds": "tax_ids",
                   "preferredCurrency": "preferred_currency", "locale": "locale", "metadata": "metadata"}


def customer_data(customer: Customer) -> dict[str, Any]:
    """The JSON shape of a customer (responses and event payloads)."""
    return {
        "id": customer.customer_id,
        "name": customer.name,
        "email": customer.email,
        "address": customer.address or {},
        "taxIds": customer.tax_ids or [],
        "preferredCurrency": customer.preferred_currency,
        "locale": customer.locale,
        "metadata": customer.metadata or {},
        "defaultPaymentMethod": customer.default_payment_method_id or None,
        "created": rfc3339(customer.created_at),
        "updated": rfc3339(customer.updated_at),
    }


def _publish(customer: Customer, type: str, previous: dict[str, Any] | None = None) -> None:
    webhook_services.event_publish(organization=customer.organization, type=type, object_type="customer",
                                   object_id=customer.customer_id, customer_id=customer.customer_id,
                                   data=customer_data(customer), previous_data=previous)


def customer_locked(*, organization: Organization, customer_id: str) -> Customer:
    """The customer row, locked (``FOR UPDATE`` of the row only); 404 ``customer not found``."""
    customer = (Customer.objects.select_for_update(of=("self",)).select_related("organization")
                .filter(organization=organization, customer_id=customer_id).first())
    if customer is None:
        raise NotFound("customer not found", param="id")
    return customer


def customer_create(*, organization: Organization, customer_id: str, fields: dict[str, Any]) -> Customer:
    """Create a customer with ``fields`` (API names, already validated). 409 ``customer already exists``
    when the id is taken (also when another request created it a moment ago: the unique constraint decides).
    Emits ``customer.created``."""
    values = {CUSTOMER_FIELDS[k]: v for k, v in fields.items() if k in CUSTOMER_FIELDS}
    try:
        with transaction.atomic():
            customer = Customer.objects.create(organization=organization, customer_id=customer_id, **values)
    except IntegrityError:
        raise Conflict("customer already exists", code="resource_already_exists", param="id") from None
    customer.organization = organization
    _publish(customer, "customer.created")
    return customer


def customer_update(*, organization: Organization, customer_id: str, fields: dict[str, Any]) -> Customer:
    """Replace the given fields (each replaces the stored value; metadata and address wholesale). The default
    payment method is not one of them (``customer_default_payment_method_set``). Locking: the customer row.
    Emits one ``customer.updated`` with the previous values of what changed (nothing when nothing did)."""
    with transaction.atomic():
        customer = customer_locked(organization=organization, customer_id=customer_id)
        before = customer_data(customer)
        for name, value in fields.items():
            if name in CUSTOMER_FIELDS:
                setattr(customer, CUSTOMER_FIELDS[name], value)
        after = customer_data(customer)
        previous = {k: v for k, v in before.items() if after.get(k) != v}
        if previous:
            customer.save()
            _publish(customer, "customer.updated", previous)
    return customer


def _method_for_default(*, customer: Customer, payment_method_id: str) -> PaymentMethod:
    """The customer's live payment method ``payment_method_id``, locked; 404 otherwise (unknown, detached,
    another organization's, or another customer's)."""
    method = (PaymentMethod.objects.select_for_update(of=("self",))
              .filter(organization_id=customer.organization_id, public_id=payment_method_id,
                      detached_at__isnull=True).first()) if payment_method_id else None
    if method is None:
        raise NotFound("payment method not found", param="paymentMethodId")
    if method.customer_id != customer.pk:
        raise NotFound(f"payment method not found for customer {customer.customer_id}",
                       param="paymentMethodId")
    return method


def customer_default_payment_method_set(*, organization: Organization, customer_id: str,
                                        payment_method_id: str) -> PaymentMethod:
    """Make ``payment_method_id`` the customer's default and return it.

    Stricter than the original (which cleared the old default first, then failed on an unknown method, and
    never checked ownership): the method must exist, be attached and belong to ``customer_id`` (else 404
    ``payment method not found``), and only then does the default switch. Locking: the customer row, then the
    method. Idempotent: setting the current default again changes nothing and emits nothing. Emits
    ``customer.updated`` (previous ``defaultPaymentMethod``)."""
    method = (PaymentMethod.objects.select_related("customer")
              .filter(organization=organization, public_id=payment_method_id, detached_at__isnull=True).first()
              ) if payment_method_id else None
    if method is None:
        raise NotFound("payment method not found", param="paymentMethodId")
    if method.customer.customer_id != customer_id:
        raise NotFound(f"payment method not found for customer {customer_id}", param="paymentMethodId")
    with transaction.atomic():
        customer = customer_locked(organization=organization, customer_id=customer_id)
        method = _method_for_default(customer=customer, payment_method_id=payment_method_id)
        previous = customer.default_payment_method_id
        if previous != method.public_id:
            customer.default_payment_method_id = method.public_id
            customer.save(update_fields=["default_payment_method_id", "updated_at"])
            _publish(customer, "customer.updated", {"defaultPaymentMethod": previous or None})
        method.customer = customer
    return method
