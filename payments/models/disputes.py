"""Disputes (spec payments.md §5): a cardholder contests a captured payment. Only the processor opens one
(sandbox card …0259); the disputed amount is held on the ledger while it is open, released when won, lost
for good when lost. ``source_key`` (the processor key of the capture that reported it) makes the opening
idempotent."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from billing_project.core.ids import public_id
from billing_project.core.models import Customer, Organization
from payments.models.intents import PaymentIntent


def _dp_id() -> str:
    return public_id("dp")


EVIDENCE_FIELDS = ("customerName", "customerEmailAddress", "productDescription", "serviceDate",
                   "uncategorizedText")


class Dispute(models.Model):
    STATUS_WARNING_NEEDS_RESPONSE = "warning_needs_response"
    STATUS_NEEDS_RESPONSE = "needs_response"
    STATUS_UNDER_REVIEW = "under_review"
    STATUS_WON = "won"
    STATUS_LOST = "lost"
    STATUS_WARNING_UNDER_REVIEW = "warning_under_review"
    STATUS_WARNING_CLOSED = "warning_closed"
    STATUSES = (STATUS_WARNING_NEEDS_RESPONSE, STATUS_NEEDS_RESPONSE, STATUS_UNDER_REVIEW, STATUS_WON, STATUS_LOST,
                STATUS_WARNING_UNDER_REVIEW, STATUS_WARNING_CLOSED)
    CLOSED = (STATUS_WON, STATUS_LOST, STATUS_WARNING_CLOSED)
    FUNDS_HELD = "held"
    FUNDS_RELEASED = "released"
    FUNDS_LOST = "lost"

    public_id = models.CharField(max_length=40, unique=True, default=_dp_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="disputes")
    payment_intent = models.ForeignKey(PaymentIntent, on_delete=models.PROTECT, related_name="disputes")
    source_key = models.CharField(max_length=300, unique=True, help_text="processor key of the disputed capture")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=30, choices=[(s, s) for s in STATUSES], default=STATUS_NEEDS_RESPONSE)
    funds = models.CharField(max_length=10, default=FUNDS_HELD, help_text="held | released | lost")
    reason = models.CharField(max_length=255, blank=True, default="")
    provider_ref = models.CharField(max_length=255, blank=True, default="")
    evidence = models.JSONField(default=dict, blank=True)
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["organization", "payment_intent", "-id"], name="payments_dp_intent")]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="payments_dp_amount_pos")]

    def __str__(self) -> str:
        return self.public_id
