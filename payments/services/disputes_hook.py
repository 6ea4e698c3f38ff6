"""The seam for disputes: the processor reported that a captured payment is disputed (sandbox card …0259).

The refunds-and-disputes work replaces ``dispute_opened`` with one that creates the ``Dispute`` and holds the
funds on the ledger. Until then it does nothing. It is called inside the transaction that applied the
capture, with the intent locked, once per capture (the attempt's status guard makes it run once)."""

from __future__ import annotations

from payments.models import PaymentAttempt, PaymentIntent
from payments.processors.base import ProcessorResult


def dispute_opened(*, intent: PaymentIntent, attempt: PaymentAttempt, result: ProcessorResult) -> None:
    """Open a dispute for ``intent`` (no-op until the Dispute model exists)."""
    return None
