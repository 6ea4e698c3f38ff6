"""Customer balance over HTTP (spec invoicing.md §15) with weakness 9 fixed: reads never write, currencies are
normalised, adjustments are atomic, answered 200 (as the original), may go below zero (money owed), evented
and replayable."""

from __future__ import annotations

from datetime import datetime

import pytest

from billing_project.core.models import AuditLog
from ledger import selectors
from ledger.models import Account, BalanceTransaction, CustomerBalanceTransaction
from tests.conftest import assert_error
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

ALICE = "cus_alice"
BOB = "cus_bob"


def _adjust(api, amount, *, customer=ALICE, status=200, **extra):
    response = api.post("/customer-balance/adjustments", {"customerId": customer, "amount": amount} | extra)
    assert response.status_code == status, response.content
    return response.json()


def _balance(api, customer=ALICE, **params):
    response = api.get("/customer-balance", {"customerId": customer, **params})
    assert response.status_code == 200, response.content
    return response.json()


# --- GET /customer-balance -----------------------------------------------------------------------------

def test_get_unknown_customer_is_zero_and_writes_nothing(api):
    accounts, events = Account.objects.count(), BillingEvent.objects.count()
    assert _balance(api) == {"customerId": ALICE, "currency": "usd", "balance": 0}
    assert _balance(api, currency="EUR") == {"customerId": ALICE, "currency": "eur", "balance": 0}
    assert (Account.objects.count(), BillingEvent.objects.count()) == (accounts, events)


def test_get_requires_customer_id(api):
    assert_error(api.get("/customer-balance"), 400, "customerId is required", param="customerId")
    assert_error(api.get("/customer-balance", {"customerId": "  "}), 400, "customerId is required")


def test_get_normalises_currency_and_rejects_unknown(api):
    _adjust(api, 700, currency="usd")
    assert _balance(api, currency="USD") == {"customerId": ALICE, "currency": "usd", "balance": 700}
    assert _balance(api, currency=" Usd ")["balance"] == 700
    assert_error(api.get("/customer-balance", {"customerId": ALICE, "currency": "XYZ"}), 400,
                 "unknown currency: XYZ", param="currency")


# --- POST /customer-balance/adjustments --------------------------------------------------------------------

def test_adjust_credits_returns_200_with_the_transaction_object(api, org_acme):
    body = _adjust(api, 1_500, currency="USD", description="goodwill", metadata={"ticket": "T-1"})
    assert body["id"].startswith("cbtxn_")
    assert {k: body[k] for k in ("customerId", "amount", "currency", "type", "endingBalance", "description",
                                 "metadata")} == {
        "customerId": ALICE, "amount": 1_500, "currency": "usd", "type": "adjustment", "endingBalance": 1_500,
        "description": "goodwill", "metadata": {"ticket": "T-1"}}
    assert body["created"].endswith("Z") and datetime.fromisoformat(body["created"].replace("Z", "+00:00"))
    assert not {"invoiceId", "creditNoteId", "sourceRef"} & body.keys()
    assert _balance(api)["balance"] == 1_500

    cbt = CustomerBalanceTransaction.objects.get(public_id=body["id"])
    legs = {(e.account.kind, e.direction, e.amount) for e in cbt.transaction.entries.select_related("account")}
    assert legs == {("balance_adjustments", "debit", 1_500), ("customer_balance", "credit", 1_500)}
    assert cbt.transaction.type == BalanceTransaction.TYPE_BALANCE_ADJUSTMENT
    assert selectors.ledger_audit().ok


def test_adjust_omits_unset_optional_fields(api):
    body = _adjust(api, 10)
    assert set(body) == {"id", "customerId", "amount", "currency", "type", "endingBalance", "created"}


def test_adjust_debit_and_running_ending_balance(api):
    _adjust(api, 1_000)
    body = _adjust(api, -400)
    assert (body["amount"], body["endingBalance"]) == (-400, 600)
    legs = {(e.account.kind, e.direction, e.amount) for e in
            CustomerBalanceTransaction.objects.get(public_id=body["id"]).transaction.entries.select_related("account")}
    assert legs == {("customer_balance", "debit", 400), ("balance_adjustments", "credit", 400)}
    assert _adjust(api, -600)["endingBalance"] == 0
    assert _balance(api)["balance"] == 0
    assert selectors.ledger_audit().ok


def test_debit_beyond_the_balance_makes_it_negative_money_owed(api):
    _adjust(api, 300)
    body = _adjust(api, -301)
    assert (body["amount"], body["endingBalance"]) == (-301, -1)
    legs = {(e.account.kind, e.direction, e.amount) for e in
            CustomerBalanceTransaction.objects.get(public_id=body["id"]).transaction.entries.select_related("account")}
    assert legs == {("customer_balance", "debit", 301), ("balance_adjustments", "credit", 301)}
    assert _balance(api)["balance"] == -1
    assert _adjust(api, -750, customer=BOB)["endingBalance"] == -750
    assert _balance(api, customer=BOB)["balance"] == -750
    assert _adjust(api, 1_000, customer=BOB)["endingBalance"] == 250
    assert selectors.ledger_audit().ok


@pytest.mark.parametrize(("payload", "message", "param"), [
    ({"amount": 100}, "customerId is required", "customerId"),
    ({"customerId": "", "amount": 100}, "customerId is required", "customerId"),
    ({"customerId": "   ", "amount": 100}, "customerId is required", "customerId"),
    ({"customerId": None, "amount": 100}, "customerId is required", "customerId"),
    ({"customerId": ALICE, "amount": 0}, "amount must be non-zero", "amount"),
    ({"customerId": ALICE}, "amount must be non-zero", "amount"),
    ({"customerId": ALICE, "amount": "100"}, "invalid request body: amount must be an integer", "amount"),
    ({"customerId": ALICE, "amount": 1.5}, "invalid request body: amount must be an integer", "amount"),
    ({"customerId": ALICE, "amount": True}, "invalid request body: amount must be an integer", "amount"),
    ({"customerId": ALICE, "amount": 2**63}, "invalid request body: amount must fit in a signed 64-bit integer",
     "amount"),
    ({"customerId": ALICE, "amount": 5, "currency": "zzz"}, "unknown currency: zzz", "currency"),
    ({"customerId": ALICE, "amount": 5, "metadata": []}, "invalid request body: metadata must be an object",
     "metadata"),
])
def test_adjust_validation_errors(api, payload, message, param):
    assert_error(api.post("/customer-balance/adjustments", payload), 400, message, param=param)
    assert CustomerBalanceTransaction.objects.count() == 0
    assert not Account.objects.filter(kind=Account.KIND_CUSTOMER_BALANCE).exists()


@pytest.mark.parametrize("raw", ["{not json", "", "[1, 2]", '"text"'])
def test_adjust_invalid_body(api, raw):
    assert_error(api.post("/customer-balance/adjustments", raw=raw), 400, "invalid request body")


def test_adjust_publishes_event_and_audits(api, org_acme):
    body = _adjust(api, 250, description="refund for outage")
    event = BillingEvent.objects.get(type="customer_balance.adjusted")
    assert (event.organization_id, event.object_type, event.object_id, event.customer_id) == (
        org_acme.pk, "customer_balance_transaction", body["id"], ALICE)
    assert event.data == body | {"balance": 250}
    audit = AuditLog.objects.get(action="customer_balance.adjust")
    assert audit.object_id == body["id"] and audit.actor.startswith("api:")
    assert audit.data["amount"] == 250 and audit.reason == "refund for outage"


def test_idempotency_key_replays_an_adjustment_once(api):
    first = api.post("/customer-balance/adjustments", {"customerId": ALICE, "amount": 900}, idempotency_key="adj-1")
    again = api.post("/customer-balance/adjustments", {"customerId": ALICE, "amount": 900}, idempotency_key="adj-1")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert CustomerBalanceTransaction.objects.count() == 1
    assert BillingEvent.objects.filter(type="customer_balance.adjusted").count() == 1
    assert _balance(api)["balance"] == 900
    other = api.post("/customer-balance/adjustments", {"customerId": ALICE, "amount": 901}, idempotency_key="adj-1")
    assert other.status_code == 409


# --- GET /balance-transactions --------------------------------------------------------------------------

def test_list_is_a_bare_array_newest_first(api):
    ids = [_adjust(api, amount)["id"] for amount in (100, 200, -50)]
    bob = _adjust(api, 7, customer=BOB)["id"]
    response = api.get("/balance-transactions", {"customerId": ALICE})
    assert response.status_code == 200
    rows = response.json()
    assert isinstance(rows, list)
    assert [r["id"] for r in rows] == ids[::-1]
    assert [r["endingBalance"] for r in rows] == [250, 300, 100]
    assert rows[0] == {"id": ids[2], "customerId": ALICE, "amount": -50, "currency": "usd", "type": "adjustment",
                       "endingBalance": 250, "created": rows[0]["created"]}
    everyone = api.get("/balance-transactions").json()
    assert [r["id"] for r in everyone] == [bob, *ids[::-1]]


def test_list_limit(api):
    for amount in (1, 2, 3):
        _adjust(api, amount)
    assert [r["amount"] for r in api.get("/balance-transactions", {"limit": "2"}).json()] == [3, 2]
    for bad in ("0", "1001", "abc", "-1"):
        assert_error(api.get("/balance-transactions", {"limit": bad}), 400,
                     "limit must be an integer between 1 and 1000", param="limit")


def test_list_empty(api):
    assert api.get("/balance-transactions", {"customerId": "cus_nobody"}).json() == []


# --- tenancy -------------------------------------------------------------------------------------------

def test_tenant_isolation(api, globex_api):
    _adjust(api, 500)
    assert _balance(globex_api)["balance"] == 0
    assert globex_api.get("/balance-transactions").json() == []
    assert globex_api.get("/balance-transactions", {"customerId": ALICE}).json() == []
    # Globex's adjustments of a customer with the same id touch only Globex's balance.
    _adjust(globex_api, -1)
    _adjust(globex_api, 41)
    assert _balance(api)["balance"] == 500 and _balance(globex_api)["balance"] == 40
    assert [r["amount"] for r in api.get("/balance-transactions").json()] == [500]
    assert selectors.ledger_audit().ok


def test_requires_authentication(anon_api):
    assert anon_api.get("/customer-balance", {"customerId": ALICE}).status_code == 401
    assert anon_api.post("/customer-balance/adjustments", {"customerId": ALICE, "amount": 1}).status_code == 401
    assert anon_api.get("/balance-transactions").status_code == 401
