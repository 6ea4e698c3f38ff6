"""Setup intents: a customer's consent to save a payment method for later use. Confirming one checks the
method belongs to the customer and records it; nothing is charged and no money moves."""

from __future__ import annotations

from django.db import models

from billing_project.core.ids import public_id
from billing_project.core.models import Customer, Organization


def _seti_id() -> str:
    return public_id("seti")


class SetupIntent(models.Model):
    STATUS_REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    STATUS_REQUIRES_CONFIRMATION = "requires_confirmation"
    STATUS_REQUIRES_ACTION = "requires_action"
    STATUS_PROCESSING = "processing"
    STATUS_SUCCEEDED = "succeeded"
    STATUS_CANCELED = "canceled"
    STATUS_CHOICES = [(s, s) for s in (STATUS_REQUIRES_PAYMENT_METHOD, STATUS_REQUIRES_CONFIRMATION,
                                       STATUS_REQUIRES_ACTION, STATUS_PROCESSING, STATUS_SUCCEEDED,
                                       STATUS_CANCELED)]
    CONFIRMABLE = (STATUS_REQUIRES_PAYMENT_METHOD, STATUS_REQUIRES_CONFIRMATION)
    FINAL = (STATUS_SUCCEEDED, STATUS_CANCELED)

    public_id = models.CharField(max_length=40, unique=True, default=_seti_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="setup_intents")
    payment_method_id = models.CharField(
        max_length=255, blank=True, default="",
        help_text="Public id of the payment method (as sent; checked when the intent is confirmed).")
    status = models.CharField(max_length=32, choices=STATUS_CHOICES, default=STATUS_REQUIRES_PAYMENT_METHOD)
    usage = models.CharField(max_length=40, default="off_session")
    provider_ref = models.CharField(max_length=255, blank=True, default="")
    provider_type = models.CharField(max_length=40, blank=True, default="")
    last_error = models.CharField(max_length=500, blank=True, default="")
    cancellation_reason = models.CharField(max_length=500, blank=True, default="")
    canceled_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "customer", "created_at"], name="payments_seti_customer")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.public_id
