"""Renewals and dunning: the invoice of a period, its collection, and what that does to the subscription.

Invariants
- One invoice per (subscription, period): ``Renewal`` is unique on (subscription, period_start), written
  under the subscription's row lock with the draft invoice. A renewal of a period that already has one
  re-uses it: finalizes it if a crash left it a draft, retries its collection if it is open (a manual
  renew, or dunning), and only then applies the outcome. Sweeping twice, concurrently, or after a crash
  therefore bills nothing twice.
- Three short phases, no transaction around collection: (1) lock + draft + renewal row, (2) finalize and
  collect (``invoice_collect_now``, the one place that collects a card), (3) lock again and apply the outcome:
  paid → the period advances (``past_due``/``unpaid`` → ``active``), ``subscription.renewed``; failed →
  ``past_due`` and the first dunning retry is scheduled; left pending by the processor (a timeout) →
  the renewal is ``processing``, the subscription keeps its status, and once the payments reconciler has
  settled the payment the next sweep applies paid or failed as above. A subscription with a pending at-period-end
  cancel is ended instead once its period is over (``canceled``, ``endedAt`` = period end), whatever the
  final invoice's collection does.
- The sweeper's renewal of a customer WITHOUT a default payment method runs the three phases in ONE
  transaction (``_settle_in_place``): nothing can be charged to a card, so collection is credits → customer
  balance → deposits only, no processor call; same locks in the same order (subscription → invoice →
  sequence → ledger), same postings, events and audit records, one commit instead of four. A default
  payment method, an account not created yet or a negative total take the three phases.
- Dunning: retries after the organization's ``dunning_retry_days`` (default 1, 3, 7 days; each counted
  from the previous attempt); after the last failure the invoice is marked uncollectible and the
  subscription becomes ``unpaid`` (or ``canceled``, per setting). An invoice paid another way in between
  returns the subscription to ``active`` at the next sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing_project.core.errors import Conflict
from billing_project.core.models import Organization
from invoicing.models import Invoice
from invoicing.services import invoice_collection, invoice_render
from invoicing.services import invoices as invoice_services
from payments.services import collection as payment_collection
from subscriptions import periods, selectors
from subscriptions.models import Plan, Renewal, Subscription, SubscriptionSettings
from subscriptions.services import billing, upcoming
from subscriptions.services.render import subscription_data
from subscriptions.services.subscriptions import subscription_audit, subscription_event

DEFAULT_RETRY_DAYS = (1, 3, 7)
TRIAL_WILL_END_DAYS = 3
ACTOR = "system:subscriptions"


@dataclass
class RenewOutcome:
    subscription: Subscription
    invoice: Invoice
    collection: dict[str, Any]


def invoice_collect_now(*, organization: Organization, invoice_id: str, now: datetime) -> tuple[Invoice, dict]:
    """Collect one open subscription invoice — the ONE call site of collection for subscriptions: the payments
    app's two-phase collection (credits → customer balance → deposits, then the customer's default payment
    method charged outside any transaction). Never call inside a transaction."""
    invoice, result = payment_collection.invoice_collect(organization=organization, invoice_id=invoice_id,
                                                         actor=ACTOR, now=now)
    return invoice, invoice_render.collection_data(result)


def _no_collection(invoice: Invoice) -> dict[str, Any]:
    paid = invoice.status == Invoice.STATUS_PAID
    data = {"success": paid, "creditUsed": 0, "balanceUsed": 0, "customerBalanceUsed": 0, "depositsUsed": 0,
            "providerUsed": 0, "amountCharged": 0}
    if not paid:
        data["error"] = f"invoice is {invoice.status}"
    return data


def retry_days(organization: Organization) -> list[int]:
    found = SubscriptionSettings.objects.filter(organization=organization).first()
    days = found.dunning_retry_days if found and found.dunning_retry_days else DEFAULT_RETRY_DAYS
    return [int(d) for d in days]


def _final_action(organization: Organization) -> str:
    found = SubscriptionSettings.objects.filter(organization=organization).first()
    return found.dunning_final_action if found else SubscriptionSettings.FINAL_UNPAID


# --- phase 1 -----------------------------------------------------------------------------------------

def _renewal_open(sub: Subscription, *, now: datetime) -> tuple[Renewal, Invoice | None]:
    """The renewal of the current period: the existing one, or a new one with its draft invoice (returned
    too; None for an existing renewal). Caller holds the lock."""
    existing = (Renewal.objects.filter(subscription=sub, period_start=sub.current_period_start)
                .exclude(kind=Renewal.KIND_PRORATION).first())
    if existing is not None:
        return existing, None
    start, end = sub.current_period_start, sub.current_period_end
    draft = billing.Draft()
    billing.pending_lines(sub, draft)
    segment_start = max(sub.segment_start, start)
    amount = billing.segment_close(sub, at=end)
    if amount or segment_start == start:
        draft.lines.insert(0, billing.plan_line(sub, amount=amount, start=segment_start, end=end))
    billing.item_lines(sub, draft, start=start, end=end, now=now)
    sub.save()
    kind = Renewal.KIND_FINAL if sub.cancel_at_period_end else Renewal.KIND_RENEWAL
    return billing.draft_invoice_write(sub, draft, kind=kind, start=start, end=end)


# --- phase 2 and 3 -----------------------------------------------------------------------------------

def _finalized(renewal: Renewal, organization: Organization, now: datetime) -> Invoice:
    invoice = billing.invoice_of(renewal)
    if invoice.status == Invoice.STATUS_DRAFT:
        try:
            invoice = invoice_services.invoice_finalize(organization=organization, invoice_id=invoice.public_id,
                                                        actor=ACTOR, now=now)
        except Conflict:  # finalized by a concurrent renewal of the same period
            invoice = billing.invoice_of(renewal)
    return invoice


def renewal_settle(*, renewal_pk: int, now: datetime | None = None, retry: bool = False
                   ) -> tuple[Renewal, Invoice, dict[str, Any]]:
    """Finalize the renewal's invoice if still a draft, collect it if open (first attempt, or ``retry``),
    then apply the outcome. Runs outside any transaction of its own (collection must not be wrapped)."""
    now = now or timezone.now()
    renewal = Renewal.objects.select_related("subscription__organization").get(pk=renewal_pk)
    organization = renewal.subscription.organization
    invoice = _finalized(renewal, organization, now)
    collection = None
    if invoice.status == Invoice.STATUS_OPEN and (renewal.status == Renewal.STATUS_OPEN or retry):
        try:
            invoice, collection = invoice_collect_now(organization=organization, invoice_id=invoice.public_id,
                                                      now=now)
        except Conflict:  # paid (or voided) concurrently
            invoice = billing.invoice_of(renewal)
    renewal = _outcome_apply(renewal_pk=renewal.pk, subscription_pk=renewal.subscription_id, invoice=invoice,
                             attempted=collection is not None, now=now)
    return renewal, invoice, collection or _no_collection(invoice)


def _advance(sub: Subscription) -> None:
    months = Plan(interval=sub.plan_snapshot.get("interval", "month"),
                  interval_count=sub.plan_snapshot.get("intervalCount", 1)).months
    sub.current_period_start = sub.current_period_end
    sub.current_period_end = periods.advance(sub.current_period_start, months, sub.anchor_day)
    sub.segment_start = max(sub.segment_start, sub.current_period_start)


def _subscription_outcome(sub: Subscription, renewal: Renewal, *, paid: bool, now: datetime) -> None:
    previous = subscription_data(sub)
    if sub.status == Subscription.STATUS_CANCELED:
        return  # a final invoice's collection never changes a canceled subscription
    if sub.cancel_at_period_end and now >= renewal.period_end:
        sub.status = Subscription.STATUS_CANCELED
        sub.ended_at = renewal.period_end
        sub.save()
        subscription_event(sub, "subscription.canceled", previous)
        return
    if paid:
        if renewal.kind != Renewal.KIND_PRORATION and sub.current_period_start == renewal.period_start \
                and not sub.cancel_at_period_end:
            _advance(sub)
        if sub.status in (Subscription.STATUS_PAST_DUE, Subscription.STATUS_UNPAID) and not Renewal.objects.filter(
                subscription=sub, status=Renewal.STATUS_PAST_DUE).exclude(pk=renewal.pk).exists():
            sub.status = Subscription.STATUS_ACTIVE
        sub.save()
        subscription_event(sub, "subscription.renewed", previous, extra={"invoiceId": renewal.invoice_id})
    elif sub.status != Subscription.STATUS_PAST_DUE:
        sub.status = Subscription.STATUS_PAST_DUE
        sub.save()
        subscription_event(sub, "subscription.updated", previous, extra={"invoiceId": renewal.invoice_id})


def _pending(invoice: Invoice) -> bool:
    """The invoice's card payment is in flight: its outcome is not known until the processor answers (or the
    payments reconciler asks it)."""
    return invoice.status == Invoice.STATUS_OPEN and bool(invoice.collection_pending)


def _processing(sub: Subscription, renewal: Renewal, *, attempted: bool, now: datetime) -> Renewal:
    """Collection left pending: neither paid nor failed yet. The subscription keeps its status (a pending
    at-period-end cancel still ends it); the sweeper applies the outcome once the payment is settled."""
    renewal.attempts += 1 if attempted else 0
    renewal.status, renewal.next_retry_at = Renewal.STATUS_PROCESSING, None
    renewal.save()
    if sub.cancel_at_period_end:
        _subscription_outcome(sub, renewal, paid=False, now=now)
    return renewal


def _outcome_apply(*, renewal_pk: int, subscription_pk: int, invoice: Invoice, attempted: bool,
                   now: datetime) -> Renewal:
    with transaction.atomic():
        sub = billing.subscription_locked(subscription_pk=subscription_pk)  # lock order: subscription first
        renewal = Renewal.objects.select_for_update().get(pk=renewal_pk)
        if _pending(invoice):
            return _processing(sub, renewal, attempted=attempted, now=now)
        _outcome_apply_locked(sub, renewal, invoice=invoice, attempted=attempted, now=now)
    return renewal


def _outcome_apply_locked(sub: Subscription, renewal: Renewal, *, invoice: Invoice, attempted: bool,
                          now: datetime) -> None:
    """Phase 3 on the locked subscription and renewal (caller's transaction)."""
    # A voided invoice is forgiven by an operator: the period counts as settled.
    paid = invoice.status in (Invoice.STATUS_PAID, Invoice.STATUS_VOID)
    if paid:
        renewal.status, renewal.next_retry_at = invoice.status, None
    elif invoice.status == Invoice.STATUS_UNCOLLECTIBLE:
        renewal.status, renewal.next_retry_at = Renewal.STATUS_UNCOLLECTIBLE, None
        renewal.save()
        _final_action_apply(sub, renewal, now=now)
        return
    elif attempted or renewal.status in (Renewal.STATUS_OPEN, Renewal.STATUS_PROCESSING):
        renewal.attempts += 1 if attempted else 0
        renewal.status = Renewal.STATUS_PAST_DUE
        days = retry_days(sub.organization)
        index = max(renewal.attempts - 1, 0)
        renewal.next_retry_at = now + timedelta(days=days[index]) if index < len(days) else now
    renewal.save()
    _subscription_outcome(sub, renewal, paid=paid, now=now)


def _settle_in_place(sub: Subscription, renewal: Renewal, invoice: Invoice, *, now: datetime) -> bool:
    """Phases 2 and 3 inside phase 1's transaction, when no card can be charged: the customer has no default
    payment method, so collection is credits → customer balance → deposits only (no processor call, nothing
    two-phase) and draft, finalization, collection and outcome commit together — one transaction instead of
    four, with the same locks in the same order (subscription → invoice → sequence → ledger), postings,
    events and audit records. False (nothing done) when the two-phase path is needed: a default payment
    method, an account not created yet (resolved outside any lock by that path) or a negative total."""
    if sub.customer.default_payment_method_id or invoice.total < 0:
        return False
    accounts = invoice_collection.invoice_lifecycle_accounts_find(invoice)
    if accounts is None:
        return False
    finalize_accounts, collection_accounts = accounts
    invoice_services.invoice_finalize_locked(invoice, accounts=finalize_accounts, actor=ACTOR, now=now,
                                             balance_account=collection_accounts.customer_balance)
    payment_collection.invoice_collect_funds_locked(invoice=invoice, accounts=collection_accounts, actor=ACTOR,
                                                    now=now)
    _outcome_apply_locked(sub, renewal, invoice=invoice, attempted=True, now=now)
    return True


# --- renew -------------------------------------------------------------------------------------------

def _renew_guard(sub: Subscription) -> None:
    if sub.status == Subscription.STATUS_CANCELED:
        raise Conflict("cannot renew a canceled subscription", code="subscription_canceled", param="status")


def subscription_renew(*, organization: Organization, subscription_id: str, now: datetime | None = None,
                       actor: str = "", reason: str = "") -> RenewOutcome:
    """Renew now (spec §10): invoice the current period (or re-use its invoice), finalize, collect, advance
    on success / ``past_due`` on failure. 404 ``subscription not found``; 409 for a canceled subscription."""
    found = selectors.subscription_get(organization=organization, subscription_id=subscription_id)
    now = selectors.subscription_now(found, now)
    _renew_guard(found)
    with transaction.atomic():
        sub = billing.subscription_locked(subscription_pk=found.pk)
        _renew_guard(sub)
        renewal, _draft = _renewal_open(sub, now=now)
        subscription_audit(sub, actor=actor, action="subscription.renew", reason=reason)
    renewal, invoice, collection = renewal_settle(renewal_pk=renewal.pk, now=now, retry=True)
    sub = selectors.subscription_get(organization=organization, subscription_id=subscription_id)
    return RenewOutcome(subscription=sub, invoice=invoice, collection=collection)


def _trial_steps(sub: Subscription, now: datetime) -> None:
    """``trial_will_end`` (once, 3 days ahead) and the trial → active transition. Caller holds the lock."""
    if sub.status != Subscription.STATUS_TRIALING or sub.trial_end is None:
        return
    if not sub.trial_will_end_sent and sub.trial_end - timedelta(days=TRIAL_WILL_END_DAYS) <= now:
        sub.trial_will_end_sent = True
        sub.save(update_fields=["trial_will_end_sent", "updated_at"])
        subscription_event(sub, "subscription.trial_will_end")
    if sub.trial_end <= now:
        previous = subscription_data(sub)
        sub.status = Subscription.STATUS_ACTIVE
        sub.save()
        subscription_event(sub, "subscription.updated", previous, extra={"reason": "trial_ended"})


def _is_due(sub: Subscription, now: datetime) -> bool:
    if sub.status == Subscription.STATUS_CANCELED or sub.current_period_end > now:
        return False
    return sub.status in (Subscription.STATUS_ACTIVE, Subscription.STATUS_TRIALING) or sub.cancel_at_period_end


def subscription_due_process(*, subscription_pk: int, now: datetime | None = None) -> str:
    """What the sweeper's task does for one subscription: trial steps, the period's ``invoice.upcoming``
    notice, then the renewal (or the end) of the current period when it is over. Re-checks everything
    under the lock; harmless when run twice."""
    now = now or timezone.now()
    with transaction.atomic():
        sub = billing.subscription_locked(subscription_pk=subscription_pk)
        _trial_steps(sub, now)
        noticed = upcoming.upcoming_notice_step(sub, now)
        if not _is_due(sub, now):
            return "upcoming_notice" if noticed else "not_due"
        renewal, draft = _renewal_open(sub, now=now)
        if draft is not None and _settle_in_place(sub, renewal, draft, now=now):
            return renewal.status
    renewal, _invoice, _collection = renewal_settle(renewal_pk=renewal.pk, now=now)
    return renewal.status


def renewal_retry(*, renewal_pk: int, now: datetime | None = None) -> str:
    """One dunning step for a past-due renewal: recovered if its invoice was paid meanwhile, else collect
    again; after the last retry, write the invoice off and apply the organization's final action. A
    ``processing`` renewal (its payment was pending) gets the settled payment's outcome: paid → the period
    advances; failed → ``past_due`` and the next retry (the pending attempt counted as one)."""
    now = now or timezone.now()
    renewal = Renewal.objects.select_related("subscription__organization").get(pk=renewal_pk)
    if renewal.status not in (Renewal.STATUS_PAST_DUE, Renewal.STATUS_PROCESSING):
        return renewal.status
    invoice = billing.invoice_of(renewal)
    if renewal.status == Renewal.STATUS_PROCESSING or _pending(invoice):
        # A payment in flight (ours, or the customer's own): wait for it, then apply what it became.
        renewal = _outcome_apply(renewal_pk=renewal.pk, subscription_pk=renewal.subscription_id, invoice=invoice,
                                 attempted=False, now=now)
        return renewal.status
    if invoice.status != Invoice.STATUS_PAID and (renewal.next_retry_at is None or renewal.next_retry_at > now):
        return "not_due"
    retries = len(retry_days(renewal.subscription.organization))
    if invoice.status == Invoice.STATUS_OPEN and renewal.attempts > retries:
        return _dunning_exhausted(renewal, now=now)
    renewal, _invoice, _collection = renewal_settle(renewal_pk=renewal.pk, now=now, retry=True)
    return renewal.status


def _dunning_exhausted(renewal: Renewal, *, now: datetime) -> str:
    organization = renewal.subscription.organization
    try:
        invoice_services.invoice_mark_uncollectible(organization=organization, invoice_id=renewal.invoice_id,
                                                    actor=ACTOR, reason="dunning exhausted", now=now)
    except Conflict:
        pass  # paid or voided meanwhile: the outcome below reads its status
    invoice = billing.invoice_of(renewal)
    with transaction.atomic():
        sub = billing.subscription_locked(subscription_pk=renewal.subscription_id)
        renewal = Renewal.objects.select_for_update().get(pk=renewal.pk)
        if invoice.status == Invoice.STATUS_PAID:
            renewal.status = Renewal.STATUS_PAID
            renewal.save()
            _subscription_outcome(sub, renewal, paid=True, now=now)
            return renewal.status
        renewal.status, renewal.next_retry_at = Renewal.STATUS_UNCOLLECTIBLE, None
        renewal.save()
        _final_action_apply(sub, renewal, now=now)
    return renewal.status


def _final_action_apply(sub: Subscription, renewal: Renewal, *, now: datetime) -> None:
    """A renewal invoice written off: the subscription becomes ``unpaid`` (or ``canceled``, per setting)."""
    if renewal.kind != Renewal.KIND_RENEWAL or sub.status in (Subscription.STATUS_CANCELED,
                                                                Subscription.STATUS_UNPAID):
        return
    previous = subscription_data(sub)
    if _final_action(sub.organization) == SubscriptionSettings.FINAL_CANCEL:
        sub.status, sub.canceled_at, sub.ended_at = Subscription.STATUS_CANCELED, now, now
        sub.save()
        subscription_event(sub, "subscription.canceled", previous, extra={"reason": "dunning_exhausted"})
    else:
        sub.status = Subscription.STATUS_UNPAID
        sub.save()
        subscription_event(sub, "subscription.updated", previous, extra={"reason": "dunning_exhausted"})
