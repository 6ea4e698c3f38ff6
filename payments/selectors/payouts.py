"""Reads of payouts, scoped to one organization."""

from __future__ import annotations

from django.db.models import QuerySet

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from payments.models import Payout


def payout_get(*, organization: Organization, payout_id: str) -> Payout:
    payout = Payout.objects.filter(organization=organization, public_id=payout_id).first()
    if payout is None:
        raise NotFound("payout not found", param="id")
    return payout


def payout_list(*, organization: Organization, status: str = "") -> QuerySet[Payout]:
    queryset = Payout.objects.filter(organization=organization)
    if status:
        queryset = queryset.filter(status=status)
    return queryset
