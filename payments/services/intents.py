"""Payment intents (spec payments.md §1): create, confirm, capture, cancel — on the processor protocol.

Invariants
- Two-phase around every processor call (STYLE §5): (1) a short transaction locks the intent, checks its
  state, records a pending ``PaymentAttempt`` with the processor idempotency key and commits; (2) the call is
  made outside any transaction; (3) a new transaction locks the intent, re-checks and applies the result
  (``payments.services.attempts``). A crash between (2) and (3) leaves a pending attempt the sweeper settles
  with ``retrieve`` under the same key: nothing is charged twice.
- One processor operation per intent at a time: under the intent lock, a pending attempt makes a second
  confirm/capture/cancel a 409, and the status guard refuses what the state does not allow; so concurrent
  confirms never charge twice and concurrent captures never over-capture.
- A decline is committed (intent back to ``requires_payment_method``, ``lastError`` set, nothing received,
  ``payment_intent.payment_failed``) and then answered 402 ``card declined: …``.
- ``paymentMethodId`` must name an attached method of the organization (404 otherwise).
- Every state change publishes ``payment_intent.*`` in its transaction; ``succeeded`` exactly once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.errors import Conflict, NotFound, ValidationError
from billing_project.core.models import Organization
from billing_project.core.money import currency_normalize
from payments.models import PaymentAttempt, PaymentIntent, PaymentMethod
from payments.processors import base
from payments.services import attempts
from payments.services.attempts import PaymentDeclined

CONFIRMABLE = (PaymentIntent.STATUS_REQUIRES_PAYMENT_METHOD, PaymentIntent.STATUS_REQUIRES_CONFIRMATION,
               PaymentIntent.STATUS_REQUIRES_ACTION)
NOT_CANCELABLE = (PaymentIntent.STATUS_SUCCEEDED, PaymentIntent.STATUS_CANCELED, PaymentIntent.STATUS_PROCESSING)


def payment_method_usable(*, organization: Organization, payment_method_id: str) -> PaymentMethod:
    """An attached payment method of the organization, else 404 ``payment method not found``."""
    method = (PaymentMethod.objects.select_related("customer")
              .filter(organization=organization, public_id=payment_method_id, detached_at__isnull=True).first())
    if method is None:
        raise NotFound("payment method not found", param="paymentMethodId")
    return method


def _locked(*, organization: Organization, intent_id: str) -> PaymentIntent:
    intent = (PaymentIntent.objects.select_for_update(of=("self",))
              .select_related("organization", "customer", "payment_method")
              .filter(organization=organization, public_id=intent_id).first())
    if intent is None:
        raise NotFound("payment intent not found", param="id")
    return intent


def payment_intent_exists(*, organization: Organization, intent_id: str) -> None:
    """404 ``payment intent not found`` unless it exists (actions check this before reading their body)."""
    if not PaymentIntent.objects.filter(organization=organization, public_id=intent_id).exists():
        raise NotFound("payment intent not found", param="id")


def payment_intent_create(*, organization: Organization, customer_id: str, amount: int, currency: str = "usd",
                          payment_method_id: str = "", capture_method: str = "", confirmation_method: str = "",
                          setup_future_usage: str = "", description: str = "", receipt_email: str = "",
                          invoice_id: str = "", metadata: dict[str, Any] | None = None,
                          purpose: str = PaymentIntent.PURPOSE_PAYMENT) -> PaymentIntent:
    """A new intent: ``requires_confirmation`` with a payment method, else ``requires_payment_method``.
    400 ``amount must be positive`` / ``customerId is required``; 404 for an unknown or detached method.
    Emits ``payment_intent.created``. No processor call."""
    if amount <= 0:
        raise ValidationError("amount must be positive", param="amount")
    if not (customer_id or "").strip():
        raise ValidationError("customerId is required", param="customerId")
    currency = currency_normalize(currency)
    method = payment_method_usable(organization=organization, payment_method_id=payment_method_id) \
        if payment_method_id else None
    customer = core_services.customer_ensure(organization=organization, customer_id=customer_id)
    with transaction.atomic():
        intent = PaymentIntent.objects.create(
            organization=organization, customer=customer, amount=amount, currency=currency, payment_method=method,
            status=(PaymentIntent.STATUS_REQUIRES_CONFIRMATION if method else
                    PaymentIntent.STATUS_REQUIRES_PAYMENT_METHOD),
            capture_method=capture_method or PaymentIntent.CAPTURE_AUTOMATIC,
            confirmation_method=confirmation_method or "automatic", setup_future_usage=setup_future_usage,
            description=description, receipt_email=receipt_email, invoice_id=invoice_id, purpose=purpose,
            metadata=metadata or {})
        attempts.intent_event(intent, "created")
    return intent


def confirm_begin_locked(intent: PaymentIntent, *, method: PaymentMethod | None) -> PaymentAttempt:
    """Phase 1 of a confirm, inside the caller's transaction with the intent locked: guards, the pending
    attempt ``<pi>:confirm:<n>``, ``processing``. Emits ``payment_intent.processing``."""
    if intent.status not in CONFIRMABLE:
        raise Conflict(f"cannot confirm payment intent in status {intent.status}",
                       code="payment_intent_unexpected_state", param="status")
    attempts.pending_guard(intent)
    if method is not None:
        intent.payment_method = method
    if intent.payment_method is None:
        raise ValidationError("payment method is required to confirm", param="paymentMethodId")
    if intent.payment_method.detached_at is not None:
        raise NotFound("payment method not found", param="paymentMethodId")
    intent.attempt_count += 1
    manual = intent.capture_method == PaymentIntent.CAPTURE_MANUAL
    attempt = attempts.attempt_begin(
        intent=intent, kind=PaymentAttempt.KIND_CONFIRM, key=f"{intent.public_id}:confirm:{intent.attempt_count}",
        operation=PaymentAttempt.OP_AUTHORIZE if manual else PaymentAttempt.OP_CHARGE, amount=intent.amount)
    previous = intent.status
    intent.status = PaymentIntent.STATUS_PROCESSING
    intent.save()
    attempts.intent_event(intent, "processing", previous)
    return attempt


def _key(intent: PaymentIntent, kind: str) -> str:
    """``<pi>:capture`` / ``<pi>:cancel``; a retry after a refused one gets ``:<n>`` (a new processor call)."""
    tries = intent.attempts.filter(kind=kind).count()
    return f"{intent.public_id}:{kind}" + (f":{tries + 1}" if tries else "")


def _finish(attempt: PaymentAttempt, *, now: datetime | None) -> PaymentIntent:
    """Phases 2 and 3: call outside any transaction, then apply. An unknown outcome leaves the intent as it
    is (``processing``, or unchanged for a capture/cancel) for the sweeper."""
    result = attempts.attempt_call(attempt)
    if result is None:
        return PaymentIntent.objects.select_related("customer", "payment_method").get(pk=attempt.intent_id)
    intent, attempt, _ = attempts.attempt_apply(attempt_pk=attempt.pk, result=result, now=now)
    if attempt.status == PaymentAttempt.STATUS_DECLINED:
        prefix = {PaymentAttempt.KIND_CAPTURE: "capture failed: ", PaymentAttempt.KIND_CANCEL: "cancel failed: "}
        message = intent.last_error if attempt.kind == PaymentAttempt.KIND_CONFIRM else \
            prefix[attempt.kind] + attempts.decline_message(base.ProcessorResult.from_dict(attempt.result))
        raise PaymentDeclined(message, code=attempt.decline_code or "card_declined", param="paymentMethodId")
    return intent


def payment_intent_confirm(*, organization: Organization, intent_id: str, payment_method_id: str = "",
                           now: datetime | None = None) -> PaymentIntent:
    """Confirm: charge (automatic capture) or authorize (manual) the intent's payment method, two-phase.
    404 unknown intent or method; 409 ``cannot confirm payment intent in status <s>`` or an operation in
    progress; 400 ``payment method is required to confirm``; 402 ``card declined: …`` (committed: the intent
    is back to ``requires_payment_method`` with ``lastError``). Never call inside a transaction."""
    method = payment_method_usable(organization=organization, payment_method_id=payment_method_id) \
        if payment_method_id else None
    with transaction.atomic():
        intent = _locked(organization=organization, intent_id=intent_id)
        attempt = confirm_begin_locked(intent, method=method)
    return _finish(attempt, now=now)


def payment_intent_capture(*, organization: Organization, intent_id: str, amount: int | None = None,
                           now: datetime | None = None) -> PaymentIntent:
    """Capture an authorized intent: ``amount`` (≤ 0 or None: everything capturable); the rest of the
    authorization is released. 409 ``cannot capture payment intent in status <s>``; 400 ``capture amount <a>
    exceeds capturable <c>``; 402 ``capture failed: …``. Two-phase, key ``<pi>:capture``."""
    with transaction.atomic():
        intent = _locked(organization=organization, intent_id=intent_id)
        if intent.status != PaymentIntent.STATUS_REQUIRES_CAPTURE:
            raise Conflict(f"cannot capture payment intent in status {intent.status}",
                           code="payment_intent_unexpected_state", param="status")
        attempts.pending_guard(intent)
        amount = intent.amount_capturable if not amount or amount <= 0 else amount
        if amount > intent.amount_capturable:
            raise ValidationError(f"capture amount {amount} exceeds capturable {intent.amount_capturable}",
                                  param="amountToCapture")
        attempt = attempts.attempt_begin(intent=intent, kind=PaymentAttempt.KIND_CAPTURE,
                                         operation=PaymentAttempt.OP_CAPTURE, key=_key(intent, "capture"),
                                         amount=amount)
    return _finish(attempt, now=now)


def payment_intent_cancel(*, organization: Organization, intent_id: str, reason: str = "",
                          now: datetime | None = None) -> PaymentIntent:
    """Cancel (``cancellationReason`` free text). 409 ``cannot cancel payment intent in status <s>`` from
    succeeded, canceled or processing (a charge may be under way). An authorized intent's authorization is
    released at the processor first (two-phase, key ``<pi>:cancel``). Emits ``payment_intent.canceled``."""
    now = now or timezone.now()
    with transaction.atomic():
        intent = _locked(organization=organization, intent_id=intent_id)
        if intent.status in NOT_CANCELABLE:
            raise Conflict(f"cannot cancel payment intent in status {intent.status}",
                           code="payment_intent_unexpected_state", param="status")
        attempts.pending_guard(intent)
        if intent.status != PaymentIntent.STATUS_REQUIRES_CAPTURE:
            attempts.intent_cancel_locked(intent, reason=reason, now=now)
            return intent
        intent.cancellation_reason = reason
        intent.save(update_fields=["cancellation_reason", "updated_at"])
        attempt = attempts.attempt_begin(intent=intent, kind=PaymentAttempt.KIND_CANCEL,
                                         operation=PaymentAttempt.OP_CANCEL, key=_key(intent, "cancel"),
                                         amount=intent.amount_capturable)
    return _finish(attempt, now=now)
