"""Helpers for the payment-intent tests: payment methods made directly (display data only; the sandbox
decides by last4), fake processors for the outside world's failures."""

from __future__ import annotations

from billing_project.core import services as core_services
from payments.models import PaymentMethod
from payments.processors.base import PaymentRequest, ProcessorError, ProcessorResult
from payments.processors.sandbox import SandboxProcessor

OK, DECLINED, NO_FUNDS, DISPUTE, ACTION = "4242", "0002", "9995", "0259", "3155"


def method(org, customer_id: str, last4: str = OK, *, exp_month: int = 12, exp_year: int = 2099) -> PaymentMethod:
    customer = core_services.customer_ensure(organization=org, customer_id=customer_id)
    return PaymentMethod.objects.create(organization=org, customer=customer, type="card", card_brand="visa",
                                        card_last4=last4, card_exp_month=exp_month, card_exp_year=exp_year,
                                        name=f"visa ending in {last4}")


class FailingProcessor(SandboxProcessor):
    """Never reaches the processor: every payment call raises (a connection error), retrieve finds nothing."""

    name = "failing"

    def __init__(self, exc: type[BaseException] = ProcessorError):
        self.exc = exc
        self.calls = 0

    def charge(self, request: PaymentRequest) -> ProcessorResult:
        self.calls += 1
        raise self.exc("connection refused")

    authorize = charge


class TimeoutProcessor(SandboxProcessor):
    """The call reaches the processor (the charge happens and is remembered) but the answer is lost."""

    name = "timeout"

    def __init__(self):
        self.calls = 0

    def charge(self, request: PaymentRequest) -> ProcessorResult:
        self.calls += 1
        super().charge(request)
        raise TimeoutError("read timed out")

    def authorize(self, request: PaymentRequest) -> ProcessorResult:
        self.calls += 1
        super().authorize(request)
        raise TimeoutError("read timed out")


class CountingProcessor(SandboxProcessor):
    """The sandbox, counting calls (proves that retries and reconciliation never call twice)."""

    def __init__(self):
        self.calls: list[str] = []

    def charge(self, request: PaymentRequest) -> ProcessorResult:
        self.calls.append(request.idempotency_key)
        return super().charge(request)

    def authorize(self, request: PaymentRequest) -> ProcessorResult:
        self.calls.append(request.idempotency_key)
        return super().authorize(request)

    def capture(self, **kwargs) -> ProcessorResult:
        self.calls.append(kwargs["idempotency_key"])
        return super().capture(**kwargs)
