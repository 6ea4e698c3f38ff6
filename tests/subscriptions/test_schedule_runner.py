"""The schedule runner (``subscriptions.services.schedule_runner``) with a recording applier: which phase is due,
ordering and catch-up, end behaviour, aborts on missing plans or prices, idempotent reruns, claims and a
concurrent run on real PostgreSQL. The real applier (``schedule_apply``) is wired where the subscription
services exist."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from billing_project.core.errors import Conflict
from subscriptions.models import SubscriptionSchedule
from subscriptions.services import schedule_apply, schedule_runner
from subscriptions.services import schedules as schedule_services
from tests.threads import run_threads
from webhooks.models import BillingEvent

START = datetime(2030, 3, 1, tzinfo=UTC)
CUSTOMER = "acme/runner-bob"


def ts(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def day(n: float) -> datetime:
    return START + timedelta(days=n)


class Recorder:
    """Records what the runner asks of the subscription services; plans/prices exist unless listed missing."""

    def __init__(self, *, missing: tuple[str, ...] = (), refuse_change: bool = False):
        self.calls: list[tuple] = []
        self.missing = set(missing)
        self.refuse_change = refuse_change
        self.lock = threading.Lock()

    def plan_exists(self, *, organization, plan_id):
        return plan_id not in self.missing

    def price_exists(self, *, organization, price_id):
        return price_id not in self.missing

    def subscription_start(self, *, organization, customer_id, phase, metadata, now):
        with self.lock:
            self.calls.append(("start", customer_id, phase.plan_id, now, metadata["subscriptionSchedule"]))
        return "sub_recorded"

    def subscription_phase_change(self, *, organization, subscription_id, phase, now):
        if self.refuse_change:
            raise Conflict("cannot change the plan of a canceled subscription")
        self.calls.append(("change", subscription_id, phase.plan_id, phase.proration_behavior, now))

    def subscription_end(self, *, organization, subscription_id, now):
        self.calls.append(("end", subscription_id, now))


def schedule(org, *bounds, end_behavior="", start=START, plans=None, **extra) -> SubscriptionSchedule:
    plans = plans or [f"plan_{i}" for i in range(len(bounds))]
    phases = []
    for plan, (a, b) in zip(plans, bounds, strict=True):
        phase = {"planId": plan, "startDate": ts(day(a))}
        if b is not None:
            phase["endDate"] = ts(day(b))
        phases.append(phase | extra)
    return schedule_services.schedule_create(organization=org, customer_id=CUSTOMER, start_date=start,
                                             end_behavior=end_behavior, phases=phases)


def run(s, recorder, at) -> int:
    return schedule_runner.schedule_run(schedule_pk=s.pk, applier=recorder, now=at)


def events(s) -> list[str]:
    return list(BillingEvent.objects.filter(object_id=s.public_id).order_by("pk").values_list("type", flat=True))


@pytest.mark.django_db
def test_nothing_runs_before_the_first_phase(org_acme):
    s = schedule(org_acme, (0, 30))
    recorder = Recorder()
    assert run(s, recorder, day(0) - timedelta(seconds=1)) == 0
    assert recorder.calls == []
    s.refresh_from_db()
    assert s.status == "not_started" and s.next_run_at == day(0)


@pytest.mark.django_db
def test_first_phase_starts_the_subscription_at_its_date(org_acme):
    s = schedule(org_acme, (0, 30), (30, 60))
    recorder = Recorder()
    assert run(s, recorder, day(0) + timedelta(hours=3)) == 1
    assert recorder.calls == [("start", CUSTOMER, "plan_0", day(0), s.public_id)]
    s.refresh_from_db()
    assert (s.status, s.current_phase, s.subscription_id, s.next_run_at) == ("active", 0, "sub_recorded", day(30))
    assert events(s) == ["subscription_schedule.created", "subscription_schedule.phase_started"]
    data = schedule_services.schedule_data(s)
    assert data["subscriptionId"] == "sub_recorded" and data["currentPhase"] == 0


@pytest.mark.django_db
def test_a_late_runner_catches_up_in_order_each_phase_at_its_own_date(org_acme):
    s = schedule(org_acme, (0, 30), (30, 60), (60, 90), prorationBehavior="none")
    recorder = Recorder()
    assert run(s, recorder, day(100)) == 4
    assert recorder.calls == [("start", CUSTOMER, "plan_0", day(0), s.public_id),
                              ("change", "sub_recorded", "plan_1", "none", day(30)),
                              ("change", "sub_recorded", "plan_2", "none", day(60))]
    s.refresh_from_db()
    assert s.status == "completed" and s.completed_at == day(90) and s.next_run_at is None
    assert events(s)[-1] == "subscription_schedule.completed"
    assert events(s).count("subscription_schedule.phase_started") == 3


@pytest.mark.django_db
def test_running_twice_applies_nothing_twice(org_acme):
    s = schedule(org_acme, (0, 30), (30, 60))
    recorder = Recorder()
    assert run(s, recorder, day(31)) == 2
    assert run(s, recorder, day(31)) == 0
    assert run(s, recorder, day(45)) == 0
    assert len(recorder.calls) == 2
    assert len(events(s)) == 3


@pytest.mark.django_db
def test_end_behavior_release_leaves_the_subscription_running(org_acme):
    s = schedule(org_acme, (0, 30))
    recorder = Recorder()
    run(s, recorder, day(30))
    assert [c[0] for c in recorder.calls] == ["start"]
    s.refresh_from_db()
    assert s.status == "completed"


@pytest.mark.django_db
def test_end_behavior_cancel_cancels_the_subscription_at_the_last_end(org_acme):
    s = schedule(org_acme, (0, 30), end_behavior="cancel")
    recorder = Recorder()
    run(s, recorder, day(40))
    assert recorder.calls[-1] == ("end", "sub_recorded", day(30))
    s.refresh_from_db()
    assert s.status == "completed"


@pytest.mark.django_db
def test_a_last_phase_without_end_runs_until_released(org_acme):
    s = schedule(org_acme, (0, None))
    recorder = Recorder()
    run(s, recorder, day(1000))
    s.refresh_from_db()
    assert s.status == "active" and s.next_run_at is None


@pytest.mark.django_db
def test_the_schedule_start_gates_a_phase_that_starts_earlier(org_acme):
    s = schedule(org_acme, (0, 30), start=day(5))
    recorder = Recorder()
    assert run(s, recorder, day(4)) == 0
    run(s, recorder, day(6))
    assert recorder.calls[0][3] == day(5)


@pytest.mark.django_db
def test_a_missing_plan_aborts_and_bills_nothing(org_acme):
    s = schedule(org_acme, (0, 30), (30, 60), plans=["plan_ok", "plan_gone"])
    recorder = Recorder(missing=("plan_gone",))
    run(s, recorder, day(35))
    assert [c[0] for c in recorder.calls] == ["start"]  # the second phase was never applied
    s.refresh_from_db()
    assert s.status == "released" and s.released_at == day(30) and s.next_run_at is None
    assert s.subscription_id == "sub_recorded" and "plan_gone not found" in s.abort_reason
    assert events(s)[-1] == "subscription_schedule.aborted"
    assert run(s, recorder, day(100)) == 0


@pytest.mark.django_db
def test_a_missing_first_plan_aborts_before_any_subscription(org_acme):
    s = schedule(org_acme, (0, 30), plans=["plan_gone"])
    recorder = Recorder(missing=("plan_gone",))
    run(s, recorder, day(1))
    assert recorder.calls == []
    s.refresh_from_db()
    assert s.status == "released" and s.subscription_id == ""
    event = BillingEvent.objects.get(object_id=s.public_id, type="subscription_schedule.aborted")
    assert "plan_gone" in event.data["reason"]


@pytest.mark.django_db
def test_a_missing_price_aborts(org_acme):
    s = schedule(org_acme, (0, 30), items=[{"priceId": "price_gone", "quantity": 1}])
    recorder = Recorder(missing=("price_gone",))
    run(s, recorder, day(1))
    assert recorder.calls == []
    s.refresh_from_db()
    assert s.status == "released" and "price price_gone not found" in s.abort_reason


@pytest.mark.django_db
def test_a_refusal_by_the_subscription_services_aborts(org_acme):
    s = schedule(org_acme, (0, 30), (30, 60))
    recorder = Recorder(refuse_change=True)
    run(s, recorder, day(31))
    s.refresh_from_db()
    assert s.status == "released" and s.current_phase == 0 and s.subscription_id == "sub_recorded"
    assert "canceled subscription" in s.abort_reason


@pytest.mark.django_db
def test_released_or_canceled_schedules_never_run(org_acme):
    recorder = Recorder()
    a = schedule(org_acme, (0, 30))
    b = schedule(org_acme, (0, 30))
    schedule_services.schedule_release(organization=org_acme, schedule_id=a.public_id)
    schedule_services.schedule_cancel(organization=org_acme, schedule_id=b.public_id)
    assert run(a, recorder, day(40)) + run(b, recorder, day(40)) == 0
    assert schedule_runner.schedules_claim(now=day(40)) == []


@pytest.mark.django_db
def test_patching_the_phases_moves_the_next_run(org_acme):
    s = schedule(org_acme, (0, 30), (30, 60))
    recorder = Recorder()
    run(s, recorder, day(1))
    schedule_services.schedule_update(organization=org_acme, schedule_id=s.public_id, phases=[
        {"planId": "plan_0", "startDate": ts(day(0)), "endDate": ts(day(40))},
        {"planId": "plan_x", "startDate": ts(day(40)), "endDate": ts(day(60))}])
    s.refresh_from_db()
    assert s.next_run_at == day(40)
    assert run(s, recorder, day(35)) == 0
    run(s, recorder, day(41))
    assert recorder.calls[-1][:3] == ("change", "sub_recorded", "plan_x")


@pytest.mark.django_db
def test_claims_hand_out_each_due_schedule_once(org_acme):
    due = [schedule(org_acme, (0, 30)) for _ in range(3)]
    schedule(org_acme, (10, 30))  # not due yet
    first = schedule_runner.schedules_claim(now=day(1))
    assert sorted(first) == sorted(s.pk for s in due)
    assert schedule_runner.schedules_claim(now=day(1)) == []
    lapsed = day(1) + timedelta(seconds=schedule_runner.CLAIM_SECONDS + 1)
    assert sorted(schedule_runner.schedules_claim(now=lapsed)) == sorted(s.pk for s in due)


@pytest.mark.django_db
def test_run_due_runs_every_due_schedule_of_an_organization(org_acme, org_globex):
    mine = schedule(org_acme, (0, 30))
    theirs = schedule_services.schedule_create(organization=org_globex, customer_id="g", start_date=START,
                                               phases=[{"planId": "p", "startDate": ts(day(0))}])
    recorder = Recorder()
    assert schedule_runner.schedules_run_due(applier=recorder, now=day(1), organization=org_acme) == 1
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.status == "active" and theirs.status == "not_started"


@pytest.mark.django_db(transaction=True)
def test_concurrent_runners_apply_each_phase_once(org_acme):
    s = schedule(org_acme, (0, 30), (30, 60))
    recorder = Recorder()
    steps = run_threads(4, lambda i: run(s, recorder, day(31)))
    assert sum(steps) == 2
    assert [c[0] for c in recorder.calls] == ["start", "change"]
    s.refresh_from_db()
    assert s.current_phase == 1
    assert events(s).count("subscription_schedule.phase_started") == 2


def test_trial_days_round_up_to_cover_the_trial_end():
    phase = schedule_services.Phase(index=0, plan_id="p", start=START, end=None, trial_end=day(14),
                                    proration_behavior="none")
    assert schedule_apply.trial_days(phase) == 14
    assert schedule_apply.trial_days(phase.__class__(**{**phase.__dict__, "trial_end": day(13.5)})) == 14
    assert schedule_apply.trial_days(phase.__class__(**{**phase.__dict__, "trial_end": None})) is None
    assert schedule_apply.trial_days(phase.__class__(**{**phase.__dict__, "trial_end": day(-1)})) is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_claim_disjoint_sets(org_acme):
    due = {schedule(org_acme, (0, 30)).pk for _ in range(20)}
    claims = run_threads(3, lambda i: schedule_runner.schedules_claim(now=day(1), limit=8))
    handed = [pk for claim in claims for pk in claim]
    assert len(handed) == len(set(handed)) and set(handed) <= due
    assert set(handed) | set(schedule_runner.schedules_claim(now=day(1))) == due


@pytest.mark.django_db
def test_real_applier_finds_prices_as_plans_or_live_pricing_rules(org_acme, api, monkeypatch):
    applier = schedule_apply.SubscriptionServicesApplier()
    monkeypatch.setattr(applier, "plan_exists", lambda *, organization, plan_id: plan_id == "plan_as_price")
    meter = api.post("/meters", {"name": "Calls", "eventName": "calls", "aggregationType": "sum"}).json()
    rule = api.post("/pricing-rules", {"meterId": meter["id"], "model": "per_unit", "unitPrice": 1}).json()
    assert applier.price_exists(organization=org_acme, price_id=rule["id"])
    assert applier.price_exists(organization=org_acme, price_id="plan_as_price")
    assert not applier.price_exists(organization=org_acme, price_id="price_nope")
    api.delete(f"/pricing-rules/{rule['id']}")
    assert not applier.price_exists(organization=org_acme, price_id=rule["id"])
