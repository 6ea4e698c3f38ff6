"""Ledger posting core: ``transaction_post``, the only code that writes ledger rows, and account resolution.

Invariants
- Every money movement is one ``BalanceTransaction`` with ≥ 2 entries, one currency, Σ debits =
  Σ credits (checked here and again by a deferred PostgreSQL trigger at commit). Entries are
  append-only; a correction is a new transaction that reverses an old one.
- A wallet's running ``balance`` / ``holds`` / ``expiring`` change only in ``transaction_post``, in the
  same database transaction as the entries, by an ``UPDATE … RETURNING`` that takes the wallet's row
  lock. ``ledger_audit`` recomputes them from entries.
- Floors: a transaction that lowers a wallet's available balance (balance − holds) may not take it
  below zero when the wallet forbids overdraft; placing a hold never may.
- Idempotency: a transaction with an ``idempotency_key`` exists at most once per organization
  (unique constraint); a replay with the same fingerprint returns the original, a different payload
  raises ``IdempotencyConflict``.
- Lock order, everywhere: (1) the source object (hold, original transaction), (2) wallets in
  ascending id, (3) lots. Nothing locks a wallet and then a hold.
- Every transaction publishes ``balance_transaction.created`` in the same database transaction.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from billing_project.core.errors import IdempotencyConflict, InsufficientFunds, ValidationError
from billing_project.core.models import Organization
from billing_project.core.money import INT64_MAX
from billing_project.core.times import rfc3339
from ledger import postings
from ledger.models import Account, BalanceTransaction, Entry, Lot
from ledger.postings import Leg
from webhooks import services as webhook_services

# --- accounts ---------------------------------------------------------------------------------------

def _normal(kind: str) -> str:
    return Account.NORMAL_BY_KIND[kind]


def accounts_resolve(*, organization: Organization, currency: str, customer: str = "",
                     customer_kinds: tuple[str, ...] = (Account.KIND_WALLET,),
                     house_kinds: tuple[str, ...] = ()) -> dict[str, Account]:
    """Fetch (creating on first use) a customer's accounts and house accounts in one currency.

    One SELECT on the hot path; creation is race-safe through the unique constraint."""
    found = _accounts_fetch(organization=organization, currency=currency, customer=customer,
                            customer_kinds=customer_kinds, house_kinds=house_kinds)
    for kind in (*customer_kinds, *house_kinds):
        if kind in found:
            continue
        defaults: dict[str, Any] = {"normal_balance": _normal(kind)}
        if kind == Account.KIND_WALLET:
            defaults["allow_negative"] = settings.LEDGER_USAGE_MAY_OVERDRAW
        if kind == Account.KIND_CUSTOMER_BALANCE:
            # A negative customer balance is a debt (collected on the next invoice); only manual adjustments
            # may create one: ``customer_balance_services.customer_balance_post`` keeps the floor.
            defaults["allow_negative"] = True
        if kind == Account.KIND_HOLDS:
            wallet = found.get(Account.KIND_WALLET) or accounts_resolve(
                organization=organization, currency=currency, customer=customer)[Account.KIND_WALLET]
            defaults["wallet"] = wallet
        found[kind], _ = Account.objects.get_or_create(
            organization=organization, kind=kind, currency=currency,
            customer=customer if kind in Account.CUSTOMER_KINDS else "", defaults=defaults,
        )
    return found


_ACCOUNT_FIELDS = [f.attname for f in Account._meta.concrete_fields]
_SELECT_ACCOUNTS = (
    f"SELECT {', '.join(_ACCOUNT_FIELDS)} FROM ledger_account"
    " WHERE organization_id = %s AND currency = %s"
    "   AND ((customer = '' AND kind = ANY(%s)) OR (customer = %s AND kind = ANY(%s)))"
)


def accounts_find(*, organization: Organization, currency: str, customer: str, customer_kinds: tuple[str, ...],
                  house_kinds: tuple[str, ...] = ()) -> dict[str, Account]:
    """The accounts of these kinds that exist (none created): one plain SELECT, safe inside a transaction that
    holds locks. A caller missing one resolves it with ``accounts_resolve`` outside its transaction."""
    return _accounts_fetch(organization=organization, currency=currency, customer=customer,
                           customer_kinds=customer_kinds, house_kinds=house_kinds)


def _accounts_fetch(*, organization, currency, customer, customer_kinds, house_kinds) -> dict[str, Account]:
    # Plain SQL: this runs on every posting and the ORM's query building costs more than the query.
    with connection.cursor() as cursor:
        cursor.execute(_SELECT_ACCOUNTS, [organization.pk, currency, list(house_kinds), customer,
                                          list(customer_kinds)])
        rows = cursor.fetchall()
    accounts = [Account.from_db(connection.alias, _ACCOUNT_FIELDS, row) for row in rows]
    return {a.kind: a for a in accounts}


def wallet_set_overdraft(*, wallet: Account, allow_negative: bool) -> Account:
    """Allow or forbid usage overdrawing this wallet (an explicit per-account property).

    Locking: the wallet row. Emits ``account.updated`` when the setting changes."""
    if wallet.kind != Account.KIND_WALLET:
        raise ValidationError("only wallets have an overdraft setting", param="account")
    with transaction.atomic():
        locked = Account.objects.select_for_update(of=("self",)).select_related("organization").get(pk=wallet.pk)
        previous = locked.allow_negative
        wallet.allow_negative = allow_negative  # the caller's instance stays current
        if previous != allow_negative:
            locked.allow_negative = allow_negative
            locked.save(update_fields=["allow_negative", "updated_at"])
            webhook_services.event_publish(
                organization=locked.organization, type="account.updated", object_type="account",
                object_id=str(wallet.pk), customer_id=wallet.customer,
                data={"user": wallet.customer, "currency": wallet.currency, "allowNegative": allow_negative},
                previous_data={"allowNegative": previous},
            )
    return wallet


# --- posting ----------------------------------------------------------------------------------------

def _fingerprint(*, type: str, currency: str, amount: int, customer: str, legs: list[Leg]) -> str:
    parts = [type, currency, str(amount), customer]
    parts += sorted(f"{leg.account.pk}:{leg.direction}:{leg.amount}" for leg in legs)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _validate_legs(*, organization: Organization, currency: str, legs: list[Leg]) -> None:
    if len(legs) < 2:
        raise ValidationError("ledger: a transaction needs at least two entries")
    debits = credits = 0
    for leg in legs:
        if isinstance(leg.amount, bool) or not isinstance(leg.amount, int) or not 0 < leg.amount <= INT64_MAX:
            raise ValidationError("ledger: entry amounts must be positive 64-bit integers", param="amount")
        if leg.account.currency != currency:
            raise ValidationError("ledger: entries must all be in the transaction's currency", param="currency")
        if leg.account.organization_id != organization.pk:
            raise ValidationError("ledger: entries must belong to the transaction's organization")
        if leg.direction == Entry.DEBIT:
            debits += leg.amount
        elif leg.direction == Entry.CREDIT:
            credits += leg.amount
        else:
            raise ValidationError(f"ledger: unknown direction {leg.direction!r}")
    if debits != credits:
        raise ValidationError(f"ledger: postings not balanced (debits {debits}, credits {credits})")


def _replay(existing: BalanceTransaction, fingerprint: str) -> BalanceTransaction:
    if existing.fingerprint != fingerprint:
        raise IdempotencyConflict(
            "idempotency key already used for a different ledger transaction", param="idempotencyKey"
        )
    existing.replayed = True
    return existing


def transaction_data(txn: BalanceTransaction) -> dict[str, Any]:
    """The JSON shape of a balance transaction (event payloads, admin)."""
    data = {
        "id": txn.public_id,
        "type": txn.type,
        "user": txn.customer,
        "amount": txn.amount,
        "currency": txn.currency,
        "tags": txn.tags,
        "notes": txn.notes,
        "metadata": txn.metadata,
        "createdAt": rfc3339(txn.created_at),
    }
    if txn.expires_at:
        data["expiresAt"] = rfc3339(txn.expires_at)
    if txn.reverses_id:
        data["reverses"] = txn.reverses.public_id
    if txn.source_type:
        data["sourceType"], data["sourceId"] = txn.source_type, txn.source_id
    return data


def transaction_post(*, organization: Organization, type: str, currency: str, amount: int, legs: list[Leg],
                     customer: str = "", idempotency_key: str | None = None, tags: str = "", notes: str = "",
                     metadata: dict[str, Any] | None = None, source_type: str = "", source_id: str = "",
                     reverses: BalanceTransaction | None = None, expires_at: datetime | None = None,
                     consume_lots: bool = True, idempotency_checked: bool = False) -> BalanceTransaction:
    """Post one balanced transaction and update the running balances of the wallets it touches.

    Locking: each touched wallet row, ascending id, via UPDATE … RETURNING; then its open lots.
    Idempotency: ``idempotency_key`` unique per organization; replays return the original with
    ``.replayed = True``; ``idempotency_checked``: the caller already looked the key up, in this transaction,
    under locks every posting with that key takes first (``burn_credits``: the grants), so it is not looked up
    again (a unique violation still replays). Side effects: ``balance_transaction.created`` in the same
    transaction."""
    _validate_legs(organization=organization, currency=currency, legs=legs)
    fingerprint = _fingerprint(type=type, currency=currency, amount=amount, customer=customer, legs=legs)
    if idempotency_key and not idempotency_checked:
        existing = BalanceTransaction.objects.filter(organization=organization,
                                                     idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replay(existing, fingerprint)
    try:
        with transaction.atomic():
            txn = _post_locked(
                organization=organization, type=type, currency=currency, amount=amount, legs=legs,
                customer=customer, idempotency_key=idempotency_key, fingerprint=fingerprint, tags=tags,
                notes=notes, metadata=metadata or {}, source_type=source_type, source_id=source_id,
                reverses=reverses, expires_at=expires_at, consume_lots=consume_lots,
            )
    except IntegrityError as exc:
        if idempotency_key and "ledger_txn_idem_uniq" in str(exc):
            # A concurrent request with the same key committed first (we waited on its wallet lock).
            existing = BalanceTransaction.objects.get(organization=organization, idempotency_key=idempotency_key)
            return _replay(existing, fingerprint)
        raise
    txn.replayed = False
    return txn


_UPDATE_WALLET = """
UPDATE ledger_account
   SET balance = balance + %s, holds = holds + %s, expiring = expiring + %s, updated_at = now()
 WHERE id = %s
RETURNING balance, holds, expiring, allow_negative
"""

_SPEND_EXPIRING = "UPDATE ledger_account SET expiring = expiring - %s WHERE id = %s"

_JOURNAL_CTES = """
txn AS (
    INSERT INTO ledger_balancetransaction
        (public_id, organization_id, type, customer, currency, amount, tags, notes, metadata, idempotency_key,
         fingerprint, source_type, source_id, reverses_id, expires_at, created_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s)
    RETURNING id
), legs AS (
    INSERT INTO ledger_entry (transaction_id, account_id, direction, amount, currency)
    SELECT txn.id, leg.account_id, leg.direction, leg.amount, %s
      FROM txn, unnest(%s::bigint[], %s::text[], %s::bigint[]) AS leg(account_id, direction, amount)
)"""

# The last (highest-id) wallet's locked UPDATE travels in the same statement as the journal insert: one
# round trip for the common one-wallet posting. A floor violation found in the returned row raises, which
# rolls the whole transaction back.
# The ``balance_transaction.created`` event (webhooks' own INSERT) rides in the same statement too.
_POST_WITH_WALLET = f"""
WITH wallet AS ({_UPDATE_WALLET}), {_JOURNAL_CTES}, event AS ({webhook_services.EVENT_INSERT_SQL})
SELECT txn.id, wallet.balance, wallet.holds, wallet.expiring, wallet.allow_negative FROM txn, wallet
"""
_POST_JOURNAL_ONLY = f"WITH {_JOURNAL_CTES}, event AS ({webhook_services.EVENT_INSERT_SQL}) SELECT txn.id FROM txn"


@dataclass
class _Running:
    """Per-wallet bookkeeping while a posting is applied under the wallet locks."""

    currency: str
    expires_at: datetime | None
    consume_lots: bool
    consume: dict[int, int]
    lots_spent: dict[int, int]

    def params(self, wallet_id: int, deltas: tuple[int, int]) -> list[int]:
        d_balance, d_holds = deltas
        return [d_balance, d_holds, self.expiring_delta(d_balance), wallet_id]

    def expiring_delta(self, d_balance: int) -> int:
        return d_balance if (self.expires_at is not None and d_balance > 0) else 0

    def apply(self, cursor, wallet_id: int, deltas: tuple[int, int], row) -> None:
        """Check the floor on the wallet's new figures and note lot work (caller holds the lock)."""
        if row is None:  # accounts are never deleted (PROTECT); reaching this is a bug, not bad input
            raise RuntimeError(f"ledger: wallet {wallet_id} vanished during a posting")
        d_balance, d_holds = deltas
        balance, holds, expiring, allow_negative = row
        d_expiring = self.expiring_delta(d_balance)
        if d_expiring and expiring > max(0, balance):
            # The part of an expiring deposit that paid down an overdrawn balance is spent at once: left
            # in an open lot, its expiry would later take money deposited after it.
            self.lots_spent[wallet_id] = min(d_expiring, expiring - max(0, balance))
            cursor.execute(_SPEND_EXPIRING, [self.lots_spent[wallet_id], wallet_id])
        d_available = d_balance - d_holds
        if d_available < 0 and balance - holds < 0 and (not allow_negative or d_holds > 0):
            raise InsufficientFunds(
                f"insufficient available balance: {balance - holds - d_available} {self.currency} available, "
                f"{-d_available} requested",
                param="amount",
            )
        if self.consume_lots and d_balance < 0 and expiring > 0:
            self.consume[wallet_id] = min(expiring, -d_balance)


@contextmanager
def _balance_bounds():
    """A running balance (or its holds) pushed past a signed 64-bit integer fails the wallet's UPDATE
    (bigint): refuse the write as the request's ``amount`` (400), so no total we answer ever leaves int64.
    The caller's atomic block rolls everything back."""
    try:
        yield
    except DataError as exc:
        if "out of range" not in str(exc):
            raise
        raise ValidationError("amount would take the balance beyond a signed 64-bit integer",
                              param="amount", code="out_of_range") from exc


def _post_locked(*, organization, type, currency, amount, legs, customer, idempotency_key, fingerprint, tags,
                 notes, metadata, source_type, source_id, reverses, expires_at, consume_lots) -> BalanceTransaction:
    deltas = postings.running_deltas(legs)
    running = _Running(currency=currency, expires_at=expires_at, consume_lots=consume_lots, consume={},
                       lots_spent={})
    wallet_ids = sorted(deltas)
    txn = BalanceTransaction(
        organization=organization, type=type, customer=customer, currency=currency, amount=amount, tags=tags,
        notes=notes, metadata=metadata, idempotency_key=idempotency_key, fingerprint=fingerprint,
        source_type=source_type, source_id=source_id, reverses=reverses, expires_at=expires_at,
        created_at=timezone.now(),
    )
    journal = [
        txn.public_id, organization.pk, type, customer, currency, amount, tags, notes, json.dumps(txn.metadata),
        idempotency_key, fingerprint, source_type, source_id, txn.reverses_id, expires_at, txn.created_at,
        currency, [leg.account.pk for leg in legs], [leg.direction for leg in legs], [leg.amount for leg in legs],
    ]
    _event, event_params = webhook_services.event_prepare(
        organization=organization, type="balance_transaction.created", object_type="balance_transaction",
        object_id=txn.public_id, customer_id=customer, data=transaction_data(txn),
    )
    with connection.cursor() as cursor, _balance_bounds():
        for wallet_id in wallet_ids[:-1]:  # ascending id: the fixed lock order
            cursor.execute(_UPDATE_WALLET, running.params(wallet_id, deltas[wallet_id]))
            running.apply(cursor, wallet_id, deltas[wallet_id], cursor.fetchone())
        if wallet_ids:
            last = wallet_ids[-1]
            cursor.execute(_POST_WITH_WALLET, running.params(last, deltas[last]) + journal + event_params)
            row = cursor.fetchone()
            running.apply(cursor, last, deltas[last], row[1:] if row else None)
        else:
            cursor.execute(_POST_JOURNAL_ONLY, journal + event_params)
            row = cursor.fetchone()
    txn.pk = row[0]
    txn._state.adding = False
    txn._state.db = connection.alias

    if expires_at is not None:
        for wallet_id, (d_balance, _d_holds) in deltas.items():
            if d_balance > 0:
                remaining = d_balance - running.lots_spent.get(wallet_id, 0)
                Lot.objects.create(organization=organization, wallet_id=wallet_id, transaction=txn,
                                   amount=d_balance, remaining=remaining, expires_at=expires_at,
                                   status=Lot.STATUS_OPEN if remaining else Lot.STATUS_CLOSED)
    for wallet_id, to_consume in running.consume.items():
        _lots_consume(wallet_id=wallet_id, amount=to_consume)
    return txn


def _lots_consume(*, wallet_id: int, amount: int) -> None:
    """Spend ``amount`` from the wallet's open lots, soonest expiry first (caller holds the wallet lock)."""
    left = amount
    lots = Lot.objects.select_for_update().filter(wallet_id=wallet_id, status=Lot.STATUS_OPEN,
                                                  remaining__gt=0).order_by("expires_at", "pk")
    for lot in lots:
        take = min(lot.remaining, left)
        lot.remaining -= take
        if lot.remaining == 0:
            lot.status = Lot.STATUS_CLOSED
        lot.save(update_fields=["remaining", "status"])
        left -= take
        if left == 0:
            break
    Account.objects.filter(pk=wallet_id).update(expiring=F("expiring") - (amount - left))


# --- balance operations (the original's endpoints) --------------------------------------------------
