"""Webhook services.

Invariant: an event is written in the caller's database transaction, so it exists if and only if the
state change it describes was committed (outbox). Delivery happens after commit, never inside.
"""

from __future__ import annotations

from typing import Any

from billing_project.core.models import Organization
from webhooks.models import BillingEvent


def event_publish(*, organization: Organization, type: str, object_type: str, object_id: str,
                  data: dict[str, Any], customer_id: str = "",
                  previous_data: dict[str, Any] | None = None) -> BillingEvent:
    """Append a billing event. Call inside the transaction that made the change; no locking."""
    return BillingEvent.objects.create(
        organization=organization,
        type=type,
        object_type=object_type,
        object_id=object_id,
        customer_id=customer_id or "",
        data=data,
        previous_data=previous_data,
        livemode=organization.live,
    )
