"""Package "subgaps": schedules on test clocks (a clock's advance runs schedule phases interleaved in time
order with renewals; the real-time sweepers skip clock-bound rows) and the ``invoice.upcoming`` event (once
per subscription and period, N days before the period ends, payload = ``GET /invoices/upcoming``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from invoicing.models import Invoice
from ledger import selectors as ledger_selectors
from subscriptions.models import Subscription, SubscriptionSchedule, SubscriptionSettings
from subscriptions.services import plans as plan_services
from subscriptions.services import renewals, schedule_runner, sweeps
from subscriptions.services import subscriptions as sub_services
from tests.conftest import assert_error
from tests.subscriptions.helpers import make_plan, patch
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db


def _clock(api, when="2027-01-15T00:00:00Z"):
    res = api.post("/test-clocks", {"name": "subgaps", "frozenTime": when})
    assert res.status_code == 201, res.content
    return res.json()


def _advance(api, clock, when):
    res = api.post(f"/test-clocks/{clock['id']}/advance", {"frozenTime": when})
    assert res.status_code == 200, res.content
    return res.json()


def _grant(api, user, amount=1_000_000):
    res = api.post("/credit-grants", {"userId": user, "name": "funds", "amountCents": amount, "currency": "usd"})
    assert res.status_code == 201, res.content


def _invoices(api, sub_id):
    rows = api.get("/invoices", {"subscriptionId": sub_id, "limit": 100}).json()["invoices"]
    return sorted(rows, key=lambda i: i["periodStart"])


def _upcoming_events(org, sub_id):
    return list(BillingEvent.objects.filter(organization=org, type="invoice.upcoming", object_id=sub_id)
                .order_by("pk"))


# --- schedules on a test clock -------------------------------------------------------------------------

def test_a_two_phase_schedule_on_a_clock_bills_both_phases_to_the_cent(api, org_acme,
                                                                       django_capture_on_commit_callbacks):
    clock = _clock(api)
    basic, pro = make_plan(api, name="Basic", price=1000), make_plan(api, slug="p", name="Pro", price=3000)
    _grant(api, "sched-anna")
    res = api.post("/subscription-schedules", {
        "customerId": "sched-anna", "startDate": "2027-01-15T00:00:00Z", "endBehavior": "cancel",
        "testClock": clock["id"], "phases": [
            {"planId": basic["id"], "startDate": "2027-01-15T00:00:00Z", "endDate": "2027-03-01T00:00:00Z"},
            {"planId": pro["id"], "endDate": "2027-05-01T00:00:00Z"}]})
    assert res.status_code == 201, res.content
    schedule = res.json()
    assert schedule["testClock"] == clock["id"] and schedule["status"] == "not_started"

    # The real-time sweepers never touch it: it moves only with its clock.
    far = datetime(2030, 1, 1, tzinfo=UTC)
    assert schedule_runner.schedules_claim(now=far) == []
    assert api.get(f"/subscription-schedules/{schedule['id']}").json()["status"] == "not_started"

    _advance(api, clock, "2027-01-15T00:00:01Z")  # phase 0 starts at its date, on the clock
    got = api.get(f"/subscription-schedules/{schedule['id']}").json()
    assert (got["status"], got["currentPhase"]) == ("active", 0)
    sub = api.get(f"/subscriptions/{got['subscriptionId']}").json()
    assert (sub["testClock"], sub["planId"], sub["currentPeriodStart"]) == (
        clock["id"], basic["id"], "2027-01-15T00:00:00Z")
    assert sweeps.subscriptions_claim(now=far) == []  # the subscription lives on the clock too

    with django_capture_on_commit_callbacks(execute=True):  # the final invoice settles after its commit
        _advance(api, clock, "2027-06-01T00:00:00Z")

    got = api.get(f"/subscription-schedules/{schedule['id']}").json()
    assert (got["status"], got["completedAt"]) == ("completed", "2027-05-01T00:00:00Z")
    sub = api.get(f"/subscriptions/{sub['id']}").json()
    assert (sub["status"], sub["planId"], sub["endedAt"]) == ("canceled", pro["id"], "2027-05-01T00:00:00Z")
    # 15 Feb: Basic. 1 Mar: Pro from here (14 of the 28 days of 15 Feb – 15 Mar were Basic: 500 pending).
    # 15 Mar: 500 + Pro 14/28 of 3000. 15 Apr: Pro. 1 May (end, cancel): Pro 16 of the 30 days: 1600.
    rows = [(i["periodStart"], i["periodEnd"], i["total"], i["status"]) for i in _invoices(api, sub["id"])]
    assert rows == [
        ("2027-01-15T00:00:00Z", "2027-02-15T00:00:00Z", 1000, "paid"),
        ("2027-02-15T00:00:00Z", "2027-03-15T00:00:00Z", 2000, "paid"),
        ("2027-03-15T00:00:00Z", "2027-04-15T00:00:00Z", 3000, "paid"),
        ("2027-04-15T00:00:00Z", "2027-05-01T00:00:00Z", 1600, "paid"),
    ]
    march = _invoices(api, sub["id"])[1]
    assert sorted((line["type"], line["amount"]) for line in march["lineItems"]) == [
        ("proration", 500), ("subscription", 1500)]
    types = [e.type for e in BillingEvent.objects.filter(organization=org_acme, object_id=schedule["id"])
             .order_by("pk")]
    assert types == ["subscription_schedule.created", "subscription_schedule.phase_started",
                     "subscription_schedule.phase_started", "subscription_schedule.completed"]
    assert ledger_selectors.ledger_audit().ok


def test_a_phase_starting_where_a_period_ends_follows_that_periods_renewal(api, org_acme):
    clock = _clock(api)
    basic, pro = make_plan(api, name="Basic", price=1000), make_plan(api, slug="p", name="Pro", price=3000)
    _grant(api, "sched-ben")
    schedule = api.post("/subscription-schedules", {
        "customerId": "sched-ben", "startDate": "2027-01-15T00:00:00Z", "testClock": clock["id"], "phases": [
            {"planId": basic["id"], "endDate": "2027-02-15T00:00:00Z"}, {"planId": pro["id"]}]}).json()
    _advance(api, clock, "2027-03-20T00:00:00Z")  # one advance runs the start, the renewal, the change, …
    got = api.get(f"/subscription-schedules/{schedule['id']}").json()
    assert (got["status"], got["currentPhase"]) == ("active", 1)
    totals = [(i["periodStart"], i["total"]) for i in _invoices(api, got["subscriptionId"])]
    # The 15 Feb renewal bills January on Basic, then Pro starts: no proration line, March is all Pro.
    assert totals == [("2027-01-15T00:00:00Z", 1000), ("2027-02-15T00:00:00Z", 3000)]
    assert all(not line["type"] == "proration" for i in _invoices(api, got["subscriptionId"])
               for line in i["lineItems"])


def test_schedule_on_an_unknown_clock_is_404_and_writes_nothing(api):
    res = api.post("/subscription-schedules", {"customerId": "c", "testClock": "clock_nope"})
    assert_error(res, 404, "test clock not found", param="testClock")
    assert SubscriptionSchedule.objects.count() == 0


def test_cancel_of_a_clock_schedule_happens_at_the_clocks_time(api):
    clock = _clock(api)
    schedule = api.post("/subscription-schedules", {"customerId": "c", "testClock": clock["id"]}).json()
    got = api.post(f"/subscription-schedules/{schedule['id']}/cancel").json()
    assert (got["status"], got["canceledAt"]) == ("canceled", "2027-01-15T00:00:00Z")


# --- invoice.upcoming ------------------------------------------------------------------------------------

def test_invoice_upcoming_once_per_period_three_days_ahead_on_a_clock(api, org_acme):
    clock = _clock(api)
    plan = make_plan(api, name="Basic", price=1000)
    _grant(api, "up-cleo")
    sub = api.post("/subscriptions", {"userId": "up-cleo", "planId": plan["id"], "testClock": clock["id"],
                                      "quantity": 2}).json()
    _advance(api, clock, "2027-02-11T23:59:59Z")
    assert _upcoming_events(org_acme, sub["id"]) == []
    _advance(api, clock, "2027-02-12T06:00:00Z")  # 15 Feb − 3 days
    (event,) = _upcoming_events(org_acme, sub["id"])
    preview = api.get("/invoices/upcoming", {"userId": "up-cleo", "subscriptionId": sub["id"]}).json()
    assert event.data == preview and event.customer_id == "up-cleo"
    assert (preview["subtotal"], preview["lineItems"][0]["periodEnd"]) == (2000, "2027-02-15T00:00:00Z")
    _advance(api, clock, "2027-02-14T00:00:00Z")
    assert len(_upcoming_events(org_acme, sub["id"])) == 1  # once per period
    _advance(api, clock, "2027-04-01T00:00:00Z")  # 12 Mar for the period 15 Feb – 15 Mar
    events = _upcoming_events(org_acme, sub["id"])
    assert [e.data["lineItems"][0]["periodEnd"] for e in events] == ["2027-02-15T00:00:00Z", "2027-03-15T00:00:00Z"]
    assert [e.data["subtotal"] for e in events] == [2000, 2000]


def test_invoice_upcoming_days_is_an_organization_setting(api, org_acme):
    SubscriptionSettings.objects.create(organization=org_acme, upcoming_invoice_days=10)
    clock = _clock(api)
    plan = make_plan(api, name="Basic", price=1000)
    sub = api.post("/subscriptions", {"userId": "up-dora", "planId": plan["id"], "testClock": clock["id"]}).json()
    _advance(api, clock, "2027-02-04T23:00:00Z")
    assert _upcoming_events(org_acme, sub["id"]) == []
    _advance(api, clock, "2027-02-05T00:00:00Z")  # 15 Feb − 10 days
    assert len(_upcoming_events(org_acme, sub["id"])) == 1


def test_invoice_upcoming_reflects_a_pending_change(api, org_acme):
    clock = _clock(api)
    basic, pro = make_plan(api, name="Basic", price=1000), make_plan(api, slug="p", name="Pro", price=3100)
    sub = api.post("/subscriptions", {"userId": "up-eve", "planId": basic["id"], "testClock": clock["id"]}).json()
    _advance(api, clock, "2027-01-29T00:00:00Z")  # 14 of the 31 days on Basic
    patch(api, f"/subscriptions/{sub['id']}", {"planId": pro["id"]})
    _advance(api, clock, "2027-02-13T00:00:00Z")
    (event,) = _upcoming_events(org_acme, sub["id"])
    assert sorted((line["type"], line["amount"]) for line in event.data["lineItems"]) == [
        ("proration", 452), ("subscription", 1700)]


def test_the_real_time_sweeper_sends_invoice_upcoming_once(org_acme):
    plan = plan_services.plan_create(organization=org_acme, name="Pro", price=3000)
    start = datetime(2027, 1, 31, 10, 0, tzinfo=UTC)
    sub = sub_services.subscription_create(organization=org_acme, customer_id="up-finn", plan_id=plan.public_id,
                                           now=start)
    notice_at = sub.current_period_end - timedelta(days=3)  # 28 Feb 10:00 − 3 days
    assert sweeps.subscriptions_claim(now=notice_at - timedelta(seconds=1)) == []
    assert sweeps.subscriptions_claim(now=notice_at) == [sub.pk]
    assert renewals.subscription_due_process(subscription_pk=sub.pk, now=notice_at) == "upcoming_notice"
    assert renewals.subscription_due_process(subscription_pk=sub.pk, now=notice_at) == "not_due"
    Subscription.objects.filter(pk=sub.pk).update(sweep_claimed_until=None)
    assert sweeps.subscriptions_claim(now=notice_at + timedelta(hours=1)) == []
    (event,) = _upcoming_events(org_acme, sub.public_id)
    assert (event.data["subscriptionId"], event.data["subtotal"], event.data["amountDue"]) == (
        sub.public_id, 3000, 3000)
    assert Invoice.objects.filter(subscription_id=sub.public_id).count() == 0  # a notice writes no invoice


def test_no_invoice_upcoming_for_canceled_or_unpaid_subscriptions(org_acme):
    plan = plan_services.plan_create(organization=org_acme, name="Pro", price=3000)
    start = datetime(2027, 1, 31, 10, 0, tzinfo=UTC)
    sub = sub_services.subscription_create(organization=org_acme, customer_id="up-gus", plan_id=plan.public_id,
                                           now=start)
    Subscription.objects.filter(pk=sub.pk).update(status=Subscription.STATUS_UNPAID)
    notice_at = sub.current_period_end - timedelta(days=2)
    assert sweeps.subscriptions_claim(now=notice_at) == []
    assert renewals.subscription_due_process(subscription_pk=sub.pk, now=notice_at) == "not_due"
    assert _upcoming_events(org_acme, sub.public_id) == []
