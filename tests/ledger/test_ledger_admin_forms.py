"""Back-office add forms on the ledger admin: grant credit and adjust a customer balance.

Both go through the services with the acting staff user (audited with the reason); a refusal shows on the
re-rendered form and writes nothing; existing rows stay read-only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from billing_project.core.models import AuditLog
from ledger import selectors
from ledger.models import BalanceTransaction, CreditGrant, CustomerBalanceTransaction
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

GRANT_ADD = reverse("admin:ledger_creditgrant_add")
BALANCE_ADD = reverse("admin:ledger_customerbalancetransaction_add")


def _counts() -> tuple[int, ...]:
    return (CreditGrant.objects.count(), CustomerBalanceTransaction.objects.count(),
            BalanceTransaction.objects.count(), AuditLog.objects.count(), BillingEvent.objects.count(),
            LogEntry.objects.count())


def _grant_post(org, **overrides) -> dict:
    return {"organization": org.pk, "customer": "erin", "amount_cents": "1500", "currency": "USD",
            "name": "Goodwill", "priority": "2", "eligibility": "api_calls, storage,api_calls", "tags": "",
            "expires_at_0": "", "expires_at_1": "", "reason": "outage on 3 March", **overrides}


def _balance_post(org, **overrides) -> dict:
    return {"organization": org.pk, "customer": "erin", "amount": "2500", "currency": "usd",
            "description": "goodwill for the outage", **overrides}


def test_add_pages_render(admin_client, org_acme):
    page = admin_client.get(GRANT_ADD)
    assert page.status_code == 200
    body = page.content.decode()
    for name in ("organization", "customer", "amount_cents", "currency", "priority", "eligibility", "tags",
                 "expires_at_0", "reason"):
        assert f'name="{name}"' in body
    assert 'name="remaining_cents"' not in body and 'name="account"' not in body
    page = admin_client.get(BALANCE_ADD)
    assert page.status_code == 200
    body = page.content.decode()
    for name in ("organization", "customer", "amount", "currency", "description"):
        assert f'name="{name}"' in body
    assert 'name="ending_balance"' not in body and 'name="type"' not in body


def test_grant_credit_goes_through_the_service_and_is_audited(admin_client, admin_user, org_acme):
    expires = timezone.now() + timedelta(days=30)
    response = admin_client.post(GRANT_ADD, _grant_post(
        org_acme, expires_at_0=expires.strftime("%Y-%m-%d"), expires_at_1=expires.strftime("%H:%M:%S")))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert response.url == reverse("admin:ledger_creditgrant_changelist")

    grant = CreditGrant.objects.get()
    assert (grant.organization, grant.customer, grant.amount_cents, grant.remaining_cents, grant.currency) == (
        org_acme, "erin", 1500, 1500, "usd")
    assert (grant.name, grant.priority, grant.eligibility) == ("Goodwill", 2, ["api_calls", "storage"])
    assert grant.expires_at is not None and abs(grant.expires_at - expires) < timedelta(seconds=1)
    txn = grant.grant_transaction
    assert (txn.type, txn.amount, txn.customer, txn.source_id) == ("credit_grant", 1500, "erin", grant.public_id)
    assert txn.entries.count() == 2
    assert selectors.ledger_audit().ok

    audit = AuditLog.objects.get(action="credit_grant.create")
    assert (audit.organization, audit.actor, audit.reason, audit.object_type, audit.object_id) == (
        org_acme, admin_user.username, "outage on 3 March", "credit_grant", grant.public_id)
    assert audit.data == {"amountCents": 1500, "currency": "usd"}
    event = BillingEvent.objects.get(type="credit_grant.created")
    assert (event.object_id, event.customer_id) == (grant.public_id, "erin")
    # The admin's own history entry points at the created grant.
    log = LogEntry.objects.get()
    assert (log.action_flag, log.object_id, log.user_id) == (ADDITION, str(grant.pk), admin_user.pk)

    # Existing grants stay read-only.
    page = admin_client.get(reverse("admin:ledger_creditgrant_change", args=[grant.pk])).content.decode()
    assert 'name="_save"' not in page


def test_purchased_grant_and_save_and_continue(admin_client, org_acme):
    response = admin_client.post(GRANT_ADD, _grant_post(org_acme, tags="purchased", _continue="1"))
    grant = CreditGrant.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:ledger_creditgrant_change", args=[grant.pk])
    assert grant.tags == "purchased" and grant.grant_transaction.tags == "purchased"
    assert selectors.ledger_audit().ok


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"amount_cents": "0"}, "amount_cents", "greater than or equal to 1"),
    ({"amount_cents": "-5"}, "amount_cents", "greater than or equal to 1"),
    ({"currency": "zzz"}, "currency", "unknown currency: zzz"),
    ({"expires_at_0": "2020-01-01", "expires_at_1": "00:00:00"}, "expires_at", "must be in the future"),
    ({"reason": ""}, "reason", "This field is required."),
    ({"customer": "  "}, "customer", "This field is required."),
])
def test_invalid_grant_shows_the_field_error_and_writes_nothing(admin_client, org_acme, overrides, field,
                                                                message):
    before = _counts()
    response = admin_client.post(GRANT_ADD, _grant_post(org_acme, **overrides))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field] and message in errors[field][0]
    assert _counts() == before


def test_balance_credit_then_debit_beyond_the_balance(admin_client, admin_user, org_acme):
    response = admin_client.post(BALANCE_ADD, _balance_post(org_acme, currency="USD"))
    assert response.status_code == 302, response.content.decode()[:3000]
    cbt = CustomerBalanceTransaction.objects.get()
    assert (cbt.customer, cbt.amount, cbt.currency, cbt.ending_balance, cbt.type, cbt.description) == (
        "erin", 2500, "usd", 2500, "adjustment", "goodwill for the outage")
    audit = AuditLog.objects.get(action="customer_balance.adjust")
    assert (audit.actor, audit.reason, audit.object_id) == (admin_user.username, "goodwill for the outage",
                                                            cbt.public_id)
    log = LogEntry.objects.get()
    assert (log.action_flag, log.object_id) == (ADDITION, str(cbt.pk))
    assert selectors.ledger_audit().ok

    before = _counts()
    response = admin_client.post(BALANCE_ADD, _balance_post(org_acme, amount=str(2**63), description="typo"))
    assert response.status_code == 200  # refused: shown on the form, nothing written
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["amount"]
    assert "less than or equal to 9223372036854775807" in errors["amount"][0]
    assert _counts() == before

    response = admin_client.post(BALANCE_ADD, _balance_post(org_acme, amount="-1000", description="partial refund"))
    assert response.status_code == 302
    assert CustomerBalanceTransaction.objects.order_by("-pk").first().ending_balance == 1500
    # A debit beyond the balance leaves money owed (collected on the next invoice), as through the API.
    response = admin_client.post(BALANCE_ADD, _balance_post(org_acme, amount="-2000", description="chargeback"))
    assert response.status_code == 302
    assert CustomerBalanceTransaction.objects.order_by("-pk").first().ending_balance == -500
    assert selectors.ledger_audit().ok


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"amount": "0"}, "amount", "must be non-zero"),
    ({"currency": "zzz"}, "currency", "unknown currency: zzz"),
    ({"description": ""}, "description", "This field is required."),
])
def test_invalid_balance_adjustment_writes_nothing(admin_client, org_acme, overrides, field, message):
    before = _counts()
    response = admin_client.post(BALANCE_ADD, _balance_post(org_acme, **overrides))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field] and message in errors[field][0]
    assert _counts() == before


def test_staff_without_add_permission_cannot_add(client, org_acme):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="ledger", codename__in=["view_creditgrant", "view_customerbalancetransaction"]))
    client.force_login(user)
    before = _counts()
    assert client.get(GRANT_ADD).status_code == 403
    assert client.post(GRANT_ADD, _grant_post(org_acme)).status_code == 403
    assert client.get(BALANCE_ADD).status_code == 403
    assert client.post(BALANCE_ADD, _balance_post(org_acme)).status_code == 403
    assert _counts() == before
    changelist = client.get(reverse("admin:ledger_creditgrant_changelist")).content.decode()
    assert GRANT_ADD not in changelist


def test_staff_with_add_permission_can_grant(client, org_acme):
    user = User.objects.create_user("finance", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="ledger", codename__in=["add_creditgrant", "view_creditgrant"]))
    client.force_login(user)
    assert client.post(GRANT_ADD, _grant_post(org_acme)).status_code == 302
    assert AuditLog.objects.get(action="credit_grant.create").actor == "finance"
