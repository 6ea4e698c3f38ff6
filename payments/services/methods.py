"""Payment-method services: attach (create), update, detach.

Invariants
- Only display data is stored: brand (lower-case, derived from the number when absent), last4, expiry,
  funding, country; a bank account's bankName, last4, routingNumber, accountType. A card ``number`` is
  Luhn-checked and a ``cvc`` format-checked, then both are dropped: never stored, logged, echoed or put in
  an event. Expired cards (and cards that will decline) can be saved, as the original saves any card: the
  charge declines them. No processor is called.
- A method is never made default implicitly (not even a customer's first); only
  ``customers.customer_default_payment_method_set`` does.
- A detached method answers 404 and leaves lists; detaching the default clears the customer's default.
- Lock order: the customer row, then the payment method.
- Events in the same transaction: ``payment_method.attached|updated|detached``, ``customer.updated``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from billing_project.core.times import rfc3339
from payments import cards
from payments.models import PaymentMethod
from payments.services import customers as customer_services
from webhooks import services as webhook_services


@dataclass(frozen=True)
class CardInput:
    """A card as sent (``number``/``cvc`` only live here, for the duration of the request)."""

    number: str = ""
    cvc: str = ""
    brand: str = ""
    last4: str = ""
    exp_month: int | None = None
    exp_year: int | None = None
    funding: str = ""
    country: str = ""

    def __repr__(self) -> str:  # never print the number or the CVC
        return f"CardInput(brand={self.brand!r}, last4={self.last4!r})"


def payment_method_data(method: PaymentMethod) -> dict[str, Any]:
    """The JSON shape of a payment method (responses and event payloads); never a number or CVC."""
    data: dict[str, Any] = {"id": method.public_id, "customerId": method.customer.customer_id,
                            "type": method.type, "isDefault": method.is_default,
                            "created": rfc3339(method.created_at)}
    if method.name:
        data["name"] = method.name
    card = _card_data(method)
    if card:
        data["card"] = card
    if method.bank_account:
        data["bankAccount"] = method.bank_account
    if method.billing_address:
        data["billingAddress"] = method.billing_address
    if method.provider_ref:
        data["providerRef"] = method.provider_ref
    if method.metadata:
        data["metadata"] = method.metadata
    return data


def _card_data(method: PaymentMethod) -> dict[str, Any]:
    if not (method.card_brand or method.card_last4 or method.card_exp_month or method.card_exp_year):
        return {}
    card: dict[str, Any] = {"brand": method.card_brand, "last4": method.card_last4}
    if method.card_exp_month:
        card["expMonth"] = method.card_exp_month
    if method.card_exp_year:
        card["expYear"] = method.card_exp_year
    if method.card_funding:
        card["funding"] = method.card_funding
    if method.card_country:
        card["country"] = method.card_country
    return card


def _card_columns(card: CardInput | None) -> dict[str, Any]:
    """Validated display columns of a card; the number and CVC are checked here and go no further."""
    if card is None:
        return {}
    brand, last4 = card.brand.strip().lower(), card.last4
    if card.number:
        digits = cards.card_number_clean(card.number)
        last4 = digits[-4:]
        brand = brand or cards.card_brand(digits)
    if card.cvc:
        cards.cvc_check(card.cvc)
    return {"card_brand": brand, "card_last4": last4, "card_exp_month": card.exp_month or None,
            "card_exp_year": card.exp_year or None, "card_funding": card.funding,
            "card_country": card.country.upper()}


def _publish(method: PaymentMethod, type: str, previous: dict[str, Any] | None = None) -> None:
    webhook_services.event_publish(organization=method.organization, type=type, object_type="payment_method",
                                   object_id=method.public_id, customer_id=method.customer.customer_id,
                                   data=payment_method_data(method), previous_data=previous)


def payment_method_create(*, organization: Organization, customer_id: str, type: str = "",
                          card: CardInput | None = None, bank_account: dict[str, Any] | None = None,
                          billing_address: dict[str, Any] | None = None, provider_ref: str = "",
                          provider_type: str = "", metadata: dict[str, Any] | None = None) -> PaymentMethod:
    """Attach a payment method to ``customer_id`` (the customer row is created on first use).

    Validation before any write: ``card.number`` (Luhn) and ``card.cvc`` when sent. No lock (a new row).
    Emits ``payment_method.attached``."""
    columns = _card_columns(card)
    customer = core_services.customer_ensure(organization=organization, customer_id=customer_id)
    name = ""
    if columns.get("card_brand") and columns.get("card_last4"):
        name = f"{columns['card_brand']} ending in {columns['card_last4']}"
    with transaction.atomic():
        method = PaymentMethod.objects.create(
            organization=organization, customer=customer, type=type or PaymentMethod.TYPE_CARD, name=name,
            bank_account=bank_account or {}, billing_address=billing_address or {}, provider_ref=provider_ref,
            provider_type=provider_type, metadata=metadata or {}, **columns)
        method.organization = organization
        _publish(method, "payment_method.attached")
    return method


def payment_method_update(*, organization: Organization, payment_method_id: str,
                          billing_address: dict[str, Any] | None = None,
                          metadata: dict[str, Any] | None = None) -> PaymentMethod:
    """Replace ``billingAddress`` and/or ``metadata`` (each only when given). Locking: the method row.
    Emits ``payment_method.updated`` with the previous values when something changed."""
    with transaction.atomic():
        method = _locked(organization=organization, payment_method_id=payment_method_id)
        previous: dict[str, Any] = {}
        if billing_address is not None and billing_address != method.billing_address:
            previous["billingAddress"] = method.billing_address
            method.billing_address = billing_address
        if metadata is not None and metadata != method.metadata:
            previous["metadata"] = method.metadata
            method.metadata = metadata
        if previous:
            method.save(update_fields=["billing_address", "metadata", "updated_at"])
            _publish(method, "payment_method.updated", previous)
    return method


def payment_method_detach(*, organization: Organization, payment_method_id: str) -> PaymentMethod:
    """Detach a method: it answers 404 from now on and leaves lists. If it was the customer's default, the
    default is cleared (no other method is promoted). Locking: the customer row, then the method.
    Emits ``payment_method.detached`` (and ``customer.updated`` when the default was cleared)."""
    found = (PaymentMethod.objects.select_related("customer")
             .filter(organization=organization, public_id=payment_method_id, detached_at__isnull=True).first())
    if found is None:
        raise NotFound("payment method not found", param="id")
    with transaction.atomic():
        customer = customer_services.customer_locked(organization=organization,
                                                     customer_id=found.customer.customer_id)
        method = _locked(organization=organization, payment_method_id=payment_method_id)
        method.customer = customer
        if customer.default_payment_method_id == method.public_id:
            customer.default_payment_method_id = ""
            customer.save(update_fields=["default_payment_method_id", "updated_at"])
            webhook_services.event_publish(
                organization=organization, type="customer.updated", object_type="customer",
                object_id=customer.customer_id, customer_id=customer.customer_id,
                data=customer_services.customer_data(customer),
                previous_data={"defaultPaymentMethod": method.public_id})
        method.detached_at = timezone.now()
        method.save(update_fields=["detached_at", "updated_at"])
        _publish(method, "payment_method.detached")
    return method


def _locked(*, organization: Organization, payment_method_id: str) -> PaymentMethod:
    method = (PaymentMethod.objects.select_for_update(of=("self",)).select_related("organization", "customer")
              .filter(organization=organization, public_id=payment_method_id, detached_at__isnull=True).first())
    if method is None:
        raise NotFound("payment method not found", param="id")
    return method
