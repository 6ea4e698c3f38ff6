"""Schedules in the back office: read-only list with status/customer/due filters, phases readable on the page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from subscriptions.models import SubscriptionSchedule
from subscriptions.services import schedules as schedule_services
from tests.subscriptions.test_schedule_runner import ts

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:subscriptions_subscriptionschedule_changelist")


def listed(response) -> set[str]:
    assert response.status_code == 200, response.content[:500]
    return {s.public_id for s in response.context["cl"].result_list}


def test_changelist_filters_and_readable_phases(admin_client, org_acme):
    now = timezone.now()
    due = schedule_services.schedule_create(
        organization=org_acme, customer_id="acme/ann", start_date=now - timedelta(days=1),
        phases=[{"planId": "plan_{x}", "startDate": ts(now - timedelta(days=1)),
                 "items": [{"priceId": "price_<b>", "quantity": 3}]}])
    waiting = schedule_services.schedule_create(organization=org_acme, customer_id="acme/bob", start_date=now,
                                                phases=[{"planId": "p", "startDate": ts(now + timedelta(days=3))}])
    released = schedule_services.schedule_release(organization=org_acme, schedule_id=schedule_services.schedule_create(
        organization=org_acme, customer_id="acme/bob", start_date=None).public_id)
    everything = {due.public_id, waiting.public_id, released.public_id}
    assert listed(admin_client.get(CHANGELIST)) == everything
    assert listed(admin_client.get(CHANGELIST, {"due": "due"})) == {due.public_id}
    assert listed(admin_client.get(CHANGELIST, {"due": "waiting"})) == {waiting.public_id}
    assert listed(admin_client.get(CHANGELIST, {"status__exact": "released"})) == {released.public_id}
    assert listed(admin_client.get(CHANGELIST, {"customer": "acme/bob"})) == {waiting.public_id, released.public_id}
    page = admin_client.get(reverse("admin:subscriptions_subscriptionschedule_change", args=[due.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "plan_{x}" in html and "price_&lt;b&gt;" in html  # escaped, braces kept
    assert admin_client.get(reverse("admin:subscriptions_subscriptionschedule_add")).status_code == 403
    assert SubscriptionSchedule.objects.count() == 3
