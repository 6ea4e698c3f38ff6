"""Schedules run: the runner starts each phase at its date and applies the end behaviour after the last one.

What it does to subscriptions goes through a ``ScheduleApplier`` (``schedule_apply.SubscriptionServicesApplier``
in production: the subscription services; a recording one in tests), so which phase is due, in which order,
and what an end or an abort means is decided here and nowhere else.

Invariants
- One step per transaction, under the schedule's row lock: the phase's subscription work (through the
  applier, same database transaction) and the schedule's advance (``current_phase``, ``next_run_at``, the
  event) commit together or not at all. A second runner (an overlapping sweep, a redelivered task, a test
  clock advancing) waits for the lock, then finds the phase applied and does nothing: running twice bills
  nothing twice. Lock order: schedule row, then whatever the subscription services lock.
- Phases start in order, each at its own date (a late runner catches up phase by phase, each applied
  ``now`` = its start, so periods and prorations are those of the schedule, not of the runner's delay).
- A phase naming a plan (or an item price) that does not exist when it is due aborts the schedule: nothing
  is applied for it (nothing billed), the schedule is ``released`` (an existing subscription keeps running
  as it is) and ``subscription_schedule.aborted`` is published. A refusal by the subscription services
  (an ``ApplicationError``) aborts the same way, its partial work rolled back to a savepoint.
- After the last phase's ``endDate``: ``endBehavior`` ``cancel`` cancels the subscription at that moment,
  anything else (``release``, the default) leaves it running; the schedule is ``completed``
  (``subscription_schedule.completed``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from django.db import transaction
from django.utils import timezone

from billing_project.core import sweeps as core_sweeps
from billing_project.core.errors import ApplicationError
from billing_project.core.models import Organization
from subscriptions.models import SubscriptionSchedule
from subscriptions.services.schedules import (
    Phase,
    next_run_at,
    schedule_event_publish,
    schedule_phases,
)

CLAIM_SECONDS = 600


class ScheduleApplier(Protocol):
    """What a schedule does to subscriptions. Calls run inside the runner's transaction."""

    def plan_exists(self, *, organization: Organization, plan_id: str) -> bool: ...

    def price_exists(self, *, organization: Organization, price_id: str) -> bool: ...

    def subscription_start(self, *, organization: Organization, customer_id: str, phase: Phase,
                           metadata: dict, now: datetime, test_clock_id: str = "") -> str:
        """Create the subscription for the first phase (on the schedule's test clock, if any); its public id.
        ``test_clock_id`` is passed only when the schedule is on a clock."""
        ...

    def subscription_phase_change(self, *, organization: Organization, subscription_id: str, phase: Phase,
                                  now: datetime) -> None:
        """Move the subscription to a later phase's plan, items and trial."""
        ...

    def subscription_end(self, *, organization: Organization, subscription_id: str, now: datetime) -> None:
        """Cancel the subscription now (``endBehavior: cancel``)."""
        ...


def schedules_due_queryset(now: datetime, clock=None):
    """Due in real time (``clock`` None: schedules on no test clock) or in ``clock``'s time: a schedule on a test
    clock moves only with its clock."""
    return SubscriptionSchedule.objects.filter(status__in=SubscriptionSchedule.RUNNING, next_run_at__isnull=False,
                                               next_run_at__lte=now, test_clock=clock)


def schedules_claim(*, now: datetime | None = None, limit: int = 1000,
                    organization: Organization | None = None) -> list[int]:
    """Claim the due schedules not claimed by another sweep (``FOR UPDATE SKIP LOCKED`` + a claimed-until
    stamp, as ``ledger.services.sweeps``); their pks, earliest due first. Writes only the stamp. Real-time
    schedules only: one on a test clock moves only when its clock advances."""
    now = now or timezone.now()
    queryset = schedules_due_queryset(now)
    if organization is not None:
        queryset = queryset.filter(organization=organization)
    return core_sweeps.pks_claim(queryset, order="next_run_at", now=now, limit=limit, claim_seconds=CLAIM_SECONDS)


def _missing_reference(schedule: SubscriptionSchedule, phase: Phase, applier: ScheduleApplier) -> str:
    organization = schedule.organization
    if not phase.plan_id or not applier.plan_exists(organization=organization, plan_id=phase.plan_id):
        return f"phases[{phase.index}]: plan {phase.plan_id or '(none)'} not found"
    for k, item in enumerate(phase.items):
        price_id = item.get("priceId") or ""
        if price_id and not applier.price_exists(organization=organization, price_id=price_id):
            return f"phases[{phase.index}].items[{k}]: price {price_id} not found"
    return ""


def _abort(schedule: SubscriptionSchedule, reason: str, at: datetime) -> None:
    previous = {"status": schedule.status}
    schedule.status = SubscriptionSchedule.STATUS_RELEASED
    schedule.released_at = at
    schedule.abort_reason = reason[:500]
    schedule.next_run_at = None
    schedule.save()
    schedule_event_publish(schedule, "aborted", previous, extra={"reason": schedule.abort_reason})


def _phase_apply(schedule: SubscriptionSchedule, phase: Phase, applier: ScheduleApplier, at: datetime) -> None:
    organization = schedule.organization
    if not schedule.subscription_id:
        clock = {"test_clock_id": schedule.test_clock.public_id} if schedule.test_clock_id else {}
        schedule.subscription_id = applier.subscription_start(
            organization=organization, customer_id=schedule.customer.customer_id, phase=phase,
            metadata={"subscriptionSchedule": schedule.public_id}, now=at, **clock)
    else:
        applier.subscription_phase_change(organization=organization, subscription_id=schedule.subscription_id,
                                          phase=phase, now=at)


def _phase_start(schedule: SubscriptionSchedule, phases: list[Phase], applier: ScheduleApplier,
                 at: datetime) -> None:
    phase = phases[schedule.current_phase + 1]
    missing = _missing_reference(schedule, phase, applier)
    if missing:
        _abort(schedule, missing, at)
        return
    subscription_id = schedule.subscription_id
    try:
        with transaction.atomic():  # savepoint: a refusal leaves none of the phase's work behind
            _phase_apply(schedule, phase, applier, at)
    except ApplicationError as exc:
        schedule.subscription_id = subscription_id
        _abort(schedule, f"phases[{phase.index}]: {exc.message}", at)
        return
    previous = {"status": schedule.status, "currentPhase": schedule.current_phase}
    schedule.status = SubscriptionSchedule.STATUS_ACTIVE
    schedule.current_phase = phase.index
    schedule.next_run_at = next_run_at(schedule, phases)
    schedule.save()
    schedule_event_publish(schedule, "phase_started", previous, extra={"phase": phase.index})


def _end(schedule: SubscriptionSchedule, applier: ScheduleApplier, at: datetime) -> None:
    if schedule.end_behavior == SubscriptionSchedule.END_CANCEL and schedule.subscription_id:
        try:
            with transaction.atomic():
                applier.subscription_end(organization=schedule.organization,
                                         subscription_id=schedule.subscription_id, now=at)
        except ApplicationError:  # already canceled or gone: the schedule's end is reached all the same
            pass
    previous = {"status": schedule.status}
    schedule.status = SubscriptionSchedule.STATUS_COMPLETED
    schedule.completed_at = at
    schedule.next_run_at = None
    schedule.save()
    schedule_event_publish(schedule, "completed", previous)


def _step(*, schedule_pk: int, applier: ScheduleApplier, now: datetime) -> bool:
    """Do the one thing due on the schedule (start a phase, end, or abort); False when nothing is due."""
    with transaction.atomic():
        schedule = (SubscriptionSchedule.objects.select_for_update(of=("self",))
                    .select_related("organization", "customer", "test_clock").filter(pk=schedule_pk).first())
        if schedule is None or schedule.status not in SubscriptionSchedule.RUNNING:
            return False
        phases = schedule_phases(schedule)
        due = next_run_at(schedule, phases)
        if due is None or due > now:
            if schedule.next_run_at != due:  # keep the sweep's view true
                SubscriptionSchedule.objects.filter(pk=schedule.pk).update(next_run_at=due)
            return False
        if schedule.current_phase + 1 < len(phases):
            _phase_start(schedule, phases, applier, due)
        else:
            _end(schedule, applier, due)
        return True


def schedule_run(*, schedule_pk: int, applier: ScheduleApplier, now: datetime | None = None) -> int:
    """Apply everything due on one schedule up to ``now``, in order, one transaction per step; the number of
    steps taken (0 when nothing was due: a rerun is harmless). Without ``now``: the schedule's test clock's time,
    else the real one."""
    if now is None:
        now = (SubscriptionSchedule.objects.filter(pk=schedule_pk, test_clock__isnull=False)
               .values_list("test_clock__frozen_time", flat=True).first() or timezone.now())
    steps = 0
    while _step(schedule_pk=schedule_pk, applier=applier, now=now):
        steps += 1
    return steps


def schedules_run_due(*, applier: ScheduleApplier, now: datetime | None = None,
                      organization: Organization | None = None, limit: int = 1000, clock=None) -> int:
    """Run every schedule due at ``now`` inline (``clock``: that test clock's schedules at its ``now``, from its
    advance; else real-time ones, a management command); steps taken. No claim stamp (``now`` may be a clock's
    time): the per-schedule lock keeps a concurrent sweep harmless."""
    now = now or timezone.now()
    queryset = schedules_due_queryset(now, clock)
    if organization is not None:
        queryset = queryset.filter(organization=organization)
    pks = list(queryset.order_by("next_run_at", "pk").values_list("pk", flat=True)[:limit])
    return sum(schedule_run(schedule_pk=pk, applier=applier, now=now) for pk in pks)
