"""Credit grants in the back office: list, status filter, and the void action (asks why, audits)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from billing_project.core.models import AuditLog
from ledger.models import BalanceTransaction, CreditGrant
from ledger.services import credits as credit_services

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:ledger_creditgrant_changelist")


@pytest.fixture
def grants(org_acme):
    a = credit_services.credit_grant_create(organization=org_acme, user="erin", amount_cents=1_500, name="Promo")
    b = credit_services.credit_grant_create(organization=org_acme, user="frank", amount_cents=200)
    return a, b


def test_list_and_status_filter(admin_client, grants):
    a, b = grants
    credit_services.credit_grant_void(organization=a.organization, grant_id=b.public_id)
    page = admin_client.get(CHANGELIST).content.decode()
    assert a.public_id in page and b.public_id in page and "$15.00" in page
    page = admin_client.get(CHANGELIST, {"status": "voided"}).content.decode()
    assert b.public_id in page and a.public_id not in page
    page = admin_client.get(CHANGELIST, {"status": "usable"}).content.decode()
    assert a.public_id in page and b.public_id not in page
    assert admin_client.get(reverse("admin:ledger_creditgrant_change", args=[a.pk])).status_code == 200


def test_void_action_asks_for_a_reason_then_voids_and_audits(admin_client, admin_user, grants):
    a, b = grants
    ids = [str(a.pk), str(b.pk)]
    page = admin_client.post(CHANGELIST, {"action": "void_grants", "_selected_action": ids})
    assert page.status_code == 200 and b"Why?" in page.content and a.public_id.encode() in page.content
    assert not CreditGrant.objects.filter(voided_at__isnull=False).exists()  # nothing happens before confirming

    response = admin_client.post(CHANGELIST, {"action": "void_grants", "_selected_action": ids, "apply": "1",
                                              "reason": ""})
    assert response.status_code == 200  # an empty reason is refused: the form comes back
    assert not CreditGrant.objects.filter(voided_at__isnull=False).exists()

    response = admin_client.post(CHANGELIST, {"action": "void_grants", "_selected_action": ids, "apply": "1",
                                              "reason": "duplicate promo"}, follow=True)
    assert response.status_code == 200
    assert "Void credit grants: 2 done." in response.content.decode()
    assert set(CreditGrant.objects.values_list("voided_by", "void_reason")) == {("admin", "duplicate promo")}
    audits = AuditLog.objects.filter(action="credit_grant.void").order_by("object_id")
    assert {x.object_id for x in audits} == {a.public_id, b.public_id}
    assert all(x.actor == admin_user.username and x.reason == "duplicate promo" for x in audits)
    assert BalanceTransaction.objects.filter(type="credit_void").count() == 2

    # Voiding again reports the conflict per grant and changes nothing.
    response = admin_client.post(CHANGELIST, {"action": "void_grants", "_selected_action": [str(a.pk)],
                                              "apply": "1", "reason": "again"}, follow=True)
    assert "grant is already voided" in response.content.decode()
    assert AuditLog.objects.filter(action="credit_grant.void").count() == 2


def test_existing_grants_cannot_be_edited_in_the_admin(admin_client, grants):
    # Adding goes through the service (test_ledger_admin_forms.py); an existing grant is read-only.
    page = admin_client.get(reverse("admin:ledger_creditgrant_change", args=[grants[0].pk])).content.decode()
    assert 'name="_save"' not in page
