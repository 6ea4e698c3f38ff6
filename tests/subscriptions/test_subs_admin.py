"""Back office: subscription pages render, the renewal-due filter narrows, and the state actions ask why,
call the service and write the audit record."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from billing_project.core.models import AuditLog
from subscriptions.models import Plan, Renewal, Subscription, SubscriptionItem, TestClock
from subscriptions.services import clocks as clock_services
from subscriptions.services import items as item_services
from subscriptions.services import plans as plan_services
from subscriptions.services import subscriptions as sub_services

pytestmark = pytest.mark.django_db

SUBS = reverse("admin:subscriptions_subscription_changelist")


def _run(client, action, objects, reason):
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(o.pk) for o in objects]}
    client.post(SUBS, data)
    return client.post(SUBS, {**data, "apply": "1", "reason": reason}, follow=True)


def test_pages_filters_and_audited_actions(admin_client, org_acme):
    plan = plan_services.plan_create(organization=org_acme, name="Pro", price=3000)
    old = sub_services.subscription_create(organization=org_acme, customer_id="old", plan_id=plan.public_id,
                                           now=datetime(2020, 1, 1, tzinfo=UTC))
    new = sub_services.subscription_create(organization=org_acme, customer_id="new", plan_id=plan.public_id)
    item_services.item_create(organization=org_acme, subscription_id=new.public_id, plan_id=plan.public_id)
    clock_services.test_clock_create(organization=org_acme, name="c")
    for model in (Plan, Subscription, SubscriptionItem, Renewal, TestClock):
        page = admin_client.get(reverse(f"admin:subscriptions_{model._meta.model_name}_changelist"))
        assert page.status_code == 200
    due = admin_client.get(SUBS, {"renewal_due": "due"}).content.decode()
    assert old.public_id in due and new.public_id not in due
    assert admin_client.get(reverse("admin:subscriptions_subscription_change", args=[new.pk])).status_code == 200
    _run(admin_client, "cancel_at_period_end", [new], "customer asked")
    new.refresh_from_db()
    assert new.cancel_at_period_end
    _run(admin_client, "reactivate", [new], "changed their mind")
    new.refresh_from_db()
    assert not new.cancel_at_period_end
    _run(admin_client, "cancel_now", [new], "fraud")
    new.refresh_from_db()
    assert new.status == "canceled"
    actions = list(AuditLog.objects.filter(object_id=new.public_id).values_list("action", "reason"))
    assert ("subscription.cancel", "fraud") in actions and ("subscription.reactivate", "changed their mind") in actions
    _run(admin_client, "renew_now", [old], "catch up")
    assert Renewal.objects.filter(subscription=old).count() == 1
    assert AuditLog.objects.filter(object_id=old.public_id, action="subscription.renew").exists()
