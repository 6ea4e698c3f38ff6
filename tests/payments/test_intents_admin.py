"""The payment-intent back office: read-only pages render with attempts inline."""

from __future__ import annotations

import pytest
from django.urls import reverse

from payments.models import PaymentAttempt, PaymentIntent, SandboxOperation
from payments.services import intents as svc
from tests.payments.intents_helpers import method

pytestmark = pytest.mark.django_db


def test_intent_pages_render_with_attempts_inline(admin_client, org_acme):
    pm = method(org_acme, "acme/admin")
    intent = svc.payment_intent_create(organization=org_acme, customer_id="acme/admin", amount=1234,
                                       payment_method_id=pm.public_id)
    svc.payment_intent_confirm(organization=org_acme, intent_id=intent.public_id)
    for model in (PaymentIntent, PaymentAttempt, SandboxOperation):
        name = f"admin:payments_{model._meta.model_name}"
        assert admin_client.get(reverse(f"{name}_changelist")).status_code == 200
        row = model.objects.get()
        page = admin_client.get(reverse(f"{name}_change", args=[row.pk]))
        assert page.status_code == 200
    detail = admin_client.get(reverse("admin:payments_paymentintent_change", args=[intent.pk])).content.decode()
    assert f"{intent.public_id}:confirm:1" in detail
    assert admin_client.get(reverse("admin:payments_paymentintent_add")).status_code == 403
