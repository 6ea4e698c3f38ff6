"""Deliveries asked for by people: ``POST /events/:id/resend`` and the admin's audited "retry now".

Both create or re-arm deliveries already claimed for one send task enqueued after commit; the caller's
transaction decides (nothing is sent for a request that rolls back)."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.errors import Conflict
from billing_project.core.models import Organization
from webhooks import selectors
from webhooks.models import BillingEvent, Delivery, WebhookEndpoint
from webhooks.services import deliveries as delivery_services
from webhooks.services import dispatch
from webhooks.services import endpoints as endpoint_services


def event_resend(*, organization: Organization, event_id: str,
                 endpoint_id: str | None = None) -> tuple[BillingEvent, list[Delivery]]:
    """New deliveries (reason ``resend``) of an event: to the named endpoint, or to every enabled endpoint
    whose filter matches. A named endpoint must be enabled (409 otherwise). Sent right after commit."""
    now = timezone.now()
    with transaction.atomic():
        event = selectors.event_get(organization=organization, event_id=event_id)
        if endpoint_id:
            endpoint = endpoint_services.endpoint_get(organization=organization, endpoint_id=endpoint_id)
            if endpoint.status != WebhookEndpoint.STATUS_ENABLED:
                raise Conflict(f"webhook endpoint is not enabled (status: {endpoint.status})", param="endpointId")
            targets = [endpoint]
        else:
            targets = [e for e in selectors.endpoint_list(organization=organization).filter(
                status=WebhookEndpoint.STATUS_ENABLED).order_by("id")
                if endpoint_services.event_filter_matches(e.events, event.type)]
        claim = delivery_services.Claim([], None)
        created = []
        if targets:
            token = uuid.uuid4()
            created = Delivery.objects.bulk_create([
                Delivery(organization=organization, event=event, endpoint=target, reason=Delivery.REASON_RESEND,
                         next_attempt_at=now, claim_token=token, claimed_until=now + delivery_services.CLAIM,
                         created_at=now) for target in targets])
            claim = delivery_services.Claim([d.pk for d in created], token)
        delivery_services.event_pending_refresh([event.pk])
        dispatch.claim_enqueue_on_commit(claim)
    event.refresh_from_db(fields=["pending"])
    return event, created


def delivery_retry_now(*, delivery_pk: int, actor: str, reason: str = "") -> Delivery:
    """Attempt a pending, failed or canceled delivery again now (audited). One more attempt: a delivery past
    its retry window that fails again is ``failed`` again. 409 when it succeeded or an attempt is running."""
    now = timezone.now()
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().select_related("organization").get(pk=delivery_pk)
        if delivery.status == Delivery.STATUS_SUCCEEDED:
            raise Conflict("delivery already succeeded")
        if delivery.claimed_until and delivery.claimed_until > now:
            raise Conflict("an attempt of this delivery is in progress; try again in a few minutes")
        previous = delivery.status
        delivery.status, delivery.next_attempt_at = Delivery.STATUS_PENDING, now
        delivery.claim_token, delivery.claimed_until = uuid.uuid4(), now + delivery_services.CLAIM
        delivery.save(update_fields=["status", "next_attempt_at", "claim_token", "claimed_until"])
        core_services.audit_record(actor=actor, action="webhook_delivery.retry", object_type="webhook_delivery",
                                   object_id=delivery.public_id, organization=delivery.organization, reason=reason,
                                   data={"previousStatus": previous})
        delivery_services.event_pending_refresh([delivery.event_id])
        dispatch.claim_enqueue_on_commit(delivery_services.Claim([delivery.pk], delivery.claim_token))
    return delivery
