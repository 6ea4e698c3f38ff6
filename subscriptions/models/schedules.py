"""Subscription schedules (spec subscriptions.md §12): phases that a beat task applies to one subscription.

``phases`` is stored exactly as the client sent it (the API echoes it); the runner reads the dates and
plan/items from it (``subscriptions.services.schedules.phases_check`` guarantees they parse and ascend).
``current_phase`` is the index of the phase applied last (−1 before the first); ``next_run_at`` is when the
runner has something to do (the next phase's start, or the last phase's end), ``None`` when nothing is due
ever again. The runner claims due rows with ``sweep_claimed_until`` like the ledger's sweeps."""

from __future__ import annotations

from django.db import models

from billing_project.core.ids import public_id
from billing_project.core.models import Customer, Organization
from subscriptions.models.clocks import TestClock


def _schedule_id() -> str:
    return public_id("sub_sched")


class SubscriptionSchedule(models.Model):
    STATUS_NOT_STARTED = "not_started"
    STATUS_ACTIVE = "active"
    STATUS_COMPLETED = "completed"
    STATUS_RELEASED = "released"
    STATUS_CANCELED = "canceled"
    STATUSES = (STATUS_NOT_STARTED, STATUS_ACTIVE, STATUS_COMPLETED, STATUS_RELEASED, STATUS_CANCELED)
    RUNNING = (STATUS_NOT_STARTED, STATUS_ACTIVE)

    END_RELEASE = "release"
    END_CANCEL = "cancel"

    public_id = models.CharField(max_length=40, unique=True, default=_schedule_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscription_schedules")
    status = models.CharField(max_length=16, choices=[(s, s) for s in STATUSES], default=STATUS_NOT_STARTED)
    start_date = models.DateTimeField(null=True, blank=True, help_text="Empty: the zero time (no start given).")
    end_behavior = models.CharField(max_length=40, default=END_RELEASE,
                                    help_text="release (the subscription keeps running) or cancel; free string "
                                              "as in the original (anything but cancel releases)")
    phases = models.JSONField(default=list, blank=True, help_text="As sent by the client.")
    metadata = models.JSONField(default=dict, blank=True)
    subscription_id = models.CharField(max_length=60, blank=True, default="",
                                       help_text="Public id of the subscription this schedule manages.")
    current_phase = models.IntegerField(default=-1, help_text="Index of the phase applied last; -1 before the first.")
    next_run_at = models.DateTimeField(null=True, blank=True, help_text="When the runner has work; empty: none.")
    sweep_claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    test_clock = models.ForeignKey(TestClock, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="schedules",
                                   help_text="runs in this clock's time (only when the clock advances); "
                                             "its subscription lives on the same clock")
    abort_reason = models.CharField(max_length=500, blank=True, default="")
    canceled_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "customer", "status"], name="subs_sched_customer"),
            models.Index(fields=["next_run_at"], name="subs_sched_due",
                         condition=models.Q(status__in=("not_started", "active"), next_run_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return self.public_id
