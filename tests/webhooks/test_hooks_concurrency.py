"""Concurrency on real PostgreSQL: overlapping fan-outs and sweeps never hand one event or delivery to two
workers (``FOR UPDATE SKIP LOCKED`` + claim tokens)."""

from __future__ import annotations

import pytest

from tests.threads import run_threads
from webhooks import services as webhook_services
from webhooks.models import BillingEvent, Delivery
from webhooks.services import deliveries as svc
from webhooks.services import endpoints as endpoint_services

pytestmark = pytest.mark.django_db(transaction=True)


def test_parallel_fanouts_create_each_delivery_once(org_acme):
    for i in range(3):
        endpoint_services.endpoint_create(organization=org_acme, url=f"https://hooks.example.com/{i}")
    for i in range(120):
        webhook_services.event_publish(organization=org_acme, type="t.x", object_type="t", object_id=f"o{i}", data={})
    results = run_threads(4, lambda _i: [svc.events_fanout(limit=20) for _ in range(10)])
    handled = sum(h for per_thread in results for h, _c in per_thread)
    claimed = [d for per_thread in results for _h, c in per_thread for d in c.ids]
    assert handled == 120
    assert len(claimed) == len(set(claimed)) == 360 == Delivery.objects.count()
    assert not BillingEvent.objects.filter(dispatched_at__isnull=True).exists()


def test_parallel_sweeps_claim_disjoint_sets(org_acme):
    endpoint_services.endpoint_create(organization=org_acme, url="https://hooks.example.com/x")
    for i in range(100):
        webhook_services.event_publish(organization=org_acme, type="t.x", object_type="t", object_id=f"o{i}", data={})
    svc.events_fanout(limit=1000)
    Delivery.objects.update(claim_token=None, claimed_until=None)  # as if the fan-out's worker died long ago
    results = run_threads(4, lambda _i: svc.deliveries_claim_due(limit=30).ids)
    claimed = [i for ids in results for i in ids]
    assert len(claimed) == len(set(claimed)) and len(claimed) == min(100, 4 * 30)


def test_concurrent_successes_of_one_event_leave_it_not_pending(org_acme):
    from webhooks.services.transport import AttemptResult

    for i in range(2):
        endpoint_services.endpoint_create(organization=org_acme, url=f"https://hooks.example.com/{i}")
    for i in range(10):
        webhook_services.event_publish(organization=org_acme, type="t.x", object_type="t", object_id=f"o{i}", data={})
    _handled, claim = svc.events_fanout()
    ok = AttemptResult(outcome="succeeded", status_code=200)
    for event in BillingEvent.objects.all():
        first, second = Delivery.objects.filter(event=event).order_by("id").values_list("id", flat=True)
        run_threads(2, lambda i, pair=(first, second): svc.deliveries_record(results=[(pair[i], ok)],
                                                                             token=claim.token))
    assert not BillingEvent.objects.filter(pending=True).exists()
    assert Delivery.objects.filter(status="succeeded").count() == 20
