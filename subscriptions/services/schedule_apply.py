"""The one place where schedules call the subscription services (``schedule_runner.ScheduleApplier``).

Everything a schedule does to a subscription goes through ``SubscriptionServicesApplier``; the runner's
logic is tested with a recording applier, this module is wired and integration-tested where the
subscription services exist. Imports are inside the methods so this module loads without them.

Mapping of a phase (as sent) to the services:
- first phase → ``subscription_create(plan_id=planId, items=items as sent, trial_period_days=…,
  test_clock_id=the schedule's clock)``: a
  ``trialEnd`` after the phase start becomes whole trial days (rounded up, so the trial never ends before
  the date asked); no ``trialEnd`` → ``None`` (the plan's own trial, if any).
- later phases → ``subscription_change_plan(plan_id=planId, proration_behavior=prorationBehavior)``.
- end with ``endBehavior: cancel`` → ``subscription_cancel(at_period_end=False)`` at the last phase's end.
- a plan exists when ``plan_find`` finds it; a price when it names a plan or a live pricing rule.
- the runner holds the schedule's transaction: an invoice a change produces (``always_invoice``, the final
  invoice of a cancel) is settled — finalized and collected, possibly charging a card — after that
  transaction commits (``settle_after_commit``), never inside it.
"""

from __future__ import annotations

import math
from datetime import datetime

from billing_project.core.models import Organization
from subscriptions.services.schedules import Phase


def trial_days(phase: Phase) -> int | None:
    """Whole days from the phase start to its ``trialEnd`` (rounded up); None without a trial."""
    if phase.trial_end is None or phase.trial_end <= phase.start:
        return None
    return math.ceil((phase.trial_end - phase.start).total_seconds() / 86400)


class SubscriptionServicesApplier:
    def plan_exists(self, *, organization: Organization, plan_id: str) -> bool:
        from subscriptions import selectors as subscription_selectors

        return subscription_selectors.plan_find(organization=organization, plan_id=plan_id) is not None

    def price_exists(self, *, organization: Organization, price_id: str) -> bool:
        from invoicing.models import PricingRule

        if self.plan_exists(organization=organization, plan_id=price_id):
            return True
        return PricingRule.objects.filter(organization=organization, public_id=price_id,
                                          deleted_at__isnull=True).exists()

    def subscription_start(self, *, organization: Organization, customer_id: str, phase: Phase, metadata: dict,
                           now: datetime, test_clock_id: str = "") -> str:
        from subscriptions.services import subscriptions as subscription_services

        subscription = subscription_services.subscription_create(
            organization=organization, customer_id=customer_id, plan_id=phase.plan_id,
            trial_period_days=trial_days(phase), items=phase.items or None, metadata=metadata, now=now,
            test_clock_id=test_clock_id)
        return subscription.public_id

    def subscription_phase_change(self, *, organization: Organization, subscription_id: str, phase: Phase,
                                  now: datetime) -> None:
        from subscriptions.services import subscriptions as subscription_services

        subscription_services.subscription_change_plan(
            organization=organization, subscription_id=subscription_id, plan_id=phase.plan_id,
            proration_behavior=phase.proration_behavior, now=now, settle_after_commit=True)

    def subscription_end(self, *, organization: Organization, subscription_id: str, now: datetime) -> None:
        from subscriptions.services import subscriptions as subscription_services

        subscription_services.subscription_cancel(organization=organization, subscription_id=subscription_id,
                                                  at_period_end=False, now=now, settle_after_commit=True)
