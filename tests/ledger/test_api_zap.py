"""API: POST /zap — the JSON-RPC-style envelope over the five balance operations (spec ledger.md §9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.models import BalanceTransaction
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

ALICE = "hanzo/alice"


def zap(api, method, params=None, *, rpc_id="1", status=200) -> dict:
    envelope = {"method": method, "id": rpc_id}
    if params is not None:
        envelope["params"] = params
    r = api.post("/zap", envelope)
    assert r.status_code == status, (r.status_code, r.content)
    body = r.json()
    assert body["id"] == rpc_id
    return body


def result(api, method, params, **kwargs) -> dict:
    body = zap(api, method, params, **kwargs)
    assert "error" not in body, body
    assert set(body) == {"id", "result"}
    return body["result"]


def rpc_error(api, method, params, code, message, **kwargs) -> None:
    body = zap(api, method, params, **kwargs)
    assert "result" not in body, body
    assert set(body) == {"id", "error"}
    assert body["error"] == {"code": code, "message": message}


def raw_zap(api, raw: str) -> tuple[int, dict]:
    r = api.post("/zap", raw=raw)
    return r.status_code, r.json()


# --- envelope errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["", "{not json", "\xff"])
def test_unparseable_body_is_400_parse_error(api, raw):
    status, body = raw_zap(api, raw)
    assert status == 400
    assert body["id"] == ""
    assert body["error"]["code"] == -32700
    assert body["error"]["message"].startswith("parse error: ")
    assert "result" not in body


@pytest.mark.parametrize("raw", [
    '{"method": "billing.getBalance", "id": 1, "params": {"user": "u"}}',  # id must be a string
    '{"method": 5, "id": "1", "params": {}}',
    "[1, 2, 3]",
    '"just a string"',
])
def test_invalid_envelope_is_400_parse_error(api, raw):
    status, body = raw_zap(api, raw)
    assert status == 400
    assert body == {"id": "", "error": {"code": -32700, "message": "parse error: invalid envelope"}}


@pytest.mark.parametrize("envelope", [{"id": "7", "params": {}}, {"id": "7", "method": "", "params": {}}])
def test_missing_method_is_400_invalid_request(api, envelope):
    r = api.post("/zap", envelope)
    assert r.status_code == 400
    assert r.json() == {"id": "7", "error": {"code": -32600, "message": "method is required"}}


def test_missing_id_answers_with_empty_id(api):
    r = api.post("/zap", {"method": "billing.getBalance", "params": {"user": ALICE}})
    assert r.status_code == 200
    assert r.json()["id"] == ""
    assert r.json()["result"]["user"] == ALICE


def test_unknown_method_is_200_method_not_found(api):
    rpc_error(api, "billing.transfer", {"user": ALICE}, -32601, "method not found: billing.transfer", rpc_id="x9")


@pytest.mark.parametrize("params", [None, [1, 2], "user", 5])
def test_params_must_be_an_object(api, params):
    envelope = {"method": "billing.getBalance", "id": "p"}
    if params is not None:
        envelope["params"] = params
    r = api.post("/zap", envelope)
    assert r.status_code == 200
    assert r.json() == {"id": "p", "error": {"code": -32602, "message": "invalid params: params must be an object"}}


def test_zap_requires_auth(anon_api):
    r = anon_api.post("/zap", {"method": "billing.getBalance", "id": "1", "params": {"user": ALICE}})
    assert_error(r, 401, "No access token provided.")


# --- billing.getBalance -----------------------------------------------------------------------------

def test_get_balance_matches_http(api):
    api.post("/deposit", {"user": ALICE, "amount": 1000})
    api.post("/holds", {"user": ALICE, "amount": 250})
    out = result(api, "billing.getBalance", {"user": ALICE})
    assert out == {"user": ALICE, "currency": "usd", "balance": 1000, "holds": 250, "available": 750}
    assert out == api.get("/balance", {"user": ALICE}).json()


def test_get_balance_lowercases_currency_and_does_not_trim_user(api):
    api.post("/deposit", {"user": ALICE, "amount": 300, "currency": "eur"})
    assert result(api, "billing.getBalance", {"user": ALICE, "currency": "EUR"})["balance"] == 300
    untrimmed = result(api, "billing.getBalance", {"user": f"{ALICE} ", "currency": "eur"})
    assert untrimmed == {"user": f"{ALICE} ", "currency": "eur", "balance": 0, "holds": 0, "available": 0}


@pytest.mark.parametrize("method", ["billing.getBalance", "billing.getBalanceAll", "billing.getUsage",
                                    "billing.recordUsage", "billing.deposit"])
@pytest.mark.parametrize("params", [{}, {"user": ""}, {"user": None}])
def test_every_method_requires_user(api, method, params):
    rpc_error(api, method, {**params, "amount": 5}, -32602, "user is required")
    assert BalanceTransaction.objects.count() == 0


@pytest.mark.parametrize("method", ["billing.getBalance", "billing.getBalanceAll", "billing.getUsage"])
def test_read_methods_reject_non_string_user(api, method):
    rpc_error(api, method, {"user": 42}, -32602, "invalid params: user must be a string")


def test_get_balance_unknown_currency_is_invalid_params(api):
    rpc_error(api, "billing.getBalance", {"user": ALICE, "currency": "qqq"}, -32602, "unknown currency: qqq")


# --- billing.getBalanceAll --------------------------------------------------------------------------

def test_get_balance_all(api):
    assert result(api, "billing.getBalanceAll", {"user": ALICE}) == {"user": ALICE, "balances": []}
    api.post("/deposit", {"user": ALICE, "amount": 1000})
    api.post("/deposit", {"user": ALICE, "amount": 70, "currency": "eur"})
    out = result(api, "billing.getBalanceAll", {"user": ALICE})
    assert out == {"user": ALICE, "balances": [
        {"currency": "eur", "balance": 70, "holds": 0, "available": 70},
        {"currency": "usd", "balance": 1000, "holds": 0, "available": 1000},
    ]}
    assert out == api.get("/balance/all", {"user": ALICE}).json()


# --- billing.getUsage -------------------------------------------------------------------------------

def test_get_usage(api):
    assert result(api, "billing.getUsage", {"user": ALICE}) == {"user": ALICE, "count": 0, "usage": [],
                                                                "hasMore": False}
    first = api.post("/usage", {"user": ALICE, "amount": 10}).json()["transactionId"]
    second = api.post("/usage", {"user": ALICE, "amount": 20, "currency": "eur"}).json()["transactionId"]
    api.post("/deposit", {"user": ALICE, "amount": 5})
    out = result(api, "billing.getUsage", {"user": ALICE})
    assert out["user"] == ALICE and out["count"] == 2 and out["hasMore"] is False
    assert [u["transactionId"] for u in out["usage"]] == [second, first]
    assert out == api.get("/usage", {"user": ALICE}).json()
    eur = result(api, "billing.getUsage", {"user": ALICE, "currency": "EUR"})
    assert [u["transactionId"] for u in eur["usage"]] == [second]


# --- billing.recordUsage ----------------------------------------------------------------------------

def test_record_usage(api):
    api.post("/deposit", {"user": ALICE, "amount": 1000})
    out = result(api, "billing.recordUsage", {"user": ALICE, "amount": 75, "currency": "USD", "model": "m",
                                              "totalTokens": 12})
    assert set(out) == {"transactionId", "user", "amount", "currency", "type"}
    assert out["transactionId"].startswith("txn_")
    assert (out["user"], out["amount"], out["currency"], out["type"]) == (ALICE, 75, "usd", "withdraw")
    assert api.get("/balance", {"user": ALICE}).json()["balance"] == 925
    row = api.get("/usage", {"user": ALICE}).json()["usage"][0]
    assert row["transactionId"] == out["transactionId"]
    assert row["notes"] == "API usage: m (12 tokens)"
    events = api.get("/events", {"type": "balance_transaction.created", "objectId": out["transactionId"]}).json()
    assert len(events) == 1 and events[0]["customerId"] == ALICE


@pytest.mark.parametrize("params", [{"user": ALICE}, {"user": ALICE, "amount": 0}])
def test_record_usage_zero_is_skipped(api, params):
    assert result(api, "billing.recordUsage", params) == {"user": ALICE, "amount": 0, "status": "skipped"}
    assert BalanceTransaction.objects.count() == 0


def test_record_usage_negative_amount_is_skipped(api):
    assert result(api, "billing.recordUsage", {"user": ALICE, "amount": -1}) == {"user": ALICE, "amount": 0,
                                                                                "status": "skipped"}
    assert BalanceTransaction.objects.count() == 0


def test_record_usage_wrong_type_is_invalid_params(api):
    rpc_error(api, "billing.recordUsage", {"user": ALICE, "amount": "5"}, -32602,
              "invalid request body: amount must be an integer")


def test_record_usage_same_request_id_charges_once(api):
    params = {"user": ALICE, "amount": 40, "requestId": "r-1"}
    first = result(api, "billing.recordUsage", params)
    second = result(api, "billing.recordUsage", params)
    assert first == second
    assert api.get("/balance", {"user": ALICE}).json()["balance"] == -40
    # the HTTP endpoint shares the same requestId space
    r = api.post("/usage", params)
    assert r.status_code == 201 and r.json()["transactionId"] == first["transactionId"]


def test_record_usage_request_id_conflict_is_store_error(api):
    result(api, "billing.recordUsage", {"user": ALICE, "amount": 40, "requestId": "r-2"})
    rpc_error(api, "billing.recordUsage", {"user": ALICE, "amount": 41, "requestId": "r-2"}, -32000,
              "failed to record usage: requestId r-2 was already recorded with a different user, amount or currency")
    assert api.get("/balance", {"user": ALICE}).json()["balance"] == -40


# --- billing.deposit --------------------------------------------------------------------------------

def test_deposit(api):
    out = result(api, "billing.deposit", {"user": ALICE, "amount": 1500, "currency": "EUR", "tags": "promo"})
    assert set(out) == {"transactionId", "user", "amount", "currency", "type", "tags"}
    assert out["transactionId"].startswith("txn_")
    assert (out["user"], out["amount"], out["currency"], out["type"], out["tags"]) == \
        (ALICE, 1500, "eur", "deposit", "promo")
    assert api.get("/balance", {"user": ALICE, "currency": "eur"}).json()["balance"] == 1500
    events = api.get("/events", {"type": "balance_transaction.created", "objectId": out["transactionId"]}).json()
    assert len(events) == 1
    assert events[0]["customerId"] == ALICE and events[0]["data"]["amount"] == 1500


def test_deposit_with_expiry(api):
    out = result(api, "billing.deposit", {"user": ALICE, "amount": 10, "expiresIn": 3})
    expires = datetime.fromisoformat(out["expiresAt"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=3))) < timedelta(minutes=1)


@pytest.mark.parametrize("params,message", [
    ({"user": ALICE, "amount": 0}, "amount must be positive"),
    ({"user": ALICE, "amount": -3}, "amount must be positive"),
    ({"user": ALICE}, "amount is required"),
    ({"user": ALICE, "amount": 1, "currency": "abc"}, "unknown currency: abc"),
])
def test_deposit_validation_is_invalid_params(api, params, message):
    rpc_error(api, "billing.deposit", params, -32602, message)
    assert BalanceTransaction.objects.count() == 0


# --- tenancy ----------------------------------------------------------------------------------------

def test_zap_is_tenant_isolated(api, globex_api):
    result(api, "billing.deposit", {"user": ALICE, "amount": 900})
    result(api, "billing.recordUsage", {"user": ALICE, "amount": 100})
    assert result(globex_api, "billing.getBalance", {"user": ALICE})["balance"] == 0
    assert result(globex_api, "billing.getBalanceAll", {"user": ALICE})["balances"] == []
    assert result(globex_api, "billing.getUsage", {"user": ALICE})["count"] == 0
    assert result(api, "billing.getBalance", {"user": ALICE})["balance"] == 800


def test_record_usage_accepts_tokens_alias(api):
    result(api, "billing.recordUsage", {"user": ALICE, "amount": 5, "model": "m", "tokens": 44})
    row = api.get("/usage", {"user": ALICE}).json()["usage"][0]
    assert row["notes"] == "API usage: m (44 tokens)" and row["metadata"]["totalTokens"] == 44


def test_record_usage_tokens_disagreeing_is_invalid_params(api):
    rpc_error(api, "billing.recordUsage", {"user": ALICE, "amount": 5, "tokens": 1, "totalTokens": 2}, -32602,
              "tokens (1) must equal totalTokens (2) when both are sent")
    assert BalanceTransaction.objects.count() == 0


def test_deposit_accepts_tag_list_and_duration(api):
    out = result(api, "billing.deposit", {"user": ALICE, "amount": 100, "tags": ["promo", "q4"], "expiresIn": "720h"})
    assert out["tags"] == "promo,q4"
    expires = datetime.fromisoformat(out["expiresAt"])
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=720))) < timedelta(minutes=1)
