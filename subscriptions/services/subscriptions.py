"""Subscription lifecycle: create, change plan / quantity (with proration), cancel, reactivate, trial end.

Invariants
- A customer may hold any number of subscriptions (same plan included). Creation issues no invoice:
  billing is in arrears, the first invoice is the first renewal. Trial end = start + N days exactly; the
  first period starts at trial end, and every period ends on the anchor day (clamped).
- Every write locks the subscription row first (``billing.subscription_locked``); lock order:
  subscription → invoice → ledger. Every state change emits one ``subscription.*`` event in its transaction.
- Proration (``billing``): ``create_prorations`` (default) closes the current segment into a pending line
  for the next invoice; ``always_invoice`` also invoices the pending lines now; ``none`` changes the plan
  without a line (the new price applies to the whole current period).
- Cancel immediately: ``canceled``, ``canceledAt = endedAt = now`` and a final invoice for the used,
  not-yet-invoiced part of the period (none when that is 0). At period end: only ``cancelAtPeriodEnd`` and
  ``canceledAt``; the sweeper ends it at the period end after its final invoice. Nothing is ever credited
  for unused time: billing is in arrears, so only a period already invoiced could have been paid ahead
  (manual early renewal), and its unused part is simply not billed again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.errors import Conflict, NotFound, ValidationError
from billing_project.core.models import Organization
from subscriptions import periods, selectors
from subscriptions.models import Plan, Renewal, Subscription, SubscriptionItem
from subscriptions.services import billing
from subscriptions.services.render import plan_snapshot, subscription_data
from webhooks import services as webhook_services

PRORATION_BEHAVIORS = ("create_prorations", "always_invoice", "none")


def subscription_event(sub: Subscription, type: str, previous: dict[str, Any] | None = None,
                       extra: dict[str, Any] | None = None) -> None:
    """Publish ``type`` for the subscription (inside the transaction of the change)."""
    webhook_services.event_publish(organization=sub.organization, type=type, object_type="subscription",
                                   object_id=sub.public_id, customer_id=sub.customer.customer_id,
                                   data=subscription_data(sub) | (extra or {}), previous_data=previous)


def subscription_audit(sub: Subscription, *, actor: str, action: str, reason: str = "") -> None:
    """An audit row for a staff or API action (inside its transaction); nothing for system actions."""
    if actor:
        core_services.audit_record(organization=sub.organization, actor=actor, action=action,
                                   object_type="subscription", object_id=sub.public_id, reason=reason,
                                   data={"status": sub.status})


def _active_plan(organization: Organization, plan_id: str, message: str) -> Plan:
    if not plan_id:
        raise ValidationError("planId is required", param="planId")
    plan = selectors.plan_find(organization=organization, plan_id=plan_id)
    if plan is None:
        raise NotFound(message, param="planId")
    if plan.archived_at is not None:
        raise Conflict(f"plan {plan_id} is archived", code="plan_archived", param="planId")
    return plan


def _items_create(organization: Organization, sub: Subscription, items: list[dict] | None) -> None:
    for spec in items or []:
        SubscriptionItem.objects.create(
            organization=organization, subscription_ref=sub.public_id, price_id=spec.get("priceId", ""),
            plan_id=spec.get("planId", ""), meter_id=spec.get("meterId", ""), quantity=spec.get("quantity", 0),
            billing_mode=spec.get("billingMode") or SubscriptionItem.MODE_LICENSED, metadata=spec.get("metadata"))


def subscription_create(*, organization: Organization, customer_id: str, plan_id: str, quantity: int = 1,
                        trial_period_days: int | None = None, items: list[dict] | None = None,
                        default_payment_method: str = "", metadata: dict | None = None,
                        now: datetime | None = None, test_clock_id: str = "") -> Subscription:
    """Start a subscription (``trialing`` when the trial has days, else ``active``). No invoice.
    404 ``plan not found`` / ``test clock not found``; 409 for an archived plan. On a test clock it lives in
    the clock's time. Emits ``subscription.created``."""
    clock = selectors.test_clock_get(organization=organization, clock_id=test_clock_id) if test_clock_id else None
    now = now or (clock.frozen_time if clock else timezone.now())
    if not customer_id:
        raise ValidationError("userId is required", param="userId")
    plan = _active_plan(organization, plan_id, "plan not found")
    if quantity < 1:
        raise ValidationError("quantity must be at least 1", param="quantity")
    customer = core_services.customer_ensure(organization=organization, customer_id=customer_id)
    days = plan.trial_period_days if trial_period_days is None else trial_period_days
    trial_end = now + timedelta(days=days) if days > 0 else None
    start = trial_end or now
    with transaction.atomic():
        sub = Subscription(
            organization=organization, customer=customer, plan=plan, plan_snapshot=plan_snapshot(plan),
            status=Subscription.STATUS_TRIALING if trial_end else Subscription.STATUS_ACTIVE, quantity=quantity,
            started_at=now, trial_start=now if trial_end else None, trial_end=trial_end,
            current_period_start=start, current_period_end=periods.advance(start, plan.months, start.day),
            anchor_day=start.day, default_payment_method=default_payment_method, metadata=metadata or {},
            segment_start=start, test_clock=clock)
        sub.save()
        _items_create(organization, sub, items)
        subscription_event(sub, "subscription.created")
    return sub


def _change_description(old: dict, new: Plan | None, old_quantity: int, quantity: int) -> str:
    if new is not None and new.public_id != old.get("id"):
        return f"Proration: {old.get('name', '')} -> {new.name}"
    return f"Proration: {old.get('name', '')} quantity {old_quantity} -> {quantity}"


def _plan_apply(sub: Subscription, plan: Plan, *, now: datetime, prorate: bool) -> None:
    """Switch the snapshot; an interval change starts a new period now when prorating (else at the next)."""
    old_months = Plan(interval=sub.plan_snapshot.get("interval", "month"),
                      interval_count=sub.plan_snapshot.get("intervalCount", 1)).months
    sub.plan = plan
    sub.plan_snapshot = plan_snapshot(plan)
    if plan.months != old_months and prorate and sub.current_period_start <= now < sub.current_period_end:
        sub.current_period_start = now
        sub.current_period_end = periods.advance(now, plan.months, now.day)
        sub.anchor_day = now.day
        sub.segment_start = now


def subscription_change_plan(*, organization: Organization, subscription_id: str, plan_id: str,
                             quantity: int | None = None, proration_behavior: str = "create_prorations",
                             now: datetime | None = None, settle_after_commit: bool = False) -> Subscription:
    """Change plan and/or quantity (see module doc for proration). 404 ``subscription not found`` /
    ``new plan not found``; 409 on a canceled subscription. Emits ``subscription.updated``.
    ``settle_after_commit``: see ``_settle`` (callers that hold a transaction, e.g. the schedule runner)."""
    if proration_behavior not in PRORATION_BEHAVIORS:
        raise ValidationError(f"prorationBehavior must be one of {', '.join(PRORATION_BEHAVIORS)}",
                              param="prorationBehavior")
    found = selectors.subscription_get(organization=organization, subscription_id=subscription_id)
    now = selectors.subscription_now(found, now)
    new_plan = None
    if plan_id and plan_id != found.plan.public_id:
        new_plan = _active_plan(organization, plan_id, "new plan not found")
    with transaction.atomic():
        sub = billing.subscription_locked(subscription_pk=found.pk)
        new_quantity = quantity if quantity and quantity > 0 else sub.quantity
        if new_plan is None and new_quantity == sub.quantity:
            return sub
        if sub.status == Subscription.STATUS_CANCELED and sub.ended_at is not None:
            raise Conflict("cannot update a canceled subscription", code="subscription_canceled", param="status")
        previous = subscription_data(sub)
        prorate = proration_behavior != "none"
        if prorate:
            billing.proration_pending(sub, at=now, description=_change_description(
                sub.plan_snapshot, new_plan, sub.quantity, new_quantity))
        if new_plan is not None:
            _plan_apply(sub, new_plan, now=now, prorate=prorate)
        sub.quantity = new_quantity
        sub.save()
        subscription_event(sub, "subscription.updated", previous)
        renewal = None
        if proration_behavior == "always_invoice":
            renewal = _pending_invoice(sub, now=now)
    if renewal is not None:
        _settle(sub, renewal, now=now, after_commit=settle_after_commit)
    return sub


def _settle(sub: Subscription, renewal: Renewal, *, now: datetime, after_commit: bool) -> None:
    """Finalize and collect the invoice this change produced. Collection may charge a card, which never happens
    inside a database transaction: a caller that holds one (the schedule runner applies a phase under the
    schedule's lock) passes ``after_commit`` and the settlement runs once its transaction has committed."""
    from subscriptions.services import renewals  # noqa: PLC0415 — renewals imports this module

    if after_commit:
        transaction.on_commit(lambda: renewals.renewal_settle(renewal_pk=renewal.pk, now=now), robust=True)
        return
    renewals.renewal_settle(renewal_pk=renewal.pk, now=now)
    sub.refresh_from_db()


def _pending_invoice(sub: Subscription, *, now: datetime) -> Renewal | None:
    draft = billing.Draft()
    billing.pending_lines(sub, draft)
    if not draft.lines:
        return None
    start = min(p.period_start for p in draft.pending)
    return billing.draft_invoice_create(sub, draft, kind=Renewal.KIND_PRORATION, start=start, end=now)


def _final_invoice(sub: Subscription, *, now: datetime) -> Renewal | None:
    """The final invoice of an immediate cancel: pending lines + the used part of the current period."""
    if Renewal.objects.filter(subscription=sub, period_start=sub.current_period_start).exclude(
            kind=Renewal.KIND_PRORATION).exists():
        return _pending_invoice(sub, now=now)  # this period is invoiced already: only what is pending
    start = max(sub.segment_start, sub.current_period_start)
    draft = billing.Draft()
    billing.pending_lines(sub, draft)
    amount = billing.segment_close(sub, at=now)
    if amount:
        draft.lines.append(billing.plan_line(sub, amount=amount, start=start, end=sub.segment_start))
    billing.item_lines(sub, draft, start=sub.current_period_start, end=now, now=now)
    if draft.total == 0 and not draft.pending:
        return None
    return billing.draft_invoice_create(sub, draft, kind=Renewal.KIND_FINAL, start=sub.current_period_start, end=now)


def subscription_cancel(*, organization: Organization, subscription_id: str, at_period_end: bool,
                        now: datetime | None = None, actor: str = "", reason: str = "",
                        settle_after_commit: bool = False) -> Subscription:
    """Cancel now (final invoice of the used part) or at period end. 400 ``subscription is already canceled``.
    Emits ``subscription.canceled`` (immediate) or ``subscription.updated`` (pending).
    ``settle_after_commit``: see ``_settle`` (callers that hold a transaction, e.g. the schedule runner)."""
    found = selectors.subscription_get(organization=organization, subscription_id=subscription_id)
    now = selectors.subscription_now(found, now)
    with transaction.atomic():
        sub = billing.subscription_locked(subscription_pk=found.pk)
        if sub.status == Subscription.STATUS_CANCELED:
            raise ValidationError("subscription is already canceled", code="subscription_canceled", param="status")
        previous = subscription_data(sub)
        renewal = None
        sub.canceled_at = now
        if at_period_end:
            sub.cancel_at_period_end = True
            sub.save()
            subscription_event(sub, "subscription.updated", previous)
        else:
            renewal = _final_invoice(sub, now=now)
            sub.status = Subscription.STATUS_CANCELED
            sub.ended_at = now
            sub.save()
            subscription_event(sub, "subscription.canceled", previous)
        subscription_audit(sub, actor=actor, action="subscription.cancel", reason=reason)
    if renewal is not None:
        _settle(sub, renewal, now=now, after_commit=settle_after_commit)
    return sub


def subscription_reactivate(*, organization: Organization, subscription_id: str,
                            now: datetime | None = None, actor: str = "", reason: str = "") -> Subscription:
    """Undo a pending at-period-end cancel (a no-op otherwise). 400 ``cannot reactivate a fully ended
    subscription`` after an immediate cancel. Emits ``subscription.updated`` when something changed."""
    found = selectors.subscription_get(organization=organization, subscription_id=subscription_id)
    with transaction.atomic():
        sub = billing.subscription_locked(subscription_pk=found.pk)
        if sub.status == Subscription.STATUS_CANCELED and sub.ended_at is not None:
            raise ValidationError("cannot reactivate a fully ended subscription", code="subscription_ended",
                                  param="status")
        if not sub.cancel_at_period_end and sub.canceled_at is None and sub.status != Subscription.STATUS_CANCELED:
            return sub
        previous = subscription_data(sub)
        sub.cancel_at_period_end = False
        sub.canceled_at = None
        if sub.status == Subscription.STATUS_CANCELED:
            sub.status = Subscription.STATUS_ACTIVE
        sub.save()
        subscription_event(sub, "subscription.updated", previous)
        subscription_audit(sub, actor=actor, action="subscription.reactivate", reason=reason)
    return sub


def subscription_metadata_update(*, organization: Organization, subscription_id: str,
                                 default_payment_method: str | None = None, metadata: dict | None = None) -> None:
    """Fields without billing effect (PATCH)."""
    if default_payment_method is None and metadata is None:
        return
    found = selectors.subscription_get(organization=organization, subscription_id=subscription_id)
    with transaction.atomic():
        sub = billing.subscription_locked(subscription_pk=found.pk)
        previous = subscription_data(sub)
        if default_payment_method is not None:
            sub.default_payment_method = default_payment_method
        if metadata is not None:
            sub.metadata = metadata
        sub.save()
        subscription_event(sub, "subscription.updated", previous)
