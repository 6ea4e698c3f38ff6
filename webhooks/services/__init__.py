"""Webhook services.

Invariant: an event is written in the caller's database transaction, so it exists if and only if the
state change it describes was committed (outbox). Delivery happens after commit, never inside: the commit
kicks the fan-out (``dispatch``), which creates the deliveries (``deliveries``); endpoints live in
``endpoints``, people-initiated deliveries in ``redelivery``.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from billing_project.core.models import Organization
from webhooks.models import BillingEvent
from webhooks.services import dispatch

EVENT_INSERT_SQL = """
INSERT INTO webhooks_billingevent
    (public_id, organization_id, type, object_type, object_id, customer_id, data, previous_data, pending, livemode,
     created_at, dispatched_at)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s)"""


def event_prepare(*, organization: Organization, type: str, object_type: str, object_id: str,
                  data: dict[str, Any], customer_id: str = "",
                  previous_data: dict[str, Any] | None = None) -> tuple[BillingEvent, list[Any]]:
    """Build an event and the parameters of ``EVENT_INSERT_SQL`` for it (nothing is written).

    ``event_publish`` executes it; the ledger's hot path folds the same INSERT into its posting
    statement, so the event still commits in the same transaction as the money movement."""
    event = BillingEvent(
        organization=organization, type=type, object_type=object_type, object_id=object_id,
        customer_id=customer_id or "", data=data, previous_data=previous_data, livemode=organization.live,
        created_at=timezone.now(),
    )
    params = [
        event.public_id, organization.pk, type, object_type, object_id, event.customer_id,
        json.dumps(data, cls=DjangoJSONEncoder),
        None if previous_data is None else json.dumps(previous_data, cls=DjangoJSONEncoder),
        event.pending, event.livemode, event.created_at, None,
    ]
    if connection.in_atomic_block:  # deliver after commit (outside a transaction: event_publish kicks)
        _kick_on_commit()
    return event, params


def _kick_on_commit() -> None:
    """About one fan-out kick per commit: a kick already queued at this savepoint level or an enclosing one
    (its savepoint ids a subset of the current ones: it survives whenever this event does) covers it."""
    level = set(connection.savepoint_ids)
    if not any(func is dispatch.fanout_kick and sids <= level for sids, func, _robust in connection.run_on_commit):
        transaction.on_commit(dispatch.fanout_kick)


def event_publish(*, organization: Organization, type: str, object_type: str, object_id: str,
                  data: dict[str, Any], customer_id: str = "",
                  previous_data: dict[str, Any] | None = None) -> BillingEvent:
    """Append a billing event. Call inside the transaction that made the change; no locking."""
    event, params = event_prepare(organization=organization, type=type, object_type=object_type,
                                  object_id=object_id, data=data, customer_id=customer_id,
                                  previous_data=previous_data)
    with connection.cursor() as cursor:  # one plain INSERT: it runs inside many postings
        cursor.execute(EVENT_INSERT_SQL + " RETURNING id", params)
        event.pk = cursor.fetchone()[0]
    event._state.adding = False
    event._state.db = connection.alias
    if not connection.in_atomic_block:
        dispatch.fanout_kick()
    return event
