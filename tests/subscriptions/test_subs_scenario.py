"""A year on a test clock, through the public API only: monthly billing with a mid-cycle upgrade, a quantity
change, a failed payment and its recovery, a trial that converts and a cancel at period end. Every invoice
is asserted to the cent; the ledger audit stays clean."""

from __future__ import annotations

import pytest

from ledger import selectors as ledger_selectors
from tests.subscriptions.helpers import make_plan, patch

pytestmark = pytest.mark.django_db


def _advance(api, clock, when):
    res = api.post(f"/test-clocks/{clock['id']}/advance", {"frozenTime": when})
    assert res.status_code == 200, res.content
    assert res.json()["frozenTime"] == when
    return res.json()


def _sub(api, clock, user, plan, **fields):
    res = api.post("/subscriptions", {"userId": user, "planId": plan["id"], "testClock": clock["id"], **fields})
    assert res.status_code == 201, res.content
    return res.json()


def _grant(api, user, amount):
    res = api.post("/credit-grants", {"userId": user, "name": "funds", "amountCents": amount, "currency": "usd"})
    assert res.status_code == 201, res.content


def _invoices(api, sub):
    rows = api.get("/invoices", {"subscriptionId": sub["id"], "limit": 100}).json()["invoices"]
    return sorted(rows, key=lambda i: i["periodStart"])


def test_a_year_on_a_test_clock(api):
    clock = api.post("/test-clocks", {"name": "year", "frozenTime": "2027-01-15T00:00:00Z"}).json()
    assert clock["id"].startswith("clock_") and clock["status"] == "ready"
    basic, pro = make_plan(api, name="Basic", price=1000), make_plan(api, slug="p", name="Pro", price=3000)
    trial = make_plan(api, slug="t", name="Trial", price=2000, trialPeriodDays=14)

    _grant(api, "anna", 1_000_000)
    anna = _sub(api, clock, "anna", basic)
    assert anna["currentPeriodStart"] == "2027-01-15T00:00:00Z"
    bob = _sub(api, clock, "bob", pro)  # no funds yet
    _grant(api, "cleo", 1_000_000)
    cleo = _sub(api, clock, "cleo", trial)
    _grant(api, "dave", 1_000_000)
    dave = _sub(api, clock, "dave", basic)

    _advance(api, clock, "2027-02-01T00:00:00Z")  # cleo's trial ended on 29 Jan: active, nothing billed
    assert api.get(f"/subscriptions/{cleo['id']}").json()["status"] == "active"
    assert _invoices(api, cleo) == []
    assert api.post(f"/subscriptions/{dave['id']}/cancel", {"atPeriodEnd": True}).status_code == 200

    _advance(api, clock, "2027-02-15T12:00:00Z")  # 15 Feb: anna 1000, bob fails, dave's final 1000
    got = api.get(f"/subscriptions/{bob['id']}").json()
    assert got["status"] == "past_due" and got["currentPeriodStart"] == "2027-01-15T00:00:00Z"
    assert [(i["total"], i["status"]) for i in _invoices(api, bob)] == [(3000, "open")]
    got = api.get(f"/subscriptions/{dave['id']}").json()
    assert got["status"] == "canceled" and got["endedAt"] == "2027-02-15T00:00:00Z"
    assert [(i["total"], i["status"]) for i in _invoices(api, dave)] == [(1000, "paid")]

    _grant(api, "bob", 3000)  # the first dunning retry (16 Feb) recovers
    _advance(api, clock, "2027-03-01T00:00:00Z")
    got = api.get(f"/subscriptions/{bob['id']}").json()
    assert got["status"] == "active" and got["currentPeriodStart"] == "2027-02-15T00:00:00Z"
    assert [(i["total"], i["status"], i["attemptCount"]) for i in _invoices(api, bob)] == [(3000, "paid", 2)]
    assert [i["total"] for i in _invoices(api, cleo)] == [2000]  # 29 Jan – 28 Feb

    # Mid-cycle upgrade on 1 March: 14 of the 28 days of 15 Feb – 15 Mar on Basic.
    assert patch(api, f"/subscriptions/{anna['id']}", {"planId": pro["id"]}).json()["planId"] == pro["id"]
    _advance(api, clock, "2027-03-30T00:00:00Z")
    # bob's 15 Mar renewal fails again; retries 16, 19 and 26 Mar fail: written off, unpaid.
    assert api.get(f"/subscriptions/{bob['id']}").json()["status"] == "unpaid"
    assert [(i["total"], i["status"]) for i in _invoices(api, bob)] == [(3000, "paid"), (3000, "uncollectible")]
    # Quantity 2 on 30 March: 15 of the 31 days of 15 Mar – 15 Apr at one seat.
    assert patch(api, f"/subscriptions/{anna['id']}", {"quantity": 2}).json()["quantity"] == 2

    _advance(api, clock, "2028-01-20T00:00:00Z")
    totals = [i["total"] for i in _invoices(api, anna)]
    # Feb 1000; Mar 500 Basic + 1500 Pro; Apr 1452 (one seat, 15/31) + 3096 (two seats, 16/31); then 2 × 3000.
    assert totals == [1000, 2000, 4548] + [6000] * 9
    assert all(i["status"] == "paid" for i in _invoices(api, anna))
    assert [i["total"] for i in _invoices(api, cleo)] == [2000] * 11  # periods end on the 29th (28 Feb)
    assert [i["total"] for i in _invoices(api, dave)] == [1000]
    assert len(_invoices(api, bob)) == 2  # unpaid subscriptions are not billed further
    assert ledger_selectors.ledger_audit().ok
