"""Webhook endpoints (spec webhooks.md §1): create, update, delete, roll the secret.

Invariants: the URL is checked by syntax only (an absolute http(s) URL); reachability and private ranges
are checked at delivery (``webhooks.services.transport``). The secret is ``whsec_`` + 64 hex characters from
32 random bytes; after a roll the previous one stays valid for ``PREVIOUS_SECRET_TTL`` (both signatures
sent). A deleted endpoint is kept (its deliveries refer to it) but is invisible and receives nothing."""

from __future__ import annotations

import re
import secrets as random_secrets
from datetime import timedelta
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from billing_project.core.errors import NotFound, ValidationError
from billing_project.core.models import Organization
from webhooks.models import WebhookEndpoint

PREVIOUS_SECRET_TTL = timedelta(hours=24)
URL_MAX_LENGTH = 2048
URL_ERROR = "url must be an absolute http or https URL"


def secret_generate() -> str:
    return "whsec_" + random_secrets.token_bytes(32).hex()


def url_check(url: str) -> str:
    """The URL as stored, or 400 naming ``url``: required, absolute http/https with a host, no whitespace."""
    url = (url or "").strip()
    if not url:
        raise ValidationError("url is required", param="url", code="parameter_missing")
    if len(url) > URL_MAX_LENGTH:
        raise ValidationError(f"url must be at most {URL_MAX_LENGTH} characters", param="url")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValidationError(URL_ERROR, param="url") from None
    if parts.scheme.lower() not in ("http", "https") or not host or re.search(r"\s", url):
        raise ValidationError(URL_ERROR, param="url")
    return url


def event_filter_matches(filters: list[str] | None, event_type: str) -> bool:
    """Spec §1: an empty/absent list or ``*`` matches everything; otherwise an exact type, or a pattern whose
    ``*`` stands for any run of characters (``invoice.*``)."""
    if not filters:
        return True
    for pattern in filters:
        if pattern == "*" or pattern == event_type:
            return True
        if "*" in pattern and re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), event_type):
            return True
    return False


def endpoint_get(*, organization: Organization, endpoint_id: str, lock: bool = False) -> WebhookEndpoint:
    qs = WebhookEndpoint.objects.filter(organization=organization, public_id=endpoint_id, deleted_at__isnull=True)
    if lock:
        qs = qs.select_for_update()
    endpoint = qs.first()
    if endpoint is None:
        raise NotFound("webhook endpoint not found", param="id")
    return endpoint


def endpoint_create(*, organization: Organization, url: str, events: list[str] | None = None,
                    description: str = "") -> WebhookEndpoint:
    """Create an enabled endpoint with a fresh secret (no locks; no network)."""
    return WebhookEndpoint.objects.create(
        organization=organization, url=url_check(url), events=list(events or []), description=description or "",
        secret=secret_generate(),
    )


def endpoint_update(*, organization: Organization, endpoint_id: str, url: str | None = None,
                    events: list[str] | None = None, status: str | None = None,
                    description: str | None = None) -> WebhookEndpoint:
    """Spec §1.4: ``url``, ``status`` and ``description`` apply when non-empty, ``events`` whenever given
    (``[]`` = all events). Locks the endpoint row. Disabling stops deliveries not yet attempted (they are
    canceled when their turn comes); enabling again does not replay the gap (``POST /events/:id/resend``)."""
    with transaction.atomic():
        endpoint = endpoint_get(organization=organization, endpoint_id=endpoint_id, lock=True)
        if url:
            endpoint.url = url_check(url)
        if events is not None:
            endpoint.events = list(events)
        if status:
            endpoint.status = status
        if description:
            endpoint.description = description
        endpoint.save()
    return endpoint


def endpoint_delete(*, organization: Organization, endpoint_id: str) -> WebhookEndpoint:
    """Soft delete: the row stays for its deliveries' history; it disappears from the API and receives
    nothing more."""
    with transaction.atomic():
        endpoint = endpoint_get(organization=organization, endpoint_id=endpoint_id, lock=True)
        endpoint.deleted_at = timezone.now()
        endpoint.save(update_fields=["deleted_at", "updated_at"])
    return endpoint


def endpoint_roll_secret(*, organization: Organization, endpoint_id: str) -> WebhookEndpoint:
    """New secret now; the one it replaces keeps verifying for 24 h (deliveries carry both signatures)."""
    with transaction.atomic():
        endpoint = endpoint_get(organization=organization, endpoint_id=endpoint_id, lock=True)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + PREVIOUS_SECRET_TTL
        endpoint.secret = secret_generate()
        endpoint.save()
    return endpoint


def endpoint_signing_secrets(endpoint: WebhookEndpoint, *, now=None) -> list[str]:
    """The secrets a delivery is signed with: the current one, then the previous one while it is valid."""
    now = now or timezone.now()
    found = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        found.append(endpoint.previous_secret)
    return found


def endpoint_data(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict:
    """The response object (spec §1): the secret only when asked (create and roll-secret answers)."""
    out = {
        "id": endpoint.public_id, "url": endpoint.url, "status": endpoint.status, "events": list(endpoint.events or []),
        "description": endpoint.description, "created": endpoint.created_at,
    }
    if endpoint.metadata:
        out["metadata"] = endpoint.metadata
    if with_secret:
        out["secret"] = endpoint.secret
    if endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > timezone.now():
        out["previousSecretExpiresAt"] = endpoint.previous_secret_expires_at
    return out
