"""Payment intents and their attempts.

A ``PaymentIntent`` (``pi_…``) is one amount a customer is asked to pay; each call to the processor on its
behalf is a ``PaymentAttempt`` row written *before* the call (status ``pending``) with the processor
idempotency key it will carry (``<pi>:confirm:<n>``, ``<pi>:capture``, ``<pi>:cancel``) — unique, so no call
is ever made twice under two keys for one step — and completed after it (STYLE §5). A crash between the call
and the completion leaves a pending attempt that the sweeper reconciles with ``retrieve``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from billing_project.core.ids import public_id
from billing_project.core.models import Customer, Organization
from payments.models.methods import PaymentMethod


def _pi_id() -> str:
    return public_id("pi")


def _pa_id() -> str:
    return public_id("pa")


class PaymentIntent(models.Model):
    STATUS_REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    STATUS_REQUIRES_CONFIRMATION = "requires_confirmation"
    STATUS_REQUIRES_ACTION = "requires_action"
    STATUS_PROCESSING = "processing"
    STATUS_REQUIRES_CAPTURE = "requires_capture"
    STATUS_SUCCEEDED = "succeeded"
    STATUS_CANCELED = "canceled"
    STATUSES = (STATUS_REQUIRES_PAYMENT_METHOD, STATUS_REQUIRES_CONFIRMATION, STATUS_REQUIRES_ACTION,
                STATUS_PROCESSING, STATUS_REQUIRES_CAPTURE, STATUS_SUCCEEDED, STATUS_CANCELED)
    CAPTURE_AUTOMATIC = "automatic"
    CAPTURE_MANUAL = "manual"
    PURPOSE_PAYMENT = "payment"
    PURPOSE_INVOICE = "invoice"  # created by invoice collection: captured money pays the invoice's receivable

    public_id = models.CharField(max_length=40, unique=True, default=_pi_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payment_intents")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=30, choices=[(s, s) for s in STATUSES],
                              default=STATUS_REQUIRES_PAYMENT_METHOD)
    payment_method = models.ForeignKey(PaymentMethod, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="payment_intents")
    capture_method = models.CharField(max_length=40, default=CAPTURE_AUTOMATIC,
                                      help_text="manual authorizes only; any other value charges at once")
    confirmation_method = models.CharField(max_length=40, default="automatic", help_text="stored only")
    amount_capturable = models.BigIntegerField(default=0)
    amount_received = models.BigIntegerField(default=0, help_text="gross captured; fees are posted separately")
    amount_refunded = models.BigIntegerField(default=0)
    fee = models.BigIntegerField(default=0, help_text="processor fees on what was captured")
    description = models.CharField(max_length=1000, blank=True, default="")
    receipt_email = models.CharField(max_length=255, blank=True, default="")
    setup_future_usage = models.CharField(max_length=40, blank=True, default="")
    invoice_id = models.CharField(max_length=60, blank=True, default="", help_text="optional link (not checked)")
    purpose = models.CharField(max_length=20, default=PURPOSE_PAYMENT)
    provider_ref = models.CharField(max_length=255, blank=True, default="")
    provider_type = models.CharField(max_length=40, blank=True, default="")
    last_error = models.CharField(max_length=1000, blank=True, default="")
    cancellation_reason = models.CharField(max_length=1000, blank=True, default="")
    canceled_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["organization", "customer", "-id"], name="payments_pi_customer"),
                   models.Index(fields=["organization", "invoice_id"], name="payments_pi_invoice")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_pi_amount_pos"),
            models.CheckConstraint(condition=Q(amount_received__gte=0, amount_received__lte=F("amount")),
                                   name="payments_pi_received_range"),
            models.CheckConstraint(condition=Q(amount_capturable__gte=0, amount_capturable__lte=F("amount")),
                                   name="payments_pi_capturable_range"),
            models.CheckConstraint(condition=Q(amount_refunded__gte=0, amount_refunded__lte=F("amount_received")),
                                   name="payments_pi_refunded_range"),
        ]

    def __str__(self) -> str:
        return self.public_id


class PaymentAttempt(models.Model):
    KIND_CONFIRM = "confirm"
    KIND_CAPTURE = "capture"
    KIND_CANCEL = "cancel"
    OP_CHARGE = "charge"
    OP_AUTHORIZE = "authorize"
    OP_CAPTURE = "capture"
    OP_CANCEL = "cancel"
    STATUS_PENDING = "pending"
    STATUS_SUCCEEDED = "succeeded"
    STATUS_REQUIRES_CAPTURE = "requires_capture"
    STATUS_REQUIRES_ACTION = "requires_action"
    STATUS_DECLINED = "declined"
    STATUS_CANCELED = "canceled"
    STATUS_FAILED = "failed"  # the processor never received the call (retrieve found nothing)
    STATUSES = (STATUS_PENDING, STATUS_SUCCEEDED, STATUS_REQUIRES_CAPTURE, STATUS_REQUIRES_ACTION, STATUS_DECLINED,
                STATUS_CANCELED, STATUS_FAILED)

    public_id = models.CharField(max_length=40, unique=True, default=_pa_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    intent = models.ForeignKey(PaymentIntent, on_delete=models.PROTECT, related_name="attempts")
    kind = models.CharField(max_length=20)
    operation = models.CharField(max_length=20)
    processor = models.CharField(max_length=40, blank=True, default="")
    processor_key = models.CharField(max_length=300, unique=True)
    payment_method = models.ForeignKey(PaymentMethod, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+")
    amount = models.BigIntegerField()
    status = models.CharField(max_length=20, choices=[(s, s) for s in STATUSES], default=STATUS_PENDING)
    processor_ref = models.CharField(max_length=255, blank=True, default="")
    fee = models.BigIntegerField(default=0)
    decline_code = models.CharField(max_length=60, blank=True, default="")
    error = models.CharField(max_length=1000, blank=True, default="")
    result = models.JSONField(default=dict, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    sweep_claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "created_at"], name="payments_pa_pending",
                                condition=Q(status="pending"))]
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="payments_pa_amount_nonneg")]

    def __str__(self) -> str:
        return f"{self.processor_key} {self.status}"
