"""Credit given back: re-issuing credit grants for a credit note on an invoice that credit grants paid.

A credit note must not turn promotional credit into customer balance (cash-like). The part of a note that
grants paid comes back as a new grant with the source grant's eligibility (meters), priority, tags and expiry;
its ledger posting is Dr ``counter`` (the house credit-notes account) / Cr the new grant's account. Voiding
the note reverses exactly that posting, and only while the re-issued grant is untouched.

Invariants
- The returned grant satisfies every grant invariant (``remaining_cents`` = its account's balance; audited by
  ``ledger_audit``); a source grant whose expiry has passed gives back a grant with the same, past expiry:
  unusable, and moved to breakage by the expiry sweeper as the original credit would have been.
- Lock order: the caller's invoice and credit-note rows → the grant rows (ascending id) → running rows.
- Idempotency: postings are keyed by the caller (``credit-note-grant:<note>:<source grant>`` and
  ``…-void:…``); a replayed key returns the original posting.
- Emits ``credit_grant.created`` / ``credit_grant.voided`` in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing_project.core.errors import Conflict
from billing_project.core.models import Organization
from ledger import postings
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction, CreditGrant, Entry
from ledger.services import credits as credit_services
from ledger.services.credits import grant_data, grant_funding_kind
from webhooks import services as webhook_services


def credit_grant_payments(*, organization: Organization, source_type: str,
                          source_id: str) -> list[tuple[CreditGrant, int]]:
    """The grants that paid for ``source_type``/``source_id`` (e.g. an invoice) and how much each, in the
    order they were burned (read from the ``credit_burn`` postings' allocations). Reads only."""
    burns = BalanceTransaction.objects.filter(
        organization=organization, source_type=source_type, source_id=source_id,
        type__in=(BalanceTransaction.TYPE_CREDIT_BURN, BalanceTransaction.TYPE_CREDIT_BURN_REVERSAL)).order_by("pk")
    paid: dict[str, int] = {}
    for burn in burns:  # a reversal (a burn whose payment did not complete) takes its allocations back
        sign = -1 if burn.type == BalanceTransaction.TYPE_CREDIT_BURN_REVERSAL else 1
        for allocation in burn.metadata.get("allocations", []):
            paid[allocation["grantId"]] = paid.get(allocation["grantId"], 0) + sign * int(allocation["amount"])
    grants = {g.public_id: g for g in CreditGrant.objects.filter(organization=organization, public_id__in=paid)}
    return [(grants[gid], amount) for gid, amount in paid.items() if gid in grants and amount > 0]


def credit_grant_return(*, organization: Organization, source: CreditGrant, customer: str, amount: int,
                        counter: Account, idempotency_key: str, name: str = "", source_type: str = "",
                        source_id: str = "", now: datetime | None = None) -> CreditGrant:
    """Give ``amount`` back to ``customer`` as a new grant like ``source`` (eligibility, priority, tags,
    expiry), funded from ``counter``: Dr counter / Cr the new grant account. Runs inside the caller's
    transaction; the new rows are its only locks. Emits ``credit_grant.created``."""
    if amount <= 0:
        raise ValueError("credit_grant_return: amount must be positive")
    now = now or timezone.now()
    with transaction.atomic():
        return credit_services.grant_issue(
            organization=organization, customer=customer, currency=source.currency, amount_cents=amount,
            funding=counter, txn_type=BalanceTransaction.TYPE_CREDIT_NOTE, name=name or source.name,
            priority=source.priority, eligibility=source.eligibility or [], tags=source.tags,
            metadata={"returnedFrom": source.public_id, "sourceType": source_type, "sourceId": source_id},
            effective_at=now, expires_at=source.expires_at, now=now, idempotency_key=idempotency_key,
            notes=f"returned for {source_type} {source_id} (from {source.public_id})")


def credit_grant_return_void(*, organization: Organization, grant_ids: list[str], counter: Account,
                             idempotency_key: str, reason: str = "", actor: str = "") -> list[CreditGrant]:
    """Take back grants made by ``credit_grant_return``: each must still hold its whole amount (not burned,
    voided or expired), else 409 ``credit_already_used`` and nothing changes. Locks the grants (ascending
    id), posts Dr grant / Cr counter per grant and marks them voided. Emits ``credit_grant.voided``."""
    with transaction.atomic():
        grants = list(CreditGrant.objects.select_for_update(of=("self",)).select_related("account")
                      .filter(organization=organization, public_id__in=grant_ids).order_by("pk"))
        for grant in grants:
            if grant.voided or grant.expired_at is not None or grant.remaining_cents != grant.amount_cents:
                raise Conflict(f"the credit returned as grant {grant.public_id} has already been used: "
                               f"{grant.remaining_cents} of {grant.amount_cents} {grant.currency} left",
                               code="credit_already_used", param="id")
        now = timezone.now()
        for grant in grants:
            previous = grant_data(grant, now=now)
            ledger_services.transaction_post(
                organization=organization, type=BalanceTransaction.TYPE_CREDIT_NOTE_VOID, currency=grant.currency,
                amount=grant.amount_cents,
                legs=postings.transfer(debit=grant.account, credit=counter, amount=grant.amount_cents),
                customer=grant.customer, idempotency_key=f"{idempotency_key}:{grant.public_id}",
                notes=f"Returned credit grant {grant.public_id} taken back" + (f" ({reason})" if reason else ""),
                source_type="credit_grant", source_id=grant.public_id, reverses=grant.grant_transaction)
            grant.voided_at = now
            grant.voided_cents = grant.amount_cents
            grant.remaining_cents = 0
            grant.void_reason = reason
            grant.voided_by = actor
            grant.save(update_fields=["voided_at", "voided_cents", "remaining_cents", "void_reason", "voided_by",
                                      "updated_at"])
            webhook_services.event_publish(organization=organization, type="credit_grant.voided",
                                           object_type="credit_grant", object_id=grant.public_id,
                                           customer_id=grant.customer, data=grant_data(grant, now=now),
                                           previous_data=previous)
    return grants


def _close_again(grant: CreditGrant, amount: int, *, key: str, now: datetime) -> None:
    """A grant voided or expired since the burn: what came back leaves it again the way its remainder did
    (void → the house account that funded it, expiry → breakage), so a closed grant stays closed."""
    if grant.voided:
        type, house_kind = BalanceTransaction.TYPE_CREDIT_VOID, grant_funding_kind(grant.tags)
        grant.voided_cents += amount
    else:
        type, house_kind = BalanceTransaction.TYPE_CREDIT_EXPIRE, Account.KIND_BREAKAGE
        grant.expired_cents += amount
    house = ledger_services.accounts_resolve(organization=grant.organization, currency=grant.currency,
                                             customer_kinds=(), house_kinds=(house_kind,))[house_kind]
    ledger_services.transaction_post(
        organization=grant.organization, type=type, currency=grant.currency, amount=amount,
        legs=postings.transfer(debit=grant.account, credit=house, amount=amount), customer=grant.customer,
        idempotency_key=f"{key}:{grant.public_id}:close", source_type="credit_grant", source_id=grant.public_id,
        notes=f"Credit given back to closed grant {grant.public_id} leaves it again")
    grant.remaining_cents -= amount


def credit_burn_reverse(*, organization: Organization, burn_idempotency_key: str, counter: Account,
                        idempotency_key: str, now: datetime | None = None) -> BalanceTransaction | None:
    """Undo the credit burn made with ``burn_idempotency_key`` (its payment did not complete): one
    ``credit_burn_reversal`` posting Dr ``counter`` (the account the burn settled to) / Cr each burned grant,
    and each grant's ``remaining_cents`` restored. A grant voided or expired since gets the amount and loses it
    again (``_close_again``). None when no such burn exists. Runs inside the caller's transaction; locks the
    grants (ascending id). Idempotent on ``idempotency_key``. Emits ``credit_grant.burn_reversed`` per grant."""
    now = now or timezone.now()
    burn = BalanceTransaction.objects.filter(organization=organization,
                                             idempotency_key=f"credit-burn:{burn_idempotency_key}").first()
    if burn is None:
        return None
    allocations = burn.metadata.get("allocations", [])
    per_grant: dict[str, int] = {}
    for allocation in allocations:
        per_grant[allocation["grantId"]] = per_grant.get(allocation["grantId"], 0) + int(allocation["amount"])
    with transaction.atomic():
        grants = list(CreditGrant.objects.select_for_update(of=("self",)).select_related("account", "organization")
                      .filter(organization=organization, public_id__in=per_grant).order_by("pk"))
        txn = ledger_services.transaction_post(
            organization=organization, type=BalanceTransaction.TYPE_CREDIT_BURN_REVERSAL, currency=burn.currency,
            amount=burn.amount, customer=burn.customer, idempotency_key=idempotency_key, reverses=burn,
            legs=[postings.Leg(counter, Entry.DEBIT, burn.amount),
                  *(postings.Leg(g.account, Entry.CREDIT, per_grant[g.public_id]) for g in grants)],
            notes=f"Credit burn {burn.public_id} undone", metadata={"allocations": allocations},
            source_type=burn.source_type, source_id=burn.source_id)
        if txn.replayed:
            return txn
        for grant in grants:
            amount = per_grant[grant.public_id]
            previous = grant.remaining_cents
            grant.remaining_cents += amount
            if grant.voided or grant.expired_at is not None:
                _close_again(grant, amount, key=idempotency_key, now=now)
            grant.save(update_fields=["remaining_cents", "voided_cents", "expired_cents", "updated_at"])
            webhook_services.event_publish(
                organization=organization, type="credit_grant.burn_reversed", object_type="credit_grant",
                object_id=grant.public_id, customer_id=grant.customer,
                data=grant_data(grant, now=now) | {"restoredCents": amount, "transactionId": txn.public_id},
                previous_data={"remainingCents": previous})
    return txn
