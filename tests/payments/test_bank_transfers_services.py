"""Bank-transfer services on real PostgreSQL: reference allocation, crediting through the ledger, unmatched
transfers and the operator's match."""

from __future__ import annotations

import itertools

import pytest

from billing_project.core.errors import Conflict, NotFound, ValidationError
from billing_project.core.models import AuditLog
from ledger import selectors as ledger_selectors
from ledger.models import Account, CustomerBalanceTransaction
from payments.models import BankTransferInstruction, InboundBankTransfer, UnmatchedBankTransfer
from payments.services import bank_transfers as services
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

ALICE = "cus_alice"


def _create(org, customer: str = ALICE, **fields) -> BankTransferInstruction:
    data = {"customer_id": customer, "type": "ach", "bank_name": "Acme Bank", "account_number": "000123456789",
            "routing_number": "110000000"} | fields
    return services.bank_transfer_instruction_create(organization=org, data=services.InstructionInput(**data))


def _balance(org, customer: str = ALICE, currency: str = "usd") -> int:
    return ledger_selectors.customer_balance_get(organization=org, customer=customer, currency=currency)


@pytest.mark.parametrize(("number", "masked"), [("000123456789", "****6789"), ("12345", "****2345"),
                                                ("1234", "1234"), ("1", "1")])
def test_account_number_mask(number, masked):
    assert services.account_number_mask(number) == masked


def test_a_reference_collision_is_retried_with_a_new_reference(org_acme, monkeypatch):
    first = _create(org_acme)
    refs = itertools.chain([first.reference, first.reference], ["abcdef12"])
    monkeypatch.setattr(services, "_reference_new", lambda: next(refs))
    second = _create(org_acme)
    assert second.reference == "abcdef12"
    assert BankTransferInstruction.objects.count() == 2


def test_references_are_unique_per_organization_not_globally(org_acme, org_globex, monkeypatch):
    monkeypatch.setattr(services, "_reference_new", lambda: "0badcafe")
    a = _create(org_acme)
    b = _create(org_globex)
    assert a.reference == b.reference == "0badcafe"
    with pytest.raises(Conflict, match="could not allocate a unique reference"):
        _create(org_acme)  # every attempt collides: a 409, nothing written
    assert BankTransferInstruction.objects.filter(organization=org_acme).count() == 1


def test_expire_guards_and_audits(org_acme):
    inst = _create(org_acme)
    services.bank_transfer_instruction_expire(organization=org_acme, instruction_id=inst.public_id, actor="staff",
                                              reason="account closed")
    inst.refresh_from_db()
    assert inst.status == BankTransferInstruction.STATUS_EXPIRED
    assert AuditLog.objects.get(action="bank_transfer_instruction.expire").reason == "account closed"
    assert BillingEvent.objects.filter(type="bank_transfer_instruction.expired").count() == 1
    with pytest.raises(Conflict, match="already expired"):
        services.bank_transfer_instruction_expire(organization=org_acme, instruction_id=inst.public_id, actor="x")
    with pytest.raises(NotFound):
        services.bank_transfer_instruction_expire(organization=org_acme, instruction_id="bti_nope", actor="x")


def test_reconcile_posts_a_balanced_bank_transfer(org_acme):
    inst = _create(org_acme, type="wire")
    inbound = services.bank_transfer_reconcile(organization=org_acme, reference=inst.reference, amount=5_000)
    cbt = inbound.customer_balance_transaction
    assert (cbt.type, cbt.amount, cbt.ending_balance, cbt.customer) == ("bank_transfer", 5_000, 5_000, ALICE)
    assert cbt.metadata == {"reference": inst.reference, "instructionId": inst.public_id}
    bank = Account.objects.get(organization=org_acme, kind=Account.KIND_BANK, currency="usd")
    assert bank.customer == ""
    assert _balance(org_acme) == 5_000
    assert services.bank_transfer_reconcile_data(inbound)["transferType"] == "wire"
    assert ledger_selectors.ledger_audit().ok


def test_reconcile_rejects_bad_input_before_looking_anything_up(org_acme):
    with pytest.raises(ValidationError, match="reference is required"):
        services.bank_transfer_reconcile(organization=org_acme, reference="", amount=0)
    with pytest.raises(ValidationError, match="amount must be positive"):
        services.bank_transfer_reconcile(organization=org_acme, reference="x", amount=0)
    with pytest.raises(ValidationError, match="amount must be an integer"):
        services.bank_transfer_reconcile(organization=org_acme, reference="x", amount=True)
    with pytest.raises(NotFound, match="no active instruction found for reference"):
        services.bank_transfer_reconcile(organization=org_acme, reference="x", amount=1)


def test_reconcile_resolves_the_pending_unmatched_record_of_the_same_transfer(org_acme):
    inst = _create(org_acme)
    unmatched = services.bank_transfer_unmatched_record(
        organization=org_acme, data=services.UnmatchedInput(amount=900, reference="wrong", transfer_id="tx-7"))
    inbound = services.bank_transfer_reconcile(organization=org_acme, reference=inst.reference, amount=900,
                                               transfer_id="tx-7")
    unmatched.refresh_from_db()
    assert (unmatched.status, unmatched.inbound_transfer) == (UnmatchedBankTransfer.STATUS_MATCHED, inbound)
    with pytest.raises(Conflict, match="already matched"):
        services.bank_transfer_unmatched_match(organization=org_acme, unmatched_id=unmatched.public_id,
                                               customer_id=ALICE, actor="staff")
    assert _balance(org_acme) == 900


def test_operator_match_credits_the_chosen_customer_once(org_acme):
    unmatched = services.bank_transfer_unmatched_record(
        organization=org_acme, data=services.UnmatchedInput(amount=1_250, currency="EUR", reference="???"))
    inbound = services.bank_transfer_unmatched_match(organization=org_acme, unmatched_id=unmatched.public_id,
                                                     customer_id="cus_bob", actor="staff", reason="called them")
    assert (inbound.customer.customer_id, inbound.amount, inbound.currency, inbound.instruction) == (
        "cus_bob", 1_250, "eur", None)
    cbt = inbound.customer_balance_transaction
    assert cbt.type == "bank_transfer"
    assert cbt.description == "Bank transfer received (ref: ???, matched by an operator)"
    assert _balance(org_acme, "cus_bob", "eur") == 1_250
    unmatched.refresh_from_db()
    assert (unmatched.status, unmatched.matched_by) == ("matched", "staff")
    data = services.unmatched_bank_transfer_data(unmatched)
    assert (data["customerId"], data["balanceTransactionId"]) == ("cus_bob", cbt.public_id)
    audit = AuditLog.objects.get(action="bank_transfer.match")
    assert (audit.actor, audit.reason, audit.object_id) == ("staff", "called them", unmatched.public_id)
    with pytest.raises(Conflict, match="already matched"):
        services.bank_transfer_unmatched_match(organization=org_acme, unmatched_id=unmatched.public_id,
                                               customer_id="cus_bob", actor="staff")
    assert _balance(org_acme, "cus_bob", "eur") == 1_250
    assert BillingEvent.objects.filter(type="customer_balance.credited").count() == 1
    assert ledger_selectors.ledger_audit().ok


def test_operator_match_of_a_transfer_credited_meanwhile_writes_nothing(org_acme):
    inst = _create(org_acme)
    unmatched = services.bank_transfer_unmatched_record(
        organization=org_acme, data=services.UnmatchedInput(amount=400, transfer_id="tx-1"))
    # credited by reconciliation with another amount: the unmatched record is not this transfer's, stays pending
    services.bank_transfer_reconcile(organization=org_acme, reference=inst.reference, amount=401, transfer_id="tx-1")
    with pytest.raises(Conflict, match="transfer already credited"):
        services.bank_transfer_unmatched_match(organization=org_acme, unmatched_id=unmatched.public_id,
                                               customer_id="cus_bob", actor="staff")
    unmatched.refresh_from_db()
    assert unmatched.status == "pending"
    assert _balance(org_acme, "cus_bob") == 0
    assert InboundBankTransfer.objects.count() == 1 and CustomerBalanceTransaction.objects.count() == 1


def test_operator_match_other_organization_is_not_found(org_acme, org_globex):
    unmatched = services.bank_transfer_unmatched_record(organization=org_acme,
                                                        data=services.UnmatchedInput(amount=1))
    with pytest.raises(NotFound):
        services.bank_transfer_unmatched_match(organization=org_globex, unmatched_id=unmatched.public_id,
                                               customer_id="x", actor="staff")
