"""The built-in sandbox processor: deterministic outcomes from the stored card's last4 (a card number is never
stored or sent), remembered per idempotency key in ``SandboxOperation`` so the same key always answers the
same result, across processes and after a crash.

Test cards (by last4): 4242 succeeds; 0002 declines ``card_declined``; 9995 declines ``insufficient_funds``;
0259 succeeds and then opens a dispute; 3155 requires action (3-D Secure); any other card succeeds. An expiry
in the past declines ``expired_card``. Fee on captured money: 2.9 % + 30 minor units, rounded half-up once,
never more than the amount.
"""

from __future__ import annotations

import secrets
from datetime import date
from decimal import Decimal

from django.db import IntegrityError, transaction

from billing_project.core.money import round_minor
from payments.models import SandboxOperation
from payments.processors.base import (
    CANCELED,
    DECLINED,
    REQUIRES_ACTION,
    REQUIRES_CAPTURE,
    SUCCEEDED,
    PaymentRequest,
    ProcessorResult,
)

DECLINES = {"0002": "card_declined", "9995": "insufficient_funds"}
LAST4_DISPUTE = "0259"
LAST4_ACTION = "3155"
DECLINE_MESSAGES = {"card_declined": "your card was declined",
                    "insufficient_funds": "your card has insufficient funds",
                    "expired_card": "your card has expired"}


def sandbox_fee(amount: int) -> int:
    """2.9 % + 30, the percentage rounded by the one rule (``round_minor``: half-up, once), capped at the
    amount. No float touches money."""
    if amount <= 0:
        return 0
    return min(amount, round_minor(Decimal(amount) * Decimal("0.029")) + 30)


def _expired(exp_month: int | None, exp_year: int | None, today: date) -> bool:
    if not exp_month or not exp_year:
        return False
    year = exp_year + 2000 if exp_year < 100 else exp_year
    return (year, exp_month) < (today.year, today.month)


def _ref(prefix: str) -> str:
    return f"{prefix}_sbx_{secrets.token_hex(10)}"


class SandboxProcessor:
    name = "sandbox"

    # --- memory ------------------------------------------------------------------------------------

    def _remember(self, *, key: str, operation: str, result: ProcessorResult, target_ref: str = "",
                  currency: str = "") -> ProcessorResult:
        """Store ``result`` under ``key`` unless the key already has one; return the stored one."""
        try:
            with transaction.atomic():
                SandboxOperation.objects.create(idempotency_key=key, operation=operation,
                                                processor_ref=result.processor_ref, target_ref=target_ref,
                                                amount=result.amount, currency=currency, result=result.as_dict())
        except IntegrityError:
            pass  # a concurrent call with the same key won: answer what it answered
        return self.retrieve(idempotency_key=key)

    def retrieve(self, *, idempotency_key: str) -> ProcessorResult | None:
        row = SandboxOperation.objects.filter(idempotency_key=idempotency_key).first()
        return ProcessorResult.from_dict(row.result) if row is not None else None

    # --- payments ----------------------------------------------------------------------------------

    def _decide(self, request: PaymentRequest, *, success_status: str, prefix: str) -> ProcessorResult:
        method = request.payment_method
        last4 = method.last4 or ""
        if method.type == "card" and _expired(method.exp_month, method.exp_year, date.today()):
            code = "expired_card"
        else:
            code = DECLINES.get(last4, "")
        if code:
            return ProcessorResult(status=DECLINED, processor_ref=_ref(prefix), decline_code=code,
                                   message=DECLINE_MESSAGES[code])
        if last4 == LAST4_ACTION:
            return ProcessorResult(status=REQUIRES_ACTION, processor_ref=_ref(prefix), amount=request.amount,
                                   message="the card requires authentication")
        fee = sandbox_fee(request.amount) if success_status == SUCCEEDED else 0
        return ProcessorResult(status=success_status, processor_ref=_ref(prefix), amount=request.amount, fee=fee,
                               dispute=last4 == LAST4_DISPUTE)

    def authorize(self, request: PaymentRequest) -> ProcessorResult:
        known = self.retrieve(idempotency_key=request.idempotency_key)
        if known is not None:
            return known
        return self._remember(key=request.idempotency_key, operation="authorize", currency=request.currency,
                              result=self._decide(request, success_status=REQUIRES_CAPTURE, prefix="auth"))

    def charge(self, request: PaymentRequest) -> ProcessorResult:
        known = self.retrieve(idempotency_key=request.idempotency_key)
        if known is not None:
            return known
        return self._remember(key=request.idempotency_key, operation="charge", currency=request.currency,
                              result=self._decide(request, success_status=SUCCEEDED, prefix="ch"))

    def capture(self, *, idempotency_key: str, processor_ref: str, amount: int, currency: str) -> ProcessorResult:
        known = self.retrieve(idempotency_key=idempotency_key)
        if known is not None:
            return known
        auth = SandboxOperation.objects.filter(processor_ref=processor_ref, operation="authorize").first()
        if auth is None or auth.result.get("status") != REQUIRES_CAPTURE:
            result = ProcessorResult(status=DECLINED, decline_code="authorization_not_found",
                                     message=f"no open authorization {processor_ref}")
        elif amount > auth.amount or amount <= 0:
            result = ProcessorResult(status=DECLINED, decline_code="amount_too_large",
                                     message=f"capture amount {amount} exceeds the authorization {auth.amount}")
        elif SandboxOperation.objects.filter(target_ref=processor_ref, operation__in=("capture", "cancel"),
                                             result__status__in=(SUCCEEDED, CANCELED)).exists():
            result = ProcessorResult(status=DECLINED, decline_code="authorization_closed",
                                     message=f"authorization {processor_ref} was already captured or canceled")
        else:
            result = ProcessorResult(status=SUCCEEDED, processor_ref=processor_ref, amount=amount,
                                     fee=sandbox_fee(amount), dispute=auth.result.get("dispute", False))
        return self._remember(key=idempotency_key, operation="capture", result=result, target_ref=processor_ref,
                              currency=currency)

    def refund(self, *, idempotency_key: str, processor_ref: str, amount: int, currency: str,
               reason: str = "") -> ProcessorResult:
        known = self.retrieve(idempotency_key=idempotency_key)
        if known is not None:
            return known
        return self._remember(key=idempotency_key, operation="refund", target_ref=processor_ref, currency=currency,
                              result=ProcessorResult(status=SUCCEEDED, processor_ref=_ref("re"), amount=amount))

    def cancel(self, *, idempotency_key: str, processor_ref: str) -> ProcessorResult:
        known = self.retrieve(idempotency_key=idempotency_key)
        if known is not None:
            return known
        return self._remember(key=idempotency_key, operation="cancel", target_ref=processor_ref,
                              result=ProcessorResult(status=CANCELED, processor_ref=processor_ref))
