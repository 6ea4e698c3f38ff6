"""The sweeper's card-less renewal in ONE transaction (package "perf"): the same invoice, events, audit
records and ledger as the phased path, one subscription lock, one PDF enqueue, a bounded SQL count."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing_project.core.models import AuditLog
from invoicing.models import Invoice
from ledger import selectors as ledger_selectors
from ledger.services import credits as credit_services
from subscriptions.models import Renewal
from subscriptions.services import plans as plan_services
from subscriptions.services import renewals
from subscriptions.services import subscriptions as sub_services
from webhooks.models import BillingEvent
from webhooks.services import dispatch

pytestmark = pytest.mark.django_db

T0 = datetime(2027, 1, 31, 10, 0, tzinfo=UTC)


@pytest.fixture
def sub(org_acme):
    plan = plan_services.plan_create(organization=org_acme, name="Pro", price=3000)
    credit_services.credit_grant_create(organization=org_acme, user="alice", amount_cents=1_000_000)
    sub = sub_services.subscription_create(organization=org_acme, customer_id="alice", plan_id=plan.public_id,
                                           now=T0)
    # The first renewal of a customer without accounts yet takes the phased path (it resolves them unlocked).
    renewals.subscription_due_process(subscription_pk=sub.pk, now=sub.current_period_end)
    sub.refresh_from_db()
    return sub


def test_a_cardless_renewal_is_one_transaction_with_every_effect(org_acme, sub):
    start, end = sub.current_period_start, sub.current_period_end
    last_event = BillingEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    with CaptureQueriesContext(connection) as ctx:
        assert renewals.subscription_due_process(subscription_pk=sub.pk, now=end) == Renewal.STATUS_PAID
    sqls = [q["sql"] for q in ctx.captured_queries]
    assert sum(1 for s in sqls if "FROM \"subscriptions_subscription\"" in s and "FOR UPDATE" in s) == 1
    assert len(sqls) <= 45, f"{len(sqls)} statements for one renewal"

    invoice = Invoice.objects.get(subscription_id=sub.public_id, period_start=start)
    assert invoice.status == Invoice.STATUS_PAID and invoice.number_str.startswith("INV-")
    assert invoice.credit_applied == invoice.amount_paid == 3000
    sub.refresh_from_db()
    assert sub.current_period_start == end and sub.status == "active"
    types = list(BillingEvent.objects.filter(pk__gt=last_event).order_by("pk").values_list("type", flat=True))
    for expected in ("invoice.created", "invoice.finalized", "credit_grant.burned", "invoice.paid",
                     "subscription.renewed"):
        assert types.count(expected) == 1, types
    assert set(AuditLog.objects.filter(object_id=invoice.public_id).values_list("action", flat=True)) == {
        "invoice.finalize", "invoice.pay"}
    assert ledger_selectors.ledger_audit().ok


def test_one_pdf_enqueue_and_few_fanout_kicks_per_renewal(org_acme, sub, django_capture_on_commit_callbacks):
    start, end = sub.current_period_start, sub.current_period_end
    with django_capture_on_commit_callbacks() as callbacks:
        renewals.subscription_due_process(subscription_pk=sub.pk, now=end)
    invoice = Invoice.objects.get(subscription_id=sub.public_id, period_start=start)
    assert [getattr(c, "invoice_pdf_pk", None) for c in callbacks].count(invoice.pk) == 1
    assert 1 <= sum(1 for c in callbacks if c is dispatch.fanout_kick) <= 3


def test_the_first_renewal_without_accounts_takes_the_phased_path(org_acme):
    plan = plan_services.plan_create(organization=org_acme, name="Pro", price=3000)
    credit_services.credit_grant_create(organization=org_acme, user="bob", amount_cents=1_000_000)
    sub = sub_services.subscription_create(organization=org_acme, customer_id="bob", plan_id=plan.public_id, now=T0)
    with CaptureQueriesContext(connection) as ctx:
        assert renewals.subscription_due_process(subscription_pk=sub.pk, now=sub.current_period_end) == "paid"
    assert sum(1 for q in ctx.captured_queries if "FROM \"subscriptions_subscription\"" in q["sql"]
               and "FOR UPDATE" in q["sql"]) == 2
    assert ledger_selectors.ledger_audit().ok


def test_a_rerun_bills_nothing_more(org_acme, sub):
    start, end = sub.current_period_start, sub.current_period_end
    renewals.subscription_due_process(subscription_pk=sub.pk, now=end)
    assert renewals.subscription_due_process(subscription_pk=sub.pk, now=end) == "not_due"
    assert Invoice.objects.filter(subscription_id=sub.public_id, period_start=start).count() == 1
