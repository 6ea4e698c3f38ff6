"""The beat sweeper for schedules claims due ones and runs one task each; a second sweep finds nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing_project.celery import app as celery_app
from subscriptions import tasks
from subscriptions.models import SubscriptionSchedule
from subscriptions.services import schedule_apply
from subscriptions.services import schedules as schedule_services
from tests.subscriptions.test_schedule_runner import Recorder, ts

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_beat_runs_the_schedule_sweeper_every_minute():
    entry = celery_app.conf.beat_schedule["subscriptions-run-schedules"]
    assert entry == {"task": "subscriptions.tasks.schedules_run_sweep", "schedule": 60.0}


def test_sweep_runs_due_schedules_once(org_acme, eager, monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(schedule_apply, "SubscriptionServicesApplier", lambda: recorder)
    past = timezone.now() - timedelta(hours=1)
    due = schedule_services.schedule_create(organization=org_acme, customer_id="c", start_date=past,
                                            phases=[{"planId": "p", "startDate": ts(past)}])
    later = schedule_services.schedule_create(organization=org_acme, customer_id="c", start_date=past,
                                              phases=[{"planId": "p", "startDate": ts(past + timedelta(days=2))}])
    assert tasks.schedules_run_sweep() == 1
    assert tasks.schedules_run_sweep() == 0
    assert [call[0] for call in recorder.calls] == ["start"]
    assert SubscriptionSchedule.objects.get(pk=due.pk).status == "active"
    assert SubscriptionSchedule.objects.get(pk=later.pk).status == "not_started"
    assert tasks.schedule_run(due.pk) == 0  # a redelivered task does nothing
