"""The billing event log (an outbox): written in the same transaction as the state change it records.
Delivery to webhook endpoints arrives in a later issue."""

from __future__ import annotations

from django.db import models

from billing_project.core.ids import public_id
from billing_project.core.models import Organization


def _evt_id() -> str:
    return public_id("evt")


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

    class Meta:
        indexes = [
            models.Index(fields=["organization", "type", "-id"], name="evt_org_type"),
            models.Index(fields=["organization", "object_id"], name="evt_org_object"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"
