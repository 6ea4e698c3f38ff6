"""Concurrency on real PostgreSQL: threads (each with its own connection) posting meter-event batches."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from billing_project.core.times import rfc3339
from invoicing.models import MeterEvent, MeterRollup, MeterUniqueValue, UnmatchedMeterEvent
from invoicing.selectors import metering as selectors
from tests.conftest import Api
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = "hanzo/alice"


def _run(threads: int, fn):
    return run_threads(threads, fn, together=False)


def _meter(api: Api, **extra) -> dict:
    r = api.post("/meters", {"name": "Tokens", "eventName": "tokens", **extra})
    assert r.status_code == 201, r.content
    return r.json()


def _at() -> str:
    return rfc3339((timezone.now() - timedelta(hours=3)).astimezone(UTC).replace(minute=7, second=0, microsecond=0))


def test_same_100_key_batch_from_8_threads_is_stored_once(acme_key):
    api = Api(acme_key)
    meter = _meter(api)
    at = _at()
    batch = [{"meterId": meter["id"], "userId": ALICE, "value": i, "timestamp": at, "idempotency": f"k{i}"}
             for i in range(100)]

    start = threading.Barrier(8)

    def worker(i: int) -> dict:
        events = list(batch)
        random.Random(i).shuffle(events)  # different key orders must not deadlock either
        client = Api(acme_key)
        client.get("/meters")  # connect and authenticate before the race
        start.wait()
        r = client.post("/meter-events", {"events": events})
        assert r.status_code == 201, r.content
        body = r.json()
        return {e["idempotency"]: out for e, out in zip(events, body["events"], strict=True)}

    responses = _run(8, worker)
    assert MeterEvent.objects.count() == 100
    rollup = MeterRollup.objects.get()
    assert (rollup.event_count, rollup.value_sum) == (100, sum(range(100)))
    ids = dict(MeterEvent.objects.values_list("idempotency_key", "public_id"))
    created = {key: 0 for key in ids}
    for by_key in responses:
        for key, out in by_key.items():
            assert out["status"] in ("created", "duplicate"), out
            assert out["id"] == ids[key]
            created[key] += out["status"] == "created"
    assert set(created.values()) == {1}  # each key reported created exactly once across all threads


def test_overlapping_key_sets_from_12_threads(acme_key):
    """Each thread sends a random 60 of 120 keys (same payload per key): the union is stored once."""
    api = Api(acme_key)
    meter = _meter(api)
    at = _at()

    def worker(i: int) -> list[tuple[str, dict]]:
        keys = random.Random(i).sample(range(120), 60)
        events = [{"meterId": meter["id"], "userId": ALICE, "value": k, "timestamp": at, "idempotency": f"k{k}"}
                  for k in keys]
        client = Api(acme_key)
        client.get("/meters")
        r = client.post("/meter-events", {"events": events})
        assert r.status_code == 201, r.content
        return [(e["idempotency"], out) for e, out in zip(events, r.json()["events"], strict=True)]

    results = [pair for batch in _run(12, worker) for pair in batch]
    sent = {key for key, _ in results}
    ids = dict(MeterEvent.objects.values_list("idempotency_key", "public_id"))
    assert set(ids) == sent
    assert sorted(key for key, out in results if out["status"] == "created") == sorted(sent)
    assert all(out["status"] in ("created", "duplicate") and out["id"] == ids[key] for key, out in results)
    rollup = MeterRollup.objects.get()
    assert (rollup.event_count, rollup.value_sum) == (len(sent), sum(int(k[1:]) for k in sent))


def test_disjoint_batches_on_one_rollup_row_add_up(acme_key):
    """16 threads × 5 batches of 20 key-less events into the same (meter, customer, hour) bucket."""
    api = Api(acme_key)
    meter = _meter(api, aggregationType="unique_count", uniqueDimension="model")
    at = _at()

    def worker(i: int) -> int:
        client = Api(acme_key)
        for n in range(5):
            events = [{"meterId": meter["id"], "userId": ALICE, "value": i + n, "timestamp": at,
                       "dimensions": {"model": f"m{(i + n + j) % 7}"}} for j in range(20)]
            r = client.post("/meter-events", {"events": events})
            assert r.status_code == 201, r.content
        return sum((i + n) * 20 for n in range(5))

    total = sum(_run(16, worker))
    assert MeterEvent.objects.count() == 16 * 5 * 20
    assert MeterRollup.objects.aggregate(n=Sum("event_count"), v=Sum("value_sum")) == {"n": 1600, "v": total}
    assert MeterUniqueValue.objects.count() == 7
    meter_obj = selectors.meter_get(organization=MeterEvent.objects.first().organization, meter_id=meter["id"])
    usage = selectors.meter_usage(meter=meter_obj, customer=None, start=None, end=None)
    assert (usage.value, usage.event_count) == (7, 1600)


@pytest.mark.parametrize("round_", range(4))
def test_a_meter_created_while_its_name_is_ingested_counts_every_event_once(org_acme, round_):
    """Unmatched events vs. meter creation: 6 threads send batches naming a meter by eventName (keyed,
    key-less, and keys shared by every thread) while a 7th creates that meter part-way through. Every
    event ends up counted exactly once, none is left unmatched, and the rollups equal the events."""
    name = f"doks-node-hours-{round_}"
    at = (timezone.now() - timedelta(hours=5)).astimezone(UTC).replace(minute=round_, second=0, microsecond=0)
    created: list = []

    def ingest(i: int) -> None:
        from billing_project.core.models import Organization
        from invoicing.services import metering as services
        from invoicing.services.metering import MeterEventInput

        org = Organization.objects.get(pk=org_acme.pk)
        rng = random.Random(i * 31 + round_)
        for n in range(12):
            events = [MeterEventInput(meter_id=name, customer=ALICE, value=1, timestamp=at + timedelta(minutes=n),
                                      idempotency_key=f"shared-{n}"),
                      MeterEventInput(meter_id=name, customer=ALICE, value=10, timestamp=at,
                                      idempotency_key=f"t{i}-{n}"),
                      MeterEventInput(meter_id=name, customer=ALICE, value=100, timestamp=at)]
            rng.shuffle(events)
            services.meter_events_record(organization=org, events=events)

    def create() -> None:
        from billing_project.core.models import Organization
        from invoicing.services import metering as services

        time.sleep(random.Random(round_).uniform(0.0, 0.05))
        org = Organization.objects.get(pk=org_acme.pk)
        created.append(services.meter_create(organization=org, name="Node hours", event_name=name))

    run_threads(7, lambda i: create() if i == 6 else ingest(i))

    (meter,) = created
    assert not UnmatchedMeterEvent.objects.filter(meter_ref=name).exists()
    events = MeterEvent.objects.filter(meter=meter)
    assert events.count() == 12 + 6 * 12 * 2  # shared keys once, per-thread keys, key-less events
    assert events.filter(idempotency_key__startswith="shared-").count() == 12
    expected = 12 * 1 + 6 * 12 * 10 + 6 * 12 * 100
    assert events.aggregate(v=Sum("value"))["v"] == expected
    assert MeterRollup.objects.filter(meter=meter).aggregate(n=Sum("event_count"), v=Sum("value_sum")) == {
        "n": 12 + 6 * 12 * 2, "v": expected}
    usage = selectors.meter_usage(meter=meter, customer=None, start=None, end=None)
    assert (usage.value, usage.event_count) == (expected, 12 + 6 * 12 * 2)
