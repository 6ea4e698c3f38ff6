"""Payouts: the API (spec payments.md §6: 201 pending without a balance check, validation wording, bare-array
list, cancel guard, isolation) and the beat processing (funds checked under the clearing lock; paid → ledger
legs; insufficient → failed, nothing moved; duplicates harmless; ledger_audit clean)."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from billing_project.celery import app
from ledger import selectors as ledger_selectors
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction
from payments import tasks
from payments.models import Payout
from payments.selectors import payouts as payout_selectors
from payments.services import intents as intent_services
from payments.services import payouts as payout_services
from tests.conftest import assert_error
from tests.payments import intents_helpers
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

CLEARING = Account.KIND_PROCESSOR_CLEARING


def fund_clearing(org, amount: int, currency: str = "usd") -> None:
    """Settled money in processor clearing, the way it really arrives: a card payment intent charged through
    the sandbox (its fee mocked to 0 so the figures stay round) — Dr clearing / Cr payments received."""
    customer = f"funder-{currency}"
    card = intents_helpers.method(org, customer)
    intent = intent_services.payment_intent_create(organization=org, customer_id=customer, amount=amount,
                                                   currency=currency, payment_method_id=card.public_id)
    with mock.patch("payments.processors.sandbox.sandbox_fee", return_value=0):
        intent_services.payment_intent_confirm(organization=org, intent_id=intent.public_id)


def house_balance(org, kind: str, currency: str = "usd") -> int:
    account = Account.objects.filter(organization=org, kind=kind, currency=currency, customer="").first()
    if account is None:
        return 0
    signed = [e.amount if e.direction == "debit" else -e.amount for e in account.entries.all()]
    return sum(signed)


def _create(api, **body) -> dict:
    payload = {"amount": 2500, "destinationType": "bank_account", "destinationId": "ba_1", **body}
    response = api.post("/payouts", payload)
    assert response.status_code == 201, response.content
    return response.json()


# --- API -------------------------------------------------------------------------------------------

def test_create_is_pending_without_any_balance(api):
    p = _create(api, amount=12500, description="weekly", metadata={"run": "7"})
    assert p["id"].startswith("po_")
    assert (p["amount"], p["currency"], p["status"]) == (12500, "usd", "pending")
    assert (p["destinationType"], p["destinationId"], p["description"], p["metadata"]) == (
        "bank_account", "ba_1", "weekly", {"run": "7"})
    assert "arrivalDate" not in p and "failureCode" not in p
    assert not BalanceTransaction.objects.exists()
    assert BillingEvent.objects.filter(type="payout.created", object_id=p["id"]).count() == 1
    assert _create(api, currency="EUR")["currency"] == "eur"


@pytest.mark.parametrize("body,message,param", [
    ({"amount": 0, "destinationId": "d"}, "amount must be positive", "amount"),
    ({"amount": -5, "destinationId": "d"}, "amount must be positive", "amount"),
    ({"destinationId": "d"}, "amount must be positive", "amount"),
    ({"amount": 100}, "destinationId is required", "destinationId"),
    ({"amount": 0}, "amount must be positive", "amount"),
    ({"amount": "100", "destinationId": "d"}, None, "amount"),
    ({"amount": 100, "destinationId": "d", "currency": "zzz"}, None, "currency"),
])
def test_validation(api, body, message, param):
    assert_error(api.post("/payouts", body), 400, message, param=param)
    assert not Payout.objects.exists()


def test_get_list_and_cancel(api):
    a, b = _create(api), _create(api)
    assert api.get(f"/payouts/{a['id']}").json()["id"] == a["id"]
    assert [p["id"] for p in api.get("/payouts").json()] == [b["id"], a["id"]]
    response = api.post(f"/payouts/{a['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "canceled"
    assert api.get(f"/payouts/{a['id']}").json()["status"] == "canceled"
    assert_error(api.post(f"/payouts/{a['id']}/cancel"), 400, "can only cancel pending payouts, current: canceled")
    assert [p["id"] for p in api.get("/payouts", {"status": "pending"}).json()] == [b["id"]]
    assert BillingEvent.objects.filter(type="payout.canceled", object_id=a["id"]).count() == 1
    assert not BalanceTransaction.objects.exists()


@pytest.mark.parametrize("suffix", ["", "/cancel"])
def test_unknown_is_404_before_the_body(api, suffix):
    path = f"/payouts/po_nope{suffix}"
    response = api.get(path) if not suffix else api.post(path, raw="not json")
    assert_error(response, 404, "payout not found")


def test_another_organizations_payout_is_404(api, globex_api):
    p = _create(api)
    assert_error(globex_api.get(f"/payouts/{p['id']}"), 404, "payout not found")
    assert_error(globex_api.post(f"/payouts/{p['id']}/cancel"), 404, "payout not found")
    assert globex_api.get("/payouts").json() == []
    assert api.get(f"/payouts/{p['id']}").json()["status"] == "pending"


# --- processing ------------------------------------------------------------------------------------

def _process(payout_id: str) -> Payout:
    return payout_services.payout_process(payout_pk=Payout.objects.get(public_id=payout_id).pk)


def test_funded_payout_goes_in_transit_then_paid(api, org_acme):
    fund_clearing(org_acme, 10_000)
    p = _create(api, amount=4_000)
    payout = _process(p["id"])
    assert payout.status == "paid" and payout.arrival_date is not None
    assert house_balance(org_acme, CLEARING) == 6_000
    assert house_balance(org_acme, Account.KIND_PAYOUTS_IN_TRANSIT) == 0
    assert house_balance(org_acme, Account.KIND_BANK) == 4_000
    body = api.get(f"/payouts/{p['id']}").json()
    assert body["status"] == "paid" and body["arrivalDate"]
    types = list(BillingEvent.objects.filter(object_id=p["id"]).order_by("id").values_list("type", flat=True))
    assert types == ["payout.created", "payout.updated", "payout.paid"]
    assert_error(api.post(f"/payouts/{p['id']}/cancel"), 400, "can only cancel pending payouts, current: paid")
    assert _process(p["id"]).status == "paid"  # a duplicate delivery changes nothing
    assert BalanceTransaction.objects.filter(source_type="payout").count() == 2
    assert ledger_selectors.ledger_audit().ok


def test_unfunded_payout_fails_and_moves_nothing(api, org_acme):
    fund_clearing(org_acme, 1_000)
    fund_clearing(org_acme, 9_000, currency="eur")  # another currency does not count
    p = _create(api, amount=4_000)
    payout = _process(p["id"])
    assert (payout.status, payout.failure_code) == ("failed", "insufficient_funds")
    body = api.get(f"/payouts/{p['id']}").json()
    assert body["failureCode"] == "insufficient_funds"
    assert body["failureMessage"] == "insufficient settled balance: 1000 usd available, 4000 requested"
    assert house_balance(org_acme, CLEARING) == 1_000
    assert not BalanceTransaction.objects.filter(source_type="payout").exists()
    assert BillingEvent.objects.filter(type="payout.failed", object_id=p["id"]).count() == 1
    assert ledger_selectors.ledger_audit().ok


def test_canceled_payouts_are_not_processed(api, org_acme):
    fund_clearing(org_acme, 10_000)
    p = _create(api)
    api.post(f"/payouts/{p['id']}/cancel")
    assert _process(p["id"]).status == "canceled"
    assert house_balance(org_acme, CLEARING) == 10_000


def test_a_crash_after_transit_is_finished_by_the_next_run(api, org_acme):
    fund_clearing(org_acme, 10_000)
    p = _create(api, amount=3_000)
    payout = Payout.objects.get(public_id=p["id"])
    accounts = ledger_services.accounts_resolve(organization=org_acme, currency="usd", customer_kinds=(),
                                                house_kinds=payout_services._HOUSE_KINDS)
    payout_services._leave_pending(payout_pk=payout.pk, accounts=accounts)  # then the worker dies
    assert Payout.objects.get(pk=payout.pk).status == "in_transit"
    assert house_balance(org_acme, Account.KIND_PAYOUTS_IN_TRANSIT) == 3_000
    assert ledger_selectors.ledger_audit().ok
    assert payout_services.payouts_claim() == [payout.pk]  # in transit: due at once
    assert _process(p["id"]).status == "paid"
    assert house_balance(org_acme, Account.KIND_BANK) == 3_000


def test_sweep_claims_ripe_pending_payouts_once(api, org_acme, settings):
    settings.PAYOUT_PROCESS_AFTER_SECONDS = 600
    fresh = _create(api)
    old = _create(api)
    Payout.objects.filter(public_id=old["id"]).update(created_at=timezone.now() - timedelta(seconds=601))
    old_pk = Payout.objects.get(public_id=old["id"]).pk
    assert payout_services.payouts_claim() == [old_pk]  # the fresh one can still be canceled
    assert payout_services.payouts_claim() == []  # claimed: not handed out again
    later = timezone.now() + timedelta(seconds=601)  # the claims lapsed (claim_seconds=600)
    assert set(payout_services.payouts_claim(now=later)) == {old_pk, Payout.objects.get(public_id=fresh["id"]).pk}


def test_sweep_task_processes_due_payouts(api, org_acme, settings):
    settings.PAYOUT_PROCESS_AFTER_SECONDS = 0
    fund_clearing(org_acme, 5_000)
    ok, too_big = _create(api, amount=5_000), _create(api, amount=1)
    app.conf.task_always_eager = True
    try:
        assert tasks.payouts_process_sweep() == 2
    finally:
        app.conf.task_always_eager = False
    statuses = {p.public_id: p.status for p in Payout.objects.all()}
    assert statuses == {ok["id"]: "paid", too_big["id"]: "failed"}
    assert payout_selectors.payouts_ledger_drift() == []


def test_audit_reports_a_payout_without_its_posting(api, org_acme):
    p = _create(api)
    Payout.objects.filter(public_id=p["id"]).update(status="paid")
    drift = payout_selectors.payouts_ledger_drift()
    assert any(p["id"] in line and "transit posting missing" in line for line in drift)
    assert not ledger_selectors.ledger_audit().ok
