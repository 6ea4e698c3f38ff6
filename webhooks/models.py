"""The billing event log (an outbox, written in the same transaction as the state change it records), the
webhook endpoints it is delivered to, one ``Delivery`` per (event, endpoint) and its ``DeliveryAttempt`` rows."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from billing_project.core.ids import public_id
from billing_project.core.models import Organization


def _evt_id() -> str:
    return public_id("evt")


def _we_id() -> str:
    return public_id("we")


def _dlv_id() -> str:
    return public_id("whd")


class BillingEvent(models.Model):
    public_id = models.CharField(max_length=40, unique=True, default=_evt_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=100)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=60)
    customer_id = models.CharField(max_length=255, blank=True, default="")
    data = models.JSONField(default=dict)
    previous_data = models.JSONField(null=True, blank=True)
    pending = models.BooleanField(default=True)
    livemode = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the fan-out created this event's deliveries; NULL rows are the outbox's pending scan.
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "type", "-id"], name="evt_org_type"),
            models.Index(fields=["organization", "object_id"], name="evt_org_object"),
            models.Index(fields=["id"], condition=Q(dispatched_at__isnull=True), name="evt_undispatched"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"


class WebhookEndpoint(models.Model):
    """Where an organization's events are POSTed. ``status`` is a free string as in the original: only
    ``enabled`` receives. The secret is readable here (it signs every delivery) but the API shows it only in
    the answers of create and roll-secret."""

    STATUS_ENABLED = "enabled"

    public_id = models.CharField(max_length=40, unique=True, default=_we_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    url = models.CharField(max_length=2048)
    status = models.CharField(max_length=40, default=STATUS_ENABLED)
    events = models.JSONField(default=list, blank=True, help_text="event types; empty = all; '*' and 'invoice.*'")
    description = models.TextField(blank=True, default="")
    metadata = models.JSONField(null=True, blank=True)
    secret = models.CharField(max_length=80)
    previous_secret = models.CharField(max_length=80, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-id"], name="we_org")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.url}"


class Delivery(models.Model):
    """One event for one endpoint: retried with backoff until delivered, or ``failed`` after the retry
    window. A worker claims it (``claim_token`` + ``claimed_until``); a claim that lapses (worker killed) is
    taken over by the sweeper, so a delivery is never lost (at least once; the payload's event id dedupes)."""

    STATUS_PENDING = "pending"
    STATUS_SUCCEEDED = "succeeded"
    STATUS_FAILED = "failed"
    STATUS_CANCELED = "canceled"
    STATUS_CHOICES = [(s, s) for s in (STATUS_PENDING, STATUS_SUCCEEDED, STATUS_FAILED, STATUS_CANCELED)]
    REASON_EVENT = "event"
    REASON_RESEND = "resend"
    REASON_CHOICES = [(REASON_EVENT, "event"), (REASON_RESEND, "resend")]

    public_id = models.CharField(max_length=40, unique=True, default=_dlv_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    event = models.ForeignKey(BillingEvent, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    reason = models.CharField(max_length=10, choices=REASON_CHOICES, default=REASON_EVENT)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=STATUS_PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], condition=Q(reason="event"),
                                    name="whd_one_per_event_endpoint"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="whd_due"),
            models.Index(fields=["endpoint", "-id"], name="whd_endpoint"),
            models.Index(fields=["event"], name="whd_event"),
            models.Index(fields=["organization", "status", "-id"], name="whd_org_status"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.status}"


class DeliveryAttempt(models.Model):
    """One HTTP request of a delivery: its answer (or why there was none), latency and the answer's start."""

    OUTCOME_SUCCEEDED = "succeeded"
    OUTCOME_RETRY = "retry"
    OUTCOME_FAILED = "failed"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=10)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    response_body = models.TextField(blank=True, default="", help_text="first 2 KB of the answer")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="whda_one_per_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"
