"""The seam for disputes: the processor reported that a captured payment is disputed (sandbox card …0259).

It is called inside the transaction that applied the capture, with the intent locked, once per capture (the
attempt's status guard makes it run once; the dispute's unique ``source_key`` makes a second call a no-op).
It opens the ``Dispute`` and withholds the funds on the ledger (``payments.services.disputes``)."""

from __future__ import annotations

from payments.models import PaymentAttempt, PaymentIntent
from payments.processors.base import ProcessorResult
from payments.services import disputes


def dispute_opened(*, intent: PaymentIntent, attempt: PaymentAttempt, result: ProcessorResult) -> None:
    """Open a dispute for ``intent`` and hold its funds."""
    disputes.dispute_open_locked(intent=intent, attempt=attempt, result=result, now=attempt.completed_at)
