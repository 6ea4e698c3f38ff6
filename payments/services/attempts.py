"""Processor attempts: the call (outside any transaction) and the application of its result (inside one).

Invariants
- An attempt row (``pending``, with its unique processor idempotency key) is committed before its processor
  call; the call is made outside any database transaction; its result is applied in a new transaction that
  locks the intent, then the attempt, and re-checks that the attempt is still pending — so a result is
  applied once, whoever gets there first (the request, a retry or the sweeper).
- Applying a result moves the intent along its status machine and posts its money (``payments.postings``):
  authorization memo on authorize, capture to processor clearing (the credit side given by the caller:
  payments received, or an invoice's receivable), the fee separately, the authorization released when it is
  captured or canceled. Posting keys derive from the attempt's processor key, so a replay posts nothing new.
- Exactly one ``payment_intent.succeeded`` per intent: only the transition into ``succeeded`` publishes it.
- Accounts are resolved before any locking transaction (``payment_accounts``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing_project.core.errors import ApplicationError
from billing_project.core.models import Organization
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction
from payments import postings
from payments.models import PaymentAttempt, PaymentIntent
from payments.processors import base
from payments.processors.base import PaymentMethodRef, PaymentRequest, ProcessorResult
from payments.processors.registry import processor_holding, processor_name_for
from payments.selectors.intents import payment_intent_data
from payments.services import disputes_hook
from webhooks import services as webhook_services

logger = logging.getLogger(__name__)

HOUSE_KINDS = (Account.KIND_PROCESSOR_CLEARING, Account.KIND_PAYMENTS_RECEIVED, Account.KIND_PROCESSOR_FEES,
               Account.KIND_AUTHORIZATIONS, Account.KIND_AUTHORIZATIONS_CONTROL)


class PaymentDeclined(ApplicationError):
    """The processor refused: 402 with the decline in the message (the state change is already committed)."""

    status = 402
    code = "card_declined"


@dataclass(frozen=True)
class PaymentAccounts:
    clearing: Account
    received: Account
    fees: Account
    authorizations: Account
    authorizations_control: Account


def payment_accounts(*, organization: Organization, currency: str) -> PaymentAccounts:
    """The house accounts a payment posts to (created on first use). Call outside any locking transaction."""
    found = ledger_services.accounts_resolve(organization=organization, currency=currency, customer_kinds=(),
                                             house_kinds=HOUSE_KINDS)
    return PaymentAccounts(clearing=found[Account.KIND_PROCESSOR_CLEARING],
                           received=found[Account.KIND_PAYMENTS_RECEIVED], fees=found[Account.KIND_PROCESSOR_FEES],
                           authorizations=found[Account.KIND_AUTHORIZATIONS],
                           authorizations_control=found[Account.KIND_AUTHORIZATIONS_CONTROL])


def intent_event(intent: PaymentIntent, type: str, previous_status: str | None = None) -> None:
    """Publish ``payment_intent.<type>`` (inside the transaction of the change)."""
    webhook_services.event_publish(
        organization=intent.organization, type=f"payment_intent.{type}", object_type="payment_intent",
        object_id=intent.public_id, customer_id=intent.customer.customer_id, data=payment_intent_data(intent),
        previous_data={"status": previous_status} if previous_status else None)


def attempt_begin(*, intent: PaymentIntent, kind: str, operation: str, key: str, amount: int) -> PaymentAttempt:
    """Record a pending attempt (caller holds the intent lock, inside its transaction). A confirm goes to the
    organization's processor now; a capture or cancel to the processor holding the authorization."""
    held = intent.provider_type if kind != PaymentAttempt.KIND_CONFIRM else ""
    return PaymentAttempt.objects.create(
        organization=intent.organization, intent=intent, kind=kind, operation=operation,
        processor=held or processor_name_for(intent.organization), processor_key=key,
        payment_method=intent.payment_method, amount=amount)


def pending_guard(intent: PaymentIntent) -> None:
    """409 while another processor call for this intent is unresolved (caller holds the intent lock)."""
    if intent.attempts.filter(status=PaymentAttempt.STATUS_PENDING).exists():
        raise ApplicationError(f"payment intent {intent.public_id} has a processor operation in progress; "
                               "retry later", code="payment_intent_in_progress", param="id", status=409)


def _request(attempt: PaymentAttempt) -> PaymentRequest:
    intent, method = attempt.intent, attempt.payment_method
    ref = PaymentMethodRef(id=method.public_id, type=method.type, provider_ref=method.provider_ref,
                           brand=method.card_brand, last4=method.card_last4 or method.bank_account.get("last4", ""),
                           exp_month=method.card_exp_month, exp_year=method.card_exp_year) if method else \
        PaymentMethodRef(id="")
    return PaymentRequest(idempotency_key=attempt.processor_key, amount=attempt.amount, currency=intent.currency,
                          customer_id=intent.customer.customer_id, payment_method=ref,
                          description=intent.description, metadata={"paymentIntentId": intent.public_id})


def attempt_call(attempt: PaymentAttempt) -> ProcessorResult | None:
    """Make the attempt's processor call (never inside a transaction). None when the outcome is unknown (an
    error or a timeout): the attempt stays pending for the sweeper, which asks ``retrieve`` with the key."""
    intent = attempt.intent
    try:
        processor = processor_holding(organization=attempt.organization, name=attempt.processor)
        if attempt.operation == PaymentAttempt.OP_CHARGE:
            return processor.charge(_request(attempt))
        if attempt.operation == PaymentAttempt.OP_AUTHORIZE:
            return processor.authorize(_request(attempt))
        if attempt.operation == PaymentAttempt.OP_CAPTURE:
            return processor.capture(idempotency_key=attempt.processor_key, processor_ref=intent.provider_ref,
                                     amount=attempt.amount, currency=intent.currency)
        return processor.cancel(idempotency_key=attempt.processor_key, processor_ref=intent.provider_ref)
    except Exception:  # noqa: BLE001 — any failure of the call leaves the outcome unknown, never "failed"
        logger.exception("processor call %s failed; the attempt stays pending", attempt.processor_key)
        return None


def attempt_retrieve(attempt: PaymentAttempt) -> ProcessorResult | None | bool:
    """Ask the processor what happened to the attempt's call: its result, None if it never received it, or
    False if it cannot be asked now (an error)."""
    try:
        return processor_holding(organization=attempt.organization, name=attempt.processor).retrieve(
            idempotency_key=attempt.processor_key)
    except Exception:  # noqa: BLE001
        logger.exception("processor retrieve %s failed; will retry", attempt.processor_key)
        return False


def locked_pair(*, attempt_pk: int) -> tuple[PaymentIntent, PaymentAttempt]:
    """Lock the attempt's intent, then the attempt (the one lock order of payments)."""
    intent_pk = PaymentAttempt.objects.values_list("intent_id", flat=True).get(pk=attempt_pk)
    intent = (PaymentIntent.objects.select_for_update(of=("self",)).select_related("organization", "customer",
                                                                                  "payment_method")
              .get(pk=intent_pk))
    attempt = PaymentAttempt.objects.select_for_update(of=("self",)).select_related("payment_method").get(pk=attempt_pk)
    return intent, attempt


def _post(intent: PaymentIntent, *, type: str, legs, amount: int, key: str, notes: str,
          source: tuple[str, str] | None = None) -> None:
    source_type, source_id = source or ("payment_intent", intent.public_id)
    ledger_services.transaction_post(
        organization=intent.organization, type=type, currency=intent.currency, amount=amount, legs=legs,
        customer=intent.customer.customer_id, idempotency_key=key, notes=notes, source_type=source_type,
        source_id=source_id, metadata={"paymentIntentId": intent.public_id})


def attempt_record(attempt: PaymentAttempt, result: ProcessorResult | None, now: datetime) -> None:
    if result is None:  # the processor never received the call: nothing happened
        attempt.status = PaymentAttempt.STATUS_FAILED
        attempt.error = "the processor has no record of this call"
    else:
        attempt.status = {base.SUCCEEDED: PaymentAttempt.STATUS_SUCCEEDED,
                          base.REQUIRES_CAPTURE: PaymentAttempt.STATUS_REQUIRES_CAPTURE,
                          base.REQUIRES_ACTION: PaymentAttempt.STATUS_REQUIRES_ACTION,
                          base.DECLINED: PaymentAttempt.STATUS_DECLINED,
                          base.CANCELED: PaymentAttempt.STATUS_CANCELED}[result.status]
        attempt.processor_ref = result.processor_ref
        attempt.fee = result.fee
        attempt.decline_code = result.decline_code
        attempt.error = result.message if result.status == base.DECLINED else ""
        attempt.result = result.as_dict()
    attempt.completed_at = now
    attempt.save()


def decline_message(result: ProcessorResult | None) -> str:
    if result is None:
        return "payment failed: the processor did not receive the request"
    return f"card declined: {result.message or 'declined'} ({result.decline_code or 'declined'})"


def capture_post(intent: PaymentIntent, attempt: PaymentAttempt, result: ProcessorResult, *,
                 accounts: PaymentAccounts, credit: Account, source: tuple[str, str] | None = None) -> None:
    """Post captured money (Dr clearing / Cr ``credit``) and the fee (Dr fees / Cr clearing)."""
    _post(intent, type=BalanceTransaction.TYPE_PAYMENT_CAPTURE, amount=result.amount, key=f"payment-capture:"
          f"{attempt.processor_key}", legs=postings.capture(clearing=accounts.clearing, credit=credit,
                                                            amount=result.amount),
          notes=f"Payment {intent.public_id} captured", source=source)
    if result.fee > 0:
        _post(intent, type=BalanceTransaction.TYPE_PROCESSOR_FEE, amount=result.fee,
              key=f"processor-fee:{attempt.processor_key}", notes=f"Processor fee on {intent.public_id}",
              legs=postings.processor_fee(fees=accounts.fees, clearing=accounts.clearing, amount=result.fee))


def _succeed(intent: PaymentIntent, attempt: PaymentAttempt, result: ProcessorResult, now: datetime) -> None:
    previous = intent.status
    intent.status = PaymentIntent.STATUS_SUCCEEDED
    intent.amount_received = result.amount
    intent.amount_capturable = 0
    intent.fee += result.fee
    intent.succeeded_at = now
    intent.last_error = ""
    intent.save()
    intent_event(intent, "succeeded", previous)
    if result.dispute:
        disputes_hook.dispute_opened(intent=intent, attempt=attempt, result=result)


def _release_authorization(intent: PaymentIntent, accounts: PaymentAccounts, amount: int, key: str) -> None:
    if amount > 0:
        _post(intent, type=BalanceTransaction.TYPE_PAYMENT_AUTH_RELEASE, amount=amount, key=key,
              notes=f"Authorization of {intent.public_id} released",
              legs=postings.authorization_release(authorizations=accounts.authorizations,
                                                  control=accounts.authorizations_control, amount=amount))


def apply_confirm(intent: PaymentIntent, attempt: PaymentAttempt, result: ProcessorResult | None, *,
                  accounts: PaymentAccounts, credit: Account | None = None,
                  source: tuple[str, str] | None = None) -> None:
    """Move a ``processing`` intent on from its confirm attempt's result (locks held by the caller)."""
    previous = intent.status
    if result is not None:
        intent.provider_ref = result.processor_ref or intent.provider_ref
        intent.provider_type = attempt.processor
    if result is not None and result.status == base.SUCCEEDED:
        capture_post(intent, attempt, result, accounts=accounts, credit=credit or accounts.received, source=source)
        _succeed(intent, attempt, result, attempt.completed_at)
    elif result is not None and result.status == base.REQUIRES_CAPTURE:
        _post(intent, type=BalanceTransaction.TYPE_PAYMENT_AUTHORIZATION, amount=result.amount,
              key=f"payment-auth:{attempt.processor_key}", notes=f"Authorization of {intent.public_id}",
              legs=postings.authorization_hold(authorizations=accounts.authorizations,
                                               control=accounts.authorizations_control, amount=result.amount))
        intent.status = PaymentIntent.STATUS_REQUIRES_CAPTURE
        intent.amount_capturable = result.amount
        intent.last_error = ""
        intent.save()
        intent_event(intent, "amount_capturable_updated", previous)
    elif result is not None and result.status == base.REQUIRES_ACTION:
        intent.status = PaymentIntent.STATUS_REQUIRES_ACTION
        intent.last_error = ""
        intent.save()
        intent_event(intent, "requires_action", previous)
    else:
        intent.status = PaymentIntent.STATUS_REQUIRES_PAYMENT_METHOD
        intent.last_error = decline_message(result)
        intent.save()
        intent_event(intent, "payment_failed", previous)


def apply_capture(intent: PaymentIntent, attempt: PaymentAttempt, result: ProcessorResult | None, *,
                  accounts: PaymentAccounts) -> None:
    """A capture's result: succeeded → the authorization released, the capture and fee posted."""
    if result is not None and result.status == base.SUCCEEDED:
        _release_authorization(intent, accounts, intent.amount_capturable,
                               key=f"payment-auth-release:{attempt.processor_key}")
        capture_post(intent, attempt, result, accounts=accounts, credit=accounts.received)
        _succeed(intent, attempt, result, attempt.completed_at)
    else:
        intent.last_error = "capture failed: " + (result.message if result is not None else "not received")
        intent.save()


def apply_cancel(intent: PaymentIntent, attempt: PaymentAttempt, result: ProcessorResult | None, *,
                 accounts: PaymentAccounts) -> None:
    """A release of an authorization: canceled → the memo released, the intent canceled."""
    if result is not None and result.status == base.CANCELED:
        _release_authorization(intent, accounts, intent.amount_capturable,
                               key=f"payment-auth-release:{attempt.processor_key}")
        intent_cancel_locked(intent, reason=intent.cancellation_reason, now=attempt.completed_at)
    else:
        intent.last_error = "cancel failed: " + (result.message if result is not None else "not received")
        intent.save()


def intent_cancel_locked(intent: PaymentIntent, *, reason: str, now: datetime) -> None:
    previous = intent.status
    intent.status = PaymentIntent.STATUS_CANCELED
    intent.cancellation_reason = reason
    intent.canceled_at = now
    intent.amount_capturable = 0
    intent.save()
    intent_event(intent, "canceled", previous)


def attempt_apply(*, attempt_pk: int, result: ProcessorResult | None,
                  now: datetime | None = None) -> tuple[PaymentIntent, PaymentAttempt, bool]:
    """Apply a plain intent's attempt result in a new transaction: lock intent → attempt, re-check that the
    attempt is pending (else nothing happens: someone applied it), record, transition, post, publish.
    Returns (intent, attempt, applied_now)."""
    now = now or timezone.now()
    attempt = PaymentAttempt.objects.select_related("intent").get(pk=attempt_pk)
    accounts = payment_accounts(organization=attempt.intent.organization, currency=attempt.intent.currency)
    with transaction.atomic():
        intent, attempt = locked_pair(attempt_pk=attempt_pk)
        if attempt.status != PaymentAttempt.STATUS_PENDING:
            return intent, attempt, False
        attempt_record(attempt, result, now)
        if attempt.kind == PaymentAttempt.KIND_CONFIRM:
            apply_confirm(intent, attempt, result, accounts=accounts)
        elif attempt.kind == PaymentAttempt.KIND_CAPTURE:
            apply_capture(intent, attempt, result, accounts=accounts)
        else:
            apply_cancel(intent, attempt, result, accounts=accounts)
    return intent, attempt, True
