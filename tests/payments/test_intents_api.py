"""Payment intents over HTTP: status machine, declines (402), manual and partial capture, cancel, 404s,
events, postings and tenant isolation."""

from __future__ import annotations

import pytest

from ledger import selectors as ledger_selectors
from ledger.models import Account, BalanceTransaction, Entry
from payments.models import PaymentAttempt, PaymentIntent
from payments.processors.sandbox import sandbox_fee
from tests.conftest import assert_error
from tests.payments.intents_helpers import ACTION, DECLINED, DISPUTE, NO_FUNDS, OK, method
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db
CUSTOMER = "acme/buyer"


def _create(api, amount=1000, **fields):
    response = api.post("/payment-intents", {"customerId": CUSTOMER, "amount": amount, "currency": "usd", **fields})
    assert response.status_code == 201, response.content
    return response.json()


def _house(org, kind: str) -> int:
    """Net debit balance of a house account (debits − credits)."""
    account = Account.objects.filter(organization=org, kind=kind, currency="usd").first()
    if account is None:
        return 0
    total = 0
    for entry in Entry.objects.filter(account=account):
        total += entry.amount if entry.direction == Entry.DEBIT else -entry.amount
    return total


def _events(intent_id: str, type: str) -> int:
    return BillingEvent.objects.filter(object_id=intent_id, type=type).count()


def test_create_defaults_and_with_a_method(api, org_acme):
    bare = _create(api)
    assert bare["status"] == "requires_payment_method"
    assert (bare["captureMethod"], bare["confirmationMethod"]) == ("automatic", "automatic")
    assert (bare["amountCapturable"], bare["amountReceived"], bare["amountRefunded"]) == (0, 0, 0)
    assert bare["id"].startswith("pi_") and "paymentMethodId" not in bare
    pm = method(org_acme, CUSTOMER)
    with_pm = _create(api, paymentMethodId=pm.public_id, description="order 7", metadata={"o": 7},
                      currency="USD", invoiceId="in_anything")
    assert with_pm["status"] == "requires_confirmation"
    assert (with_pm["paymentMethodId"], with_pm["currency"], with_pm["invoiceId"]) == (pm.public_id, "usd",
                                                                                        "in_anything")
    assert with_pm["metadata"] == {"o": 7}
    assert _events(with_pm["id"], "payment_intent.created") == 1


@pytest.mark.parametrize("body,message,param", [
    ({"customerId": CUSTOMER, "amount": 0}, "amount must be positive", "amount"),
    ({"customerId": CUSTOMER, "amount": -5}, "amount must be positive", "amount"),
    ({"customerId": CUSTOMER}, "amount must be positive", "amount"),
    ({"amount": 100}, "customerId is required", "customerId"),
    ({"customerId": "", "amount": 100}, "customerId is required", "customerId"),
])
def test_create_validation(api, body, message, param):
    assert_error(api.post("/payment-intents", body), 400, message, param=param)
    assert not PaymentIntent.objects.exists()


def test_create_with_an_unknown_or_detached_method_is_404(api, org_acme, globex_api):
    assert_error(api.post("/payment-intents", {"customerId": CUSTOMER, "amount": 5, "paymentMethodId": "pm_nope"}),
                 404, "payment method not found", param="paymentMethodId")
    pm = method(org_acme, CUSTOMER)
    assert_error(globex_api.post("/payment-intents", {"customerId": CUSTOMER, "amount": 5,
                                                      "paymentMethodId": pm.public_id}), 404)
    pm.detached_at = pm.created_at
    pm.save()
    assert_error(api.post("/payment-intents", {"customerId": CUSTOMER, "amount": 5,
                                               "paymentMethodId": pm.public_id}), 404)


def test_confirm_charges_posts_capture_and_fee_and_emits_succeeded_once(api, org_acme):
    pm = method(org_acme, CUSTOMER)
    pi = _create(api, 10_000, paymentMethodId=pm.public_id)
    done = api.post(f"/payment-intents/{pi['id']}/confirm")
    assert done.status_code == 200, done.content
    body = done.json()
    assert (body["status"], body["amountReceived"], body["amountCapturable"]) == ("succeeded", 10_000, 0)
    assert body["providerRef"].startswith("ch_sbx_")
    fee = sandbox_fee(10_000)
    assert _house(org_acme, Account.KIND_PROCESSOR_CLEARING) == 10_000 - fee
    assert _house(org_acme, Account.KIND_PAYMENTS_RECEIVED) == -10_000
    assert _house(org_acme, Account.KIND_PROCESSOR_FEES) == fee
    assert _events(pi["id"], "payment_intent.processing") == 1
    assert _events(pi["id"], "payment_intent.succeeded") == 1
    assert_error(api.post(f"/payment-intents/{pi['id']}/confirm"), 409,
                 "cannot confirm payment intent in status succeeded")
    assert _events(pi["id"], "payment_intent.succeeded") == 1
    assert PaymentAttempt.objects.get().processor_key == f"{pi['id']}:confirm:1"
    assert ledger_selectors.ledger_audit().ok


@pytest.mark.parametrize("last4,code", [(DECLINED, "card_declined"), (NO_FUNDS, "insufficient_funds")])
def test_a_decline_is_402_back_to_requires_payment_method_then_another_method_is_a_new_attempt(api, org_acme,
                                                                                                last4, code):
    bad = method(org_acme, CUSTOMER, last4)
    pi = _create(api, 3000, paymentMethodId=bad.public_id)
    error = assert_error(api.post(f"/payment-intents/{pi['id']}/confirm", {}), 402, contains="declined")
    assert error["code"] == code
    after = api.get(f"/payment-intents/{pi['id']}").json()
    assert (after["status"], after["amountReceived"]) == ("requires_payment_method", 0)
    assert code in after["lastError"]
    assert _events(pi["id"], "payment_intent.payment_failed") == 1
    assert not BalanceTransaction.objects.filter(type__startswith="payment").exists()
    good = method(org_acme, CUSTOMER, OK)
    done = api.post(f"/payment-intents/{pi['id']}/confirm", {"paymentMethodId": good.public_id}).json()
    assert (done["status"], done["amountReceived"], done["paymentMethodId"]) == ("succeeded", 3000, good.public_id)
    assert "lastError" not in done
    keys = list(PaymentAttempt.objects.order_by("pk").values_list("processor_key", "status"))
    assert keys == [(f"{pi['id']}:confirm:1", "declined"), (f"{pi['id']}:confirm:2", "succeeded")]


def test_an_expired_card_declines_with_expired_card(api, org_acme):
    pm = method(org_acme, CUSTOMER, OK, exp_month=1, exp_year=2020)
    pi = _create(api, paymentMethodId=pm.public_id)
    assert assert_error(api.post(f"/payment-intents/{pi['id']}/confirm"), 402)["code"] == "expired_card"


def test_a_card_that_requires_action_stops_in_requires_action(api, org_acme):
    pm = method(org_acme, CUSTOMER, ACTION)
    pi = _create(api, paymentMethodId=pm.public_id)
    body = api.post(f"/payment-intents/{pi['id']}/confirm").json()
    assert (body["status"], body["amountReceived"]) == ("requires_action", 0)
    assert _events(pi["id"], "payment_intent.requires_action") == 1


def test_the_dispute_card_succeeds(api, org_acme):
    pm = method(org_acme, CUSTOMER, DISPUTE)
    pi = _create(api, paymentMethodId=pm.public_id)
    assert api.post(f"/payment-intents/{pi['id']}/confirm").json()["status"] == "succeeded"


def test_confirm_without_a_method_and_with_an_unknown_one(api, org_acme):
    pi = _create(api)
    assert_error(api.post(f"/payment-intents/{pi['id']}/confirm"), 400, "payment method is required to confirm")
    assert_error(api.post(f"/payment-intents/{pi['id']}/confirm", {"paymentMethodId": "pm_nope"}), 404,
                 "payment method not found")
    assert api.get(f"/payment-intents/{pi['id']}").json()["status"] == "requires_payment_method"


def test_manual_capture_authorizes_then_captures_part_and_releases_the_rest(api, org_acme):
    pm = method(org_acme, CUSTOMER)
    pi = _create(api, 10_000, paymentMethodId=pm.public_id, captureMethod="manual")
    auth = api.post(f"/payment-intents/{pi['id']}/confirm").json()
    assert (auth["status"], auth["amountCapturable"], auth["amountReceived"]) == ("requires_capture", 10_000, 0)
    assert _house(org_acme, Account.KIND_AUTHORIZATIONS) == 10_000
    assert _events(pi["id"], "payment_intent.amount_capturable_updated") == 1
    assert_error(api.post(f"/payment-intents/{pi['id']}/capture", {"amountToCapture": 10_001}), 400,
                 "capture amount 10001 exceeds capturable 10000", param="amountToCapture")
    done = api.post(f"/payment-intents/{pi['id']}/capture", {"amountToCapture": 6000}).json()
    assert (done["status"], done["amountReceived"], done["amountCapturable"]) == ("succeeded", 6000, 0)
    assert _house(org_acme, Account.KIND_AUTHORIZATIONS) == 0
    assert _house(org_acme, Account.KIND_PAYMENTS_RECEIVED) == -6000
    assert _house(org_acme, Account.KIND_PROCESSOR_FEES) == sandbox_fee(6000)
    assert_error(api.post(f"/payment-intents/{pi['id']}/capture"), 409, "cannot capture payment intent in status "
                                                                         "succeeded")
    assert _events(pi["id"], "payment_intent.succeeded") == 1
    assert ledger_selectors.ledger_audit().ok


def test_capture_defaults_to_everything_and_a_declined_authorization_captures_nothing(api, org_acme):
    pm = method(org_acme, CUSTOMER)
    pi = _create(api, 5000, paymentMethodId=pm.public_id, captureMethod="manual")
    api.post(f"/payment-intents/{pi['id']}/confirm")
    assert api.post(f"/payment-intents/{pi['id']}/capture").json()["amountReceived"] == 5000
    bad = method(org_acme, CUSTOMER, DECLINED)
    other = _create(api, 5000, paymentMethodId=bad.public_id, captureMethod="manual")
    assert_error(api.post(f"/payment-intents/{other['id']}/confirm"), 402, contains="declined")
    after = api.get(f"/payment-intents/{other['id']}").json()
    assert (after["status"], after["amountCapturable"]) == ("requires_payment_method", 0)
    assert_error(api.post(f"/payment-intents/{other['id']}/capture"), 409,
                 "cannot capture payment intent in status requires_payment_method")


def test_cancel_paths(api, org_acme):
    pm = method(org_acme, CUSTOMER)
    waiting = _create(api, paymentMethodId=pm.public_id)
    canceled = api.post(f"/payment-intents/{waiting['id']}/cancel", {"cancellationReason": "changed my mind"})
    assert canceled.status_code == 200
    assert (canceled.json()["status"], canceled.json()["cancellationReason"]) == ("canceled", "changed my mind")
    assert_error(api.post(f"/payment-intents/{waiting['id']}/cancel"), 409,
                 "cannot cancel payment intent in status canceled")
    assert_error(api.post(f"/payment-intents/{waiting['id']}/confirm"), 409,
                 "cannot confirm payment intent in status canceled")
    authorized = _create(api, 7000, paymentMethodId=pm.public_id, captureMethod="manual")
    api.post(f"/payment-intents/{authorized['id']}/confirm")
    released = api.post(f"/payment-intents/{authorized['id']}/cancel").json()
    assert (released["status"], released["amountCapturable"]) == ("canceled", 0)
    assert _house(org_acme, Account.KIND_AUTHORIZATIONS) == 0
    assert PaymentAttempt.objects.filter(kind="cancel", status="canceled").count() == 1
    assert _events(authorized["id"], "payment_intent.canceled") == 1
    assert ledger_selectors.ledger_audit().ok


@pytest.mark.parametrize("method_,suffix", [("GET", ""), ("POST", "/confirm"), ("POST", "/capture"),
                                            ("POST", "/cancel")])
def test_unknown_intent_is_404_before_any_body_check(api, method_, suffix):
    if method_ == "GET":
        response = api.get(f"/payment-intents/pi_unknown{suffix}")
    else:
        response = api.post(f"/payment-intents/pi_unknown{suffix}", raw="[1, 2]")
    assert_error(response, 404, "payment intent not found")


def test_actions_refuse_a_body_that_is_not_an_object(api):
    pi = _create(api)
    assert_error(api.post(f"/payment-intents/{pi['id']}/cancel", raw="[1]"), 400, "invalid request body")
    assert api.get(f"/payment-intents/{pi['id']}").json()["status"] == "requires_payment_method"


def test_list_filters_by_customer_and_is_scoped(api, globex_api):
    first = _create(api)
    other = api.post("/payment-intents", {"customerId": "someone/else", "amount": 5}).json()
    listed = api.get("/payment-intents", {"customerId": CUSTOMER}).json()
    assert [i["id"] for i in listed] == [first["id"]]
    assert {i["id"] for i in api.get("/payment-intents").json()} == {first["id"], other["id"]}
    assert globex_api.get("/payment-intents").json() == []
    assert_error(globex_api.get(f"/payment-intents/{first['id']}"), 404, "payment intent not found")
    assert_error(globex_api.post(f"/payment-intents/{first['id']}/confirm"), 404)
