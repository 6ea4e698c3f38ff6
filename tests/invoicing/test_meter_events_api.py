"""API: POST /meter-events and GET /meter-events/summary (tests.md §1 "Meter events", lines 7–15, with the
fixes of metering.md "Known weaknesses" 1–5: atomic batches, per-meter dedupe with conflicts, no silent
coercions, `last` by timestamp, half-open periods)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from billing_project.core.times import rfc3339
from invoicing.models import MeterEvent, MeterRollup, MeterUniqueValue, UnmatchedMeterEvent
from tests.conftest import assert_error
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

ALICE = "hanzo/alice"
BOB = "hanzo/bob"


def make_meter(api, event_name="input_tokens", name="Input Tokens", **extra) -> dict:
    r = api.post("/meters", {"name": name, "eventName": event_name, "dimensions": ["model", "region"], **extra})
    assert r.status_code == 201, r.content
    return r.json()


@pytest.fixture
def meter(api) -> dict:
    return make_meter(api)


def post(api, *events) -> dict:
    r = api.post("/meter-events", {"events": list(events)})
    assert r.status_code == 201, r.content
    return r.json()


def ev(meter: dict, value=1, user=ALICE, **extra) -> dict:
    return {"meterId": meter["id"], "userId": user, "value": value, **extra}


def hour_base() -> datetime:
    """A whole UTC hour two days ago: far enough from "now" for whole-hour windows on both sides."""
    return (timezone.now() - timedelta(days=2)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def summary(api, meter: dict, **params) -> dict:
    r = api.get("/meter-events/summary", {"meterId": meter["id"], **params})
    assert r.status_code == 200, r.content
    return r.json()


# --- POST /meter-events: happy paths ----------------------------------------------------------------

def test_post_one_event(api, meter):
    """tests.md 7."""
    body = post(api, ev(meter, 1500, dimensions={"model": "gpt-4"}))
    assert body["count"] == 1
    assert len(body["events"]) == 1
    assert body["events"][0]["status"] == "created"
    assert body["events"][0]["id"].startswith("mev_")
    stored = MeterEvent.objects.get(public_id=body["events"][0]["id"])
    assert (stored.customer, stored.value, stored.dimensions) == (ALICE, 1500, {"model": "gpt-4"})
    assert stored.meter.public_id == meter["id"]
    assert len(stored.fingerprint) == 64
    assert stored.metadata == {}


def test_post_two_events(api, meter):
    """tests.md 8."""
    body = post(api, ev(meter, 500), ev(meter, 1000, user=BOB))
    assert body["count"] == 2
    assert [e["status"] for e in body["events"]] == ["created", "created"]
    assert len({e["id"] for e in body["events"]}) == 2
    assert MeterEvent.objects.count() == 2


def test_exactly_100_events_are_accepted(api, meter):
    body = post(api, *[ev(meter, i) for i in range(100)])
    assert body["count"] == 100
    assert MeterEvent.objects.count() == 100


def test_value_defaults_to_zero_and_negative_values_are_accepted(api, meter):
    body = post(api, {"meterId": meter["id"], "userId": ALICE}, ev(meter, -7), ev(meter, 2**63 - 1))
    ids = [e["id"] for e in body["events"]]
    assert [MeterEvent.objects.get(public_id=i).value for i in ids] == [0, -7, 2**63 - 1]


def test_missing_timestamp_means_now(api, meter):
    before = timezone.now()
    body = post(api, ev(meter))
    stored = MeterEvent.objects.get(public_id=body["events"][0]["id"])
    assert before <= stored.timestamp <= timezone.now()


def test_timestamp_with_offset_is_stored_in_utc(api, meter):
    body = post(api, ev(meter, timestamp="2000-01-01T00:00:00+02:00".replace(
        "2000-01-01", (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%d"))))
    stored = MeterEvent.objects.get(public_id=body["events"][0]["id"])
    assert stored.timestamp.utcoffset() == timedelta(0)
    assert stored.timestamp.hour == 22


def test_scalar_dimension_values_are_stored_as_strings(api, meter):
    body = post(api, ev(meter, dimensions={"model": "gpt-4", "tier": 3, "beta": True, "ratio": 0.5}))
    stored = MeterEvent.objects.get(public_id=body["events"][0]["id"])
    assert stored.dimensions == {"model": "gpt-4", "tier": "3", "beta": "true", "ratio": "0.5"}


def test_events_update_hourly_rollups(api, meter):
    base = hour_base()
    post(api, ev(meter, 5, timestamp=rfc3339(base + timedelta(minutes=10))),
         ev(meter, 9, timestamp=rfc3339(base + timedelta(minutes=50))),
         ev(meter, 2, timestamp=rfc3339(base + timedelta(minutes=30))),
         ev(meter, 4, timestamp=rfc3339(base + timedelta(hours=1, minutes=1))))
    rollups = list(MeterRollup.objects.order_by("bucket"))
    assert [r.bucket for r in rollups] == [base, base + timedelta(hours=1)]
    first = rollups[0]
    assert (first.customer, first.event_count, first.value_sum, first.value_max) == (ALICE, 3, 16, 9)
    assert (first.last_value, first.last_timestamp) == (9, base + timedelta(minutes=50))
    assert rollups[1].event_count == 1


def test_meter_events_publish_no_billing_events(api, meter):
    before = BillingEvent.objects.count()
    post(api, *[ev(meter, i) for i in range(10)])
    assert BillingEvent.objects.count() == before


# --- idempotency ------------------------------------------------------------------------------------

def test_same_key_twice_is_duplicate(api, meter):
    """tests.md 9."""
    event = ev(meter, 1000, idempotency="dedup-key-1")
    first = post(api, event)["events"][0]
    assert first["status"] == "created"
    again = post(api, event)
    assert again["count"] == 1
    assert again["events"][0] == {"id": first["id"], "status": "duplicate"}
    assert MeterEvent.objects.count() == 1
    assert MeterRollup.objects.get().event_count == 1


def test_duplicate_without_timestamp_is_still_a_duplicate(api, meter):
    """The fingerprint uses the timestamp as sent: a retried timestamp-less event is not a conflict."""
    event = ev(meter, 3, idempotency="k")
    first = post(api, event)["events"][0]
    assert post(api, event)["events"][0] == {"id": first["id"], "status": "duplicate"}


def test_same_key_different_payload_is_conflict_and_does_not_count(api, meter):
    first = post(api, ev(meter, 10, idempotency="k1"))["events"][0]
    body = post(api, ev(meter, 99, idempotency="k1"))
    assert body["events"][0] == {"id": first["id"], "status": "duplicate", "conflict": True}
    assert MeterEvent.objects.get().value == 10
    rollup = MeterRollup.objects.get()
    assert (rollup.event_count, rollup.value_sum) == (1, 10)


@pytest.mark.parametrize("change", [{"userId": BOB}, {"dimensions": {"model": "x"}},
                                    {"timestamp": "__ts__"}])
def test_any_payload_change_is_a_conflict(api, meter, change):
    if change.get("timestamp") == "__ts__":
        change = {"timestamp": rfc3339(hour_base())}
    first = post(api, ev(meter, 1, idempotency="k"))["events"][0]
    again = post(api, {**ev(meter, 1, idempotency="k"), **change})["events"][0]
    assert again == {"id": first["id"], "status": "duplicate", "conflict": True}


def test_key_repeated_inside_one_batch(api, meter):
    body = post(api, ev(meter, 1, idempotency="k"), ev(meter, 1, idempotency="k"), ev(meter, 2, idempotency="k"),
                ev(meter, 7))
    assert body["count"] == 4
    statuses = [e["status"] for e in body["events"]]
    assert statuses == ["created", "duplicate", "duplicate", "created"]
    assert [e.get("conflict", False) for e in body["events"]] == [False, False, True, False]
    assert body["events"][0]["id"] == body["events"][1]["id"] == body["events"][2]["id"]
    assert MeterEvent.objects.count() == 2
    assert MeterRollup.objects.get().event_count == 2


def test_mixed_batch_of_new_and_replayed_events(api, meter):
    first = post(api, ev(meter, 1, idempotency="a"))["events"][0]
    body = post(api, ev(meter, 2, idempotency="b"), ev(meter, 1, idempotency="a"), ev(meter, 3, idempotency="a"))
    assert [(e["status"], e.get("conflict", False)) for e in body["events"]] == [
        ("created", False), ("duplicate", False), ("duplicate", True)]
    assert body["events"][1]["id"] == body["events"][2]["id"] == first["id"]
    assert MeterRollup.objects.get().event_count == 2


def test_key_is_scoped_per_meter(api, meter):
    other = make_meter(api, event_name="api_calls", name="Calls")
    body = post(api, ev(meter, idempotency="k"), ev(other, idempotency="k"))
    assert [e["status"] for e in body["events"]] == ["created", "created"]


def test_key_is_scoped_per_organization(api, globex_api, meter):
    theirs = make_meter(globex_api)
    post(api, ev(meter, idempotency="k"))
    assert post(globex_api, ev(theirs, idempotency="k"))["events"][0]["status"] == "created"


def test_empty_key_means_no_key(api, meter):
    body = post(api, ev(meter, idempotency=""), ev(meter, idempotency=""))
    assert [e["status"] for e in body["events"]] == ["created", "created"]
    assert MeterEvent.objects.filter(idempotency_key__isnull=True).count() == 2


# --- POST /meter-events: errors ---------------------------------------------------------------------

@pytest.mark.parametrize("body", [{}, {"events": []}, {"events": None}])
def test_no_events_is_400(api, body):
    """tests.md 10."""
    assert_error(api.post("/meter-events", body), 400, "at least one event is required", param="events")


def test_events_must_be_an_array(api):
    assert_error(api.post("/meter-events", {"events": {"a": 1}}), 400, param="events")


def test_more_than_100_events_is_400(api, meter):
    assert_error(api.post("/meter-events", {"events": [ev(meter)] * 101}), 400, "maximum 100 events per batch",
                 param="events")
    assert not MeterEvent.objects.exists()


def test_invalid_json_is_400(api):
    assert_error(api.post("/meter-events", raw="{nope"), 400, "invalid request body")
    assert_error(api.post("/meter-events", raw=""), 400, "invalid request body")


@pytest.mark.parametrize("event", [{"userId": ALICE}, {"meterId": "", "userId": ALICE},
                                   {"meterId": "  ", "userId": ALICE}, {"meterId": None, "userId": ALICE}])
def test_event_without_meter_id_is_400(api, event):
    """tests.md 11."""
    assert_error(api.post("/meter-events", {"events": [event]}), 400, "meterId is required for each event",
                 param="events[0].meterId")


def test_event_without_user_id_is_400(api, meter):
    """tests.md 12."""
    assert_error(api.post("/meter-events", {"events": [{"meterId": meter["id"]}]}), 400,
                 "userId is required for each event", param="events[0].userId")


def test_meter_id_is_checked_before_user_id(api):
    assert_error(api.post("/meter-events", {"events": [{}]}), 400, "meterId is required for each event")


def test_an_invalid_event_rejects_the_whole_batch(api, meter):
    """Weakness 1 fixed: nothing of a batch is stored when any event is invalid; the error names it."""
    events = [ev(meter, 1), ev(meter, 2), ev(meter, 3), {"userId": ALICE}]
    assert_error(api.post("/meter-events", {"events": events}), 400, "meterId is required for each event",
                 param="events[3].meterId")
    assert not MeterEvent.objects.exists()
    assert not MeterRollup.objects.exists()


def test_an_unknown_meter_id_is_accepted_and_kept_unmatched(api, meter):
    """Beyond the original's "not checked to exist": the event is kept (tests in test_meter_events_unmatched)."""
    body = post(api, ev(meter), {"meterId": "mtr_nope", "userId": ALICE})
    assert [e["status"] for e in body["events"]] == ["created", "created"]
    assert MeterEvent.objects.count() == 1
    assert UnmatchedMeterEvent.objects.get().public_id == body["events"][1]["id"]


def test_other_tenants_meter_id_names_no_meter_of_ours(api, globex_api, org_globex, meter):
    body = post(globex_api, ev(meter))
    assert not MeterEvent.objects.exists()
    unmatched = UnmatchedMeterEvent.objects.get(public_id=body["events"][0]["id"])
    assert (unmatched.organization, unmatched.meter_ref) == (org_globex, meter["id"])
    assert summary(api, meter)["eventCount"] == 0
    assert globex_api.get("/meter-events/summary", {"meterId": meter["id"]}).status_code == 404


def test_meter_id_longer_than_255_is_400(api):
    assert_error(api.post("/meter-events", {"events": [{"meterId": "m" * 256, "userId": ALICE}]}), 400,
                 param="events[0].meterId")


@pytest.mark.parametrize("value", ["25", 1.5, True, 2**63, -(2**63) - 1, [1]])
def test_value_must_be_an_int64(api, meter, value):
    assert_error(api.post("/meter-events", {"events": [ev(meter), ev(meter, value)]}), 400,
                 param="events[1].value")
    assert not MeterEvent.objects.exists()


def test_a_null_value_is_zero_as_in_the_original(api, meter):
    """The original decodes null as the zero value: a count event with "value": null is a value-0 event."""
    assert api.post("/meter-events", {"events": [ev(meter, None)]}).status_code == 201
    assert MeterEvent.objects.get().value == 0


@pytest.mark.parametrize("timestamp", ["yesterday", "2024-01-01", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00",
                                       12345])
def test_unparseable_timestamp_is_400(api, meter, timestamp):
    """Weakness 3 fixed: no silent "now"."""
    assert_error(api.post("/meter-events", {"events": [ev(meter), ev(meter, timestamp=timestamp)]}), 400,
                 param="events[1].timestamp")
    assert not MeterEvent.objects.exists()


def test_old_timestamps_are_accepted_by_default(api, meter):
    """Item 8: backfills of past months are accepted, as in the original."""
    old = [rfc3339(timezone.now() - timedelta(days=d)) for d in (36, 400)] + ["2024-01-31T18:00:00Z"]
    body = post(api, *[ev(meter, 1, timestamp=t) for t in old])
    assert [e["status"] for e in body["events"]] == ["created"] * 3


def test_the_organizations_backdating_window_refuses_older_events(api, org_acme, meter):
    org_acme.meter_event_backdate_days = 30
    org_acme.save(update_fields=["meter_event_backdate_days"])
    old = rfc3339(timezone.now() - timedelta(days=30, minutes=1))
    assert_error(api.post("/meter-events", {"events": [ev(meter), ev(meter, timestamp=old)]}), 400,
                 "timestamp is more than 30 days in the past (the organization's backdating window)",
                 param="events[1].timestamp")
    assert not MeterEvent.objects.exists()
    assert post(api, ev(meter, timestamp=rfc3339(timezone.now() - timedelta(days=29, hours=23))))["count"] == 1


def test_timestamp_more_than_5_minutes_ahead_is_400(api, meter):
    ahead = rfc3339(timezone.now() + timedelta(minutes=6))
    assert_error(api.post("/meter-events", {"events": [ev(meter, timestamp=ahead)]}), 400,
                 "timestamp is more than 5 minutes in the future", param="events[0].timestamp")
    assert post(api, ev(meter, timestamp=rfc3339(timezone.now() + timedelta(minutes=4))))["count"] == 1


@pytest.mark.parametrize("key", [123, "k" * 256, ["k"]])
def test_bad_idempotency_key_is_400(api, meter, key):
    assert_error(api.post("/meter-events", {"events": [ev(meter, idempotency=key)]}), 400,
                 param="events[0].idempotency")


@pytest.mark.parametrize("dimensions, param", [
    ("gpt-4", "events[0].dimensions"), (["a"], "events[0].dimensions"),
    ({"model": {"name": "x"}}, "events[0].dimensions.model"), ({"model": None}, "events[0].dimensions.model"),
    ({"model": "x" * 256}, "events[0].dimensions.model"),
])
def test_bad_dimensions_are_400(api, meter, dimensions, param):
    assert_error(api.post("/meter-events", {"events": [ev(meter, dimensions=dimensions)]}), 400, param=param)


def test_non_object_event_is_400(api):
    assert_error(api.post("/meter-events", {"events": ["x"]}), 400, param="events[0]")


def test_unauthenticated_is_401(anon_api):
    assert anon_api.post("/meter-events", {"events": [{}]}).status_code == 401
    assert anon_api.get("/meter-events/summary", {"meterId": "x"}).status_code == 401


# --- GET /meter-events/summary ----------------------------------------------------------------------

def test_summary_of_the_original_suite(api, meter):
    """tests.md 13."""
    post(api, ev(meter, 1500, dimensions={"model": "gpt-4"}))
    post(api, ev(meter, 500), ev(meter, 1000))
    post(api, ev(meter, 999, idempotency="dedup-key-1"))
    post(api, ev(meter, 999, idempotency="dedup-key-1"))
    post(api, ev(meter, 123456, user=BOB))
    body = summary(api, meter, userId=ALICE)
    assert body == {"meterId": meter["id"], "meterName": "Input Tokens", "userId": ALICE, "aggregationType": "sum",
                    "value": 3999, "eventCount": 4, "periodStart": "", "periodEnd": ""}


def test_summary_without_user_covers_all_customers(api, meter):
    post(api, ev(meter, 1), ev(meter, 2, user=BOB))
    body = summary(api, meter)
    assert (body["userId"], body["value"], body["eventCount"]) == ("", 3, 2)


def test_summary_without_meter_id_is_400(api):
    """tests.md 14."""
    assert_error(api.get("/meter-events/summary"), 400, "meterId query parameter is required", param="meterId")
    assert_error(api.get("/meter-events/summary", {"meterId": "  "}), 400, "meterId query parameter is required")


def test_summary_of_unknown_meter_is_404(api):
    """tests.md 15."""
    assert_error(api.get("/meter-events/summary", {"meterId": "mtr_nope"}), 404, "meter not found", param="meterId")


def test_summary_of_other_tenants_meter_is_404(api, globex_api, meter):
    assert_error(globex_api.get("/meter-events/summary", {"meterId": meter["id"]}), 404, "meter not found")


@pytest.mark.parametrize("param", ["periodStart", "periodEnd"])
@pytest.mark.parametrize("value", ["last week", "2024-02-30", "2024/01/01"])
def test_summary_ignores_unparseable_periods_as_the_original(api, meter, param, value):
    """metering.md §8: an unparseable bound is ignored (an open bound), and echoed as sent — a read-only
    leniency kept for wire compatibility (the preview, which the original refuses, stays 400)."""
    post(api, ev(meter, 3, timestamp=rfc3339(hour_base())))
    r = api.get("/meter-events/summary", {"meterId": meter["id"], param: value})
    assert r.status_code == 200, r.content
    assert (r.json()["value"], r.json()[param]) == (3, value)


def test_summary_period_end_before_start_is_empty(api, meter):
    post(api, ev(meter, 3, timestamp=rfc3339(hour_base())))
    body = summary(api, meter, periodStart="2099-02-01", periodEnd="2024-01-01")
    assert (body["value"], body["eventCount"]) == (0, 0)


def test_summary_period_is_half_open(api, meter):
    """Weakness 5 fixed: [start, end) — an event exactly at the end belongs to the next period."""
    base = hour_base()
    post(api, ev(meter, 1, timestamp=rfc3339(base)),
         ev(meter, 10, timestamp=rfc3339(base + timedelta(minutes=30))),
         ev(meter, 100, timestamp=rfc3339(base + timedelta(hours=2))))
    start, end = rfc3339(base), rfc3339(base + timedelta(hours=2))
    body = summary(api, meter, periodStart=start, periodEnd=end)
    assert (body["value"], body["eventCount"]) == (11, 2)
    assert (body["periodStart"], body["periodEnd"]) == (start, end)
    assert summary(api, meter, periodStart=end)["value"] == 100
    assert summary(api, meter, periodEnd=start)["value"] == 0


def test_summary_date_only_end_covers_that_whole_day(api, meter):
    """As the original's summary (metering.md §8; contract test_summary_date_only_period_end_is_inclusive): a
    date-only periodEnd includes that day; the start is that day's 00:00 UTC. Backfilled events count."""
    day = (timezone.now() - timedelta(days=3)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    next_day = day + timedelta(days=1)
    post(api, ev(meter, 1, timestamp=rfc3339(day)), ev(meter, 2, timestamp=rfc3339(day + timedelta(hours=23))),
         ev(meter, 4, timestamp=rfc3339(next_day)), ev(meter, 8, timestamp=rfc3339(day - timedelta(seconds=1))))
    body = summary(api, meter, periodStart=day.strftime("%Y-%m-%d"), periodEnd=day.strftime("%Y-%m-%d"))
    assert (body["value"], body["eventCount"]) == (3, 2)
    assert (body["periodStart"], body["periodEnd"]) == (day.strftime("%Y-%m-%d"), day.strftime("%Y-%m-%d"))
    body = summary(api, meter, periodStart=day.strftime("%Y-%m-%d"), periodEnd=next_day.strftime("%Y-%m-%d"))
    assert (body["value"], body["eventCount"]) == (7, 3)
    # An RFC 3339 end stays exclusive.
    body = summary(api, meter, periodStart=day.strftime("%Y-%m-%d"), periodEnd=rfc3339(next_day))
    assert (body["value"], body["eventCount"]) == (3, 2)


def test_summary_of_a_backfilled_month(api, meter):
    post(api, ev(meter, 5, timestamp="2024-01-31T18:00:00Z"), ev(meter, 50, timestamp="2024-02-01T18:00:00Z"),
         ev(meter, 500, timestamp="2023-12-31T18:00:00Z"))
    body = summary(api, meter, userId=ALICE, periodStart="2024-01-01", periodEnd="2024-01-31")
    assert (body["value"], body["eventCount"]) == (5, 1)


def test_summary_partial_hours_and_whole_hours_combine(api, meter):
    base = hour_base()
    times = [base + timedelta(minutes=m) for m in (5, 59, 60, 61, 150, 179, 180, 181)]
    post(api, *[ev(meter, 2**i, timestamp=rfc3339(t)) for i, t in enumerate(times)])
    body = summary(api, meter, periodStart=rfc3339(base + timedelta(minutes=30)),
                   periodEnd=rfc3339(base + timedelta(minutes=180, seconds=30)))
    # 59, 60, 61, 150, 179, 180 → bits 1..6
    assert (body["value"], body["eventCount"]) == (2 + 4 + 8 + 16 + 32 + 64, 6)


@pytest.mark.parametrize("aggregation, expected", [("sum", 6 - 4 + 9 + 0), ("count", 4), ("max", 9), ("last", 6)])
def test_summary_per_aggregation(api, aggregation, expected):
    meter = make_meter(api, event_name=f"e_{aggregation}", aggregationType=aggregation)
    base = hour_base()
    # Sent out of order: the latest timestamp carries 6, although 0 arrives last (weakness 4 fixed).
    post(api, ev(meter, 9, timestamp=rfc3339(base + timedelta(minutes=10))),
         ev(meter, 6, timestamp=rfc3339(base + timedelta(hours=3))),
         ev(meter, -4, timestamp=rfc3339(base + timedelta(hours=1))))
    post(api, ev(meter, 0, timestamp=rfc3339(base + timedelta(hours=2))))
    post(api, ev(meter, 50, user=BOB, timestamp=rfc3339(base + timedelta(hours=4))))
    body = summary(api, meter, userId=ALICE)
    assert (body["aggregationType"], body["value"], body["eventCount"]) == (aggregation, expected, 4)


def test_summary_last_ties_go_to_the_later_event(api):
    meter = make_meter(api, event_name="seats", aggregationType="last")
    at = rfc3339(hour_base())
    post(api, ev(meter, 1, timestamp=at))
    post(api, ev(meter, 2, timestamp=at))
    assert summary(api, meter)["value"] == 2


@pytest.mark.parametrize("aggregation", ["sum", "count", "max", "last", "unique_count"])
def test_summary_without_events_is_zero(api, aggregation):
    extra = {"uniqueDimension": "model"} if aggregation == "unique_count" else {}
    meter = make_meter(api, event_name=f"e_{aggregation}", aggregationType=aggregation, **extra)
    body = summary(api, meter)
    assert (body["value"], body["eventCount"]) == (0, 0)


def test_summary_unique_count(api):
    meter = make_meter(api, event_name="models", aggregationType="unique_count", uniqueDimension="model")
    base = hour_base()
    post(api, ev(meter, dimensions={"model": "gpt-4"}, timestamp=rfc3339(base + timedelta(minutes=1))),
         ev(meter, dimensions={"model": "gpt-4"}, timestamp=rfc3339(base + timedelta(hours=2))),
         ev(meter, dimensions={"model": "claude"}, timestamp=rfc3339(base + timedelta(hours=3, minutes=30))),
         ev(meter, dimensions={"region": "eu"}, timestamp=rfc3339(base + timedelta(hours=1))),
         ev(meter, user=BOB, dimensions={"model": "llama"}, timestamp=rfc3339(base + timedelta(hours=1))))
    assert MeterUniqueValue.objects.count() == 4
    body = summary(api, meter, userId=ALICE)
    assert (body["value"], body["eventCount"]) == (2, 4)
    assert summary(api, meter)["value"] == 3
    window = summary(api, meter, userId=ALICE, periodStart=rfc3339(base + timedelta(minutes=30)),
                     periodEnd=rfc3339(base + timedelta(hours=3, minutes=45)))
    assert (window["value"], window["eventCount"]) == (2, 3)
    assert summary(api, meter, userId=ALICE, periodEnd=rfc3339(base + timedelta(hours=3)))["value"] == 1


def test_the_backdating_window_is_edited_in_the_organization_admin(admin_client, api, org_acme, meter):
    from django.urls import reverse

    url = reverse("admin:core_organization_change", args=[org_acme.pk])
    assert "meter_event_backdate_days" in admin_client.get(url).content.decode()
    form = {"slug": org_acme.slug, "name": org_acme.name, "live": "on", "invoice_due_days": "30",
            "meter_event_backdate_days": "10"}
    assert admin_client.post(url, form).status_code == 302
    org_acme.refresh_from_db()
    assert org_acme.meter_event_backdate_days == 10
    old = rfc3339(timezone.now() - timedelta(days=11))
    assert_error(api.post("/meter-events", {"events": [ev(meter, timestamp=old)]}), 400, param="events[0].timestamp")
    assert admin_client.post(url, {**form, "meter_event_backdate_days": ""}).status_code == 302
    org_acme.refresh_from_db()
    assert org_acme.meter_event_backdate_days is None
    assert post(api, ev(meter, timestamp=old))["count"] == 1
