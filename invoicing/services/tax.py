"""Tax-rate services (writes).

Invariants
- ``country`` is two ASCII letters and ``state`` at most 10 ASCII letters, digits or dashes, both stored
  upper case (the address lookup compares them upper-cased); ``percentage_bp`` is 0..100000 (the check
  constraint ``invoicing_taxrate_bp_range`` backs the upper bound).
- The rate itself (country, state, percentage, inclusive) never changes: invoices copy it into their tax
  lines, and a different rate is a new row. Only the display name and description may be edited.
- Rates are never deleted: deleting archives (``archived_at``), so they stop applying to new calculations
  while the tax lines of past invoices keep pointing at them.
- Every change publishes ``tax_rate.created`` / ``tax_rate.updated`` / ``tax_rate.deleted`` and writes an
  audit record with the actor, in the same transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.errors import NotFound, ValidationError
from billing_project.core.models import Organization
from billing_project.core.times import rfc3339
from invoicing.models import TaxRate
from invoicing.tax import percentage_format
from webhooks import services as webhook_services

BP_MAX = 100_000  # 1000 %
DISPLAY_NAME_MAX = 100
DESCRIPTION_MAX = 255
_COUNTRY = re.compile(r"[A-Z]{2}")
_STATE = re.compile(r"[A-Z0-9-]{0,10}")


@dataclass(frozen=True)
class TaxRateInput:
    """Checked and normalized fields of a new rate."""

    country: str
    state: str
    percentage_bp: int
    inclusive: bool
    display_name: str
    description: str


def tax_rate_data(rate: TaxRate) -> dict[str, Any]:
    """The API body of a rate (also the payload of its events)."""
    return {
        "id": rate.public_id,
        "country": rate.country,
        "state": rate.state,
        "percentageBasisPoints": rate.percentage_bp,
        "percentage": percentage_format(rate.percentage_bp),
        "inclusive": rate.inclusive,
        "displayName": rate.display_name,
        "description": rate.description,
        "active": rate.archived_at is None,
        "createdAt": rfc3339(rate.created_at),
    }


def _text(value: object, *, param: str, max_length: int, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(f"{param} must be a string", param=param, code="invalid_type")
    value = value.strip()
    if required and not value:
        raise ValidationError(f"{param} is required", param=param, code="parameter_missing")
    if len(value) > max_length:
        raise ValidationError(f"{param} must be at most {max_length} characters", param=param,
                              code="too_long")
    return value


def country_normalize(country: object) -> str:
    """An ISO 3166 alpha-2 code, upper-cased (``us`` → ``US``); 400 naming ``country`` otherwise. Rates and
    invoice tax addresses use the same rule."""
    if not isinstance(country, str) or not _COUNTRY.fullmatch(country.strip().upper()):
        raise ValidationError("country must be a two-letter ISO 3166 code", param="country", code="invalid_country")
    return country.strip().upper()


def tax_rate_check(*, country: object, state: object = "", percentage_bp: object, inclusive: object = False,
                   display_name: object, description: object = "") -> TaxRateInput:
    """Validate and normalize the fields of a new rate (pure; the admin form uses it for field errors).

    Errors are ``ValidationError`` naming the JSON field (``param``)."""
    country = country_normalize(country)
    if state is None:
        state = ""
    if not isinstance(state, str) or not _STATE.fullmatch(state.strip().upper()):
        raise ValidationError("state must be at most 10 letters, digits or dashes", param="state",
                              code="invalid_state")
    if isinstance(percentage_bp, bool) or not isinstance(percentage_bp, int) or not 0 <= percentage_bp <= BP_MAX:
        raise ValidationError(f"percentageBasisPoints must be between 0 and {BP_MAX}",
                              param="percentageBasisPoints", code="invalid_percentage")
    if not isinstance(inclusive, bool):
        raise ValidationError("inclusive must be a boolean", param="inclusive", code="invalid_type")
    return TaxRateInput(
        country=country, state=state.strip().upper(), percentage_bp=percentage_bp,
        inclusive=inclusive,
        display_name=_text(display_name, param="displayName", max_length=DISPLAY_NAME_MAX, required=True),
        description=_text(description, param="description", max_length=DESCRIPTION_MAX, required=False),
    )


def _publish(rate: TaxRate, type: str) -> None:
    webhook_services.event_publish(organization=rate.organization, type=type, object_type="tax_rate",
                                   object_id=rate.public_id, data=tax_rate_data(rate))


def _audit(rate: TaxRate, *, actor: str, action: str, reason: str = "", data: dict[str, Any] | None = None) -> None:
    core_services.audit_record(organization=rate.organization, actor=actor, action=action, object_type="tax_rate",
                               object_id=rate.public_id, reason=reason, data=data or tax_rate_data(rate))


def tax_rate_create(*, organization: Organization, country: str, state: str = "", percentage_bp: int,
                    inclusive: bool = False, display_name: str, description: str = "",
                    actor: str = "") -> TaxRate:
    """Create an active rate (``tax_rate_check`` rules).

    No locking (a plain insert); not idempotent (a replay creates a second rate — the API's
    ``Idempotency-Key`` covers retries). Publishes ``tax_rate.created``; audits ``tax_rate.create``."""
    checked = tax_rate_check(country=country, state=state, percentage_bp=percentage_bp, inclusive=inclusive,
                             display_name=display_name, description=description)
    rate = TaxRate(organization=organization, country=checked.country, state=checked.state,
                   percentage_bp=checked.percentage_bp, inclusive=checked.inclusive,
                   display_name=checked.display_name, description=checked.description)
    with transaction.atomic():
        rate.save()
        _publish(rate, "tax_rate.created")
        _audit(rate, actor=actor, action="tax_rate.create")
    return rate


def tax_rate_update(*, organization: Organization, rate_id: str, display_name: str, description: str = "",
                    actor: str = "") -> TaxRate:
    """Rename an active rate (display name and description only: the rate itself is immutable).

    Locks the rate row. Past invoices keep the name they copied into their tax lines. Publishes
    ``tax_rate.updated`` (with ``previous_data``) and audits ``tax_rate.update`` only when something changed."""
    display_name = _text(display_name, param="displayName", max_length=DISPLAY_NAME_MAX, required=True)
    description = _text(description, param="description", max_length=DESCRIPTION_MAX, required=False)
    with transaction.atomic():
        rate = (TaxRate.objects.select_for_update(of=("self",)).select_related("organization")
                .filter(organization=organization, public_id=rate_id, archived_at__isnull=True).first())
        if rate is None:
            raise NotFound("tax rate not found", param="id")
        if (rate.display_name, rate.description) == (display_name, description):
            return rate
        previous = tax_rate_data(rate)
        rate.display_name, rate.description = display_name, description
        rate.save(update_fields=["display_name", "description", "updated_at"])
        webhook_services.event_publish(organization=organization, type="tax_rate.updated", object_type="tax_rate",
                                       object_id=rate.public_id, data=tax_rate_data(rate), previous_data=previous)
        _audit(rate, actor=actor, action="tax_rate.update", data={"previous": previous, "current": tax_rate_data(rate)})
    return rate


def tax_rate_delete(*, organization: Organization, rate_id: str, actor: str = "", reason: str = "") -> TaxRate:
    """Archive an active rate: it stops applying to new tax calculations; invoices that used it keep it.

    Locks the rate row, so of two concurrent deletes one succeeds and the other gets 404 ``tax rate not
    found`` (as does an already archived or another organization's rate). Publishes ``tax_rate.deleted``;
    audits ``tax_rate.delete``."""
    with transaction.atomic():
        rate = (TaxRate.objects.select_for_update(of=("self",)).select_related("organization")
                .filter(organization=organization, public_id=rate_id, archived_at__isnull=True).first())
        if rate is None:
            raise NotFound("tax rate not found", param="id")
        rate.archived_at = timezone.now()
        rate.save(update_fields=["archived_at", "updated_at"])
        _publish(rate, "tax_rate.deleted")
        _audit(rate, actor=actor, action="tax_rate.delete", reason=reason)
    return rate
