"""One claimed batch sent concurrently (a thread pool over the pooled client) and recorded in one transaction:
every outcome of the batch lands on its own delivery, attempt row and event."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.webhooks.receiver import Receiver
from webhooks import services as webhook_services
from webhooks.models import BillingEvent, Delivery, DeliveryAttempt
from webhooks.services import deliveries as svc
from webhooks.services import dispatch, transport
from webhooks.services import endpoints as endpoint_services

pytestmark = pytest.mark.django_db


def publish(org, type):
    return webhook_services.event_publish(organization=org, type=type, object_type="invoice", object_id="in_1",
                                          data={"amount": 100})


def closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/refused"


def test_mixed_outcomes_in_one_concurrent_batch_are_each_recorded(org_acme):
    with Receiver() as receiver:
        receiver.delay = 0.2  # long enough for the pool's requests to overlap
        receiver.routes = {"/boom": (500, {}), "/gone": (410, {}), "/moved": (302, {"Location": "/ok"})}
        urls = {name: receiver.url + "/" + name for name in ("ok", "boom", "gone", "moved")}
        eps = {name: endpoint_services.endpoint_create(organization=org_acme, url=url, events=["invoice.*"])
               for name, url in urls.items()}
        eps["refused"] = endpoint_services.endpoint_create(organization=org_acme, url=closed_port_url(),
                                                           events=["invoice.*"])
        eps["off"] = endpoint_services.endpoint_create(organization=org_acme, url=receiver.url + "/off",
                                                       events=["invoice.*"])
        eps["all"] = endpoint_services.endpoint_create(organization=org_acme, url=receiver.url + "/all")
        invoice = publish(org_acme, "invoice.paid")
        payout = publish(org_acme, "payout.paid")  # only "all" wants it
        handled, claim = svc.events_fanout()
        assert handled == 2 and len(claim.ids) == 8
        endpoint_services.endpoint_update(organization=org_acme, endpoint_id=eps["off"].public_id, status="disabled")
        counts = svc.deliveries_send(claim=claim)

    assert counts == {"succeeded": 3, "retry": 2, "failed": 2, "canceled": 1}
    assert receiver.max_in_flight > 1  # sent concurrently, not one after the other
    assert sorted(p for p, _, _ in receiver.requests) == ["/all", "/all", "/boom", "/gone", "/moved", "/ok"]

    def state(name, event):
        d = Delivery.objects.get(endpoint=eps[name], event=event)
        attempts = list(d.attempts.values_list("number", "outcome", "status_code"))
        return d.status, d.attempt_count, d.last_status_code, d.claim_token, attempts, d

    ok = state("ok", invoice)
    assert ok[:5] == ("succeeded", 1, 200, None, [(1, "succeeded", 200)]) and ok[5].delivered_at is not None
    boom = state("boom", invoice)
    assert boom[:5] == ("pending", 1, 500, None, [(1, "retry", 500)])
    assert boom[5].next_attempt_at - boom[5].created_at >= timedelta(seconds=22) and boom[5].claimed_until is None
    refused = state("refused", invoice)
    assert refused[:5] == ("pending", 1, None, None, [(1, "retry", None)])
    assert refused[5].last_error.startswith("webhook delivery failed: ConnectError")
    assert state("gone", invoice)[:5] == ("failed", 1, 410, None, [(1, "failed", 410)])
    moved = state("moved", invoice)
    assert moved[:5] == ("failed", 1, 302, None, [(1, "failed", 302)])
    assert moved[5].last_error == "webhook endpoint returned status 302 (redirects are not followed)"
    off = state("off", invoice)
    assert off[:5] == ("canceled", 0, None, None, []) and off[5].last_error == "webhook endpoint disabled or deleted"
    assert state("all", invoice)[:2] == state("all", payout)[:2] == ("succeeded", 1)
    assert DeliveryAttempt.objects.count() == 7
    assert BillingEvent.objects.get(pk=invoice.pk).pending is True  # boom, refused, gone and moved unfinished
    assert BillingEvent.objects.get(pk=payout.pk).pending is False


def test_batch_skips_deliveries_whose_claim_was_taken_over_before_sending(org_acme):
    with Receiver() as receiver:
        for i in range(3):
            endpoint_services.endpoint_create(organization=org_acme, url=f"{receiver.url}/{i}")
        publish(org_acme, "invoice.paid")
        _h, claim = svc.events_fanout()
        taken = Delivery.objects.get(endpoint__url=receiver.url + "/1")
        Delivery.objects.filter(pk=taken.pk).update(claim_token=None)  # the sweeper gave it to another worker
        assert svc.deliveries_send(claim=claim) == {"succeeded": 2}
    assert sorted(p for p, _, _ in receiver.requests) == ["/0", "/2"]
    taken.refresh_from_db()
    assert (taken.status, taken.attempt_count) == ("pending", 0) and not taken.attempts.exists()


def test_send_tasks_carry_chunks_of_the_claim(monkeypatch):
    sent = []
    from webhooks import tasks

    monkeypatch.setattr(tasks.deliveries_send, "delay", lambda ids, token: sent.append((ids, token)))
    claim = svc.Claim(list(range(1, dispatch.SEND_CHUNK * 2 + 2)), uuid.uuid4())
    dispatch.claim_enqueue(claim)
    assert [len(ids) for ids, _ in sent] == [dispatch.SEND_CHUNK, dispatch.SEND_CHUNK, 1]
    assert {token for _, token in sent} == {str(claim.token)}
    rounds = -(-dispatch.SEND_CHUNK // svc.SEND_THREADS)  # every request timing out: still inside the limits
    assert transport.TIMEOUT_SECONDS * rounds < min(tasks.deliveries_send.soft_time_limit, svc.CLAIM.total_seconds())
