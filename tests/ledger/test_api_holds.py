"""API: POST /holds, GET /holds, GET /holds/:id, POST /holds/:id/release, POST /holds/:id/capture."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.models import BalanceTransaction, Hold
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

ALICE = "hanzo/alice"
BOB = "hanzo/bob"
HOLD_KEYS = {"id", "user", "amount", "currency", "status", "capturedAmount", "notes", "metadata", "expiresAt",
             "createdAt", "transactionId"}


def parse_time(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


def deposit(api, amount, user=ALICE, currency="usd"):
    r = api.post("/deposit", {"user": user, "amount": amount, "currency": currency})
    assert r.status_code == 201, r.content


def place(api, amount, user=ALICE, **extra) -> dict:
    r = api.post("/holds", {"user": user, "amount": amount, **extra})
    assert r.status_code == 201, r.content
    return r.json()


def wallet(api, user=ALICE, currency="usd") -> tuple[int, int, int]:
    body = api.get("/balance", {"user": user, "currency": currency}).json()
    return body["balance"], body["holds"], body["available"]


def events(api, **params) -> list[dict]:
    r = api.get("/events", params)
    assert r.status_code == 200, r.content
    return r.json()


# --- POST /holds ------------------------------------------------------------------------------------

def test_place_hold_returns_201_and_reserves_available(api):
    deposit(api, 1000)
    r = api.post("/holds", {"user": ALICE, "amount": 400, "currency": "USD", "notes": "gpu job",
                            "metadata": {"job": "j1"}})
    assert r.status_code == 201, r.content
    hold = r.json()
    assert set(hold) == HOLD_KEYS
    assert hold["id"].startswith("hold_")
    assert hold["user"] == ALICE
    assert hold["amount"] == 400
    assert hold["currency"] == "usd"
    assert hold["status"] == "pending"
    assert hold["capturedAmount"] == 0
    assert hold["notes"] == "gpu job"
    assert hold["metadata"] == {"job": "j1"}
    assert hold["transactionId"].startswith("txn_")
    now = datetime.now(UTC)
    assert abs(parse_time(hold["createdAt"]) - now) < timedelta(minutes=1)
    assert abs(parse_time(hold["expiresAt"]) - (now + timedelta(days=7))) < timedelta(minutes=1)
    assert wallet(api) == (1000, 400, 600)


def test_place_hold_custom_expiry(api):
    deposit(api, 10)
    hold = place(api, 5, expiresIn=3600)
    assert abs(parse_time(hold["expiresAt"]) - (datetime.now(UTC) + timedelta(hours=1))) < timedelta(minutes=1)


def test_place_hold_defaults(api):
    deposit(api, 10)
    hold = place(api, 10)
    assert hold["currency"] == "usd" and hold["notes"] == "" and hold["metadata"] == {}
    assert wallet(api) == (10, 10, 0)


def test_hold_beyond_available_is_402_and_changes_nothing(api):
    deposit(api, 1000)
    place(api, 300)
    r = api.post("/holds", {"user": ALICE, "amount": 701})
    error = assert_error(r, 402, "insufficient available balance: 700 usd available, 701 requested", param="amount")
    assert error["code"] == "insufficient_funds"
    assert wallet(api) == (1000, 300, 700)
    assert Hold.objects.count() == 1
    assert len(events(api, type="hold.created")) == 1
    assert place(api, 700)["amount"] == 700
    assert wallet(api) == (1000, 1000, 0)


def test_hold_on_empty_or_overdrawn_wallet_is_402(api):
    assert_error(api.post("/holds", {"user": ALICE, "amount": 1}), 402,
                 "insufficient available balance: 0 usd available, 1 requested")
    api.post("/usage", {"user": BOB, "amount": 50})
    assert_error(api.post("/holds", {"user": BOB, "amount": 1}), 402, contains="requested")
    assert wallet(api, BOB) == (-50, 0, 0)


def test_hold_is_per_currency(api):
    deposit(api, 1000, currency="usd")
    error = assert_error(api.post("/holds", {"user": ALICE, "amount": 1, "currency": "eur"}), 402)
    assert error["message"] == "insufficient available balance: 0 eur available, 1 requested"


@pytest.mark.parametrize("raw", ["", "{x", "[]", "1"])
def test_place_hold_unparseable_body_is_400(api, raw):
    assert_error(api.post("/holds", raw=raw), 400, "invalid request body")


@pytest.mark.parametrize("body,message,param", [
    ({"amount": 5}, "user is required", "user"),
    ({"user": "", "amount": 5}, "user is required", "user"),
    ({"user": ALICE}, "amount is required", "amount"),
    ({"user": ALICE, "amount": 0}, "amount must be positive", "amount"),
    ({"user": ALICE, "amount": -10}, "amount must be positive", "amount"),
    ({"user": ALICE, "amount": "10"}, "invalid request body: amount must be an integer", "amount"),
    ({"user": ALICE, "amount": 5, "expiresIn": -1}, "invalid request body: expiresIn must be at least 0",
     "expiresIn"),
    ({"user": ALICE, "amount": 5, "metadata": "x"}, "invalid request body: metadata must be an object",
     "metadata"),
    ({"user": ALICE, "amount": 5, "currency": "nope"}, "unknown currency: nope", "currency"),
])
def test_place_hold_validation(api, body, message, param):
    deposit(api, 100)
    assert_error(api.post("/holds", body), 400, message, param=param)
    assert Hold.objects.count() == 0


def test_place_hold_writes_hold_created_and_transaction_events(api):
    deposit(api, 1000)
    hold = place(api, 250)
    created = events(api, type="hold.created")
    assert len(created) == 1
    event = created[0]
    assert event["id"].startswith("evt_")
    assert event["objectType"] == "hold"
    assert event["objectId"] == hold["id"]
    assert event["customerId"] == ALICE
    assert event["data"] == hold
    assert "previousData" not in event
    txn_events = events(api, type="balance_transaction.created", objectId=hold["transactionId"])
    assert len(txn_events) == 1
    data = txn_events[0]["data"]
    assert (data["type"], data["amount"], data["currency"], data["user"]) == ("hold", 250, "usd", ALICE)
    assert (data["sourceType"], data["sourceId"]) == ("hold", hold["id"])


def test_place_hold_idempotency_key_places_once(api):
    deposit(api, 1000)
    first = api.post("/holds", {"user": ALICE, "amount": 100}, idempotency_key="h1")
    second = api.post("/holds", {"user": ALICE, "amount": 100}, idempotency_key="h1")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert wallet(api) == (1000, 100, 900)


# --- GET /holds/:id ---------------------------------------------------------------------------------

def test_get_hold(api):
    deposit(api, 100)
    hold = place(api, 60, notes="n")
    r = api.get(f"/holds/{hold['id']}")
    assert r.status_code == 200
    assert r.json() == hold


def test_get_unknown_hold_is_404(api):
    assert_error(api.get("/holds/hold_nope"), 404, "hold not found", param="id")


def test_hold_ids_of_another_tenant_are_404(api, globex_api):
    deposit(api, 100)
    hold = place(api, 60)
    assert_error(globex_api.get(f"/holds/{hold['id']}"), 404, "hold not found", param="id")
    assert_error(globex_api.post(f"/holds/{hold['id']}/release"), 404, "hold not found", param="id")
    assert_error(globex_api.post(f"/holds/{hold['id']}/capture"), 404, "hold not found", param="id")
    assert api.get(f"/holds/{hold['id']}").json()["status"] == "pending"
    assert wallet(api) == (100, 60, 40)
    assert globex_api.get("/holds").json() == {"holds": [], "count": 0, "hasMore": False}
    assert globex_api.get("/holds", {"user": ALICE}).json()["count"] == 0


# --- GET /holds -------------------------------------------------------------------------------------

def test_list_holds_empty(api):
    r = api.get("/holds")
    assert r.status_code == 200
    assert r.json() == {"holds": [], "count": 0, "hasMore": False}


def test_list_holds_newest_first_with_filters(api):
    deposit(api, 1000)
    deposit(api, 1000, user=BOB)
    a1 = place(api, 10)
    b1 = place(api, 20, user=BOB)
    a2 = place(api, 30)
    a3 = place(api, 40)
    api.post(f"/holds/{a2['id']}/release")
    api.post(f"/holds/{a3['id']}/capture")

    everything = api.get("/holds").json()
    assert [h["id"] for h in everything["holds"]] == [a3["id"], a2["id"], b1["id"], a1["id"]]
    assert everything["count"] == 4 and everything["hasMore"] is False

    alice = api.get("/holds", {"user": f" {ALICE} "}).json()
    assert [h["id"] for h in alice["holds"]] == [a3["id"], a2["id"], a1["id"]]

    pending = api.get("/holds", {"user": ALICE, "status": "pending"}).json()
    assert [h["id"] for h in pending["holds"]] == [a1["id"]]
    assert pending["holds"][0] == api.get(f"/holds/{a1['id']}").json()

    released = api.get("/holds", {"status": "released"}).json()
    assert [(h["id"], h["status"]) for h in released["holds"]] == [(a2["id"], "released")]
    captured = api.get("/holds", {"status": "captured"}).json()
    assert [(h["id"], h["capturedAmount"]) for h in captured["holds"]] == [(a3["id"], 40)]
    assert api.get("/holds", {"user": BOB, "status": "captured"}).json()["count"] == 0


def test_list_holds_paginates(api):
    deposit(api, 1000)
    ids = [place(api, n)["id"] for n in range(1, 6)]
    newest_first = list(reversed(ids))
    page1 = api.get("/holds", {"limit": 2}).json()
    assert [h["id"] for h in page1["holds"]] == newest_first[:2]
    assert page1["count"] == 2 and page1["hasMore"] is True
    page2 = api.get("/holds", {"limit": 2, "startingAfter": newest_first[1]}).json()
    assert [h["id"] for h in page2["holds"]] == newest_first[2:4]
    assert page2["hasMore"] is True
    page3 = api.get("/holds", {"limit": 2, "startingAfter": newest_first[3]}).json()
    assert [h["id"] for h in page3["holds"]] == newest_first[4:]
    assert page3["hasMore"] is False
    assert_error(api.get("/holds", {"limit": 1001}), 400, "limit must be an integer between 1 and 1000",
                 param="limit")
    assert_error(api.get("/holds", {"startingAfter": "hold_nope"}), 400, "startingAfter: no such object: hold_nope",
                 param="startingAfter")


# --- POST /holds/:id/release ------------------------------------------------------------------------

def test_release_makes_the_amount_available_again(api):
    deposit(api, 1000)
    hold = place(api, 400)
    assert wallet(api) == (1000, 400, 600)
    r = api.post(f"/holds/{hold['id']}/release")
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == HOLD_KEYS | {"releaseTransactionId"}
    assert body["id"] == hold["id"]
    assert body["status"] == "released"
    assert body["capturedAmount"] == 0
    assert body["amount"] == 400
    assert body["transactionId"] == hold["transactionId"]
    assert body["releaseTransactionId"].startswith("txn_")
    assert body["releaseTransactionId"] != hold["transactionId"]
    assert wallet(api) == (1000, 0, 1000)
    assert api.get(f"/holds/{hold['id']}").json() == body


def test_release_writes_events(api):
    deposit(api, 1000)
    hold = place(api, 400)
    body = api.post(f"/holds/{hold['id']}/release").json()
    released = events(api, type="hold.released")
    assert len(released) == 1
    event = released[0]
    assert (event["objectType"], event["objectId"], event["customerId"]) == ("hold", hold["id"], ALICE)
    assert event["data"] == body
    assert event["previousData"]["status"] == "pending"
    txn = events(api, type="balance_transaction.created", objectId=body["releaseTransactionId"])
    assert len(txn) == 1
    assert (txn[0]["data"]["type"], txn[0]["data"]["amount"], txn[0]["customerId"]) == ("holdRemoved", 400, ALICE)
    assert events(api, type="hold.captured") == []


def test_release_of_non_pending_hold_is_409(api):
    deposit(api, 1000)
    hold = place(api, 400)
    api.post(f"/holds/{hold['id']}/release")
    r = api.post(f"/holds/{hold['id']}/release")
    error = assert_error(r, 409, "hold is not in pending status (status: released)")
    assert error["code"] == "hold_not_pending"
    assert_error(api.post(f"/holds/{hold['id']}/capture"), 409, "hold is not in pending status (status: released)")
    assert wallet(api) == (1000, 0, 1000)
    assert len(events(api, type="hold.released")) == 1


def test_release_of_unknown_hold_is_404(api):
    assert_error(api.post("/holds/hold_missing/release"), 404, "hold not found", param="id")


# --- POST /holds/:id/capture ------------------------------------------------------------------------

def test_full_capture_withdraws_the_hold(api):
    deposit(api, 1000)
    hold = place(api, 400)
    r = api.post(f"/holds/{hold['id']}/capture")
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == HOLD_KEYS | {"captureTransactionId", "releaseTransactionId"}
    assert body["status"] == "captured"
    assert body["amount"] == 400
    assert body["capturedAmount"] == 400
    assert body["captureTransactionId"].startswith("txn_")
    assert body["releaseTransactionId"].startswith("txn_")
    assert len({body["transactionId"], body["captureTransactionId"], body["releaseTransactionId"]}) == 3
    assert wallet(api) == (600, 0, 600)
    assert api.get(f"/holds/{hold['id']}").json() == body


@pytest.mark.parametrize("payload", [{}, {"amount": 0}, {"amount": -5}])
def test_capture_non_positive_amount_means_full(api, payload):
    deposit(api, 1000)
    hold = place(api, 400)
    body = api.post(f"/holds/{hold['id']}/capture", payload).json()
    assert body["capturedAmount"] == 400
    assert wallet(api) == (600, 0, 600)


def test_partial_capture_withdraws_only_the_captured_amount(api):
    deposit(api, 1000)
    hold = place(api, 400)
    assert wallet(api) == (1000, 400, 600)
    r = api.post(f"/holds/{hold['id']}/capture", {"amount": 250})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "captured"
    assert body["amount"] == 400
    assert body["capturedAmount"] == 250
    assert wallet(api) == (750, 0, 750)
    capture_txn = BalanceTransaction.objects.get(public_id=body["captureTransactionId"])
    assert (capture_txn.type, capture_txn.amount, capture_txn.tags) == ("withdraw", 250, "hold-capture")
    release_txn = BalanceTransaction.objects.get(public_id=body["releaseTransactionId"])
    assert (release_txn.type, release_txn.amount) == ("holdRemoved", 400)


def test_capture_writes_events(api):
    deposit(api, 1000)
    hold = place(api, 400)
    body = api.post(f"/holds/{hold['id']}/capture", {"amount": 100}).json()
    captured = events(api, type="hold.captured")
    assert len(captured) == 1
    event = captured[0]
    assert (event["objectType"], event["objectId"], event["customerId"]) == ("hold", hold["id"], ALICE)
    assert event["data"] == body
    assert event["previousData"]["status"] == "pending"
    assert event["previousData"]["capturedAmount"] == 0
    withdraw = events(api, type="balance_transaction.created", objectId=body["captureTransactionId"])
    assert len(withdraw) == 1
    assert (withdraw[0]["data"]["type"], withdraw[0]["data"]["amount"]) == ("withdraw", 100)
    assert withdraw[0]["customerId"] == ALICE
    removed = events(api, type="balance_transaction.created", objectId=body["releaseTransactionId"])
    assert len(removed) == 1
    assert (removed[0]["data"]["type"], removed[0]["data"]["amount"]) == ("holdRemoved", 400)
    assert events(api, type="hold.released") == []
    # deposit + hold + holdRemoved + withdraw
    assert len(events(api, type="balance_transaction.created")) == 4
    # the capture object's events, newest first
    assert [e["type"] for e in events(api, objectId=hold["id"])] == ["hold.captured", "hold.created"]


def test_capture_more_than_hold_is_400_and_hold_stays_pending(api):
    deposit(api, 1000)
    hold = place(api, 400)
    r = api.post(f"/holds/{hold['id']}/capture", {"amount": 401})
    error = assert_error(r, 400, "capture amount exceeds hold (400)", param="amount")
    assert error["code"] == "capture_exceeds_hold"
    assert api.get(f"/holds/{hold['id']}").json()["status"] == "pending"
    assert wallet(api) == (1000, 400, 600)
    assert events(api, type="hold.captured") == []


def test_capture_of_non_pending_hold_is_409(api):
    deposit(api, 1000)
    hold = place(api, 400)
    api.post(f"/holds/{hold['id']}/capture", {"amount": 100})
    r = api.post(f"/holds/{hold['id']}/capture", {"amount": 100})
    error = assert_error(r, 409, "hold is not in pending status (status: captured)")
    assert error["code"] == "hold_not_pending"
    assert_error(api.post(f"/holds/{hold['id']}/release"), 409, "hold is not in pending status (status: captured)")
    assert wallet(api) == (900, 0, 900)


def test_capture_of_unknown_hold_is_404(api):
    assert_error(api.post("/holds/hold_missing/capture", {"amount": 1}), 404, "hold not found", param="id")


@pytest.mark.parametrize("raw", ["[1]", '"x"', "{bad"])
def test_capture_unparseable_body_is_400(api, raw):
    deposit(api, 100)
    hold = place(api, 50)
    assert_error(api.post(f"/holds/{hold['id']}/capture", raw=raw), 400, "invalid request body")
    assert api.get(f"/holds/{hold['id']}").json()["status"] == "pending"


def test_capture_amount_must_be_an_integer(api):
    deposit(api, 100)
    hold = place(api, 50)
    assert_error(api.post(f"/holds/{hold['id']}/capture", {"amount": "10"}), 400,
                 "invalid request body: amount must be an integer", param="amount")


def test_capture_may_overdraw_when_balance_moved_under_the_hold(api):
    deposit(api, 100)
    hold = place(api, 100)
    api.post("/usage", {"user": ALICE, "amount": 30})  # usage may overdraw available by default
    assert wallet(api) == (70, 100, 0)
    body = api.post(f"/holds/{hold['id']}/capture").json()
    assert body["capturedAmount"] == 100
    assert wallet(api) == (-30, 0, 0)


def test_list_holds_with_unknown_status_is_400_naming_status(api):
    r = api.get("/holds", {"status": "bogus"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "status"
