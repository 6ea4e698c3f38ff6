"""Holds: an amount reserved on a wallet, then captured (in part or whole) or released; expired by a sweep.
Placing, capturing and releasing are balanced ``transaction_post`` calls; the hold row is locked before the
wallets (the fixed lock order)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing_project.core.errors import Conflict, NotFound, ValidationError
from billing_project.core.models import Organization
from billing_project.core.times import rfc3339
from ledger import postings
from ledger.models import Account, BalanceTransaction, Hold
from ledger.postings import Leg
from ledger.services import sweeps
from ledger.services.posting import accounts_resolve, transaction_post
from webhooks import services as webhook_services


def hold_data(hold: Hold) -> dict[str, Any]:
    data = {
        "id": hold.public_id,
        "user": hold.customer,
        "amount": hold.amount,
        "currency": hold.currency,
        "status": hold.status,
        "capturedAmount": hold.captured_amount,
        "notes": hold.notes,
        "metadata": hold.metadata,
        "expiresAt": rfc3339(hold.expires_at),
        "createdAt": rfc3339(hold.created_at),
        "transactionId": hold.hold_transaction.public_id,
    }
    if hold.capture_transaction_id:
        data["captureTransactionId"] = hold.capture_transaction.public_id
    if hold.release_transaction_id:
        data["releaseTransactionId"] = hold.release_transaction.public_id
    return data


def hold_place(*, organization: Organization, user: str, amount: int, currency: str,
               expires_in_seconds: int | None = None, notes: str = "", metadata: dict[str, Any] | None = None,
               idempotency_key: str | None = None) -> Hold:
    """Reserve ``amount`` of the wallet's available balance (never beyond it, overdraft or not).

    Locking: the wallet (via transaction_post). Emits ``balance_transaction.created``, ``hold.created``."""
    if amount <= 0:
        raise ValidationError("amount must be positive", param="amount")
    seconds = expires_in_seconds if expires_in_seconds and expires_in_seconds > 0 \
        else settings.DEFAULT_HOLD_EXPIRY_SECONDS
    # Resolved before the transaction: creating an account while holding locks can deadlock.
    accounts = accounts_resolve(organization=organization, currency=currency, customer=user,
                                customer_kinds=(Account.KIND_WALLET, Account.KIND_HOLDS),
                                house_kinds=(Account.KIND_HOLDS_CONTROL,))
    with transaction.atomic():
        hold = Hold(organization=organization, wallet=accounts[Account.KIND_WALLET], customer=user,
                    currency=currency, amount=amount, notes=notes, metadata=metadata or {},
                    expires_at=timezone.now() + timedelta(seconds=seconds))
        txn = transaction_post(
            organization=organization, type=BalanceTransaction.TYPE_HOLD, currency=currency, amount=amount,
            legs=postings.hold_place(holds=accounts[Account.KIND_HOLDS],
                                     control=accounts[Account.KIND_HOLDS_CONTROL], amount=amount),
            customer=user, idempotency_key=f"hold:{idempotency_key}" if idempotency_key else None,
            notes=notes or f"Hold {hold.public_id}", source_type="hold", source_id=hold.public_id,
        )
        if txn.replayed:
            return Hold.objects.get(hold_transaction=txn)
        hold.hold_transaction = txn
        hold.save()
        webhook_services.event_publish(organization=organization, type="hold.created", object_type="hold",
                                       object_id=hold.public_id, customer_id=user, data=hold_data(hold))
        return hold


def _hold_locked(*, organization: Organization, hold_id: str) -> Hold:
    hold = (Hold.objects.select_for_update().select_related("wallet")
            .filter(organization=organization, public_id=hold_id).first())
    if hold is None:
        raise NotFound("hold not found", param="id")
    if hold.status != Hold.STATUS_PENDING:
        raise Conflict(f"hold is not in pending status (status: {hold.status})", code="hold_not_pending")
    return hold


def _hold_accounts_prepare(*, organization: Organization, hold_id: str) -> None:
    """Create (outside any transaction) the accounts a release or capture will post to, so the posting
    transaction never INSERTs an account while holding the hold and wallet locks (a first-use deadlock)."""
    hold = Hold.objects.filter(organization=organization, public_id=hold_id).first()
    if hold is not None:
        _hold_remove_legs(hold)


def _hold_remove_legs(hold: Hold) -> tuple[list[Leg], dict[str, Account]]:
    accounts = accounts_resolve(organization=hold.organization, currency=hold.currency, customer=hold.customer,
                                customer_kinds=(Account.KIND_WALLET, Account.KIND_HOLDS),
                                house_kinds=(Account.KIND_HOLDS_CONTROL, Account.KIND_USAGE_REVENUE))
    legs = postings.hold_remove(holds=accounts[Account.KIND_HOLDS], control=accounts[Account.KIND_HOLDS_CONTROL],
                                amount=hold.amount)
    return legs, accounts


def hold_release(*, organization: Organization, hold_id: str, expired: bool = False) -> Hold:
    """Release a pending hold (``holdRemoved``): the reserved amount is available again.

    Locking: hold, then wallet. Emits ``hold.released`` (or ``hold.expired``)."""
    _hold_accounts_prepare(organization=organization, hold_id=hold_id)
    with transaction.atomic():
        hold = _hold_locked(organization=organization, hold_id=hold_id)
        legs, _ = _hold_remove_legs(hold)
        txn = transaction_post(
            organization=organization, type=BalanceTransaction.TYPE_HOLD_REMOVED, currency=hold.currency,
            amount=hold.amount, legs=legs, customer=hold.customer, idempotency_key=f"hold-release:{hold.pk}",
            notes=f"{'Expired' if expired else 'Released'} hold {hold.public_id}", source_type="hold",
            source_id=hold.public_id,
        )
        previous = hold_data(hold)
        hold.status = Hold.STATUS_EXPIRED if expired else Hold.STATUS_RELEASED
        hold.release_transaction = txn
        hold.save(update_fields=["status", "release_transaction", "updated_at"])
        webhook_services.event_publish(
            organization=organization, type="hold.expired" if expired else "hold.released", object_type="hold",
            object_id=hold.public_id, customer_id=hold.customer, data=hold_data(hold), previous_data=previous,
        )
        return hold


def hold_capture(*, organization: Organization, hold_id: str, amount: int | None = None) -> Hold:
    """Capture a pending hold: release all of it and withdraw ``amount`` (default: the full hold).

    Locking: hold, then wallet. One database transaction posts ``holdRemoved`` and ``withdraw``.
    Emits ``hold.captured``."""
    _hold_accounts_prepare(organization=organization, hold_id=hold_id)
    with transaction.atomic():
        hold = _hold_locked(organization=organization, hold_id=hold_id)
        capture = hold.amount if amount is None or amount <= 0 else amount
        if capture > hold.amount:
            raise ValidationError(f"capture amount exceeds hold ({hold.amount})", param="amount",
                                  code="capture_exceeds_hold")
        legs, accounts = _hold_remove_legs(hold)
        released = transaction_post(
            organization=organization, type=BalanceTransaction.TYPE_HOLD_REMOVED, currency=hold.currency,
            amount=hold.amount, legs=legs, customer=hold.customer, idempotency_key=f"hold-release:{hold.pk}",
            notes=f"Captured hold {hold.public_id}", source_type="hold", source_id=hold.public_id,
        )
        captured = transaction_post(
            organization=organization, type=BalanceTransaction.TYPE_WITHDRAW, currency=hold.currency,
            amount=capture,
            legs=postings.usage(wallet=accounts[Account.KIND_WALLET],
                                revenue=accounts[Account.KIND_USAGE_REVENUE], amount=capture),
            customer=hold.customer, idempotency_key=f"hold-capture:{hold.pk}", tags="hold-capture",
            notes=f"Capture hold {hold.public_id} for {capture}", source_type="hold", source_id=hold.public_id,
        )
        previous = hold_data(hold)
        hold.status = Hold.STATUS_CAPTURED
        hold.captured_amount = capture
        hold.release_transaction = released
        hold.capture_transaction = captured
        hold.save(update_fields=["status", "captured_amount", "release_transaction", "capture_transaction",
                                 "updated_at"])
        webhook_services.event_publish(
            organization=organization, type="hold.captured", object_type="hold", object_id=hold.public_id,
            customer_id=hold.customer, data=hold_data(hold), previous_data=previous,
        )
        return hold


def holds_due(*, now: datetime | None = None, limit: int = 1000) -> list[tuple[int, str]]:
    now = now or timezone.now()
    return list(sweeps.holds_due_queryset(now).order_by("expires_at")
                .values_list("organization_id", "public_id")[:limit])


def hold_expire(*, organization_id: int, hold_id: str, now: datetime | None = None) -> Hold | None:
    """Release a pending hold whose time is up (sweeper task body). Harmless if already closed."""
    now = now or timezone.now()
    organization = Organization.objects.get(pk=organization_id)
    hold = Hold.objects.filter(organization=organization, public_id=hold_id).first()
    if hold is None or hold.status != Hold.STATUS_PENDING or hold.expires_at > now:
        return None
    try:
        return hold_release(organization=organization, hold_id=hold_id, expired=True)
    except Conflict:
        return None  # captured or released concurrently


def holds_expire(*, now: datetime | None = None) -> int:
    count = 0
    for organization_id, hold_id in holds_due(now=now, limit=100_000):
        if hold_expire(organization_id=organization_id, hold_id=hold_id, now=now) is not None:
            count += 1
    return count
