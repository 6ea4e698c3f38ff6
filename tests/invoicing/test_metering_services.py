"""Services and selectors of metering (tests.md §3 "Metering helpers" 80–82, plus rollups and usage).

The property test checks that the rollup-based ``meter_usage`` equals the direct computation over events
(``meter_usage_from_events``) for every aggregation type, random late events and random windows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_project.core.errors import Conflict, NotFound, ValidationError
from invoicing.models import Meter, MeterEvent, MeterRollup, MeterUniqueValue
from invoicing.selectors import metering as selectors
from invoicing.selectors.metering import MeterUsage
from invoicing.services import metering as services
from invoicing.services.metering import MeterEventInput

pytestmark = pytest.mark.django_db

ALICE = "hanzo/alice"
BOB = "hanzo/bob"
NOW = datetime(2030, 6, 15, 12, 30, tzinfo=UTC)
BASE = datetime(2030, 6, 10, 0, 0, tzinfo=UTC)


def new_meter(org, aggregation="sum", **extra) -> Meter:
    if aggregation == "unique_count":
        extra.setdefault("unique_dimension", "model")
    return services.meter_create(organization=org, name=f"m {aggregation}", event_name=uuid.uuid4().hex,
                                 aggregation_type=aggregation, **extra)


def record(org, *events, now=NOW):
    return services.meter_events_record(organization=org, events=list(events), now=now)


def event(meter, value=1, customer=ALICE, at=None, key=None, dims=None) -> MeterEventInput:
    return MeterEventInput(meter_id=meter.public_id, customer=customer, value=value, timestamp=at,
                           idempotency_key=key, dimensions=dims)


# --- meter_create -----------------------------------------------------------------------------------

def test_meter_create(org_acme):
    meter = services.meter_create(organization=org_acme, name="Tokens", event_name="tokens",
                                  aggregation_type=" MAX ", currency="EUR", dimensions=["model"])
    meter.refresh_from_db()
    assert (meter.aggregation_type, meter.currency, meter.dimensions, meter.unique_dimension) == (
        "max", "eur", ["model"], "")
    assert meter.public_id.startswith("mtr_")


def test_meter_create_duplicate_event_name_is_conflict(org_acme, org_globex):
    services.meter_create(organization=org_acme, name="a", event_name="tokens")
    with pytest.raises(Conflict) as info:
        services.meter_create(organization=org_acme, name="b", event_name="tokens")
    assert info.value.param == "eventName"
    services.meter_create(organization=org_globex, name="a", event_name="tokens")


@pytest.mark.parametrize("kwargs, param", [
    ({"name": "", "event_name": "e"}, "name"),
    ({"name": "n", "event_name": ""}, "eventName"),
    ({"name": "n", "event_name": "e", "aggregation_type": "avg"}, "aggregationType"),
    ({"name": "n", "event_name": "e", "aggregation_type": "unique_count"}, "uniqueDimension"),
    ({"name": "n", "event_name": "e", "unique_dimension": "x"}, "uniqueDimension"),
    ({"name": "n", "event_name": "e", "aggregation_type": "unique_count", "unique_dimension": "x",
      "dimensions": ["y"]}, "uniqueDimension"),
    ({"name": "n", "event_name": "e", "dimensions": ["y", "y"]}, "dimensions"),
])
def test_meter_create_validation(org_acme, kwargs, param):
    with pytest.raises(ValidationError) as info:
        services.meter_create(organization=org_acme, **kwargs)
    assert info.value.param == param
    assert not Meter.objects.exists()


def test_meter_get_and_list(org_acme, org_globex):
    a = new_meter(org_acme)
    b = new_meter(org_acme, "count")
    new_meter(org_globex)
    assert list(selectors.meter_list(organization=org_acme)) == [a, b]
    assert selectors.meter_get(organization=org_acme, meter_id=b.public_id) == b
    with pytest.raises(NotFound) as info:
        selectors.meter_get(organization=org_globex, meter_id=a.public_id, param="meterId")
    assert (info.value.message, info.value.param) == ("meter not found", "meterId")


# --- ingestion: tests.md 80–82 ----------------------------------------------------------------------

def test_event_without_meter_id_fails(org_acme):
    """tests.md 80 (both missing: the meter error comes first)."""
    for ev, message in [(MeterEventInput(meter_id="", customer=ALICE), "meterId is required"),
                        (MeterEventInput(meter_id="mtr_x", customer=""), "userId is required"),
                        (MeterEventInput(meter_id="", customer=""), "meterId is required")]:
        with pytest.raises(ValidationError) as info:
            services.meter_event_record(organization=org_acme, event=ev)
        assert message in info.value.message


def test_empty_batch_ingests_nothing(org_acme):
    """tests.md 81."""
    assert services.meter_events_record(organization=org_acme, events=[]) == []
    assert not MeterEvent.objects.exists()


def test_batch_with_invalid_first_event_stores_nothing(org_acme):
    """tests.md 82 — and, fixed, the same for an invalid event anywhere in the batch."""
    meter = new_meter(org_acme)
    for events in ([MeterEventInput(meter_id="", customer=ALICE), event(meter)],
                   [event(meter), event(meter), MeterEventInput(meter_id=meter.public_id, customer="")]):
        with pytest.raises(ValidationError):
            record(org_acme, *events)
    assert not MeterEvent.objects.exists()


def test_batch_of_more_than_100_is_refused(org_acme):
    meter = new_meter(org_acme)
    with pytest.raises(ValidationError, match="maximum 100 events per batch"):
        record(org_acme, *[event(meter)] * 101)


def test_record_single_event(org_acme):
    meter = new_meter(org_acme)
    result = services.meter_event_record(organization=org_acme, event=event(meter, 5), now=NOW)
    assert result.status == "created"
    stored = MeterEvent.objects.get(public_id=result.id)
    assert (stored.value, stored.timestamp, stored.created_at) == (5, NOW, NOW)


@pytest.mark.parametrize("at, ok", [(NOW - timedelta(days=3650), True), (datetime(2001, 1, 1, tzinfo=UTC), True),
                                    (NOW + timedelta(minutes=5), True),
                                    (NOW + timedelta(minutes=5, seconds=1), False)])
def test_timestamp_window_bounds_without_an_organization_window(org_acme, at, ok):
    """Item 8: any age is accepted by default (backfills); more than 5 minutes ahead is refused."""
    assert org_acme.meter_event_backdate_days is None
    meter = new_meter(org_acme)
    if ok:
        assert record(org_acme, event(meter, at=at))[0].status == "created"
    else:
        with pytest.raises(ValidationError) as info:
            record(org_acme, event(meter), event(meter, at=at))
        assert (info.value.param, info.value.message) == ("events[1].timestamp",
                                                          "timestamp is more than 5 minutes in the future")
        assert not MeterEvent.objects.exists()


@pytest.mark.parametrize("at, ok", [(NOW - timedelta(days=7), True), (NOW - timedelta(days=7, seconds=1), False)])
def test_the_organizations_backdating_window(org_acme, org_globex, at, ok):
    org_acme.meter_event_backdate_days = 7
    org_acme.save(update_fields=["meter_event_backdate_days"])
    meter = new_meter(org_acme)
    if ok:
        assert record(org_acme, event(meter, at=at))[0].status == "created"
    else:
        with pytest.raises(ValidationError) as info:
            record(org_acme, event(meter), event(meter, at=at))
        assert info.value.param == "events[1].timestamp"
        assert info.value.message == ("timestamp is more than 7 days in the past "
                                      "(the organization's backdating window)")
        assert not MeterEvent.objects.exists()
    # Another organization keeps its own (default: no) window.
    assert record(org_globex, event(new_meter(org_globex), at=NOW - timedelta(days=400)))[0].status == "created"


def test_backfilled_events_count_in_their_own_period(org_acme):
    """Item 8: an event months old lands in the rollup of its own hour, so a summary of its month sees it
    and the current month does not."""
    meter = new_meter(org_acme)
    old = datetime(2030, 2, 10, 7, 42, tzinfo=UTC)
    record(org_acme, event(meter, 5, at=old), event(meter, 7, at=NOW - timedelta(hours=2)))
    rollups = {r.bucket: r.value_sum for r in MeterRollup.objects.filter(meter=meter)}
    assert rollups[datetime(2030, 2, 10, 7, tzinfo=UTC)] == 5
    feb = selectors.meter_usage(meter=meter, customer=ALICE, start=datetime(2030, 2, 1, tzinfo=UTC),
                                end=datetime(2030, 3, 1, tzinfo=UTC))
    june = selectors.meter_usage(meter=meter, customer=ALICE, start=datetime(2030, 6, 1, tzinfo=UTC),
                                 end=datetime(2030, 7, 1, tzinfo=UTC))
    assert (feb.value, feb.event_count, june.value, june.event_count) == (5, 1, 7, 1)


def test_value_out_of_int64_is_refused(org_acme):
    meter = new_meter(org_acme)
    with pytest.raises(ValidationError) as info:
        record(org_acme, event(meter, 2**63))
    assert info.value.param == "events[0].value"


def test_fingerprint_is_stable_and_payload_sensitive():
    args = {"meter_id": "mtr_1", "customer": ALICE, "value": 1, "timestamp": NOW, "dimensions_json": '{"a":"b"}'}
    fp = services.meter_event_fingerprint(**args)
    same_instant = NOW.astimezone(timezone.get_fixed_timezone(120))
    assert fp == services.meter_event_fingerprint(**{**args, "timestamp": same_instant})
    for change in ({"meter_id": "mtr_2"}, {"customer": BOB}, {"value": 2}, {"timestamp": None},
                   {"dimensions_json": "null"}):
        assert services.meter_event_fingerprint(**{**args, **change}) != fp


# --- idempotency ------------------------------------------------------------------------------------

def test_replay_duplicate_and_conflict(org_acme):
    meter = new_meter(org_acme)
    [created] = record(org_acme, event(meter, 3, key="k", dims={"model": "a"}))
    [dup] = record(org_acme, event(meter, 3, key="k", dims={"model": "a"}))
    [conflict] = record(org_acme, event(meter, 3, key="k", dims={"model": "b"}))
    assert (created.status, dup.status, conflict.status) == ("created", "duplicate", "conflict")
    assert created.id == dup.id == conflict.id
    assert MeterEvent.objects.count() == 1
    rollup = MeterRollup.objects.get()
    assert (rollup.event_count, rollup.value_sum) == (1, 3)


def test_dimension_key_order_does_not_change_the_fingerprint(org_acme):
    meter = new_meter(org_acme)
    record(org_acme, event(meter, key="k", dims={"a": "1", "b": "2"}))
    assert record(org_acme, event(meter, key="k", dims={"b": "2", "a": "1"}))[0].status == "duplicate"


# --- rollups ----------------------------------------------------------------------------------------

def test_rollups_merge_batches_and_keep_last_by_timestamp(org_acme):
    meter = new_meter(org_acme, "last")
    h = BASE + timedelta(hours=5)
    record(org_acme, event(meter, 7, at=h + timedelta(minutes=40)), event(meter, 3, at=h + timedelta(minutes=5)))
    record(org_acme, event(meter, 1, at=h + timedelta(minutes=20)))  # late: does not become "last"
    rollup = MeterRollup.objects.get()
    assert (rollup.bucket, rollup.event_count, rollup.value_sum, rollup.value_max) == (h, 3, 11, 7)
    assert (rollup.last_value, rollup.last_timestamp) == (7, h + timedelta(minutes=40))
    record(org_acme, event(meter, -2, at=h + timedelta(minutes=59, seconds=59)))
    rollup.refresh_from_db()
    assert (rollup.event_count, rollup.value_sum, rollup.value_max, rollup.last_value) == (4, 9, 7, -2)
    last = MeterEvent.objects.get(value=-2)
    assert rollup.last_event_id == last.pk


def test_rollup_buckets_are_utc_hours_per_customer(org_acme):
    meter = new_meter(org_acme)
    cet = timezone.get_fixed_timezone(60)
    record(org_acme, event(meter, 1, at=datetime(2030, 6, 10, 0, 30, tzinfo=cet)),
           event(meter, 1, customer=BOB, at=datetime(2030, 6, 10, 0, 30, tzinfo=cet)),
           event(meter, 1, at=datetime(2030, 6, 10, 1, 0, tzinfo=cet)))
    buckets = sorted((r.customer, r.bucket) for r in MeterRollup.objects.all())
    assert buckets == [(ALICE, datetime(2030, 6, 9, 23, tzinfo=UTC)), (ALICE, datetime(2030, 6, 10, 0, tzinfo=UTC)),
                       (BOB, datetime(2030, 6, 9, 23, tzinfo=UTC))]


def test_rollup_sum_beyond_int64(org_acme):
    meter = new_meter(org_acme)
    record(org_acme, event(meter, 2**63 - 1, at=BASE), event(meter, 2**63 - 1, at=BASE))
    assert int(MeterRollup.objects.get().value_sum) == 2 * (2**63 - 1)
    assert selectors.meter_usage(meter=meter, customer=None, start=None, end=None).value == 2 * (2**63 - 1)


def test_unique_values_only_for_the_unique_dimension(org_acme):
    meter = new_meter(org_acme, "unique_count")
    plain = new_meter(org_acme, "sum")
    record(org_acme, event(meter, dims={"model": "a", "region": "eu"}, at=BASE),
           event(meter, dims={"model": "a"}, at=BASE + timedelta(minutes=1)),
           event(meter, dims={"region": "us"}, at=BASE), event(plain, dims={"model": "z"}, at=BASE))
    assert list(MeterUniqueValue.objects.values_list("meter_id", "customer", "bucket", "value")) == [
        (meter.pk, ALICE, BASE, "a")]


# --- meter_usage ------------------------------------------------------------------------------------

def test_usage_reads_rollups_for_whole_hours_and_events_for_edges(org_acme):
    """Tampering with a rollup changes whole-hour results but not edge-only windows: proof of the split."""
    meter = new_meter(org_acme)
    record(org_acme, event(meter, 1, at=BASE + timedelta(minutes=10)), event(meter, 2, at=BASE + timedelta(hours=1)),
           event(meter, 4, at=BASE + timedelta(hours=2, minutes=10)))
    MeterRollup.objects.filter(bucket=BASE + timedelta(hours=1)).update(value_sum=1000, event_count=50)
    usage = selectors.meter_usage(meter=meter, customer=ALICE, start=BASE + timedelta(minutes=5),
                                  end=BASE + timedelta(hours=2, minutes=30))
    assert usage == MeterUsage(value=1 + 1000 + 4, event_count=52)
    within_hour = selectors.meter_usage(meter=meter, customer=ALICE, start=BASE + timedelta(hours=1),
                                        end=BASE + timedelta(hours=1, minutes=59))
    assert within_hour == MeterUsage(value=2, event_count=1)


def test_usage_empty_and_degenerate_windows(org_acme):
    meter = new_meter(org_acme)
    record(org_acme, event(meter, 5, at=BASE))
    assert selectors.meter_usage(meter=meter, customer=None, start=BASE, end=BASE) == MeterUsage(0, 0)
    assert selectors.meter_usage(meter=meter, customer=BOB, start=None, end=None) == MeterUsage(0, 0)
    assert selectors.meter_usage(meter=meter, customer=ALICE, start=BASE, end=None) == MeterUsage(5, 1)
    assert selectors.meter_usage(meter=meter, customer=ALICE, start=None, end=BASE) == MeterUsage(0, 0)


@pytest.mark.parametrize("window", [(None, None), (BASE, BASE + timedelta(hours=1)),
                                    (BASE - timedelta(minutes=5), BASE + timedelta(minutes=45)),
                                    (BASE + timedelta(minutes=20), None)])
def test_usage_last_ties_go_to_the_highest_event_id(org_acme, window):
    """Same timestamp: the later-recorded event wins, whether read from a rollup or from edge events."""
    meter = new_meter(org_acme, "last")
    at = BASE + timedelta(minutes=30)
    record(org_acme, event(meter, 1, at=at), event(meter, 3, at=at), event(meter, 2, at=at))
    record(org_acme, event(meter, 7, at=at), event(meter, 5, at=at - timedelta(minutes=1)))
    start, end = window
    assert selectors.meter_usage(meter=meter, customer=ALICE, start=start, end=end) == MeterUsage(7, 5)
    stored = list(MeterEvent.objects.filter(meter=meter))
    assert selectors.meter_usage_from_events(meter=meter, events=stored, start=start, end=end) == MeterUsage(7, 5)


def test_usage_from_events_is_pure():
    meter = Meter(pk=1, aggregation_type="last")
    events = [MeterEvent(pk=2, meter_id=1, customer=ALICE, value=5, timestamp=BASE),
              MeterEvent(pk=1, meter_id=1, customer=ALICE, value=9, timestamp=BASE),
              MeterEvent(pk=3, meter_id=2, customer=ALICE, value=7, timestamp=BASE + timedelta(hours=1))]
    assert selectors.meter_usage_from_events(meter=meter, events=events) == MeterUsage(value=5, event_count=2)


AGGREGATIONS = ["sum", "count", "last", "max", "unique_count"]
DATA_START = BASE - timedelta(days=24)
SPREAD_MINUTES = 34 * 24 * 60 - 7 * 60
# Most events and window bounds fall in the six hours after the spread ones, so "last" is often decided
# among ties there.
CLUSTER = DATA_START + timedelta(minutes=SPREAD_MINUTES)

event_at = st.one_of(
    st.sampled_from([CLUSTER + timedelta(minutes=m) for m in (0, 30, 150, 359)]),  # many exact ties
    st.integers(min_value=0, max_value=6 * 60).map(lambda m: CLUSTER + timedelta(minutes=m)),  # ties likely
    st.integers(min_value=0, max_value=6 * 3600).map(lambda s: CLUSTER + timedelta(seconds=s)),
    st.integers(min_value=0, max_value=SPREAD_MINUTES).map(lambda m: DATA_START + timedelta(minutes=m)),
)
window_bound = st.one_of(
    st.none(),
    st.integers(min_value=-30, max_value=6 * 60 + 30).map(lambda m: CLUSTER + timedelta(minutes=m)),
    st.integers(min_value=-1, max_value=7).map(lambda h: CLUSTER + timedelta(hours=h)),
    st.sampled_from([CLUSTER + timedelta(minutes=m) for m in (-5, 15, 45, 100, 155, 200, 365)]),
    st.integers(min_value=-60, max_value=SPREAD_MINUTES + 60).map(lambda m: DATA_START + timedelta(minutes=m)),
)
event_spec = st.tuples(
    st.sampled_from([ALICE, BOB, "hanzo/carol"]),
    st.integers(min_value=-1000, max_value=1000),
    event_at,
    st.sampled_from([None, "a", "b", "c", "d"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(batches=st.lists(st.lists(event_spec, min_size=1, max_size=20), min_size=1, max_size=6),
       windows=st.lists(st.tuples(window_bound, window_bound), min_size=1, max_size=6),
       customer=st.sampled_from([None, ALICE, BOB]))
def test_rollup_usage_equals_usage_from_events(org_acme, batches, windows, customer):
    meters = {agg: new_meter(org_acme, agg) for agg in AGGREGATIONS}
    now = DATA_START + timedelta(days=34, hours=12)
    for batch in batches:  # batches arrive in any order: late events included
        for meter in meters.values():
            record(org_acme, *[event(meter, value, customer=who, at=at,
                                     dims={"model": model} if model else None)
                               for who, value, at, model in batch], now=now)
    for meter in meters.values():
        stored = list(MeterEvent.objects.filter(meter=meter))
        for start, end in windows:
            if start is not None and end is not None and end < start:
                start, end = end, start
            expected = selectors.meter_usage_from_events(meter=meter, events=stored, customer=customer,
                                                         start=start, end=end)
            got = selectors.meter_usage(meter=meter, customer=customer, start=start, end=end)
            assert got == expected, (meter.aggregation_type, customer, start, end)
