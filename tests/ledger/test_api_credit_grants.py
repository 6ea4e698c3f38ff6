"""Credit grants over HTTP (spec credits.md §2–5; tests.md lines 16–27), with the fixes the issue asks for."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from billing_project.core.models import AuditLog
from ledger import selectors
from ledger.models import BalanceTransaction, CreditGrant
from ledger.services import credits as credit_services
from tests.conftest import assert_error
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

ALICE = "hanzo/alice"


def _grant(api, **overrides):
    body = {"userId": ALICE, "name": "Starter Credit", "amountCents": 500, "currency": "usd", "priority": 0,
            "tags": "starter", "expiresIn": "720h"} | overrides
    response = api.post("/credit-grants", body)
    assert response.status_code == 201, response.content
    return response.json()


def test_create_echoes_the_grant_and_posts_it_on_the_ledger(api, org_acme):
    before = timezone.now()
    body = _grant(api)
    assert body["id"].startswith("cgr_")
    assert {k: body[k] for k in ("userId", "name", "amountCents", "remainingCents", "currency", "priority", "tags")} \
        == {"userId": ALICE, "name": "Starter Credit", "amountCents": 500, "remainingCents": 500, "currency": "usd",
            "priority": 0, "tags": "starter"}
    assert body["eligibility"] == [] and body["voided"] is False and body["active"] is True
    grant = CreditGrant.objects.get(public_id=body["id"])
    assert timedelta(days=30) - timedelta(seconds=5) < grant.expires_at - before < timedelta(days=30, seconds=5)
    assert body["expiresAt"].endswith("Z")
    txn = grant.grant_transaction
    assert (txn.type, txn.amount, txn.customer, txn.source_id) == ("credit_grant", 500, ALICE, body["id"])
    legs = {(e.account.kind, e.direction, e.amount) for e in txn.entries.select_related("account")}
    assert legs == {("promotions", "debit", 500), ("credit_grant", "credit", 500)}
    event = BillingEvent.objects.get(type="credit_grant.created")
    assert event.object_id == body["id"] and event.data["amountCents"] == 500


def test_purchased_credit_is_funded_from_cash_not_promotions(api):
    body = _grant(api, tags="purchased")
    grant = CreditGrant.objects.get(public_id=body["id"])
    kinds = {e.account.kind for e in grant.grant_transaction.entries.select_related("account")}
    assert kinds == {"funding", "credit_grant"}


def test_second_grant_and_without_expiry(api):
    body = _grant(api, name="Promo $10", amountCents=1000, priority=1, tags="promo", expiresIn="")
    assert body["amountCents"] == 1000 and body["priority"] == 1
    assert "expiresAt" not in body


@pytest.mark.parametrize("overrides, status, message, param", [
    ({"userId": ""}, 400, "userId is required", "userId"),
    ({"userId": None}, 400, "userId is required", "userId"),
    ({"amountCents": 0}, 400, "amountCents must be positive", "amountCents"),
    ({"amountCents": -5}, 400, "amountCents must be positive", "amountCents"),
    ({"amountCents": "500"}, 400, "invalid request body: amountCents must be an integer", "amountCents"),
    ({"amountCents": 2 ** 63}, 400, "invalid request body: amountCents must fit in a signed 64-bit integer",
     "amountCents"),
    ({"expiresIn": "not-a-duration"}, 400, "invalid expiresIn duration", "expiresIn"),
    ({"currency": "zzz"}, 400, None, "currency"),
    ({"effectiveAt": "tomorrow"}, 400, "effectiveAt must be an RFC 3339 timestamp", "effectiveAt"),
    ({"eligibility": "mtr_1"}, 400, None, "eligibility"),
])
def test_create_validation(api, overrides, status, message, param):
    body = {"userId": ALICE, "amountCents": 500} | overrides
    if overrides.get("userId") is None and "userId" in overrides:
        body.pop("userId")
    assert_error(api.post("/credit-grants", body), status, message, param=param)
    assert not CreditGrant.objects.exists()
    assert not BalanceTransaction.objects.exists()


def test_create_rejects_a_non_object_body(api):
    assert_error(api.post("/credit-grants", raw="[1]"), 400, "invalid request body")
    assert_error(api.post("/credit-grants", raw="{"), 400, "invalid request body")


def test_go_durations_and_days_are_accepted(api):
    for text, delta in [("90m", timedelta(minutes=90)), ("1h30m", timedelta(minutes=90)), ("30d", timedelta(days=30)),
                        ("300ms", timedelta(milliseconds=300))]:
        grant = CreditGrant.objects.get(public_id=_grant(api, expiresIn=text)["id"])
        assert grant.expires_at - grant.effective_at == delta


@pytest.mark.parametrize("expires_in", ["0", "0s", "-1h"])
def test_zero_or_negative_expires_in_gives_an_expired_grant_as_the_original(api, org_acme, expires_in):
    body = _grant(api, expiresIn=expires_in)
    assert body["remainingCents"] == 500
    grant = CreditGrant.objects.get(public_id=body["id"])
    assert grant.expires_at <= grant.effective_at  # "0": usable only at that very instant
    later = timezone.now() + timedelta(milliseconds=1)
    assert selectors.credit_balance(organization=org_acme, user=ALICE, now=later) == {}
    assert credit_services.credit_grants_expire(now=later)["expired"] == 1  # the sweeper posts it to breakage
    listed = api.get("/credit-grants", {"userId": ALICE}).json()["grants"][0]
    assert (listed["remainingCents"], listed["expiredCents"], listed["active"]) == (500, 500, False)
    assert selectors.ledger_audit().ok


def test_voided_grant_reports_its_remainder_at_void(api, org_acme):
    """Item: a voided grant lists remainingCents as it was when voided, and voidedAt; the ledger moved the
    remainder out, and the grant counts 0 in the credit balance (list, void answer and balance agree)."""
    grant = _grant(api, amountCents=1000, expiresIn="")
    credit_services.burn_credits(organization=org_acme, user=ALICE, currency="usd",
                                 charges=[credit_services.Charge(amount=300)], idempotency_key="burn-1")
    _grant(api, amountCents=50, expiresIn="")
    before = timezone.now()
    assert api.post(f"/credit-grants/{grant['id']}/void").json() == {"id": grant["id"], "voided": True,
                                                                      "voidedCents": 700}
    listed = {g["id"]: g for g in api.get("/credit-grants", {"userId": ALICE}).json()["grants"]}[grant["id"]]
    assert (listed["amountCents"], listed["remainingCents"], listed["voidedCents"]) == (1000, 700, 700)
    assert (listed["voided"], listed["active"]) == (True, False)
    assert before - timedelta(seconds=1) < datetime.fromisoformat(listed["voidedAt"]) < timezone.now()
    assert api.get("/credit-balance", {"userId": ALICE}).json()["balances"] == [{"currency": "usd", "available": 50}]
    stored = CreditGrant.objects.get(public_id=grant["id"])
    assert (stored.remaining_cents, stored.voided_cents) == (0, 700)  # the ledger figure: moved out
    assert credit_services.grant_remaining_from_entries(stored) == 0
    event = BillingEvent.objects.get(type="credit_grant.voided")
    assert event.data["remainingCents"] == 700 and event.data["voidedCents"] == 700
    assert selectors.ledger_audit().ok


def test_future_effective_grant_is_not_active_yet(api):
    later = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    body = _grant(api, effectiveAt=later.isoformat().replace("+00:00", "Z"))
    assert body["active"] is False
    assert api.get("/credit-balance", {"userId": ALICE}).json()["balances"] == []


def test_list_returns_every_grant_with_active_flags(api, globex_api):
    first = _grant(api)
    second = _grant(api, name="Promo $10", amountCents=1000, priority=1, tags="promo")
    _grant(api, userId="hanzo/bob")
    response = api.get("/credit-grants", {"userId": ALICE})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [g["id"] for g in body["grants"]] == [first["id"], second["id"]]
    assert {g["name"] for g in body["grants"]} == {"Starter Credit", "Promo $10"}
    assert all(g["active"] and not g["voided"] for g in body["grants"])
    assert globex_api.get("/credit-grants", {"userId": ALICE}).json() == {"grants": [], "count": 0}


def test_list_and_balance_need_user_id(api):
    assert_error(api.get("/credit-grants"), 400, "userId query parameter is required", param="userId")
    assert_error(api.get("/credit-balance", {"userId": "  "}), 400, "userId query parameter is required",
                 param="userId")


def test_credit_balance_then_void_flow(api, org_acme):
    """tests.md 23–27: 500 + 1000 → 1500; void the 500 → 1000; again → already voided; unknown → not found."""
    first = _grant(api)
    _grant(api, name="Promo $10", amountCents=1000, priority=1, tags="promo")
    _grant(api, amountCents=700, currency="eur")
    body = api.get("/credit-balance", {"userId": ALICE}).json()
    assert body == {"userId": ALICE, "balances": [{"currency": "eur", "available": 700},
                                                   {"currency": "usd", "available": 1500}]}

    response = api.post(f"/credit-grants/{first['id']}/void", {"reason": "customer churned"})
    assert response.status_code == 200
    assert response.json() == {"id": first["id"], "voided": True, "voidedCents": 500}
    assert_error(api.post(f"/credit-grants/{first['id']}/void"), 400, "grant is already voided", param="id")
    assert_error(api.post("/credit-grants/cgr_nope/void"), 404, "credit grant not found")
    usd = [b for b in api.get("/credit-balance", {"userId": ALICE}).json()["balances"] if b["currency"] == "usd"]
    assert usd == [{"currency": "usd", "available": 1000}]

    grant = CreditGrant.objects.get(public_id=first["id"])
    assert (grant.remaining_cents, grant.voided_cents, grant.void_reason) == (0, 500, "customer churned")
    void_txn = BalanceTransaction.objects.get(type="credit_void")
    assert void_txn.amount == 500 and void_txn.reverses_id == grant.grant_transaction_id
    audit = AuditLog.objects.get(action="credit_grant.void")
    assert audit.object_id == first["id"] and audit.actor.startswith("api:") and audit.data["voidedCents"] == 500
    event = BillingEvent.objects.get(type="credit_grant.voided")
    assert event.data["voidedCents"] == 500 and event.previous_data["remainingCents"] == 500
    assert selectors.ledger_audit().ok


def test_void_of_other_tenants_grant_is_404(api, globex_api):
    grant = _grant(api)
    assert_error(globex_api.post(f"/credit-grants/{grant['id']}/void"), 404, "credit grant not found")
    assert CreditGrant.objects.get(public_id=grant["id"]).voided_at is None


def test_expired_grant_is_listed_inactive_and_not_in_balance(api, org_acme):
    grant = _grant(api, expiresIn="1h")
    CreditGrant.objects.filter(public_id=grant["id"]).update(
        effective_at=timezone.now() - timedelta(hours=3), expires_at=timezone.now() - timedelta(hours=1))
    listed = api.get("/credit-grants", {"userId": ALICE}).json()["grants"][0]
    assert listed["active"] is False
    assert api.get("/credit-balance", {"userId": ALICE}).json()["balances"] == []


def test_grant_endpoints_are_in_the_schema(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/v1/billing/credit-grants", "/api/v1/billing/credit-balance",
                 "/api/v1/billing/credit-grants/{grant_id}/void"):
        assert path in schema


@pytest.mark.parametrize("priority", [-(2**63), -5_000_000, 5_000_000, 2**63 - 1])
def test_any_64_bit_priority_is_accepted_as_the_original(api, priority):
    body = _grant(api, priority=priority)
    assert body["priority"] == priority
    assert CreditGrant.objects.get(public_id=body["id"]).priority == priority


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '"text"'])
def test_void_refuses_a_body_that_is_not_an_object(api, raw):
    """Issue 10 §2: an action takes an empty body or a JSON object; anything else is 400 and voids nothing
    (stricter than the original, which ignored the body)."""
    grant = _grant(api)
    response = api.post(f"/credit-grants/{grant['id']}/void", raw=raw)
    assert response.status_code == 400, response.content
    assert CreditGrant.objects.get(public_id=grant["id"]).voided_at is None


@pytest.mark.parametrize("raw", ['{"reason": 5}', "null", ""])
def test_void_ignores_what_it_does_not_use(api, raw):
    grant = _grant(api)
    response = api.post(f"/credit-grants/{grant['id']}/void", raw=raw)
    assert response.status_code == 200, response.content
    assert response.json()["voided"] is True
    assert CreditGrant.objects.get(public_id=grant["id"]).void_reason == ""


def test_void_keeps_a_long_reason_cut_to_500(api):
    grant = _grant(api)
    assert api.post(f"/credit-grants/{grant['id']}/void", {"reason": "x" * 600}).status_code == 200
    assert CreditGrant.objects.get(public_id=grant["id"]).void_reason == "x" * 500
