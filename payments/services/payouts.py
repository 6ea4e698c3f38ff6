"""Payout services: create, cancel, and the beat task's processing (pending → in_transit → paid | failed).

Invariants
- Create never checks balance or destination and answers ``pending`` (as the original); funds are checked
  when the payout leaves ``pending``: under the row lock of the organization's ``processor_clearing``
  account in the payout's currency, the clearing balance (Σ debits − Σ credits) must cover the amount, else
  the payout ``failed`` with ``insufficient_funds`` and nothing moves. So concurrent payouts never take the
  settled balance below zero. Any other code that takes money out of processor clearing must hold the same
  lock (``clearing_lock_balance``).
- Money: Dr payouts_in_transit / Cr processor_clearing when it leaves pending, Dr bank / Cr
  payouts_in_transit when it is paid (``payments.postings_payouts``), each with the natural idempotency key
  ``payout:<id>:transit`` / ``payout:<id>:paid``. Cancelling (only from ``pending``) moves no money.
- Lock order: the payout row, then the clearing account row. Accounts are resolved before any lock.
- Events in the same transaction: ``payout.created|updated|paid|failed|canceled``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core import sweeps as core_sweeps
from billing_project.core.errors import NotFound, ValidationError
from billing_project.core.models import Organization
from billing_project.core.times import rfc3339
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction, Entry
from payments import postings_payouts
from payments.models import Payout
from webhooks import services as webhook_services

FAILURE_INSUFFICIENT_FUNDS = "insufficient_funds"
_HOUSE_KINDS = (Account.KIND_PROCESSOR_CLEARING, Account.KIND_PAYOUTS_IN_TRANSIT, Account.KIND_BANK)


def payout_data(payout: Payout) -> dict[str, Any]:
    data: dict[str, Any] = {"id": payout.public_id, "amount": payout.amount, "currency": payout.currency,
                            "status": payout.status, "destinationType": payout.destination_type,
                            "destinationId": payout.destination_id, "created": rfc3339(payout.created_at)}
    if payout.description:
        data["description"] = payout.description
    if payout.arrival_date:
        data["arrivalDate"] = rfc3339(payout.arrival_date)
    if payout.provider_ref:
        data["providerRef"] = payout.provider_ref
    if payout.failure_code:
        data["failureCode"], data["failureMessage"] = payout.failure_code, payout.failure_message
    if payout.metadata:
        data["metadata"] = payout.metadata
    return data


def _publish(payout: Payout, type: str, previous: dict[str, Any] | None = None) -> None:
    webhook_services.event_publish(organization=payout.organization, type=type, object_type="payout",
                                   object_id=payout.public_id, data=payout_data(payout), previous_data=previous)


def payout_create(*, organization: Organization, amount: int, destination_id: str, currency: str = "usd",
                  destination_type: str = "", description: str = "",
                  metadata: dict[str, Any] | None = None) -> Payout:
    """A ``pending`` payout; no balance or destination check (funds are checked when it leaves pending).
    400 ``amount must be positive`` / ``destinationId is required``, in that order. Emits ``payout.created``."""
    if amount <= 0:
        raise ValidationError("amount must be positive", param="amount")
    if not destination_id:
        raise ValidationError("destinationId is required", param="destinationId", code="parameter_missing")
    with transaction.atomic():
        payout = Payout.objects.create(organization=organization, amount=amount, currency=currency,
                                       destination_type=destination_type, destination_id=destination_id,
                                       description=description, metadata=metadata or {})
        payout.organization = organization
        _publish(payout, "payout.created")
    return payout


def _locked(*, organization: Organization | None = None, payout_id: str = "", pk: int | None = None) -> Payout:
    queryset = Payout.objects.select_for_update(of=("self",)).select_related("organization")
    payout = (queryset.filter(pk=pk) if pk is not None
              else queryset.filter(organization=organization, public_id=payout_id)).first()
    if payout is None:
        raise NotFound("payout not found", param="id")
    return payout


def payout_cancel(*, organization: Organization, payout_id: str, actor: str = "", reason: str = "") -> Payout:
    """pending → canceled; nothing moves. 400 ``can only cancel pending payouts, current: <s>``. Locking: the
    payout row (so a payout being processed cannot be canceled halfway). Emits ``payout.canceled``; with an
    ``actor`` (the admin) also writes an audit record."""
    with transaction.atomic():
        payout = _locked(organization=organization, payout_id=payout_id)
        if payout.status != Payout.STATUS_PENDING:
            raise ValidationError(f"can only cancel pending payouts, current: {payout.status}",
                                  code="invalid_state")
        payout.status = Payout.STATUS_CANCELED
        payout.canceled_at = timezone.now()
        payout.save(update_fields=["status", "canceled_at", "updated_at"])
        _publish(payout, "payout.canceled", {"status": Payout.STATUS_PENDING})
        if actor:
            core_services.audit_record(actor=actor, action="payout.cancel", object_type="payout",
                                       object_id=payout.public_id, organization=organization, reason=reason)
    return payout


# --- processing (beat task) -------------------------------------------------------------------------

def clearing_lock(clearing: Account) -> None:
    """Take the processor-clearing account's row lock (``FOR UPDATE``), last in the payments lock order
    (docs/payments.md). Every writer that takes money out of clearing holds it when it posts: payout transit
    (which checks the balance under it), a refund's card part and a dispute hold (which debit without a check:
    the processor takes the money from the merchant) — so a payout's funds check never races them."""
    Account.objects.select_for_update().filter(pk=clearing.pk).values_list("pk", flat=True).get()


def clearing_lock_balance(clearing: Account) -> int:
    """Lock the processor-clearing account row (``clearing_lock``) and return its balance, Σ debits − Σ
    credits, as committed by every earlier holder of the lock."""
    clearing_lock(clearing)
    totals = Entry.objects.filter(account_id=clearing.pk).aggregate(
        debits=Sum("amount", filter=Q(direction=Entry.DEBIT), default=0),
        credits=Sum("amount", filter=Q(direction=Entry.CREDIT), default=0))
    return totals["debits"] - totals["credits"]


def payout_process(*, payout_pk: int) -> Payout | None:
    """Move one payout on: pending → in_transit (funds checked and moved) or failed; in_transit → paid.
    Returns early when there is nothing to do (a duplicate delivery is harmless: every step re-checks the
    status under the payout's lock, and postings carry natural idempotency keys)."""
    payout = Payout.objects.select_related("organization").filter(pk=payout_pk).first()
    if payout is None or payout.status not in (Payout.STATUS_PENDING, Payout.STATUS_IN_TRANSIT):
        return payout
    accounts = ledger_services.accounts_resolve(organization=payout.organization, currency=payout.currency,
                                                customer_kinds=(), house_kinds=_HOUSE_KINDS)
    if payout.status == Payout.STATUS_PENDING:
        payout = _leave_pending(payout_pk=payout_pk, accounts=accounts)
    if payout.status == Payout.STATUS_IN_TRANSIT:
        payout = _arrive(payout_pk=payout_pk, accounts=accounts)
    return payout


def _leave_pending(*, payout_pk: int, accounts: dict[str, Account]) -> Payout:
    with transaction.atomic():
        payout = _locked(pk=payout_pk)
        if payout.status != Payout.STATUS_PENDING:
            return payout
        available = clearing_lock_balance(accounts[Account.KIND_PROCESSOR_CLEARING])
        previous = {"status": payout.status}
        if available < payout.amount:
            payout.status = Payout.STATUS_FAILED
            payout.failure_code = FAILURE_INSUFFICIENT_FUNDS
            payout.failure_message = (f"insufficient settled balance: {max(available, 0)} {payout.currency} "
                                      f"available, {payout.amount} requested")
            payout.save(update_fields=["status", "failure_code", "failure_message", "updated_at"])
            _publish(payout, "payout.failed", previous)
            return payout
        txn = ledger_services.transaction_post(
            organization=payout.organization, type=BalanceTransaction.TYPE_TRANSFER, currency=payout.currency,
            amount=payout.amount, legs=postings_payouts.payout_transit(
                clearing=accounts[Account.KIND_PROCESSOR_CLEARING],
                in_transit=accounts[Account.KIND_PAYOUTS_IN_TRANSIT], amount=payout.amount),
            idempotency_key=f"payout:{payout.public_id}:transit", tags="payout", source_type="payout",
            source_id=payout.public_id, notes=f"Payout {payout.public_id} to {payout.destination_id}")
        payout.status = Payout.STATUS_IN_TRANSIT
        payout.transit_transaction_id = txn.public_id
        payout.save(update_fields=["status", "transit_transaction_id", "updated_at"])
        _publish(payout, "payout.updated", previous)
    return payout


def _arrive(*, payout_pk: int, accounts: dict[str, Account]) -> Payout:
    with transaction.atomic():
        payout = _locked(pk=payout_pk)
        if payout.status != Payout.STATUS_IN_TRANSIT:
            return payout
        txn = ledger_services.transaction_post(
            organization=payout.organization, type=BalanceTransaction.TYPE_TRANSFER, currency=payout.currency,
            amount=payout.amount, legs=postings_payouts.payout_paid(
                in_transit=accounts[Account.KIND_PAYOUTS_IN_TRANSIT], bank=accounts[Account.KIND_BANK],
                amount=payout.amount),
            idempotency_key=f"payout:{payout.public_id}:paid", tags="payout", source_type="payout",
            source_id=payout.public_id, notes=f"Payout {payout.public_id} arrived at {payout.destination_id}")
        payout.status = Payout.STATUS_PAID
        payout.arrival_date = timezone.now()
        payout.paid_transaction_id = txn.public_id
        payout.save(update_fields=["status", "arrival_date", "paid_transaction_id", "updated_at"])
        _publish(payout, "payout.paid", {"status": Payout.STATUS_IN_TRANSIT})
    return payout


def payouts_claim(*, now=None, limit: int = 1000, claim_seconds: int = 600) -> list[int]:
    """Claim the payouts the beat task should move on (pending ones older than
    ``settings.PAYOUT_PROCESS_AFTER_SECONDS`` — the window to cancel — and those in transit), not claimed by
    another sweep: ``FOR UPDATE SKIP LOCKED`` plus a claimed-until stamp, as ``ledger.services.sweeps``; their
    pks, oldest first. A claim lapses after ``claim_seconds`` so a lost task is handed out again."""
    now = now or timezone.now()
    ripe = now - timedelta(seconds=settings.PAYOUT_PROCESS_AFTER_SECONDS)
    due = (Q(status=Payout.STATUS_PENDING, created_at__lte=ripe) | Q(status=Payout.STATUS_IN_TRANSIT))
    return core_sweeps.pks_claim(Payout.objects.filter(due), order="created_at", now=now, limit=limit,
                                 claim_seconds=claim_seconds)
