"""Delivery to a real local HTTP receiver (a thread ``http.server`` on 127.0.0.1): fan-out, signature,
retries, give-up (time-travelled through ``now=``), redirects, duplicates, a worker killed mid-delivery."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.webhooks.receiver import Receiver
from webhooks import services as webhook_services
from webhooks.models import BillingEvent, Delivery
from webhooks.services import deliveries as svc
from webhooks.services import endpoints as endpoint_services
from webhooks.services import redelivery
from webhooks.signing import verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def publish(org, type="invoice.paid", **data):
    return webhook_services.event_publish(organization=org, type=type, object_type="invoice", object_id="in_1",
                                          customer_id="cus_1", data={"amount": 100, **data})


def fanout_and_send(now=None):
    handled, claim = svc.events_fanout(now=now)
    return handled, claim, svc.deliveries_send(claim=claim, now=now)


def test_delivery_posts_the_signed_event(org_acme, receiver):
    ep = endpoint_services.endpoint_create(organization=org_acme, url=receiver.url + "/hook", events=["invoice.*"])
    event = publish(org_acme)
    handled, claim, counts = fanout_and_send()
    assert handled == 1 and len(claim.ids) == 1 and counts == {"succeeded": 1}
    (path, headers, body), = receiver.requests
    assert path == "/hook"
    assert headers["Content-Type"] == "application/json"
    assert headers["Commerce-Event-Type"] == "invoice.paid"
    assert verify(body, headers["Commerce-Signature"], ep.secret)
    payload = json.loads(body)
    assert payload["id"] == event.public_id and payload["type"] == "invoice.paid"
    assert payload["data"] == {"amount": 100} and payload["objectId"] == "in_1" and payload["created"]
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == ("succeeded", 1, 200)
    attempt = delivery.attempts.get()
    assert (attempt.number, attempt.outcome, attempt.status_code) == (1, "succeeded", 200)
    assert attempt.response_body == '{"ok": true}'
    event.refresh_from_db()
    assert event.pending is False and event.dispatched_at is not None


def test_fanout_respects_filters_status_and_organization(org_acme, org_globex, receiver):
    endpoint_services.endpoint_create(organization=org_acme, url=receiver.url + "/all")
    endpoint_services.endpoint_create(organization=org_acme, url=receiver.url + "/star", events=["*"])
    endpoint_services.endpoint_create(organization=org_acme, url=receiver.url + "/other", events=["payout.*"])
    off = endpoint_services.endpoint_create(organization=org_acme, url=receiver.url + "/off")
    endpoint_services.endpoint_update(organization=org_acme, endpoint_id=off.public_id, status="disabled")
    endpoint_services.endpoint_create(organization=org_globex, url=receiver.url + "/globex")
    publish(org_acme)
    lonely = publish(org_globex, type="x.y")
    fanout_and_send()
    assert sorted(p for p, _, _ in receiver.requests) == ["/all", "/globex", "/star"]
    lonely.refresh_from_db()
    assert lonely.pending is False


def test_event_without_matching_endpoint_is_not_pending(org_acme):
    event = publish(org_acme)
    assert svc.events_fanout()[0] == 1
    event.refresh_from_db()
    assert event.pending is False and not Delivery.objects.exists()
    assert svc.events_fanout()[0] == 0  # dispatched once


def test_retry_after_500_then_success(org_acme, receiver):
    receiver.script = [(500, {}), (200, {})]
    endpoint_services.endpoint_create(organization=org_acme, url=receiver.url)
    event = publish(org_acme)
    now = timezone.now()
    assert fanout_and_send(now=now)[2] == {"retry": 1}
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.claim_token is None
    assert timedelta(seconds=20) <= delivery.next_attempt_at - now <= timedelta(seconds=40)
    event.refresh_from_db()
    assert event.pending is True
    assert svc.deliveries_claim_due(now=now).ids == []  # not due yet
    later = delivery.next_attempt_at + timedelta(seconds=1)
    claim = svc.deliveries_claim_due(now=later)
    assert claim.ids == [delivery.pk]
    assert svc.deliveries_send(claim=claim, now=later) == {"succeeded": 1}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == ("succeeded", 2)
    assert [(a.number, a.outcome, a.status_code) for a in delivery.attempts.order_by("number")] == [
        (1, "retry", 500), (2, "succeeded", 200)]
    event.refresh_from_db()
    assert event.pending is False
    bodies = {json.loads(b)["id"] for _, _, b in receiver.requests}
    assert bodies == {event.public_id}  # both requests carry the one event id


def test_429_is_retried_and_gives_up_after_three_days(org_acme, receiver):
    receiver.script = [(429, {})]
    endpoint_services.endpoint_create(organization=org_acme, url=receiver.url)
    event = publish(org_acme)
    now = timezone.now()
    fanout_and_send(now=now)
    delivery = Delivery.objects.get()
    attempts = 1
    while True:
        delivery.refresh_from_db()
        if delivery.status != "pending":
            break
        now = delivery.next_attempt_at
        claim = svc.deliveries_claim_due(now=now)
        assert claim.ids == [delivery.pk]
        svc.deliveries_send(claim=claim, now=now)
        attempts += 1
        assert attempts < 40
    assert delivery.status == "failed" and "gave up" in delivery.last_error
    assert delivery.attempt_count == attempts == len(receiver.requests)
    assert now == delivery.created_at + svc.RETRY_WINDOW  # the last attempt at the end of the window
    assert 12 <= attempts <= 30
    times = [a.created_at for a in delivery.attempts.order_by("number")]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(later > earlier for earlier, later in zip(gaps[:6], gaps[1:7], strict=False))  # exponential
    assert max(gaps) <= timedelta(hours=6 * 1.25)
    event.refresh_from_db()
    assert event.pending is True  # never delivered


def test_redirect_is_not_followed_and_not_success(org_acme, receiver):
    receiver.script = [(302, {"Location": receiver.url + "/elsewhere"})]
    endpoint_services.endpoint_create(organization=org_acme, url=receiver.url + "/start")
    publish(org_acme)
    assert fanout_and_send()[2] == {"failed": 1}
    assert [p for p, _, _ in receiver.requests] == ["/start"]
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.last_status_code == 302
    assert "redirects are not followed" in delivery.last_error


def test_4xx_fails_without_retry(org_acme, receiver):
    receiver.script = [(404, {})]
    endpoint_services.endpoint_create(organization=org_acme, url=receiver.url)
    publish(org_acme)
    assert fanout_and_send()[2] == {"failed": 1}
    assert Delivery.objects.get().last_error == "webhook endpoint returned status 404"


def test_timeout_and_connection_refused_are_retried(org_acme, receiver, monkeypatch):
    from webhooks.services import transport

    monkeypatch.setattr(transport, "TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(transport, "_client", None)
    receiver.delay = 0.5
    endpoint_services.endpoint_create(organization=org_acme, url=receiver.url)
    endpoint_services.endpoint_create(organization=org_acme, url="http://127.0.0.1:9/closed")
    publish(org_acme)
    assert fanout_and_send()[2] == {"retry": 2}
    errors = sorted(d.last_error for d in Delivery.objects.all())
    assert any("timed out" in e for e in errors) and all(e.startswith("webhook delivery failed") for e in errors)
    monkeypatch.setattr(transport, "_client", None)


def test_private_targets_are_refused_unless_allowed_or_test_mode(org_acme, receiver, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    endpoint_services.endpoint_create(organization=org_acme, url=receiver.url)
    publish(org_acme)
    assert fanout_and_send()[2] == {"failed": 1}
    delivery = Delivery.objects.get()
    assert "private, loopback or link-local" in delivery.last_error and receiver.requests == []
    assert delivery.attempts.get().status_code is None
    org_acme.live = False
    org_acme.save()
    publish(org_acme)
    assert fanout_and_send()[2] == {"succeeded": 1}


@pytest.mark.parametrize("url", ["http://10.1.2.3/", "http://169.254.169.254/latest", "http://[::1]:8/",
                                 "http://localhost:1/", "http://0.0.0.0/"])
def test_target_refusal(url):
    from webhooks.services import transport

    assert transport.target_refusal(url)


def test_duplicates_carry_one_event_id_and_resend(org_acme, receiver):
    endpoint_services.endpoint_create(organization=org_acme, url=receiver.url)
    event = publish(org_acme)
    fanout_and_send()
    _event, created = redelivery.event_resend(organization=org_acme, event_id=event.public_id)
    assert [d.reason for d in created] == ["resend"]
    svc.deliveries_send(claim=svc.Claim([d.pk for d in created], created[0].claim_token))
    ids = [json.loads(b)["id"] for _, _, b in receiver.requests]
    assert ids == [event.public_id, event.public_id]
    sigs = [h["Commerce-Delivery-Id"] for _, h, _ in receiver.requests]
    assert len(set(sigs)) == 2  # two deliveries, one event


def test_worker_killed_mid_delivery_loses_nothing(org_acme, receiver):
    endpoint_services.endpoint_create(organization=org_acme, url=receiver.url)
    event = publish(org_acme)
    now = timezone.now()
    _handled, lost_claim = svc.events_fanout(now=now)  # the worker dies here: claimed, never sent
    assert svc.deliveries_claim_due(now=now + timedelta(minutes=1)).ids == []  # its claim is still live
    later = now + svc.CLAIM + timedelta(seconds=1)
    claim = svc.deliveries_claim_due(now=later)
    assert claim.ids == lost_claim.ids
    assert svc.deliveries_send(claim=claim, now=later) == {"succeeded": 1}
    # the dead worker's task redelivered by the broker (acks_late) finds its claim taken over
    assert svc.deliveries_send(claim=lost_claim, now=later) == {}
    assert [json.loads(b)["id"] for _, _, b in receiver.requests] == [event.public_id]


def test_claim_taken_over_while_sending_records_stale(org_acme, receiver):
    endpoint_services.endpoint_create(organization=org_acme, url=receiver.url)
    publish(org_acme)
    _h, claim = svc.events_fanout()
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(claim_token=None)  # another worker took it over
    from webhooks.services.transport import AttemptResult

    assert svc.deliveries_record(results=[(delivery.pk, AttemptResult(outcome="succeeded", status_code=200))],
                                 token=claim.token) == {"stale": 1}
    assert not delivery.attempts.exists()


def test_disabled_endpoint_cancels_pending_deliveries(org_acme, receiver):
    ep = endpoint_services.endpoint_create(organization=org_acme, url=receiver.url)
    event = publish(org_acme)
    _h, claim = svc.events_fanout()
    endpoint_services.endpoint_update(organization=org_acme, endpoint_id=ep.public_id, status="disabled")
    assert svc.deliveries_send(claim=claim) == {"canceled": 1}
    assert receiver.requests == []
    event.refresh_from_db()
    assert event.pending is False


def test_roll_secret_sends_both_signatures_for_a_day(org_acme, receiver):
    ep = endpoint_services.endpoint_create(organization=org_acme, url=receiver.url)
    old = ep.secret
    ep = endpoint_services.endpoint_roll_secret(organization=org_acme, endpoint_id=ep.public_id)
    publish(org_acme)
    fanout_and_send()
    _p, headers, body = receiver.requests[0]
    assert headers["Commerce-Signature"].count("v1=") == 2
    assert verify(body, headers["Commerce-Signature"], old) and verify(body, headers["Commerce-Signature"], ep.secret)
    assert endpoint_services.endpoint_signing_secrets(ep, now=timezone.now() + timedelta(hours=25)) == [ep.secret]


def test_event_prepare_inside_ledger_posting_is_dispatched(api, org_acme, receiver):
    endpoint_services.endpoint_create(organization=org_acme, url=receiver.url, events=["balance_transaction.*"])
    dep = api.post("/deposit", {"user": "hanzo/alice", "amount": 1000}).json()
    fanout_and_send()
    (_p, _h, body), = receiver.requests
    assert json.loads(body)["objectId"] == dep["transactionId"]
    assert BillingEvent.objects.get().pending is False
