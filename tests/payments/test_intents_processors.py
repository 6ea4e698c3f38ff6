"""The processor protocol and the sandbox: outcomes by last4, memory per idempotency key, fees."""

from __future__ import annotations

import pytest

from payments.models import SandboxOperation
from payments.processors import base
from payments.processors.base import PaymentMethodRef, PaymentRequest, Processor
from payments.processors.registry import processor_for, processor_override
from payments.processors.sandbox import SandboxProcessor, sandbox_fee

pytestmark = pytest.mark.django_db


def _req(key: str, last4: str = "4242", amount: int = 1000, exp=(12, 2099)) -> PaymentRequest:
    return PaymentRequest(idempotency_key=key, amount=amount, currency="usd", customer_id="c",
                          payment_method=PaymentMethodRef(id="pm_x", last4=last4, exp_month=exp[0], exp_year=exp[1]))


@pytest.mark.parametrize("amount,fee", [(0, 0), (1, 1), (100, 33), (1000, 59), (10_000, 320), (5, 5), (50, 31),
                                        (17_241, 530)])
def test_fee_is_2_9_percent_plus_30_half_up_capped_at_the_amount(amount, fee):
    assert sandbox_fee(amount) == fee


@pytest.mark.parametrize("last4,status,code", [
    ("4242", base.SUCCEEDED, ""), ("0002", base.DECLINED, "card_declined"),
    ("9995", base.DECLINED, "insufficient_funds"), ("0259", base.SUCCEEDED, ""),
    ("3155", base.REQUIRES_ACTION, ""), ("1111", base.SUCCEEDED, ""),
])
def test_sandbox_outcome_by_last4(last4, status, code):
    result = SandboxProcessor().charge(_req(f"k-{last4}", last4))
    assert (result.status, result.decline_code) == (status, code)
    assert result.dispute is (last4 == "0259")
    assert result.fee == (59 if status == base.SUCCEEDED else 0)


def test_an_expired_card_declines_expired_card_even_when_the_number_would_pass():
    result = SandboxProcessor().charge(_req("k-exp", "4242", exp=(1, 2020)))
    assert (result.status, result.decline_code) == (base.DECLINED, "expired_card")


def test_same_key_same_result_and_one_row_retrieve_works_from_a_new_instance():
    first = SandboxProcessor().charge(_req("pi_1:confirm:1"))
    again = SandboxProcessor().charge(_req("pi_1:confirm:1", amount=999_999))
    assert again == first
    assert SandboxOperation.objects.filter(idempotency_key="pi_1:confirm:1").count() == 1
    assert SandboxProcessor().retrieve(idempotency_key="pi_1:confirm:1") == first
    assert SandboxProcessor().retrieve(idempotency_key="never-sent") is None


def test_authorize_then_capture_partial_then_no_second_capture():
    sandbox = SandboxProcessor()
    auth = sandbox.authorize(_req("pi_2:confirm:1", amount=5000))
    assert (auth.status, auth.amount, auth.fee) == (base.REQUIRES_CAPTURE, 5000, 0)
    too_much = sandbox.capture(idempotency_key="pi_2:capture", processor_ref=auth.processor_ref, amount=6000,
                               currency="usd")
    assert too_much.status == base.DECLINED
    done = sandbox.capture(idempotency_key="pi_2:capture:2", processor_ref=auth.processor_ref, amount=3000,
                           currency="usd")
    assert (done.status, done.amount, done.fee) == (base.SUCCEEDED, 3000, sandbox_fee(3000))
    second = sandbox.capture(idempotency_key="pi_2:capture:3", processor_ref=auth.processor_ref, amount=1000,
                             currency="usd")
    assert second.status == base.DECLINED and second.decline_code == "authorization_closed"


def test_cancel_and_refund_answer_by_key():
    sandbox = SandboxProcessor()
    auth = sandbox.authorize(_req("pi_3:confirm:1"))
    assert sandbox.cancel(idempotency_key="pi_3:cancel", processor_ref=auth.processor_ref).status == base.CANCELED
    refund = sandbox.refund(idempotency_key="re_1", processor_ref="ch_x", amount=10, currency="usd")
    assert refund == sandbox.refund(idempotency_key="re_1", processor_ref="ch_x", amount=10, currency="usd")


def test_registry_defaults_to_the_sandbox_and_can_be_overridden(org_acme):
    assert isinstance(processor_for(org_acme), SandboxProcessor)
    assert isinstance(processor_for(org_acme), Processor)
    fake = SandboxProcessor()
    with processor_override(fake):
        assert processor_for(org_acme) is fake
    assert processor_for(org_acme) is not fake
