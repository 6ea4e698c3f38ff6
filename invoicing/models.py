"""Invoicing: meters, meter events (with hourly rollups) and pricing rules.

- ``Meter``: what is measured and how events aggregate (sum, count, last, max, unique_count).
- ``MeterEvent``: one usage fact. ``(organization, meter, idempotency_key)`` is unique when a key is
  given: the dedupe key commits in the same transaction as the row (STYLE §5).
- ``MeterRollup``: per (meter, customer, hour) figures maintained at ingestion in the same statement
  as the events, so summaries over months read a few hundred rows instead of millions of events.
- ``MeterUniqueValue``: per (meter, customer, hour) the distinct values of the meter's
  ``unique_count`` dimension; a period's unique count is ``COUNT(DISTINCT value)`` over its buckets.
- ``PricingRule``: how a meter's aggregated quantity becomes money; at most one active rule per
  (meter, plan).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from billing_project.core.ids import public_id
from billing_project.core.models import Organization


def _meter_id() -> str:
    return public_id("mtr")


def _meter_event_id() -> str:
    return public_id("mev")


def _pricing_rule_id() -> str:
    return public_id("prc")


class Meter(models.Model):
    AGG_SUM = "sum"
    AGG_COUNT = "count"
    AGG_LAST = "last"
    AGG_MAX = "max"
    AGG_UNIQUE_COUNT = "unique_count"
    AGGREGATIONS = (AGG_SUM, AGG_COUNT, AGG_LAST, AGG_MAX, AGG_UNIQUE_COUNT)

    public_id = models.CharField(max_length=40, unique=True, default=_meter_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=255)
    event_name = models.CharField(max_length=255)
    aggregation_type = models.CharField(max_length=20, choices=[(a, a) for a in AGGREGATIONS], default=AGG_SUM)
    unique_dimension = models.CharField(
        max_length=100, blank=True, default="",
        help_text="unique_count only: the dimension whose distinct values are counted.")
    currency = models.CharField(max_length=3, default="usd")
    dimensions = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "event_name"], name="invoicing_meter_event_name_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.event_name})"


class MeterEvent(models.Model):
    public_id = models.CharField(max_length=40, unique=True, default=_meter_event_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="events")
    customer = models.CharField(max_length=255)
    value = models.BigIntegerField(default=0)
    timestamp = models.DateTimeField()
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    dimensions = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "meter", "idempotency_key"],
                                    condition=Q(idempotency_key__isnull=False), name="invoicing_mev_idem_uniq"),
        ]
        indexes = [
            models.Index(fields=["meter", "customer", "timestamp"], name="invoicing_mev_meter_cust_ts"),
            models.Index(fields=["meter", "timestamp"], name="invoicing_mev_meter_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.customer} {self.value}"


class MeterRollup(models.Model):
    """Hourly aggregate of one customer's events on one meter (``bucket`` = the hour's start, UTC)."""

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="rollups")
    customer = models.CharField(max_length=255)
    bucket = models.DateTimeField()
    event_count = models.BigIntegerField(default=0)
    value_sum = models.DecimalField(max_digits=40, decimal_places=0, default=0)
    value_max = models.BigIntegerField(null=True)
    last_value = models.BigIntegerField(null=True)
    last_timestamp = models.DateTimeField(null=True)
    last_event_id = models.BigIntegerField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["meter", "customer", "bucket"], name="invoicing_rollup_uniq"),
        ]
        indexes = [models.Index(fields=["meter", "bucket"], name="invoicing_rollup_meter_bucket")]

    def __str__(self) -> str:
        return f"{self.meter_id}/{self.customer}@{self.bucket:%Y-%m-%dT%H}: {self.event_count}"


class MeterUniqueValue(models.Model):
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="+")
    customer = models.CharField(max_length=255)
    bucket = models.DateTimeField()
    value = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["meter", "customer", "bucket", "value"], name="invoicing_unique_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.meter_id}/{self.customer}@{self.bucket:%Y-%m-%dT%H}: {self.value}"


class PricingRule(models.Model):
    MODEL_PER_UNIT = "per_unit"
    MODEL_TIERED = "tiered"
    MODEL_VOLUME = "volume"
    MODEL_GRADUATED = "graduated"
    MODEL_PACKAGE = "package"
    MODELS = (MODEL_PER_UNIT, MODEL_TIERED, MODEL_VOLUME, MODEL_GRADUATED, MODEL_PACKAGE)

    public_id = models.CharField(max_length=40, unique=True, default=_pricing_rule_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="pricing_rules")
    plan_id = models.CharField(max_length=255, blank=True, default="")
    model = models.CharField(max_length=20, choices=[(m, m) for m in MODELS], default=MODEL_PER_UNIT)
    currency = models.CharField(max_length=3, default="usd")
    unit_price = models.BigIntegerField(default=0)
    unit_price_decimal = models.DecimalField(max_digits=40, decimal_places=12, null=True, blank=True)
    package_size = models.BigIntegerField(null=True, blank=True)
    tiers = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "meter", "plan_id"], condition=Q(deleted_at__isnull=True),
                                    name="invoicing_pricing_rule_active_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.model} on {self.meter_id}"
