"""Plans: what subscriptions are sold from. The public ``id`` never changes; a change of price (or currency,
interval) writes a new ``PlanVersion`` and subscriptions keep the snapshot they took at start / plan change."""

from __future__ import annotations

from django.db import models

from billing_project.core.ids import public_id
from billing_project.core.models import Organization


def _plan_id() -> str:
    return public_id("plan")


class Plan(models.Model):
    INTERVAL_MONTH = "month"
    INTERVAL_YEAR = "year"

    public_id = models.CharField(max_length=40, unique=True, default=_plan_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    slug = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    price = models.BigIntegerField(default=0, help_text="flat fee per period, minor units")
    currency = models.CharField(max_length=3, default="usd")
    interval = models.CharField(max_length=16, default=INTERVAL_MONTH,
                                help_text="month or year; anything else behaves as month (as the original)")
    interval_count = models.IntegerField(default=1)
    trial_period_days = models.IntegerField(default=0)
    version = models.PositiveIntegerField(default=1)
    metadata = models.JSONField(default=dict, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "created_at"], name="subs_plan_org_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"

    @property
    def months(self) -> int:
        """Calendar months per period: ``intervalCount`` (≤ 0 → 1) months, or years × 12."""
        count = self.interval_count if self.interval_count > 0 else 1
        return count * 12 if self.interval == self.INTERVAL_YEAR else count


class PlanVersion(models.Model):
    """One row per priced version of a plan; version 1 is written at creation."""

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    price = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    interval = models.CharField(max_length=16)
    interval_count = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["plan", "version"], name="subs_planversion_uniq")]

    def __str__(self) -> str:
        return f"{self.plan_id} v{self.version}"
