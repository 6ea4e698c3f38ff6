"""Credit grants: prepaid allowances kept on the ledger (credits.md, with its weaknesses fixed).

Invariants
- Each grant owns one credit-normal ``credit_grant`` account. Creating, burning, voiding and expiring a
  grant are balanced ledger transactions through ``ledger.services.transaction_post``; the grant's
  ``remaining_cents`` always equals Σ credits − Σ debits of its account (``ledger_audit`` checks), so
  Σ remaining = granted − burned − voided − expired, and never goes below zero (check constraint).
- Burn order is deterministic: priority ascending, then grants with an expiry before grants without,
  earliest expiry first, then oldest grant (creation, id). Only grants in the charge's currency burn;
  a charge with a meter id uses grants eligible for that meter, a charge without one only unrestricted
  grants.
- Lock order: a customer's usable grants by ascending id, before any wallet (``transaction_post``
  locks wallets after). ``burn_credits`` is atomic and keyed: a retried burn with the same key returns
  the first result and never burns twice; a different request under the same key is a 409.
- Every state change publishes ``credit_grant.*`` in the same database transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.errors import IdempotencyConflict, NotFound, ValidationError
from billing_project.core.models import Organization
from billing_project.core.money import INT64_MAX
from billing_project.core.times import rfc3339
from ledger import postings
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction, CreditGrant, Entry
from ledger.services import sweeps
from webhooks import services as webhook_services

TAG_PURCHASED = "purchased"


@dataclass(frozen=True)
class Charge:
    """An amount to pay from credits; ``meter_id`` restricts which grants may pay it."""

    amount: int
    meter_id: str = ""


@dataclass(frozen=True)
class Allocation:
    grant_id: str
    meter_id: str
    amount: int


@dataclass
class BurnResult:
    requested: int
    applied: int
    allocations: list[Allocation] = field(default_factory=list)
    transaction: BalanceTransaction | None = None
    replayed: bool = False
    locked_grants: list[CreditGrant] | None = None  # a locking preview's grants, for the burn that follows

    @property
    def remaining(self) -> int:
        """The overage: what credits did not cover (the seed's return value)."""
        return self.requested - self.applied

    def applied_for(self, meter_id: str) -> int:
        return sum(a.amount for a in self.allocations if a.meter_id == meter_id)


def grant_data(grant: CreditGrant, *, now: datetime | None = None) -> dict[str, Any]:
    """The JSON shape of a grant (API responses and event payloads)."""
    data: dict[str, Any] = {
        "id": grant.public_id,
        "userId": grant.customer,
        "name": grant.name,
        "amountCents": grant.amount_cents,
        # The unburned amount, as in the original: frozen when the grant was voided or expired (the ledger
        # moved that remainder out, so the grant's account and ``remaining_cents`` are 0 by then).
        "remainingCents": grant_unburned_cents(grant),
        "currency": grant.currency,
        "priority": grant.priority,
        "eligibility": list(grant.eligibility or []),
        "tags": grant.tags,
        "metadata": grant.metadata,
        "effectiveAt": rfc3339(grant.effective_at),
        "voided": grant.voided,
        "active": grant.is_active(now or timezone.now()),
        "createdAt": rfc3339(grant.created_at),
    }
    if grant.expires_at:
        data["expiresAt"] = rfc3339(grant.expires_at)
    if grant.voided_at:
        data["voidedAt"] = rfc3339(grant.voided_at)
        data["voidedCents"] = grant.voided_cents
    if grant.expired_at:
        data["expiredAt"] = rfc3339(grant.expired_at)
        data["expiredCents"] = grant.expired_cents
    return data


def grant_unburned_cents(grant: CreditGrant) -> int:
    """``amountCents`` − burned: what is left to use while the grant is open; for a voided or expired grant
    what was left when it closed (``voided_cents`` / ``expired_cents``), not what is usable now."""
    return grant.remaining_cents + grant.voided_cents + grant.expired_cents


def _origin_kind(tags: str) -> str:
    return Account.KIND_FUNDING if tags == TAG_PURCHASED else Account.KIND_PROMOTIONS


def grant_funding_kind(tags: str) -> str:
    """The house account kind that funded a grant with these tags (where a void sends its remainder)."""
    return _origin_kind(tags)


def _validate_charges(charges: Sequence[Charge]) -> None:
    for index, charge in enumerate(charges):
        if isinstance(charge.amount, bool) or not isinstance(charge.amount, int):
            raise ValidationError("charge amounts must be integers", param=f"charges[{index}].amount")


# --- create ------------------------------------------------------------------------------------------

def _credit_total_check(*, organization: Organization, user: str, currency: str, amount_cents: int) -> None:
    """The user's credit balance in ``currency`` (Σ unburned grants) must stay a signed 64-bit integer, as
    every total the API answers: a grant that would push it past is refused (400 naming ``amountCents``).
    A transaction-scoped advisory lock per (organization, user, currency) makes concurrent grants take
    turns at this check; it is held only until the grant commits."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                       [f"credit-total:{organization.pk}:{user}:{currency}"])
    total = (CreditGrant.objects.filter(organization=organization, customer=user, currency=currency,
                                        remaining_cents__gt=0)
             .aggregate(total=Sum("remaining_cents", default=0))["total"])
    if total + amount_cents > INT64_MAX:
        raise ValidationError("amountCents would take the credit balance beyond a signed 64-bit integer",
                              param="amountCents", code="out_of_range")


def grant_issue(*, organization: Organization, customer: str, currency: str, amount_cents: int, funding: Account,
                txn_type: str, name: str, priority: int, eligibility: Iterable[str], tags: str,
                metadata: dict[str, Any], effective_at: datetime, expires_at: datetime | None, now: datetime,
                notes: str = "", idempotency_key: str | None = None) -> CreditGrant:
    """The one way a grant comes to exist: a new grant account, the ``CreditGrant`` row and its funding
    posting (Dr ``funding`` / Cr the grant account), ``credit_grant.created``. Call inside a transaction; the
    new rows are its only locks (``credit_grant_create``; credit given back by a credit note)."""
    account = Account.objects.create(organization=organization, kind=Account.KIND_CREDIT_GRANT, customer=customer,
                                     currency=currency, normal_balance=Account.NORMAL_CREDIT, allow_negative=False)
    grant = CreditGrant(organization=organization, account=account, customer=customer, name=name, currency=currency,
                        amount_cents=amount_cents, remaining_cents=amount_cents, priority=priority,
                        eligibility=sorted(set(eligibility)), tags=tags, metadata=metadata,
                        effective_at=effective_at, expires_at=expires_at)
    grant.grant_transaction = ledger_services.transaction_post(
        organization=organization, type=txn_type, currency=currency, amount=amount_cents,
        legs=postings.transfer(debit=funding, credit=account, amount=amount_cents), customer=customer, tags=tags,
        notes=f"Credit grant {grant.public_id}: {notes}".rstrip(": "), idempotency_key=idempotency_key,
        source_type="credit_grant", source_id=grant.public_id,
    )
    grant.save()
    webhook_services.event_publish(organization=organization, type="credit_grant.created",
                                   object_type="credit_grant", object_id=grant.public_id, customer_id=customer,
                                   data=grant_data(grant, now=now))
    return grant


def credit_grant_create(*, organization: Organization, user: str, amount_cents: int, currency: str = "usd",
                        name: str = "", priority: int = 0, eligibility: Iterable[str] = (), tags: str = "",
                        metadata: dict[str, Any] | None = None, effective_at: datetime | None = None,
                        expires_at: datetime | None = None, actor: str = "", reason: str = "") -> CreditGrant:
    """Grant ``amount_cents`` of credit: a new grant account credited from promotions (or funding when
    tagged ``purchased``). No locks beyond the new rows. Emits ``credit_grant.created``; with ``actor``
    (a back-office grant) also writes an audit record with ``reason``, in the same transaction."""
    user = (user or "").strip()
    if not user:
        raise ValidationError("userId is required", param="userId")
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
        raise ValidationError("amountCents must be positive", param="amountCents")
    now = timezone.now()
    effective_at = effective_at or now
    # An ``expires_at`` at or before ``effective_at`` is accepted as in the original (a zero or negative
    # ``expiresIn``): the grant is never usable and the expiry sweeper posts it to breakage.
    with transaction.atomic():
        _credit_total_check(organization=organization, user=user, currency=currency, amount_cents=amount_cents)
        origin_kind = _origin_kind(tags)
        origin = ledger_services.accounts_resolve(organization=organization, currency=currency, customer_kinds=(),
                                                  house_kinds=(origin_kind,))[origin_kind]
        grant = grant_issue(organization=organization, customer=user, currency=currency, amount_cents=amount_cents,
                            funding=origin, txn_type=BalanceTransaction.TYPE_CREDIT_GRANT, name=name,
                            priority=priority, eligibility=eligibility, tags=tags, metadata=metadata or {},
                            effective_at=effective_at, expires_at=expires_at, now=now,
                            notes=name)
        if actor:
            core_services.audit_record(organization=organization, actor=actor, action="credit_grant.create",
                                       object_type="credit_grant", object_id=grant.public_id, reason=reason,
                                       data={"amountCents": amount_cents, "currency": currency})
    return grant


# --- burn --------------------------------------------------------------------------------------------

def _burn_order_key(grant: CreditGrant) -> tuple:
    return (grant.priority, grant.expires_at is None, grant.expires_at or grant.created_at, grant.created_at,
            grant.pk)


def _allocate(grants: list[CreditGrant], charges: Sequence[Charge], now: datetime) -> list[Allocation]:
    """Plan a burn (pure): charges in the order given, each taking from its eligible grants in burn order.
    ``grants`` are not modified."""
    left = {g.pk: g.remaining_cents for g in grants}
    usable = sorted((g for g in grants if g.is_active(now)), key=_burn_order_key)
    allocations: list[Allocation] = []
    for charge in charges:
        need = charge.amount
        for grant in usable:
            if need <= 0:
                break
            if left[grant.pk] <= 0 or not grant.is_eligible(charge.meter_id):
                continue
            take = min(left[grant.pk], need)
            left[grant.pk] -= take
            need -= take
            allocations.append(Allocation(grant_id=grant.public_id, meter_id=charge.meter_id, amount=take))
    return allocations


def _usable_grants(*, organization: Organization, user: str, currency: str, lock: bool) -> list[CreditGrant]:
    qs = CreditGrant.objects.filter(organization=organization, customer=user, currency=currency,
                                    remaining_cents__gt=0, voided_at__isnull=True).select_related("account")
    qs = qs.order_by("pk")
    if lock:
        qs = qs.select_for_update(of=("self",))
    return list(qs)


def _grants_locked(*, organization: Organization, user: str, currency: str,
                   already: list[CreditGrant] | None) -> list[CreditGrant]:
    """The usable grants, locked: ``already`` when a locking preview took them in this transaction."""
    if already is not None:
        return already
    return _usable_grants(organization=organization, user=user, currency=currency, lock=True)


def burn_credits_preview(*, organization: Organization, user: str, currency: str, charges: Sequence[Charge],
                         now: datetime | None = None, lock: bool = False) -> BurnResult:
    """What ``burn_credits`` would take right now, without writing anything.

    ``lock=True`` (inside the caller's transaction) takes the grants' row locks first, so a
    ``burn_credits`` later in the same transaction takes exactly this."""
    _validate_charges(charges)
    now = now or timezone.now()
    grants = _usable_grants(organization=organization, user=user, currency=currency, lock=lock)
    allocations = _allocate(grants, [c for c in charges if c.amount > 0], now)
    return BurnResult(requested=sum(c.amount for c in charges), applied=sum(a.amount for a in allocations),
                      allocations=allocations, locked_grants=grants if lock else None)


def _request_fingerprint(user: str, currency: str, charges: Sequence[Charge]) -> str:
    raw = json.dumps([user, currency, [[c.amount, c.meter_id] for c in charges]])
    return hashlib.sha256(raw.encode()).hexdigest()


def _burn_replay(txn: BalanceTransaction, fingerprint: str, requested: int) -> BurnResult:
    if txn.metadata.get("requestFingerprint") != fingerprint:
        raise IdempotencyConflict("idempotency key already used for a different credit burn",
                                  param="idempotencyKey")
    allocations = [Allocation(grant_id=a["grantId"], meter_id=a["meterId"], amount=a["amount"])
                   for a in txn.metadata.get("allocations", [])]
    return BurnResult(requested=requested, applied=txn.amount, allocations=allocations, transaction=txn,
                      replayed=True)


def burn_credits(*, organization: Organization, user: str, currency: str, charges: Sequence[Charge],
                 idempotency_key: str, settle_to: Account | None = None, now: datetime | None = None,
                 source_type: str = "", source_id: str = "",
                 locked_grants: list[CreditGrant] | None = None) -> BurnResult:
    """Burn the customer's credits for ``charges`` (the seed's ``BurnCredits``); returns what was applied
    and the overage (``remaining``).

    Locking: the customer's usable grants in ``currency``, ascending id, then nothing else (the grant
    accounts are not wallets). Atomic: one ``credit_burn`` transaction debits every burned grant account
    and credits ``settle_to`` (default: house ``credits_applied``). Idempotency: ``idempotency_key`` is
    required; a retry returns the first result (``replayed``). Emits ``credit_grant.burned`` per grant.
    ``locked_grants``: the ``locked_grants`` of a ``burn_credits_preview(lock=True)`` of the same customer and
    currency earlier in the caller's transaction (still locked, unchanged since): not selected again."""
    if not idempotency_key:
        raise ValidationError("an idempotency key is required to burn credits", param="idempotencyKey")
    _validate_charges(charges)
    requested = sum(c.amount for c in charges)
    key = f"credit-burn:{idempotency_key}"
    fingerprint = _request_fingerprint(user, currency, charges)
    now = now or timezone.now()
    with transaction.atomic():
        grants = _grants_locked(organization=organization, user=user, currency=currency, already=locked_grants)
        # Checked under the grant locks: a concurrent burn with the same key has committed or not started.
        existing = BalanceTransaction.objects.filter(organization=organization, idempotency_key=key).first()
        if existing is not None:
            return _burn_replay(existing, fingerprint, requested)
        allocations = _allocate(grants, [c for c in charges if c.amount > 0], now)
        applied = sum(a.amount for a in allocations)
        if applied == 0:
            return BurnResult(requested=requested, applied=0)
        by_public = {g.public_id: g for g in grants}
        per_grant: dict[str, int] = {}
        for allocation in allocations:
            per_grant[allocation.grant_id] = per_grant.get(allocation.grant_id, 0) + allocation.amount
        if settle_to is None:
            settle_to = ledger_services.accounts_resolve(
                organization=organization, currency=currency, customer_kinds=(),
                house_kinds=(Account.KIND_CREDITS_APPLIED,))[Account.KIND_CREDITS_APPLIED]
        takes = [(by_public[gid].account, amount) for gid, amount in sorted(per_grant.items(),
                                                                               key=lambda kv: by_public[kv[0]].pk)]
        txn = ledger_services.transaction_post(
            organization=organization, type=BalanceTransaction.TYPE_CREDIT_BURN, currency=currency, amount=applied,
            legs=postings.credit_burn(takes=takes, settle=settle_to), customer=user, idempotency_key=key,
            idempotency_checked=True,
            notes=f"Credits applied: {applied} of {requested}",
            metadata={"requestFingerprint": fingerprint, "requested": requested,
                      "allocations": [{"grantId": a.grant_id, "meterId": a.meter_id, "amount": a.amount}
                                      for a in allocations]},
            source_type=source_type, source_id=source_id,
        )
        for gid, amount in per_grant.items():
            grant = by_public[gid]
            previous = grant.remaining_cents
            grant.remaining_cents -= amount
            grant.save(update_fields=["remaining_cents", "updated_at"])
            data = grant_data(grant, now=now) | {"burnedCents": amount, "transactionId": txn.public_id}
            webhook_services.event_publish(organization=organization, type="credit_grant.burned",
                                           object_type="credit_grant", object_id=gid, customer_id=user, data=data,
                                           previous_data={"remainingCents": previous})
    return BurnResult(requested=requested, applied=applied, allocations=allocations, transaction=txn)


# --- void and expiry ---------------------------------------------------------------------------------

def _close_posting(*, grant: CreditGrant, type: str, house_kind: str, notes: str) -> BalanceTransaction | None:
    """Post the grant's unburned remainder away to ``house_kind`` (caller holds the grant lock)."""
    if grant.remaining_cents <= 0:
        return None
    house = ledger_services.accounts_resolve(organization=grant.organization, currency=grant.currency,
                                             customer_kinds=(), house_kinds=(house_kind,))[house_kind]
    return ledger_services.transaction_post(
        organization=grant.organization, type=type, currency=grant.currency, amount=grant.remaining_cents,
        legs=postings.transfer(debit=grant.account, credit=house, amount=grant.remaining_cents),
        customer=grant.customer, idempotency_key=f"{type}:{grant.public_id}", notes=notes,
        source_type="credit_grant", source_id=grant.public_id, reverses=grant.grant_transaction,
    )


def credit_grant_void(*, organization: Organization, grant_id: str, actor: str = "", reason: str = "") -> CreditGrant:
    """Void a grant: its unburned remainder is reversed to the house account that funded it.

    Locking: the grant row. Guard: already voided → 400 (the original's status). Writes an audit record
    (actor, reason, amount) and emits ``credit_grant.voided`` with ``voidedCents``."""
    with transaction.atomic():
        grant = (CreditGrant.objects.select_for_update(of=("self",))
                 .select_related("organization", "account", "grant_transaction")
                 .filter(organization=organization, public_id=grant_id).first())
        if grant is None:
            raise NotFound("credit grant not found", param="id")
        if grant.voided:
            raise ValidationError("grant is already voided", code="grant_already_voided", param="id")
        previous = grant_data(grant)
        forfeited = grant.remaining_cents
        txn = _close_posting(grant=grant, type=BalanceTransaction.TYPE_CREDIT_VOID, house_kind=_origin_kind(grant.tags),
                             notes=f"Voided credit grant {grant.public_id}: {forfeited} forfeited"
                                   + (f" ({reason})" if reason else ""))
        grant.voided_at = timezone.now()
        grant.voided_cents = forfeited
        grant.remaining_cents = 0
        grant.void_reason = reason
        grant.voided_by = actor
        grant.save(update_fields=["voided_at", "voided_cents", "remaining_cents", "void_reason", "voided_by",
                                  "updated_at"])
        core_services.audit_record(organization=organization, actor=actor, action="credit_grant.void",
                                   object_type="credit_grant", object_id=grant.public_id, reason=reason,
                                   data={"voidedCents": forfeited, "transactionId": txn.public_id if txn else None})
        webhook_services.event_publish(organization=organization, type="credit_grant.voided",
                                       object_type="credit_grant", object_id=grant.public_id,
                                       customer_id=grant.customer, data=grant_data(grant), previous_data=previous)
    return grant


def credit_grants_due(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    now = now or timezone.now()
    return list(sweeps.credit_grants_due_queryset(now).order_by("expires_at").values_list("pk", flat=True)[:limit])


def credit_grant_expire(*, grant_pk: int, now: datetime | None = None) -> CreditGrant | None:
    """Post the expiry of a grant's unburned remainder to breakage (sweeper task body).

    Locking: the grant row. Idempotent: a grant voided, already expired or not yet due is left alone.
    Emits ``credit_grant.expired`` with ``expiredCents``."""
    now = now or timezone.now()
    with transaction.atomic():
        grant = (CreditGrant.objects.select_for_update(of=("self",))
                 .select_related("organization", "account", "grant_transaction")
                 .filter(pk=grant_pk).first())
        if (grant is None or grant.voided or grant.expired_at is not None or grant.expires_at is None
                or grant.expires_at >= now or grant.remaining_cents <= 0):
            return None
        previous = grant_data(grant, now=now)
        amount = grant.remaining_cents
        _close_posting(grant=grant, type=BalanceTransaction.TYPE_CREDIT_EXPIRE, house_kind=Account.KIND_BREAKAGE,
                       notes=f"Expired credit grant {grant.public_id}: {amount} unburned")
        grant.expired_at = now
        grant.expired_cents = amount
        grant.remaining_cents = 0
        grant.save(update_fields=["expired_at", "expired_cents", "remaining_cents", "updated_at"])
        webhook_services.event_publish(organization=grant.organization, type="credit_grant.expired",
                                       object_type="credit_grant", object_id=grant.public_id,
                                       customer_id=grant.customer, data=grant_data(grant, now=now),
                                       previous_data=previous)
    return grant


def credit_grants_expire(*, now: datetime | None = None) -> dict[str, Any]:
    """Expire every due grant once (``manage.py expire_credit_grants``); amounts totalled per currency."""
    summary: dict[str, Any] = {"due": 0, "expired": 0, "amounts": {}}
    for pk in credit_grants_due(now=now, limit=100_000):
        summary["due"] += 1
        grant = credit_grant_expire(grant_pk=pk, now=now)
        if grant is not None:
            summary["expired"] += 1
            summary["amounts"][grant.currency] = summary["amounts"].get(grant.currency, 0) + grant.expired_cents
    return summary


def grant_remaining_from_entries(grant: CreditGrant) -> int:
    """Σ credits − Σ debits on the grant's account (what ``remaining_cents`` must equal)."""
    sums = Entry.objects.filter(account_id=grant.account_id).aggregate(
        credits=Sum("amount", filter=Q(direction=Entry.CREDIT), default=0),
        debits=Sum("amount", filter=Q(direction=Entry.DEBIT), default=0))
    return sums["credits"] - sums["debits"]
