"""Disputes (spec payments.md §5): opened by the processor, answered with evidence, closed won or lost.

Invariants
- Only the processor opens a dispute (sandbox card …0259: the capture's result says so); there is no create
  route. ``dispute_open_locked`` runs inside the transaction that applied the capture, with the intent
  locked, once per capture (unique ``source_key`` = the capture attempt's processor key).
- Funds: opening withholds the disputed amount from what the processor owes us (Dr disputes_held / Cr
  processor_clearing, ``dispute.funds_withdrawn``); won → reinstated (the reverse, ``dispute.funds_reinstated``);
  lost → Dr dispute_losses / Cr disputes_held. Each posting is keyed by the dispute (``dispute-hold:<id>``,
  ``dispute-release:<id>``, ``dispute-loss:<id>``), so it happens once. While held or lost, the amount is not
  refundable (``payments.services.refunds``).
- Evidence (PATCH) merges the fields sent into what is stored (omitted fields keep their value) and moves
  the dispute to ``under_review`` (``warning_under_review`` from a warning); a closed dispute (won, lost,
  warning_closed) refuses evidence with a 409. Close takes an outcome (default ``lost``, as the original);
  closing again with the same outcome changes nothing, with another is a 409: a won dispute is never forced
  to lost.
- Lock order: the intent (when the caller holds it), then the dispute row, then the ledger; a hold (money out
  of processor clearing) takes the clearing account's row lock last (``payouts.clearing_lock``).
- Every change emits ``dispute.created|updated|closed|funds_withdrawn|funds_reinstated`` in its transaction;
  staff actions write an audit record.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.errors import Conflict, NotFound, ValidationError
from billing_project.core.models import Organization
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction
from payments import postings_refunds
from payments.models import Dispute, PaymentAttempt, PaymentIntent
from payments.models.disputes import EVIDENCE_FIELDS
from payments.processors.base import ProcessorResult
from payments.selectors.refunds import dispute_data
from payments.services import payouts as payout_services
from webhooks import services as webhook_services

EVIDENCE_DAYS = 7
OUTCOMES = (Dispute.STATUS_WON, Dispute.STATUS_LOST)
_HOUSE = (Account.KIND_PROCESSOR_CLEARING, Account.KIND_DISPUTES_HELD, Account.KIND_DISPUTE_LOSSES)


def dispute_accounts(*, organization: Organization, currency: str) -> dict[str, Account]:
    """The house accounts disputes post to (created on first use)."""
    return ledger_services.accounts_resolve(organization=organization, currency=currency, customer_kinds=(),
                                            house_kinds=_HOUSE)


def dispute_event(dispute: Dispute, type: str, previous: dict[str, Any] | None = None) -> None:
    webhook_services.event_publish(
        organization=dispute.organization, type=f"dispute.{type}", object_type="dispute",
        object_id=dispute.public_id, customer_id=dispute.customer.customer_id, data=dispute_data(dispute),
        previous_data=previous)


def _post(dispute: Dispute, *, type: str, key: str, legs, notes: str) -> None:
    ledger_services.transaction_post(
        organization=dispute.organization, type=type, currency=dispute.currency, amount=dispute.amount, legs=legs,
        customer=dispute.customer.customer_id, idempotency_key=f"{key}:{dispute.public_id}", notes=notes,
        source_type="dispute", source_id=dispute.public_id,
        metadata={"paymentIntentId": dispute.payment_intent.public_id})


def dispute_open_locked(*, intent: PaymentIntent, attempt: PaymentAttempt, result: ProcessorResult,
                        now: datetime | None = None) -> Dispute | None:
    """The processor reports the capture ``attempt`` of ``intent`` disputed: open a ``needs_response`` dispute
    for the captured amount (less anything already refunded) and withhold it. Inside the caller's transaction
    with the intent locked; once per attempt (None when already opened or nothing is left to dispute).
    Emits ``dispute.created`` and ``dispute.funds_withdrawn``."""
    now = now or timezone.now()
    amount = min(result.amount or intent.amount_received, intent.amount_received - intent.amount_refunded)
    if amount <= 0 or Dispute.objects.filter(source_key=attempt.processor_key).exists():
        return None
    # House accounts: one indexed SELECT once they exist; the first dispute of a currency creates them
    # (race-safe get_or_create on the unique constraint, inside a savepoint).
    accounts = dispute_accounts(organization=intent.organization, currency=intent.currency)
    dispute = Dispute.objects.create(
        organization=intent.organization, customer=intent.customer, payment_intent=intent,
        source_key=attempt.processor_key, amount=amount, currency=intent.currency, reason="fraudulent",
        provider_ref=result.processor_ref, evidence_due_by=now + timedelta(days=EVIDENCE_DAYS))
    payout_services.clearing_lock(accounts[Account.KIND_PROCESSOR_CLEARING])  # last lock: money leaves clearing
    _post(dispute, type=BalanceTransaction.TYPE_DISPUTE_HOLD, key="dispute-hold",
          notes=f"Dispute {dispute.public_id} on {intent.public_id}: funds withheld",
          legs=postings_refunds.dispute_hold(held=accounts[Account.KIND_DISPUTES_HELD],
                                             clearing=accounts[Account.KIND_PROCESSOR_CLEARING], amount=amount))
    dispute_event(dispute, "created")
    dispute_event(dispute, "funds_withdrawn")
    return dispute


def _locked(*, organization: Organization, dispute_id: str) -> Dispute:
    dispute = (Dispute.objects.select_for_update(of=("self",))
               .select_related("organization", "customer", "payment_intent")
               .filter(organization=organization, public_id=dispute_id).first())
    if dispute is None:
        raise NotFound("dispute not found", param="id")
    return dispute


def dispute_exists(*, organization: Organization, dispute_id: str) -> None:
    """404 ``dispute not found`` unless it exists (actions check this before reading their body)."""
    if not Dispute.objects.filter(organization=organization, public_id=dispute_id).exists():
        raise NotFound("dispute not found", param="id")


def dispute_evidence_submit(*, organization: Organization, dispute_id: str, evidence: dict[str, str | None],
                            actor: str = "") -> Dispute:
    """Merge ``evidence`` (fields sent, None = not sent) into the dispute's and put it under review. 404
    unknown; 400 an unknown field; 409 ``cannot submit evidence for a closed dispute (status <s>)``. Locks the
    dispute. Emits ``dispute.updated``."""
    unknown = sorted(set(evidence) - set(EVIDENCE_FIELDS))
    if unknown:
        raise ValidationError(f"unknown evidence field: {unknown[0]}", param=unknown[0])
    with transaction.atomic():
        dispute = _locked(organization=organization, dispute_id=dispute_id)
        if dispute.status in Dispute.CLOSED:
            raise Conflict(f"cannot submit evidence for a closed dispute (status {dispute.status})",
                           code="dispute_closed", param="status")
        previous = {"status": dispute.status, "evidence": dict(dispute.evidence)}
        dispute.evidence = {**dispute.evidence, **{k: v for k, v in evidence.items() if v is not None}}
        warning = dispute.status in (Dispute.STATUS_WARNING_NEEDS_RESPONSE, Dispute.STATUS_WARNING_UNDER_REVIEW)
        dispute.status = Dispute.STATUS_WARNING_UNDER_REVIEW if warning else Dispute.STATUS_UNDER_REVIEW
        dispute.save(update_fields=["evidence", "status", "updated_at"])
        if actor:
            core_services.audit_record(organization=organization, actor=actor, action="dispute.evidence",
                                       object_type="dispute", object_id=dispute.public_id,
                                       data={"evidence": dispute.evidence})
        dispute_event(dispute, "updated", previous)
    return dispute


def dispute_close(*, organization: Organization, dispute_id: str, outcome: str = "", actor: str = "",
                  reason: str = "", now: datetime | None = None) -> Dispute:
    """Close with ``outcome`` ``won`` or ``lost`` (default ``lost``: accepting the loss, as the original). Won →
    the withheld funds are reinstated; lost → they become a loss. 400 another outcome; 409 when already closed
    with another outcome (the same one answers the dispute unchanged). Locks the dispute. Emits
    ``dispute.closed`` (and ``dispute.funds_reinstated`` when won); staff closes write an audit record."""
    outcome = (outcome or "").strip() or Dispute.STATUS_LOST
    if outcome not in OUTCOMES:
        raise ValidationError("outcome must be one of: won, lost", param="outcome")
    now = now or timezone.now()
    currency = Dispute.objects.filter(organization=organization, public_id=dispute_id).values_list(
        "currency", flat=True).first()
    if currency is None:
        raise NotFound("dispute not found", param="id")
    accounts = dispute_accounts(organization=organization, currency=currency)
    with transaction.atomic():
        dispute = _locked(organization=organization, dispute_id=dispute_id)
        if dispute.status == outcome:
            return dispute
        if dispute.status in Dispute.CLOSED:
            raise Conflict(f"dispute is already closed (status {dispute.status})", code="dispute_closed",
                           param="outcome")
        previous = {"status": dispute.status}
        held = accounts[Account.KIND_DISPUTES_HELD]
        if outcome == Dispute.STATUS_WON:
            _post(dispute, type=BalanceTransaction.TYPE_DISPUTE_RELEASE, key="dispute-release",
                  notes=f"Dispute {dispute.public_id} won: funds reinstated",
                  legs=postings_refunds.dispute_release(held=held, amount=dispute.amount,
                                                        clearing=accounts[Account.KIND_PROCESSOR_CLEARING]))
            dispute.funds = Dispute.FUNDS_RELEASED
        else:
            _post(dispute, type=BalanceTransaction.TYPE_DISPUTE_LOSS, key="dispute-loss",
                  notes=f"Dispute {dispute.public_id} lost",
                  legs=postings_refunds.dispute_loss(held=held, losses=accounts[Account.KIND_DISPUTE_LOSSES],
                                                     amount=dispute.amount))
            dispute.funds = Dispute.FUNDS_LOST
        dispute.status, dispute.closed_at, dispute.closed_by = outcome, now, actor
        dispute.save(update_fields=["status", "funds", "closed_at", "closed_by", "updated_at"])
        if actor:
            core_services.audit_record(organization=organization, actor=actor, action="dispute.close",
                                       object_type="dispute", object_id=dispute.public_id, reason=reason,
                                       data={"outcome": outcome, "amount": dispute.amount})
        dispute_event(dispute, "closed", previous)
        if outcome == Dispute.STATUS_WON:
            dispute_event(dispute, "funds_reinstated")
    return dispute
