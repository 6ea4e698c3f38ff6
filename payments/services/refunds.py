"""Refunds (spec payments.md §4) against a succeeded payment intent or a paid invoice, two-phase around the
processor (STYLE §5).

Invariants
- Caps are cumulative and count refunds still in flight: an intent gives back at most ``amountReceived``
  less what succeeded or pending refunds took and what an open or lost dispute holds; an invoice at most
  ``amountPaid`` less its refunds and the credit notes issued on it while paid
  (``invoicing.services.invoice_refunds``). The check and the pending ``Refund`` row are one transaction
  under the row locks (invoice → intent → refunds), so concurrent refunds never over-refund. An over-refund —
  even of nothing left — is a 400 ``refund amount <a> exceeds …`` and stores nothing.
- Phase 1 commits the pending refund with its split planned: the card part (back to the card, through the
  processor with idempotency key = the refund's id), then the customer-balance part (what customer balance and
  deposits paid), then the grant part (re-issued as grants like the ones that paid: promotional credit never
  becomes cash-like balance). Phase 2 calls the processor outside any transaction (only when a card part
  exists). Phase 3 locks again, re-checks that the refund is pending and applies: succeeded → postings
  (``payments.postings_refunds``), ``amount_refunded`` of the intent and invoice raised, ``succeeded``;
  refused → ``failed`` with ``failureReason`` (it no longer counts). An unknown outcome (timeout) leaves the
  refund pending: ``refund_reconcile`` asks the processor with the same key; money never moves twice.
- Lock order: invoice → intent → refund → grants and customer balance (non-card parts) → the processor-
  clearing account (``payouts.clearing_lock``, the card part), so a payout's funds check never races a refund.
- Intent and invoice keep their status (``succeeded`` / ``paid``).
- Events: ``refund.created`` (phase 1), ``refund.succeeded`` | ``refund.failed`` (phase 3), plus
  ``payment_intent.refunded`` and ``invoice.updated`` when their ``amountRefunded`` moves. Admin refunds
  write an audit record (action ``refund``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core import sweeps as core_sweeps
from billing_project.core.errors import ApplicationError, Conflict, NotFound, ValidationError
from billing_project.core.models import Customer, Organization
from invoicing.models import Invoice
from invoicing.services import invoice_refunds
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction, CreditGrant, CustomerBalanceTransaction
from ledger.services import credit_returns
from ledger.services import customer_balance as customer_balance_services
from payments import postings_refunds
from payments.models import Dispute, PaymentIntent, Refund
from payments.processors import base
from payments.processors.base import ProcessorResult
from payments.processors.registry import processor_holding
from payments.selectors.intents import payment_intent_data
from payments.selectors.refunds import refund_data
from payments.services import payouts as payout_services
from webhooks import services as webhook_services

logger = logging.getLogger(__name__)


class RefundFailed(ApplicationError):
    """The processor refused the refund: 402 (the failed refund is committed and listed)."""

    status = 402
    code = "refund_failed"


@dataclass(frozen=True)
class RefundAccounts:
    clearing: Account
    received: Account
    credit_notes: Account
    customer_balance: Account | None = None


@dataclass
class _Plan:
    amount: int
    card: int = 0
    balance: int = 0
    credit: int = 0
    grants: list[dict[str, Any]] = field(default_factory=list)


def _accounts(*, organization: Organization, currency: str, invoice: Invoice | None) -> RefundAccounts:
    """Resolve (creating on first use) every account a refund may post to — before any lock is taken."""
    found = ledger_services.accounts_resolve(
        organization=organization, currency=currency, customer_kinds=(),
        house_kinds=(Account.KIND_PROCESSOR_CLEARING, Account.KIND_PAYMENTS_RECEIVED, Account.KIND_CREDIT_NOTES))
    balance = customer_balance_services.customer_balance_account(
        organization=organization, customer=invoice.customer, currency=currency) if invoice is not None else None
    return RefundAccounts(clearing=found[Account.KIND_PROCESSOR_CLEARING],
                          received=found[Account.KIND_PAYMENTS_RECEIVED],
                          credit_notes=found[Account.KIND_CREDIT_NOTES], customer_balance=balance)


def refund_event(refund: Refund, type: str, previous_status: str | None = None) -> None:
    webhook_services.event_publish(
        organization=refund.organization, type=f"refund.{type}", object_type="refund", object_id=refund.public_id,
        customer_id=refund.customer.customer_id, data=refund_data(refund),
        previous_data={"status": previous_status} if previous_status else None)


# --- targets and caps -------------------------------------------------------------------------------------

def _invoice_intent(invoice: Invoice) -> PaymentIntent | None:
    """The succeeded card payment of an invoice (invoice collection's intent), if any."""
    return (PaymentIntent.objects.filter(organization=invoice.organization, invoice_id=invoice.public_id,
                                         purpose=PaymentIntent.PURPOSE_INVOICE,
                                         status=PaymentIntent.STATUS_SUCCEEDED).order_by("-pk").first())


def _targets(*, organization: Organization, payment_intent_id: str,
             invoice_id: str) -> tuple[PaymentIntent | None, Invoice | None, bool]:
    """(intent, invoice, by_intent) read without locks: ``paymentIntentId`` wins when both are given (the
    invoice id is then only stored); an invoice's payment intent also refunds its invoice."""
    if payment_intent_id:
        intent = (PaymentIntent.objects.select_related("organization", "customer")
                  .filter(organization=organization, public_id=payment_intent_id).first())
        if intent is None:
            raise NotFound(f"payment intent not found: {payment_intent_id}", param="paymentIntentId")
        invoice = None
        if intent.purpose == PaymentIntent.PURPOSE_INVOICE and intent.invoice_id:
            invoice = Invoice.objects.select_related("organization").filter(
                organization=organization, public_id=intent.invoice_id).first()
        return intent, invoice, True
    if invoice_id:
        invoice = invoice_refunds.invoice_for_refund(organization=organization, invoice_id=invoice_id)
        return _invoice_intent(invoice), invoice, False
    raise ValidationError("either paymentIntentId or invoiceId is required", param="paymentIntentId")


def _lock(*, intent: PaymentIntent | None, invoice: Invoice | None) -> tuple[PaymentIntent | None, Invoice | None]:
    """Lock the invoice, then the intent (the one lock order of refunds, as invoice collection's)."""
    if invoice is not None:
        invoice = (Invoice.objects.select_for_update(of=("self",)).select_related("organization")
                   .get(pk=invoice.pk))
    if intent is not None:
        intent = (PaymentIntent.objects.select_for_update(of=("self",))
                  .select_related("organization", "customer").get(pk=intent.pk))
    return intent, invoice


def _sum(queryset, column: str) -> int:
    return int(queryset.aggregate(total=Sum(column))["total"] or 0)


def intent_refundable_locked(intent: PaymentIntent) -> int:
    """What may still go back to the card of ``intent`` (locked by the caller): received, less refunded,
    less pending refunds, less what an open or lost dispute holds."""
    pending = _sum(Refund.objects.filter(payment_intent=intent, status=Refund.STATUS_PENDING), "card_amount")
    disputed = _sum(Dispute.objects.filter(payment_intent=intent, funds__in=(Dispute.FUNDS_HELD,
                                                                              Dispute.FUNDS_LOST)), "amount")
    return max(0, intent.amount_received - intent.amount_refunded - pending - disputed)


def _exceeds(amount: int, *, left: int, paid: int, what: str) -> ValidationError:
    if left == paid:
        return ValidationError(f"refund amount {amount} exceeds {what} amount {paid}", param="amount",
                               code="refund_exceeds")
    return ValidationError(f"refund amount {amount} exceeds the refundable amount {left} ({what} {paid}, "
                           f"{paid - left} already refunded, in flight or disputed)", param="amount",
                           code="refund_exceeds")


def _grant_plan(invoice: Invoice, amount: int) -> tuple[list[dict[str, Any]], int]:
    """Spread ``amount`` over the grants that paid the invoice (burn order), each up to what it paid less what
    earlier live refunds planned for it. Returns (plan, what the grants could not take)."""
    returned: dict[str, int] = {}
    for grants in Refund.objects.filter(invoice=invoice, status__in=Refund.LIVE).values_list("grant_returns",
                                                                                             flat=True):
        for item in grants:
            returned[item["sourceGrantId"]] = returned.get(item["sourceGrantId"], 0) + int(item["amount"])
    plan: list[dict[str, Any]] = []
    for grant, paid in credit_returns.credit_grant_payments(organization=invoice.organization,
                                                            source_type="invoice", source_id=invoice.public_id):
        take = min(amount, paid - returned.get(grant.public_id, 0))
        if take > 0:
            plan.append({"sourceGrantId": grant.public_id, "amount": take})
            amount -= take
    return plan, amount


def _plan_invoice(invoice: Invoice, intent: PaymentIntent | None, requested: int) -> _Plan:
    """Split an invoice refund: card first, then customer balance (what balance and deposits paid), then
    grants — the reverse of the collection waterfall. Capped by the invoice's refundable amount and by what
    each source can still give back."""
    live = Refund.objects.filter(invoice=invoice, status__in=Refund.LIVE)
    card_left = 0
    if intent is not None:
        card_left = min(invoice.provider_paid - _sum(live, "card_amount"), intent_refundable_locked(intent))
    balance_left = invoice.balance_applied + invoice.deposits_applied - _sum(live, "balance_amount")
    grant_left = invoice.credit_applied - _sum(live, "credit_amount")
    left = max(0, min(invoice_refunds.invoice_refundable_locked(invoice),
                      max(0, card_left) + max(0, balance_left) + max(0, grant_left)))
    amount = requested if requested > 0 else (left or invoice.amount_paid)
    if amount > left or left == 0:
        raise _exceeds(amount, left=left, paid=invoice.amount_paid, what="paid")
    plan = _Plan(amount=amount, card=min(amount, max(0, card_left)))
    rest = amount - plan.card
    plan.balance = min(rest, max(0, balance_left))
    rest -= plan.balance
    if rest > 0:
        plan.grants, missing = _grant_plan(invoice, rest)
        if missing > 0:  # the grants' burn records cannot take it: refuse rather than invent a source
            raise _exceeds(amount, left=amount - missing, paid=invoice.amount_paid, what="paid")
        plan.credit = rest
    return plan


def _plan_intent(intent: PaymentIntent, invoice: Invoice | None, requested: int) -> _Plan:
    left = intent_refundable_locked(intent)
    if invoice is not None:
        left = min(left, invoice_refunds.invoice_refundable_locked(invoice))
    amount = requested if requested > 0 else (left or intent.amount_received)
    if amount > left or left == 0:
        raise _exceeds(amount, left=left, paid=intent.amount_received, what="received")
    return _Plan(amount=amount, card=amount)


def _guard(intent: PaymentIntent | None, invoice: Invoice | None, by_intent: bool) -> None:
    if by_intent and intent.status != PaymentIntent.STATUS_SUCCEEDED:
        raise Conflict(f"can only refund succeeded payment intents, current: {intent.status}",
                       code="payment_intent_unexpected_state", param="paymentIntentId")
    if not by_intent and invoice.status != Invoice.STATUS_PAID:
        raise Conflict(f"can only refund paid invoices, current: {invoice.status}",
                       code="invoice_unexpected_state", param="invoiceId")


# --- phase 1 ----------------------------------------------------------------------------------------------

def _begin(*, organization: Organization, customer: Customer, intent: PaymentIntent | None,
           invoice: Invoice | None, by_intent: bool, amount: int, reason: str, invoice_ref: str,
           metadata: dict[str, Any], actor: str) -> Refund:
    """Phase 1: lock, guard, plan under the caps, record the pending refund; commit."""
    with transaction.atomic():
        intent, invoice = _lock(intent=intent, invoice=invoice)
        _guard(intent, invoice, by_intent)
        plan = _plan_intent(intent, invoice, amount) if by_intent else _plan_invoice(invoice, intent, amount)
        refund = Refund.objects.create(
            organization=organization, customer=customer, payment_intent=intent if plan.card else None,
            invoice=invoice, invoice_ref=invoice_ref, amount=plan.amount,
            currency=intent.currency if by_intent else invoice.currency, card_amount=plan.card,
            balance_amount=plan.balance, credit_amount=plan.credit, grant_returns=plan.grants, reason=reason,
            processor=intent.provider_type if plan.card else "", metadata=metadata, actor=actor)
        if invoice is not None:
            invoice_refunds.invoice_refund_reserve_locked(invoice, amount=refund.amount)
        refund_event(refund, "created")
        if actor:
            core_services.audit_record(organization=organization, actor=actor, action="refund", object_type="refund",
                                       object_id=refund.public_id, reason=reason,
                                       data={"amount": refund.amount, "paymentIntentId": intent.public_id
                                             if intent else "", "invoiceId": invoice.public_id if invoice else ""})
    return refund


# --- phase 2 ----------------------------------------------------------------------------------------------

def refund_call(refund: Refund) -> ProcessorResult | None:
    """The processor refund of the card part (never inside a transaction); None when the outcome is unknown
    (the refund stays pending for ``refund_reconcile``). A refund without a card part moves no card money."""
    if refund.card_amount <= 0:
        return ProcessorResult(status=base.SUCCEEDED, amount=0)
    intent = refund.payment_intent
    try:
        return processor_holding(organization=refund.organization, name=refund.processor).refund(
            idempotency_key=refund.public_id, processor_ref=intent.provider_ref, amount=refund.card_amount,
            currency=refund.currency, reason=refund.reason)
    except Exception:  # noqa: BLE001 — any failure of the call leaves the outcome unknown, never "failed"
        logger.exception("processor refund %s failed; the refund stays pending", refund.public_id)
        return None


# --- phase 3 ----------------------------------------------------------------------------------------------

def _post_card(refund: Refund, accounts: RefundAccounts, *, invoice_side: bool) -> None:
    payout_services.clearing_lock(accounts.clearing)  # last lock: money leaves clearing (payouts' funds check)
    ledger_services.transaction_post(
        organization=refund.organization, type=BalanceTransaction.TYPE_PAYMENT_REFUND, currency=refund.currency,
        amount=refund.card_amount, customer=refund.customer.customer_id,
        legs=postings_refunds.refund_card(debit=accounts.credit_notes if invoice_side else accounts.received,
                                          clearing=accounts.clearing, amount=refund.card_amount),
        idempotency_key=f"refund:{refund.public_id}", notes=f"Refund {refund.public_id} to the card",
        source_type="refund", source_id=refund.public_id,
        metadata={"paymentIntentId": refund.payment_intent.public_id})


def _intent_refunded(intent: PaymentIntent, refund: Refund) -> None:
    previous = intent.amount_refunded
    intent.amount_refunded += refund.card_amount
    intent.save(update_fields=["amount_refunded", "updated_at"])
    webhook_services.event_publish(
        organization=intent.organization, type="payment_intent.refunded", object_type="payment_intent",
        object_id=intent.public_id, customer_id=intent.customer.customer_id,
        data=payment_intent_data(intent) | {"refundId": refund.public_id}, previous_data={"amountRefunded": previous})


def _credit_back(refund: Refund, invoice: Invoice, accounts: RefundAccounts, now: datetime) -> None:
    """The invoice's non-card parts: grants re-issued like those that paid, then the customer balance."""
    sources = {g.public_id: g for g in CreditGrant.objects.filter(
        organization=refund.organization, public_id__in=[r["sourceGrantId"] for r in refund.grant_returns])}
    made = []
    for item in refund.grant_returns:
        source = sources[item["sourceGrantId"]]
        grant = credit_returns.credit_grant_return(
            organization=refund.organization, source=source, customer=invoice.customer, amount=item["amount"],
            counter=accounts.credit_notes, idempotency_key=f"refund-grant:{refund.public_id}:{source.public_id}",
            name=f"{source.name or 'Credit'} (refund {refund.public_id})", source_type="refund",
            source_id=refund.public_id, now=now)
        made.append({**item, "grantId": grant.public_id})
    refund.grant_returns = made
    if refund.balance_amount > 0:
        customer_balance_services.customer_balance_post(
            organization=refund.organization, customer=invoice.customer, currency=refund.currency,
            amount=refund.balance_amount, type=CustomerBalanceTransaction.TYPE_INVOICE_REFUND,
            counter=accounts.credit_notes, account=accounts.customer_balance,
            description=f"Refund {refund.public_id} of invoice {invoice.number_str or invoice.public_id}",
            invoice_id=invoice.public_id, source_ref=refund.public_id,
            idempotency_key=f"refund-balance:{refund.public_id}", txn_type=BalanceTransaction.TYPE_PAYMENT_REFUND)


def _succeed(refund: Refund, intent: PaymentIntent | None, invoice: Invoice | None, result: ProcessorResult,
             accounts: RefundAccounts, now: datetime) -> None:
    # Lock order: grants and balances (the non-card parts) before the clearing account (the card part).
    if invoice is not None:
        _credit_back(refund, invoice, accounts, now)
    if refund.card_amount > 0:
        _post_card(refund, accounts, invoice_side=invoice is not None)
        _intent_refunded(intent, refund)
    refund.status = Refund.STATUS_SUCCEEDED
    refund.provider_ref = result.processor_ref or refund.provider_ref


def refund_apply(*, refund_pk: int, result: ProcessorResult | None, accounts: RefundAccounts | None = None,
                 now: datetime | None = None) -> tuple[Refund, bool]:
    """Apply the processor's answer in a new transaction: lock invoice → intent → refund, re-check that the
    refund is pending (else nothing happens: someone applied it), then succeed (post, raise the refunded
    amounts) or fail (``failureReason``; the reservation is released). ``result`` None: the processor never
    received the call. Returns (refund, applied_now)."""
    now = now or timezone.now()
    refund = Refund.objects.select_related("invoice", "payment_intent").get(pk=refund_pk)
    accounts = accounts or _accounts(organization=refund.organization, currency=refund.currency,
                                     invoice=refund.invoice)
    with transaction.atomic():
        intent, invoice = _lock(intent=refund.payment_intent, invoice=refund.invoice)
        refund = (Refund.objects.select_for_update(of=("self",))
                  .select_related("organization", "customer", "payment_intent").get(pk=refund_pk))
        if refund.status != Refund.STATUS_PENDING:
            return refund, False
        if result is not None and result.status == base.SUCCEEDED:
            _succeed(refund, intent if refund.card_amount else None, invoice, result, accounts, now)
        else:
            refund.status = Refund.STATUS_FAILED
            refund.failure_reason = (result.message or result.decline_code or "refused") if result is not None \
                else "the processor has no record of this refund"
        if invoice is not None:
            invoice_refunds.invoice_refund_settle_locked(invoice, amount=refund.amount, refund_id=refund.public_id,
                                                         succeeded=refund.status == Refund.STATUS_SUCCEEDED)
        refund.completed_at = now
        refund.save()
        refund_event(refund, "succeeded" if refund.status == Refund.STATUS_SUCCEEDED else "failed",
                     Refund.STATUS_PENDING)
    return refund, True


# --- entry points -----------------------------------------------------------------------------------------

def refund_create(*, organization: Organization, payment_intent_id: str = "", invoice_id: str = "",
                  amount: int = 0, reason: str = "", metadata: dict[str, Any] | None = None, actor: str = "",
                  now: datetime | None = None) -> Refund:
    """Refund a succeeded payment intent or a paid invoice (``amount`` ≤ 0: everything still refundable).
    400 ``either paymentIntentId or invoiceId is required`` / ``refund amount <a> exceeds …``; 404 unknown
    intent or invoice; 409 ``can only refund succeeded payment intents|paid invoices, current: <s>``; 402
    ``refund failed: …`` when the processor refuses (the failed refund is committed). A timeout answers the
    refund ``pending``. Two-phase; never call inside a transaction."""
    payment_intent_id, invoice_id = (payment_intent_id or "").strip(), (invoice_id or "").strip()
    intent, invoice, by_intent = _targets(organization=organization, payment_intent_id=payment_intent_id,
                                          invoice_id=invoice_id)
    currency = intent.currency if by_intent else invoice.currency
    accounts = _accounts(organization=organization, currency=currency, invoice=invoice)
    customer = intent.customer if by_intent else core_services.customer_ensure(organization=organization,
                                                                              customer_id=invoice.customer)
    refund = _begin(organization=organization, customer=customer, intent=intent, invoice=invoice,
                    by_intent=by_intent, amount=amount, reason=reason, invoice_ref=invoice_id,
                    metadata=metadata or {}, actor=actor)
    result = refund_call(refund)
    if result is None:
        return refund
    refund, _ = refund_apply(refund_pk=refund.pk, result=result, accounts=accounts, now=now)
    if refund.status == Refund.STATUS_FAILED:
        raise RefundFailed(f"refund failed: {refund.failure_reason}", param="amount")
    return refund


def refund_reconcile(*, refund_pk: int, now: datetime | None = None) -> Refund:
    """Settle a refund left pending by an unknown outcome: ask the processor with the same key and apply its
    answer (None → failed: it never received the call). A processor error leaves it pending."""
    refund = Refund.objects.select_related("organization", "payment_intent", "invoice").get(pk=refund_pk)
    if refund.status != Refund.STATUS_PENDING:
        return refund
    if refund.card_amount <= 0:
        result: ProcessorResult | None = ProcessorResult(status=base.SUCCEEDED, amount=0)
    else:
        try:
            result = processor_holding(organization=refund.organization, name=refund.processor).retrieve(
                idempotency_key=refund.public_id)
        except Exception:  # noqa: BLE001
            logger.exception("processor retrieve %s failed; will retry", refund.public_id)
            return refund
    return refund_apply(refund_pk=refund.pk, result=result, now=now)[0]


def refunds_pending_claim(*, limit: int = 500, older_than: timedelta = timedelta(minutes=2),
                          claim_for: timedelta = timedelta(minutes=5), now: datetime | None = None) -> list[int]:
    """Claim refunds pending longer than ``older_than`` (their request died or timed out) for the sweeper:
    ``FOR UPDATE SKIP LOCKED`` plus a claimed-until stamp, so overlapping sweeps do not enqueue one twice while
    its task is queued. Returns their ids; ``refund_reconcile`` re-checks each under lock."""
    now = now or timezone.now()
    due = Refund.objects.filter(status=Refund.STATUS_PENDING, created_at__lt=now - older_than)
    return core_sweeps.pks_claim(due, order="pk", now=now, limit=limit,
                                 claim_seconds=int(claim_for.total_seconds()))
