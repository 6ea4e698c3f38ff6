"""Subscriptions, their items, pending proration lines, renewals (one per subscription and period) and the
organization's dunning settings.

Money: the plan snapshot's price is per period; ``accrued_exact`` is the exact (Decimal) amount accrued
from the subscription's start up to ``segment_start`` and ``billed_amount`` the integer total of the lines
already emitted for it, so every line is ``round(accrued after) − billed before``: rounded once per line,
and the sum of all lines never drifts more than half a minor unit from the exact integral."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from billing_project.core.ids import public_id
from billing_project.core.models import Customer, Organization
from subscriptions.models.clocks import TestClock
from subscriptions.models.plans import Plan


def _sub_id() -> str:
    return public_id("sub")


def _item_id() -> str:
    return public_id("si")


class Subscription(models.Model):
    STATUS_TRIALING = "trialing"
    STATUS_ACTIVE = "active"
    STATUS_PAST_DUE = "past_due"
    STATUS_CANCELED = "canceled"
    STATUS_UNPAID = "unpaid"
    STATUSES = [STATUS_TRIALING, STATUS_ACTIVE, STATUS_PAST_DUE, STATUS_CANCELED, STATUS_UNPAID]

    public_id = models.CharField(max_length=40, unique=True, default=_sub_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    plan_snapshot = models.JSONField(default=dict, help_text="the plan as it was at start / last plan change")
    status = models.CharField(max_length=16, choices=[(s, s) for s in STATUSES], default=STATUS_ACTIVE)
    quantity = models.BigIntegerField(default=1)
    started_at = models.DateTimeField()
    trial_start = models.DateTimeField(null=True, blank=True)
    trial_end = models.DateTimeField(null=True, blank=True)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    anchor_day = models.PositiveSmallIntegerField(help_text="day of month every period ends on (clamped)")
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    provider_type = models.CharField(max_length=20, default="internal")
    default_payment_method = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    segment_start = models.DateTimeField(help_text="since when the current plan × quantity applies, unbilled")
    accrued_exact = models.DecimalField(max_digits=40, decimal_places=12, default=Decimal(0))
    billed_amount = models.BigIntegerField(default=0)
    trial_will_end_sent = models.BooleanField(default=False)
    upcoming_notice_period = models.DateTimeField(
        null=True, blank=True, help_text="current_period_start of the period whose invoice.upcoming was sent")
    test_clock = models.ForeignKey(TestClock, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="subscriptions", help_text="lives in this clock's time")
    sweep_claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "customer", "created_at"], name="subs_sub_customer"),
            models.Index(fields=["current_period_end"], condition=~Q(status="canceled"), name="subs_sub_due"),
            models.Index(fields=["trial_end"], condition=Q(status="trialing"), name="subs_sub_trial"),
        ]

    def __str__(self) -> str:
        return self.public_id


class SubscriptionItem(models.Model):
    """An item; its references are kept as sent and resolved only when an invoice is built."""

    MODE_LICENSED = "licensed"
    MODE_METERED = "metered"

    public_id = models.CharField(max_length=40, unique=True, default=_item_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    subscription_ref = models.CharField(max_length=255, help_text="the subscriptionId as sent")
    price_id = models.CharField(max_length=255, blank=True, default="")
    plan_id = models.CharField(max_length=255, blank=True, default="")
    meter_id = models.CharField(max_length=255, blank=True, default="")
    quantity = models.BigIntegerField(default=0)
    billing_mode = models.CharField(max_length=40, default=MODE_LICENSED)
    metadata = models.JSONField(null=True, blank=True)
    usage_watermark = models.BigIntegerField(default=0, help_text="id of the last meter event billed")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "subscription_ref"], name="subs_item_sub")]

    def __str__(self) -> str:
        return self.public_id


class PendingLine(models.Model):
    """A proration line waiting for the subscription's next invoice (``create_prorations``)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="pending_lines")
    description = models.CharField(max_length=500)
    amount = models.BigIntegerField()
    plan_id = models.CharField(max_length=60, blank=True, default="")
    plan_name = models.CharField(max_length=255, blank=True, default="")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    invoice_id = models.CharField(max_length=40, blank=True, default="", help_text="set once invoiced")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["subscription"], condition=Q(invoice_id=""), name="subs_pending_open")]

    def __str__(self) -> str:
        return f"{self.description} ({self.amount})"


class Renewal(models.Model):
    """The invoice of one (subscription, period): the unique constraint is what makes a renewal bill once.
    Also carries the invoice's dunning state."""

    KIND_RENEWAL = "renewal"
    KIND_FINAL = "final"
    KIND_PRORATION = "proration"
    STATUS_OPEN = "open"
    STATUS_PAID = "paid"
    STATUS_PAST_DUE = "past_due"
    STATUS_PROCESSING = "processing"  # the card payment's outcome is not known yet (the reconciler settles it)
    STATUS_UNCOLLECTIBLE = "uncollectible"
    STATUS_VOID = "void"

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="renewals")
    kind = models.CharField(max_length=16, default=KIND_RENEWAL)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    invoice_id = models.CharField(max_length=40)
    status = models.CharField(max_length=16, default=STATUS_OPEN)
    attempts = models.PositiveIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    sweep_claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "period_start"], condition=~Q(kind="proration"),
                                    name="subs_renewal_period_uniq"),
        ]
        indexes = [models.Index(fields=["next_retry_at"], condition=Q(status="past_due"), name="subs_renewal_retry")]

    def __str__(self) -> str:
        return f"{self.kind} {self.period_start:%Y-%m-%d} → {self.invoice_id}"


class SubscriptionSettings(models.Model):
    """Per-organization dunning (retry delays in days after the failure, what happens after the last) and how
    many days before a period ends its ``invoice.upcoming`` event is sent."""

    FINAL_UNPAID = "unpaid"
    FINAL_CANCEL = "cancel"

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="+")
    dunning_retry_days = models.JSONField(default=list, blank=True, help_text="e.g. [1, 3, 7]")
    dunning_final_action = models.CharField(max_length=16, default=FINAL_UNPAID,
                                            choices=[(FINAL_UNPAID, "unpaid"), (FINAL_CANCEL, "cancel")])
    upcoming_invoice_days = models.PositiveSmallIntegerField(
        default=3, help_text="invoice.upcoming is sent this many days before a period ends (0: at the end)")

    class Meta:
        verbose_name_plural = "subscription settings"

    def __str__(self) -> str:
        return f"settings of organization {self.organization_id}"
