"""Wallet balance operations (the original's endpoints): usage, deposits, the starter credit, refunds, and the
expiry of deposit lots. Each is one balanced ``transaction_post`` (see ``ledger.services.posting`` for the
invariants: floors, idempotency, the fixed lock order)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from billing_project.core.errors import Conflict, IdempotencyConflict, NotFound, ValidationError
from billing_project.core.models import Organization
from ledger import postings
from ledger.models import Account, BalanceTransaction, Entry, Lot
from ledger.services import sweeps
from ledger.services.posting import accounts_resolve, transaction_post

STARTER_CREDIT_CENTS = 500
STARTER_CREDIT_DAYS = 30
STARTER_CREDIT_TAG = "starter-credit"
STARTER_CREDIT_CURRENCY = "usd"
USAGE_TAG = "api-usage"
REFUND_TAG = "refund"


def usage_record(*, organization: Organization, user: str, amount: int, currency: str,
                 notes: str = "", metadata: dict[str, Any] | None = None,
                 request_id: str | None = None) -> BalanceTransaction:
    """Withdraw the cost of one API call from the user's wallet.

    Idempotency: ``requestId`` — a retried call with the same id is charged once. Overdraft
    follows the wallet's ``allow_negative`` (default: allowed, as in the original)."""
    accounts = accounts_resolve(organization=organization, currency=currency, customer=user,
                                house_kinds=(Account.KIND_USAGE_REVENUE,))
    try:
        return transaction_post(
            organization=organization, type=BalanceTransaction.TYPE_WITHDRAW, currency=currency, amount=amount,
            legs=postings.usage(wallet=accounts[Account.KIND_WALLET],
                                revenue=accounts[Account.KIND_USAGE_REVENUE], amount=amount),
            customer=user, idempotency_key=f"usage:{request_id}" if request_id else None, tags=USAGE_TAG,
            notes=notes, metadata=metadata,
        )
    except IdempotencyConflict:
        raise IdempotencyConflict(f"requestId {request_id} was already recorded with a different user, amount "
                                  "or currency", param="requestId") from None


def deposit_create(*, organization: Organization, user: str, amount: int, currency: str, notes: str = "",
                   tags: str = "", expires_in_days: int | None = None, expires_in: timedelta | None = None,
                   metadata: dict[str, Any] | None = None, idempotency_key: str | None = None,
                   house_kind: str = Account.KIND_FUNDING) -> BalanceTransaction:
    """Credit the user's wallet; with ``expires_in_days`` > 0 (or a positive ``expires_in``) the deposit
    becomes an expiring lot with ``expires_at = now + that``."""
    if amount <= 0:
        raise ValidationError("amount must be positive", param="amount")
    if expires_in is None and expires_in_days is not None and expires_in_days > 0:
        expires_in = timedelta(days=expires_in_days)
    expires_at = timezone.now() + expires_in if expires_in is not None and expires_in > timedelta(0) else None
    accounts = accounts_resolve(organization=organization, currency=currency, customer=user,
                                house_kinds=(house_kind,))
    return transaction_post(
        organization=organization, type=BalanceTransaction.TYPE_DEPOSIT, currency=currency, amount=amount,
        legs=postings.deposit(funding=accounts[house_kind], wallet=accounts[Account.KIND_WALLET], amount=amount),
        customer=user, idempotency_key=idempotency_key, tags=tags,
        notes=notes or f"Deposit: {amount} cents {currency}", metadata=metadata, expires_at=expires_at,
    )


def starter_credit_grant(*, organization: Organization, user: str) -> BalanceTransaction:
    """Grant the $5.00 / 30-day welcome credit — once per user (idempotency key ``starter-credit:<user>``).

    Raises ``Conflict`` when the user already received it."""
    key = f"{STARTER_CREDIT_TAG}:{user}"
    existing = BalanceTransaction.objects.filter(organization=organization, idempotency_key=key).first()
    if existing is not None:
        raise Conflict(f"starter credit already granted to {user} ({existing.public_id})",
                       code="starter_credit_already_granted", param="user")
    txn = deposit_create(
        organization=organization, user=user, amount=STARTER_CREDIT_CENTS, currency=STARTER_CREDIT_CURRENCY,
        tags=STARTER_CREDIT_TAG, notes="Welcome credit: $5.00 USD (expires in 30 days)",
        expires_in_days=STARTER_CREDIT_DAYS, metadata={"creditType": "starter", "expiryDays": STARTER_CREDIT_DAYS},
        idempotency_key=key, house_kind=Account.KIND_PROMOTIONS,
    )
    if txn.replayed:  # lost a race with a concurrent grant
        raise Conflict(f"starter credit already granted to {user} ({txn.public_id})",
                       code="starter_credit_already_granted", param="user")
    return txn


def _refund_root(original: BalanceTransaction) -> BalanceTransaction | None:
    """A legacy refund counts against the transaction it refunds: a refund of a refund counts against
    the first one's original (so chaining refunds can never give back more than that original)."""
    if original.type == BalanceTransaction.TYPE_DEPOSIT and original.tags == REFUND_TAG and original.reverses_id:
        return original.reverses
    return original


def _refund_counter_kind(*, root: BalanceTransaction, user: str) -> str:
    """The house account a refund of ``root`` is paid from: the house side of ``root`` when it moved
    money between this user's wallet and one house account (a deposit: funding or promotions; usage:
    usage_revenue; an expiry: breakage), else usage_revenue (a billing correction)."""
    legs = list(Entry.objects.filter(transaction=root).select_related("account"))
    if len(legs) == 2:
        kinds = {(leg.account.kind, leg.account.customer) for leg in legs}
        house = [kind for kind, customer in kinds if customer == "" and kind in _REFUND_COUNTER_KINDS]
        if (Account.KIND_WALLET, user) in kinds and len(house) == 1:
            return house[0]
    return Account.KIND_USAGE_REVENUE


_REFUND_COUNTER_KINDS = (Account.KIND_FUNDING, Account.KIND_PROMOTIONS, Account.KIND_USAGE_REVENUE,
                         Account.KIND_BREAKAGE)


def refund_create(*, organization: Organization, user: str, amount: int, currency: str,
                  original_transaction_id: str, notes: str = "") -> BalanceTransaction:
    """Give money back to the user's wallet after an overcharge: a ``deposit`` tagged ``refund`` that
    reverses an earlier transaction of that user in that currency (usage, a deposit, any other).

    Posting: Dr the house side of the original (``_refund_counter_kind``) / Cr wallet. A refund of a
    refund counts against that refund's original. Locking: the original transaction row first
    (serialises refunds of it), then the wallet. Guards: the original exists in this organization,
    belongs to ``user``, is in ``currency``, and Σ refunds against it never exceeds its amount."""
    if amount <= 0:
        raise ValidationError("amount must be positive", param="amount")
    found = (BalanceTransaction.objects.select_related("reverses")
             .filter(organization=organization, public_id=original_transaction_id).first())
    root = _refund_root(found) if found is not None else None
    if root is None:
        raise NotFound("original transaction not found", param="originalTransactionId")
    if root.customer != user:  # owner and currency never change: checked before any lock or write
        raise ValidationError("original transaction does not belong to this user", param="originalTransactionId")
    if root.currency != currency:
        raise ValidationError(f"currency must match the original transaction ({root.currency})", param="currency")
    # Resolved before the transaction: creating an account while holding locks can deadlock.
    counter_kind = _refund_counter_kind(root=root, user=user)
    accounts = accounts_resolve(organization=organization, currency=currency, customer=user,
                                house_kinds=(counter_kind,))
    with transaction.atomic():
        original = BalanceTransaction.objects.select_for_update().get(pk=root.pk)
        refunded = (BalanceTransaction.objects.filter(reverses=original, tags=REFUND_TAG,
                                                      type=BalanceTransaction.TYPE_DEPOSIT)
                    .aggregate(total=Sum("amount"))["total"] or 0)
        if amount > original.amount - refunded:
            raise ValidationError(
                f"refund exceeds the refundable amount: {original.amount - refunded} cents remaining",
                param="amount", code="refund_exceeds_original",
            )
        return transaction_post(
            organization=organization, type=BalanceTransaction.TYPE_DEPOSIT, currency=currency, amount=amount,
            legs=postings.refund(counter=accounts[counter_kind], wallet=accounts[Account.KIND_WALLET],
                                 amount=amount),
            customer=user, tags=REFUND_TAG,
            notes=notes or f"Refund: {amount} cents {currency} (original tx: {original_transaction_id})",
            metadata={"refundType": "billing-correction", "originalTransactionId": original_transaction_id},
            reverses=original,
        )


# --- expiry -----------------------------------------------------------------------------------------

def lot_expire(*, lot_id: int, now: datetime | None = None) -> BalanceTransaction | None:
    """Post the expiry of a lot's unspent remainder (only what is not reserved by pending holds).

    Locking: wallet, then lot. Idempotent: a closed or not-yet-due lot is left alone; each piece is
    keyed ``expire:<lot>:<remaining before>``. Emits ``balance_transaction.created``."""
    now = now or timezone.now()
    lot = Lot.objects.filter(pk=lot_id).select_related("organization").first()
    if lot is None:
        return None
    with transaction.atomic():
        wallet = Account.objects.select_for_update().get(pk=lot.wallet_id)
        lot = Lot.objects.select_for_update().get(pk=lot_id)
        if lot.status != Lot.STATUS_OPEN or lot.expires_at > now or lot.remaining <= 0:
            return None
        amount = min(lot.remaining, max(0, wallet.balance - wallet.holds))
        if amount == 0:
            return None  # everything left is reserved by pending holds; retried on the next sweep
        breakage = accounts_resolve(organization=lot.organization, currency=wallet.currency,
                                    customer_kinds=(), house_kinds=(Account.KIND_BREAKAGE,))[Account.KIND_BREAKAGE]
        source = lot.transaction
        txn = transaction_post(
            organization=lot.organization, type=BalanceTransaction.TYPE_EXPIRE, currency=wallet.currency,
            amount=amount, legs=postings.expiry(wallet=wallet, breakage=breakage, amount=amount),
            customer=wallet.customer, idempotency_key=f"expire:{lot.pk}:{lot.remaining}", tags=source.tags,
            notes=f"Expired: unspent {amount} of {lot.amount} from {source.public_id}",
            source_type="balance_transaction", source_id=source.public_id, reverses=source, consume_lots=False,
        )
        lot.remaining -= amount
        if lot.remaining == 0:
            lot.status = Lot.STATUS_CLOSED
        lot.save(update_fields=["remaining", "status"])
        Account.objects.filter(pk=wallet.pk).update(expiring=F("expiring") - amount)
        return txn


def lots_due(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    now = now or timezone.now()
    return list(sweeps.lots_due_queryset(now).order_by("expires_at").values_list("pk", flat=True)[:limit])


def balances_expire(*, now: datetime | None = None) -> dict[str, Any]:
    """Expire every due lot once (``manage.py expire_balances``); amounts are totalled per currency."""
    summary: dict[str, Any] = {"lots": 0, "expired_transactions": 0, "expired": {}}
    for lot_id in lots_due(now=now, limit=100_000):
        summary["lots"] += 1
        txn = lot_expire(lot_id=lot_id, now=now)
        if txn is not None and not txn.replayed:
            summary["expired_transactions"] += 1
            summary["expired"][txn.currency] = summary["expired"].get(txn.currency, 0) + txn.amount
    return summary
