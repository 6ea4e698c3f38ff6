"""Subscription schedules: create, update, cancel, release (spec subscriptions.md §12), and the phase plan the
runner (``schedule_runner``) follows.

Invariants
- ``phases`` is stored exactly as sent; ``phases_check`` only checks structure: a list of objects, dates that
  parse (RFC 3339), each phase ending after it starts, phases ascending without overlap, optional ``items``
  (objects with a string ``priceId`` and an integer ``quantity`` when present). Plans and prices need not
  exist: a phase naming a missing one aborts the schedule when it is due (the runner), never at creation.
- Transitions follow the original's table: cancel and release only from ``not_started`` or ``active``
  (400 ``can only cancel/release active or not_started schedules, current: <s>``); PATCH has no status
  guard. Neither cancel nor release touches the subscription the schedule manages: it keeps running as it
  is (cancel it through the subscription). Every state change takes the schedule's row lock and publishes
  its ``subscription_schedule.*`` event in the same transaction; ``next_run_at`` is recomputed whenever
  the phases or the status change, so the runner never acts on a stale plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.api.fields import json_trouble
from billing_project.core.errors import NotFound, ValidationError
from billing_project.core.models import Organization
from billing_project.core.money import INT64_MAX, INT64_MIN
from billing_project.core.times import parse_rfc3339, rfc3339
from subscriptions.models import SubscriptionSchedule, TestClock
from webhooks import services as webhook_services

ZERO_TIME = "0001-01-01T00:00:00Z"
PRORATION_DEFAULT = "create_prorations"


@dataclass(frozen=True)
class Phase:
    """One phase as the runner reads it (``phases_check``): times resolved, the rest as sent."""

    index: int
    plan_id: str
    start: datetime
    end: datetime | None
    trial_end: datetime | None
    proration_behavior: str
    items: list[dict[str, Any]] = field(default_factory=list)


def _bad(message: str, param: str) -> ValidationError:
    return ValidationError(f"invalid request body: {param} {message}", param=param, code="invalid_request_body")


def _time(raw: dict, key: str, param: str) -> datetime | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    parsed = parse_rfc3339(value) if isinstance(value, str) else None
    if parsed is None:
        raise _bad("must be an RFC 3339 timestamp", f"{param}.{key}")
    return parsed


def _string(raw: dict, key: str, param: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad("must be a string", f"{param}.{key}")
    return value


def _items_check(raw: Any, param: str) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _bad("must be a list", param)
    for k, item in enumerate(raw):
        where = f"{param}[{k}]"
        if not isinstance(item, dict):
            raise _bad("must be an object", where)
        _string(item, "priceId", where)
        quantity = item.get("quantity")
        if quantity is not None and (type(quantity) is not int or not INT64_MIN <= quantity <= INT64_MAX):
            raise _bad("must be an integer", f"{where}.quantity")
    return raw


def _phase_check(raw: Any, index: int, previous: Phase | None, schedule_start: datetime | None) -> Phase:
    param = f"phases[{index}]"
    if not isinstance(raw, dict):
        raise _bad("must be an object", param)
    start = _time(raw, "startDate", param)
    end = _time(raw, "endDate", param)
    if start is None:  # a phase without a start begins where the previous one ends (the first: at the schedule's)
        start = previous.end if previous is not None else schedule_start
    if start is None:
        raise ValidationError(f"{param}.startDate is required", param=f"{param}.startDate", code="parameter_missing")
    if end is not None and end <= start:
        raise ValidationError(f"{param}.endDate must be after its startDate", param=f"{param}.endDate")
    if previous is not None:
        if start <= previous.start:
            raise ValidationError(f"{param}.startDate must be after phases[{index - 1}].startDate (phases ascend)",
                                  param=f"{param}.startDate")
        if previous.end is not None and start < previous.end:
            raise ValidationError(f"{param} overlaps phases[{index - 1}]: it starts before that phase's endDate",
                                  param=f"{param}.startDate")
    return Phase(index=index, plan_id=_string(raw, "planId", param), start=start, end=end,
                 trial_end=_time(raw, "trialEnd", param),
                 proration_behavior=_string(raw, "prorationBehavior", param) or PRORATION_DEFAULT,
                 items=_items_check(raw.get("items"), f"{param}.items"))


def phases_check(raw: Any, *, schedule_start: datetime | None) -> list[Phase]:
    """The phases of a request body, structure checked (400 naming ``phases[i].<field>``)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _bad("must be a list", "phases")
    trouble = json_trouble(raw)
    if trouble:
        raise _bad(trouble, "phases")
    phases: list[Phase] = []
    for index, item in enumerate(raw):
        phases.append(_phase_check(item, index, phases[-1] if phases else None, schedule_start))
    return phases


def schedule_phases(schedule: SubscriptionSchedule) -> list[Phase]:
    """The stored phases, resolved (they were checked when stored)."""
    return phases_check(schedule.phases, schedule_start=schedule.start_date)


def phase_start_at(schedule: SubscriptionSchedule, phase: Phase) -> datetime:
    """When the runner starts ``phase``: its start, but never before the schedule's own start."""
    if schedule.start_date is not None and schedule.start_date > phase.start:
        return schedule.start_date
    return phase.start


def next_run_at(schedule: SubscriptionSchedule, phases: list[Phase] | None = None) -> datetime | None:
    """When the runner next has work on ``schedule``: the next phase's start, else the last phase's end (the
    end behaviour); ``None`` when it is not running, has no phases, or its last phase never ends."""
    if schedule.status not in SubscriptionSchedule.RUNNING:
        return None
    phases = schedule_phases(schedule) if phases is None else phases
    upcoming = schedule.current_phase + 1
    if upcoming < len(phases):
        return phase_start_at(schedule, phases[upcoming])
    if phases and schedule.current_phase >= 0:
        return phases[-1].end
    return None


# --- rendering and events ----------------------------------------------------------------------------

def schedule_data(schedule: SubscriptionSchedule) -> dict[str, Any]:
    """The schedule object: ``id, customerId, status, startDate, endBehavior, created`` plus
    ``subscriptionId``, ``phases`` and ``metadata`` only when set (spec §12)."""
    data: dict[str, Any] = {
        "id": schedule.public_id, "customerId": schedule.customer.customer_id, "status": schedule.status,
        "startDate": rfc3339(schedule.start_date) if schedule.start_date else ZERO_TIME,
        "endBehavior": schedule.end_behavior, "created": rfc3339(schedule.created_at),
        "createdAt": rfc3339(schedule.created_at), "updatedAt": rfc3339(schedule.updated_at),
    }
    if schedule.subscription_id:
        data["subscriptionId"] = schedule.subscription_id
    if schedule.phases:
        data["phases"] = schedule.phases
    if schedule.metadata:
        data["metadata"] = schedule.metadata
    if schedule.current_phase >= 0:
        data["currentPhase"] = schedule.current_phase
    for key, value in (("canceledAt", schedule.canceled_at), ("releasedAt", schedule.released_at),
                       ("completedAt", schedule.completed_at)):
        if value is not None:
            data[key] = rfc3339(value)
    if schedule.abort_reason:
        data["abortReason"] = schedule.abort_reason
    if schedule.test_clock_id:
        data["testClock"] = schedule.test_clock.public_id
    return data


def schedule_event_publish(schedule: SubscriptionSchedule, type: str, previous: dict[str, Any] | None = None,
                           extra: dict[str, Any] | None = None) -> None:
    """Publish ``subscription_schedule.<type>`` inside the transaction of the change."""
    webhook_services.event_publish(organization=schedule.organization, type=f"subscription_schedule.{type}",
                                   object_type="subscription_schedule", object_id=schedule.public_id,
                                   customer_id=schedule.customer.customer_id,
                                   data=schedule_data(schedule) | (extra or {}), previous_data=previous)


# --- services ----------------------------------------------------------------------------------------

def schedule_locked(*, organization: Organization, schedule_id: str) -> SubscriptionSchedule:
    """The schedule row, locked (``of=self``: never the organization or customer rows); 404 otherwise."""
    schedule = (SubscriptionSchedule.objects.select_for_update(of=("self",))
                .select_related("organization", "customer", "test_clock")
                .filter(organization=organization, public_id=schedule_id).first())
    if schedule is None:
        raise NotFound("subscription schedule not found", param="id")
    return schedule


def _clock(organization: Organization, test_clock_id: str) -> TestClock | None:
    if not test_clock_id:
        return None
    clock = TestClock.objects.filter(organization=organization, public_id=test_clock_id).first()
    if clock is None:
        raise NotFound("test clock not found", param="testClock")
    return clock


def schedule_create(*, organization: Organization, customer_id: str, start_date: datetime | None,
                    end_behavior: str = "", phases: list | None = None,
                    metadata: dict[str, Any] | None = None, test_clock_id: str = "") -> SubscriptionSchedule:
    """Create a ``not_started`` schedule (phases checked, stored as sent); publishes
    ``subscription_schedule.created``. No locks (a new row). On a test clock (404 ``test clock not found``)
    it runs only when that clock advances, and the subscription it starts lives on the same clock."""
    checked = phases_check(phases, schedule_start=start_date)
    clock = _clock(organization, test_clock_id)
    customer = core_services.customer_ensure(organization=organization, customer_id=customer_id)
    with transaction.atomic():
        schedule = SubscriptionSchedule(organization=organization, customer=customer, start_date=start_date,
                                        end_behavior=end_behavior or SubscriptionSchedule.END_RELEASE,
                                        phases=phases or [], metadata=metadata or {}, test_clock=clock)
        schedule.next_run_at = next_run_at(schedule, checked)
        schedule.save()
        schedule_event_publish(schedule, "created")
    return schedule


def schedule_update(*, organization: Organization, schedule_id: str, end_behavior: str = "",
                    phases: list | None = None) -> SubscriptionSchedule:
    """``endBehavior`` when non-empty; ``phases`` replaced when a non-empty list (an empty one is ignored, as
    in the original). No status guard. Locks the schedule row; publishes ``subscription_schedule.updated``."""
    with transaction.atomic():
        schedule = schedule_locked(organization=organization, schedule_id=schedule_id)
        previous = {"endBehavior": schedule.end_behavior, "phases": schedule.phases}
        if phases:
            checked = phases_check(phases, schedule_start=schedule.start_date)
            schedule.phases = phases
        else:
            checked = None
        if end_behavior:
            schedule.end_behavior = end_behavior
        schedule.next_run_at = next_run_at(schedule, checked)
        schedule.save()
        schedule_event_publish(schedule, "updated", previous)
    return schedule


def _transition(*, organization: Organization, schedule_id: str, verb: str, status: str, stamp: str,
                now: datetime | None) -> SubscriptionSchedule:
    with transaction.atomic():
        schedule = schedule_locked(organization=organization, schedule_id=schedule_id)
        if schedule.status not in SubscriptionSchedule.RUNNING:
            raise ValidationError(f"can only {verb} active or not_started schedules, current: {schedule.status}",
                                  param="status", code="invalid_state")
        previous = {"status": schedule.status}
        schedule.status = status
        clock_now = schedule.test_clock.frozen_time if schedule.test_clock_id else None
        setattr(schedule, stamp, now or clock_now or timezone.now())
        schedule.next_run_at = None
        schedule.save()
        schedule_event_publish(schedule, status, previous)
    return schedule


def schedule_cancel(*, organization: Organization, schedule_id: str, now: datetime | None = None
                    ) -> SubscriptionSchedule:
    """not_started/active → canceled (400 otherwise); no further phase runs; the subscription is untouched.
    Locks the schedule row; publishes ``subscription_schedule.canceled``."""
    return _transition(organization=organization, schedule_id=schedule_id, verb="cancel",
                       status=SubscriptionSchedule.STATUS_CANCELED, stamp="canceled_at", now=now)


def schedule_release(*, organization: Organization, schedule_id: str, now: datetime | None = None
                     ) -> SubscriptionSchedule:
    """not_started/active → released (400 otherwise); the subscription keeps running on its own. Locks the
    schedule row; publishes ``subscription_schedule.released``."""
    return _transition(organization=organization, schedule_id=schedule_id, verb="release",
                       status=SubscriptionSchedule.STATUS_RELEASED, stamp="released_at", now=now)
