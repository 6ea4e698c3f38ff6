"""Renewals, prorations, cancels, trials, dunning and items through the services, on real PostgreSQL, with
an explicit clock (dates after today, so the meter events recorded now are already settled)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from invoicing.models import Invoice
from invoicing.services import invoices as invoice_services
from invoicing.services import metering as metering_services
from invoicing.services import pricing as pricing_services
from ledger import selectors as ledger_selectors
from ledger.services import credits as credit_services
from subscriptions.models import Renewal, SubscriptionSettings
from subscriptions.services import items as item_services
from subscriptions.services import plans as plan_services
from subscriptions.services import renewals, runner
from subscriptions.services import subscriptions as sub_services
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

T0 = datetime(2027, 1, 31, 10, 0, tzinfo=UTC)


@pytest.fixture
def plan(org_acme):
    return plan_services.plan_create(organization=org_acme, name="Pro", price=3000)


@pytest.fixture
def big(org_acme):
    return plan_services.plan_create(organization=org_acme, name="Max", price=6000)


def _fund(org, user, amount=1_000_000):
    credit_services.credit_grant_create(organization=org, user=user, amount_cents=amount)


def _invoices(sub):
    return list(Invoice.objects.filter(subscription_id=sub.public_id).order_by("id"))


def _sub(org, plan, user="alice", now=T0, **kw):
    return sub_services.subscription_create(organization=org, customer_id=user, plan_id=plan.public_id, now=now,
                                            **kw)


def test_periods_keep_the_anchor_day(org_acme, plan):
    _fund(org_acme, "alice")
    sub = _sub(org_acme, plan)
    ends = []
    for _ in range(4):
        sub.refresh_from_db()
        runner.run_due(now=sub.current_period_end)
        sub.refresh_from_db()
        ends.append(sub.current_period_start.date().isoformat())
    assert ends == ["2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31"]
    assert [i.total for i in _invoices(sub)] == [3000] * 4
    assert all(i.status == "paid" for i in _invoices(sub))
    assert ledger_selectors.ledger_audit().ok


def test_sweeping_twice_bills_once(org_acme, plan):
    _fund(org_acme, "alice")
    sub = _sub(org_acme, plan)
    end = sub.current_period_end
    runner.run_due(now=end)
    runner.run_due(now=end)
    renewals.subscription_due_process(subscription_pk=sub.pk, now=end)
    assert len(_invoices(sub)) == 1
    assert BillingEvent.objects.filter(type="subscription.renewed", object_id=sub.public_id).count() == 1


def test_trial_will_end_trial_end_then_first_invoice(org_acme):
    trial = plan_services.plan_create(organization=org_acme, name="Trial", price=2000, trial_period_days=14)
    _fund(org_acme, "tina")
    sub = _sub(org_acme, trial, user="tina")
    assert sub.trial_end == T0 + timedelta(days=14) and sub.current_period_start == sub.trial_end
    runner.run_due(now=T0 + timedelta(days=12))
    sub.refresh_from_db()
    assert sub.status == "trialing" and sub.trial_will_end_sent
    assert BillingEvent.objects.filter(type="subscription.trial_will_end", object_id=sub.public_id).count() == 1
    runner.run_due(now=sub.trial_end)
    sub.refresh_from_db()
    assert sub.status == "active" and _invoices(sub) == []
    runner.run_due(now=sub.current_period_end)
    assert [i.total for i in _invoices(sub)] == [2000]


def test_immediate_cancel_bills_the_used_part_only(org_acme, plan):
    _fund(org_acme, "alice")
    sub = _sub(org_acme, plan)  # 31 Jan → 28 Feb: 28 days
    sub = sub_services.subscription_cancel(organization=org_acme, subscription_id=sub.public_id,
                                           at_period_end=False, now=T0 + timedelta(days=7))
    assert sub.status == "canceled" and sub.ended_at == T0 + timedelta(days=7)
    (invoice,) = _invoices(sub)
    assert invoice.total == 750 and invoice.status == "paid"  # 3000 × 7/28
    runner.run_due(now=T0 + timedelta(days=60))
    assert len(_invoices(sub)) == 1


def test_cancel_at_period_end_is_ended_by_the_sweeper_even_unpaid(org_acme, plan):
    sub = _sub(org_acme, plan, user="nofunds")
    sub_services.subscription_cancel(organization=org_acme, subscription_id=sub.public_id, at_period_end=True,
                                     now=T0 + timedelta(days=3))
    end = sub.current_period_end
    runner.run_due(now=end)
    sub.refresh_from_db()
    assert sub.status == "canceled" and sub.ended_at == end
    (invoice,) = _invoices(sub)
    assert invoice.total == 3000 and invoice.status == "open"
    assert Renewal.objects.get(invoice_id=invoice.public_id).status == "past_due"  # dunning on its own


def test_reactivate_undoes_a_pending_cancel(org_acme, plan):
    _fund(org_acme, "alice")
    sub = _sub(org_acme, plan)
    sub_services.subscription_cancel(organization=org_acme, subscription_id=sub.public_id, at_period_end=True,
                                     now=T0)
    sub_services.subscription_reactivate(organization=org_acme, subscription_id=sub.public_id)
    runner.run_due(now=sub.current_period_end)
    sub.refresh_from_db()
    assert sub.status == "active" and sub.current_period_start == datetime(2027, 2, 28, 10, tzinfo=UTC)


@pytest.mark.parametrize("behavior,now_total,renewal_total", [
    ("create_prorations", None, 1500 + 3000),
    ("always_invoice", 1500, 3000),
    ("none", None, 6000),
])
def test_plan_change_proration(org_acme, plan, big, behavior, now_total, renewal_total):
    _fund(org_acme, "alice")
    start = datetime(2027, 2, 1, tzinfo=UTC)
    sub = _sub(org_acme, plan, now=start)  # February 2027: 28 days
    sub = sub_services.subscription_change_plan(organization=org_acme, subscription_id=sub.public_id,
                                                plan_id=big.public_id, proration_behavior=behavior,
                                                now=start + timedelta(days=14))
    assert sub.plan_id == big.pk
    assert [i.total for i in _invoices(sub)] == ([now_total] if now_total else [])
    runner.run_due(now=sub.current_period_end)
    assert _invoices(sub)[-1].total == renewal_total
    assert ledger_selectors.ledger_audit().ok


def test_quantity_change_prorates_by_the_second(org_acme, plan):
    _fund(org_acme, "alice")
    start = datetime(2027, 2, 1, tzinfo=UTC)
    sub = _sub(org_acme, plan, now=start)
    sub_services.subscription_change_plan(organization=org_acme, subscription_id=sub.public_id,
                                          plan_id=plan.public_id, quantity=3, now=start + timedelta(days=7))
    sub.refresh_from_db()
    runner.run_due(now=sub.current_period_end)
    (invoice,) = _invoices(sub)
    assert invoice.total == 750 + 3 * 2250  # 7 days × 1 + 21 days × 3 of 28


def _fail_then(org, user, plan, settings_final=None):
    if settings_final:
        SubscriptionSettings.objects.create(organization=org, dunning_retry_days=[1, 3, 7],
                                            dunning_final_action=settings_final)
    sub = _sub(org, plan, user=user)
    end = sub.current_period_end
    runner.run_due(now=end)
    sub.refresh_from_db()
    return sub, end


@pytest.mark.parametrize("final,status", [(None, "unpaid"), ("cancel", "canceled")])
def test_dunning_retries_then_unpaid_or_canceled(org_acme, plan, final, status):
    sub, end = _fail_then(org_acme, "dan", plan, final)
    assert sub.status == "past_due" and sub.current_period_end == end  # period not advanced
    renewal = Renewal.objects.get(subscription=sub)
    assert renewal.next_retry_at == end + timedelta(days=1)
    for day in (1, 4, 11):
        runner.run_due(now=end + timedelta(days=day))
        renewal.refresh_from_db()
    (invoice,) = _invoices(sub)
    assert invoice.attempt_count == 4 and invoice.status == "uncollectible"
    sub.refresh_from_db()
    assert sub.status == status and renewal.status == "uncollectible"
    assert ledger_selectors.ledger_audit().ok


def test_payment_during_dunning_returns_to_active(org_acme, plan):
    sub, end = _fail_then(org_acme, "erin", plan)
    (invoice,) = _invoices(sub)
    _fund(org_acme, "erin", 3000)
    invoice_services.invoice_pay(organization=org_acme, invoice_id=invoice.public_id)
    runner.run_due(now=end + timedelta(hours=1))
    sub.refresh_from_db()
    assert sub.status == "active" and sub.current_period_start == end
    assert len(_invoices(sub)) == 1


def test_items_licensed_metered_and_skipped(org_acme, plan):
    _fund(org_acme, "ida")
    seat = plan_services.plan_create(organization=org_acme, name="Seat", price=500)
    meter = metering_services.meter_create(organization=org_acme, name="API calls", event_name="api.call")
    pricing_services.pricing_rule_create(organization=org_acme, meter_id=meter.public_id, unit_price=2)
    metering_services.meter_create(organization=org_acme, name="Other", event_name="other")
    sub = _sub(org_acme, plan, user="ida", items=[{"planId": seat.public_id, "quantity": 4}])
    item_services.item_create(organization=org_acme, subscription_id=sub.public_id, meter_id=meter.public_id,
                              billing_mode="metered")
    item_services.item_create(organization=org_acme, subscription_id=sub.public_id, plan_id="plan_missing",
                              quantity=1)

    def record(customer, value, meter_ref="api.call"):
        metering_services.meter_events_record(organization=org_acme, events=[
            metering_services.MeterEventInput(meter_id=meter_ref, customer=customer, value=value)])

    record("ida", 10)
    record("ida", 5)
    record("someone-else", 1000)
    record("ida", 7, "other")  # a meter without an item: not billed
    runner.run_due(now=sub.current_period_end)
    (invoice,) = _invoices(sub)
    amounts = sorted(line.amount for line in invoice.line_items.all())
    assert amounts == [30, 2000, 3000]  # usage 15 × 2, seats 4 × 500, plan
    assert invoice.metadata["skippedItems"][0]["reason"].startswith("unresolved reference")
    record("ida", 1)  # arrives later: billed on the next invoice, never twice
    sub.refresh_from_db()
    runner.run_due(now=sub.current_period_end)
    second = _invoices(sub)[-1]
    assert sorted(line.amount for line in second.line_items.all()) == [2, 2000, 3000]


def test_upcoming_lines_are_read_only(org_acme, plan, big):
    from subscriptions import selectors  # noqa: PLC0415

    start = datetime(2027, 2, 1, tzinfo=UTC)
    sub = _sub(org_acme, plan, now=start)
    sub_services.subscription_change_plan(organization=org_acme, subscription_id=sub.public_id,
                                          plan_id=big.public_id, now=start + timedelta(days=14))
    sub.refresh_from_db()
    before = (sub.segment_start, sub.billed_amount, sub.accrued_exact)
    lines = selectors.upcoming_lines(organization=org_acme, customer_id="alice", subscription_id=sub.public_id,
                                     now=start + timedelta(days=20))
    assert sorted(line["amount"] for line in lines) == [1500, 3000]
    assert {line["type"] for line in lines} == {"subscription", "proration"}
    sub.refresh_from_db()
    assert (sub.segment_start, sub.billed_amount, sub.accrued_exact) == before and _invoices(sub) == []
    assert selectors.upcoming_lines(organization=org_acme, customer_id="bob", subscription_id=sub.public_id) is None


def test_voiding_a_past_due_invoice_forgives_the_period(org_acme, plan):
    sub, end = _fail_then(org_acme, "fred", plan)
    (invoice,) = _invoices(sub)
    invoice_services.invoice_void(organization=org_acme, invoice_id=invoice.public_id, reason="goodwill")
    runner.run_due(now=end + timedelta(days=1))
    sub.refresh_from_db()
    assert sub.status == "active" and sub.current_period_start == end
    assert Renewal.objects.get(subscription=sub).status == "void"


def test_manual_write_off_makes_the_subscription_unpaid(org_acme, plan):
    sub, end = _fail_then(org_acme, "gina", plan)
    (invoice,) = _invoices(sub)
    invoice_services.invoice_mark_uncollectible(organization=org_acme, invoice_id=invoice.public_id)
    runner.run_due(now=end + timedelta(days=1))
    sub.refresh_from_db()
    assert sub.status == "unpaid"


def test_renew_subscriptions_command(org_acme, plan, capsys):
    from django.core.management import call_command  # noqa: PLC0415

    _fund(org_acme, "alice")
    sub = _sub(org_acme, plan)
    until = sub.current_period_end.isoformat().replace("+00:00", "Z")
    call_command("renew_subscriptions", "--dry-run", "--until", until)
    assert "1 subscriptions" in capsys.readouterr().out and _invoices(sub) == []
    call_command("renew_subscriptions", "--until", until)
    assert "subscription:paid: 1" in capsys.readouterr().out
    call_command("renew_subscriptions", "--until", until)
    assert "nothing due" in capsys.readouterr().out and len(_invoices(sub)) == 1
