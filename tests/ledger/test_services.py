"""Ledger services on real PostgreSQL: happy paths, guards, idempotent replay, conflicts, events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing_project.core.errors import Conflict, IdempotencyConflict, InsufficientFunds, NotFound, ValidationError
from ledger import postings, selectors, services
from ledger.models import Account, BalanceTransaction, Entry, Hold, Lot
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

U = "hanzo/alice"


def bal(org, user=U, currency="usd"):
    return selectors.balance_get(organization=org, user=user, currency=currency)


def audit_clean():
    report = selectors.ledger_audit()
    assert report.ok, (report.drift, report.imbalances)


def test_deposit_posts_balanced_entries_and_event(org_acme):
    txn = services.deposit_create(organization=org_acme, user=U, amount=1000, currency="usd", tags="topup")
    legs = list(Entry.objects.filter(transaction=txn).select_related("account"))
    assert sorted((e.account.kind, e.direction, e.amount) for e in legs) == [
        ("funding", "debit", 1000), ("wallet", "credit", 1000)]
    assert bal(org_acme).balance == 1000
    event = BillingEvent.objects.get(object_id=txn.public_id)
    assert event.type == "balance_transaction.created"
    assert event.data["amount"] == 1000 and event.customer_id == U
    audit_clean()


def test_transaction_post_validates_legs(org_acme):
    accounts = services.accounts_resolve(organization=org_acme, currency="usd", customer=U,
                                         house_kinds=(Account.KIND_FUNDING,))
    wallet, funding = accounts[Account.KIND_WALLET], accounts[Account.KIND_FUNDING]
    with pytest.raises(ValidationError, match="at least two"):
        services.transaction_post(organization=org_acme, type="deposit", currency="usd", amount=5,
                                  legs=[postings.Leg(wallet, Entry.CREDIT, 5)])
    with pytest.raises(ValidationError, match="not balanced"):
        services.transaction_post(organization=org_acme, type="deposit", currency="usd", amount=5,
                                  legs=[postings.Leg(wallet, Entry.CREDIT, 5), postings.Leg(funding, Entry.DEBIT, 4)])
    with pytest.raises(ValidationError, match="positive"):
        services.transaction_post(organization=org_acme, type="deposit", currency="usd", amount=5,
                                  legs=postings.transfer(debit=funding, credit=wallet, amount=0))
    with pytest.raises(ValidationError, match="currency"):
        services.transaction_post(organization=org_acme, type="deposit", currency="eur", amount=5,
                                  legs=postings.transfer(debit=funding, credit=wallet, amount=5))
    assert BalanceTransaction.objects.count() == 0


def test_transaction_post_refuses_other_organizations_accounts(org_acme, org_globex):
    theirs = services.accounts_resolve(organization=org_globex, currency="usd", customer=U,
                                       house_kinds=(Account.KIND_FUNDING,))
    with pytest.raises(ValidationError, match="organization"):
        services.transaction_post(organization=org_acme, type="deposit", currency="usd", amount=5,
                                  legs=postings.deposit(funding=theirs[Account.KIND_FUNDING],
                                                        wallet=theirs[Account.KIND_WALLET], amount=5))


def test_idempotent_replay_and_conflict(org_acme):
    first = services.deposit_create(organization=org_acme, user=U, amount=100, currency="usd", idempotency_key="k")
    again = services.deposit_create(organization=org_acme, user=U, amount=100, currency="usd", idempotency_key="k")
    assert again.pk == first.pk and again.replayed and not first.replayed
    with pytest.raises(IdempotencyConflict):
        services.deposit_create(organization=org_acme, user=U, amount=101, currency="usd", idempotency_key="k")
    assert bal(org_acme).balance == 100


def test_usage_overdraws_by_default_and_request_id_dedupes(org_acme):
    a = services.usage_record(organization=org_acme, user=U, amount=25, currency="usd", request_id="req-1")
    b = services.usage_record(organization=org_acme, user=U, amount=25, currency="usd", request_id="req-1")
    assert a.pk == b.pk
    assert bal(org_acme).balance == -25
    with pytest.raises(IdempotencyConflict):
        services.usage_record(organization=org_acme, user=U, amount=30, currency="usd", request_id="req-1")


def test_floored_wallet_refuses_usage_beyond_available(org_acme):
    services.deposit_create(organization=org_acme, user=U, amount=100, currency="usd")
    wallet = Account.objects.get(kind=Account.KIND_WALLET, customer=U)
    services.wallet_set_overdraft(wallet=wallet, allow_negative=False)
    services.usage_record(organization=org_acme, user=U, amount=60, currency="usd")
    with pytest.raises(InsufficientFunds, match="40 usd available, 41 requested"):
        services.usage_record(organization=org_acme, user=U, amount=41, currency="usd")
    assert bal(org_acme).balance == 40
    audit_clean()


def test_hold_lifecycle(org_acme):
    services.deposit_create(organization=org_acme, user=U, amount=1000, currency="usd")
    hold = services.hold_place(organization=org_acme, user=U, amount=300, currency="usd")
    assert (bal(org_acme).balance, bal(org_acme).holds, bal(org_acme).available) == (1000, 300, 700)
    with pytest.raises(InsufficientFunds):
        services.hold_place(organization=org_acme, user=U, amount=701, currency="usd")
    released = services.hold_release(organization=org_acme, hold_id=hold.public_id)
    assert released.status == Hold.STATUS_RELEASED
    assert (bal(org_acme).balance, bal(org_acme).holds) == (1000, 0)
    with pytest.raises(Conflict, match="not in pending"):
        services.hold_release(organization=org_acme, hold_id=hold.public_id)

    hold2 = services.hold_place(organization=org_acme, user=U, amount=400, currency="usd")
    with pytest.raises(ValidationError, match="exceeds hold"):
        services.hold_capture(organization=org_acme, hold_id=hold2.public_id, amount=401)
    captured = services.hold_capture(organization=org_acme, hold_id=hold2.public_id, amount=150)
    assert captured.status == Hold.STATUS_CAPTURED and captured.captured_amount == 150
    assert (bal(org_acme).balance, bal(org_acme).holds, bal(org_acme).available) == (850, 0, 850)
    types = list(BillingEvent.objects.filter(object_type="hold").order_by("pk").values_list("type", flat=True))
    assert types == ["hold.created", "hold.released", "hold.created", "hold.captured"]
    with pytest.raises(NotFound):
        services.hold_capture(organization=org_acme, hold_id="hold_missing")
    audit_clean()


def test_hold_never_exceeds_available_even_when_overdraft_allowed(org_acme):
    with pytest.raises(InsufficientFunds):
        services.hold_place(organization=org_acme, user=U, amount=1, currency="usd")
    assert not Hold.objects.exists()
    assert not BalanceTransaction.objects.exists()


def test_hold_expiry_releases(org_acme):
    services.deposit_create(organization=org_acme, user=U, amount=100, currency="usd")
    hold = services.hold_place(organization=org_acme, user=U, amount=60, currency="usd", expires_in_seconds=60)
    assert services.holds_expire() == 0
    assert services.holds_expire(now=timezone.now() + timedelta(seconds=61)) == 1
    hold.refresh_from_db()
    assert hold.status == Hold.STATUS_EXPIRED
    assert bal(org_acme).holds == 0
    assert BillingEvent.objects.filter(type="hold.expired", object_id=hold.public_id).count() == 1
    assert services.holds_expire(now=timezone.now() + timedelta(seconds=61)) == 0


def test_expiry_posts_only_the_unspent_remainder(org_acme):
    services.deposit_create(organization=org_acme, user=U, amount=500, currency="usd", expires_in_days=30)
    services.deposit_create(organization=org_acme, user=U, amount=1000, currency="usd")
    services.usage_record(organization=org_acme, user=U, amount=200, currency="usd")
    lot = Lot.objects.get()
    assert lot.remaining == 300  # expiring funds are spent first
    later = timezone.now() + timedelta(days=31)
    summary = services.balances_expire(now=later)
    assert summary == {"lots": 1, "expired_transactions": 1, "expired": {"usd": 300}}
    assert bal(org_acme).balance == 1000  # 1500 - 200 used - 300 expired
    expire = BalanceTransaction.objects.get(type="expire")
    assert expire.amount == 300 and expire.reverses_id == lot.transaction_id
    assert services.balances_expire(now=later)["lots"] == 0  # nothing twice
    audit_clean()


def test_expiry_of_a_fully_spent_lot_posts_nothing(org_acme):
    services.deposit_create(organization=org_acme, user=U, amount=500, currency="usd", expires_in_days=1)
    services.usage_record(organization=org_acme, user=U, amount=700, currency="usd")
    assert services.balances_expire(now=timezone.now() + timedelta(days=2))["expired"] == {}
    assert bal(org_acme).balance == -200  # unlike the original, expiry never takes back spent money
    audit_clean()


def test_expiry_leaves_funds_reserved_by_pending_holds(org_acme):
    services.deposit_create(organization=org_acme, user=U, amount=500, currency="usd", expires_in_days=1)
    hold = services.hold_place(organization=org_acme, user=U, amount=300, currency="usd")
    later = timezone.now() + timedelta(days=2)
    assert services.balances_expire(now=later)["expired"] == {"usd": 200}
    assert (bal(org_acme).balance, bal(org_acme).holds) == (300, 300)
    services.hold_release(organization=org_acme, hold_id=hold.public_id)
    assert services.balances_expire(now=later)["expired"] == {"usd": 300}
    assert bal(org_acme).balance == 0
    audit_clean()


def test_starter_credit_once_per_user(org_acme, org_globex):
    txn = services.starter_credit_grant(organization=org_acme, user=U)
    assert (txn.amount, txn.currency, txn.tags) == (500, "usd", "starter-credit")
    assert abs((txn.expires_at - timezone.now()) - timedelta(days=30)) < timedelta(minutes=1)
    assert txn.metadata == {"creditType": "starter", "expiryDays": 30}
    with pytest.raises(Conflict) as exc:
        services.starter_credit_grant(organization=org_acme, user=U)
    assert exc.value.code == "starter_credit_already_granted"
    services.starter_credit_grant(organization=org_globex, user=U)  # other tenant, other customer
    assert bal(org_acme).balance == 500


def test_refund_guards(org_acme):
    usage = services.usage_record(organization=org_acme, user=U, amount=100, currency="usd")
    deposit = services.deposit_create(organization=org_acme, user=U, amount=100, currency="usd")
    with pytest.raises(NotFound):
        services.refund_create(organization=org_acme, user=U, amount=1, currency="usd",
                               original_transaction_id="txn_nope")
    with pytest.raises(ValidationError, match="belong"):
        services.refund_create(organization=org_acme, user="hanzo/mallory", amount=1, currency="usd",
                               original_transaction_id=usage.public_id)
    with pytest.raises(ValidationError, match="100 cents remaining"):
        services.refund_create(organization=org_acme, user=U, amount=101, currency="usd",
                               original_transaction_id=deposit.public_id)
    with pytest.raises(ValidationError, match="currency"):
        services.refund_create(organization=org_acme, user=U, amount=1, currency="eur",
                               original_transaction_id=usage.public_id)
    services.refund_create(organization=org_acme, user=U, amount=60, currency="usd",
                           original_transaction_id=usage.public_id)
    with pytest.raises(ValidationError, match="40 cents remaining"):
        services.refund_create(organization=org_acme, user=U, amount=41, currency="usd",
                               original_transaction_id=usage.public_id)
    services.refund_create(organization=org_acme, user=U, amount=40, currency="usd",
                           original_transaction_id=usage.public_id)
    assert bal(org_acme).balance == 100
    audit_clean()


def _legs(txn) -> set[tuple[str, str, str, int]]:
    return {(e.account.kind, e.account.customer, e.direction, e.amount)
            for e in Entry.objects.filter(transaction=txn).select_related("account")}


def test_refund_posts_from_the_house_side_of_what_it_refunds(org_acme):
    """Usage → usage_revenue pays it back; a deposit → funding; the starter credit → promotions;
    anything else (a hold) → usage_revenue. The wallet is always credited (a deposit tagged refund)."""
    usage = services.usage_record(organization=org_acme, user=U, amount=100, currency="usd")
    deposit = services.deposit_create(organization=org_acme, user=U, amount=300, currency="usd")
    starter = services.starter_credit_grant(organization=org_acme, user=U)
    hold = services.hold_place(organization=org_acme, user=U, amount=50, currency="usd")
    cases = [(usage, "usage_revenue"), (deposit, "funding"), (starter, "promotions"),
             (hold.hold_transaction, "usage_revenue")]
    for original, counter in cases:
        refund = services.refund_create(organization=org_acme, user=U, amount=10, currency="usd",
                                        original_transaction_id=original.public_id)
        assert (refund.type, refund.tags, refund.reverses_id) == ("deposit", "refund", original.pk)
        assert _legs(refund) == {(counter, "", "debit", 10), ("wallet", U, "credit", 10)}
    assert bal(org_acme).balance == -100 + 300 + 500 + 40
    audit_clean()


def test_refund_of_a_refund_counts_against_the_first_original(org_acme):
    deposit = services.deposit_create(organization=org_acme, user=U, amount=100, currency="usd")
    first = services.refund_create(organization=org_acme, user=U, amount=70, currency="usd",
                                   original_transaction_id=deposit.public_id)
    second = services.refund_create(organization=org_acme, user=U, amount=30, currency="usd",
                                    original_transaction_id=first.public_id)
    assert second.reverses_id == deposit.pk
    assert second.metadata == {"refundType": "billing-correction", "originalTransactionId": first.public_id}
    assert _legs(second) == {("funding", "", "debit", 30), ("wallet", U, "credit", 30)}
    for target in (deposit, first, second):
        with pytest.raises(ValidationError, match="0 cents remaining"):
            services.refund_create(organization=org_acme, user=U, amount=1, currency="usd",
                                   original_transaction_id=target.public_id)
    assert bal(org_acme).balance == 200
    audit_clean()


def test_balance_reads_never_write(org_acme, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        assert bal(org_acme, user="hanzo/nobody").balance == 0
    assert not Account.objects.exists()


def test_overdraft_setting_change_emits_an_event_once(org_acme):
    services.deposit_create(organization=org_acme, user=U, amount=1, currency="usd")
    wallet = Account.objects.get(kind=Account.KIND_WALLET, customer=U)
    services.wallet_set_overdraft(wallet=wallet, allow_negative=False)
    services.wallet_set_overdraft(wallet=wallet, allow_negative=False)  # no change, no event
    events = list(BillingEvent.objects.filter(type="account.updated"))
    assert len(events) == 1
    assert events[0].data == {"user": U, "currency": "usd", "allowNegative": False}
    assert events[0].previous_data == {"allowNegative": True}
