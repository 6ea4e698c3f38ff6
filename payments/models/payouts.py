"""Payouts: money leaving the organization's settled balance (processor clearing) for its bank.

Created ``pending`` without any balance check (as the original); a beat task moves each pending payout on:
under the lock of the organization's processor-clearing account it either posts Dr payouts_in_transit /
Cr processor_clearing and goes ``in_transit`` → ``paid`` (Dr bank / Cr payouts_in_transit), or ``failed``
(``insufficient_funds``) with no money moved. Cancelling a pending payout moves no money."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from billing_project.core.ids import public_id
from billing_project.core.models import Organization


def _po_id() -> str:
    return public_id("po")


class Payout(models.Model):
    STATUS_PENDING = "pending"
    STATUS_IN_TRANSIT = "in_transit"
    STATUS_PAID = "paid"
    STATUS_FAILED = "failed"
    STATUS_CANCELED = "canceled"
    STATUS_CHOICES = [(s, s) for s in (STATUS_PENDING, STATUS_IN_TRANSIT, STATUS_PAID, STATUS_FAILED,
                                       STATUS_CANCELED)]

    public_id = models.CharField(max_length=40, unique=True, default=_po_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default=STATUS_PENDING)
    destination_type = models.CharField(max_length=40, blank=True, default="")
    destination_id = models.CharField(max_length=255)
    description = models.CharField(max_length=1000, blank=True, default="")
    arrival_date = models.DateTimeField(null=True, blank=True)
    provider_ref = models.CharField(max_length=255, blank=True, default="")
    failure_code = models.CharField(max_length=60, blank=True, default="")
    failure_message = models.CharField(max_length=500, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    transit_transaction_id = models.CharField(max_length=40, blank=True, default="",
                                              help_text="Ledger transaction: clearing → in transit")
    paid_transaction_id = models.CharField(max_length=40, blank=True, default="",
                                           help_text="Ledger transaction: in transit → bank")
    canceled_at = models.DateTimeField(null=True, blank=True)
    sweep_claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="payments_payout_amount_pos")]
        indexes = [
            models.Index(fields=["status", "created_at"], name="payments_payout_due",
                         condition=Q(status__in=["pending", "in_transit"])),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.public_id
