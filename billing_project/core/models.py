"""Tenancy and API plumbing: organizations, hashed API keys, idempotency records."""

from __future__ import annotations

import hashlib

from django.db import models

from billing_project.core.ids import public_id


def _org_id() -> str:
    return public_id("org")


def _key_id() -> str:
    return public_id("key")


def api_key_hash(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


class Organization(models.Model):
    public_id = models.CharField(max_length=40, unique=True, default=_org_id, editable=False)
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    live = models.BooleanField(default=True, help_text="Events carry livemode = this flag.")
    invoice_due_days = models.PositiveIntegerField(default=30)
    meter_event_backdate_days = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Refuse meter events whose timestamp is more than this many days in the past. "
                  "Empty (the default): no limit, backfills of any age are accepted.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class ApiKey(models.Model):
    SCOPE_ADMIN = "admin"

    public_id = models.CharField(max_length=40, unique=True, default=_key_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=200, default="default")
    prefix = models.CharField(max_length=16, help_text="First characters of the key, shown to identify it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class IdempotencyRecord(models.Model):
    """Stripe-style ``Idempotency-Key``: one row per (organization, key) with the request fingerprint
    and, once finished, the response to replay."""

    STATUS_IN_FLIGHT = "in_flight"
    STATUS_DONE = "done"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status = models.CharField(max_length=16, default=STATUS_IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    response_content_type = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="idempotency_org_key_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class AuditLog(models.Model):
    """Who did what to which object, when and why: every back-office action writes one row."""

    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor = models.CharField(max_length=255, help_text="staff username, or 'api:<key prefix>' / 'system'")
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=60)
    reason = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["object_type", "object_id"], name="core_audit_object")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_type} {self.object_id}"


class Customer(models.Model):
    """One row per (organization, customer id): the entity payment methods, subscriptions and bank-transfer
    instructions hang on. Customer ids stay the original's opaque strings (any characters, ``/`` included)
    that need no prior record: every service that meets a new id creates the row (``customer_ensure``).
    Existing tables keep their customer string; tables added since reference this row."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="customers")
    customer_id = models.CharField(max_length=255, help_text="The client's opaque customer id (userId/customerId).")
    name = models.CharField(max_length=255, blank=True, default="")
    email = models.CharField(max_length=255, blank=True, default="")
    address = models.JSONField(default=dict, blank=True)
    tax_ids = models.JSONField(default=list, blank=True)
    preferred_currency = models.CharField(max_length=3, blank=True, default="")
    locale = models.CharField(max_length=35, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    default_payment_method_id = models.CharField(
        max_length=40, blank=True, default="",
        help_text="Public id of the default payment method (set only by the set-default endpoint).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "customer_id"], name="core_customer_org_id_uniq"),
        ]
        ordering = ["customer_id"]

    def __str__(self) -> str:
        return self.customer_id
