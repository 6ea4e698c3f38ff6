"""The refunds and disputes back office: pages render; the audited "refund" action on payment intents; dispute
evidence and close actions call the services with the acting user."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from billing_project.core.models import AuditLog
from payments.models import Dispute, PaymentIntent, Refund
from tests.payments.test_disputes_api import disputed_intent
from tests.payments.test_refunds_api import succeeded_intent

pytestmark = pytest.mark.django_db


def test_refund_and_dispute_pages_render(admin_client, org_acme):
    intent = disputed_intent(org_acme, 1000)
    for model in (Refund, Dispute):
        name = f"admin:payments_{model._meta.model_name}"
        assert admin_client.get(reverse(f"{name}_changelist")).status_code == 200
        assert admin_client.get(reverse(f"{name}_add")).status_code == 403
    dispute = Dispute.objects.get(payment_intent=intent)
    assert admin_client.get(reverse("admin:payments_dispute_change", args=[dispute.pk])).status_code == 200


def test_refund_action_on_intents_asks_why_and_is_audited(admin_client, admin_user, org_acme):
    intent = succeeded_intent(org_acme, 1500)
    url = reverse("admin:payments_paymentintent_changelist")
    form = {"action": "refund_remaining", ACTION_CHECKBOX_NAME: [intent.pk]}
    asked = admin_client.post(url, form)
    assert asked.status_code == 200 and b"Why?" in asked.content
    assert not Refund.objects.exists()
    done = admin_client.post(url, {**form, "apply": "1", "reason": "goodwill"})
    assert done.status_code == 302
    refund = Refund.objects.get()
    assert (refund.amount, refund.status, refund.actor) == (1500, "succeeded", admin_user.get_username())
    assert PaymentIntent.objects.get(pk=intent.pk).amount_refunded == 1500
    log = AuditLog.objects.get(action="refund")
    assert (log.actor, log.reason, log.object_id) == (admin_user.get_username(), "goodwill", refund.public_id)
    admin_client.post(url, {**form, "apply": "1", "reason": "again"})  # nothing left: reported, not raised
    assert Refund.objects.count() == 1
    assert admin_client.get(reverse("admin:payments_refund_change", args=[refund.pk])).status_code == 200


def test_dispute_actions_submit_evidence_and_close(admin_client, admin_user, org_acme):
    dispute = Dispute.objects.get(payment_intent=disputed_intent(org_acme, 400))
    url = reverse("admin:payments_dispute_changelist")
    base = {ACTION_CHECKBOX_NAME: [dispute.pk]}
    response = admin_client.post(url, {**base, "action": "submit_evidence", "apply": "1",
                                       "productDescription": "API plan", "customerName": ""})
    assert response.status_code == 302
    dispute.refresh_from_db()
    assert (dispute.status, dispute.evidence) == ("under_review", {"productDescription": "API plan"})
    response = admin_client.post(url, {**base, "action": "close_won", "apply": "1", "reason": "bank agreed"})
    assert response.status_code == 302
    dispute.refresh_from_db()
    assert (dispute.status, dispute.funds, dispute.closed_by) == ("won", "released", admin_user.get_username())
    admin_client.post(url, {**base, "action": "close_lost", "apply": "1", "reason": "oops"})
    assert Dispute.objects.get(pk=dispute.pk).status == "won"  # refused (409), reported as a warning
    assert set(AuditLog.objects.filter(object_id=dispute.public_id).values_list("action", flat=True)) == {
        "dispute.evidence", "dispute.close"}
