"""The finance back office: every model's pages render with data, filters narrow, API keys are created and
revoked through services, the ledger is read-only except for the overdraft setting."""

from __future__ import annotations

import html
import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing_project.core import services as core_services
from billing_project.core.models import ApiKey, AuditLog, IdempotencyRecord, Organization, api_key_hash
from ledger import services
from ledger.models import Account, BalanceTransaction, CreditGrant, Entry, Hold, Lot
from ledger.services import credits as credit_services
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

LEDGER_MODELS = (Account, BalanceTransaction, Entry, Hold, Lot)
PROJECT_APPS = ("core", "ledger", "invoicing", "subscriptions", "payments", "webhooks")
READ_ONLY_MODELS = (*LEDGER_MODELS, BillingEvent, IdempotencyRecord)


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def changelist(client, model, params: dict | None = None) -> str:
    response = client.get(url(model, "changelist"), params or {})
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


@pytest.fixture
def state(org_acme, org_globex, api):
    """A little of everything, all through services (and one API call for an idempotency record)."""
    deposit = services.deposit_create(organization=org_acme, user="alice", amount=10_000, currency="usd",
                                      idempotency_key="dep-alice-1")
    usage = services.usage_record(organization=org_acme, user="alice", amount=250, currency="usd",
                                  request_id="req-1")
    hold = services.hold_place(organization=org_acme, user="alice", amount=100, currency="usd")
    starter = services.starter_credit_grant(organization=org_acme, user="bob")
    euro = services.deposit_create(organization=org_globex, user="carol", amount=700, currency="eur")
    response = api.post("/deposit", {"user": "dave", "amount": 300}, idempotency_key="api-dep-1")
    assert response.status_code == 201, response.content
    grant = credit_services.credit_grant_create(organization=org_acme, user="erin", amount_cents=1_500)
    voided = credit_services.credit_grant_void(organization=org_acme, grant_id=credit_services.credit_grant_create(
        organization=org_acme, user="erin", amount_cents=40).public_id, actor="staff", reason="test")
    return {"deposit": deposit, "usage": usage, "hold": hold, "starter": starter, "euro": euro, "grant": grant,
            "voided": voided}


def test_every_model_of_ours_is_registered():
    models = {m for m in apps.get_models() if m._meta.app_label in PROJECT_APPS}
    assert models - set(admin.site._registry) == set()


def test_changelists_and_detail_pages_render_with_data(admin_client, state):
    hold, starter = state["hold"], state["starter"]
    expected = {
        Organization: "globex",
        ApiKey: ApiKey.objects.first().prefix,
        IdempotencyRecord: "api-dep-1",
        Account: "$97.50",  # alice: 100.00 - 2.50, formatted from minor units
        BalanceTransaction: state["usage"].public_id,
        Entry: state["usage"].public_id,
        Hold: hold.public_id,
        Lot: str(Lot.objects.get(transaction=starter).wallet),
        BillingEvent: "balance_transaction.created",
        CreditGrant: "$15.00",
        AuditLog: "credit_grant.void",
    }
    for model, text in expected.items():
        assert text in changelist(admin_client, model), model
        obj = model.objects.order_by("pk").last()
        response = admin_client.get(url(model, "change", obj.pk))
        assert response.status_code == 200, (model, response.status_code)


def test_transaction_detail_shows_its_entries(admin_client, state):
    usage = state["usage"]
    page = admin_client.get(url(BalanceTransaction, "change", usage.pk)).content.decode()
    assert usage.public_id in page
    assert "wallet:alice:usd" in page and "usage_revenue:house:usd" in page
    assert "debit" in page and "credit" in page and "$2.50" in page
    assert 'name="_save"' not in page  # nothing to save: read-only


def test_transaction_filters(admin_client, state):
    usage, deposit, euro, starter = state["usage"], state["deposit"], state["euro"], state["starter"]

    page = changelist(admin_client, BalanceTransaction, {"type__exact": "withdraw"})
    assert usage.public_id in page and deposit.public_id not in page

    page = changelist(admin_client, BalanceTransaction, {"currency": "eur"})
    assert euro.public_id in page and usage.public_id not in page

    page = changelist(admin_client, BalanceTransaction, {"customer": "bob"})
    assert starter.public_id in page and usage.public_id not in page
    assert 'value="bob"' in page  # the text box keeps what was typed

    page = changelist(admin_client, BalanceTransaction, {"organization__id__exact": euro.organization_id})
    assert euro.public_id in page and usage.public_id not in page

    # The date filter's own "Today" link, and a range that excludes everything.
    page = changelist(admin_client, BalanceTransaction)
    today = re.search(r'href="(\?created_at__gte=[^"]+)"[^>]*>\s*Today', page).group(1)
    response = admin_client.get(url(BalanceTransaction, "changelist") + html.unescape(today))
    assert usage.public_id in response.content.decode()
    page = changelist(admin_client, BalanceTransaction, {"created_at__lt": "2000-01-01 00:00:00+00:00"})
    assert usage.public_id not in page

    page = changelist(admin_client, BalanceTransaction, {"q": usage.public_id})
    assert usage.public_id in page and deposit.public_id not in page
    page = changelist(admin_client, BalanceTransaction, {"q": "dep-alice-1"})
    assert deposit.public_id in page and usage.public_id not in page

    # Filters combine: the customer box keeps the type filter as a hidden field.
    page = changelist(admin_client, BalanceTransaction, {"type__exact": "withdraw", "customer": "bob"})
    assert usage.public_id not in page and starter.public_id not in page
    assert 'type="hidden" name="type__exact" value="withdraw"' in page


def test_other_filters(admin_client, state):
    page = changelist(admin_client, Account, {"kind__exact": "wallet", "currency": "eur"})
    assert "carol" in page and "alice" not in page
    page = changelist(admin_client, Account, {"q": "bob"})
    assert "bob" in page and "alice" not in page
    page = changelist(admin_client, Entry, {"customer": "carol"})
    assert state["euro"].public_id in page and state["usage"].public_id not in page
    page = changelist(admin_client, Hold, {"status": "pending"})
    assert state["hold"].public_id in page
    page = changelist(admin_client, Hold, {"status": "captured"})
    assert state["hold"].public_id not in page
    page = changelist(admin_client, Lot, {"customer": "bob"})
    assert "wallet:bob:usd" in page
    page = changelist(admin_client, BillingEvent, {"type": "hold.created"})
    assert state["hold"].public_id in page and state["usage"].public_id not in page
    page = changelist(admin_client, BillingEvent, {"q": state["usage"].public_id})
    assert state["usage"].public_id in page and state["deposit"].public_id not in page
    page = changelist(admin_client, Organization, {"q": "glob"})
    assert "globex" in page and ">acme<" not in page


@pytest.mark.parametrize("model", [Account, BalanceTransaction, Entry, Lot, ApiKey, BillingEvent])
def test_changelist_queries_do_not_grow_with_rows(admin_client, org_acme, model):
    services.deposit_create(organization=org_acme, user="u0", amount=100, currency="usd", expires_in_days=1)
    core_services.api_key_create(organization=org_acme)
    with CaptureQueriesContext(connection) as few:
        changelist(admin_client, model)
    for i in range(1, 6):
        services.deposit_create(organization=org_acme, user=f"u{i}", amount=100, currency="usd",
                                expires_in_days=1)
        core_services.api_key_create(organization=org_acme)
    with CaptureQueriesContext(connection) as many:
        changelist(admin_client, model)
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


# --- API keys -------------------------------------------------------------------------------------------

def test_api_key_add_form_asks_only_organization_name_and_scopes(admin_client, org_acme):
    page = admin_client.get(url(ApiKey, "add")).content.decode()
    for field in ("organization", "name", "scopes"):
        assert f'name="{field}"' in page
    for field in ("prefix", "key_hash", "revoked_at"):
        assert f'name="{field}"' not in page


def test_api_key_add_shows_the_secret_once_and_stores_only_its_hash(admin_client, org_acme):
    response = admin_client.post(url(ApiKey, "add"), {"organization": org_acme.pk, "name": "finance export",
                                                      "scopes": ["admin"]}, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    secret_messages = [m for m in shown if "will not be shown again" in m]
    assert len(secret_messages) == 1
    secret = secret_messages[0].rsplit(" ", 1)[1]
    assert secret.startswith(core_services.KEY_PREFIX)
    assert secret in response.content.decode()

    key = ApiKey.objects.get(name="finance export")
    assert key.organization == org_acme and key.scopes == ["admin"]
    assert key.key_hash == api_key_hash(secret) and secret.startswith(key.prefix)
    stored = [str(v) for v in ApiKey.objects.filter(pk=key.pk).values().get().values()]
    assert not any(secret in value for value in stored)
    assert core_services.api_key_authenticate(secret) == key
    assert LogEntry.objects.filter(object_id=str(key.pk), action_flag=ADDITION).exists()

    # Once only: neither the list nor the key's own page shows it again.
    assert secret not in changelist(admin_client, ApiKey)
    assert secret not in admin_client.get(url(ApiKey, "change", key.pk)).content.decode()


def test_api_key_add_requires_a_scope_and_an_organization(admin_client, org_acme):
    response = admin_client.post(url(ApiKey, "add"), {"name": "x"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors.keys() == {"organization", "scopes"}
    assert not ApiKey.objects.exists()


def test_revoke_action(admin_client, org_acme):
    keep, keep_secret = core_services.api_key_create(organization=org_acme, name="keep")
    gone, gone_secret = core_services.api_key_create(organization=org_acme, name="gone")
    response = admin_client.post(url(ApiKey, "changelist"),
                                 {"action": "revoke_keys", "_selected_action": [gone.pk]}, follow=True)
    assert response.status_code == 200
    assert "Revoked 1 API key(s)." in [str(m) for m in response.context["messages"]]
    gone.refresh_from_db()
    keep.refresh_from_db()
    assert gone.revoked_at is not None and keep.revoked_at is None
    assert core_services.api_key_authenticate(gone_secret) is None
    assert core_services.api_key_authenticate(keep_secret) == keep
    assert LogEntry.objects.filter(object_id=str(gone.pk), action_flag=CHANGE, change_message="Revoked").exists()

    revoked_at = gone.revoked_at
    admin_client.post(url(ApiKey, "changelist"), {"action": "revoke_keys", "_selected_action": [gone.pk]})
    gone.refresh_from_db()
    assert gone.revoked_at == revoked_at  # revoking twice changes nothing

    page = changelist(admin_client, ApiKey, {"revoked_at__isempty": "0"})
    assert gone.prefix in page and keep.prefix not in page


def test_api_keys_cannot_be_deleted_or_edited(admin_client, org_acme):
    key, _ = core_services.api_key_create(organization=org_acme, name="k")
    assert admin_client.get(url(ApiKey, "delete", key.pk)).status_code == 403
    assert admin_client.post(url(ApiKey, "change", key.pk), {"name": "renamed"}).status_code == 403
    assert "delete_selected" not in changelist(admin_client, ApiKey)
    key.refresh_from_db()
    assert key.name == "k"


# --- the ledger is read-only ----------------------------------------------------------------------------

@pytest.mark.parametrize("model", READ_ONLY_MODELS)
def test_read_only_models_have_no_add_change_or_delete(admin_client, state, model):
    obj = model.objects.order_by("pk").first()
    count = model.objects.count()
    assert admin_client.get(url(model, "add")).status_code == 403
    assert admin_client.post(url(model, "add"), {}).status_code == 403
    assert admin_client.post(url(model, "change", obj.pk), {}).status_code == 403
    assert admin_client.get(url(model, "delete", obj.pk)).status_code == 403
    assert admin_client.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    response = admin_client.post(url(model, "changelist"), {"action": "delete_selected",
                                                            "_selected_action": [obj.pk], "post": "yes"})
    assert model.objects.count() == count
    page = admin_client.get(url(model, "change", obj.pk)).content.decode()
    assert 'name="_save"' not in page
    assert response.status_code in (200, 302)


def test_overdraft_actions_flip_allow_negative(admin_client, state):
    wallet = Account.objects.get(kind=Account.KIND_WALLET, customer="alice", currency="usd")
    holds = Account.objects.get(kind=Account.KIND_HOLDS, customer="alice")
    assert wallet.allow_negative is True

    response = admin_client.post(url(Account, "changelist"),
                                 {"action": "forbid_overdraft", "_selected_action": [wallet.pk, holds.pk]},
                                 follow=True)
    shown = [str(m) for m in response.context["messages"]]
    assert "Forbade overdraft on 1 wallet(s)." in shown
    assert any("Skipped 1 non-wallet account(s): holds:alice:usd" in m for m in shown)
    wallet.refresh_from_db()
    assert wallet.allow_negative is False
    assert LogEntry.objects.filter(object_id=str(wallet.pk), change_message="Forbade overdraft").exists()

    with pytest.raises(Exception, match="insufficient available balance"):
        services.usage_record(organization=wallet.organization, user="alice", amount=1_000_000, currency="usd")

    admin_client.post(url(Account, "changelist"), {"action": "allow_overdraft", "_selected_action": [wallet.pk]})
    wallet.refresh_from_db()
    assert wallet.allow_negative is True
    page = changelist(admin_client, Account, {"allow_negative__exact": "1", "q": "alice"})
    assert "wallet" in page
