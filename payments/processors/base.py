"""The processor protocol every adapter implements, and the plain data it exchanges.

Rules every adapter keeps:
- every call carries the caller's processor idempotency key (one per attempt: ``<pi>:confirm:<n>``,
  ``<pi>:capture``, ``<pi>:cancel``, ``<refund id>``); the same key always yields the same result and never a
  second movement of money;
- a definitive refusal (a decline) is a ``ProcessorResult`` with ``status = declined``; an unknown outcome
  (network error, timeout, 5xx) is a raised ``ProcessorError`` — the caller keeps its attempt pending and
  later asks ``retrieve`` with the same key;
- adapters are called outside any database transaction and never touch the billing tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

SUCCEEDED = "succeeded"
REQUIRES_CAPTURE = "requires_capture"
REQUIRES_ACTION = "requires_action"
DECLINED = "declined"
CANCELED = "canceled"
STATUSES = (SUCCEEDED, REQUIRES_CAPTURE, REQUIRES_ACTION, DECLINED, CANCELED)


class ProcessorError(Exception):
    """The outcome of a call is unknown (timeout, connection error, processor 5xx): retry or retrieve with the
    same idempotency key; never assume it failed."""


@dataclass(frozen=True)
class PaymentMethodRef:
    """What a processor needs to know about the method: its token and display data (never a card number)."""

    id: str
    type: str = "card"
    provider_ref: str = ""
    brand: str = ""
    last4: str = ""
    exp_month: int | None = None
    exp_year: int | None = None


@dataclass(frozen=True)
class PaymentRequest:
    idempotency_key: str
    amount: int
    currency: str
    customer_id: str
    payment_method: PaymentMethodRef
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProcessorResult:
    """One processor answer. ``amount``: what was authorized, captured, refunded or released; ``fee``: the
    processor's fee on a capture or charge (posted separately); ``dispute``: the processor reports that the
    payment was disputed (sandbox card …0259)."""

    status: str
    processor_ref: str = ""
    amount: int = 0
    fee: int = 0
    decline_code: str = ""
    message: str = ""
    dispute: bool = False

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown processor status {self.status!r}")

    @property
    def ok(self) -> bool:
        return self.status in (SUCCEEDED, REQUIRES_CAPTURE, CANCELED)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "processorRef": self.processor_ref, "amount": self.amount, "fee": self.fee,
                "declineCode": self.decline_code, "message": self.message, "dispute": self.dispute}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessorResult:
        return cls(status=data["status"], processor_ref=data.get("processorRef", ""), amount=data.get("amount", 0),
                   fee=data.get("fee", 0), decline_code=data.get("declineCode", ""), message=data.get("message", ""),
                   dispute=data.get("dispute", False))


@runtime_checkable
class Processor(Protocol):
    """A payment processor. ``name`` is stored as the intent's ``providerType``."""

    name: str

    def authorize(self, request: PaymentRequest) -> ProcessorResult:
        """Reserve ``amount`` on the method: ``requires_capture`` (or ``declined`` / ``requires_action``)."""
        ...

    def charge(self, request: PaymentRequest) -> ProcessorResult:
        """Authorize and capture at once: ``succeeded`` (or ``declined`` / ``requires_action``)."""
        ...

    def capture(self, *, idempotency_key: str, processor_ref: str, amount: int, currency: str) -> ProcessorResult:
        """Capture ``amount`` (≤ the authorization) of an authorization; the rest is released."""
        ...

    def refund(self, *, idempotency_key: str, processor_ref: str, amount: int, currency: str,
               reason: str = "") -> ProcessorResult:
        """Give ``amount`` of a captured payment back to the method."""
        ...

    def cancel(self, *, idempotency_key: str, processor_ref: str) -> ProcessorResult:
        """Release an authorization that will not be captured: ``canceled``."""
        ...

    def retrieve(self, *, idempotency_key: str) -> ProcessorResult | None:
        """The result of the call made with ``idempotency_key``, or None if the processor never received it."""
        ...
