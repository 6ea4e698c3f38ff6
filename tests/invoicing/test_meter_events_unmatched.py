"""Meter events whose ``meterId`` names no meter yet ("beyond the original": usage reporters name meters by
a stable name). Accepted (201, the original's shape), kept as unmatched, resolved by id or ``eventName``,
and counted exactly once — by their own timestamps — when a meter with that id or ``eventName`` is created."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing_project.core.times import rfc3339
from invoicing.models import Meter, MeterEvent, MeterRollup, MeterUniqueValue, UnmatchedMeterEvent
from invoicing.selectors import metering as selectors
from invoicing.services import metering as services
from invoicing.services.metering import MeterEventInput
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

ALICE = "hanzo/alice"
BOB = "hanzo/bob"
NAME = "doks-node-hours"


def post(api, *events) -> dict:
    r = api.post("/meter-events", {"events": list(events)})
    assert r.status_code == 201, r.content
    body = r.json()
    assert set(body) == {"events", "count"} and body["count"] == len(events)
    return body


def ev(meter_id: str = NAME, value: int = 1, user: str = ALICE, **extra) -> dict:
    return {"meterId": meter_id, "userId": user, "value": value, **extra}


def make_meter(api, event_name: str = NAME, **extra) -> dict:
    r = api.post("/meters", {"name": "Node hours", "eventName": event_name, **extra})
    assert r.status_code == 201, r.content
    return r.json()


def summary(api, meter_id: str, **params):
    return api.get("/meter-events/summary", {"meterId": meter_id, **params})


def hour(days_ago: int, h: int = 10) -> datetime:
    day = (timezone.now() - timedelta(days=days_ago)).astimezone(UTC)
    return day.replace(hour=h, minute=0, second=0, microsecond=0)


# --- accepted and kept ------------------------------------------------------------------------------

def test_events_for_an_unknown_name_are_accepted_and_kept(api, org_acme):
    at = hour(3)
    body = post(api, ev(value=4, timestamp=rfc3339(at), idempotency="pool-a/2030-01-01T10", dimensions={"pool": "a"}),
                ev(value=6, user=BOB))
    assert [e["status"] for e in body["events"]] == ["created", "created"]
    assert not MeterEvent.objects.exists() and not MeterRollup.objects.exists()
    stored = UnmatchedMeterEvent.objects.get(public_id=body["events"][0]["id"])
    assert (stored.organization, stored.meter_ref, stored.customer, stored.value, stored.timestamp) == (
        org_acme, NAME, ALICE, 4, at)
    assert (stored.idempotency_key, stored.dimensions, len(stored.fingerprint)) == (
        "pool-a/2030-01-01T10", {"pool": "a"}, 64)
    assert list(selectors.unmatched_meter_event_list(organization=org_acme, meter_ref=NAME)
                .values_list("value", flat=True)) == [4, 6]


def test_a_summary_for_an_unknown_meter_stays_404(api):
    post(api, ev())
    assert_error(summary(api, NAME), 404, "meter not found", param="meterId")


def test_unmatched_keys_dedupe_like_any_event(api):
    first = post(api, ev(value=3, idempotency="k1"), ev(value=3, idempotency="k1"))
    assert [e["status"] for e in first["events"]] == ["created", "duplicate"]
    assert first["events"][0]["id"] == first["events"][1]["id"]
    again = post(api, ev(value=3, idempotency="k1"), ev(value=4, idempotency="k1"),
                 ev("other-name", 3, idempotency="k1"))
    assert [(e["status"], e.get("conflict", False)) for e in again["events"]] == [
        ("duplicate", False), ("duplicate", True), ("created", False)]
    assert again["events"][0]["id"] == first["events"][0]["id"]
    assert UnmatchedMeterEvent.objects.count() == 2  # k1 under NAME and k1 under other-name


def test_a_batch_mixing_matched_and_unmatched_events_stores_both(api):
    meter = make_meter(api, "known")
    body = post(api, ev(meter["id"], 2), ev(NAME, 5), ev("known", 7))
    assert [e["status"] for e in body["events"]] == ["created"] * 3
    assert summary(api, meter["id"]).json()["value"] == 9
    assert UnmatchedMeterEvent.objects.get().public_id == body["events"][1]["id"]


def test_an_invalid_event_stores_nothing_matched_or_not(api):
    assert_error(api.post("/meter-events", {"events": [ev(), {"meterId": NAME}]}), 400,
                 "userId is required for each event", param="events[1].userId")
    assert not UnmatchedMeterEvent.objects.exists()


# --- resolution by eventName ------------------------------------------------------------------------

def test_meter_id_resolves_by_id_else_by_event_name(api):
    meter = make_meter(api)
    body = post(api, ev(value=2), ev(meter["id"], 3))
    assert not UnmatchedMeterEvent.objects.exists()
    assert {e.meter.public_id for e in MeterEvent.objects.all()} == {meter["id"]}
    assert MeterEvent.objects.get(public_id=body["events"][0]["id"]).value == 2
    by_id = summary(api, meter["id"]).json()
    by_name = summary(api, NAME).json()
    assert (by_id["value"], by_id["eventCount"]) == (5, 2)
    assert by_name == by_id and by_name["meterId"] == meter["id"]


def test_an_id_wins_over_another_meters_event_name(api, org_acme):
    first = make_meter(api, "alpha")
    second = make_meter(api, first["id"])  # a (strange) eventName equal to the first meter's id
    post(api, ev(first["id"], 1))
    assert MeterEvent.objects.get().meter.public_id == first["id"]
    assert summary(api, second["id"]).json()["eventCount"] == 0


def test_keys_of_events_sent_by_name_are_per_meter(api):
    make_meter(api)
    body = post(api, ev(value=1, idempotency="k"), ev(value=1, idempotency="k"))
    assert [e["status"] for e in body["events"]] == ["created", "duplicate"]
    assert MeterEvent.objects.count() == 1


# --- counted when the meter is created ----------------------------------------------------------------

def test_creating_the_meter_counts_its_unmatched_events_once_by_their_timestamps(api, org_acme):
    jan = datetime(2024, 1, 31, 18, 5, tzinfo=UTC)  # a backfill: counted in its own period
    recent = hour(2, 10) + timedelta(minutes=30)
    sent = post(api, ev(value=5, timestamp=rfc3339(jan), idempotency="pool-a/jan"),
                ev(value=7, timestamp=rfc3339(recent), idempotency="pool-a/recent"),
                ev(value=11, user=BOB, timestamp=rfc3339(recent)),
                ev("another-name", 1000))
    meter = make_meter(api)

    assert list(UnmatchedMeterEvent.objects.values_list("meter_ref", flat=True)) == ["another-name"]
    moved = MeterEvent.objects.filter(meter__public_id=meter["id"])
    assert {e.public_id for e in moved} == {e["id"] for e in sent["events"][:3]}  # ids kept
    rollups = {(r.customer, r.bucket): (r.event_count, int(r.value_sum)) for r in MeterRollup.objects.all()}
    assert rollups == {(ALICE, datetime(2024, 1, 31, 18, tzinfo=UTC)): (1, 5),
                       (ALICE, recent.replace(minute=0)): (1, 7),
                       (BOB, recent.replace(minute=0)): (1, 11)}
    s = summary(api, meter["id"]).json()
    assert (s["value"], s["eventCount"]) == (23, 3)
    s = summary(api, meter["id"], userId=ALICE, periodStart="2024-01-01", periodEnd="2024-01-31").json()
    assert (s["value"], s["eventCount"]) == (5, 1)

    # Counted once: more events by name now go straight to the meter; a replay is a duplicate of the moved
    # event; a second meter with the same eventName is refused and moves nothing.
    again = post(api, ev(value=5, timestamp=rfc3339(jan), idempotency="pool-a/jan"), ev(value=100))
    assert [e["status"] for e in again["events"]] == ["duplicate", "created"]
    assert again["events"][0]["id"] == sent["events"][0]["id"]
    assert_error(api.post("/meters", {"name": "dup", "eventName": NAME}), 409)
    s = summary(api, meter["id"]).json()
    assert (s["value"], s["eventCount"]) == (123, 4)


def test_the_preview_prices_moved_events(api):
    post(api, ev(value=40, timestamp=rfc3339(hour(1))))
    meter = make_meter(api)
    assert api.post("/pricing-rules", {"meterId": meter["id"], "unitPrice": 3}).status_code == 201
    body = api.post("/invoice-preview", {"userId": ALICE}).json()
    assert [(li["meterId"], li["quantity"], li["totalCost"]) for li in body["lineItems"]] == [(meter["id"], 40, 120)]


@pytest.mark.parametrize("aggregation, expected", [("sum", 9), ("count", 3), ("max", 5), ("last", 1),
                                                   ("unique_count", 2)])
def test_moved_events_aggregate_like_ingested_ones(api, aggregation, expected):
    at = hour(1)
    post(api, ev(value=3, timestamp=rfc3339(at), dimensions={"model": "a"}),
         ev(value=5, timestamp=rfc3339(at + timedelta(minutes=1)), dimensions={"model": "b"}),
         ev(value=1, timestamp=rfc3339(at + timedelta(minutes=2)), dimensions={"model": "a"}))
    extra = {"uniqueDimension": "model"} if aggregation == "unique_count" else {}
    meter = make_meter(api, aggregationType=aggregation, **extra)
    assert summary(api, meter["id"]).json()["value"] == expected
    if aggregation == "unique_count":
        assert MeterUniqueValue.objects.count() == 2


def test_meters_and_unmatched_events_stay_in_their_organization(api, globex_api, org_acme, org_globex):
    post(api, ev(value=1))
    post(globex_api, ev(value=2))
    acme_meter = make_meter(api)
    assert list(UnmatchedMeterEvent.objects.values_list("organization", "value")) == [(org_globex.pk, 2)]
    assert summary(api, acme_meter["id"]).json()["value"] == 1
    globex_meter = make_meter(globex_api)
    assert summary(globex_api, globex_meter["id"]).json()["value"] == 2
    assert not UnmatchedMeterEvent.objects.exists()


def test_service_meter_create_reports_nothing_moved_for_a_new_name(org_acme):
    services.meter_events_record(organization=org_acme, events=[
        MeterEventInput(meter_id=NAME, customer=ALICE, value=2)])
    services.meter_create(organization=org_acme, name="other", event_name="other")
    assert UnmatchedMeterEvent.objects.count() == 1
    meter = services.meter_create(organization=org_acme, name="n", event_name=NAME)
    assert not UnmatchedMeterEvent.objects.exists()
    assert selectors.meter_usage(meter=meter, customer=None, start=None, end=None).value == 2
    assert Meter.objects.count() == 2


# --- admin ------------------------------------------------------------------------------------------

def test_admin_lists_and_filters_unmatched_events(admin_client, api, globex_api):
    post(api, ev(value=1, idempotency="key-one"), ev("other-name", 2))
    post(globex_api, ev("globex-name", 3))
    url = reverse("admin:invoicing_unmatchedmeterevent_changelist")
    page = admin_client.get(url).content.decode()
    assert NAME in page and "other-name" in page and "globex-name" in page
    page = admin_client.get(url, {"meter_ref": NAME}).content.decode()
    assert "key-one" in page and "other-name" not in page
    obj = UnmatchedMeterEvent.objects.get(meter_ref=NAME)
    detail = admin_client.get(reverse("admin:invoicing_unmatchedmeterevent_change", args=[obj.pk]))
    assert detail.status_code == 200 and obj.public_id in detail.content.decode()
    assert admin_client.get(reverse("admin:invoicing_unmatchedmeterevent_add")).status_code == 403
