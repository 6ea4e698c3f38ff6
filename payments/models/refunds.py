"""Refunds (spec payments.md §4): money given back for a succeeded payment intent or a paid invoice.

A ``Refund`` (``re_…``) is written ``pending`` before anything moves, with its split already planned
(``card_amount`` back to the card through the processor, ``balance_amount`` to the customer balance,
``credit_amount`` re-issued as credit grants) so that the cumulative caps, checked under the row locks, count
refunds still in flight. The processor call carries the refund's public id as its idempotency key; the result
is applied in a new transaction (``payments.services.refunds``): ``succeeded`` posts and raises the
``amount_refunded`` of the intent / invoice, ``failed`` releases the reservation (failed refunds count for
nothing).
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from billing_project.core.ids import public_id
from billing_project.core.models import Customer, Organization
from invoicing.models import Invoice
from payments.models.intents import PaymentIntent


def _re_id() -> str:
    return public_id("re")


class Refund(models.Model):
    STATUS_PENDING = "pending"
    STATUS_SUCCEEDED = "succeeded"
    STATUS_FAILED = "failed"
    STATUS_CANCELED = "canceled"  # never used (as the original); kept in the wire enum
    STATUSES = (STATUS_PENDING, STATUS_SUCCEEDED, STATUS_FAILED, STATUS_CANCELED)
    LIVE = (STATUS_PENDING, STATUS_SUCCEEDED)  # what counts against the caps

    public_id = models.CharField(max_length=40, unique=True, default=_re_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="refunds")
    payment_intent = models.ForeignKey(PaymentIntent, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="refunds", help_text="the charge the card part goes back to")
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                help_text="the invoice whose amountRefunded this refund raises")
    invoice_ref = models.CharField(max_length=60, blank=True, default="",
                                   help_text="invoiceId as sent (stored even when paymentIntentId wins)")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    card_amount = models.BigIntegerField(default=0, help_text="back to the card through the processor")
    balance_amount = models.BigIntegerField(default=0, help_text="credited to the customer balance")
    credit_amount = models.BigIntegerField(default=0, help_text="re-issued as credit grants")
    grant_returns = models.JSONField(default=list, blank=True,
                                     help_text="[{sourceGrantId, amount, grantId}] planned, then made")
    status = models.CharField(max_length=20, choices=[(s, s) for s in STATUSES], default=STATUS_PENDING)
    reason = models.CharField(max_length=255, blank=True, default="")
    failure_reason = models.CharField(max_length=1000, blank=True, default="")
    receipt_number = models.CharField(max_length=60, blank=True, default="")
    processor = models.CharField(max_length=40, blank=True, default="")
    provider_ref = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    actor = models.CharField(max_length=255, blank=True, default="", help_text="staff user (admin refunds)")
    completed_at = models.DateTimeField(null=True, blank=True)
    sweep_claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["organization", "payment_intent", "-id"], name="payments_re_intent"),
                   models.Index(fields=["organization", "invoice_ref", "-id"], name="payments_re_invoice"),
                   models.Index(fields=["status", "created_at"], name="payments_re_pending",
                                condition=Q(status="pending"))]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_re_amount_pos"),
            models.CheckConstraint(condition=Q(card_amount__gte=0, balance_amount__gte=0, credit_amount__gte=0),
                                   name="payments_re_parts_nonneg"),
            models.CheckConstraint(condition=Q(amount=F("card_amount") + F("balance_amount") + F("credit_amount")),
                                   name="payments_re_parts_sum"),
            models.CheckConstraint(condition=Q(payment_intent__isnull=False) | Q(invoice__isnull=False),
                                   name="payments_re_has_target"),
        ]

    def __str__(self) -> str:
        return self.public_id
