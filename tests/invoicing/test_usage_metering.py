"""POST /usage also writes the ``api-usage`` meter event, in the same transaction (ledger.md §5.3, fixed)."""

from __future__ import annotations

import pytest

from invoicing.models import Meter, MeterEvent
from ledger import services as ledger_services
from ledger.models import BalanceTransaction

pytestmark = pytest.mark.django_db

BOB = "hanzo/bob"
CALL = {"user": BOB, "amount": 25, "model": "gpt-4", "provider": "openai", "promptTokens": 100,
        "completionTokens": 50, "totalTokens": 150, "requestId": "req-1"}


@pytest.fixture
def usage_meter(api) -> str:
    response = api.post("/meters", {"name": "API usage", "eventName": "api-usage"})
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_usage_is_charged_and_metered_once(api, usage_meter):
    first = api.post("/usage", CALL)
    again = api.post("/usage", CALL)
    assert first.status_code == 201 and again.status_code == 201
    assert first.json()["transactionId"] == again.json()["transactionId"]
    event = MeterEvent.objects.get()
    assert (event.meter.public_id, event.customer, event.value, event.idempotency_key) == (usage_meter, BOB, 150,
                                                                                           "req-1")
    assert event.dimensions == {"model": "gpt-4", "provider": "openai"}
    assert event.timestamp == BalanceTransaction.objects.get(type="withdraw").created_at
    summary = api.get("/meter-events/summary", {"meterId": usage_meter, "userId": BOB}).json()
    assert (summary["value"], summary["eventCount"]) == (150, 1)


def test_calls_without_request_id_are_each_metered(api, usage_meter):
    call = CALL | {"requestId": ""}
    api.post("/usage", call)
    api.post("/usage", call)
    assert MeterEvent.objects.count() == 2 and BalanceTransaction.objects.filter(type="withdraw").count() == 2


def test_no_usage_meter_no_event(api):
    assert api.post("/usage", CALL).status_code == 201
    assert not MeterEvent.objects.exists()


def test_a_refused_withdrawal_writes_no_event(api, org_acme, usage_meter):
    wallet = ledger_services.accounts_resolve(organization=org_acme, currency="usd", customer=BOB)["wallet"]
    ledger_services.wallet_set_overdraft(wallet=wallet, allow_negative=False)
    response = api.post("/usage", CALL)
    assert response.status_code == 402
    assert not MeterEvent.objects.exists() and not BalanceTransaction.objects.filter(type="withdraw").exists()


def test_skipped_usage_is_not_metered(api, usage_meter):
    assert api.post("/usage", CALL | {"amount": 0}).json()["status"] == "skipped"
    assert not MeterEvent.objects.exists()


def test_zap_record_usage_meters_too(api, usage_meter):
    response = api.post("/zap", {"id": "1", "method": "billing.recordUsage", "params": CALL | {"requestId": "z-1"}})
    assert response.status_code == 200 and "result" in response.json(), response.content
    assert MeterEvent.objects.get().idempotency_key == "z-1"
    assert Meter.objects.get().public_id == usage_meter
