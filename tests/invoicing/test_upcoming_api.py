"""GET /invoices/upcoming (spec invoicing.md §4, fixed): usage since the customer's last invoice priced as the
preview prices it, minus what credits would cover; nothing burned, written or published; a subscription's
upcoming lines come from the hook the subscriptions app registers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from invoicing.selectors import upcoming as upcoming_selectors
from invoicing.services import invoices as invoice_services
from ledger.models import BalanceTransaction, CreditGrant
from tests.conftest import assert_error
from tests.invoicing.test_preview_api import _now_hour, events, meter, rule
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

ALICE = "hanzo/alice"


def upcoming(api, **params):
    return api.get("/invoices/upcoming", {"userId": ALICE} | params)


@pytest.fixture
def tokens(api):
    meter_id = meter(api)
    events(api, meter_id, [1500, 500, 1000, 999])
    rule(api, meter_id, unitPrice=1)
    return meter_id


def test_usage_is_priced_and_credits_are_only_previewed(api, tokens):
    grant = api.post("/credit-grants", {"userId": ALICE, "amountCents": 1000}).json()
    before = (BalanceTransaction.objects.count(), BillingEvent.objects.count())
    first = upcoming(api)
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["userId"] == ALICE and body["currency"] == "usd"
    assert body["periodStart"] == "0001-01-01T00:00:00Z"
    assert body["lineItems"] == [{
        "id": f"li_usage_{tokens}", "type": "usage", "description": "Input Tokens usage", "meterId": tokens,
        "quantity": 3999, "unitPrice": 1, "amount": 3999, "currency": "usd",
        "periodStart": "0001-01-01T00:00:00Z", "periodEnd": "0001-01-01T00:00:00Z"}]
    assert (body["subtotal"], body["creditApplied"], body["amountDue"]) == (3999, 1000, 2999)
    assert upcoming(api).json() == body
    assert CreditGrant.objects.get(public_id=grant["id"]).remaining_cents == 1000
    assert (BalanceTransaction.objects.count(), BillingEvent.objects.count()) == before


def test_only_usage_since_the_last_invoice(api, org_acme):
    meter_id = meter(api)
    rule(api, meter_id, unitPrice=10)
    cut = _now_hour() - timedelta(hours=5)
    events(api, meter_id, [1], at=cut - timedelta(hours=1))
    events(api, meter_id, [2], at=cut)
    invoice_services.invoice_create(organization=org_acme, customer=ALICE, period_start=cut - timedelta(days=30),
                                    period_end=cut)
    body = upcoming(api).json()
    assert body["periodStart"] == cut.isoformat().replace("+00:00", "Z")
    assert body["lineItems"][0]["quantity"] == 2 and body["subtotal"] == 20


def test_void_invoices_do_not_count_as_the_last_invoice(api, org_acme, tokens):
    invoice = invoice_services.invoice_create(organization=org_acme, customer=ALICE)
    invoice_services.invoice_void(organization=org_acme, invoice_id=invoice.public_id)
    assert upcoming(api).json()["subtotal"] == 3999


def test_user_without_usage_gets_zeros(api, tokens):
    body = api.get("/invoices/upcoming", {"userId": "hanzo/nobody"}).json()
    assert body["lineItems"] == [] and (body["subtotal"], body["creditApplied"], body["amountDue"]) == (0, 0, 0)


@pytest.mark.parametrize("params", [{}, {"userId": ""}, {"userId": "  "}])
def test_user_id_is_required(api, params):
    assert_error(api.get("/invoices/upcoming", params), 400, "userId is required", param="userId")


def test_user_id_is_trimmed(api, tokens):
    assert api.get("/invoices/upcoming", {"userId": f"  {ALICE} "}).json()["subtotal"] == 3999


def test_unknown_currency_is_400(api):
    assert_error(upcoming(api, currency="xyz"), 400, param="currency")


def test_a_subscription_without_the_hook_is_not_found(api, tokens, monkeypatch):
    monkeypatch.setattr(upcoming_selectors, "_SUBSCRIPTION_LINES", [])
    assert_error(upcoming(api, subscriptionId="sub_nope"), 404, "subscription not found", param="subscriptionId")


def test_a_subscription_uses_the_registered_hook(api, org_acme, monkeypatch):
    seen = []

    def hook(*, organization, customer_id, subscription_id, now):
        seen.append((organization, customer_id, subscription_id))
        if subscription_id != "sub_known":
            return None
        return [{"id": "li_sub", "type": "subscription", "description": "Pro (monthly)", "planId": "pro",
                 "amount": 2500, "currency": "usd", "periodStart": "2030-01-01T00:00:00Z",
                 "periodEnd": "2030-02-01T00:00:00Z"}]

    monkeypatch.setattr(upcoming_selectors, "_SUBSCRIPTION_LINES", [])
    upcoming_selectors.subscription_lines_register(hook)
    api.post("/credit-grants", {"userId": ALICE, "amountCents": 500})
    body = upcoming(api, subscriptionId="sub_known").json()
    assert body["subscriptionId"] == "sub_known" and body["lineItems"][0]["planId"] == "pro"
    assert (body["subtotal"], body["creditApplied"], body["amountDue"]) == (2500, 500, 2000)
    assert seen == [(org_acme, ALICE, "sub_known")]
    assert_error(upcoming(api, subscriptionId="sub_other"), 404, "subscription not found")


def test_another_organization_sees_none_of_the_usage(api, globex_api, tokens):
    assert globex_api.get("/invoices/upcoming", {"userId": ALICE}).json()["subtotal"] == 0


def test_a_subscription_with_lines_in_several_currencies_needs_one(api, monkeypatch):
    def hook(*, organization, customer_id, subscription_id, now):
        return [{"id": f"li_{c}", "type": "subscription", "description": c, "amount": 100, "currency": c,
                 "periodStart": "2030-01-01T00:00:00Z", "periodEnd": "2030-02-01T00:00:00Z"} for c in ("eur", "usd")]

    monkeypatch.setattr(upcoming_selectors, "_SUBSCRIPTION_LINES", [hook])
    assert_error(upcoming(api, subscriptionId="sub_x"), 400, param="currency")
    body = upcoming(api, subscriptionId="sub_x", currency="EUR").json()
    assert body["currency"] == "eur" and [line["id"] for line in body["lineItems"]] == ["li_eur"]
