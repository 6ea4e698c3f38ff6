"""Reads of setup intents, scoped to one organization."""

from __future__ import annotations

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from payments.models import SetupIntent


def setup_intent_get(*, organization: Organization, setup_intent_id: str) -> SetupIntent:
    intent = (SetupIntent.objects.select_related("customer")
              .filter(organization=organization, public_id=setup_intent_id).first())
    if intent is None:
        raise NotFound("setup intent not found", param="id")
    return intent


