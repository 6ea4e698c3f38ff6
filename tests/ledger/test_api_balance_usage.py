"""API: GET /balance, GET /balance/all, GET /usage, POST /usage (spec ledger.md §2-§5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.models import BalanceTransaction
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

ALICE = "hanzo/alice"
BOB = "hanzo/bob"
USAGE_KEYS = {"transactionId", "amount", "currency", "notes", "metadata", "createdAt"}


def deposit(api, amount, user=ALICE, **extra):
    r = api.post("/deposit", {"user": user, "amount": amount, **extra})
    assert r.status_code == 201, r.content
    return r.json()


def usage(api, amount, user=ALICE, **extra):
    r = api.post("/usage", {"user": user, "amount": amount, **extra})
    assert r.status_code == 201, r.content
    return r.json()


def balance(api, user=ALICE, **params):
    r = api.get("/balance", {"user": user, **params})
    assert r.status_code == 200, r.content
    return r.json()


def events(api, **params):
    r = api.get("/events", params)
    assert r.status_code == 200, r.content
    return r.json()


def parse_time(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


# --- GET /balance -----------------------------------------------------------------------------------

def test_balance_of_unknown_user_is_zero_in_usd(api):
    r = api.get("/balance", {"user": ALICE})
    assert r.status_code == 200
    assert r.json() == {"user": ALICE, "currency": "usd", "balance": 0, "holds": 0, "available": 0}


@pytest.mark.parametrize("params", [{}, {"user": ""}, {"user": "   "}, {"currency": "usd"}])
def test_balance_requires_user(api, params):
    r = api.get("/balance", params)
    assert_error(r, 400, "user query parameter is required", param="user")
    assert r.json()["error"]["code"] == "parameter_missing"


def test_balance_trims_user_and_lowercases_currency(api):
    deposit(api, 1200, currency="eur")
    r = api.get("/balance", {"user": f"  {ALICE}  ", "currency": "EUR"})
    assert r.status_code == 200
    assert r.json() == {"user": ALICE, "currency": "eur", "balance": 1200, "holds": 0, "available": 1200}


def test_balance_unknown_currency_is_400(api):
    assert_error(api.get("/balance", {"user": ALICE, "currency": "xyz"}), 400, "unknown currency: xyz",
                 param="currency")


def test_balance_reflects_deposits_and_usage_per_currency(api):
    deposit(api, 1000)
    deposit(api, 250)
    usage(api, 300)
    deposit(api, 999, currency="eur")
    assert balance(api) == {"user": ALICE, "currency": "usd", "balance": 950, "holds": 0, "available": 950}
    assert balance(api, currency="eur")["balance"] == 999
    assert balance(api, user=BOB)["balance"] == 0


def test_usage_may_overdraw_and_available_is_clamped_at_zero(api):
    deposit(api, 100)
    usage(api, 350)
    assert balance(api) == {"user": ALICE, "currency": "usd", "balance": -250, "holds": 0, "available": 0}


def test_balance_reports_holds_and_available(api):
    deposit(api, 1000)
    assert api.post("/holds", {"user": ALICE, "amount": 300}).status_code == 201
    assert balance(api) == {"user": ALICE, "currency": "usd", "balance": 1000, "holds": 300, "available": 700}


def test_balance_is_tenant_isolated(api, globex_api):
    deposit(api, 1000)
    assert balance(globex_api) == {"user": ALICE, "currency": "usd", "balance": 0, "holds": 0, "available": 0}
    r = globex_api.get("/balance/all", {"user": ALICE})
    assert r.json() == {"user": ALICE, "balances": []}


def test_balance_requires_auth(anon_api):
    assert_error(anon_api.get("/balance", {"user": ALICE}), 401, "No access token provided.")


# --- GET /balance/all -------------------------------------------------------------------------------

def test_balance_all_empty_for_unknown_user(api):
    r = api.get("/balance/all", {"user": ALICE})
    assert r.status_code == 200
    assert r.json() == {"user": ALICE, "balances": []}


@pytest.mark.parametrize("params", [{}, {"user": ""}, {"user": " \t "}])
def test_balance_all_requires_user(api, params):
    assert_error(api.get("/balance/all", params), 400, "user query parameter is required", param="user")


def test_balance_all_lists_every_currency_sorted(api):
    deposit(api, 500, currency="usd")
    deposit(api, 700, currency="EUR")
    deposit(api, 300, currency="jpy")
    usage(api, 200, currency="eur")
    api.post("/holds", {"user": ALICE, "amount": 100, "currency": "jpy"})
    deposit(api, 1, user=BOB, currency="gbp")
    r = api.get("/balance/all", {"user": f" {ALICE} "})
    assert r.status_code == 200
    assert r.json() == {"user": ALICE, "balances": [
        {"currency": "eur", "balance": 500, "holds": 0, "available": 500},
        {"currency": "jpy", "balance": 300, "holds": 100, "available": 200},
        {"currency": "usd", "balance": 500, "holds": 0, "available": 500},
    ]}


def test_balance_all_is_not_the_balance_route(api):
    deposit(api, 5)
    r = api.get("/balance/all", {"user": ALICE, "currency": "usd"})
    assert set(r.json()) == {"user", "balances"}


# --- POST /usage ------------------------------------------------------------------------------------

def test_record_usage_returns_201_withdrawal(api):
    deposit(api, 1000)
    r = api.post("/usage", {"user": ALICE, "amount": 42, "currency": "USD", "model": "gpt-4", "totalTokens": 150})
    assert r.status_code == 201, r.content
    body = r.json()
    assert set(body) == {"transactionId", "user", "amount", "currency", "type"}
    assert body["transactionId"].startswith("txn_")
    assert body["user"] == ALICE
    assert body["amount"] == 42
    assert body["currency"] == "usd"
    assert body["type"] == "withdraw"
    assert balance(api)["balance"] == 958


def test_record_usage_stores_notes_metadata_and_tag(api):
    body = {"user": ALICE, "amount": 7, "model": "claude", "provider": "anthropic", "promptTokens": 10,
            "completionTokens": 5, "totalTokens": 15, "requestId": "req-1", "premium": True, "stream": True,
            "status": "ok", "clientIp": "10.0.0.1", "unknownField": "ignored"}
    txn_id = api.post("/usage", body).json()["transactionId"]
    row = api.get("/usage", {"user": ALICE}).json()["usage"][0]
    assert set(row) == USAGE_KEYS
    assert row["transactionId"] == txn_id
    assert row["amount"] == 7 and row["currency"] == "usd"
    assert row["notes"] == "API usage: claude (15 tokens)"
    assert row["metadata"] == {"model": "claude", "provider": "anthropic", "promptTokens": 10,
                               "completionTokens": 5, "totalTokens": 15, "requestId": "req-1",
                               "premium": True, "stream": True, "status": "ok", "clientIp": "10.0.0.1"}
    assert abs(parse_time(row["createdAt"]) - datetime.now(UTC)) < timedelta(minutes=1)
    txn = BalanceTransaction.objects.get(public_id=txn_id)
    assert (txn.type, txn.tags, txn.customer) == ("withdraw", "api-usage", ALICE)


def test_record_usage_defaults(api):
    txn_id = usage(api, 3)["transactionId"]
    row = api.get("/usage", {"user": ALICE}).json()["usage"][0]
    assert row["transactionId"] == txn_id
    assert row["notes"] == "API usage:  (0 tokens)"
    assert row["metadata"] == {"model": "", "provider": "", "promptTokens": 0, "completionTokens": 0,
                               "totalTokens": 0, "requestId": "", "premium": False, "stream": False,
                               "status": "", "clientIp": ""}


@pytest.mark.parametrize("extra", [{"amount": 0}, {}])
def test_record_usage_zero_amount_is_skipped_and_stores_nothing(api, extra):
    r = api.post("/usage", {"user": ALICE, **extra})
    assert r.status_code == 200
    assert r.json() == {"user": ALICE, "amount": 0, "status": "skipped"}
    assert BalanceTransaction.objects.count() == 0
    assert events(api) == []
    assert api.get("/balance/all", {"user": ALICE}).json()["balances"] == []


def test_record_usage_negative_amount_is_skipped_as_the_original(api):
    r = api.post("/usage", {"user": ALICE, "amount": -5})
    assert r.status_code == 200, r.content
    assert r.json() == {"user": ALICE, "amount": 0, "status": "skipped"}
    assert BalanceTransaction.objects.count() == 0


@pytest.mark.parametrize("raw", ["", "{not json", "[1, 2]", '"text"', "null"])
def test_record_usage_unparseable_body_is_400(api, raw):
    assert_error(api.post("/usage", raw=raw), 400, "invalid request body")


@pytest.mark.parametrize("body", [{"amount": 5}, {"user": "", "amount": 5}, {"user": None, "amount": 5}])
def test_record_usage_requires_user(api, body):
    assert_error(api.post("/usage", body), 400, "user is required", param="user")


@pytest.mark.parametrize("field,value", [("amount", "5"), ("amount", 1.5), ("totalTokens", "many"),
                                         ("premium", "yes"), ("user", 12), ("requestId", 7)])
def test_record_usage_wrong_types_are_400(api, field, value):
    body = {"user": ALICE, "amount": 5, field: value}
    error = assert_error(api.post("/usage", body), 400, param=field)
    assert error["message"].startswith("invalid request body: ")
    assert field in error["message"]


def test_record_usage_same_request_id_charges_once(api):
    deposit(api, 1000)
    body = {"user": ALICE, "amount": 120, "requestId": "req-42", "model": "m"}
    first = api.post("/usage", body)
    second = api.post("/usage", body)
    assert first.status_code == 201 and second.status_code == 201
    assert second.json()["transactionId"] == first.json()["transactionId"]
    assert balance(api)["balance"] == 880
    assert api.get("/usage", {"user": ALICE}).json()["count"] == 1
    assert len(events(api, type="balance_transaction.created", objectId=first.json()["transactionId"])) == 1


def test_record_usage_same_request_id_different_amount_is_409(api):
    deposit(api, 1000)
    api.post("/usage", {"user": ALICE, "amount": 120, "requestId": "req-43"})
    r = api.post("/usage", {"user": ALICE, "amount": 121, "requestId": "req-43"})
    error = assert_error(r, 409, "requestId req-43 was already recorded with a different user, amount or currency",
                         param="requestId")
    assert error["code"] == "idempotency_key_reused"
    assert balance(api)["balance"] == 880


def test_record_usage_without_request_id_charges_every_time(api):
    usage(api, 10)
    usage(api, 10)
    assert balance(api)["balance"] == -20


def test_record_usage_request_ids_are_per_organization(api, globex_api):
    a = usage(api, 10, requestId="shared")
    b = usage(globex_api, 10, requestId="shared")
    assert a["transactionId"] != b["transactionId"]
    assert balance(api)["balance"] == balance(globex_api)["balance"] == -10


def test_record_usage_writes_balance_transaction_event(api):
    body = usage(api, 55, model="m", totalTokens=9)
    found = events(api, type="balance_transaction.created", objectId=body["transactionId"])
    assert len(found) == 1
    event = found[0]
    assert event["id"].startswith("evt_")
    assert event["objectType"] == "balance_transaction"
    assert event["objectId"] == body["transactionId"]
    assert event["customerId"] == ALICE
    assert event["data"]["id"] == body["transactionId"]
    assert event["data"]["type"] == "withdraw"
    assert event["data"]["amount"] == 55
    assert event["data"]["currency"] == "usd"
    assert event["data"]["tags"] == "api-usage"
    assert event["data"]["user"] == ALICE


def test_record_usage_unknown_currency_is_400(api):
    assert_error(api.post("/usage", {"user": ALICE, "amount": 5, "currency": "zzz"}), 400, param="currency",
                 contains="unknown currency")


# --- GET /usage -------------------------------------------------------------------------------------

def test_usage_list_empty(api):
    r = api.get("/usage", {"user": ALICE})
    assert r.status_code == 200
    assert r.json() == {"user": ALICE, "count": 0, "usage": [], "hasMore": False}


@pytest.mark.parametrize("params", [{}, {"user": ""}, {"user": "  "}])
def test_usage_list_requires_user(api, params):
    assert_error(api.get("/usage", params), 400, "user query parameter is required", param="user")


def test_usage_list_only_api_usage_withdrawals_of_the_user_newest_first(api):
    deposit(api, 5000)
    first = usage(api, 10)["transactionId"]
    second = usage(api, 20, currency="eur")["transactionId"]
    third = usage(api, 30)["transactionId"]
    usage(api, 40, user=BOB)
    hold = api.post("/holds", {"user": ALICE, "amount": 100}).json()
    api.post(f"/holds/{hold['id']}/capture", {"amount": 60})
    api.post("/refund", {"user": ALICE, "amount": 5, "originalTransactionId": first})
    r = api.get("/usage", {"user": f" {ALICE} "})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == ALICE
    assert body["count"] == 3
    assert body["hasMore"] is False
    assert [u["transactionId"] for u in body["usage"]] == [third, second, first]
    assert [u["amount"] for u in body["usage"]] == [30, 20, 10]
    assert [u["currency"] for u in body["usage"]] == ["usd", "eur", "usd"]


def test_usage_list_filters_by_currency(api):
    usage(api, 10)
    eur = usage(api, 20, currency="eur")["transactionId"]
    body = api.get("/usage", {"user": ALICE, "currency": "EUR"}).json()
    assert body["count"] == 1
    assert [u["transactionId"] for u in body["usage"]] == [eur]
    assert api.get("/usage", {"user": ALICE, "currency": "gbp"}).json()["count"] == 0


def test_usage_list_paginates(api):
    ids = [usage(api, n)["transactionId"] for n in range(1, 6)]
    newest_first = list(reversed(ids))
    page1 = api.get("/usage", {"user": ALICE, "limit": 2}).json()
    assert [u["transactionId"] for u in page1["usage"]] == newest_first[:2]
    assert page1["count"] == 2 and page1["hasMore"] is True
    page2 = api.get("/usage", {"user": ALICE, "limit": 2, "startingAfter": newest_first[1]}).json()
    assert [u["transactionId"] for u in page2["usage"]] == newest_first[2:4]
    assert page2["hasMore"] is True
    page3 = api.get("/usage", {"user": ALICE, "limit": 2, "startingAfter": newest_first[3]}).json()
    assert [u["transactionId"] for u in page3["usage"]] == newest_first[4:]
    assert page3["count"] == 1 and page3["hasMore"] is False
    exact = api.get("/usage", {"user": ALICE, "limit": 5}).json()
    assert exact["count"] == 5 and exact["hasMore"] is False


def test_usage_list_bad_paging_is_400(api):
    assert_error(api.get("/usage", {"user": ALICE, "limit": 0}), 400,
                 "limit must be an integer between 1 and 1000", param="limit")
    assert_error(api.get("/usage", {"user": ALICE, "startingAfter": "txn_missing"}), 400,
                 "startingAfter: no such object: txn_missing", param="startingAfter")


def test_usage_list_is_tenant_isolated(api, globex_api):
    txn_id = usage(api, 10)["transactionId"]
    assert globex_api.get("/usage", {"user": ALICE}).json() == {"user": ALICE, "count": 0, "usage": [],
                                                                 "hasMore": False}
    # another tenant's id is no cursor here
    assert_error(globex_api.get("/usage", {"user": ALICE, "startingAfter": txn_id}), 400, param="startingAfter")


# --- tokens: an alias of totalTokens (commerce.js BillingClient) -------------------------------------

def test_record_usage_accepts_tokens_as_total_tokens(api):
    txn_id = usage(api, 5, model="m", tokens=321)["transactionId"]
    row = api.get("/usage", {"user": ALICE}).json()["usage"][0]
    assert row["transactionId"] == txn_id
    assert row["notes"] == "API usage: m (321 tokens)"
    assert row["metadata"]["totalTokens"] == 321 and "tokens" not in row["metadata"]


def test_record_usage_tokens_equal_to_total_tokens_is_fine(api):
    usage(api, 5, tokens=7, totalTokens=7)
    assert api.get("/usage", {"user": ALICE}).json()["usage"][0]["metadata"]["totalTokens"] == 7


def test_record_usage_tokens_differing_from_total_tokens_is_400(api):
    r = api.post("/usage", {"user": ALICE, "amount": 5, "tokens": 8, "totalTokens": 7})
    assert_error(r, 400, "tokens (8) must equal totalTokens (7) when both are sent", param="tokens")
    assert BalanceTransaction.objects.count() == 0


@pytest.mark.parametrize("value", ["many", 1.5, True, 2**63])
def test_record_usage_bad_tokens_is_400_naming_tokens(api, value):
    error = assert_error(api.post("/usage", {"user": ALICE, "amount": 5, "tokens": value}), 400, param="tokens")
    assert error["message"].startswith("invalid request body: tokens ")
    assert BalanceTransaction.objects.count() == 0
