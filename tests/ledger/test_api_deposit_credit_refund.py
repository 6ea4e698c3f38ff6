"""API: POST /deposit, POST /credit (starter credit), POST /refund (spec ledger.md §6-§8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.models import Account, BalanceTransaction
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

ALICE = "hanzo/alice"
BOB = "hanzo/bob"
TXN_KEYS = {"transactionId", "user", "amount", "currency", "type", "tags"}


def parse_time(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


def assert_about(value: str, expected: datetime, tolerance: timedelta = timedelta(minutes=1)) -> None:
    assert abs(parse_time(value) - expected) < tolerance, (value, expected)


def balance(api, user=ALICE, currency="usd") -> dict:
    r = api.get("/balance", {"user": user, "currency": currency})
    assert r.status_code == 200, r.content
    return r.json()


def events(api, **params) -> list[dict]:
    r = api.get("/events", params)
    assert r.status_code == 200, r.content
    return r.json()


def usage(api, amount, user=ALICE, **extra) -> str:
    r = api.post("/usage", {"user": user, "amount": amount, **extra})
    assert r.status_code == 201, r.content
    return r.json()["transactionId"]


# --- POST /deposit ----------------------------------------------------------------------------------

def test_deposit_returns_201_with_exact_body(api):
    r = api.post("/deposit", {"user": ALICE, "amount": 2500, "currency": "USD", "tags": "topup"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert set(body) == TXN_KEYS  # no expiresAt when no expiry was asked for
    assert body["transactionId"].startswith("txn_")
    assert body["user"] == ALICE
    assert body["amount"] == 2500
    assert body["currency"] == "usd"
    assert body["type"] == "deposit"
    assert body["tags"] == "topup"
    assert balance(api) == {"user": ALICE, "currency": "usd", "balance": 2500, "holds": 0, "available": 2500}


def test_deposit_defaults_currency_tags_and_notes(api):
    body = api.post("/deposit", {"user": ALICE, "amount": 100}).json()
    assert body["currency"] == "usd" and body["tags"] == ""
    event = events(api, objectId=body["transactionId"])[0]
    assert event["data"]["notes"] == "Deposit: 100 cents usd"
    custom = api.post("/deposit", {"user": ALICE, "amount": 100, "notes": "wire 42"}).json()
    assert events(api, objectId=custom["transactionId"])[0]["data"]["notes"] == "wire 42"


def test_deposit_with_expiry_sets_expires_at(api):
    r = api.post("/deposit", {"user": ALICE, "amount": 300, "expiresIn": 7})
    assert r.status_code == 201
    body = r.json()
    assert set(body) == TXN_KEYS | {"expiresAt"}
    assert_about(body["expiresAt"], datetime.now(UTC) + timedelta(days=7))
    assert balance(api)["balance"] == 300


@pytest.mark.parametrize("expires_in", [0, -3])
def test_deposit_non_positive_expiry_means_never(api, expires_in):
    body = api.post("/deposit", {"user": ALICE, "amount": 300, "expiresIn": expires_in}).json()
    assert "expiresAt" not in body


def test_deposit_expiry_far_away_is_accepted_up_to_what_a_timestamp_holds(api):
    body = api.post("/deposit", {"user": ALICE, "amount": 1, "expiresIn": 36501}).json()
    assert_about(body["expiresAt"], datetime.now(UTC) + timedelta(days=36501))
    assert "expiresAt" in api.post("/deposit", {"user": ALICE, "amount": 1, "expiresIn": 2_500_000}).json()
    assert_error(api.post("/deposit", {"user": ALICE, "amount": 1, "expiresIn": 2_500_001}), 400,
                 "invalid request body: expiresIn must be at most 2500000", param="expiresIn")
    assert_error(api.post("/deposit", {"user": ALICE, "amount": 1, "expiresIn": 2**63}), 400,
                 "invalid request body: expiresIn must fit in a signed 64-bit integer", param="expiresIn")


# --- tags as a list, expiresIn as a Go duration (commerce.js BillingClient) -------------------------

def test_deposit_tags_list_is_stored_comma_joined(api):
    body = api.post("/deposit", {"user": ALICE, "amount": 100, "tags": ["promo", " q4 "]}).json()
    assert body["tags"] == "promo,q4"
    assert BalanceTransaction.objects.get(public_id=body["transactionId"]).tags == "promo,q4"
    assert api.post("/deposit", {"user": ALICE, "amount": 100, "tags": []}).json()["tags"] == ""
    assert api.post("/deposit", {"user": ALICE, "amount": 100, "tags": "a,b"}).json()["tags"] == "a,b"


@pytest.mark.parametrize("tags,message", [
    (["ok", 3], "invalid request body: tags must be a string or a list of strings"),
    (5, "invalid request body: tags must be a string or a list of strings"),
    ({"a": 1}, "invalid request body: tags must be a string or a list of strings"),
    (["a,b"], "tags: a listed tag must be non-empty and contain no comma"),
    (["a", ""], "tags: a listed tag must be non-empty and contain no comma"),
    (["x" * 200, "y" * 200], "invalid request body: tags must be at most 255 characters"),
])
def test_deposit_bad_tags_are_400(api, tags, message):
    assert_error(api.post("/deposit", {"user": ALICE, "amount": 100, "tags": tags}), 400, message, param="tags")
    assert BalanceTransaction.objects.count() == 0


@pytest.mark.parametrize("duration,delta", [("720h", timedelta(hours=720)), ("1h30m", timedelta(minutes=90)),
                                            ("90s", timedelta(seconds=90))])
def test_deposit_expires_in_go_duration(api, duration, delta):
    body = api.post("/deposit", {"user": ALICE, "amount": 300, "expiresIn": duration}).json()
    assert_about(body["expiresAt"], datetime.now(UTC) + delta)
    txn = BalanceTransaction.objects.get(public_id=body["transactionId"])
    assert txn.lot.expires_at == txn.expires_at


@pytest.mark.parametrize("value,message", [
    ("soon", "invalid expiresIn duration"),
    ("30", "invalid expiresIn duration"),
    ("0s", "expiresIn must be a positive duration"),
    ("-1h", "expiresIn must be a positive duration"),
    (1.5, "invalid request body: expiresIn must be a whole number of days or a Go duration string (e.g. 720h)"),
    (True, "invalid request body: expiresIn must be a whole number of days or a Go duration string (e.g. 720h)"),
    (["720h"], "invalid request body: expiresIn must be a whole number of days or a Go duration string (e.g. 720h)"),
])
def test_deposit_bad_expires_in_is_400(api, value, message):
    assert_error(api.post("/deposit", {"user": ALICE, "amount": 1, "expiresIn": value}), 400, message,
                 param="expiresIn")
    assert BalanceTransaction.objects.count() == 0


@pytest.mark.parametrize("raw", ["", "{", "[]", "42"])
def test_deposit_unparseable_body_is_400(api, raw):
    assert_error(api.post("/deposit", raw=raw), 400, "invalid request body")


@pytest.mark.parametrize("body", [{"amount": 5}, {"user": "", "amount": 5}, {"user": ""}])
def test_deposit_requires_user_first(api, body):
    assert_error(api.post("/deposit", body), 400, "user is required", param="user")


@pytest.mark.parametrize("amount", [0, -1, -(2**63)])
def test_deposit_amount_must_be_positive(api, amount):
    assert_error(api.post("/deposit", {"user": ALICE, "amount": amount}), 400, "amount must be positive",
                 param="amount")
    assert BalanceTransaction.objects.count() == 0


def test_deposit_amount_is_required(api):
    assert_error(api.post("/deposit", {"user": ALICE}), 400, "amount is required", param="amount")


def test_deposit_retry_without_key_deposits_twice_with_key_once(api):
    api.post("/deposit", {"user": ALICE, "amount": 100})
    api.post("/deposit", {"user": ALICE, "amount": 100})
    assert balance(api)["balance"] == 200
    first = api.post("/deposit", {"user": ALICE, "amount": 100}, idempotency_key="k1")
    second = api.post("/deposit", {"user": ALICE, "amount": 100}, idempotency_key="k1")
    assert first.json() == second.json()
    assert balance(api)["balance"] == 300


def test_deposit_writes_balance_transaction_event(api):
    body = api.post("/deposit", {"user": ALICE, "amount": 800, "tags": "promo", "expiresIn": 2}).json()
    found = events(api, type="balance_transaction.created", objectId=body["transactionId"])
    assert len(found) == 1
    event = found[0]
    assert event["id"].startswith("evt_")
    assert event["objectType"] == "balance_transaction"
    assert event["customerId"] == ALICE
    data = event["data"]
    assert data["id"] == body["transactionId"]
    assert (data["type"], data["amount"], data["currency"], data["tags"], data["user"]) == \
        ("deposit", 800, "usd", "promo", ALICE)
    assert data["expiresAt"] == body["expiresAt"]


def test_deposit_is_tenant_isolated(api, globex_api):
    api.post("/deposit", {"user": ALICE, "amount": 800})
    assert balance(globex_api)["balance"] == 0
    assert events(globex_api) == []


# --- POST /credit -----------------------------------------------------------------------------------

def test_starter_credit_grants_500_usd_for_30_days(api):
    r = api.post("/credit", {"user": ALICE})
    assert r.status_code == 201, r.content
    body = r.json()
    assert set(body) == TXN_KEYS | {"expiresAt"}
    assert body["transactionId"].startswith("txn_")
    assert body["user"] == ALICE
    assert body["amount"] == 500
    assert body["currency"] == "usd"
    assert body["type"] == "deposit"
    assert body["tags"] == "starter-credit"
    assert_about(body["expiresAt"], datetime.now(UTC) + timedelta(days=30))
    assert balance(api) == {"user": ALICE, "currency": "usd", "balance": 500, "holds": 0, "available": 500}


def test_starter_credit_event_carries_notes_and_metadata(api):
    body = api.post("/credit", {"user": ALICE}).json()
    found = events(api, type="balance_transaction.created", objectId=body["transactionId"])
    assert len(found) == 1
    assert found[0]["customerId"] == ALICE
    data = found[0]["data"]
    assert data["notes"] == "Welcome credit: $5.00 USD (expires in 30 days)"
    assert data["metadata"] == {"creditType": "starter", "expiryDays": 30}
    assert data["tags"] == "starter-credit" and data["amount"] == 500


def test_starter_credit_second_grant_is_409(api):
    first = api.post("/credit", {"user": ALICE}).json()
    r = api.post("/credit", {"user": ALICE})
    error = assert_error(r, 409, f"starter credit already granted to {ALICE} ({first['transactionId']})",
                         param="user")
    assert error["code"] == "starter_credit_already_granted"
    assert balance(api)["balance"] == 500
    assert len(events(api, type="balance_transaction.created")) == 1


def test_starter_credit_is_per_user_and_per_organization(api, globex_api):
    assert api.post("/credit", {"user": ALICE}).status_code == 201
    assert api.post("/credit", {"user": BOB}).status_code == 201
    assert globex_api.post("/credit", {"user": ALICE}).status_code == 201
    assert balance(api, BOB)["balance"] == 500
    assert balance(globex_api)["balance"] == 500


@pytest.mark.parametrize("raw", ["", "{oops", "[]"])
def test_starter_credit_unparseable_body_is_400(api, raw):
    assert_error(api.post("/credit", raw=raw), 400, "invalid request body")


@pytest.mark.parametrize("body", [{}, {"user": ""}, {"user": None}])
def test_starter_credit_requires_user(api, body):
    assert_error(api.post("/credit", body), 400, "user is required", param="user")


def test_starter_credit_user_must_be_a_string(api):
    assert_error(api.post("/credit", {"user": 5}), 400, "invalid request body: user must be a string",
                 param="user")


# --- POST /refund -----------------------------------------------------------------------------------

def test_refund_returns_201_with_exact_body_and_credits_wallet(api):
    api.post("/deposit", {"user": ALICE, "amount": 1000})
    original = usage(api, 300)
    r = api.post("/refund", {"user": ALICE, "amount": 120, "originalTransactionId": original, "currency": "USD"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert set(body) == TXN_KEYS | {"originalTransactionId"}
    assert body["transactionId"].startswith("txn_") and body["transactionId"] != original
    assert body["user"] == ALICE
    assert body["amount"] == 120
    assert body["currency"] == "usd"
    assert body["type"] == "deposit"
    assert body["tags"] == "refund"
    assert body["originalTransactionId"] == original
    assert balance(api)["balance"] == 820


def test_refund_event_links_the_original(api):
    original = usage(api, 300)
    body = api.post("/refund", {"user": ALICE, "amount": 50, "originalTransactionId": original}).json()
    found = events(api, type="balance_transaction.created", objectId=body["transactionId"])
    assert len(found) == 1
    assert found[0]["customerId"] == ALICE
    data = found[0]["data"]
    assert data["reverses"] == original
    assert data["metadata"] == {"refundType": "billing-correction", "originalTransactionId": original}
    assert data["notes"] == f"Refund: 50 cents usd (original tx: {original})"
    assert (data["type"], data["tags"], data["amount"]) == ("deposit", "refund", 50)


def test_refunds_may_not_exceed_the_original(api):
    original = usage(api, 300)
    assert api.post("/refund", {"user": ALICE, "amount": 100, "originalTransactionId": original}).status_code == 201
    r = api.post("/refund", {"user": ALICE, "amount": 201, "originalTransactionId": original})
    error = assert_error(r, 400, "refund exceeds the refundable amount: 200 cents remaining", param="amount")
    assert error["code"] == "refund_exceeds_original"
    assert api.post("/refund", {"user": ALICE, "amount": 200, "originalTransactionId": original}).status_code == 201
    assert_error(api.post("/refund", {"user": ALICE, "amount": 1, "originalTransactionId": original}), 400,
                 "refund exceeds the refundable amount: 0 cents remaining", param="amount")
    assert balance(api)["balance"] == 0


def test_refund_of_unknown_transaction_is_404(api):
    r = api.post("/refund", {"user": ALICE, "amount": 1, "originalTransactionId": "txn_doesnotexist"})
    assert_error(r, 404, "original transaction not found", param="originalTransactionId")
    assert BalanceTransaction.objects.count() == 0


def test_refund_of_other_users_transaction_is_400(api):
    original = usage(api, 300, user=BOB)
    r = api.post("/refund", {"user": ALICE, "amount": 1, "originalTransactionId": original})
    assert_error(r, 400, "original transaction does not belong to this user", param="originalTransactionId")
    assert balance(api)["balance"] == 0


def test_refund_of_a_deposit_gives_money_back_capped_at_the_deposit(api):
    """As the original: any earlier transaction of the user may be referenced, a deposit too, and the
    refund is a deposit tagged refund. Ours: Σ refunds against it stay within its amount."""
    dep = api.post("/deposit", {"user": ALICE, "amount": 1000}).json()["transactionId"]
    r = api.post("/refund", {"user": ALICE, "amount": 400, "originalTransactionId": dep})
    assert r.status_code == 201, r.content
    assert (r.json()["type"], r.json()["tags"], r.json()["originalTransactionId"]) == ("deposit", "refund", dep)
    assert balance(api)["balance"] == 1400
    r = api.post("/refund", {"user": ALICE, "amount": 601, "originalTransactionId": dep})
    assert_error(r, 400, "refund exceeds the refundable amount: 600 cents remaining", param="amount")
    assert api.post("/refund", {"user": ALICE, "amount": 600, "originalTransactionId": dep}).status_code == 201
    assert balance(api)["balance"] == 2000


def test_refund_of_a_refund_counts_against_the_first_original(api):
    original = usage(api, 300)
    refund = api.post("/refund", {"user": ALICE, "amount": 100, "originalTransactionId": original}).json()
    r = api.post("/refund", {"user": ALICE, "amount": 201, "originalTransactionId": refund["transactionId"]})
    assert_error(r, 400, "refund exceeds the refundable amount: 200 cents remaining", param="amount")
    r = api.post("/refund", {"user": ALICE, "amount": 200, "originalTransactionId": refund["transactionId"]})
    assert r.status_code == 201, r.content
    assert r.json()["originalTransactionId"] == refund["transactionId"]
    assert_error(api.post("/refund", {"user": ALICE, "amount": 1, "originalTransactionId": original}), 400,
                 "refund exceeds the refundable amount: 0 cents remaining", param="amount")
    assert balance(api)["balance"] == 0


def test_refund_of_other_users_transaction_writes_nothing(api):
    original = usage(api, 300, user=BOB)
    before = BalanceTransaction.objects.count()
    assert api.post("/refund", {"user": ALICE, "amount": 1, "originalTransactionId": original}).status_code == 400
    assert BalanceTransaction.objects.count() == before
    assert not Account.objects.filter(customer=ALICE).exists()


def test_refund_in_another_currency_is_400(api):
    original = usage(api, 300)
    r = api.post("/refund", {"user": ALICE, "amount": 10, "originalTransactionId": original, "currency": "eur"})
    assert_error(r, 400, "currency must match the original transaction (usd)", param="currency")
    eur = usage(api, 300, currency="eur")
    r = api.post("/refund", {"user": ALICE, "amount": 10, "originalTransactionId": eur})
    assert_error(r, 400, "currency must match the original transaction (eur)", param="currency")


def test_refund_of_other_tenants_transaction_is_404(api, globex_api):
    original = usage(api, 300)
    r = globex_api.post("/refund", {"user": ALICE, "amount": 10, "originalTransactionId": original})
    assert_error(r, 404, "original transaction not found", param="originalTransactionId")
    assert balance(globex_api)["balance"] == 0
    assert balance(api)["balance"] == -300


@pytest.mark.parametrize("raw", ["", "nope", "[1]"])
def test_refund_unparseable_body_is_400(api, raw):
    assert_error(api.post("/refund", raw=raw), 400, "invalid request body")


@pytest.mark.parametrize("body,message,param", [
    ({"amount": 5, "originalTransactionId": "txn_x"}, "user is required", "user"),
    ({"user": "", "amount": 5, "originalTransactionId": "txn_x"}, "user is required", "user"),
    ({"user": ALICE, "amount": 0, "originalTransactionId": "txn_x"}, "amount must be positive", "amount"),
    ({"user": ALICE, "amount": -5, "originalTransactionId": "txn_x"}, "amount must be positive", "amount"),
    ({"user": ALICE, "originalTransactionId": "txn_x"}, "amount is required", "amount"),
    ({"user": ALICE, "amount": 5}, "originalTransactionId is required", "originalTransactionId"),
    ({"user": ALICE, "amount": 5, "originalTransactionId": ""}, "originalTransactionId is required",
     "originalTransactionId"),
    # validation order: user, then amount, then originalTransactionId
    ({"amount": 0}, "user is required", "user"),
    ({"user": ALICE, "amount": 0}, "amount must be positive", "amount"),
])
def test_refund_validation(api, body, message, param):
    assert_error(api.post("/refund", body), 400, message, param=param)
