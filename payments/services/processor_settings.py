"""Per-organization payment settings: which registered processor charges an organization's customers.

Invariants
- The value is blank (the deployment's ``PAYMENTS_PROCESSOR``, then the sandbox) or a processor registered in
  ``settings.PAYMENTS_PROCESSORS``; anything else is a 400 naming ``processor`` and stores nothing.
- One row per organization (unique); changing it locks that row. Payments already sent to a processor stay
  with it (attempts and refunds record the processor's name; ``registry.processor_holding``).
- A change emits ``payment_settings.updated`` (previous value) and, from the admin, an audit record.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from billing_project.core import services as core_services
from billing_project.core.errors import ValidationError
from billing_project.core.models import Organization
from payments.models import OrganizationPaymentSettings
from payments.models.settings import processor_validate
from payments.processors import registry
from webhooks import services as webhook_services


def payment_settings_data(organization: Organization) -> dict[str, Any]:
    choice = registry.processor_choice(organization)
    return {"processor": choice.name, "processorSource": choice.source,
            "processorsAvailable": sorted(registry.processors_available())}


def organization_processor_set(*, organization: Organization, processor: str, actor: str = "",
                               reason: str = "") -> OrganizationPaymentSettings:
    """Choose the organization's processor (``""``: back to the deployment's default). 400 ``unknown payment
    processor …`` (param ``processor``) for a name not registered. Idempotent: the same value changes nothing
    and emits nothing. Locks the organization's settings row. Emits ``payment_settings.updated``."""
    processor = (processor or "").strip()
    try:
        processor_validate(processor)
    except DjangoValidationError as exc:
        raise ValidationError(exc.messages[0], param="processor") from None
    OrganizationPaymentSettings.objects.get_or_create(organization=organization)
    with transaction.atomic():
        row = OrganizationPaymentSettings.objects.select_for_update().get(organization=organization)
        previous = row.processor
        if previous == processor:
            return row
        row.processor = processor
        row.save(update_fields=["processor", "updated_at"])
        webhook_services.event_publish(organization=organization, type="payment_settings.updated",
                                       object_type="payment_settings", object_id=organization.public_id,
                                       data=payment_settings_data(organization),
                                       previous_data={"processor": previous or None})
        if actor:
            core_services.audit_record(organization=organization, actor=actor, action="payment_settings.processor",
                                       object_type="payment_settings", object_id=organization.public_id,
                                       reason=reason, data={"processor": processor, "previous": previous})
    return row
