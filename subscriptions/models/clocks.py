"""Test clocks: a frozen time that subscriptions created on the clock live in. Advancing the clock runs
every renewal, trial step, period-end cancel and dunning retry due in between, in time order."""

from __future__ import annotations

from django.db import models

from billing_project.core.ids import public_id
from billing_project.core.models import Organization


def _clock_id() -> str:
    return public_id("clock")


class TestClock(models.Model):
    __test__ = False  # not a pytest class

    STATUS_READY = "ready"
    STATUS_ADVANCING = "advancing"

    public_id = models.CharField(max_length=40, unique=True, default=_clock_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=255, blank=True, default="")
    frozen_time = models.DateTimeField()
    status = models.CharField(max_length=16, default=STATUS_READY)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.public_id
