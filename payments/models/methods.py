"""Payment methods: what a customer pays with. Only display data is stored — brand, last4, expiry (and a bank
account's last4 and routing details); a card number and CVC are never stored, logged or echoed."""

from __future__ import annotations

from django.db import models

from billing_project.core.ids import public_id
from billing_project.core.models import Customer, Organization


def _pm_id() -> str:
    return public_id("pm")


class PaymentMethod(models.Model):
    TYPE_CARD = "card"
    TYPE_BANK_ACCOUNT = "bank_account"
    TYPE_BALANCE = "balance"

    public_id = models.CharField(max_length=40, unique=True, default=_pm_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payment_methods")
    type = models.CharField(max_length=40, default=TYPE_CARD)
    name = models.CharField(max_length=255, blank=True, default="")
    card_brand = models.CharField(max_length=40, blank=True, default="")
    card_last4 = models.CharField(max_length=4, blank=True, default="")
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    card_funding = models.CharField(max_length=20, blank=True, default="")
    card_country = models.CharField(max_length=2, blank=True, default="")
    bank_account = models.JSONField(default=dict, blank=True, help_text="bankName, last4, routingNumber, accountType")
    billing_address = models.JSONField(default=dict, blank=True)
    provider_ref = models.CharField(max_length=255, blank=True, default="")
    provider_type = models.CharField(max_length=40, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    detached_at = models.DateTimeField(null=True, blank=True, help_text="Detached methods leave the API (404).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "customer", "created_at"], name="payments_pm_customer")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.public_id

    @property
    def is_default(self) -> bool:
        return self.customer.default_payment_method_id == self.public_id
