"""Reads of customers and payment methods, always scoped to one organization. Detached methods are gone."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from billing_project.core.errors import NotFound
from billing_project.core.models import Customer, Organization
from payments.models import PaymentMethod


def customer_get(*, organization: Organization, customer_id: str) -> Customer:
    customer = Customer.objects.filter(organization=organization, customer_id=customer_id).first()
    if customer is None:
        raise NotFound("customer not found", param="id")
    return customer


def customer_list(*, organization: Organization, search: str = "", email: str = "") -> QuerySet[Customer]:
    """Customers, filtered by ``search`` (substring of id, name or email, any case) and ``email`` (exact,
    any case)."""
    queryset = Customer.objects.filter(organization=organization)
    if search:
        queryset = queryset.filter(Q(customer_id__icontains=search) | Q(name__icontains=search)
                                   | Q(email__icontains=search))
    if email:
        queryset = queryset.filter(email__iexact=email)
    return queryset


def payment_method_get(*, organization: Organization, payment_method_id: str) -> PaymentMethod:
    method = (PaymentMethod.objects.select_related("customer")
              .filter(organization=organization, public_id=payment_method_id, detached_at__isnull=True).first())
    if method is None:
        raise NotFound("payment method not found", param="id")
    return method


def payment_method_list(*, organization: Organization, customer_id: str = "",
                        type: str = "") -> QuerySet[PaymentMethod]:
    queryset = PaymentMethod.objects.select_related("customer").filter(organization=organization,
                                                                       detached_at__isnull=True)
    if customer_id:
        queryset = queryset.filter(customer__customer_id=customer_id)
    if type:
        queryset = queryset.filter(type=type)
    return queryset
