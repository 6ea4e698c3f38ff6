"""Core services: organizations and API keys.

Invariants: an API key's secret is returned once, at creation, and only its SHA-256 is stored.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from billing_project.core.errors import ValidationError
from billing_project.core.models import ApiKey, AuditLog, Customer, IdempotencyRecord, Organization, api_key_hash

KEY_PREFIX = "tk_"


def organization_get_or_create(*, slug: str, name: str | None = None) -> Organization:
    """Find an organization by slug or create it."""
    clean = slugify(slug)
    if not clean:
        raise ValidationError("org slug is required", param="org")
    org, _ = Organization.objects.get_or_create(slug=clean, defaults={"name": name or clean})
    return org


def api_key_create(*, organization: Organization, name: str = "default",
                   scopes: list[str] | None = None) -> tuple[ApiKey, str]:
    """Create an API key; return (row, secret). The secret is not recoverable afterwards."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        organization=organization,
        name=name,
        prefix=secret[:11],
        key_hash=api_key_hash(secret),
        scopes=list(scopes if scopes is not None else [ApiKey.SCOPE_ADMIN]),
    )
    return key, secret


def api_key_reuse_or_create(*, organization: Organization, name: str = "default",
                            secret: str | None = None) -> tuple[ApiKey, str, bool]:
    """``secret``'s key if it is an active admin key of ``organization``, else a new admin key; return
    (row, secret, created). Lets a restart reuse a key it kept instead of minting one each time."""
    if secret:
        key = api_key_authenticate(secret)
        if key is not None and key.organization_id == organization.pk and key.has_scope(ApiKey.SCOPE_ADMIN):
            return key, secret, False
    key, secret = api_key_create(organization=organization, name=name)
    return key, secret, True


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key (idempotent): later requests with it get 401."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db()
    return api_key


def api_key_authenticate(secret: str) -> ApiKey | None:
    """The active key for ``secret`` (with its organization), or None."""
    if not secret.startswith(KEY_PREFIX):
        return None
    return (
        ApiKey.objects.select_related("organization")
        .filter(key_hash=api_key_hash(secret), revoked_at__isnull=True)
        .first()
    )


@transaction.atomic
def idempotency_records_purge(*, older_than_hours: int) -> int:
    """Delete idempotency records past their retention window."""
    cutoff = timezone.now() - timedelta(hours=older_than_hours)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def audit_record(*, actor: str, action: str, object_type: str, object_id: str, organization: Organization | None = None,
                 reason: str = "", data: dict | None = None) -> AuditLog:
    """Append one audit row. Call inside the transaction of the action it records."""
    return AuditLog.objects.create(organization=organization, actor=actor or "system", action=action,
                                   object_type=object_type, object_id=object_id, reason=reason, data=data or {})


def customer_ensure(*, organization: Organization, customer_id: str) -> Customer:
    """The customer row for ``customer_id``, created on first use (ids need no prior record, as in the
    original). Race-safe: the unique (organization, customer_id) constraint decides, a loser re-reads.
    Call it before opening a transaction that takes locks (it may insert)."""
    if not customer_id:
        raise ValidationError("customerId is required", param="customerId")
    customer = Customer.objects.filter(organization=organization, customer_id=customer_id).first()
    if customer is not None:
        return customer
    customer, _ = Customer.objects.get_or_create(organization=organization, customer_id=customer_id)
    return customer
