"""POST /invoice-preview (metering.md §13; tests.md 34–36), through the public API end to end: meters,
events, pricing rules and credit grants are created over HTTP, then previewed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.models import BalanceTransaction, CreditGrant
from tests.conftest import assert_error
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

ALICE = "hanzo/alice"


def _now_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def ts(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def meter(api, name="Input Tokens", event_name="input_tokens", **extra) -> str:
    response = api.post("/meters", {"name": name, "eventName": event_name, "aggregationType": "sum"} | extra)
    assert response.status_code == 201, response.content
    return response.json()["id"]


def events(api, meter_id, values, *, user=ALICE, at: datetime | None = None):
    at = at or _now_hour() - timedelta(hours=2)
    batch = [{"meterId": meter_id, "userId": user, "value": v, "timestamp": ts(at + timedelta(minutes=i))}
             for i, v in enumerate(values)]
    response = api.post("/meter-events", {"events": batch})
    assert response.status_code == 201, response.content


def rule(api, meter_id, **fields) -> dict:
    response = api.post("/pricing-rules", {"meterId": meter_id, "model": "per_unit"} | fields)
    assert response.status_code == 201, response.content
    return response.json()


def preview(api, **fields):
    return api.post("/invoice-preview", {"userId": ALICE} | fields)


@pytest.fixture
def tokens(api):
    meter_id = meter(api)
    events(api, meter_id, [1500, 500, 1000, 999])
    rule(api, meter_id, unitPrice=1)
    return meter_id


def test_spec_preview_invariant(api, tokens):
    """tests.md 34: userId echoed, usd, ≥ 1 line, subtotal > 0, subtotal = creditApplied + amountDue."""
    api.post("/credit-grants", {"userId": ALICE, "amountCents": 500})
    response = preview(api, periodStart="2020-01-01", periodEnd="2099-12-31")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["userId"] == ALICE and body["currency"] == "usd"
    assert body["periodStart"] == "2020-01-01" and body["periodEnd"] == "2099-12-31"
    assert body["lineItems"] == [{
        "meterId": tokens, "meterName": "Input Tokens", "quantity": 3999, "eventCount": 4, "unitCost": 1,
        "unitPriceDecimal": None, "totalCost": 3999, "creditApplied": 500, "model": "per_unit",
        "pricingRuleId": body["lineItems"][0]["pricingRuleId"], "currency": "usd",
    }]
    assert (body["subtotal"], body["creditApplied"], body["amountDue"]) == (3999, 500, 3499)
    assert body["subtotal"] == body["creditApplied"] + body["amountDue"]


def test_preview_never_burns_credits(api, tokens):
    grant = api.post("/credit-grants", {"userId": ALICE, "amountCents": 1000}).json()
    before_txns, before_events = BalanceTransaction.objects.count(), BillingEvent.objects.count()
    first = preview(api).json()
    second = preview(api).json()
    assert first == second and first["creditApplied"] == 1000 and first["amountDue"] == 2999
    assert CreditGrant.objects.get(public_id=grant["id"]).remaining_cents == 1000
    assert BalanceTransaction.objects.count() == before_txns
    assert BillingEvent.objects.count() == before_events


def test_user_without_usage_gets_zeros(api, tokens):
    """tests.md 36."""
    body = api.post("/invoice-preview", {"userId": "hanzo/nobody"}).json()
    assert body["lineItems"] == [] and (body["subtotal"], body["creditApplied"], body["amountDue"]) == (0, 0, 0)
    assert body["currency"] == "usd"


@pytest.mark.parametrize("fields, message, param", [
    ({"userId": ""}, "userId is required", "userId"),
    ({"periodStart": "yesterday"}, "invalid periodStart format", "periodStart"),
    ({"periodEnd": "2024-02-30"}, "invalid periodEnd format", "periodEnd"),
    ({"periodStart": "2024-02-01", "periodEnd": "2024-01-01"}, "periodEnd must not be before periodStart",
     "periodEnd"),
])
def test_validation(api, fields, message, param):
    """tests.md 35, and periods that the original silently ignored."""
    assert_error(preview(api, **fields), 400, message, param=param)


def test_missing_user_and_bad_body(api):
    assert_error(api.post("/invoice-preview", {}), 400, "userId is required", param="userId")
    assert_error(api.post("/invoice-preview", raw="nope"), 400, "invalid request body")


def test_periods_are_half_open(api):
    meter_id = meter(api)
    rule(api, meter_id, unitPrice=10)
    boundary = _now_hour() - timedelta(days=2)
    events(api, meter_id, [1], at=boundary - timedelta(minutes=1))  # previous period
    events(api, meter_id, [2], at=boundary)  # exactly on the boundary: this period only
    events(api, meter_id, [4], at=boundary + timedelta(hours=3, minutes=30))
    before = preview(api, periodEnd=ts(boundary)).json()
    this = preview(api, periodStart=ts(boundary), periodEnd=ts(boundary + timedelta(days=1))).json()
    assert before["lineItems"][0]["quantity"] == 1
    assert this["lineItems"][0]["quantity"] == 6 and this["subtotal"] == 60


def test_plan_rule_wins_over_the_default_rule(api):
    meter_id = meter(api)
    events(api, meter_id, [100])
    rule(api, meter_id, unitPrice=3)
    rule(api, meter_id, unitPrice=2, planId="pro")
    assert preview(api).json()["subtotal"] == 300
    assert preview(api, planId="pro").json()["subtotal"] == 200
    assert preview(api, planId="other").json()["subtotal"] == 300


def test_the_newest_rule_prices_and_the_preview_names_it(api):
    """Item 7: several rules for one meter and plan; the newest active one prices the line, and the line
    says which (``pricingRuleId``); deleting it falls back to the next newest."""
    meter_id = meter(api)
    events(api, meter_id, [100])
    rule(api, meter_id, unitPrice=1)
    default = rule(api, meter_id, unitPrice=3)
    older_pro = rule(api, meter_id, unitPrice=5, planId="pro")
    pro = rule(api, meter_id, unitPrice=2, planId="pro")
    line = preview(api).json()["lineItems"][0]
    assert (line["pricingRuleId"], line["unitCost"], line["totalCost"], line["model"]) == (
        default["id"], 3, 300, "per_unit")
    assert preview(api, planId="pro").json()["lineItems"][0]["pricingRuleId"] == pro["id"]
    assert api.delete(f"/pricing-rules/{pro['id']}").status_code == 200
    body = preview(api, planId="pro").json()
    assert (body["lineItems"][0]["pricingRuleId"], body["subtotal"]) == (older_pro["id"], 500)


def test_meter_without_rule_shows_quantity_at_zero_cost(api):
    meter_id = meter(api)
    events(api, meter_id, [7])
    body = preview(api).json()
    assert body["lineItems"][0]["quantity"] == 7 and body["lineItems"][0]["totalCost"] == 0
    assert body["lineItems"][0]["model"] == "" and body["subtotal"] == 0
    assert body["lineItems"][0]["pricingRuleId"] == ""


def test_currency_comes_from_the_rules(api):
    meter_id = meter(api, currency="eur")
    events(api, meter_id, [5])
    rule(api, meter_id, unitPrice=100)
    api.post("/credit-grants", {"userId": ALICE, "amountCents": 200, "currency": "usd"})  # wrong currency
    api.post("/credit-grants", {"userId": ALICE, "amountCents": 150, "currency": "eur"})
    body = preview(api).json()
    assert body["currency"] == "eur" and body["subtotal"] == 500
    assert (body["creditApplied"], body["amountDue"]) == (150, 350)


def test_several_currencies_need_an_explicit_currency(api):
    eur = meter(api, name="EU calls", event_name="eu_calls", currency="eur")
    usd = meter(api, name="US calls", event_name="us_calls")
    for meter_id in (eur, usd):
        events(api, meter_id, [1])
        rule(api, meter_id, unitPrice=10)
    assert_error(preview(api), 400, "usage is priced in several currencies (eur, usd); pass currency to preview "
                                    "one of them", param="currency")
    body = preview(api, currency="EUR").json()
    assert body["currency"] == "eur" and [line["meterId"] for line in body["lineItems"]] == [eur]


def test_sub_cent_prices_round_once_per_line(api):
    meter_id = meter(api)
    events(api, meter_id, [1_234_567])
    rule(api, meter_id, unitPriceDecimal="0.00015")  # 0.00015 cents per token
    line = preview(api).json()["lineItems"][0]
    assert line["unitPriceDecimal"] == "0.00015"
    assert line["totalCost"] == 185  # 185.18505 → 185 (half-up, once)


def test_meter_restricted_grants_pay_only_their_meter(api):
    tokens = meter(api)
    calls = meter(api, name="Calls", event_name="calls")
    events(api, tokens, [100])
    events(api, calls, [100])
    rule(api, tokens, unitPrice=1)
    rule(api, calls, unitPrice=1)
    api.post("/credit-grants", {"userId": ALICE, "amountCents": 1000, "eligibility": [calls]})
    body = preview(api).json()
    by_meter = {line["meterId"]: line["creditApplied"] for line in body["lineItems"]}
    assert by_meter == {tokens: 0, calls: 100}
    assert (body["subtotal"], body["creditApplied"], body["amountDue"]) == (200, 100, 100)


def test_tenant_isolation(api, globex_api, tokens):
    body = globex_api.post("/invoice-preview", {"userId": ALICE}).json()
    assert body["lineItems"] == [] and body["subtotal"] == 0


def test_backfilled_events_are_previewed_in_their_own_period(api):
    """Item 8: events months old are accepted and each counts in the period of its own timestamp."""
    meter_id = meter(api)
    rule(api, meter_id, unitPrice=10)
    events(api, meter_id, [3, 4], at=datetime(2024, 1, 31, 23, 58, tzinfo=UTC))  # 23:58 and 23:59 on Jan 31
    events(api, meter_id, [50], at=datetime(2024, 2, 1, 0, 0, tzinfo=UTC))
    events(api, meter_id, [600])  # recent
    jan = preview(api, periodStart="2024-01-01", periodEnd="2024-02-01").json()
    feb = preview(api, periodStart="2024-02-01", periodEnd="2024-03-01").json()
    now = preview(api, periodStart=ts(_now_hour() - timedelta(days=1))).json()
    assert (jan["lineItems"][0]["quantity"], jan["subtotal"]) == (7, 70)
    assert (feb["lineItems"][0]["quantity"], feb["subtotal"]) == (50, 500)
    assert (now["lineItems"][0]["quantity"], now["subtotal"]) == (600, 6000)
