"""Customer-balance services on real PostgreSQL: counter accounts, the zero floor, idempotent replay, nesting
inside a caller's transaction, and reads that never write."""

from __future__ import annotations

import pytest
from django.db import transaction

from billing_project.core.errors import Conflict, IdempotencyConflict, ValidationError
from billing_project.core.models import AuditLog
from ledger import selectors
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction, CustomerBalanceTransaction, Entry
from ledger.services import customer_balance as cbs
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

ALICE = "cus_alice"


def receivable(org, customer=ALICE, currency="usd") -> Account:
    return ledger_services.accounts_resolve(organization=org, currency=currency, customer=customer,
                                            customer_kinds=(Account.KIND_RECEIVABLE,))[Account.KIND_RECEIVABLE]


def legs(cbt: CustomerBalanceTransaction) -> set[tuple[str, str, int]]:
    return {(e.account.kind, e.direction, e.amount) for e in cbt.transaction.entries.select_related("account")}


def counts() -> tuple[int, ...]:
    return (BalanceTransaction.objects.count(), Entry.objects.count(), CustomerBalanceTransaction.objects.count(),
            BillingEvent.objects.count(), AuditLog.objects.count())


def test_post_with_a_counter_account(org_acme):
    ar = receivable(org_acme)
    cbt = cbs.customer_balance_post(
        organization=org_acme, customer=ALICE, currency="usd", amount=800,
        type=CustomerBalanceTransaction.TYPE_INVOICE_REFUND, counter=ar, invoice_id="in_1",
        description="refund of payments", txn_type=BalanceTransaction.TYPE_INVOICE_VOID)
    assert (cbt.amount, cbt.ending_balance, cbt.type, cbt.invoice_id) == (800, 800, "invoice_refund", "in_1")
    assert legs(cbt) == {("receivable", "debit", 800), ("customer_balance", "credit", 800)}
    assert cbt.transaction.type == "invoice_void" and cbt.transaction.amount == 800
    # The ledger allows a debit balance (money owed); customer_balance_post keeps the floor (see below).
    assert cbt.account.kind == Account.KIND_CUSTOMER_BALANCE and cbt.account.allow_negative

    spent = cbs.customer_balance_post(
        organization=org_acme, customer=ALICE, currency="usd", amount=-300,
        type=CustomerBalanceTransaction.TYPE_INVOICE_PAYMENT, counter=ar, account=cbt.account, invoice_id="in_2",
        txn_type=BalanceTransaction.TYPE_INVOICE_PAYMENT)
    assert (spent.amount, spent.ending_balance) == (-300, 500)
    assert legs(spent) == {("customer_balance", "debit", 300), ("receivable", "credit", 300)}
    assert cbs.customer_balance_transaction_data(spent)["invoiceId"] == "in_2"
    assert selectors.customer_balance_get(organization=org_acme, customer=ALICE, currency="usd") == 500
    # Events for every change, audit only for manual adjustments.
    assert BillingEvent.objects.filter(type="customer_balance.adjusted").count() == 2
    assert not AuditLog.objects.filter(action="customer_balance.adjust").exists()
    # a receivable posted without an invoice behind it (ledger-level): invoicing's check would flag it
    assert selectors.ledger_audit(registered=False).ok


def test_default_counter_is_house_balance_adjustments_and_audited(org_acme):
    cbt = cbs.customer_balance_adjust(organization=org_acme, customer=f"  {ALICE} ", amount=120, currency="EUR",
                                      actor="staff:ann", description="goodwill")
    assert (cbt.customer, cbt.currency) == (ALICE, "eur")
    assert legs(cbt) == {("balance_adjustments", "debit", 120), ("customer_balance", "credit", 120)}
    audit = AuditLog.objects.get(action="customer_balance.adjust")
    assert (audit.actor, audit.object_id, audit.data["endingBalance"]) == ("staff:ann", cbt.public_id, 120)


def test_floor_is_409_and_leaves_nothing_written_except_for_manual_adjustments(org_acme):
    ar = receivable(org_acme)
    cbs.customer_balance_adjust(organization=org_acme, customer=ALICE, amount=100)
    before = counts()
    with pytest.raises(Conflict) as exc:
        cbs.customer_balance_post(organization=org_acme, customer=ALICE, currency="usd", amount=-101,
                                  type=CustomerBalanceTransaction.TYPE_CREDIT_NOTE_VOID, counter=ar)
    assert exc.value.code == "insufficient_customer_balance" and exc.value.status == 409
    assert exc.value.message == "insufficient customer balance: 100 usd available, 101 requested"
    assert counts() == before
    assert selectors.customer_balance_get(organization=org_acme, customer=ALICE, currency="usd") == 100
    # A manual adjustment may go below zero: the customer then owes the difference.
    owed = cbs.customer_balance_adjust(organization=org_acme, customer=ALICE, amount=-101)
    assert (owed.amount, owed.ending_balance) == (-101, -1)
    assert legs(owed) == {("customer_balance", "debit", 101), ("balance_adjustments", "credit", 101)}
    assert selectors.customer_balance_get(organization=org_acme, customer=ALICE, currency="usd") == -1
    # Below zero, every other debit is refused with nothing available.
    with pytest.raises(Conflict, match="insufficient customer balance: 0 usd available, 5 requested"):
        cbs.customer_balance_post(organization=org_acme, customer=ALICE, currency="usd", amount=-5,
                                  type=CustomerBalanceTransaction.TYPE_CREDIT_NOTE_VOID, counter=ar)
    assert selectors.ledger_audit().ok


def test_floor_inside_a_callers_transaction_rolls_back_only_if_the_caller_lets_it(org_acme):
    ar = receivable(org_acme)
    with transaction.atomic():
        cbs.customer_balance_post(organization=org_acme, customer=ALICE, currency="usd", amount=50,
                                  type="credit_note", counter=ar)
        with pytest.raises(Conflict):
            cbs.customer_balance_post(organization=org_acme, customer=ALICE, currency="usd", amount=-51,
                                      type="invoice_payment", counter=ar)
    assert selectors.customer_balance_get(organization=org_acme, customer=ALICE, currency="usd") == 50
    assert CustomerBalanceTransaction.objects.count() == 1
    # a receivable posted without an invoice behind it (ledger-level): invoicing's check would flag it
    assert selectors.ledger_audit(registered=False).ok


def test_replay_by_idempotency_key_returns_the_same_row(org_acme):
    ar = receivable(org_acme)
    kwargs = {"organization": org_acme, "customer": ALICE, "currency": "usd", "amount": 400,
              "type": "credit_note", "counter": ar, "credit_note_id": "cn_1", "idempotency_key": "cn:cn_1"}
    first = cbs.customer_balance_post(**kwargs)
    before = counts()
    again = cbs.customer_balance_post(**kwargs)
    assert again.pk == first.pk and again.public_id == first.public_id
    assert counts() == before
    assert selectors.customer_balance_get(organization=org_acme, customer=ALICE, currency="usd") == 400
    with pytest.raises(IdempotencyConflict):
        cbs.customer_balance_post(**(kwargs | {"amount": 401}))


def test_replay_of_a_debit_succeeds_even_when_the_balance_is_gone(org_acme):
    cbs.customer_balance_adjust(organization=org_acme, customer=ALICE, amount=100)
    debit = cbs.customer_balance_adjust(organization=org_acme, customer=ALICE, amount=-100, idempotency_key="d1")
    again = cbs.customer_balance_adjust(organization=org_acme, customer=ALICE, amount=-100, idempotency_key="d1")
    assert again.pk == debit.pk
    assert CustomerBalanceTransaction.objects.count() == 2


def test_adjust_keys_are_namespaced_per_organization(org_acme, org_globex):
    a = cbs.customer_balance_adjust(organization=org_acme, customer=ALICE, amount=5, idempotency_key="k")
    b = cbs.customer_balance_adjust(organization=org_globex, customer=ALICE, amount=5, idempotency_key="k")
    assert a.pk != b.pk
    assert a.transaction.idempotency_key == "customer-balance-adjust:k"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"amount": 0}, "amount must be non-zero"),
    ({"amount": True}, "amount must be an integer"),
    ({"amount": 2**63}, "amount must fit in a signed 64-bit integer"),
    ({"customer": " "}, "customerId is required"),
    ({"currency": "nope"}, "unknown currency: nope"),
])
def test_adjust_validation(org_acme, kwargs, message):
    with pytest.raises(ValidationError) as exc:
        cbs.customer_balance_adjust(**({"organization": org_acme, "customer": ALICE, "amount": 1} | kwargs))
    assert exc.value.message == message
    assert not Account.objects.filter(kind=Account.KIND_CUSTOMER_BALANCE).exists()


def test_post_rejects_unknown_types_and_foreign_accounts(org_acme, org_globex):
    with pytest.raises(ValidationError, match="unknown customer balance transaction type"):
        cbs.customer_balance_post(organization=org_acme, customer=ALICE, currency="usd", amount=1, type="bogus")
    other = cbs.customer_balance_account(organization=org_globex, customer=ALICE, currency="usd")
    with pytest.raises(ValidationError):
        cbs.customer_balance_post(organization=org_acme, customer=ALICE, currency="usd", amount=1,
                                  type="adjustment", account=other)


def test_customer_balance_account_is_created_once(org_acme):
    a = cbs.customer_balance_account(organization=org_acme, customer=ALICE, currency="usd")
    b = cbs.customer_balance_account(organization=org_acme, customer=ALICE, currency="usd")
    assert a.pk == b.pk and a.kind == Account.KIND_CUSTOMER_BALANCE and a.normal_balance == "credit"


def test_selectors_never_write(org_acme, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert selectors.customer_balance_get(organization=org_acme, customer=ALICE, currency="usd") == 0
    assert not Account.objects.filter(kind=Account.KIND_CUSTOMER_BALANCE).exists()
    assert list(selectors.customer_balance_transaction_list(organization=org_acme, customer=ALICE)) == []
